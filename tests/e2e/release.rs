//! The release, as far as this machine can run it:
//!
//! - `scripts/release/package.py` builds the release archive and `SHA256SUMS` for this
//!   machine's target from the idplan binary cargo already built for the tests (a release
//!   build here would take longer than the whole suite), and refuses a binary of another
//!   version or target and a missing notices file; its `check-tag` refuses a tag that is not
//!   Cargo.toml's version;
//! - `scripts/install-idplan.sh` (the setup action's and the GitLab recipe's download-and-verify
//!   step), against a local HTTP server serving that release layout, installs a working idplan,
//!   uses its cache without downloading again, and refuses a tampered archive, a tampered cache
//!   and a release whose `SHA256SUMS` lacks the archive;
//! - what cannot run here (the macOS and Windows builds, the image, the attestations, GitHub
//!   itself) is linted: `.github/workflows/` and `action.yml` with check-jsonschema and zizmor,
//!   the `Dockerfile` with hadolint (all from `.venv-ci-lint`, scripts/install-test-deps.sh);
//! - `package.py chart` packages the Helm chart of `idplan watch` as the release's
//!   `idplan-VERSION.tgz` with helm-python-sdk (`.venv-helm`), the pin the release workflow
//!   installs, and refuses a chart of another version;
//! - one repository URL, one version: Cargo.toml's, in the README, the action, the recipes and
//!   the chart;
//! - `cargo package --list` holds what a build needs and nothing large; `idplan --version`
//!   names the commit and the target.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::chart::helm_venv;
use crate::ci_recipes::linter;
use crate::support::{TestDir, idplan_binary, repo_path};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// This machine's target triple, as rustc names it: what a plain `cargo build` targets.
fn host_target() -> String {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("running rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names its host")
        .trim()
        .to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn succeeds(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", text(&out));
    out
}

#[track_caller]
fn fails_saying(command: &mut Command, needle: &str) -> Output {
    let out = command.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{command:?} should fail: {}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(needle),
        "{command:?}: stderr lacks `{needle}`: {}",
        text(&out)
    );
    out
}

fn package_py() -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(repo_path("scripts/release/package.py"));
    cmd
}

/// The notices file a test packages: cargo-about writes the real one in the release workflow.
fn notices(dir: &TestDir) -> PathBuf {
    dir.write(
        "notices/THIRD-PARTY-LICENSES.md",
        "# Third-party licences\n\n## MIT License\n\nUsed by: tokio 1.0.0\n",
    )
}

/// `package.py archive` of the tests' idplan binary for this machine's target into `out`.
fn package(dir: &TestDir, out: &str, target: &str) -> Command {
    let mut cmd = package_py();
    cmd.arg("archive")
        .arg("--binary")
        .arg(idplan_binary())
        .args(["--target", target])
        .arg("--notices")
        .arg(notices(dir))
        .arg("--out")
        .arg(dir.path().join(out))
        .env("SOURCE_DATE_EPOCH", "1700000000");
    cmd
}

fn archive_name(target: &str) -> String {
    format!("idplan-{VERSION}-{target}.tar.gz")
}

#[test]
fn idplan_version_names_the_version_the_commit_and_the_target() {
    let out = succeeds(Command::new(idplan_binary()).arg("--version"));
    let line = String::from_utf8(out.stdout).unwrap();
    // build.rs takes the commit from the git checkout whose top level is the package; a
    // package unpacked from crates.io has none and says `unknown`.
    let top = Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(repo_path(""))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let commit = match top {
        Some(top) if top.canonicalize().ok() == repo_path("").canonicalize().ok() => {
            let head = succeeds(
                Command::new("git")
                    .args(["rev-parse", "--short=12", "HEAD"])
                    .current_dir(repo_path("")),
            );
            String::from_utf8(head.stdout).unwrap().trim().to_string()
        }
        _ => "unknown".to_string(),
    };
    assert_eq!(
        line.trim_end(),
        format!("idplan {VERSION} (commit {commit}, {})", host_target())
    );
    let short = succeeds(Command::new(idplan_binary()).arg("-V"));
    assert_eq!(String::from_utf8(short.stdout).unwrap(), line);
}

#[test]
fn the_release_archive_and_sha256sums_are_built_for_this_machines_target() {
    let dir = TestDir::new();
    let target = host_target();
    let name = archive_name(&target);
    succeeds(&mut package(&dir, "dist", &target));

    let dist = dir.path().join("dist");
    let archive = std::fs::read(dist.join(&name)).unwrap();
    assert_eq!(
        dir.read("dist/SHA256SUMS"),
        format!("{}  {name}\n", sha256_hex(&archive)),
        "one line per archive, in the format sha256sum -c reads"
    );
    succeeds(
        Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(&dist),
    );

    // What the archive holds, under one directory named like it.
    let top = format!("idplan-{VERSION}-{target}");
    let listing = succeeds(Command::new("tar").arg("-tvzf").arg(dist.join(&name)));
    let listing = String::from_utf8(listing.stdout).unwrap();
    let entries: BTreeMap<String, String> = listing
        .lines()
        .map(|l| {
            let mode = l.split_whitespace().next().unwrap().to_string();
            (l.split_whitespace().last().unwrap().to_string(), mode)
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        (format!("{top}/"), "drwxr-xr-x"),
        (format!("{top}/LICENSE"), "-rw-r--r--"),
        (format!("{top}/README.md"), "-rw-r--r--"),
        (format!("{top}/THIRD-PARTY-LICENSES.md"), "-rw-r--r--"),
        (format!("{top}/idplan"), "-rwxr-xr-x"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    assert_eq!(entries, expected, "{listing}");

    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    succeeds(
        Command::new("tar")
            .arg("-xzf")
            .arg(dist.join(&name))
            .arg("-C")
            .arg(&unpacked),
    );
    let content = unpacked.join(&top);
    assert_eq!(
        std::fs::read(content.join("idplan")).unwrap(),
        std::fs::read(idplan_binary()).unwrap()
    );
    assert_eq!(
        std::fs::read(content.join("LICENSE")).unwrap(),
        std::fs::read(repo_path("LICENSE")).unwrap()
    );
    let license = std::fs::read_to_string(content.join("LICENSE")).unwrap();
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    assert_eq!(
        std::fs::read_to_string(content.join("THIRD-PARTY-LICENSES.md")).unwrap(),
        dir.read("notices/THIRD-PARTY-LICENSES.md")
    );
    let version = succeeds(Command::new(content.join("idplan")).arg("--version"));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with(&format!("idplan {VERSION} (")));

    // Reproducible: the same inputs give the same bytes.
    succeeds(&mut package(&dir, "again", &target));
    assert_eq!(
        std::fs::read(dir.path().join("again").join(&name)).unwrap(),
        archive
    );

    // A binary of another target, another version, or no notices: nothing is packaged.
    fails_saying(
        &mut package(&dir, "wrong-target", "aarch64-unknown-linux-musl"),
        "not the version or target being packaged",
    );
    fails_saying(
        package(&dir, "wrong-version", &target).args(["--version", "9.9.9"]),
        "not the version or target being packaged",
    );
    let mut no_notices = package(&dir, "no-notices", &target);
    no_notices
        .arg("--notices")
        .arg(dir.path().join("missing.md"));
    fails_saying(&mut no_notices, "third-party licence notices");
    for refused in ["wrong-target", "wrong-version", "no-notices"] {
        assert!(
            !dir.path()
                .join(refused)
                .join(archive_name(&target))
                .exists()
                && !dir.path().join(refused).join("SHA256SUMS").exists(),
            "{refused}: an archive was written"
        );
    }
}

#[test]
fn the_chart_is_packaged_for_the_release_with_the_pinned_helm() {
    let dir = TestDir::new();
    let chart = |version: &str| {
        let mut cmd = Command::new(helm_venv("python"));
        cmd.arg(repo_path("scripts/release/package.py"))
            .args(["chart", "--out"])
            .arg(dir.path().join("dist"))
            .args(["--version", version]);
        cmd
    };
    succeeds(&mut chart(VERSION));
    let name = format!("idplan-{VERSION}.tgz");
    let listing = succeeds(
        Command::new("tar")
            .arg("-tzf")
            .arg(dir.path().join("dist").join(&name)),
    );
    let entries: Vec<String> = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for wanted in [
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        "README.md",
        "templates/deployment.yaml",
        "templates/rbac.yaml",
    ] {
        assert!(
            entries.contains(&format!("idplan/{wanted}")),
            "{name} lacks idplan/{wanted}: {entries:?}"
        );
    }
    assert!(
        entries.iter().all(|e| e.starts_with("idplan/")),
        "{entries:?}"
    );
    succeeds(package_py().arg("sums").arg(dir.path().join("dist")));
    assert!(
        dir.read("dist/SHA256SUMS")
            .ends_with(&format!("  {name}\n")),
        "the chart is listed in SHA256SUMS"
    );
    fails_saying(
        &mut chart("9.9.9"),
        &format!(
            "charts/idplan/Chart.yaml: `version` is '{VERSION}', not the release's version 9.9.9"
        ),
    );

    // The release workflow installs the helm-python-sdk the tests pin, read from
    // scripts/install-test-deps.sh by its own expression, and packages the chart before
    // SHA256SUMS and the attestation, so that both cover it.
    let workflow = std::fs::read_to_string(repo_path(".github/workflows/release.yml")).unwrap();
    let pin_expression = r#"s/^HELM_PYTHON_SDK_VERSION="\(.*\)"$/\1/p"#;
    assert!(workflow.contains(pin_expression), "{workflow}");
    let pinned = succeeds(
        Command::new("sed")
            .args(["-n", pin_expression])
            .arg(repo_path("scripts/install-test-deps.sh")),
    );
    let installed = succeeds(Command::new(helm_venv("python")).args([
        "-c",
        "from importlib.metadata import version; print(version('helm-python-sdk'))",
    ]));
    assert_eq!(text(&pinned).trim(), text(&installed).trim());
    let packaged = workflow.find("package.py chart --out dist").unwrap();
    assert!(packaged < workflow.find("package.py sums dist").unwrap());
    assert!(packaged < workflow.find("attest-build-provenance").unwrap());
}

#[test]
fn a_release_tag_must_be_cargo_tomls_version() {
    succeeds(package_py().args(["check-tag", &format!("v{VERSION}")]));
    fails_saying(
        package_py().args(["check-tag", &format!("v{VERSION}.1")]),
        &format!("is not the version in Cargo.toml ({VERSION})"),
    );
    fails_saying(
        package_py().args(["check-tag", VERSION]),
        "is not the version in Cargo.toml",
    );
}

/// A static HTTP server on a free loopback port serving `root`, logging each request's path:
/// a GitHub release's download URLs (`BASE/vVERSION/FILE`) for the install script.
struct Server {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(root: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::clone(&log);
        // The thread ends with the test process; each connection is served to its end.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &root, &requests);
            }
        });
        Server { port, log }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/releases/download", self.port)
    }

    /// The paths requested so far, and forget them.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn serve(mut stream: TcpStream, root: &Path, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    log.lock().unwrap().push(path.clone());
    let file = path
        .strip_prefix("/releases/download/")
        .filter(|p| !p.split('/').any(|part| part == ".." || part.is_empty()))
        .map(|p| root.join(p));
    let (status, body) = match file.map(std::fs::read) {
        Some(Ok(body)) => ("200 OK", body),
        _ => ("404 Not Found", b"Not Found".to_vec()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    // Drain what the client may still send, so that closing does not reset the connection.
    let _ = reader.read_to_end(&mut Vec::new());
    Ok(())
}

/// A release layout for this machine's target, as the release workflow publishes it: the
/// archive, install-idplan.sh and SHA256SUMS under `v{VERSION}/`.
fn release_layout(dir: &TestDir) -> PathBuf {
    let target = host_target();
    let release = dir.path().join("www").join(format!("v{VERSION}"));
    succeeds(&mut package(dir, &format!("www/v{VERSION}"), &target));
    std::fs::copy(
        repo_path("scripts/install-idplan.sh"),
        release.join("install-idplan.sh"),
    )
    .unwrap();
    succeeds(package_py().arg("sums").arg(&release));
    release
}

/// scripts/install-idplan.sh from `server` into `dir/bin`, with `dir/cache`, for this
/// machine's target, without a GitHub token (so no attestation check: there is no GitHub).
fn install(dir: &TestDir, server: &Server) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_path("scripts/install-idplan.sh"))
        .args(["--version", VERSION, "--base-url", &server.base_url()])
        .arg("--dir")
        .arg(dir.path().join("bin"))
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .args(["--target", &host_target()])
        .env_remove("GH_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .env("TMPDIR", dir.path());
    cmd
}

#[test]
fn the_install_script_installs_a_verified_release_and_reuses_its_cache() {
    let dir = TestDir::new();
    release_layout(&dir);
    let server = Server::start(dir.path().join("www"));
    let name = archive_name(&host_target());

    let started = Instant::now();
    let out = succeeds(&mut install(&dir, &server));
    let took = started.elapsed();
    let installed = dir.path().join("bin/idplan");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last(),
        Some(installed.to_str().unwrap()),
        "the last line is the installed path: {}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{name}: sha256 ")) && stderr.contains("matches SHA256SUMS"),
        "{stderr}"
    );
    assert!(
        stderr.contains("attestation not verified: no gh with a token here"),
        "{stderr}"
    );
    assert_eq!(
        server.take(),
        [
            format!("/releases/download/v{VERSION}/SHA256SUMS"),
            format!("/releases/download/v{VERSION}/{name}"),
        ]
    );
    // The installed idplan works: it is the binary packaged, and it runs a command.
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(idplan_binary()).unwrap()
    );
    let version = succeeds(Command::new(&installed).arg("--version"));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with(&format!("idplan {VERSION} (")));
    let spec = dir.write(
        "spec/idplan.yaml",
        &std::fs::read_to_string(repo_path("examples/idplan.yaml")).unwrap(),
    );
    succeeds(
        Command::new(&installed)
            .args(["validate", "-f"])
            .arg(&spec)
            .current_dir(dir.path().join("spec")),
    );
    // The goal is idplan ready in a CI job in under 15 s; here, with no network in between,
    // the script's own share must be a small part of that.
    assert!(
        took < Duration::from_secs(15),
        "install-idplan.sh took {took:?}"
    );

    // A second run (another job with the restored cache) downloads SHA256SUMS only, and still
    // checks the cached archive against it.
    std::fs::remove_file(&installed).unwrap();
    let out = succeeds(&mut install(&dir, &server));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("using the cached"), "{stderr}");
    assert!(stderr.contains("matches SHA256SUMS"), "{stderr}");
    assert_eq!(
        server.take(),
        [format!("/releases/download/v{VERSION}/SHA256SUMS")]
    );
    assert!(installed.exists());

    // A cached archive that changed since is refused and dropped; the next run downloads it.
    let cached = dir.path().join("cache").join(&name);
    let mut bytes = std::fs::read(&cached).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&cached, bytes).unwrap();
    std::fs::remove_file(&installed).unwrap();
    fails_saying(
        &mut install(&dir, &server),
        &format!("checksum mismatch for {name}"),
    );
    assert!(!installed.exists(), "a tampered archive was installed");
    assert!(!cached.exists(), "the tampered cache was kept");
    server.take();
    succeeds(&mut install(&dir, &server));
    assert_eq!(
        server.take(),
        [
            format!("/releases/download/v{VERSION}/SHA256SUMS"),
            format!("/releases/download/v{VERSION}/{name}"),
        ]
    );
}

#[test]
fn the_install_script_refuses_a_tampered_archive_and_a_missing_checksum() {
    let dir = TestDir::new();
    let release = release_layout(&dir);
    let server = Server::start(dir.path().join("www"));
    let name = archive_name(&host_target());
    let installed = dir.path().join("bin/idplan");

    // The archive changed after SHA256SUMS was written (a compromised mirror or release).
    let archive = release.join(&name);
    let original = std::fs::read(&archive).unwrap();
    let mut tampered = original.clone();
    let at = tampered.len() - 100;
    tampered[at] ^= 0x01;
    std::fs::write(&archive, &tampered).unwrap();
    let out = fails_saying(
        &mut install(&dir, &server),
        &format!(
            "checksum mismatch for {name}: SHA256SUMS says {}, the download is {}: refusing to install it",
            sha256_hex(&original),
            sha256_hex(&tampered)
        ),
    );
    assert!(!installed.exists(), "installed anyway: {}", text(&out));
    assert!(
        !dir.path().join("cache").join(&name).exists(),
        "the tampered download was cached"
    );

    // SHA256SUMS has no line for the archive: it is not even downloaded.
    std::fs::write(&archive, &original).unwrap();
    let sums = std::fs::read_to_string(release.join("SHA256SUMS")).unwrap();
    let without: String = sums
        .lines()
        .filter(|l| !l.ends_with(&name))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, sums);
    std::fs::write(release.join("SHA256SUMS"), without).unwrap();
    server.take();
    fails_saying(
        &mut install(&dir, &server),
        &format!(
            "SHA256SUMS lists no checksum for {name}: refusing to install an unverified archive"
        ),
    );
    assert!(!installed.exists());
    assert_eq!(
        server.take(),
        [format!("/releases/download/v{VERSION}/SHA256SUMS")]
    );

    // No SHA256SUMS at all (a version never released): the HTTP status says so.
    std::fs::remove_file(release.join("SHA256SUMS")).unwrap();
    fails_saying(&mut install(&dir, &server), "SHA256SUMS: HTTP 404");
    assert!(!installed.exists());

    // And the attestation cannot be skipped silently when asked for.
    std::fs::write(&archive, &original).unwrap();
    succeeds(package_py().arg("sums").arg(&release));
    let mut always = install(&dir, &server);
    always.args(["--verify-attestation", "always"]);
    fails_saying(
        &mut always,
        "--verify-attestation always needs gh and a token",
    );
    assert!(!installed.exists());
}

#[test]
fn what_only_github_and_docker_can_run_passes_the_linters() {
    let workflows: Vec<PathBuf> = std::fs::read_dir(repo_path(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    assert!(
        workflows.iter().any(|p| p.ends_with("release.yml")),
        "{workflows:?}"
    );
    succeeds(
        Command::new(linter("check-jsonschema"))
            .args(["--builtin-schema", "vendor.github-workflows"])
            .args(&workflows),
    );
    succeeds(
        Command::new(linter("check-jsonschema"))
            .args(["--builtin-schema", "vendor.github-actions"])
            .arg(repo_path("action.yml")),
    );
    succeeds(
        Command::new(linter("zizmor"))
            .args(["--offline", "--persona", "pedantic", "--no-progress"])
            .args(&workflows)
            .arg(repo_path("action.yml"))
            .env_remove("GH_TOKEN")
            .env_remove("GITHUB_TOKEN"),
    );
    succeeds(Command::new(linter("hadolint")).arg(repo_path("Dockerfile")));

    // The linters do refuse: an action without `runs`, a composite step that interpolates
    // an input into its script, a Dockerfile on `latest` that runs as root by default with
    // unpinned packages.
    let dir = TestDir::new();
    let no_runs = dir.write("no-runs/action.yml", "name: x\ndescription: x\n");
    refuses(
        Command::new(linter("check-jsonschema"))
            .args(["--builtin-schema", "vendor.github-actions"])
            .arg(&no_runs),
        "'runs' is a required property",
    );
    let injection = dir.write(
        "injection/action.yml",
        "name: x\ndescription: x\ninputs:\n  v:\n    description: x\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: echo ${{ inputs.v }}\n",
    );
    refuses(
        Command::new(linter("zizmor"))
            .args(["--offline", "--no-progress"])
            .arg(&injection),
        "template-injection",
    );
    let bad = dir.write(
        "Dockerfile",
        "FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n",
    );
    refuses(Command::new(linter("hadolint")).arg(&bad), "DL3007");
}

/// The linter fails, for the reason given (`needle` in its output).
#[track_caller]
fn refuses(command: &mut Command, needle: &str) {
    let out = command.output().unwrap();
    assert!(
        !out.status.success(),
        "{command:?} let it pass: {}",
        text(&out)
    );
    assert!(
        text(&out).contains(needle),
        "{command:?}: no {needle}: {}",
        text(&out)
    );
}

fn cargo_toml_field(field: &str) -> String {
    let manifest = std::fs::read_to_string(repo_path("Cargo.toml")).unwrap();
    let prefix = format!("{field} = \"");
    manifest
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix('"'))
        .unwrap_or_else(|| panic!("Cargo.toml has no {field}"))
        .to_string()
}

#[test]
fn one_repository_url_and_one_version_across_readme_action_and_recipes() {
    let url = cargo_toml_field("repository");
    let owner_name = url.strip_prefix("https://github.com/").unwrap();
    let read = |p: &str| std::fs::read_to_string(repo_path(p)).unwrap();

    // Every github.com/OWNER/idplan these files name is the canonical one.
    let files = [
        "README.md",
        "docs/ci.md",
        "action.yml",
        "scripts/install-idplan.sh",
        "examples/ci/github/idplan-plan.yml",
        "examples/ci/github/idplan-apply.yml",
        "examples/ci/github/idplan-drift.yml",
        "examples/ci/gitlab/idplan.gitlab-ci.yml",
    ];
    for file in files {
        let text = read(file);
        assert!(text.contains(owner_name), "{file} does not name {url}");
        for (at, _) in text.match_indices("github.com/") {
            let rest = &text[at + "github.com/".len()..];
            let repo: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || "-_./".contains(*c))
                .collect();
            if repo.split('/').nth(1) == Some("idplan") {
                assert!(
                    repo.starts_with(owner_name),
                    "{file} names github.com/{repo}, not {url}"
                );
            }
        }
    }
    assert_eq!(
        cargo_toml_field("homepage"),
        url,
        "Cargo.toml's homepage is the repository"
    );

    // The recipes install Cargo.toml's version: the action's tag and input, the GitLab
    // variables, and the installer's SHA-256 pinned in the GitLab recipe is this checkout's.
    for recipe in [
        "examples/ci/github/idplan-plan.yml",
        "examples/ci/github/idplan-apply.yml",
        "examples/ci/github/idplan-drift.yml",
    ] {
        let text = read(recipe);
        assert!(
            text.contains(&format!("uses: {owner_name}@v{VERSION}"))
                && text.contains(&format!("version: {VERSION}\n")),
            "{recipe} does not use the setup action at v{VERSION}"
        );
        assert!(
            !text.contains("cargo install"),
            "{recipe} still builds idplan"
        );
    }
    let gitlab = read("examples/ci/gitlab/idplan.gitlab-ci.yml");
    let installer = std::fs::read(repo_path("scripts/install-idplan.sh")).unwrap();
    assert!(
        gitlab.contains(&format!("IDPLAN_VERSION: \"{VERSION}\"")),
        "the GitLab recipe pins another version"
    );
    assert!(
        gitlab.contains(&format!(
            "IDPLAN_INSTALLER_SHA256: \"{}\"",
            sha256_hex(&installer)
        )),
        "the GitLab recipe pins another install-idplan.sh: update IDPLAN_INSTALLER_SHA256 to {}",
        sha256_hex(&installer)
    );
    assert!(gitlab.contains("bash /tmp/install-idplan.sh"));
    assert!(!gitlab.contains("cargo install"));
    assert!(
        read("action.yml").contains("scripts/install-idplan.sh"),
        "the action runs the same script"
    );

    // The chart is this version's, on this repository's image; the install commands name
    // this version's chart.
    let chart = read("charts/idplan/Chart.yaml");
    assert!(
        chart.contains(&format!("\nversion: {VERSION}\n"))
            && chart.contains(&format!("\nappVersion: \"{VERSION}\"\n"))
            && chart.contains(&format!("home: {url}\n")),
        "charts/idplan/Chart.yaml is not version {VERSION} of {url}"
    );
    let image = format!("repository: ghcr.io/{}\n", owner_name.to_lowercase());
    assert!(
        read("charts/idplan/values.yaml").contains(&image),
        "charts/idplan/values.yaml does not pull {image}"
    );
    let download = format!("{url}/releases/download/v{VERSION}/idplan-{VERSION}.tgz");
    for file in ["README.md", "docs/watch.md"] {
        assert!(
            read(file).contains(&download),
            "{file} does not name {download}"
        );
    }
}

#[test]
fn the_crates_io_package_holds_what_a_build_needs_and_nothing_large() {
    let out = succeeds(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["package", "--list", "--locked", "--allow-dirty"])
            .current_dir(repo_path("")),
    );
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "LICENSE",
        "README.md",
        "src/main.rs",
        "src/lib.rs",
        "docs/spec.md",
    ] {
        assert!(
            listed.iter().any(|f| f == needed),
            "{needed} missing from {listed:?}"
        );
    }
    for file in &listed {
        assert!(
            ![
                "tests/",
                "examples/",
                "benches/",
                ".github/",
                "scripts/",
                "state/",
                "plans/"
            ]
            .iter()
            .any(|dir| file.starts_with(dir))
                && !["Dockerfile", "action.yml", ".dockerignore"].contains(&file.as_str()),
            "{file} is in the crates.io package"
        );
    }
    // Every Rust source is in it (a module left out would break the crates.io build).
    let mut sources = Vec::new();
    let mut dirs = vec![repo_path("src")];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push(
                    path.strip_prefix(repo_path(""))
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    for source in &sources {
        assert!(listed.contains(source), "{source} is not in the package");
    }
    let bytes: u64 = listed
        .iter()
        .filter_map(|f| std::fs::metadata(repo_path(f)).ok())
        .map(|m| m.len())
        .sum();
    assert!(
        bytes < 3_000_000,
        "the package's files add up to {bytes} bytes"
    );
}
