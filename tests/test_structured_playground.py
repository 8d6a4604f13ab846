"""The playground shows a structured chain's output as pretty JSON that grows with each SSE
partial object (Debian's chromium through playwright; see tests/browser.py)."""

import json
from collections.abc import Callable

import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Pace
from tests.browser import Tab, expect
from tests.conftest import ServerFactory
from tests.test_structured import OBJECT, TEXT, write_chains


@pytest.fixture(scope="module")
def structured(
    make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> BackgroundServer:
    return make_server(chains_dir=write_chains(tmp_path_factory.mktemp("structured")))


@pytest.mark.parametrize("chain", ["native", "tool"])
def test_output_is_pretty_json_that_grows(
    tab: Callable[[BackgroundServer], Tab],
    structured: BackgroundServer,
    bedrock: Emulator,
    chain: str,
) -> None:
    bedrock.state.pace = Pace(tokens_per_second=5)  # the object's ten words take two seconds
    page = tab(structured).open(f"/playground?chain={chain}")
    page.fill("#input-text", TEXT)
    page.click("#run")
    output = page.locator("#output")
    # Part of the object, already indented as the whole will be, while the run goes on.
    expect(output).to_contain_text('{\n  "name": "Ada Lovelace"')
    assert '"kind"' not in output.text_content()  # type: ignore[operator]
    expect(page.locator("#status")).to_contain_text("Done")
    assert output.text_content() == json.dumps(OBJECT, indent=2)
