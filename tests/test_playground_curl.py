"""The playground's requests outside the page: its API key (kept in the tab's sessionStorage,
never in a URL or a curl command) and "Copy as curl", whose command is run here with the real
curl. Driven in a real browser against the emulator, like tests/test_playground.py.
"""

import os
import shutil
import subprocess
from collections.abc import Callable

import httpx
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from tests.browser import Tab, expect
from tests.conftest import ServerFactory
from tests.test_playground import run_and_wait
from tests.test_playground_http import ASSETS

# ---------------------------------------------------------------- 5. API keys


@pytest.fixture(scope="module")
def keyed_server(make_server: ServerFactory) -> BackgroundServer:
    return make_server(api_keys="k1")


def test_api_key_in_session_storage_only(
    tab: Callable[[BackgroundServer], Tab], keyed_server: BackgroundServer, bedrock: Emulator
) -> None:
    for path in ASSETS:
        assert httpx.get(keyed_server.url + path).status_code == 200  # no data, no key
    assert httpx.get(keyed_server.url + "/chains").status_code == 401

    page = tab(keyed_server).open("/playground?chain=translate")
    expect(page.locator("#chains-status")).to_contain_text("API key needed")
    expect(page.locator("#empty-message")).to_contain_text("needs an API key")

    page.fill("#api-key", "k1")
    expect(page.locator("#chain-name")).to_have_text("translate")
    page.fill("#input-text", "Hello")

    page.fill("#api-key", "")
    run_and_wait(page, "Failed: 401")
    expect(page.locator("#error")).to_contain_text("401")
    expect(page.locator("#error")).to_contain_text("needs an API key")
    assert bedrock.state.calls == []

    page.fill("#api-key", "k1")
    run_and_wait(page)
    expect(page.locator("#output")).to_contain_text("user: Hello")
    assert page.evaluate("sessionStorage.getItem('chainserve.apiKey')") == "k1"
    assert page.evaluate("localStorage.length") == 0
    assert "k1" not in page.url

    # The key stays out of the curl command: it reads $CHAINSERVE_API_KEY instead.
    expect(page.locator("#curl-note")).to_be_visible()
    page.click("#copy-curl")
    command = page.text_content("#curl") or ""
    assert '-H "x-api-key: $CHAINSERVE_API_KEY"' in command and "k1" not in command
    out = run_curl(command, CHAINSERVE_API_KEY="k1")
    assert "user: Hello" in out

    # Another tab of the same browser does not share it (sessionStorage is per tab).
    other = page.context.new_page()
    other.goto(f"{keyed_server.url}/playground")
    expect(other.locator("#api-key")).to_have_value("")
    expect(other.locator("#chains-status")).to_contain_text("API key needed")


# ---------------------------------------------------------------- 6. copy as curl


def run_curl(command: str, **env: str) -> str:
    assert command.startswith("curl -N '")
    done = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], **env},
        check=True,
    )
    return done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this machine")
def test_copy_as_curl_runs_the_same_request(
    tab: Callable[[BackgroundServer], Tab], server: BackgroundServer, bedrock: Emulator
) -> None:
    page = tab(server).open("/playground?chain=translate")
    text = "It's a 'quoted' stream; $HOME stays `literal`\nover two lines"
    page.fill("#input-text", text)
    page.select_option("#input-language", label="German")
    page.click("#copy-curl")
    command = page.text_content("#curl") or ""
    assert command.startswith(f"curl -N '{server.url}/chains/translate/stream'")
    assert "-H 'Content-Type: application/json'" in command
    expect(page.locator("#curl-note")).to_be_hidden()  # no key set, nothing to say

    out = run_curl(command)
    assert out.startswith("[emulator]")
    assert "Translate into German." in out
    assert "user: It's a 'quoted' stream; $HOME stays `literal`" in out
    assert [call.status for call in bedrock.state.calls] == ["completed"]
