"""Headless Debian Chromium driven by Playwright for the review page's tests; skips without either.

The system browser is used (never ``playwright install``), with no network features, so nothing is
downloaded and the page's own promise of "no request to another host" can be checked.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def launch(playwright):
    """A headless Chromium from the system package."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=ARGS)


@pytest.fixture(scope="module")
def browser():
    """One browser for a test module; skips with the reason when Playwright or Chromium is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if chromium_path() is None:
        pytest.skip("no Chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        instance = launch(playwright)
        yield instance
        instance.close()


class PageWatch:
    """A fresh page (own storage) that records dialogs, script errors and requests to other hosts."""

    def __init__(self, browser):
        self.context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.dialogs, self.errors, self.foreign = [], [], []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # console errors include what the page's Content-Security-Policy blocked
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", self._request)

    def _request(self, request) -> None:
        url = request.url
        if not url.startswith(("file://", "data:", "blob:", "http://127.0.0.1")):
            self.foreign.append(url)

    def close(self) -> None:
        self.context.close()

    def assert_quiet(self) -> None:
        assert self.dialogs == [], f"the page opened dialogs: {self.dialogs}"
        assert self.errors == [], f"script or console errors: {self.errors}"
        assert self.foreign == [], f"requests to other hosts: {self.foreign}"


@pytest.fixture
def watched(browser):
    watch = PageWatch(browser)
    yield watch
    watch.close()
