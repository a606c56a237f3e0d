#!/usr/bin/env bash
# Schemathesis against Intake's own OpenAPI document: every documented route is called with generated and
# mutated requests; the run fails on any 5xx or any status the document does not list for its route.
# Installs the pinned Schemathesis into contract/.venv on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${INTAKE_BIN:-$root/target/debug/intake}
cd "$here"

[ -n "${INTAKE_BIN:-}" ] || (cd "$root" && cargo build --quiet --workspace --bin intake)
# A virtual environment whose Python went away (made elsewhere, or by another Python) is made again.
.venv/bin/schemathesis --version > /dev/null 2>&1 || {
    rm -rf .venv && python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check schemathesis==4.32.5
}

data=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" --master-key contract-key > "$data/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/ready" > /dev/null && break
    sleep 0.05
done

export INTAKE_KEY=contract-key
INTAKE_SOURCE=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sourceId"])' "$data/bootstrap.json")
export INTAKE_SOURCE
status=0
.venv/bin/schemathesis --config-file schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
    --seed "${SCHEMATHESIS_SEED:-20261128}" --no-color || status=$?
if grep -q "panicked" "$data/server.log"; then
    echo "the server panicked:"; grep -A5 panicked "$data/server.log"; status=1
fi
exit "$status"
