"""The emulator through boto3/botocore unchanged: the real client decodes what it sends."""

import json
import re
import time
from typing import Any

import httpx
import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.helpers import ANTHROPIC_BODY, HI, HI_ANTHROPIC
from tests.helpers import EMULATED_MODEL as MODEL

SIGNED = {"authorization": "AWS4-HMAC-SHA256 any"}


def converse_stream(runtime: Any, text: str = "hello there", **config: Any) -> list[dict[str, Any]]:
    response = runtime.converse_stream(
        modelId=MODEL,
        system=[{"text": "Be brief."}],
        messages=[{"role": "user", "content": [{"text": text}]}],
        inferenceConfig=config,
    )
    return list(response["stream"])


def deltas(events: list[dict[str, Any]]) -> str:
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
        ("not_found", "ResourceNotFoundException"),
        ("quota_exceeded", "ServiceQuotaExceededException"),
        ("model_error", "ModelErrorException"),
        ("internal", "InternalServerException"),
        ("not_ready", "ModelNotReadyException"),
        ("model_timeout", "ModelTimeoutException"),
        ("unavailable", "ServiceUnavailableException"),
    ],
)
def test_faults_before_the_stream(bedrock: Emulator, runtime: Any, kind: str, code: str) -> None:
    bedrock.state.add_faults([Fault(kind=kind)])
    with pytest.raises(ClientError) as caught:
        converse_stream(runtime)
    error = caught.value
    assert error.response["Error"]["Code"] == code
    # botocore knows every one: each is a modelled error of Bedrock Runtime, status and all.
    assert isinstance(error, getattr(runtime.exceptions, code))
    status = runtime.meta.service_model.shape_for(code).metadata["error"]["httpStatusCode"]
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    converse_stream(runtime)  # a fault hits one call by default


def test_model_error_names_its_model_and_status(bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="model_error")])
    response = httpx.post(
        f"{bedrock.url}/model/{MODEL}/invoke", json=ANTHROPIC_BODY, headers=SIGNED
    )
    assert response.status_code == 424
    assert response.json() == {
        "message": "The model failed to process the request.",
        "originalStatusCode": 500,
        "resourceName": MODEL,
    }


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("stream_error", "modelStreamErrorException"),
        ("stream_throttle", "throttlingException"),
        ("stream_internal", "internalServerException"),
        ("stream_validation", "validationException"),
        ("stream_unavailable", "serviceUnavailableException"),
        # ConverseStream has no modelTimeoutException event (see the next test)
        ("stream_model_timeout", "modelStreamErrorException"),
    ],
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


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("stream_error", "modelStreamErrorException"),
        ("stream_throttle", "throttlingException"),
        ("stream_internal", "internalServerException"),
        ("stream_validation", "validationException"),
        ("stream_unavailable", "serviceUnavailableException"),
        ("stream_model_timeout", "modelTimeoutException"),
    ],
)
def test_faults_inside_the_invoke_stream(
    bedrock: Emulator, runtime: Any, kind: str, code: str
) -> None:
    bedrock.state.add_faults([Fault(kind=kind, after_chunks=1)])
    response = runtime.invoke_model_with_response_stream(
        modelId=MODEL, body=json.dumps(ANTHROPIC_BODY)
    )
    received = []
    with pytest.raises(EventStreamError) as caught:
        for event in response["body"]:
            received.append(json.loads(event["chunk"]["bytes"])["type"])
    assert caught.value.response["Error"]["Code"] == code
    assert received == ["message_start", "content_block_start", "content_block_delta"]


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("stream_error", "ModelErrorException"),
        ("stream_throttle", "ThrottlingException"),
        ("stream_internal", "InternalServerException"),
        ("stream_validation", "ValidationException"),
        ("stream_unavailable", "ServiceUnavailableException"),
        ("stream_model_timeout", "ModelTimeoutException"),
        ("stream_corrupt", "InternalServerException"),
    ],
)
def test_stream_faults_fail_whole_replies_with_http_errors(
    bedrock: Emulator, runtime: Any, kind: str, code: str
) -> None:
    bedrock.state.add_faults([Fault(kind=kind, times=2)])
    with pytest.raises(ClientError) as caught:
        runtime.converse(modelId=MODEL, messages=HI)
    assert caught.value.response["Error"]["Code"] == code
    with pytest.raises(ClientError) as caught:
        runtime.invoke_model(modelId=MODEL, body=json.dumps(ANTHROPIC_BODY))
    assert caught.value.response["Error"]["Code"] == code


def test_stall_pauses_then_goes_on(bedrock: Emulator, runtime: Any) -> None:
    bedrock.state.add_faults([Fault(kind="stall", after_chunks=2, delay_ms=300)])
    started = time.monotonic()
    events = converse_stream(runtime)
    assert time.monotonic() - started >= 0.3
    assert next(iter(events[-1])) == "metadata"
    assert bedrock.state.calls[-1].status == "completed"


def test_cli_fault_syntax() -> None:
    assert Fault.parse_cli("stream_error:3") == Fault(kind="stream_error", after_chunks=3, times=0)
    assert Fault.parse_cli("stream_internal") == Fault(kind="stream_internal", times=0)
    assert Fault.parse_cli("slow_first_token:500").delay_ms == 500
    assert Fault.parse_cli("stall:3:2000") == Fault(
        kind="stall", after_chunks=3, delay_ms=2000, times=0
    )
    assert Fault.parse_cli("stall:3") == Fault(
        kind="stall", after_chunks=3, delay_ms=10_000, times=0
    )
    assert Fault.parse_cli("throttle") == Fault(kind="throttle", times=0)
    model = "anthropic.claude-3-haiku-20240307-v1:0"  # a model id has colons of its own
    assert Fault.parse_cli(f"throttle@{model}") == Fault(kind="throttle", times=0, model=model)
    assert Fault.parse_cli(f"stream_error:3@{model}").model == model


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("throttle:3", "throttle:3: expected throttle"),
        ("stream_error:1:2", "stream_error:1:2: expected stream_error[:N]"),
        ("stall:1:2:3", "stall:1:2:3: expected stall[:N[:MS]]"),
        ("stall:soon", "stall:soon: expected whole numbers after the kind"),
        ("nope", "nope: unknown fault kind; one of throttle, access_denied,"),
    ],
)
def test_cli_fault_syntax_errors(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        Fault.parse_cli(text)


def test_langchain_aws_models_with_endpoint_url(bedrock: Emulator) -> None:
    """ChatBedrockConverse and ChatBedrock pointed at the emulator work unchanged."""
    from langchain_aws import ChatBedrock, ChatBedrockConverse

    converse = ChatBedrockConverse(
        model_id=MODEL, endpoint_url=bedrock.url, region_name="us-east-1", max_tokens=50
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


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_every_response_has_a_request_id(bedrock: Emulator, runtime: Any) -> None:
    ids = [runtime.converse(modelId=MODEL, messages=HI)["ResponseMetadata"]["RequestId"]]
    stream = runtime.converse_stream(modelId=MODEL, messages=HI)
    list(stream["stream"])
    ids.append(stream["ResponseMetadata"]["RequestId"])
    bedrock.state.add_faults([Fault(kind="throttle")])
    with pytest.raises(ClientError) as caught:
        runtime.converse(modelId=MODEL, messages=HI)
    ids.append(caught.value.response["ResponseMetadata"]["RequestId"])
    assert all(UUID.match(i) for i in ids) and len(set(ids)) == 3
    assert [call.request_id for call in bedrock.state.calls] == ids
    unsigned = httpx.post(f"{bedrock.url}/model/{MODEL}/converse", json={})
    assert UUID.match(unsigned.headers["x-amzn-RequestId"])


def test_invoke_model_headers(bedrock: Emulator, runtime: Any) -> None:
    bedrock.state.pace = Pace(ttft_ms=50)
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 3, "messages": HI_ANTHROPIC}
    response = runtime.invoke_model(modelId=MODEL, body=json.dumps(body))
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-invocation-latency"]) >= 50
    assert headers["x-amzn-bedrock-input-token-count"] == "1"
    assert headers["x-amzn-bedrock-output-token-count"] == "3"


def test_model_stream_error_carries_the_original_status(bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=1)])
    raw = httpx.post(
        f"{bedrock.url}/model/{MODEL}/converse-stream",
        json={"messages": HI},
        headers={"authorization": "any"},
    ).content
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    last = list(buffer)[-1]
    assert last.headers[":exception-type"] == "modelStreamErrorException"
    assert json.loads(last.payload) == {
        "message": "The model stream failed (emulated).",
        "originalStatusCode": 500,
        "originalMessage": "The model failed to respond (emulated).",
    }
