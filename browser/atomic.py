"""A Coveo Atomic search page against a real Intake, in Debian's Chromium driven by Selenium: type a query, see
results, click a facet value, page, open a quickview. Screenshots are kept in target/browser/ as artifacts.

Environment: INTAKE_URL, INTAKE_KEY (master key), INTAKE_ORG; the page is examples/atomic/ (its node_modules
installed), served here on another loopback port, so every call to Intake is cross-origin, as on a real site.
"""

import datetime
import functools
import http.server
import json
import threading
import time
import urllib.parse

from selenium.webdriver.common.keys import Keys

from common import INTAKE, ORG, ROOT, call, chromium, screenshot, wait

PAGE = ROOT / "examples" / "atomic"
AUTHORS = ["Ada", "Grace", "Linus"]

# Every element matching a selector, through every open shadow root (Atomic's components use them). A selector
# `host >>> inner` looks for `inner` inside the elements matching `host` (and their shadow roots); `text` keeps
# the elements whose text or aria-label holds it.
DEEP = """
const [selector, text] = arguments;
const walk = (root, sel, found) => {
  root.querySelectorAll(sel).forEach((el) => found.push(el));
  root.querySelectorAll('*').forEach((el) => { if (el.shadowRoot) walk(el.shadowRoot, sel, found); });
  return found;
};
let scopes = [document];
for (const part of selector.split(' >>> ')) {
  const next = [];
  for (const scope of scopes) {
    for (const el of walk(scope, part, [])) if (!next.includes(el)) next.push(el);
    if (scope.shadowRoot) for (const el of walk(scope.shadowRoot, part, [])) if (!next.includes(el)) next.push(el);
  }
  scopes = next;
}
const label = (el) => (el.innerText || el.textContent || '') + ' ' + (el.getAttribute('aria-label') || '');
return text ? scopes.filter((el) => label(el).includes(text)) : scopes;
"""


def library():
    """Twelve items: authors, a declared LONG rank, dates from a week to five years old, two kinds of text."""
    source = call("POST", f"/rest/organizations/{ORG}/sources", {"name": "atomic page", "sourceVisibility": "SHARED"})
    call("POST", f"/rest/organizations/{ORG}/indexes/fields/batch/create", [{"name": "rank", "type": "LONG"}])
    now = datetime.datetime.now(datetime.timezone.utc)
    ages = [7, 14, 21, 60, 120, 200, 300, 400, 700, 1000, 1400, 1800]
    for i, days in enumerate(ages):
        topic = "kernel" if i % 2 == 0 else "network"
        item = {
            "title": f"{topic.capitalize()} guide {i}",
            "data": f"<html><body><p>The {topic} guide number {i} explains the {topic} in depth.</p></body></html>",
            "fileExtension": ".html",
            "author": AUTHORS[i % 3],
            "rank": i * 10,
            "date": (now - datetime.timedelta(days=days)).isoformat(),
        }
        uri = urllib.parse.quote(f"https://example.com/guide/{i}", safe="")
        call("PUT", f"/push/v1/organizations/{ORG}/sources/{source['id']}/documents?documentId={uri}", item)
    deadline = time.time() + 20
    while time.time() < deadline:
        found = call("POST", f"/rest/search/v2?organizationId={ORG}", {"aq": "@author", "numberOfResults": 0})
        if found["totalCount"] == 12:
            return
        time.sleep(0.1)
    raise AssertionError("the library never became searchable")


def serve_page():
    """Serves examples/atomic on a free loopback port; returns its URL."""
    handler = functools.partial(QuietHandler, directory=str(PAGE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Page:
    def __init__(self, driver):
        self.driver = driver

    def deep(self, selector, text=None):
        return self.driver.execute_script(DEEP, selector, text)

    def wait(self, what, check, timeout=20):
        return wait(self.driver, what, check, timeout, "atomic-failure")

    def text(self, selector):
        """The visible text of the elements matching `selector`, shadow content included."""
        return " ".join(self.driver.execute_script(
            "return (arguments[0].shadowRoot || arguments[0]).textContent", el) for el in self.deep(selector))

    def summary(self):
        return self.text("atomic-query-summary")

    def result_titles(self):
        return [el.get_attribute("textContent").strip() for el in self.deep("atomic-result-link a")]

    def shot(self, name):
        screenshot(self.driver, f"atomic-{name}")


def main():
    library()
    key = call("POST", f"/rest/organizations/{ORG}/apikeys", {
        "displayName": "atomic page",
        "privileges": [{"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY", "targetId": "*"}],
    })["value"]
    (PAGE / "config.json").write_text(json.dumps({
        "proxyBaseUrl": f"{INTAKE}/rest/search/v2", "organizationId": ORG, "accessToken": key,
    }))
    driver = chromium()
    page = Page(driver)
    try:
        driver.get(serve_page())
        page.wait("the first results", lambda: len(page.deep("atomic-result")) == 10)
        page.wait("the total", lambda: "12" in page.summary())
        page.shot("first-search")

        # Facets computed by Intake: a specific facet, a numeric range facet, a date (timeframe) facet.
        page.wait("the author facet", lambda: page.deep("atomic-facet >>> [part~='value-checkbox']", "Ada"))
        page.wait("the rank facet", lambda: page.deep("atomic-numeric-facet >>> [part~='value-checkbox']"))
        page.wait("the date facet", lambda: page.deep("atomic-timeframe-facet >>> [part~='value-link']")
                  or page.deep("atomic-timeframe-facet >>> [part~='value-checkbox']"))

        # Type a query.
        box = page.wait("the search box", lambda: [el for el in page.deep("atomic-search-box >>> textarea") if el.is_displayed()])[0]
        box.click()
        box.send_keys("kernel", Keys.ENTER)
        page.wait("6 kernel results", lambda: "6" in page.summary() and len(page.deep("atomic-result")) == 6)
        assert all(title.startswith("Kernel") for title in page.result_titles()), page.result_titles()
        page.shot("query")
        box.send_keys(Keys.CONTROL, "a", Keys.DELETE, Keys.ENTER)
        page.wait("all results again", lambda: "12" in page.summary())

        # Click a facet value: Grace's four items.
        page.deep("atomic-facet >>> [part~='value-checkbox']", "Grace")[0].click()
        page.wait("Grace's 4 items", lambda: len(page.deep("atomic-result")) == 4 and "4" in page.summary())
        page.shot("facet")
        page.wait("the clear button", lambda: page.deep("atomic-facet >>> [part~='clear-button']"))[0].click()
        page.wait("all results again", lambda: len(page.deep("atomic-result")) == 10 and "12" in page.summary())

        # Page to the second page.
        page.wait("page 2", lambda: page.deep("atomic-pager >>> [part~='page-button']", "2"))[0].click()
        page.wait("the last two results", lambda: len(page.deep("atomic-result")) == 2)
        page.shot("page-2")

        # Open a quickview: its frame shows the item's text from Intake, the query's words marked.
        box.send_keys("network", Keys.ENTER)
        page.wait("network results", lambda: len(page.deep("atomic-result")) == 6)
        page.wait("a quickview button", lambda: page.deep("atomic-quickview >>> button"))[0].click()
        # Atomic fetches the page from Intake's /html endpoint and writes it into the modal's frame.
        frame = page.wait("the quickview frame", lambda: page.deep("atomic-quickview-modal >>> iframe"))[0]
        page.shot("quickview")
        driver.switch_to.frame(frame)
        page.wait("the item's text", lambda: "network guide" in driver.find_element("tag name", "body").text.lower())
        highlighted = driver.find_elements("css selector", "span.coveo-highlight")
        assert highlighted and highlighted[0].text.lower() == "network", [h.text for h in highlighted]
        driver.switch_to.default_content()
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        print("atomic: results, query, facets (specific, numeric, date), facet click, pager, quickview: ok")
    finally:
        driver.quit()
        (PAGE / "config.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
