"""The console (`intake serve` at /) in Debian's Chromium driven by Selenium, against a real Intake: sign in, the
overview's counts against the API, a pushed item and its log appearing live, a hostile title shown as text,
keys created and deleted, a fault rule making a push fail, a REJECTED item explained, a restricted key seeing
less; and axe-core's accessibility check of every page (no serious or critical violation). Screenshots are
kept in target/browser/ as artifacts.

Environment: INTAKE_URL, INTAKE_KEY (master key), INTAKE_ORG (see common.py)."""

import time
import urllib.parse

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from common import INTAKE, MASTER, ORG, ROOT, answer, call, chromium, screenshot, wait

AXE = (ROOT / "browser" / "node_modules" / "axe-core" / "axe.min.js").read_text()
HOSTILE = "<script>document.body.dataset.pwned='script'</script>\"><img src=x onerror=\"document.body.dataset.pwned='img'\">"
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] }).then(
  (r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }))),
  (e) => done([{ id: 'axe failed', impact: 'critical', help: String(e), nodes: [] }]));
"""


class Console:
    def __init__(self, driver):
        self.driver = driver
        self.violations = {}

    def wait(self, what, check, timeout=15):
        return wait(self.driver, what, check, timeout, "console-failure")

    def open(self, hash_path):
        """Goes to `#/…` and waits until the page has rendered it (or what it redirected to)."""
        self.driver.execute_script("location.hash = arguments[0]", hash_path)
        return self.ready()

    def ready(self):
        return self.wait("the page", lambda: self.driver.execute_script(
            "const r = document.getElementById('main').dataset.ready; return r !== undefined && r === (location.hash || '#/') && r"))

    def main_text(self):
        return self.driver.find_element(By.ID, "main").text

    def nav_text(self):
        return self.driver.find_element(By.ID, "nav").text

    def sign_in(self, key):
        self.driver.get(INTAKE + "/#/signin")
        self.ready()
        box = self.driver.find_element(By.NAME, "key")
        box.clear()
        box.send_keys(key)
        self.driver.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
        time.sleep(0.1)
        return self.ready()

    def check_accessibility(self, name):
        self.driver.execute_script(AXE)
        found = self.driver.execute_async_script(RUN_AXE)
        self.violations[name] = [v for v in found if v["impact"] in ("serious", "critical")]
        screenshot(self.driver, f"console-{name}")

    def by_label(self, label):
        return self.driver.find_element(By.CSS_SELECTOR, f"[aria-label='{label}']")

    def pwned(self):
        return self.driver.execute_script("return document.body.dataset.pwned || null")


def items_url(source, document_id, extra=""):
    return f"/push/v1/organizations/{ORG}/sources/{source}/documents?documentId={urllib.parse.quote(document_id, safe='')}{extra}"


def searchable(document_id):
    deadline = time.time() + 15
    while time.time() < deadline:
        found = call("POST", f"/rest/search/v2?organizationId={ORG}", {"aq": f'@uri=="{document_id}"', "viewAllContent": True})
        if found["totalCount"]:
            return found["results"][0]
        time.sleep(0.05)
    raise AssertionError(f"{document_id} never became searchable")


def main():
    sources = call("GET", f"/rest/organizations/{ORG}/sources")
    source = sources[0]
    for i in range(5):
        call("PUT", items_url(source["id"], f"file://console/{i}"), {"title": f"Console item {i}", "data": f"console text {i}"})
    searchable("file://console/4")
    driver = chromium(1400)
    c = Console(driver)
    try:
        # A key Intake does not know: the sign-in page says so, with the catalog's code.
        c.sign_in("not-a-key")
        assert "INVALID_TOKEN" in c.main_text() and "Sign in" in c.main_text(), c.main_text()
        c.check_accessibility("signin")

        # The master key: the overview, its counts as the API gives them.
        assert c.sign_in(MASTER).endswith("/overview"), driver.current_url
        assert "ACTIVE" in c.main_text()
        for s in sources:
            total = call("POST", f"/rest/search/v2?organizationId={ORG}", {"aq": f'@source=="{s["name"]}"', "viewAllContent": True, "numberOfResults": 0})["totalCount"]
            shown = c.wait("the item count", lambda: driver.find_element(By.CSS_SELECTOR, f"[data-testid='items-{s['id']}']").text)
            assert shown == f"{total:,}", (s["name"], shown, total)
        activity = call("GET", f"/logs/v1/organizations/{ORG}/activity")
        shown = driver.find_element(By.CSS_SELECTOR, "[data-testid='total-COMPLETED']").text
        assert shown == f"{activity['totals'].get('COMPLETED', 0):,}", (shown, activity["totals"])
        assert driver.find_element(By.CSS_SELECTOR, "svg.chart").get_attribute("aria-label").startswith("Item outcomes")
        c.check_accessibility("overview")

        # Pause and resume from the overview; the API agrees in between.
        driver.find_element(By.XPATH, "//button[text()='Pause']").click()
        c.wait("PAUSED", lambda: driver.find_element(By.CSS_SELECTOR, "[data-testid='pause-state']").text == "PAUSED")
        status, _, body = answer("PUT", items_url(source["id"], "file://console/paused"), {"data": "x"})
        assert (status, body["errorCode"]) == (400, "ORGANIZATION_IS_PAUSED"), (status, body)
        driver.find_element(By.XPATH, "//button[text()='Resume']").click()
        c.wait("ACTIVE", lambda: driver.find_element(By.CSS_SELECTOR, "[data-testid='pause-state']").text == "ACTIVE")

        # The live log tail: an item pushed through the API appears without a reload.
        c.open(f"#/{ORG}/logs?tail=1")
        assert driver.find_element(By.ID, "tail").is_selected()
        call("PUT", items_url(source["id"], "file://console/live"), {"title": "Live", "data": "live text"})
        pushed_at = time.time()
        c.wait("the live item's log", lambda: "file://console/live" in c.main_text())
        print(f"console: the live item's COMPLETED entry showed {time.time() - pushed_at:.2f} s after its 202")
        c.check_accessibility("logs")

        # A hostile title and text: shown as text, nothing runs.
        call("PUT", items_url(source["id"], "file://console/hostile"), {"title": HOSTILE, "data": f"hostile body {HOSTILE}"})
        searchable("file://console/hostile")
        c.open(f"#/{ORG}/content?q=hostile")
        link = c.wait("the hostile result", lambda: driver.find_element(By.CSS_SELECTOR, ".hit h3 a"))
        assert link.text == HOSTILE, link.text
        assert not driver.find_elements(By.CSS_SELECTOR, "#main img"), "markup from an item became an element"
        c.check_accessibility("content")
        link.click()
        c.ready()
        c.wait("the item's title", lambda: driver.find_element(By.CSS_SELECTOR, "h1.item-title").text == HOSTILE)
        c.wait("its history", lambda: "COMPLETED" in c.main_text() and "History" in c.main_text())
        c.wait("its stored text", lambda: "hostile body <script>" in driver.find_element(By.CSS_SELECTOR, "pre.stored").text)
        assert c.pwned() is None, f"item content ran: {c.pwned()}"
        assert not driver.find_elements(By.CSS_SELECTOR, "#main img, #main script")
        c.check_accessibility("item")

        # A REJECTED item (older than a delete-older-than), its log entry linked to the explanation.
        call("DELETE", f"/push/v1/organizations/{ORG}/sources/{source['id']}/documents/olderthan?orderingId=1000")
        call("PUT", items_url(source["id"], "file://console/too-old", "&orderingId=500"), {"data": "old"})
        c.open(f"#/{ORG}/logs?result=REJECTED&tail=1")
        badge = c.wait("the REJECTED entry", lambda: driver.find_element(By.CSS_SELECTOR, "a.badge.r-rejected"))
        assert "file://console/too-old" in c.main_text()
        badge.click()
        c.ready()
        explanation = c.wait("the explanation", lambda: driver.find_element(By.ID, "result-REJECTED"))
        assert explanation.get_attribute("open") is not None and "refused before indexing" in explanation.text, explanation.text

        # The errors page explains a pasted answer.
        c.open(f"#/{ORG}/errors")
        pasted = '{"statusCode": 412, "errorCode": "SOURCE_DOES_NOT_EXIST", "message": "Source \'x\' does not exist."}'
        driver.find_element(By.NAME, "response").send_keys(pasted)
        driver.find_element(By.XPATH, "//button[text()='Explain']").click()
        explained = c.wait("the explanation", lambda: driver.find_element(By.CSS_SELECTOR, "[data-testid='explained']"))
        assert "412 SOURCE_DOES_NOT_EXIST" in explained.text and "Reproduce it" in explained.text, explained.text
        c.check_accessibility("errors")

        # Keys: create one (its value shown once, and working), then delete it (and it stops working).
        c.open(f"#/{ORG}/admin")
        keys = driver.find_element(By.ID, "admin-keys")
        keys.find_element(By.NAME, "displayName").send_keys("console key")
        Select(keys.find_element(By.NAME, "privileges")).select_by_value("search")
        keys.find_element(By.XPATH, ".//button[text()='Create key']").click()
        value = c.wait("the new key's value", lambda: driver.find_element(By.CSS_SELECTOR, "[data-testid='new-key']").text)
        status, _, _ = answer("POST", f"/rest/search/v2?organizationId={ORG}", {"q": "console"}, key=value)
        assert status == 200, status
        c.check_accessibility("admin")
        c.by_label("Delete key console key").click()
        # Asked twice: Cancel keeps the key, Yes deletes it.
        c.wait("the question", lambda: "Delete key console key?" in driver.find_element(By.ID, "admin-keys").text)
        driver.find_element(By.ID, "admin-keys").find_element(By.XPATH, ".//button[text()='Cancel']").click()
        assert any(k["displayName"] == "console key" for k in call("GET", f"/rest/organizations/{ORG}/apikeys"))
        c.by_label("Delete key console key").click()
        c.wait("the confirmation", lambda: c.by_label("Confirm: Delete key console key")).click()
        c.wait("the key gone", lambda: "console key" not in driver.find_element(By.ID, "admin-keys").text)
        status, _, body = answer("POST", f"/rest/search/v2?organizationId={ORG}", {"q": "console"}, key=value)
        assert (status, body["errorCode"]) == (401, "INVALID_TOKEN"), (status, body)
        # With privileges written out: exactly those.
        keys = driver.find_element(By.ID, "admin-keys")
        keys.find_element(By.NAME, "displayName").send_keys("logs reader")
        Select(keys.find_element(By.NAME, "privileges")).select_by_value("custom")
        keys.find_element(By.NAME, "custom").send_keys(f"PLATFORM:LOGS:VIEW, PLATFORM:SOURCE:VIEW:{source['id']}")
        keys.find_element(By.XPATH, ".//button[text()='Create key']").click()
        c.wait("the logs reader's value", lambda: driver.find_element(By.CSS_SELECTOR, "[data-testid='new-key']").text != value)
        created = next(k for k in call("GET", f"/rest/organizations/{ORG}/apikeys") if k["displayName"] == "logs reader")
        held = sorted((p["targetDomain"], p.get("type"), p["targetId"]) for p in created["privileges"])
        assert held == [("LOGS", "VIEW", "*"), ("SOURCE", "VIEW", source["id"])], held

        # A fault rule added in the console makes a push fail; removed, pushes succeed again.
        faults = driver.find_element(By.ID, "admin-faults")
        count = faults.find_element(By.NAME, "count")
        count.clear()
        count.send_keys("2")
        faults.find_element(By.NAME, "route").send_keys("*/documents")
        faults.find_element(By.XPATH, ".//button[text()='Add rule']").click()
        c.wait("the rule", lambda: "*/documents" in driver.find_element(By.ID, "admin-faults").text)
        status, headers, body = answer("PUT", items_url(source["id"], "file://console/faulty"), {"data": "x"})
        assert (status, body["errorCode"]) == (503, "SERVICE_UNAVAILABLE") and headers["x-intake-fault"], (status, body)
        rule = call("GET", f"/rest/organizations/{ORG}/faults")[0]
        assert (rule["fired"], rule["remaining"]) == (1, 1), rule
        c.by_label(f"Remove fault rule {rule['id']}").click()
        c.wait("no rule", lambda: "No rule" in driver.find_element(By.ID, "admin-faults").text)
        status, _, _ = answer("PUT", items_url(source["id"], "file://console/faulty"), {"data": "x"})
        assert status == 202, status

        # A limit set in the console is the organization's limit for the API, and a reset takes it back.
        limits = driver.find_element(By.ID, "admin-limits")
        box = limits.find_element(By.CSS_SELECTOR, "input[name='maximumItems']")
        box.clear()
        box.send_keys("123456")
        box.find_element(By.XPATH, "following-sibling::button[text()='Set']").click()
        c.wait("the limit set", lambda: call("GET", f"/rest/organizations/{ORG}/limits/maximumItems")["limit"] == 123456)
        c.wait("the limit shown", lambda: "123,456" in driver.find_element(By.ID, "admin-limits").text)
        c.by_label("Reset maximumItems").click()
        c.wait("the limit reset", lambda: call("GET", f"/rest/organizations/{ORG}/limits/maximumItems")["limit"] is None)

        # A source created in the console exists for the API; deleted in the console, it is gone.
        sources_box = driver.find_element(By.ID, "admin-sources")
        sources_box.find_element(By.NAME, "name").send_keys("console source")
        Select(sources_box.find_element(By.NAME, "sourceType")).select_by_value("CATALOG")
        sources_box.find_element(By.XPATH, ".//button[text()='Create source']").click()
        c.wait("the new source", lambda: any(s["name"] == "console source" and s["sourceType"] == "CATALOG"
                                              for s in call("GET", f"/rest/organizations/{ORG}/sources")))
        c.wait("its delete button", lambda: c.by_label("Delete source console source")).click()
        c.wait("the confirmation", lambda: c.by_label("Confirm: Delete source console source")).click()
        c.wait("the source gone", lambda: all(s["name"] != "console source" for s in call("GET", f"/rest/organizations/{ORG}/sources")))

        # Resolving a user to the groups it belongs to, both pushed through the Push API.
        call("PUT", f"/rest/organizations/{ORG}/securityproviders/console-groups", {"id": "console-groups", "type": "EXPANDED"})
        call("PUT", f"/push/v1/organizations/{ORG}/providers/console-groups/permissions", {
            "identity": {"name": "readers", "type": "GROUP"}, "members": [{"name": "ada@example.com", "type": "USER"}]})
        call("PUT", f"/push/v1/organizations/{ORG}/providers/console-groups/permissions", {
            "identity": {"name": "ada@example.com", "type": "USER"}})
        c.open(f"#/{ORG}/admin")
        resolve = c.wait("the resolve form", lambda: driver.find_element(By.ID, "admin-resolve"))
        resolve.find_element(By.NAME, "user").send_keys("ada@example.com")
        provider = resolve.find_element(By.NAME, "provider")
        provider.clear()
        provider.send_keys("console-groups")
        resolve.find_element(By.XPATH, ".//button[text()='Resolve']").click()
        c.wait("ada's group", lambda: "readers" in driver.find_element(By.ID, "admin-resolve").text)
        assert "member of" in driver.find_element(By.ID, "admin-resolve").text

        # The content page offers the users pushed, and searches as the one picked (with a search token).
        c.open(f"#/{ORG}/content")
        c.wait("ada in the user picker", lambda: driver.find_elements(By.CSS_SELECTOR, "#known-users option[value='ada@example.com']"))
        driver.find_element(By.NAME, "as").send_keys("ada@example.com")
        driver.find_element(By.XPATH, "//form[@role='search']//button[text()='Search']").click()
        c.wait("results as ada", lambda: "as ada@example.com" in driver.find_element(By.CSS_SELECTOR, "[data-testid='total']").text)

        # A key that may only search: no logs or administration, and the server refuses them anyway.
        search_key = call("POST", f"/rest/organizations/{ORG}/apikeys", {"displayName": "search only", "privileges": [
            {"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY", "targetId": "*"},
            {"owner": "PLATFORM", "targetDomain": "ORGANIZATION", "type": "VIEW", "targetId": ORG}]})["value"]
        c.sign_in(search_key)
        nav = c.nav_text()
        assert "Content" in nav and "Logs" not in nav and "Administration" not in nav, nav
        assert c.open(f"#/{ORG}/logs").endswith("/overview"), "the logs page was shown to a key without LOGS VIEW"
        assert "Usage and limits" in c.main_text() and "Activity" not in c.main_text(), c.main_text()
        status, _, body = answer("POST", f"/logs/v1/organizations/{ORG}", {}, key=search_key)
        assert (status, body["errorCode"]) == (403, "ACCESS_DENIED"), (status, body)

        # Nothing the console ran broke its policy or threw.
        problems = [e for e in driver.get_log("browser") if e["source"] in ("security", "javascript")]
        assert not problems, problems
        bad = {page: v for page, v in c.violations.items() if v}
        assert not bad, f"serious or critical accessibility violations: {bad}"
        print(f"console: {len(c.violations)} pages checked by axe-core, no serious or critical violation")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
