#!/usr/bin/env bash
# Intake's benchmarks in one command: bench/run.sh
#
#   1. single-item durable PUT of real corpus items (linux-doc) at 64 connections with wrk: throughput, p50/p99
#      latency; and the same with each item's data cut to 1 KB, to separate per-request from per-byte costs
#   2. push-to-searchable latency (202 → found by search), one item at a time; (only when asked: STEPS=loaded)
#      the same while 64 connections PUT 1 KB items
#   3. end-to-end ingestion of linux-doc through single PUTs until every item is searchable, against the raw
#      tantivy reference (tantivy's Python binding, 2 threads, no HTTP, no durability) on the same JSONL, same run
#   4. the same corpus as one batch through a file container, against the same reference; batch validation speed
#      against sha256sum of the same file
#   5. peak server memory while a 250 MiB batch (Java SE 17 API pages) is uploaded, validated and applied
#   6. the cost of limit checks on the single-item PUT path: the 1 KB items with every limit set (never reached)
#      against no limits, alternating, same run
#   7. `intake push` of the linux-doc folder against the official Node SDK's batchUpdateDocumentsFromFiles on the
#      same pages, each against a fresh server, until every page is searchable
#   8. (only when asked: STEPS=versus BASELINE=/path/to/other/intake) steps 1, 2 and 4 (single PUT, push-to-
#      searchable, one batch) for this build and another one, alternating, same run: a change's before and after
#  10. (only when asked: STEPS=floor) the single-item PUT of step 1 against the floor server (bench/src/bin/floor.rs:
#      axum reads the body, parses it as JSON, answers 202 — no validation, journal, fsync or index), alternating,
#      for 1.5 KB items and whole linux-doc items: the ratio is issue 15's figure (Intake with --max-apply-lag-ms 0)
#  11. (only when asked: STEPS=stream) a catalog's full load of the Java SE 17 API pages in 8 chunks against the
#      same files as item batches, alternating, with peak memory; 100,000 partial updates of 10,000 items until visible
#  12. (only when asked: STEPS=pdf) PDF text: Intake's converter against pdftotext (poppler-utils) on the R manuals
#      (r-doc-pdf) and the Debian handbook's PDF figures, alternating: throughput and pdftotext's words found
#  13. (only when asked: STEPS=search) search throughput and p99 on linux-doc at 16 connections (10 results with
#      excerpts, 1, none) against tantivy's Python binding on the same pages and queries; facets on the Java SE API
#  14. (only when asked: STEPS=console) the console's first render of each page in Debian's Chromium on a data
#      directory with the Java SE 17 API pages and 100,000 more items (so as many more log entries), and the size
#      of its files gzipped (issue 13's figures)
#  15. (only when asked: STEPS=shared) the shared backends against the embedded one, alternating, same run: the
#      single-item PUT of step 1 (1.5 KB and whole linux-doc items, --max-apply-lag-ms 0 on both so the request
#      path is measured, not indexing's pace) with --database on a local PostgreSQL (its defaults: fsync and
#      synchronous_commit on) and the WAL it wrote per item, and linux-doc as one batch until searchable with --database and
#      --blobs on s3s-fs, uploaded by presigned URL straight to S3 (issue 17's figures); and, with the default
#      backpressure, 31,850 items of 1.5 KB (linux-doc's cut ten times over) pushed by single PUTs until all are
#      searchable: what one node sustains, accepting and indexing
#  16. (only when asked: STEPS=failover) two nodes on the shared backends, 100,000 items indexed by the owner of the
#      organization's index, the owner SIGKILLed: the time until the other node finds every item again
#   9. (only when asked: STEPS=security) trimmed search on the Java SE 17 API pages, each item allowing 1-20 of
#      1,000 nested groups and denying 0-2, as a user in 50 groups against the same queries with viewAllContent,
#      alternating; an identity batch of 100,000 identities until resolvable; resolving that user, in process
#
# STEPS selects some of them (default: all but versus, loaded, floor, security, stream, pdf, search, console,
# shared and failover), e.g. STEPS="batch memory" bench/run.sh.
#
# Results go to bench/out/results.jsonl (one JSON object per measurement); bench/RESULTS.md records them.
# Installs what it needs: linux-doc-6.1 (Debian), openjdk-17-doc (unpacked by scripts/corpora), tantivy (PyPI).
# SHARED points at the shared/ folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shared=${SHARED:-$root/../shared}
out=$here/out
runs=${RUNS:-3}
steps=" ${STEPS:-put searchable ingest batch memory limits push} "
wants() { [[ "$steps" == *" $1 "* ]]; }
mkdir -p "$out"

command -v wrk > /dev/null && [ -d /usr/share/doc/linux-doc-6.1/html ] || {
    apt-get update -qq && apt-get install -y -qq --no-install-recommends linux-doc-6.1 wrk
}
python3 -c 'import tantivy' 2> /dev/null || pip install --quiet tantivy
corpus=$out/linux-doc.jsonl
[ -s "$corpus" ] || python3 "$shared/corpus/make_corpus.py" /usr/share/doc/linux-doc-6.1/html "$corpus" \
    --id-prefix linux-doc-6.1/html/ --source-name linux-doc-6.1 > /dev/null

# wrk input: "form-encoded documentId<TAB>item JSON" per line; the small variant keeps 1 KB of each item's data.
python3 - "$corpus" "$out" <<'PY'
import json, sys, urllib.parse
corpus, out = sys.argv[1], sys.argv[2]
with open(f"{out}/items.tsv", "w") as full, open(f"{out}/items-1k.tsv", "w") as small, \
        open(f"{out}/items-1.5k.tsv", "w") as medium:
    for line in open(corpus):
        item = json.loads(line)
        id = urllib.parse.quote_plus(item["documentId"])
        full.write(f"{id}\t{line.rstrip()}\n")
        data = item["data"]
        item["data"] = data[:1200]  # about 1.5 KB of item JSON in all
        medium.write(f"{id}\t{json.dumps(item)}\n")
        item["data"] = data[:1000]
        small.write(f"{id}\t{json.dumps(item)}\n")
PY

(cd "$root" && cargo build --release -q -p intake -p intake-bench)
floor=$root/target/release/intake-floor
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
    rm -rf "${data:-}"
}
trap stop_server EXIT
record() {
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); r.update(machine=sys.argv[2], commit=sys.argv[3], at=sys.argv[4]); print(json.dumps(r))' \
        "$1" "$machine" "$commit" "$stamp" | tee -a "$results"
}

# The Java SE 17 API pages (openjdk-17-doc, fetched by scripts/corpora) as a JSON Lines corpus; prints its path.
jdk_corpus() {
    local corpora jdk=$out/openjdk17-api.jsonl
    corpora=$("$root/scripts/corpora")
    [ -s "$jdk" ] || python3 "$shared/corpus/make_corpus.py" \
        "$corpora/openjdk-17-doc/usr/share/doc/openjdk-17-jre-headless/api" "$jdk" \
        --id-prefix openjdk-17-doc/api/ --source-name openjdk-17-doc > /dev/null
    echo "$jdk"
}

# Every limit of the default organization, set high enough never to refuse.
set_limits() {
    for limit in maximumItems pushApiMaximumDailyCalls pushApiMaximumDailyDocumentLimit \
        pushApiMaximumDailySecurityIdentities pushApiRequestsPerSecond pushApiBurst; do
        curl -sf -X PUT "http://127.0.0.1:$port/rest/organizations/default/limits/$limit" -H "Authorization: Bearer bench-key" \
            -H "Content-Type: application/json" -d '{"value": 1000000000000}' > /dev/null
    done
}

# put ITEMS LABEL [on|floor]: wrk for 10 s against a fresh server (with every limit set when "on"; the floor
# server instead of Intake when "floor").
put() {
    local items=$1 label=$2 limits=${3:-off}
    if [ "$limits" = floor ]; then start_floor; else start_server; fi
    [ "$limits" = on ] && set_limits
    local result
    result=$(wrk -t2 -c64 -d10s -s "$here/put.lua" "http://127.0.0.1:$port" -- "$items" bench-key "$source_id" | tail -1)
    stop_server
    record "$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
lines = [l.split("\t", 1)[1] for l in open(sys.argv[2])]
mean = sum(len(l.encode()) for l in lines) / len(lines)
server = "floor" if sys.argv[4] == "floor" else "intake"
r.update(items=sys.argv[3], mean_body_bytes=round(mean), body_mb_per_s=round(r["requests_per_s"] * mean / 1e6, 1), connections=64, limits=sys.argv[4], server=server)
print(json.dumps(r))' "$result" "$items" "$label" "$limits")"
}

# The floor server on a free port (stopped by stop_server).
start_floor() {
    data=$(mktemp -d)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$floor" --listen "127.0.0.1:$port" > "$data/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 400); do curl -sf "http://127.0.0.1:$port/ready" > /dev/null && break; sleep 0.05; done
    source_id=floor
}
wants put && for run in $(seq 1 "$runs"); do
    put "$out/items.tsv" linux-doc
    put "$out/items-1k.tsv" linux-doc-1k
done

# 10. Intake against the floor server, alternating, same items: the ratio of requests/s (1.5 KB) and MB/s (whole).
# The request path's own cost: without backpressure (RESULTS §19), which would make Intake's side the pace of
# indexing instead.
wants floor && for run in $(seq 1 "$runs"); do
    for pair in "items-1.5k linux-doc-1.5k" "items linux-doc"; do
        read -r items label <<< "$pair"
        INTAKE_MAX_APPLY_LAG_MS=0 put "$out/$items.tsv" "$label" off
        put "$out/$items.tsv" "$label" floor
    done
done

# 15. The shared backends (only when asked: STEPS=shared): a PostgreSQL cluster of the bench's own with its default
#     durability (made with initdb under bench/out, started on a free port) and s3s-fs (installed by
#     scripts/test-servers); each measurement on a new database and bucket prefix.
start_shared() {
    "$root/scripts/test-servers" install
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    pg_data=$out/postgres
    pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    s3_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    rm -rf "$pg_data" "$out/s3" && mkdir -p "$pg_data" "$out/s3/bench" && chown postgres: "$pg_data"
    su postgres -s /bin/sh -c "'$pg_bin/initdb' -D '$pg_data' -A trust -U postgres > /dev/null"
    su postgres -s /bin/sh -c "'$pg_bin/pg_ctl' -D '$pg_data' -l '$pg_data/server.log' -w start \
        -o \"-p $pg_port -c listen_addresses=127.0.0.1 -k '$pg_data' -c max_connections=200\"" > /dev/null
    "$root/target/test-servers/tools/bin/s3s-fs" --host 127.0.0.1 --port "$s3_port" --access-key bench \
        --secret-key bench-secret "$out/s3" > "$out/s3.log" 2>&1 &
    s3s=$!
    stop_shared() {
        kill "$s3s" 2> /dev/null || true
        su postgres -s /bin/sh -c "'$pg_bin/pg_ctl' -D '$pg_data' -m fast -w stop" > /dev/null || true
        rm -rf "$pg_data" "$out/s3"
    }
    new_database() {
        local name="bench_$(date +%s%N)"
        psql -q "postgres://postgres@127.0.0.1:$pg_port/postgres" -c "CREATE DATABASE $name"
        echo "postgres://postgres@127.0.0.1:$pg_port/$name"
    }
}
if wants shared; then
    start_shared
    labelled() { python3 -c 'import json, sys; r = json.load(sys.stdin); r.update(backend=sys.argv[1]); print(json.dumps(r))' "$1"; }
    batch_file=$out/linux-doc.batch.json
    small_corpus=$out/linux-doc-1.5k.jsonl
    python3 - "$out/items-1.5k.tsv" "$small_corpus" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for copy in range(10):
        for line in open(sys.argv[1]):
            item = json.loads(line.split("\t", 1)[1])
            item["documentId"] += f"?copy={copy}"
            out.write(json.dumps(item) + "\n")
PY
    for run in $(seq 1 "$runs"); do
        for items in items-1.5k items; do
            wal_before=$(psql -Atq "postgres://postgres@127.0.0.1:$pg_port/postgres" -c "SELECT pg_current_wal_lsn()")
            INTAKE_MAX_APPLY_LAG_MS=0 INTAKE_DATABASE=$(new_database) put "$out/$items.tsv" "linux-doc${items#items} postgres"
            # PostgreSQL's write-ahead log per accepted item (journal row, item log rows, positions).
            record "$(psql -Atq "postgres://postgres@127.0.0.1:$pg_port/postgres" \
                -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal_before')" | python3 -c '
import json, sys
wal = float(sys.stdin.read()); put = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(json.dumps({"benchmark": "put_wal", "items": put["items"], "requests": put["requests"], "wal_bytes": wal,
    "wal_bytes_per_item": round(wal / max(put["requests"], 1)), "mean_body_bytes": put["mean_body_bytes"]}))' "$results")"
            INTAKE_MAX_APPLY_LAG_MS=0 put "$out/$items.tsv" "linux-doc${items#items} embedded"
        done
        export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
        INTAKE_DATABASE=$(new_database) INTAKE_BLOBS="s3://bench/run$run?endpoint=http://127.0.0.1:$s3_port&presigned=true" start_server
        record "$("$loader" batch "${target[@]}" --corpus "$corpus" --batch-file "$batch_file" --server-pid "$server" |
            labelled "postgres+s3")"
        stop_server
        unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
        start_server
        record "$("$loader" batch "${target[@]}" --corpus "$corpus" --batch-file "$batch_file" --server-pid "$server" |
            labelled embedded)"
        stop_server
        for backend in postgres embedded; do
            if [ "$backend" = postgres ]; then INTAKE_DATABASE=$(new_database) start_server; else start_server; fi
            record "$("$loader" ingest "${target[@]}" --corpus "$small_corpus" --concurrency 64 | labelled "$backend")"
            stop_server
        done
    done
    rm -f "$batch_file" "$small_corpus"
    stop_shared
fi

# 16. Owner failover (only when asked: STEPS=failover): two nodes on the shared backends of step 15, 100,000 small
#     items indexed by the owner of the organization's index, a snapshot published (interval 1 s), the owner
#     SIGKILLed, and the time until the other node finds every item (issue 17's figure).
if wants failover; then
    start_shared
    export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
    for run in $(seq 1 "$runs"); do
        database=$(new_database)
        cluster=(--database "$database" --blobs "s3://bench/failover$run?endpoint=http://127.0.0.1:$s3_port"
            --snapshot-interval-seconds 1 --master-key bench-key)
        owner_data=$(mktemp -d) standby_data=$(mktemp -d)
        owner_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        standby_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        INTAKE_LOG=warn "$intake" serve "${cluster[@]}" --data-dir "$owner_data" --listen "127.0.0.1:$owner_port" \
            > "$owner_data/server.log" 2>&1 &
        owner=$!
        for _ in $(seq 1 400); do curl -sf "http://127.0.0.1:$owner_port/ready" > /dev/null && break; sleep 0.05; done
        INTAKE_LOG=warn "$intake" serve "${cluster[@]}" --data-dir "$standby_data" --listen "127.0.0.1:$standby_port" \
            > "$standby_data/server.log" 2>&1 &
        standby=$!
        for _ in $(seq 1 400); do curl -sf "http://127.0.0.1:$standby_port/ready" > /dev/null && break; sleep 0.05; done
        source_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sourceId"])' "$owner_data/bootstrap.json")
        record "$("$loader" failover --url "http://127.0.0.1:$owner_port" --key bench-key --source "$source_id" \
            --standby-url "http://127.0.0.1:$standby_port" --owner-pid "$owner" --owner-data-dir "$owner_data")"
        wait "$owner" 2> /dev/null || true
        kill "$standby" 2> /dev/null || true
        wait "$standby" 2> /dev/null || true
        rm -rf "$owner_data" "$standby_data"
    done
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    stop_shared
fi

# 8. This build against BASELINE, alternating: each measurement says which binary (and its version) it was.
if wants versus; then
    [ -x "${BASELINE:-}" ] || { echo "STEPS=versus needs BASELINE=/path/to/another/intake binary"; exit 1; }
    this=$intake
    labelled() { python3 -c 'import json, sys; r = json.load(sys.stdin); r.update(build=sys.argv[1]); print(json.dumps(r))' "$1"; }
    for run in $(seq 1 "$runs"); do
        for build in "$this" "$BASELINE"; do
            intake=$build
            label=$( [ "$build" = "$this" ] && echo this || echo baseline )
            for items in items-1k items; do
                put "$out/$items.tsv" "linux-doc${items#items} $label"
            done
            start_server
            record "$("$loader" searchable "${target[@]}" --samples 100 | labelled "$label")"
            stop_server
            start_server
            record "$("$loader" batch "${target[@]}" --corpus "$corpus" --batch-file "$out/versus.batch.json" \
                --server-pid "$server" | labelled "$label")"
            stop_server
        done
    done
    rm -f "$out/versus.batch.json"
    intake=$this
fi

if wants searchable; then
    start_server
    record "$("$loader" searchable "${target[@]}" --samples 100)"
    stop_server
fi

# 2b. Push-to-searchable while 64 connections PUT 1 KB items (wrk, 30 s): 30 probes from one more client, for
#     this build and, when BASELINE is given, that one too (alternating).
wants loaded && for run in $(seq 1 "$runs"); do
    for build in "$intake" ${BASELINE:-}; do
        this_build=$intake
        intake=$build
        start_server
        wrk -t2 -c64 -d30s -s "$here/put.lua" "http://127.0.0.1:$port" -- "$out/items-1k.tsv" bench-key "$source_id" \
            > "$out/loaded-wrk.json" &
        load=$!
        sleep 2
        probes=$("$loader" searchable "${target[@]}" --samples 30)
        wait "$load"
        stop_server
        intake=$this_build
        label=$( [ "$build" = "$intake" ] && echo this || echo baseline )
        record "$(python3 -c '
import json, sys
r = json.loads(sys.argv[1]); load = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
r.update(benchmark="searchable_under_load", build=sys.argv[3], load_requests_per_s=load["requests_per_s"], load_p99_ms=load["p99_ms"])
print(json.dumps(r))' "$probes" "$out/loaded-wrk.json" "$label")"
    done
done

wants ingest && for run in $(seq 1 "$runs"); do
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

# 4. Batch ingestion of linux-doc as one batch (file container → upload → PUT …/documents/batch → 202 → every item
#    searchable) against the same raw tantivy reference, same run; and the batch's synchronous validation speed
#    against sha256sum of the same file, same run.
batch_file=$out/linux-doc.batch.json
wants batch && for run in $(seq 1 "$runs"); do
    start_server
    intake_result=$("$loader" batch "${target[@]}" --corpus "$corpus" --batch-file "$batch_file" --server-pid "$server")
    stop_server
    reference=$(python3 "$shared/corpus/tantivy_reference.py" "$corpus" "$out/tantivy-reference-index" 2)
    sha_s=$( { TIMEFORMAT=%R; time sha256sum "$batch_file" > /dev/null; } 2>&1 )
    record "$(python3 -c '
import json, re, sys
r = json.loads(sys.argv[1])
ref = float(re.search(r"in ([0-9.]+)s", sys.argv[2]).group(1))
sha_mb_per_s = r["mb"] / max(float(sys.argv[3]), 0.01)
r.update(corpus="linux-doc", reference=sys.argv[2].strip(), reference_s=ref,
         ratio_reference_time_over_intake_time=ref / r["all_searchable_s"],
         sha256sum_s=float(sys.argv[3]), sha256sum_mb_per_s=sha_mb_per_s,
         ratio_validate_over_sha256sum=r["validate_mb_per_s"] / sha_mb_per_s)
print(json.dumps(r))' "$intake_result" "$reference" "$sha_s")"
done
rm -rf "$out/tantivy-reference-index" "$batch_file"

# 5. Peak memory of a 250 MB batch: the Java SE 17 API pages (openjdk-17-doc, fetched by scripts/corpora) packed
#    into one 250 MiB container, uploaded, validated and applied; the server's VmHWM against its idle VmRSS.
if wants memory; then
    jdk=$(jdk_corpus)
    batch_file=$out/openjdk17.batch.json
    for run in $(seq 1 "$runs"); do
        start_server
        record "$("$loader" batch "${target[@]}" --corpus "$jdk" --batch-file "$batch_file" --max-bytes 262144000 \
            --server-pid "$server" |
            python3 -c 'import json, sys; r = json.load(sys.stdin); r.update(corpus="openjdk-17-doc 250 MiB"); print(json.dumps(r))')"
        stop_server
    done
    rm -f "$batch_file"
fi

# 9. Security: trimmed search against untrimmed (same queries, same server, alternating), an identity batch until
#    resolvable, and identity resolution in process.
if wants security; then
    jdk=$(jdk_corpus)
    for run in $(seq 1 "$runs"); do
        start_server
        record "$("$loader" trimmed "${target[@]}" --corpus "$jdk")"
        stop_server
        start_server
        set_limits
        record "$("$loader" identity-batch "${target[@]}")"
        stop_server
        record "$("$loader" resolve)"
    done
fi

# 11. The Stream API (only when asked: STEPS=stream): the Java SE 17 API pages as a full load of 8 chunks into a
#     catalog source, against the same 8 files as item batches to a push source, alternating on one server, with
#     its peak memory; then 100,000 partial updates of a numeric field of 10,000 catalog items until visible.
if wants stream; then
    jdk=$(jdk_corpus)
    for run in $(seq 1 "$runs"); do
        start_server
        record "$("$loader" stream-load "${target[@]}" --corpus "$jdk" --server-pid "$server")"
        stop_server
        start_server
        record "$("$loader" partial-updates "${target[@]}")"
        stop_server
    done
fi

# 12. PDF text (only when asked: STEPS=pdf): the R manuals (refman.pdf once: fullrefman.pdf is the same file) and the
#     Debian Administrator's Handbook's PDF figures (its nb-NO translation ships them), converted by Intake's
#     converter in process and by pdftotext, alternating, one file at a time each.
if wants pdf; then
    command -v pdftotext > /dev/null || apt-get install -y -qq --no-install-recommends poppler-utils
    corpora=$("$root/scripts/corpora")
    handbook=$out/debian-handbook-pdf
    if [ ! -d "$handbook" ]; then
        mkdir -p "$handbook.partial"
        for figure in "$corpora"/debian-handbook/usr/share/doc/debian-handbook/html/*/images/*.pdf.gz; do
            gunzip -c "$figure" > "$handbook.partial/$(basename "$figure" .gz)"
        done
        mv "$handbook.partial" "$handbook"
    fi
    manuals=$corpora/r-doc-pdf/usr/share/R/doc/manual
    record "$("$loader" pdf-text --rounds "$runs" "$manuals"/R-*.pdf "$manuals/refman.pdf" "$handbook"/*.pdf)"
fi

# 13. Search (only when asked: STEPS=search): linux-doc, 300 two-word queries from its titles at 16 connections —
#     10 results with excerpts, 1 result, counting only — against tantivy's Python binding running the same queries
#     on the reference index of the same pages (10 hits with their stored fields, 16 threads), same run; then the
#     Java SE 17 API pages with three facets (section, filetype, size ranges) against without, alternating rounds.
if wants search; then
    jdk=$(jdk_corpus)
    python3 "$shared/corpus/tantivy_reference.py" "$corpus" "$out/tantivy-search-index" 2 > /dev/null
    for run in $(seq 1 "$runs"); do
        start_server
        record "$("$loader" search-load "${target[@]}" --corpus "$corpus" --queries-out "$out/search-queries.txt")"
        stop_server
        record "$(python3 "$here/search_reference.py" "$out/tantivy-search-index" "$out/search-queries.txt" 16 3 \
            "$out/search-queries.txt.known")"
        start_server
        record "$("$loader" search-load "${target[@]}" --corpus "$jdk" --queries-out "$out/search-queries-jdk.txt" --facets)"
        stop_server
    done
    rm -rf "$out/tantivy-search-index"
fi

# 14. The console (only when asked: STEPS=console): one server loaded with the Java SE 17 API pages and 100,000
#     small items; each page loaded RUNS+1 times in Chromium (the first a warm-up), time to its content.
if wants console; then
    jdk=$(jdk_corpus)
    INTAKE_BIN=$intake "$root/browser/run.sh" --install-only
    start_server
    "$root/browser/.venv/bin/python" "$here/console_figures.py" "http://127.0.0.1:$port" bench-key "$source_id" \
        "$jdk" "$runs" | while read -r line; do record "$line"; done
    stop_server
fi

# 6. Limit checks on the single-item PUT path: off and on alternate, so both see the same machine.
if wants limits; then
    for run in $(seq 1 "$runs"); do
        put "$out/items-1k.tsv" linux-doc-1k off
        put "$out/items-1k.tsv" linux-doc-1k on
    done
    # The same cost measured alone, without the noise of the machine: nanoseconds per PUT in the checks.
    record "$("$loader" limit-checks)"
fi

# 7. Pushing a folder: `intake push` of the 3,185 linux-doc pages against the official Node SDK's
#    batchUpdateDocumentsFromFiles (what the Coveo CLI's source:push:add does) on the same pages, as the JSON files
#    it reads (50 documents each, made from the corpus JSONL). Each on a fresh server, until every page is
#    searchable; both run in the same loop, so they see the same machine.
if wants push; then
    [ -d "$root/compat/node_modules/@coveo/push-api-client" ] ||
        (cd "$root/compat" && npm ci --no-audit --no-fund --loglevel=error)
    json_folder=$out/linux-doc-json
    [ -d "$json_folder" ] || python3 - "$corpus" "$json_folder" <<'PY'
import json, os, sys
corpus, folder = sys.argv[1], sys.argv[2]
os.makedirs(folder)
docs = [json.loads(line) for line in open(corpus)]
keep = ("documentId", "title", "fileExtension", "data")
for n in range(0, len(docs), 50):
    with open(f"{folder}/docs-{n // 50:03}.json", "w") as f:
        json.dump([{k: d[k] for k in keep if k in d} for d in docs[n:n + 50]], f)
PY
    html=/usr/share/doc/linux-doc-6.1/html
    # Both inputs read once, so both runs find them in the page cache.
    find "$html" "$json_folder" -type f -exec cat {} + > /dev/null
    for run in $(seq 1 "$runs"); do
        start_server
        node_result=$(PUSH_URL="http://127.0.0.1:$port" NODE_PATH="$root/compat/node_modules" \
            "$loader" until-searchable "${target[@]}" --count 3185 -- \
            node --require "$root/compat/coveo_redirect.cjs" "$here/push_node.cjs" bench-key default "$source_id" "$json_folder")
        stop_server
        start_server
        intake_result=$("$loader" until-searchable "${target[@]}" --count 3185 -- \
            "$intake" push "$html" --include '*.html' --quiet --url "http://127.0.0.1:$port" --api-key bench-key \
            --org default --source "$source_id")
        stop_server
        record "$(python3 -c '
import json, sys
node, intake = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"benchmark": "push_folder", "docs": 3185, "node_sdk_command_s": node["command_s"],
    "node_sdk_all_searchable_s": node["all_searchable_s"], "intake_push_command_s": intake["command_s"],
    "intake_push_all_searchable_s": intake["all_searchable_s"],
    "ratio_node_time_over_intake_time": node["all_searchable_s"] / intake["all_searchable_s"]}))' "$node_result" "$intake_result")"
    done
fi
