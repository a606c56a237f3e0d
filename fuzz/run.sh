#!/usr/bin/env bash
# Builds the fuzz targets and runs each in turn; stops at the first crash, leaving it in artifacts/<target>/.
#
#   fuzz/run.sh                    every target for $FUZZ_SECONDS seconds each (default 30; CI's short run)
#   FUZZ_RUNS=10000000 fuzz/run.sh search    one target for ten million executions (the long runs)
#
# Stable Rust, no sanitizer (-s none): the targets are Rust, and a panic, a hang (-timeout) or memory past
# -rss_limit_mb is what they look for. New inputs that reach new code are added to corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked --version 0.13.2
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
if [ -n "${FUZZ_RUNS:-}" ]; then budget=(-runs="$FUZZ_RUNS"); else budget=(-max_total_time="${FUZZ_SECONDS:-30}"); fi
cargo fuzz build -O -s none
for target in "${targets[@]}"; do
    echo "== $target"
    cargo fuzz run -O -s none "$target" -- "${budget[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
        | grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|panicked|ERROR|SUMMARY|Test unit written' \
        || { echo "fuzz target $target failed"; exit 1; }
    [ -z "$(ls -A "artifacts/$target" 2> /dev/null)" ] || { echo "fuzz target $target found a crash: fuzz/artifacts/$target"; exit 1; }
done
