"""The emulator through boto3/botocore unchanged: the real client decodes what it sends."""

import json
import time
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError, EventStreamError

from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def runtime(bedrock: Emulator) -> Any:
    from botocore.config import Config

    return boto3.client(
        "bedrock-runtime",
        endpoint_url=bedrock.url,
        config=Config(retries={"total_max_attempts": 1}),
    )


def converse_stream(runtime: Any, text: str = "hello there", **config: Any) -> list[dict]:
    response = runtime.converse_stream(
        modelId=MODEL,
        system=[{"text": "Be brief."}],
        messages=[{"role": "user", "content": [{"text": text}]}],
        inferenceConfig=config,
    )
    return list(response["stream"])


def deltas(events: list[dict]) -> str:
    return "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )


def test_converse_stream_shows_what_it_received(runtime: Any) -> None:
    events = converse_stream(runtime)
    assert next(iter(events[0])) == "messageStart"
    assert [next(iter(e)) for e in events[-3:]] == ["contentBlockStop", "messageStop", "metadata"]
    assert deltas(events) == f"[emulator] {MODEL} received:\nsystem: Be brief.\nuser: hello there"
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    usage = events[-1]["metadata"]["usage"]
    assert usage == {"inputTokens": 4, "outputTokens": 9, "totalTokens": 13}


def test_max_tokens_and_stop_sequences(runtime: Any) -> None:
    events = converse_stream(runtime, maxTokens=3)
    assert deltas(events) == f"[emulator] {MODEL} received:"
    assert events[-2]["messageStop"]["stopReason"] == "max_tokens"
    events = converse_stream(runtime, stopSequences=["Be"])
    assert deltas(events) == f"[emulator] {MODEL} received:\nsystem:"
    assert events[-2]["messageStop"]["stopReason"] == "stop_sequence"


def test_converse(runtime: Any) -> None:
    response = runtime.converse(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    assert response["output"]["message"]["content"][0]["text"].endswith("user: hi")
    assert response["usage"]["outputTokens"] == 5


def test_invoke_with_response_stream_speaks_anthropic_messages(runtime: Any) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    response = runtime.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(body))
    events = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text.endswith("system: Be brief.\nuser: hi")
    assert events[-2]["usage"]["output_tokens"] == len(kinds) - 5


def test_invoke(runtime: Any) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 2,
        "messages": [{"role": "user", "content": "hi"}],
    }
    response = runtime.invoke_model(modelId=MODEL, body=json.dumps(body))
    reply = json.loads(response["body"].read())
    assert reply["stop_reason"] == "max_tokens" and reply["usage"]["output_tokens"] == 2


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("throttle", "ThrottlingException"),
        ("access_denied", "AccessDeniedException"),
        ("unknown_model", "ValidationException"),
        ("model_timeout", "ModelTimeoutException"),
        ("unavailable", "ServiceUnavailableException"),
    ],
)
def test_faults_before_the_stream(bedrock: Emulator, runtime: Any, kind: str, code: str) -> None:
    bedrock.state.add_faults([Fault(kind=kind)])
    with pytest.raises(ClientError) as caught:
        converse_stream(runtime)
    assert caught.value.response["Error"]["Code"] == code
    converse_stream(runtime)  # a fault hits one call by default


@pytest.mark.parametrize(
    ("kind", "code"),
    [("stream_error", "modelStreamErrorException"), ("stream_throttle", "throttlingException")],
)
def test_faults_inside_the_stream(bedrock: Emulator, runtime: Any, kind: str, code: str) -> None:
    bedrock.state.add_faults([Fault(kind=kind, after_chunks=2)])
    response = runtime.converse_stream(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    received = []
    with pytest.raises(EventStreamError) as caught:
        for event in response["stream"]:
            received.append(event)
    assert caught.value.response["Error"]["Code"] == code
    assert len([e for e in received if "contentBlockDelta" in e]) == 2


def test_fault_for_one_model_only(bedrock: Emulator, runtime: Any) -> None:
    bedrock.state.add_faults([Fault(kind="throttle", model="other-model", times=0)])
    converse_stream(runtime)
    assert bedrock.state.faults  # still queued for the other model


def test_pace_and_slow_first_token(bedrock: Emulator, runtime: Any) -> None:
    bedrock.state.pace = Pace(tokens_per_second=200)
    bedrock.state.add_faults([Fault(kind="slow_first_token", delay_ms=300)])
    started = time.monotonic()
    events = converse_stream(runtime)
    elapsed = time.monotonic() - started
    tokens = len([e for e in events if "contentBlockDelta" in e])
    # Lower bounds only: the emulator never sends faster than asked.
    assert elapsed >= 0.3 + (tokens - 1) / 200


def test_reply_tokens_makes_long_replies(bedrock: Emulator, runtime: Any) -> None:
    bedrock.state.pace = Pace(reply_tokens=500)
    events = converse_stream(runtime)
    assert len([e for e in events if "contentBlockDelta" in e]) == 500


def test_control_endpoints(bedrock: Emulator, runtime: Any) -> None:
    with httpx.Client(base_url=bedrock.url) as http:
        assert http.put("/_emulator/pace", json={"reply_tokens": 7}).status_code == 200
        faults = [{"kind": "stream_error", "after_chunks": 1}, {"kind": "throttle"}]
        assert http.post("/_emulator/faults", json=faults).status_code == 200
        assert http.post("/_emulator/faults", json={"kind": "nope"}).status_code == 422
        with pytest.raises(EventStreamError):
            converse_stream(runtime)
        with pytest.raises(ClientError):
            converse_stream(runtime)
        assert len(deltas(converse_stream(runtime)).split()) == 7
        calls = http.get("/_emulator/state").json()["calls"]
        assert [c["status"] for c in calls] == ["failed", "failed", "completed"]
        assert calls[0]["tokens_sent"] == 1
        http.post("/_emulator/reset")
        assert http.get("/_emulator/state").json() == {
            "pace": {"ttft_ms": 0.0, "tokens_per_second": 0.0, "reply_tokens": None},
            "faults": [],
            "calls": [],
        }


def test_unsigned_requests_are_denied(bedrock: Emulator) -> None:
    response = httpx.post(f"{bedrock.url}/model/{MODEL}/converse", json={"messages": []})
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"].startswith("AccessDeniedException")


def test_cli_fault_syntax() -> None:
    assert Fault.parse_cli("stream_error:3") == Fault(kind="stream_error", after_chunks=3, times=0)
    assert Fault.parse_cli("slow_first_token:500").delay_ms == 500


def test_langchain_aws_models_with_endpoint_url(bedrock: Emulator) -> None:
    """ChatBedrockConverse and ChatBedrock pointed at the emulator work unchanged."""
    from langchain_aws import ChatBedrock, ChatBedrockConverse

    converse = ChatBedrockConverse(
        model=MODEL, endpoint_url=bedrock.url, region_name="us-east-1", max_tokens=50
    )
    invoke_api = ChatBedrock(
        model_id=MODEL, endpoint_url=bedrock.url, region_name="us-east-1", max_tokens=50
    )
    for model in (converse, invoke_api):
        chunks = list(model.stream("hello emulator"))
        text = "".join(chunk.text for chunk in chunks)
        assert text.endswith("user: hello emulator")
        usage = sum(chunks[1:], chunks[0]).usage_metadata
        assert usage is not None and usage["output_tokens"] == len(text.split())
        assert model.invoke("hello emulator").text == text
    assert [call.operation for call in bedrock.state.calls] == [
        "converse-stream",
        "converse",
        "invoke-with-response-stream",
        "invoke",
    ]
