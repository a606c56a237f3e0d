"""The raw reference for search: tantivy's own Python binding searching the index tantivy_reference.py built
from the same corpus, with the same queries as Intake (one per line), 10 hits each with their stored fields
read, from THREADS threads; no HTTP, no permissions, no excerpts. With the known-item file Intake wrote
(`documentId<TAB>query`), also where each page comes for its own title's words with tantivy's defaults (the
query parser over title and data, words ORed, BM25, no boost).

    python3 search_reference.py INDEX_DIR QUERIES THREADS ROUNDS [KNOWN_ITEMS]

Prints one JSON object: queries/s over the rounds after a warm-up pass, p50 and p99 in ms, and the known-item
success at 1 and mean reciprocal rank within 10.
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
known = {}
if len(sys.argv) > 5:
    pairs = [line.rstrip("\n").split("\t", 1) for line in open(sys.argv[5]) if "\t" in line]
    first, reciprocal = 0, 0.0
    for document_id, q in pairs:
        hits = searcher.search(index.parse_query(q, ["title", "data"]), 10).hits
        ids = [searcher.doc(address)["documentId"][0] for _, address in hits]
        if document_id in ids:
            rank = ids.index(document_id)
            first += rank == 0
            reciprocal += 1 / (rank + 1)
    known = {"known_items": {"queries": len(pairs), "success_at_1": first / len(pairs), "mrr_at_10": reciprocal / len(pairs)}}
print(json.dumps({**known,
    "benchmark": "search-tantivy-reference",
    "queries": len(queries),
    "threads": threads,
    "queries_per_s": len(took) / wall,
    "p50_ms": took[len(took) // 2] * 1000,
    "p99_ms": took[int((len(took) - 1) * 0.99)] * 1000,
}))
