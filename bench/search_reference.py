"""The raw reference for search: tantivy's own Python binding searching the index tantivy_reference.py built
from the same corpus, with the same queries as Intake (one per line), 10 hits each with their stored fields
read, from THREADS threads; no HTTP, no permissions, no excerpts.

    python3 search_reference.py INDEX_DIR QUERIES THREADS ROUNDS

Prints one JSON object: queries/s over the rounds after a warm-up pass, p50 and p99 in ms.
"""
import concurrent.futures
import json
import sys
import time

import tantivy

index_dir, queries_file, threads, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
index = tantivy.Index.open(index_dir)
index.reload()
searcher = index.searcher()
queries = [line.strip() for line in open(queries_file) if line.strip()]
parsed = [index.parse_query(q, ["title", "data"]) for q in queries]


def run(query):
    began = time.perf_counter()
    hits = searcher.search(query, 10).hits
    for _, address in hits:
        searcher.doc(address)
    return time.perf_counter() - began


with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    list(pool.map(run, parsed))  # warm-up
    took, started = [], time.perf_counter()
    for _ in range(rounds):
        took.extend(pool.map(run, parsed))
    wall = time.perf_counter() - started
took.sort()
print(json.dumps({
    "benchmark": "search-tantivy-reference",
    "queries": len(queries),
    "threads": threads,
    "queries_per_s": len(took) / wall,
    "p50_ms": took[len(took) // 2] * 1000,
    "p99_ms": took[int((len(took) - 1) * 0.99)] * 1000,
}))
