"""The playground page (``GET /playground``), driven in a real browser against the emulator.

Browser tests use Debian's chromium through playwright (tests/browser.py; skipped where there
is none, unless ``CHAINSERVE_REQUIRE_BROWSER=1``). Every page gets a context in which any
request that is not to the server's own origin is aborted and recorded: the page must work
with the network unplugged. The page's CSP forbids eval, so waits use playwright's locator
assertions (never ``wait_for_function``) and the emulator's state, not wall-clock time.

``CHAINSERVE_SCREENSHOT=docs/playground.png .venv/bin/pytest tests/test_playground.py -k
screenshot`` writes the README's screenshot.
"""

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.browser import Tab, expect
from tests.conftest import EXAMPLE_CHAINS, ServerFactory
from tests.helpers import parse_sse, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Page


def run_and_wait(page: "Page", status: str = "Done") -> None:
    page.click("#run")
    expect(page.locator("#status")).to_contain_text(status)


def prompt_on_page(page: "Page") -> list[dict[str, str]]:
    items = page.locator("#prompt .msg").evaluate_all(
        "items => items.map(item => ({role: item.dataset.role,"
        " content: item.querySelector('pre').textContent}))"
    )
    return list(items)


# ---------------------------------------------------------------- 1. a run, streamed


def test_page_lists_chains_and_streams_a_run(
    tab: Callable[[BackgroundServer], Tab],
    server: BackgroundServer,
    client: httpx.Client,
    bedrock: Emulator,
) -> None:
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=40)  # two seconds
    session = tab(server)
    page = session.open("/playground")
    names = [chain["name"] for chain in client.get("/chains").json()["chains"]]
    expect(page.locator("#chain-list a")).to_have_count(len(names))
    for name in names:
        expect(page.locator(f'#chain-list a[data-chain="{name}"]')).to_be_visible()
    assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("system-ui")

    page.click('#chain-list a[data-chain="summarize"]')
    expect(page.locator("#chain-name")).to_have_text("summarize")
    expect(page).to_have_url(re.compile(r"/playground\?chain=summarize$"))
    # The form follows the inputs: a textarea for text, an integer box with its default.
    expect(page.locator("textarea#input-text")).to_be_visible()
    expect(page.locator("input#input-sentences")).to_have_attribute("type", "number")
    expect(page.locator("input#input-sentences")).to_have_attribute("step", "1")
    expect(page.locator("input#input-sentences")).to_have_value("3")
    expect(page.locator("#input-text")).to_have_attribute("aria-required", "true")
    unlabelled = page.locator("#fields").evaluate(
        "form => [...form.querySelectorAll('input, select, textarea')]"
        ".filter(c => !document.querySelector(`label[for='${c.id}']`)).length"
    )
    assert unlabelled == 0

    text = "Streams are fun. They arrive in pieces, and each piece is shown at once."
    page.fill("#input-text", text)
    page.fill("#input-sentences", "2")
    page.click("#run")
    expect(page.locator("#output")).to_contain_text("[emulator]")
    assert bedrock.state.calls[0].status == "running"  # text shows while the model generates
    expect(page.locator("#status")).to_contain_text("Done")
    [call] = bedrock.state.calls
    assert call.status == "completed"

    body = {"input": {"text": text, "sentences": 2}}
    again = client.post("/chains/summarize/invoke", json=body).json()
    assert page.text_content("#output") == again["output"]
    usage = again["metadata"]["usage"]
    expect(page.locator("#stat-tokens")).to_have_text(
        f"{usage['input_tokens']} / {usage['output_tokens']} ({usage['total_tokens']} total)"
    )
    expect(page.locator("#stat-stop")).to_have_text("end_turn")
    for stat in ("#stat-ttft", "#stat-latency", "#stat-total"):
        expect(page.locator(stat)).to_have_text(re.compile(r"^[\d,]+ ms$"))
    expect(page.locator("#stat-run-id")).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))

    rendered = client.post("/chains/summarize/render", json=body).json()
    expect(page.locator("#prompt .msg")).to_have_count(len(rendered["messages"]))
    assert prompt_on_page(page) == rendered["messages"]
    expect(page.locator("#prompt-model")).to_contain_text(rendered["model"])
    assert session.console_errors == []


def test_every_example_chain_runs(
    tab: Callable[[BackgroundServer], Tab], make_server: ServerFactory, bedrock: Emulator
) -> None:
    """What ``make run`` serves: each chain in chains/, its required fields filled, runs."""
    page = tab(make_server(chains_dir=EXAMPLE_CHAINS)).open("/playground")
    names = sorted(path.stem for path in EXAMPLE_CHAINS.glob("*.yaml"))
    expect(page.locator("#chain-list a")).to_have_count(len(names))
    for index, name in enumerate(names):
        page.click(f'#chain-list a[data-chain="{name}"]')
        expect(page.locator("#chain-name")).to_have_text(name)
        required = page.locator("#fields textarea[aria-required='true']")
        for field in range(required.count()):
            required.nth(field).fill(f"Hello from {name}")
        run_and_wait(page)
        expect(page.locator("#output")).to_contain_text(f"Hello from {name}")
        assert len(bedrock.state.calls) == index + 1
        assert bedrock.state.calls[index].status == "completed"


def test_prompt_follows_the_form_before_any_call(
    tab: Callable[[BackgroundServer], Tab],
    server: BackgroundServer,
    client: httpx.Client,
    bedrock: Emulator,
) -> None:
    page = tab(server).open("/playground?chain=translate")
    expect(page.locator("select#input-language")).to_have_value("0")  # French, the default
    page.fill("#input-text", "Good morning")
    page.select_option("#input-language", label="German")
    body = {"input": {"text": "Good morning", "language": "German"}}
    rendered = client.post("/chains/translate/render", json=body).json()
    expect(page.locator("#prompt .msg").first).to_contain_text("Translate into German.")
    expect(page.locator("#prompt .msg").last).to_have_text(re.compile("Good morning"))
    assert prompt_on_page(page) == rendered["messages"]
    assert bedrock.state.calls == []  # rendering never calls the model


# ---------------------------------------------------------------- 2. chat


def test_chat_keeps_the_conversation(
    tab: Callable[[BackgroundServer], Tab], server: BackgroundServer, bedrock: Emulator
) -> None:
    page = tab(server).open("/playground?chain=chat")
    expect(page.locator("#transcript-box")).to_be_visible()
    expect(page.locator("#input-history")).to_have_count(0)  # the transcript stands in for it
    expect(page.locator("#transcript .msg")).to_have_count(0)

    page.fill("#input-question", "What is a stream?")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#transcript .msg")).to_have_count(2)
    expect(page.locator("#input-question")).to_have_value("")
    first_answer = page.text_content("#output") or ""
    assert first_answer.startswith("[emulator]")
    turns = page.locator("#transcript .msg")
    expect(turns.nth(0)).to_have_attribute("data-role", "user")
    expect(turns.nth(0).locator("pre")).to_have_text("What is a stream?")
    expect(turns.nth(1)).to_have_attribute("data-role", "assistant")
    expect(turns.nth(1).locator("pre")).to_have_text(first_answer)

    page.fill("#input-question", "And a river?")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_contain_text("Done")
    assert [call.status for call in bedrock.state.calls] == ["completed", "completed"]
    # The emulator echoes every message it received: the first turn came along.
    second = page.text_content("#output") or ""
    lines = second.splitlines()
    assert lines[1] == "system: You are a helpful, concise assistant."
    assert lines[2] == "user: What is a stream?"
    assert lines[3].startswith("assistant: [emulator]")
    assert lines[-1] == "user: And a river?"
    expect(page.locator("#transcript .msg")).to_have_count(4)

    page.click("#new-chat")
    expect(page.locator("#transcript .msg")).to_have_count(0)
    expect(page.locator("#prompt .msg")).to_have_count(2)  # system + the (empty) question


# ---------------------------------------------------------------- 3. errors


def test_invalid_input_marks_the_field(
    tab: Callable[[BackgroundServer], Tab], server: BackgroundServer, bedrock: Emulator
) -> None:
    page = tab(server).open("/playground?chain=summarize")
    page.fill("#input-text", "Some text.")
    page.fill("#input-sentences", "2.5")
    run_and_wait(page, "Failed: 422")
    expect(page.locator("#error")).to_contain_text("422 invalid_input")
    expect(page.locator("#error")).to_contain_text("input.sentences")
    expect(page.locator("#input-sentences")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#input-sentences-error")).to_be_visible()
    expect(page.locator("#input-sentences-error")).to_contain_text("integer")
    expect(page.locator("#input-text")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#prompt-error")).to_contain_text("input.sentences")
    assert bedrock.state.calls == []

    page.fill("#input-sentences", "2")  # fixed: the mark goes once the prompt renders
    expect(page.locator("#input-sentences")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#prompt .msg")).to_have_count(2)


def test_bedrock_failure_before_the_stream(
    tab: Callable[[BackgroundServer], Tab], server: BackgroundServer, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
    page = tab(server).open("/playground?chain=translate")
    page.fill("#input-text", "Hello")
    run_and_wait(page, "Failed: 429")
    expect(page.locator("#error")).to_contain_text("429 throttled")
    expect(page.locator("#error")).to_contain_text("Bedrock is throttling model")
    expect(page.locator("#error")).to_contain_text("request id")
    expect(page.locator("#output")).to_have_text("")
    assert [call.status for call in bedrock.state.calls] == ["failed"]


def test_error_after_the_first_chunk(
    tab: Callable[[BackgroundServer], Tab],
    server: BackgroundServer,
    client: httpx.Client,
    bedrock: Emulator,
) -> None:
    # The message the server sends in-band for this fault, read over plain HTTP first.
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=3)])
    sse = client.post(
        "/chains/translate/stream",
        json={"input": {"text": "Hello"}},
        headers={"Accept": "text/event-stream"},
    )
    [(_, error)] = [event for event in parse_sse(sse.text) if event[0] == "error"]

    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=3)])
    page = tab(server).open("/playground?chain=translate")
    page.fill("#input-text", "Hello")
    run_and_wait(page, f"Failed: {error['status_code']} after 3 chunks")
    expect(page.locator("#error")).to_contain_text(f"{error['status_code']}: {error['message']}")
    expect(page.locator("#error")).to_contain_text("in-band error event after 3 chunks")
    expect(page.locator("#output")).to_have_text(re.compile(r"^\[emulator\] \S+ received:$"))


# ---------------------------------------------------------------- 4. stop


def test_stop_ends_the_model_call(
    tab: Callable[[BackgroundServer], Tab], server: BackgroundServer, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(tokens_per_second=5, reply_tokens=200)  # 40 seconds if left
    page = tab(server).open("/playground?chain=translate")
    page.fill("#input-text", "A long story")
    page.click("#run")
    expect(page.locator("#output")).to_contain_text("[emulator]")
    expect(page.locator("#stop")).to_be_enabled()
    page.keyboard.press("Escape")
    wait_for(lambda: bedrock.state.calls[0].status == "disconnected")
    expect(page.locator("#status")).to_contain_text("Stopped")
    expect(page.locator("#error")).to_contain_text("partial")
    expect(page.locator("#run")).to_be_enabled()
    assert bedrock.state.calls[0].tokens_sent < 200


# ---------------------------------------------------------------- 7. load errors


BROKEN = """\
description: Broken on purpose.
model:
  id: anthropic.claude-3-haiku-20240307-v1:0
  params:
    temprature: 0.5
prompt:
  messages:
    - user: "{text}"
inputs:
  text:
    type: string
"""


def test_load_errors_are_shown(
    tab: Callable[[BackgroundServer], Tab], make_server: ServerFactory, tmp_path: Path
) -> None:
    for path in EXAMPLE_CHAINS.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    server = make_server(chains_dir=tmp_path, reload=True)
    listing = httpx.get(server.url + "/chains").json()
    assert any("broken.yaml" in error["file"] for error in listing["errors"])

    page = tab(server).open("/playground")
    expect(page.locator("#load-errors")).to_be_visible()
    expect(page.locator("#load-errors li")).to_have_count(len(listing["errors"]))
    for error in listing["errors"]:
        expect(page.locator("#load-errors")).to_contain_text(error["text"])
    expect(page.locator("#chain-list a")).to_have_count(len(listing["chains"]))

    # Fixed on disk: the server reloads it, and Reload brings it to the page.
    (tmp_path / "broken.yaml").write_text(BROKEN.replace("temprature", "temperature"))
    wait_for(lambda: not httpx.get(server.url + "/chains").json()["errors"], timeout=20)
    page.click("#reload")
    expect(page.locator("#load-errors")).to_be_hidden()
    expect(page.locator('#chain-list a[data-chain="broken"]')).to_be_visible()


def test_only_broken_files(
    tab: Callable[[BackgroundServer], Tab], make_server: ServerFactory, tmp_path: Path
) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN)
    server = make_server(chains_dir=tmp_path, reload=True)
    page = tab(server).open("/playground?chain=broken")
    expect(page.locator("#load-errors li")).to_have_count(1)
    expect(page.locator("#load-errors li")).to_contain_text("broken.yaml:5")
    expect(page.locator("#chain-list a")).to_have_count(0)
    expect(page.locator("#empty-message")).to_contain_text("No chain named “broken”")


# ---------------------------------------------------------------- the README's screenshot


def test_screenshot_of_a_conversation(
    tab: Callable[[BackgroundServer], Tab],
    make_server: ServerFactory,
    bedrock: Emulator,
    tmp_path: Path,
) -> None:
    """A realistic mid-conversation view; written to $CHAINSERVE_SCREENSHOT when it is set."""
    for path in EXAMPLE_CHAINS.glob("*.yaml"):  # the README's chains, not the tests' own
        shutil.copy(path, tmp_path / path.name)
    server = make_server(chains_dir=tmp_path)
    bedrock.state.pace = Pace(ttft_ms=250, tokens_per_second=80)
    page = tab(server).open("/playground?chain=chat")
    page.fill("#input-question", "What changes when a reply is streamed?")
    run_and_wait(page)
    page.fill("#input-question", "And what does the server do when I press Stop?")
    run_and_wait(page)
    expect(page.locator("#prompt-status")).to_contain_text("up to date")
    page.fill("#input-question", "Thanks! One more thing: how is usage counted?")
    expect(page.locator("#prompt .msg")).to_have_count(6)
    expect(page.locator("#prompt .msg").last).to_contain_text("how is usage counted?")
    page.evaluate("window.scrollTo(0, 0)")
    expect(page.locator("#stat-tokens")).to_have_text(re.compile(r"^\d+ / \d+"))
    if target := os.environ.get("CHAINSERVE_SCREENSHOT"):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=target)
