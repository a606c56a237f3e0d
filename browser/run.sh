#!/usr/bin/env bash
# Tests in a real browser: Debian's Chromium driven by Selenium through Debian's chromedriver (browser downloads
# are not reachable here), against a real `intake serve` on loopback. Installs what it needs on first use:
# chromium and chromium-driver (apt), Selenium (browser/.venv), axe-core (browser/node_modules), and the Atomic
# example's npm packages and bundle. atomic.py drives a Coveo Atomic page; console.py drives Intake's console.
# Screenshots land in target/browser/. `browser/run.sh --install-only` installs and stops there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${INTAKE_BIN:-$root/target/debug/intake}
cd "$here"

[ -n "${INTAKE_BIN:-}" ] || (cd "$root" && cargo build --quiet --workspace --bin intake)
if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null
fi
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check selenium==4.27.1; }
atomic=$root/examples/atomic
[ -d "$atomic/node_modules/@coveo/atomic" ] || (cd "$atomic" && npm ci --no-audit --no-fund --loglevel=error)
[ -f node_modules/axe-core/axe.min.js ] || npm ci --no-audit --no-fund --loglevel=error
[ "${1:-}" = --install-only ] && exit 0  # bench/run.sh's console step drives the browser itself
[ -f "$atomic/dist/src.js" ] || (cd "$atomic" && npm run --silent build)

data=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" --master-key browser-key \
    --queue-delay-cap-minutes 0 --commit-interval-ms 100 > "$data/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/ready" > /dev/null && break
    sleep 0.05
done

export INTAKE_URL="http://127.0.0.1:$port" INTAKE_KEY=browser-key INTAKE_ORG=default
status=0
.venv/bin/python atomic.py || status=1
.venv/bin/python console.py || status=1
if [ "$status" -ne 0 ]; then
    echo "--- server log ---"
    tail -50 "$data/server.log"
fi
exit "$status"
