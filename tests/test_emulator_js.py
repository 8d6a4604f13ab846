"""The emulator through the AWS SDK for JavaScript v3's default Bedrock Runtime client.

That client speaks HTTP/2 only (``NodeHttp2Handler``; cleartext with prior knowledge against an
``http://`` endpoint), so this is also the emulator's HTTP/2 test. ``tests/js/emulator_sdk.mjs``
makes the calls and reports what the SDK returned or threw, as JSON; the checks are here.

Needs Node and ``tests/js/node_modules`` (``make test`` runs ``npm ci`` there when Node is on the
PATH). Skipped where Node is absent, except in CI: ``.ci/run`` installs it and sets
``CHAINSERVE_REQUIRE_NODE=1``, so a missing Node fails there instead.
"""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.emulator.server import Emulator

JS = Path(__file__).resolve().parent / "js"
SDK = JS / "node_modules" / "@aws-sdk" / "client-bedrock-runtime"
NODE = shutil.which("node")
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

if NODE is None and os.environ.get("CHAINSERVE_REQUIRE_NODE") != "1":
    pytest.skip("no node on this machine", allow_module_level=True)

Results = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def sdk() -> Iterator[tuple[Results, Emulator]]:
    """Every case of the script, run once against an emulator of its own."""
    assert NODE is not None, "CHAINSERVE_REQUIRE_NODE=1 but node is not on the PATH"
    assert SDK.is_dir(), "the JavaScript SDK is not installed: cd tests/js && npm ci (make test)"
    with Emulator() as bedrock:
        done = subprocess.run(
            [NODE, str(JS / "emulator_sdk.mjs"), bedrock.url, MODEL],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        yield json.loads(done.stdout), bedrock


def case(sdk: tuple[Results, Emulator], name: str) -> dict[str, Any]:
    observed = sdk[0][name]
    assert "unexpected" not in observed, observed.get("stack")
    return observed


def kinds(events: list[list[Any]]) -> list[str]:
    return [name if name != "chunk" else payload["type"] for name, payload in events]


def test_every_call_was_http2(sdk: tuple[Results, Emulator]) -> None:
    calls = sdk[1].state.calls
    assert len(calls) >= 17
    assert {call.http_version for call in calls} == {"2"}


def test_converse(sdk: tuple[Results, Emulator]) -> None:
    out = case(sdk, "converse")
    assert out["status"] == 200
    assert out["requestId"] in {call.request_id for call in sdk[1].state.calls}
    assert out["text"] == f"[emulator] {MODEL} received:\nuser: hello from node"
    assert out["stopReason"] == "end_turn"
    assert out["usage"] == {"inputTokens": 3, "outputTokens": 7, "totalTokens": 10}


def test_converse_stream(sdk: tuple[Results, Emulator]) -> None:
    out = case(sdk, "converseStream")
    events = out["events"]
    assert kinds(events) == [
        "messageStart",
        *["contentBlockDelta"] * 5,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    text = "".join(p["delta"]["text"] for n, p in events if n == "contentBlockDelta")
    assert text == f"[emulator] {MODEL} received:\nuser: hello"
    assert events[-2][1] == {"stopReason": "max_tokens"}
    assert events[-1][1]["usage"] == {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8}
    assert "error" not in out


def test_invoke_model(sdk: tuple[Results, Emulator]) -> None:
    out = case(sdk, "invokeModel")
    assert out["status"] == 200 and out["contentType"] == "application/json"
    body = out["body"]
    assert body["type"] == "message" and body["stop_reason"] == "end_turn"
    assert body["content"][0]["text"].endswith("user: hello from node")
    assert body["usage"] == {"input_tokens": 3, "output_tokens": 7}


def test_invoke_model_with_response_stream(sdk: tuple[Results, Emulator]) -> None:
    out = case(sdk, "invokeModelWithResponseStream")
    events = [payload for _, payload in out["events"]]
    assert kinds(out["events"]) == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 7,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text.endswith("user: hello from node")
    assert events[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 7
    assert "error" not in out


def test_paced_streams_arrive_whole(sdk: tuple[Results, Emulator]) -> None:
    """The SDK sends GOAWAY as soon as the headers arrive; the stream still comes whole."""
    out = case(sdk, "pacedStreams")
    assert kinds(out["converse"]["events"])[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert len(out["converse"]["events"]) == 11
    assert kinds(out["invoke"]["events"])[-1] == "message_stop"
    assert len(out["invoke"]["events"]) == 12
    assert "error" not in out["converse"] and "error" not in out["invoke"]


def test_throttling_is_retried_then_thrown(sdk: tuple[Results, Emulator]) -> None:
    error = case(sdk, "throttled")["error"]
    assert error["name"] == "ThrottlingException" and error["fault"] == "client"
    assert error["status"] == 429
    assert error["attempts"] == 3  # the SDK took it for throttling: retried, then gave up
    assert error["requestId"] in {call.request_id for call in sdk[1].state.calls}


def test_validation_error(sdk: tuple[Results, Emulator]) -> None:
    error = case(sdk, "invalidRequest")["error"]
    assert error["name"] == "ValidationException" and error["status"] == 400
    assert error["attempts"] == 1
    assert error["message"].startswith("Malformed input request: #: required key [messages]")


@pytest.mark.parametrize("name", ["converseStreamError", "invokeStreamError"])
def test_model_stream_error_inside_the_stream(sdk: tuple[Results, Emulator], name: str) -> None:
    out = case(sdk, name)
    assert out["error"]["name"] == "ModelStreamErrorException"
    assert out["error"]["originalStatusCode"] == 500
    assert out["error"]["originalMessage"] == "The model failed to respond (emulated)."
    deltas = [k for k in kinds(out["events"]) if k in ("contentBlockDelta", "content_block_delta")]
    assert len(deltas) == 2  # after_chunks=2: two tokens, then the exception


def test_throttling_inside_the_stream(sdk: tuple[Results, Emulator]) -> None:
    out = case(sdk, "streamThrottle")
    assert out["error"]["name"] == "ThrottlingException"
    assert kinds(out["events"]) == ["messageStart", "contentBlockDelta"]


def test_model_timeout_inside_the_invoke_stream(sdk: tuple[Results, Emulator]) -> None:
    out = case(sdk, "invokeStreamModelTimeout")
    assert out["error"]["name"] == "ModelTimeoutException"
    assert kinds(out["events"])[-1] == "content_block_delta"


def test_resource_not_found(sdk: tuple[Results, Emulator]) -> None:
    error = case(sdk, "notFound")["error"]
    assert error["name"] == "ResourceNotFoundException" and error["status"] == 404


def test_tool_use(sdk: tuple[Results, Emulator]) -> None:
    out = case(sdk, "toolUse")
    assert out["stopReason"] == "tool_use"
    assert out["content"][1]["toolUse"]["input"] == {"city": "Paris"}
    events = out["events"]
    start = next(p for n, p in events if n == "contentBlockStart")
    assert start["start"]["toolUse"]["name"] == "get_weather"
    parts = [
        p["delta"]["toolUse"]["input"]
        for n, p in events
        if n == "contentBlockDelta" and p["contentBlockIndex"] == 1
    ]
    assert json.loads("".join(parts)) == {"city": "Paris"}
    assert ["messageStop", {"stopReason": "tool_use"}] in events
