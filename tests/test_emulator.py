"""The emulator through boto3/botocore unchanged: the real client decodes what it sends."""

import json
import re
import struct
import time
from typing import Any

import boto3
import httpx
import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
HI = [{"role": "user", "content": [{"text": "hi"}]}]
HI_ANTHROPIC = [{"role": "user", "content": "hi"}]
ANTHROPIC_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "messages": HI_ANTHROPIC,
}
SIGNED = {"authorization": "AWS4-HMAC-SHA256 any"}


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


# -- validation, as Bedrock does it -----------------------------------------------------------

MALFORMED = "Malformed input request: {}, please reformat your input and try again."
NOT_SUBJECT = '#: subject must not be valid against schema {"required":["messages"]}'


def invoke_error(runtime: Any, body: Any) -> str:
    raw = body if isinstance(body, str) else json.dumps(body)
    with pytest.raises(ClientError) as caught:
        runtime.invoke_model(modelId=MODEL, body=raw)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    return str(error["Message"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"anthropic_version": None, "max_tokens": None},
            MALFORMED.format(
                f"{NOT_SUBJECT}#: required key [max_tokens] not found"
                "#: required key [anthropic_version] not found"
            ),
        ),
        (
            {"stream": True, "model": MODEL},
            MALFORMED.format(
                f"{NOT_SUBJECT}#: extraneous key [stream] is not permitted"
                "#: extraneous key [model] is not permitted"
            ),
        ),
        (
            {"temperature": 1.5},
            MALFORMED.format(f"{NOT_SUBJECT}#/temperature: 1.5 is not less or equal to 1"),
        ),
        (
            {"top_p": -0.5},
            MALFORMED.format(f"{NOT_SUBJECT}#/top_p: -0.5 is not greater or equal to 0"),
        ),
        # Claude 3 Haiku writes at most 4096 tokens
        (
            {"max_tokens": 8192},
            MALFORMED.format(f"{NOT_SUBJECT}#/max_tokens: 8192 is not less or equal to 4096"),
        ),
        (
            {"max_tokens": "100"},
            MALFORMED.format(f"{NOT_SUBJECT}#/max_tokens: expected type: Integer, found: String"),
        ),
        (
            {"messages": [{"role": "assistant", "content": "Hello."}, *HI_ANTHROPIC]},
            'messages: first message must use the "user" role',
        ),
        (
            {"messages": [*HI_ANTHROPIC, *HI_ANTHROPIC]},
            'messages: roles must alternate between "user" and "assistant", but found multiple '
            '"user" roles in a row',
        ),
        ({"messages": []}, "messages: at least one message is required"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
            "messages: text content blocks must be non-empty",
        ),
    ],
)
def test_invoke_model_validation(runtime: Any, change: dict[str, Any], message: str) -> None:
    body = {key: value for key, value in {**ANTHROPIC_BODY, **change}.items() if value is not None}
    assert invoke_error(runtime, body) == message


def test_invoke_model_validation_of_other_bodies(runtime: Any) -> None:
    titan = {"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 10}}
    assert invoke_error(runtime, titan) == MALFORMED.format(
        "#: required key [messages] not found#: required key [max_tokens] not found"
        "#: required key [anthropic_version] not found"
        "#: extraneous key [inputText] is not permitted"
        "#: extraneous key [textGenerationConfig] is not permitted"
    )
    assert invoke_error(runtime, "not json") == (
        "Malformed input request, please reformat your input and try again."
    )


def converse_error(runtime: Any, messages: list[dict[str, Any]], **config: Any) -> str:
    with pytest.raises(ClientError) as caught:
        runtime.converse_stream(modelId=MODEL, messages=messages, inferenceConfig=config)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    return str(error["Message"])


def test_converse_validation(bedrock: Emulator, runtime: Any) -> None:
    assistant = {"role": "assistant", "content": [{"text": "Hello."}]}
    assert converse_error(runtime, [assistant, *HI]) == (
        "A conversation must start with a user message. Try again with a conversation that "
        "starts with a user message."
    )
    assert converse_error(runtime, [*HI, *HI]) == (
        "A conversation must alternate between user and assistant roles. Make sure the "
        "conversation alternates between user and assistant roles and try again."
    )
    blank = [*HI, assistant, {"role": "user", "content": [{"text": "  "}]}]
    assert converse_error(runtime, blank) == (
        "The text field in the ContentBlock object at messages.2.content.0 is blank. Add text to "
        "the text field, and try again."
    )
    assert converse_error(runtime, HI, maxTokens=4097) == (
        "The maximum tokens you requested exceeds the model limit of 4096. Try again with a "
        "maximum tokens value that is lower than 4096."
    )
    # The service's own constraints (botocore checks minimums; maximums are the service's)
    assert converse_error(runtime, HI, temperature=1.5, topP=2) == (
        "2 validation errors detected: Value '1.5' at 'inferenceConfig.temperature' failed to "
        "satisfy constraint: Member must have value less than or equal to 1; Value '2' at "
        "'inferenceConfig.topP' failed to satisfy constraint: Member must have value less than "
        "or equal to 1"
    )
    role = httpx.post(
        f"{bedrock.url}/model/{MODEL}/converse",
        json={"messages": [{"role": "system", "content": [{"text": "hi"}]}]},
        headers=SIGNED,
    )
    assert role.status_code == 400 and role.json()["message"] == (
        "1 validation error detected: Value 'system' at 'messages.1.member.role' failed to "
        "satisfy constraint: Member must satisfy enum value set: [user, assistant]"
    )
    # Within the limits, for an inference profile of the same model too
    runtime.converse(modelId=f"us.{MODEL}", messages=HI, inferenceConfig={"maxTokens": 4096})
    runtime.converse(modelId="some.other-model", messages=HI, inferenceConfig={"maxTokens": 10**6})
    assert [call.status for call in bedrock.state.calls][-2:] == ["completed", "completed"]


def test_validation_comes_before_faults(bedrock: Emulator, runtime: Any) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
    converse_error(runtime, [*HI, *HI])
    assert bedrock.state.faults  # still queued for the next valid call


# -- tools, media, response fields, prompt cache ----------------------------------------------

WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            }
        },
    }
}


def test_converse_calls_a_tool_then_answers_its_result(runtime: Any) -> None:
    paris = [{"role": "user", "content": [{"text": "Paris"}]}]
    first = runtime.converse(modelId=MODEL, messages=paris, toolConfig={"tools": [WEATHER]})
    assert first["stopReason"] == "tool_use"
    text, call = first["output"]["message"]["content"]
    assert text["text"].endswith("tools: get_weather\nuser: Paris")
    assert call == {
        "toolUse": {
            "toolUseId": "tooluse_emulator000001",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
    }
    result = {"toolResult": {"toolUseId": "tooluse_emulator000001", "content": [{"text": "21 °C"}]}}
    second = runtime.converse(
        modelId=MODEL,
        messages=[*paris, first["output"]["message"], {"role": "user", "content": [result]}],
        toolConfig={"tools": [WEATHER]},
    )
    assert second["stopReason"] == "end_turn"
    assert second["output"]["message"]["content"][0]["text"].endswith("user: [toolResult: 21 °C]")
    # toolChoice any / tool: a call even after a result
    forced = runtime.converse(
        modelId=MODEL,
        messages=paris,
        toolConfig={"tools": [WEATHER], "toolChoice": {"tool": {"name": "get_weather"}}},
    )
    assert forced["stopReason"] == "tool_use"


def test_converse_stream_tool_use_events(runtime: Any) -> None:
    response = runtime.converse_stream(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": "Paris"}]}],
        toolConfig={"tools": [WEATHER], "toolChoice": {"any": {}}},
    )
    events = list(response["stream"])
    names = [next(iter(e)) for e in events]
    assert names[-7:] == [
        "contentBlockStop",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    start = events[-6]["contentBlockStart"]
    assert start == {
        "contentBlockIndex": 1,
        "start": {"toolUse": {"toolUseId": "tooluse_emulator000001", "name": "get_weather"}},
    }
    parts = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events[-5:-3]]
    assert json.loads("".join(parts)) == {"city": "Paris"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


def test_langchain_aws_tool_calls(bedrock: Emulator) -> None:
    """bind_tools works against the emulator, streamed or not, through both APIs."""
    from langchain_aws import ChatBedrock, ChatBedrockConverse
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "21 °C"

    for model in (
        ChatBedrockConverse(model=MODEL, endpoint_url=bedrock.url, region_name="us-east-1"),
        ChatBedrock(model_id=MODEL, endpoint_url=bedrock.url, region_name="us-east-1"),
    ):
        with_tools = model.bind_tools([get_weather])
        message = with_tools.invoke("Paris")
        [call] = message.tool_calls
        assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
        chunks = list(with_tools.stream("Paris"))
        assert sum(chunks[1:], chunks[0]).tool_calls[0]["args"] == {"city": "Paris"}
        result = ToolMessage("21 °C", tool_call_id=call["id"])
        final = with_tools.invoke([HumanMessage("Paris"), message, result])
        assert not final.tool_calls and final.text.endswith("[toolResult: 21 °C]")


def test_invoke_model_tool_use(runtime: Any) -> None:
    tools = [{"name": "get_weather", "input_schema": WEATHER["toolSpec"]["inputSchema"]["json"]}]
    body = {**ANTHROPIC_BODY, "tools": tools, "tool_choice": {"type": "any"}}
    reply = json.loads(runtime.invoke_model(modelId=MODEL, body=json.dumps(body))["body"].read())
    assert reply["stop_reason"] == "tool_use"
    assert reply["content"][1] == {
        "type": "tool_use",
        "id": "toolu_bdrk_emulator000001",
        "name": "get_weather",
        "input": {"city": "hi"},
    }
    events = [
        json.loads(e["chunk"]["bytes"])
        for e in runtime.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(body))[
            "body"
        ]
    ]
    tool_events = [e for e in events if e.get("index") == 1]
    assert [e["type"] for e in tool_events] == [
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
    ]
    partial = "".join(e["delta"]["partial_json"] for e in tool_events[1:3])
    assert json.loads(partial) == {"city": "hi"}
    body["tool_choice"] = {"type": "none"}
    reply = json.loads(runtime.invoke_model(modelId=MODEL, body=json.dumps(body))["body"].read())
    assert reply["stop_reason"] == "end_turn" and len(reply["content"]) == 1


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + header + b"\0" * 4


def test_images_and_documents_are_described_and_counted(runtime: Any) -> None:
    content = [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": png(300, 250)}}},
        {"document": {"format": "txt", "name": "notes", "source": {"bytes": b"one two three"}}},
    ]
    response = runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": content}])
    text = response["output"]["message"]["content"][0]["text"]
    assert text.endswith(
        "user: What is this? [image png 300×250]  [document notes (txt), 13 bytes]"
    )
    words = len(text.split("\n", 1)[1].removeprefix("user: ").split())
    # the words echoed, 300×250/750 = 100 for the image, 3 for the document's text
    assert response["usage"]["inputTokens"] == words + 100 + 3


def test_additional_model_response_fields(runtime: Any) -> None:
    paths = ["/stop_sequence", "/usage/output_tokens", "/nothing"]
    response = runtime.converse(
        modelId=MODEL,
        messages=HI,
        inferenceConfig={"stopSequences": ["received"]},
        additionalModelResponseFieldPaths=paths,
    )
    assert response["additionalModelResponseFields"] == {
        "stop_sequence": "received",
        "usage": {"output_tokens": 2},
    }
    stream = runtime.converse_stream(
        modelId=MODEL, messages=HI, additionalModelResponseFieldPaths=["/stop_reason"]
    )
    stop = next(e["messageStop"] for e in stream["stream"] if "messageStop" in e)
    assert stop["additionalModelResponseFields"] == {"stop_reason": "end_turn"}


def test_cache_points_write_then_read(bedrock: Emulator, runtime: Any) -> None:
    system = [{"text": "A long shared preamble of six words."}, {"cachePoint": {"type": "default"}}]

    def usage() -> dict[str, int]:
        return dict(runtime.converse(modelId=MODEL, system=system, messages=HI)["usage"])

    first, second = usage(), usage()
    assert first["cacheWriteInputTokens"] == 7 and first["cacheReadInputTokens"] == 0
    assert second["cacheReadInputTokens"] == 7 and second["cacheWriteInputTokens"] == 0
    assert first["inputTokens"] == second["inputTokens"] == 1  # "hi"
    assert first["totalTokens"] == 1 + 7 + first["outputTokens"]
    assert "cacheReadInputTokens" not in runtime.converse(modelId=MODEL, messages=HI)["usage"]
    bedrock.state.reset()
    assert usage()["cacheWriteInputTokens"] == 7

    blocks = [
        {
            "type": "text",
            "text": "Six words of shared preamble here.",
            "cache_control": {"type": "ephemeral"},
        }
    ]
    body = {**ANTHROPIC_BODY, "system": blocks}
    for read, write in ((0, 6), (6, 0)):
        response = runtime.invoke_model(modelId=MODEL, body=json.dumps(body))
        usage_ = json.loads(response["body"].read())["usage"]
        assert (usage_["cache_read_input_tokens"], usage_["cache_creation_input_tokens"]) == (
            read,
            write,
        )
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-amzn-bedrock-cache-read-input-token-count"] == str(read)
