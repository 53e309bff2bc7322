#!/usr/bin/env bash
# Installs what idplan's tests need beside the Rust toolchain, pinned, each in a
# venv of its own: ministack (the local AWS emulator the end-to-end tests run
# against) at <repo>/.venv-ministack, and the linters of the CI recipes under
# examples/ci/ (check-jsonschema with its bundled GitHub and GitLab schemas,
# zizmor for workflow security) at <repo>/.venv-ci-lint. Idempotent: a second
# run changes nothing.
set -euo pipefail

MINISTACK_VERSION="1.5.33"
CHECK_JSONSCHEMA_VERSION="0.39.0"
ZIZMOR_VERSION="1.32.0"
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
for entry in ".venv-ministack/" ".venv-ci-lint/" "target/"; do
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

lint="$repo/.venv-ci-lint"
if [ ! -x "$lint/bin/python" ]; then
    say "creating venv $lint"
    "$python" -m venv "$lint"
fi
want="check-jsonschema==$CHECK_JSONSCHEMA_VERSION zizmor==$ZIZMOR_VERSION"
have="$("$lint/bin/python" -c 'from importlib.metadata import version as v
print("check-jsonschema==" + v("check-jsonschema"), "zizmor==" + v("zizmor"))' 2>/dev/null || true)"
if [ "$have" = "$want" ]; then
    say "$want already installed in $lint"
else
    say "installing $want into $lint"
    # shellcheck disable=SC2086
    "$lint/bin/python" -m pip install -q --disable-pip-version-check $want
fi
"$lint/bin/check-jsonschema" --version >/dev/null
"$lint/bin/zizmor" --version >/dev/null
say "ok: $lint/bin holds check-jsonschema and zizmor for tests/e2e/ci_recipes.rs"
