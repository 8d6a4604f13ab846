"""A real browser (headless Chromium) streams a chain with ``EventSource`` from another origin.

Needs Debian's chromium and the playwright package (tests/browser.py); CI installs both
(``.ci/run``) and sets ``CHAINSERVE_REQUIRE_BROWSER=1`` so a missing browser fails there
instead of skipping. The ``browser`` fixture is in tests/conftest.py.
"""

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.browser import skip_unless_available
from tests.conftest import ServerFactory

skip_unless_available()

from playwright.sync_api import Browser, Page  # noqa: E402

PAGE = """<!doctype html>
<pre id="out"></pre>
<script>
  window.events = [];
  const out = document.getElementById("out");
  const source = new EventSource(new URLSearchParams(location.search).get("src"));
  const record = (name) => (e) => window.events.push([name, e.data ? JSON.parse(e.data) : null]);
  source.addEventListener("metadata", record("metadata"));
  source.addEventListener("data", (e) => {
    record("data")(e);
    out.textContent += JSON.parse(e.data);
  });
  for (const name of ["end", "error"]) {
    source.addEventListener(name, (e) => { record(name)(e); source.close(); window.done = true; });
  }
</script>
"""


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    with BackgroundServer(Starlette(routes=[Route("/", page)])) as site:
        yield site.url


@pytest.fixture(scope="module")
def chain_server(make_server: ServerFactory, page_origin: str) -> BackgroundServer:
    return make_server(cors_origins=page_origin)


def open_stream(browser: Browser, page_origin: str, src: str) -> Page:
    page = browser.new_page()
    page.goto(f"{page_origin}/?{urlencode({'src': src})}")
    return page


def test_eventsource_streams_tokens_as_they_come(
    browser: Browser, page_origin: str, chain_server: BackgroundServer, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=40)  # two seconds
    src = f"{chain_server.url}/chains/translate/stream?text=Bonjour&language=German"
    page = open_stream(browser, page_origin, src)
    page.wait_for_function("window.events.some(([name]) => name === 'data')", timeout=20_000)
    [call] = bedrock.state.calls
    assert call.status == "running"  # the page shows text while the model still generates
    page.wait_for_function("window.done === true", timeout=20_000)
    events = page.evaluate("window.events")
    names = [name for name, _ in events]
    assert names == ["metadata"] + ["data"] * 40 + ["metadata", "end"]
    assert events[-2][1]["usage"]["output_tokens"] == 40  # the run's cost, in a browser too
    text = page.inner_text("#out")
    assert text.startswith("[emulator]") and "Translate into German." in text
    page.close()


def test_eventsource_sees_in_band_errors(
    browser: Browser, page_origin: str, chain_server: BackgroundServer, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=3)])
    page = open_stream(browser, page_origin, f"{chain_server.url}/chains/translate/stream?text=Hi")
    page.wait_for_function("window.done === true", timeout=20_000)
    events = page.evaluate("window.events")
    assert [name for name, _ in events] == ["metadata", "data", "data", "data", "error"]
    assert events[-1][1]["status_code"] == 502
    page.close()
