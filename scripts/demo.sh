#!/usr/bin/env bash
# The main job of idplan, end to end, against a local AWS emulator (ministack):
#
#   bash scripts/demo.sh
#
# installs ministack (scripts/install-test-deps.sh), builds idplan, starts ministack on a free
# loopback port, creates the EKS cluster that examples/idplan.yaml names, then in a scratch
# directory runs: validate, plan --out, apply of the saved plan, a second plan that must show
# no changes, helm-values and drift. Nothing outside this machine is called; no AWS account is
# needed. The first run takes a few minutes (cargo build).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

example="examples/idplan.yaml"
region="us-east-1"
python="$repo/.venv-ministack/bin/python"

bold="" reset=""
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    bold=$'\033[1m' reset=$'\033[0m'
fi
section() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
fail() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

scratch="$(mktemp -d "${TMPDIR:-/tmp}/idplan-demo.XXXXXX")"
ms_pid=""
ok=0

cleanup() {
    if [ -n "$ms_pid" ] && kill -0 "$ms_pid" 2>/dev/null; then
        kill -TERM "$ms_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$ms_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$ms_pid" 2>/dev/null || true
        wait "$ms_pid" 2>/dev/null || true
    fi
    if [ "$ok" = 1 ]; then
        rm -rf "$scratch"
    else
        if [ -f "$scratch/ministack.log" ]; then
            printf '\ndemo: last lines of the ministack log:\n' >&2
            tail -n 20 "$scratch/ministack.log" >&2 || true
        fi
        printf 'demo: failed; kept %s for inspection\n' "$scratch" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS

section "Install the local AWS emulator (scripts/install-test-deps.sh)"
bash scripts/install-test-deps.sh

section "Build idplan (cargo build --locked)"
cargo build --locked
target_dir="$(cargo metadata --format-version 1 --no-deps --locked \
    | "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
idplan="$target_dir/debug/idplan"
[ -x "$idplan" ] || fail "$idplan was not built"

section "Start ministack (IAM, STS, EKS) on a free loopback port"
free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
healthy() {
    "$python" - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_ministack/health", timeout=2) as r:
        sys.exit(0 if r.status == 200 and b'"eks"' in r.read() else 1)
except Exception:
    sys.exit(1)
EOF
}
mkdir -p "$scratch/ministack-tmp"
port=""
for attempt in 1 2 3; do
    candidate="$(free_port)"
    # ministack writes its pid file to TMPDIR; --exit-with-parent stops it if this script
    # is killed outright.
    TMPDIR="$scratch/ministack-tmp" PYTHONUNBUFFERED=1 \
        "$python" tests/support/ministack_launcher.py --port "$candidate" --exit-with-parent \
        </dev/null >"$scratch/ministack.log" 2>&1 &
    ms_pid=$!
    for _ in $(seq 300); do
        if healthy "$candidate"; then
            port="$candidate"
            break
        fi
        kill -0 "$ms_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] && break
    # Exited early (most likely the port was taken in between) or never healthy: retry.
    kill -TERM "$ms_pid" 2>/dev/null || true
    wait "$ms_pid" 2>/dev/null || true
    ms_pid=""
    printf 'demo: ministack did not come up on port %s (attempt %s)\n' "$candidate" "$attempt" >&2
done
[ -n "$port" ] || fail "ministack did not start; see the log above"
endpoint="http://127.0.0.1:$port"
echo "ministack (pid $ms_pid) is serving $endpoint"

cluster="$(sed -n 's/^[[:space:]]*cluster:[[:space:]]*\([A-Za-z0-9_-]*\).*/\1/p' "$example" | head -n 1)"
[ -n "$cluster" ] || fail "no cluster: in $example"

section "Create the EKS cluster $cluster in ministack (what 'eksctl create cluster' would have made)"
"$python" - "$endpoint" "$cluster" "$region" <<'EOF'
import json, sys, urllib.request

endpoint, name, region = sys.argv[1:4]
body = {
    "name": name,
    "roleArn": "arn:aws:iam::000000000000:role/eks-cluster",
    "resourcesVpcConfig": {"subnetIds": []},
}
request = urllib.request.Request(
    f"{endpoint}/clusters",
    data=json.dumps(body).encode(),
    method="POST",
    headers={
        "Content-Type": "application/json",
        # ministack routes on the signing service and does not verify the signature.
        "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/{region}/eks/aws4_request, "
                         "SignedHeaders=host, Signature=x",
    },
)
with urllib.request.urlopen(request, timeout=10) as response:
    cluster = json.load(response)["cluster"]
print(f"cluster {cluster['name']}: {cluster['status']}, OIDC issuer {cluster['identity']['oidc']['issuer']}")
EOF

# Only the emulator: no profile, SSO session or config file of this machine takes part.
for var in $(compgen -e); do
    case "$var" in AWS_*) unset "$var" ;; esac
done
export AWS_ENDPOINT_URL="$endpoint"
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION="$region"
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE="$scratch/no-aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$scratch/no-aws-credentials"

work="$scratch/work"
mkdir -p "$work"
cp "$example" "$work/idplan.yaml"
cd "$work"
echo
echo "Working in $work (idplan.yaml is a copy of $example)"

section "idplan validate    (the spec and its limits; no cloud call)"
"$idplan" validate

section "idplan plan --out demo.json    (reads IAM and EKS, saves the plan under plans/)"
"$idplan" plan --out demo.json

section "idplan apply plans/demo.json    (applies exactly the saved plan)"
"$idplan" apply plans/demo.json

section "idplan plan --detailed-exitcode    (again: must be 'No changes.', exit 0)"
rc=0
out="$("$idplan" plan --detailed-exitcode)" || rc=$?
printf '%s\n' "$out"
[ "$rc" = 0 ] || fail "the second plan exited $rc (0 expected: apply should have converged)"
case "$out" in
    "No changes."*) ;;
    *) fail "the second plan is not 'No changes.'" ;;
esac

section "idplan helm-values    (the Spaces chart values; append to 'helm upgrade')"
"$idplan" helm-values

section "idplan drift    (exit 2 if the cloud no longer matches the last apply)"
"$idplan" drift

section "idplan state list    (what the state file records)"
"$idplan" state list

ok=1
printf '\n%sDemo passed%s in %ss: the identities of %s are applied, converged and free of drift.\n' \
    "$bold" "$reset" "$((SECONDS - started))" "$example"
