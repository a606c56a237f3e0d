#!/usr/bin/env bash
# Intake's benchmarks in one command: bench/run.sh
#
#   1. single-item durable PUT of real corpus items (linux-doc) at 64 connections: throughput, p50/p99 latency
#   2. push-to-searchable latency (202 → found by search), one item at a time
#   3. end-to-end ingestion of linux-doc through single PUTs until every item is searchable, against the raw
#      tantivy reference (tantivy's Python binding, 2 threads, no HTTP, no durability) on the same JSONL, same run
#
# Results go to bench/out/results.jsonl (one JSON object per measurement); bench/RESULTS.md records them.
# Installs what it needs: linux-doc-6.1 (Debian), tantivy (PyPI). SHARED points at the shared/ folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shared=${SHARED:-$root/../shared}
out=$here/out
runs=${RUNS:-3}
mkdir -p "$out"

[ -d /usr/share/doc/linux-doc-6.1/html ] || { apt-get update -qq && apt-get install -y -qq --no-install-recommends linux-doc-6.1; }
python3 -c 'import tantivy' 2> /dev/null || pip install --quiet tantivy
corpus=$out/linux-doc.jsonl
[ -s "$corpus" ] || python3 "$shared/corpus/make_corpus.py" /usr/share/doc/linux-doc-6.1/html "$corpus" \
    --id-prefix linux-doc-6.1/html/ --source-name linux-doc-6.1 > /dev/null

(cd "$root" && cargo build --release -q -p intake -p intake-bench)
intake=$root/target/release/intake
loader=$root/target/release/intake-bench
results=$out/results.jsonl
machine="$(nproc) cores, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), $(free -g | awk '/Mem:/ {print $2}') GB"
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
commit=$(cd "$root" && git rev-parse --short HEAD)
echo "machine: $machine; commit $commit; $stamp"

server=""
start_server() {
    data=$(mktemp -d)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    INTAKE_LOG=warn "$intake" serve --data-dir "$data" --listen "127.0.0.1:$port" --master-key bench-key > "$data/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 400); do curl -sf "http://127.0.0.1:$port/ready" > /dev/null && break; sleep 0.05; done
    source_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sourceId"])' "$data/bootstrap.json")
    target=(--url "http://127.0.0.1:$port" --key bench-key --source "$source_id")
}
stop_server() {
    kill "$server" 2> /dev/null || true
    wait "$server" 2> /dev/null || true
    rm -rf "$data"
}
trap stop_server EXIT
record() {
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); r.update(machine=sys.argv[2], commit=sys.argv[3], at=sys.argv[4]); print(json.dumps(r))' \
        "$1" "$machine" "$commit" "$stamp" | tee -a "$results"
}

for run in $(seq 1 "$runs"); do
    start_server
    record "$("$loader" put-load "${target[@]}" --corpus "$corpus" --concurrency 64 --seconds 10)"
    stop_server
done

start_server
record "$("$loader" searchable "${target[@]}" --samples 100)"
stop_server

for run in $(seq 1 "$runs"); do
    start_server
    intake_result=$("$loader" ingest "${target[@]}" --corpus "$corpus" --concurrency 64)
    stop_server
    reference=$(python3 "$shared/corpus/tantivy_reference.py" "$corpus" "$out/tantivy-reference-index" 2)
    record "$(python3 -c '
import json, re, sys
intake = json.loads(sys.argv[1])
ref = float(re.search(r"in ([0-9.]+)s", sys.argv[2]).group(1))
intake.update(reference=sys.argv[2].strip(), reference_s=ref, ratio_reference_time_over_intake_time=ref / intake["all_searchable_s"])
print(json.dumps(intake))' "$intake_result" "$reference")"
done
rm -rf "$out/tantivy-reference-index"
