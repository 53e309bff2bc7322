#!/usr/bin/env bash
# Downloads a released idplan for this machine, verifies it, and installs it.
#
#   install-idplan.sh --version 0.1.0 [--dir DIR] [--cache DIR] [--base-url URL]
#                     [--target TRIPLE] [--verify-attestation auto|always|never] [--repo OWNER/NAME]
#
# 1. Fetches BASE_URL/vVERSION/SHA256SUMS and finds the line of this machine's archive
#    (idplan-VERSION-TRIPLE.tar.gz, .zip on Windows); no line, no install.
# 2. Uses the archive in --cache if there is one, else downloads it (into --cache when given),
#    and checks its SHA-256 against that line; a mismatch deletes it and installs nothing.
# 3. Verifies its build provenance attestation with `gh attestation verify` when gh is here and
#    has a token (GH_TOKEN or GITHUB_TOKEN): --verify-attestation auto (the default); `always`
#    fails without gh; `never` skips it.
# 4. Extracts it, installs DIR/idplan (DIR defaults to ~/.local/bin) and checks that it runs and
#    reports VERSION. Prints the installed path as its last line.
#
# The setup action (action.yml) and the GitLab recipe (examples/ci/gitlab/) both run it.
# Needs bash, curl, tar (unzip or PowerShell on Windows), and sha256sum or shasum.
set -euo pipefail

version="${IDPLAN_VERSION:-}"
dir="${IDPLAN_INSTALL_DIR:-$HOME/.local/bin}"
cache="${IDPLAN_CACHE_DIR:-}"
base_url="${IDPLAN_BASE_URL:-https://github.com/acme/idplan/releases/download}"
repo="${IDPLAN_REPO:-acme/idplan}"
target="${IDPLAN_TARGET:-}"
attest="${IDPLAN_VERIFY_ATTESTATION:-auto}"

fail() {
    printf 'install-idplan: error: %s\n' "$*" >&2
    exit 1
}
say() { printf 'install-idplan: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
    --version | --dir | --cache | --base-url | --target | --verify-attestation | --repo)
        [ $# -ge 2 ] || fail "$1 needs a value"
        case "$1" in
        --version) version="$2" ;;
        --dir) dir="$2" ;;
        --cache) cache="$2" ;;
        --base-url) base_url="$2" ;;
        --target) target="$2" ;;
        --verify-attestation) attest="$2" ;;
        --repo) repo="$2" ;;
        esac
        shift 2
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) fail "unknown argument $1 (see --help)" ;;
    esac
done

version="${version#v}"
[ -n "$version" ] || fail "--version is required (a released version such as 0.1.0)"
case "$version" in
*[!0-9A-Za-z.+-]*) fail "--version $version is not a version number" ;;
esac
case "$attest" in
auto | always | never) ;;
*) fail "--verify-attestation is auto, always or never, not $attest" ;;
esac
base_url="${base_url%/}"

if [ -z "$target" ]; then
    os="$(uname -s)"
    arch="$(uname -m)"
    case "$os/$arch" in
    Linux/x86_64 | Linux/amd64) target=x86_64-unknown-linux-musl ;;
    Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-musl ;;
    Darwin/x86_64) target=x86_64-apple-darwin ;;
    Darwin/arm64 | Darwin/aarch64) target=aarch64-apple-darwin ;;
    MINGW*/x86_64 | MSYS*/x86_64 | CYGWIN*/x86_64) target=x86_64-pc-windows-msvc ;;
    *) fail "no idplan release for $os $arch (there are Linux x86_64 and aarch64, macOS x86_64 and arm64, Windows x86_64): install from source with cargo install idplan" ;;
    esac
fi
case "$target" in
*windows*) ext=zip exe=idplan.exe ;;
*) ext=tar.gz exe=idplan ;;
esac
name="idplan-$version-$target"
archive="$name.$ext"
release="$base_url/v$version"

command -v curl >/dev/null 2>&1 || fail "curl is required"
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    fail "sha256sum or shasum is required to verify the download"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/install-idplan.XXXXXX")"
trap 'rm -rf "$work"' EXIT

download() { # URL FILE
    local code
    code="$(curl -sSL --retry 3 --proto '=https,http' -o "$2" -w '%{http_code}' "$1")" ||
        fail "downloading $1 failed (curl exit $?)"
    [ "$code" = 200 ] || fail "downloading $1: HTTP $code"
}

download "$release/SHA256SUMS" "$work/SHA256SUMS"
# A line is `<sha256>  <name>` (or `<sha256> *<name>`, binary mode).
expected="$(awk -v f="$archive" '{ n = $2; sub(/^\*/, "", n) } n == f { print $1; exit }' "$work/SHA256SUMS")"
case "$expected" in
"") fail "$release/SHA256SUMS lists no checksum for $archive: refusing to install an unverified archive" ;;
*[!0-9a-f]*) fail "$release/SHA256SUMS has a malformed checksum for $archive: $expected" ;;
esac
[ "${#expected}" = 64 ] || fail "$release/SHA256SUMS has a malformed checksum for $archive: $expected"

if [ -n "$cache" ]; then
    mkdir -p "$cache"
    file="$cache/$archive"
else
    file="$work/$archive"
fi
if [ -f "$file" ]; then
    say "using the cached $file"
else
    download "$release/$archive" "$file.part"
    mv "$file.part" "$file"
fi
actual="$(sha256 "$file")"
if [ "$actual" != "$expected" ]; then
    rm -f "$file"
    fail "checksum mismatch for $archive: SHA256SUMS says $expected, the download is $actual: refusing to install it"
fi
say "$archive: sha256 $actual matches SHA256SUMS"

token="${GH_TOKEN:-${GITHUB_TOKEN:-}}"
if [ "$attest" = never ]; then
    say "build provenance attestation not verified (--verify-attestation never)"
elif command -v gh >/dev/null 2>&1 && [ -n "$token" ]; then
    GH_TOKEN="$token" gh attestation verify "$file" --repo "$repo" >/dev/null ||
        fail "$archive has no valid build provenance attestation from $repo (gh attestation verify): refusing to install it"
    say "$archive: build provenance attestation from $repo verified"
elif [ "$attest" = always ]; then
    fail "--verify-attestation always needs gh and a token (GH_TOKEN or GITHUB_TOKEN)"
else
    say "build provenance attestation not verified: no gh with a token here (the checksum was)"
fi

case "$ext" in
tar.gz) tar -xzf "$file" -C "$work" ;;
zip)
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$file" -d "$work"
    else
        powershell.exe -NoProfile -Command "Expand-Archive -LiteralPath '$file' -DestinationPath '$work'"
    fi
    ;;
esac
[ -f "$work/$name/$exe" ] || fail "$archive holds no $name/$exe"

mkdir -p "$dir"
# Into place by rename, so that a running idplan or a concurrent install never sees half a file.
cp "$work/$name/$exe" "$dir/.$exe.new"
chmod 755 "$dir/.$exe.new"
mv -f "$dir/.$exe.new" "$dir/$exe"

reported="$("$dir/$exe" --version)" || fail "$dir/$exe does not run on this machine"
case "$reported" in
"idplan $version "*) ;;
*) fail "$dir/$exe reports \`$reported\`, not version $version" ;;
esac
say "installed $reported"
printf '%s\n' "$dir/$exe"
