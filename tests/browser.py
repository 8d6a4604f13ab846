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
