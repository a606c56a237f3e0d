"""What the browser tests share: the Intake they run against (INTAKE_URL, INTAKE_KEY = its master key,
INTAKE_ORG), calls to its API, and Debian's Chromium driven by Selenium through Debian's chromedriver."""

import json
import os
import time
import pathlib
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "target" / "browser"
INTAKE = os.environ.get("INTAKE_URL", "")
ORG = os.environ.get("INTAKE_ORG", "default")
MASTER = os.environ.get("INTAKE_KEY", "")


def call(method, path, body=None, key=MASTER):
    """The JSON answer of a successful call (None when empty); an error answer fails with its body."""
    status, _, body_answered = answer(method, path, body, key)
    assert status < 300, f"{method} {path} answered {status}: {body_answered}"
    return body_answered


def answer(method, path, body=None, key=MASTER):
    """(status, headers, JSON body) of a call, error answers included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(INTAKE + path, data=data, method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, response.headers, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, error.headers, json.loads(text) if text else None


def chromium(height=1800):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size=1280,{height}"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def screenshot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def wait(driver, what, check, timeout=20, artifact="failure"):
    """The first truthy value of `check()`, polled; on timeout a screenshot named `artifact` and an error."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as error:  # the page is re-rendering: look again
            last = error
        time.sleep(0.05)
    screenshot(driver, artifact)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
