"""``/docs`` in a real browser: offline, on a server with API keys; and over HTTP.

Every page gets a browser context in which any request that is not to the server's own
origin is aborted and recorded (tests/browser.py, Debian's chromium): the page must render
with the network unplugged, under its Content-Security-Policy, without a key; Swagger UI's
"Authorize" then takes the key, and "Try it out" runs a chain with it.
"""

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from service.background import BackgroundServer
from service.protocols import docs
from tests.browser import Tab, expect
from tests.conftest import ServerFactory

if TYPE_CHECKING:
    from playwright.sync_api import Browser

KEY = "docs-test-key-0123456789"


@pytest.fixture(scope="module")
def keyed(make_server: ServerFactory) -> BackgroundServer:
    return make_server(api_keys=KEY)


def test_swagger_ui_offline_with_keys_authorize_and_try_it_out(
    browser: "Browser", tab: Callable[[BackgroundServer], Tab], keyed: BackgroundServer
) -> None:
    opened = tab(keyed)
    page = opened.page
    page.goto(f"{keyed.url}/docs")
    expect(page.locator(".information-container .title")).to_contain_text("chainserve")
    invoke = page.locator("#operations-summarize-summarize_invoke_post")
    expect(invoke).to_be_visible()

    # Authorize: the x-api-key scheme takes the key; bearer and signed URLs are offered too.
    page.click("button.btn.authorize")
    dialog = page.locator(".dialog-ux")
    expect(dialog.locator(".auth-container")).to_have_count(3)
    api_key = dialog.locator(".auth-container").filter(has_text="x-api-key")
    api_key.locator("input").fill(KEY)
    api_key.locator("button.authorize").click()
    expect(api_key.get_by_role("heading", name="Authorized")).to_be_visible()
    dialog.locator("button.close-modal").click()

    # Try it out on summarize's invoke, with the key Swagger UI now sends.
    invoke.locator(".opblock-summary").click()
    invoke.locator("button.try-out__btn").click()
    invoke.locator("textarea.body-param__text").fill(
        json.dumps({"input": {"text": "Streams are fun."}})
    )
    invoke.locator("button.execute").click()
    live = invoke.locator(".live-responses-table tbody .response")
    expect(live.locator(".response-col_status")).to_have_text("200")
    expect(live.locator(".response-col_description")).to_contain_text("[emulator]")
    runs = [r for r in opened.sent if r.url == f"{keyed.url}/chains/summarize/invoke"]
    assert len(runs) == 1 and runs[0].headers.get("x-api-key") == KEY
    # What the page itself loaded went without a key, from this origin only.
    loaded = {r.url.removeprefix(keyed.url) for r in opened.sent if r.resource_type != "fetch"}
    assert {"/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"} <= loaded


# ---------------------------------------------------------------- over HTTP


def test_docs_need_no_key_and_every_thing_else_does(keyed: BackgroundServer) -> None:
    with httpx.Client(base_url=keyed.url) as client:
        for path in sorted(docs.PATHS - {"/docs/"}):
            response = client.get(path)
            assert response.status_code == 200, path
        assert client.get("/chains").status_code == 401
        page = client.get("/docs")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "default-src 'none'" in policy
        assert "https:" not in page.text and "http:" not in page.text.replace("http://www.w3", "")


def test_assets_revalidate_with_etags(keyed: BackgroundServer) -> None:
    with httpx.Client(base_url=keyed.url) as client:
        first = client.get("/docs/swagger-ui-bundle.js")
        assert first.headers["content-type"].startswith("text/javascript")
        again = client.get(
            "/docs/swagger-ui-bundle.js", headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""


def test_docs_off(make_server: ServerFactory) -> None:
    server = make_server(docs=False, api_keys=KEY)
    with httpx.Client(base_url=server.url, headers={"x-api-key": KEY}) as client:
        for path in ("/docs", "/openapi.json", "/docs/swagger-ui-bundle.js", "/redoc"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"
        assert client.get("/chains").status_code == 200
