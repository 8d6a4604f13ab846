"""Signed stream URLs in a browser: the README's backend and page, against a server with API
keys, in headless Chromium (skipped only where there is no browser, as tests/test_browser.py).
"""

import importlib.util
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from service import signed_urls
from service.background import BackgroundServer
from service.emulator.server import Emulator
from tests.conftest import REPO, ServerFactory
from tests.test_signed_urls import KEY

README = (REPO / "README.md").read_text()


def readme_example(start: str) -> str:
    """The README's code block that starts with the line ``start``."""
    [block] = re.findall(rf"```\w+\n({re.escape(start)}\n.*?)```", README, re.S)
    return str(block)


@pytest.fixture(scope="module")
def readme_site(
    make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, BackgroundServer]]:
    """The README's backend.py and page.html served on one loopback port, minting URLs from a
    chainserve with keys on another (its CORS origins: the page's)."""
    folder = tmp_path_factory.mktemp("readme_site")
    (folder / "backend.py").write_text(
        readme_example("# backend.py — run: uvicorn backend:app --port 3000")
    )
    (folder / "page.html").write_text(readme_example("<!-- page.html -->"))
    site_app: dict[str, Any] = {}

    async def site(scope: Any, receive: Any, send: Any) -> None:  # the backend, once imported
        await site_app["app"](scope, receive, send)

    page_server = BackgroundServer(site)  # binds its port: the origin is known from here on
    chainserve = make_server(api_keys=KEY, cors_origins=page_server.url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHAINSERVE_URL", chainserve.url)
        patch.setenv("CHAINSERVE_KEY", KEY)
        spec = importlib.util.spec_from_file_location("readme_backend", folder / "backend.py")
        assert spec is not None and spec.loader is not None
        backend = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(backend)
    site_app["app"] = backend.app
    with page_server:
        yield page_server.url, chainserve


def test_readme_page_streams_a_signed_url_in_chromium(
    browser: Any, readme_site: tuple[str, BackgroundServer], bedrock: Emulator
) -> None:
    from service.emulator.state import Pace

    origin, chainserve = readme_site
    bedrock.state.pace = Pace(tokens_per_second=50, reply_tokens=30)
    page = browser.new_page()
    statuses: list[tuple[str, int]] = []
    page.on("response", lambda response: statuses.append((response.url, response.status)))
    page.goto(f"{origin}/")
    page.wait_for_function(
        "document.getElementById('status').textContent === 'done'", timeout=20_000
    )
    text = page.inner_text("#output")
    assert text.startswith("[emulator]") and len(text.split()) >= 25
    [(stream_url, status)] = [(u, s) for u, s in statuses if "/chains/translate/stream?" in u]
    assert stream_url.startswith(chainserve.url) and status == 200  # cross-origin, no key
    assert "chainserve-signature=" in stream_url and KEY not in stream_url
    page.close()


def test_readme_page_sees_an_error_for_an_expired_url(
    browser: Any, readme_site: tuple[str, BackgroundServer], bedrock: Emulator
) -> None:
    origin, chainserve = readme_site
    # Signed with the server's key, as at a fixed time: it expired 30 seconds ago.
    path = signed_urls.sign(
        "translate",
        [("text", "too late")],
        signed_urls.signing_key(KEY.encode()),
        int(time.time()) - 30,
    )
    page = browser.new_page()
    statuses: list[tuple[str, int]] = []
    page.on("response", lambda response: statuses.append((response.url, response.status)))
    # Stands in for a backend that handed out a URL which has expired since.
    page.route(
        f"{origin}/stream-url*",
        lambda route: route.fulfill(json={"url": chainserve.url + path}),
    )
    page.goto(f"{origin}/")
    page.wait_for_function(
        "document.getElementById('status').textContent.startsWith('could not stream')",
        timeout=20_000,
    )
    assert page.inner_text("#output") == ""
    assert (chainserve.url + path, 401) in statuses
    assert not bedrock.state.calls
    page.close()
