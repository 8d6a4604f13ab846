"""The Vercel AI SDK's chat protocol through the ``ai`` package's own client code.

These tests run ``tests/js/ai_sdk_chat.mjs``, which drives the ``Chat`` class that ``useChat``
wraps (and its ``DefaultChatTransport``, ``readUIMessageStream``) from the real ``ai`` npm
package against a real server and the emulator, and reports what the package made of it as
JSON. They need Node and ``tests/js/node_modules`` (``make test`` runs ``npm ci`` there); they
skip where Node is absent, except in CI (``CHAINSERVE_REQUIRE_NODE=1``), as
``test_emulator_js.py`` does. The raw wire is tests/test_ai_sdk.py's.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.emulator.server import Emulator
from service.emulator.state import Fault
from tests.conftest import ServerFactory
from tests.test_ai_sdk import MODEL, invoke, user

JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")


# -- the ai package's own client --------------------------------------------------------------


@pytest.fixture
def node() -> str:
    if NODE is None:
        if os.environ.get("CHAINSERVE_REQUIRE_NODE") == "1":
            pytest.fail("CHAINSERVE_REQUIRE_NODE=1 but node is not on the PATH")
        pytest.skip("no node on this machine")
    assert (JS / "node_modules" / "ai").is_dir(), "cd tests/js && npm ci (make test does it)"
    return NODE


def ai_sdk(node: str, scenario: dict[str, Any]) -> dict[str, Any]:
    """Run one scenario of ai_sdk_chat.mjs; what the ai package reported."""
    done = subprocess.run(
        [node, str(JS / "ai_sdk_chat.mjs")],
        input=json.dumps(scenario),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def text_of(message: dict[str, Any]) -> str:
    return "".join(part["text"] for part in message["parts"] if part["type"] == "text")


def test_use_chat_holds_a_conversation(node: str, client: httpx.Client) -> None:
    api = f"{client.base_url}/chains/chat/chat"
    steps = [{"send": "My name is Ada."}, {"send": "What is my name?"}, {"regenerate": True}]
    out = ai_sdk(node, {"mode": "chat", "api": api, "steps": steps})
    assert out["statuses"] == [{"status": "ready", "error": None}] * 3
    assert out["errors"] == []
    messages = out["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]

    first = invoke(client, "chat", question="My name is Ada.")
    assert text_of(messages[1]) == first["output"]
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": first["output"]},
    ]
    second = invoke(client, "chat", history=history, question="What is my name?")
    assert text_of(messages[3]) == second["output"]  # the regenerated reply: same prompt

    for message, expected in ((messages[1], first), (messages[3], second)):
        metadata = message["metadata"]
        assert metadata.keys() == expected["metadata"].keys()
        assert message["id"] == metadata["run_id"]
        assert metadata["model"] == MODEL and metadata["stop_reason"] == "end_turn"
        assert metadata["usage"] == expected["metadata"]["usage"]
    finishes = out["finishes"]
    assert [f["finishReason"] for f in finishes] == ["stop"] * 3
    assert not any(f["isError"] or f["isAbort"] or f["isDisconnect"] for f in finishes)
    # regenerate() replaced the second reply with a new run's.
    assert [f["messageId"] for f in finishes][::2] == [messages[1]["id"], messages[3]["id"]]
    assert finishes[1]["messageId"] != messages[3]["id"]


@pytest.mark.parametrize("where", ["transport", "sendMessage"])
def test_use_chat_sends_inputs_in_its_body(node: str, client: httpx.Client, where: str) -> None:
    body = {"inputs": {"language": "Spanish"}}
    out = ai_sdk(
        node,
        {
            "mode": "chat",
            "api": f"{client.base_url}/chains/translate/chat",
            "body": body if where == "transport" else None,
            "steps": [{"send": "Good night", "body": body if where == "sendMessage" else None}],
        },
    )
    assert out["statuses"] == [{"status": "ready", "error": None}]
    expected = invoke(client, "translate", text="Good night", language="Spanish")["output"]
    assert text_of(out["messages"][1]) == expected


def test_a_failure_mid_stream_is_the_chats_error(
    node: str, client: httpx.Client, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=3)])
    api = f"{client.base_url}/chains/chat/chat"
    out = ai_sdk(node, {"mode": "chat", "api": api, "steps": [{"send": "one two three four"}]})
    [status] = out["statuses"]
    assert status["status"] == "error"
    error = json.loads(status["error"])  # the JSON error body, as before a stream
    assert error["status_code"] == 502 and error["code"] == "bedrock_error"
    assert out["errors"] == [status["error"]]
    [finish] = out["finishes"]
    assert finish["isError"] is True
    # What arrived before the failure stays in the chat, as it does in useChat.
    partial = text_of(out["messages"][1])
    full = invoke(client, "chat", question="one two three four")["output"]
    assert partial and full.startswith(partial) and partial != full


def test_the_transport_parses_every_chunk(
    node: str, client: httpx.Client, bedrock: Emulator
) -> None:
    api = f"{client.base_url}/chains/chat/chat"
    scenario = {"mode": "transport", "api": api, "messages": [user("Hi")]}
    out = ai_sdk(node, scenario)
    assert out["error"] is None and out["readerErrors"] == []
    kinds = [chunk["type"] for chunk in out["chunks"]]
    assert kinds[:3] == ["start", "start-step", "text-start"]
    assert kinds[-3:] == ["text-end", "finish-step", "finish"]
    message = out["message"]
    assert message["role"] == "assistant" and message["id"] == out["chunks"][0]["messageId"]
    assert text_of(message) == invoke(client, "chat", question="Hi")["output"]

    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=2)])
    out = ai_sdk(node, scenario)
    assert out["chunks"][-1]["type"] == "error"
    assert out["error"]["message"] == out["chunks"][-1]["errorText"]
    assert json.loads(out["error"]["message"])["status_code"] == 502


def test_a_refused_request_is_the_chats_error(node: str, client: httpx.Client) -> None:
    out = ai_sdk(
        node,
        {
            "mode": "chat",
            "api": f"{client.base_url}/chains/translate/chat",
            "body": {"inputs": {"language": "Klingon"}},
            "steps": [{"send": "Hello"}],
        },
    )
    [status] = out["statuses"]
    assert status["status"] == "error"
    error = json.loads(status["error"])  # useChat's error.message: the response's body
    assert error["status_code"] == 422
    assert error["errors"][0]["field"] == "inputs.language"
    assert [m["role"] for m in out["messages"]] == ["user"]


def test_use_chat_sends_the_api_key(node: str, make_server: ServerFactory) -> None:
    server = make_server(api_keys="ai-sdk-test-key")
    api = f"{server.url}/chains/chat/chat"
    steps = [{"send": "Hi"}]
    keyed = ai_sdk(
        node,
        {"mode": "chat", "api": api, "headers": {"x-api-key": "ai-sdk-test-key"}, "steps": steps},
    )
    assert keyed["statuses"] == [{"status": "ready", "error": None}]
    refused = ai_sdk(node, {"mode": "chat", "api": api, "steps": steps})
    assert json.loads(refused["statuses"][0]["error"])["status_code"] == 401
