"""The emulator validates requests as Bedrock does: the same codes and messages, through boto3."""

import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from service.emulator.server import Emulator
from service.emulator.state import Fault
from tests.helpers import ANTHROPIC_BODY, HI, HI_ANTHROPIC
from tests.helpers import EMULATED_MODEL as MODEL

SIGNED = {"authorization": "AWS4-HMAC-SHA256 any"}


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


def test_converse_tool_names_are_checked_as_bedrock_checks_them(runtime: Any) -> None:
    def tool(name: str) -> dict[str, Any]:
        return {"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}}

    with pytest.raises(ClientError) as caught:
        runtime.converse(
            modelId=MODEL, messages=HI, toolConfig={"tools": [tool("ok_1"), tool("x" * 65 + "!")]}
        )
    assert caught.value.response["Error"]["Message"] == (
        "2 validation errors detected: Value '" + "x" * 65 + "!' at 'toolConfig.tools.2.member"
        ".toolSpec.name' failed to satisfy constraint: Member must have length less than or "
        "equal to 64; Value '" + "x" * 65 + "!' at 'toolConfig.tools.2.member.toolSpec.name' "
        "failed to satisfy constraint: Member must satisfy regular expression pattern: "
        "[a-zA-Z0-9_-]+"
    )
    runtime.converse(modelId=MODEL, messages=HI, toolConfig={"tools": [tool("a" * 64)]})
