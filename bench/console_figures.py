"""The console's figures (issue 13): each page's first render in Debian's Chromium on a data directory holding the
Java SE 17 API pages (10,137 items) and 100,000 more log entries, and the size of its files, compressed.

Usage: console_figures.py URL MASTER_KEY SOURCE_ID JDK_JSONL LOADS
Prints one JSON object per page (median and max of LOADS full page loads, in ms from navigation start to the
page's `intake:ready` performance mark, i.e. its content shown) and one for the assets."""

import gzip
import json
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "browser"))
from common import chromium  # noqa: E402  (the browser tests' Chromium through Selenium)

URL, KEY, SOURCE, JDK, LOADS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ORG = "default"
BATCH_BYTES = 100 * 1024 * 1024


def call(method, path, body=None, raw=None, headers=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(path if path.startswith("http") else URL + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {KEY}")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=600) as response:
        text = response.read()
        return json.loads(text) if text and response.headers.get_content_type() == "application/json" else text


def push_batch(items):
    container = call("POST", f"/push/v1/organizations/{ORG}/files")
    payload = json.dumps({"addOrUpdate": items}).encode()
    upload = urllib.request.Request(container["uploadUri"], data=payload, method="PUT")
    for name, value in container["requiredHeaders"].items():
        upload.add_header(name, value)
    urllib.request.urlopen(upload, timeout=600).read()
    call("PUT", f"/push/v1/organizations/{ORG}/sources/{SOURCE}/documents/batch?fileId={container['fileId']}")


def load():
    batch, size, total = [], 0, 0
    for line in open(JDK):
        item = json.loads(line)
        if len(line) > 5 * 1024 * 1024:
            continue  # one page holds more than 5 MiB of inline data (see RESULTS §12)
        batch.append(item)
        size += len(line)
        if size > BATCH_BYTES:
            push_batch(batch)
            total += len(batch)
            batch, size = [], 0
    push_batch(batch)
    total += len(batch)
    for start in range(0, 100_000, 25_000):
        push_batch([{"documentId": f"file://log/{i}", "title": f"Log filler {i}", "data": f"filler {i}"}
                    for i in range(start, start + 25_000)])
    total += 100_000
    deadline = time.time() + 900
    while time.time() < deadline:
        found = call("POST", f"/rest/search/v2?organizationId={ORG}", {"numberOfResults": 0, "viewAllContent": True})
        if found["totalCount"] >= total:
            return total
        time.sleep(0.5)
    raise SystemExit(f"only {found['totalCount']} of {total} items became searchable")


def asset_sizes():
    page = call("GET", "/", headers={"Accept-Encoding": "gzip"})
    total_raw = total_gzip = 0
    for name in ["index.html", "app.css", "app.js", "api.js", "dom.js", "overview.js", "content.js", "logs.js",
                 "errors.js", "admin.js", "icon.svg"]:
        path = "/" if name == "index.html" else f"/console/{name}"
        request = urllib.request.Request(URL + path, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request) as response:
            body = response.read()
            assert response.headers["Content-Encoding"] == "gzip", name
        total_gzip += len(body)
        total_raw += len(gzip.decompress(body))
    assert page
    with urllib.request.urlopen(URL + "/errors") as response:
        catalog = response.read()
    return {"bench": "console-assets", "files": 11, "bytes": total_raw, "gzip_bytes": total_gzip,
            "errors_catalog_json_bytes": len(catalog), "errors_catalog_gzip_bytes": len(gzip.compress(catalog))}


def first_renders(total):
    item = call("POST", f"/rest/search/v2?organizationId={ORG}", {"q": "ArrayList", "viewAllContent": True})["results"][0]
    pages = {
        "overview": f"#/{ORG}/overview",
        "overview-day": f"#/{ORG}/overview?window=day",
        "content": f"#/{ORG}/content",
        "content-query": f"#/{ORG}/content?q=concurrent%20map",
        "item": f"#/{ORG}/item/{urllib.request.quote(item['uniqueId'], safe='')}",
        "logs": f"#/{ORG}/logs",
        "errors": f"#/{ORG}/errors",
        "admin": f"#/{ORG}/admin",
    }
    driver = chromium(1000)
    try:
        driver.get(URL + "/#/signin")
        driver.execute_script("sessionStorage.setItem('intake.key', arguments[0])", KEY)
        for name, hash_path in pages.items():
            times = []
            for _ in range(LOADS + 1):  # the first load warms the server and the browser's cache
                driver.get("about:blank")
                driver.get(URL + "/" + hash_path)
                deadline = time.time() + 30
                ready = None
                while ready is None and time.time() < deadline:
                    ready = driver.execute_script(
                        "const m = performance.getEntriesByName('intake:ready'); return m.length ? m[0].startTime : null")
                    time.sleep(0.02)
                assert ready is not None, f"{name} never rendered"
                times.append(ready)
            times = times[1:]
            print(json.dumps({"bench": "console-first-render", "page": name, "items": total, "loads": LOADS,
                              "median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}))
    finally:
        driver.quit()


total = load()
first_renders(total)
print(json.dumps(asset_sizes()))
