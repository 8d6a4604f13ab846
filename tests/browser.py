"""Debian's chromium, driven by playwright's sync API: shared by the browser tests.

CI installs both (``.ci/run``) and sets ``CHAINSERVE_REQUIRE_BROWSER=1``, so a missing browser
fails there instead of skipping. The ``browser`` fixture (tests/conftest.py) launches it.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def skip_unless_available() -> None:
    """Skip the calling test module where there is no browser, unless CI requires one."""
    if os.environ.get("CHAINSERVE_REQUIRE_BROWSER") != "1":
        pytest.importorskip("playwright.sync_api")
        if CHROMIUM is None:
            pytest.skip("no chromium on this machine", allow_module_level=True)


@contextmanager
def launched() -> Iterator[Any]:
    """A headless chromium (playwright ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """A browser context on one server's origin, cut off from everything else: a request to
    any other origin is aborted and recorded (a page must work with the network unplugged),
    as are console errors, page errors and the requests the page sent."""

    def __init__(self, browser: Any, origin: str, timeout_ms: int = 20_000) -> None:
        self.origin = origin
        self.blocked: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.sent: list[Any] = []  # requests to the server, as the browser sent them
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 800}, color_scheme="light"
        )
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(timeout_ms)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("request", lambda request: self.sent.append(request))

    def open(self, path: str) -> Any:
        """Go to ``path`` on the server; the playwright ``Page``."""
        self.page.goto(f"{self.origin}{path}")
        return self.page

    def csp_violations(self) -> list[str]:
        return [text for text in self.console_errors if "Content Security Policy" in text]

    def close(self) -> None:
        """Close the context; fails if the page reached out, threw, or broke its CSP."""
        self.context.close()
        assert self.blocked == [], "the page asked for something outside its origin"
        assert self.page_errors == []
        assert self.csp_violations() == []

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url == self.origin or url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


def expect(target: Any) -> Any:
    """playwright's ``expect``, imported only where a browser test runs."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)
