#!/usr/bin/env bash
# Runs the official Node and Python Push API SDKs, and Coveo Headless (3.x and 4.x), against a real `intake serve` on loopback.
# With INTAKE_TEST_BACKEND=postgres the server runs on the shared backends: a database of its own on the test
# PostgreSQL and a bucket prefix on the test S3 server, with presigned uploads (scripts/test-servers).
# Installs the pinned SDKs into compat/node_modules and compat/.venv on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${INTAKE_BIN:-$root/target/debug/intake}
cd "$here"

[ -n "${INTAKE_BIN:-}" ] || (cd "$root" && cargo build --quiet --workspace --bin intake)
[ -d node_modules/@coveo/headless-4 ] || npm ci --no-audit --no-fund --loglevel=error
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt; }

data=$(mktemp -d)
if [ "${INTAKE_TEST_BACKEND:-}" = postgres ]; then
    while read -r setting; do export "${setting?}"; done <<< "$("$root/scripts/test-servers" start)"
    database="intake_compat_$(date +%s%N)"
    psql -q "$INTAKE_TEST_POSTGRES" -c "CREATE DATABASE $database"
    export INTAKE_DATABASE="${INTAKE_TEST_POSTGRES%/*}/$database"
    export INTAKE_BLOBS="s3://intake-test/$database?endpoint=$INTAKE_TEST_S3&presigned=true"
    export AWS_ACCESS_KEY_ID=intake-test AWS_SECRET_ACCESS_KEY=intake-test-secret
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" --master-key compat-key \
    --queue-delay-cap-minutes 0 --commit-interval-ms 100 > "$data/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/ready" > /dev/null && break
    sleep 0.05
done

# The master key only makes the clients' API keys (through the Platform API) and checks results.
export PUSH_URL="http://127.0.0.1:$port" INTAKE_KEY=compat-key INTAKE_ORG=default

status=0
node --require ./coveo_redirect.cjs node_sdk.cjs || status=1
.venv/bin/python python_sdk.py || status=1
node --import ./esm_resolve.mjs headless.mjs || status=1
HEADLESS_PACKAGE=@coveo/headless-4 HEADLESS_ORG=headless4 node --import ./esm_resolve.mjs headless.mjs || status=1
if [ "$status" -ne 0 ]; then
    echo "--- server log ---"
    tail -50 "$data/server.log"
fi
exit "$status"
