#!/usr/bin/env bash
# The project's one test command on a fresh machine: installs the test peers,
# checks formatting and lints, then runs every test. Tests start their peers
# (ministack) themselves on free loopback ports.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

step() { printf '\n==> %s\n' "$*"; }

step "scripts/install-test-deps.sh"
bash scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test --locked --no-fail-fast"
cargo test --locked --no-fail-fast
