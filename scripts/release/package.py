#!/usr/bin/env python3
"""Builds idplan's release archives and their SHA256SUMS.

    package.py check-tag TAG
    package.py archive --binary PATH --target TRIPLE --notices FILE --out DIR [--version V]
    package.py sums DIR
    package.py notes --repo OWNER/NAME --image IMAGE [--version V]
    package.py chart --out DIR [--version V]

`check-tag` fails unless TAG is `v` and Cargo.toml's version: a release is built from the
version it names.

`archive` writes DIR/idplan-V-TRIPLE.tar.gz (.zip for Windows targets) holding, under
idplan-V-TRIPLE/: the binary, LICENSE, README.md and the third-party licence notices; then
rewrites DIR/SHA256SUMS. V defaults to Cargo.toml's version; a binary that runs here must
report that version and TRIPLE in `--version`. `sums` rewrites DIR/SHA256SUMS alone: one
`<sha256>  <name>` line per file in DIR (the format `sha256sum -c` reads), sorted by name.
`notes` prints the top of the release notes: how to install and verify this version (GitHub
appends the changes since the previous release).
`chart` writes DIR/idplan-V.tgz, the Helm chart `charts/idplan` for `idplan watch`, whose
`version` and `appVersion` must be V: one release, one chart. It needs helm-python-sdk (Helm
embedded, no helm binary), pinned in scripts/install-test-deps.sh; the other commands need
Python alone.

The release workflow runs it on Linux, macOS and Windows runners, hence Python (its tarfile
and zipfile) rather than tar/zip/sha256sum, which differ or are missing there. The archives are
reproducible: sorted entries, owner 0, fixed modes, mtime SOURCE_DATE_EPOCH (default 0).
"""

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUMS = "SHA256SUMS"


def fail(message: str) -> "None":
    print(f"package.py: error: {message}", file=sys.stderr)
    sys.exit(1)


def cargo_version() -> str:
    with open(REPO / "Cargo.toml", "rb") as f:
        return tomllib.load(f)["package"]["version"]


def check_binary(binary: Path, version: str, target: str) -> None:
    """A binary this machine can run must say it is `version` built for `target`; one built
    for another OS or architecture cannot be asked and is taken as named."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=60
        )
    except OSError as e:
        print(f"package.py: not checking {binary} --version ({e.strerror}): built for {target}")
        return
    line = out.stdout.strip()
    if out.returncode != 0:
        fail(f"{binary} --version exited {out.returncode}: {out.stderr.strip()}")
    if not line.startswith(f"idplan {version} ") or not line.endswith(f", {target})"):
        fail(
            f"{binary} --version printed `{line}`, not `idplan {version} (commit ..., {target})`:"
            " the binary is not the version or target being packaged"
        )


def entries(binary: Path, target: str, notices: Path) -> list[tuple[str, Path, int]]:
    exe = "idplan.exe" if "windows" in target else "idplan"
    return sorted(
        [
            (exe, binary, 0o755),
            ("LICENSE", REPO / "LICENSE", 0o644),
            ("README.md", REPO / "README.md", 0o644),
            (notices.name, notices, 0o644),
        ]
    )


def write_tar_gz(path: Path, top: str, files, mtime: int) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dir_info = tarfile.TarInfo(top)
        dir_info.type, dir_info.mode, dir_info.mtime = tarfile.DIRTYPE, 0o755, mtime
        tar.addfile(dir_info)
        for name, source, mode in files:
            data = source.read_bytes()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, mtime
            tar.addfile(info, io.BytesIO(data))
    # gzip's header carries a timestamp and a file name: fixed, for the same bytes each time.
    with open(path, "wb") as out:
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=mtime, compresslevel=6) as gz:
            gz.write(raw.getvalue())


def write_zip(path: Path, top: str, files, mtime: int) -> None:
    # zip stores local times from 1980 on.
    stamp = max(mtime, 315532800)
    date_time = time.gmtime(stamp)[:6]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, source, mode in files:
            info = zipfile.ZipInfo(f"{top}/{name}", date_time=date_time)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, source.read_bytes())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_sums(out: Path) -> Path:
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name != SUMS)
    if not files:
        fail(f"{out} holds no file to list in {SUMS}")
    sums = out / SUMS
    sums.write_text("".join(f"{sha256(p)}  {p.name}\n" for p in files))
    print(f"package.py: wrote {sums} ({len(files)} files)")
    return sums


def archive(args) -> None:
    binary, notices, out = Path(args.binary), Path(args.notices), Path(args.out)
    for what, path in [("binary", binary), ("third-party licence notices", notices)]:
        if not path.is_file():
            fail(f"the {what} {path} does not exist")
    if notices.stat().st_size == 0:
        fail(f"the third-party licence notices {notices} are empty")
    version = args.version or cargo_version()
    check_binary(binary, version, args.target)
    out.mkdir(parents=True, exist_ok=True)
    top = f"idplan-{version}-{args.target}"
    files = entries(binary, args.target, notices)
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    if "windows" in args.target:
        path = out / f"{top}.zip"
        write_zip(path, top, files, mtime)
    else:
        path = out / f"{top}.tar.gz"
        write_tar_gz(path, top, files, mtime)
    print(f"package.py: wrote {path}")
    write_sums(out)


def check_tag(tag: str) -> None:
    version = cargo_version()
    if tag != f"v{version}":
        fail(
            f"the tag {tag} is not the version in Cargo.toml ({version}): tag v{version},"
            " or bump Cargo.toml's version (and Cargo.lock) in a commit and tag that"
        )
    print(f"package.py: tag {tag} is Cargo.toml's version")


NOTES = """\
## Install

| | |
| --- | --- |
| GitHub Actions | `uses: {repo}@{tag}` with `version: {version}` (downloads, verifies and caches the binary) |
| a release archive | download `idplan-{version}-TARGET.tar.gz` (`.zip` on Windows) and `SHA256SUMS` below, `sha256sum --check --ignore-missing SHA256SUMS` |
| a script (Linux, macOS, Git Bash) | `bash install-idplan.sh --version {version}` (the `install-idplan.sh` below: it verifies the checksum, and the attestation where `gh` is) |
| the container image | `docker run --rm --read-only -v "$PWD:/work" {image}:{version} plan` (linux/amd64, linux/arm64) |
| crates.io | `cargo install --locked idplan@{version}` |
| `idplan watch` in the Space's cluster | `helm install idplan https://github.com/{repo}/releases/download/{tag}/idplan-{version}.tgz --namespace idplan-system --create-namespace --set-file spec=idplan.yaml` (the chart `idplan-{version}.tgz` below, on the image above) |

TARGET is `x86_64-unknown-linux-musl`, `aarch64-unknown-linux-musl` (static: any Linux
distribution), `x86_64-apple-darwin`, `aarch64-apple-darwin` or `x86_64-pc-windows-msvc`. Each
archive holds the binary, `LICENSE`, `README.md` and `THIRD-PARTY-LICENSES.md`.

## Verify

```sh
sha256sum --check --ignore-missing SHA256SUMS
gh attestation verify idplan-{version}-TARGET.tar.gz --repo {repo}
gh attestation verify oci://{image}:{version} --repo {repo}
```
"""


def notes(args) -> None:
    version = args.version or cargo_version()
    print(NOTES.format(repo=args.repo, tag=f"v{version}", version=version, image=args.image))


CHART = Path(__file__).resolve().parents[2] / "charts" / "idplan"


def chart(args) -> None:
    version = args.version or cargo_version()
    chart_yaml = CHART / "Chart.yaml"
    try:
        import helm_python
    except ImportError:
        fail(
            "helm_python is missing: package the chart with the Python of a venv holding"
            " helm-python-sdk (scripts/install-test-deps.sh makes .venv-helm)"
        )
    with helm_python.Chart.load(CHART) as loaded:
        declared = loaded.metadata
    for field in ["version", "appVersion"]:
        if str(declared.get(field)) != version:
            fail(
                f"{chart_yaml}: `{field}` is {declared.get(field)!r}, not the release's"
                f" version {version}: set both `version` and `appVersion` to {version}"
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = helm_python.package(CHART, destination=out)
    print(f"package.py: wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("archive", help="build one target's archive, then SHA256SUMS")
    a.add_argument("--binary", required=True, help="the idplan binary to package")
    a.add_argument("--target", required=True, help="the target triple it was built for")
    a.add_argument("--notices", required=True, help="the third-party licence notices file")
    a.add_argument("--out", required=True, help="the directory of the release's files")
    a.add_argument("--version", help="the version (default: Cargo.toml's)")
    s = sub.add_parser("sums", help="write DIR/SHA256SUMS for every file in DIR")
    s.add_argument("dir")
    t = sub.add_parser("check-tag", help="fail unless TAG is v + Cargo.toml's version")
    t.add_argument("tag")
    n = sub.add_parser("notes", help="print the release notes' install and verify section")
    n.add_argument("--repo", required=True, help="OWNER/NAME of the repository")
    n.add_argument("--image", required=True, help="the image, without tag")
    n.add_argument("--version", help="the version (default: Cargo.toml's)")
    c = sub.add_parser("chart", help="package the Helm chart as DIR/idplan-V.tgz")
    c.add_argument("--out", required=True, help="the directory of the release's files")
    c.add_argument("--version", help="the version (default: Cargo.toml's)")
    args = parser.parse_args()
    if args.command == "archive":
        archive(args)
    elif args.command == "check-tag":
        check_tag(args.tag)
    elif args.command == "notes":
        notes(args)
    elif args.command == "chart":
        chart(args)
    else:
        directory = Path(args.dir)
        if not directory.is_dir():
            fail(f"{directory} is not a directory")
        write_sums(directory)


if __name__ == "__main__":
    main()
