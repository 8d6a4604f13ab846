"""The emulator answers Bedrock's model controls as Bedrock does, through boto3 (the client
langchain-aws uses): reasoning blocks before the text, a guardrail that blocks ``BLOCKED``,
the performance configuration and service tier echoed, malformed values refused with Bedrock's
ValidationException texts."""

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from service.emulator.server import Emulator

MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
CLAUDE_37 = "anthropic.claude-3-7-sonnet-20250219-v1:0"
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}


def converse(runtime: Any, text: str = "Think about it", **fields: Any) -> Any:
    messages = [{"role": "user", "content": [{"text": text}]}]
    return runtime.converse(modelId=MODEL, messages=messages, **fields)


def refused(runtime: Any, **fields: Any) -> str:
    with pytest.raises(ClientError) as caught:
        converse(runtime, **fields)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    return str(error["Message"])


def test_thinking_puts_a_signed_reasoning_block_before_the_text(runtime: Any) -> None:
    reply = converse(
        runtime, additionalModelRequestFields=THINKING, inferenceConfig={"maxTokens": 2000}
    )
    reasoning, text = reply["output"]["message"]["content"]
    assert reasoning == {
        "reasoningContent": {
            "reasoningText": {
                "text": "[emulator] reasoning about: Think about it",
                "signature": "emulator-signature",
            }
        }
    }
    assert text["text"].startswith("[emulator]")


def test_a_thinking_stream_sends_reasoning_at_block_0_and_text_at_block_1(runtime: Any) -> None:
    stream = runtime.converse_stream(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": "Hi"}]}],
        additionalModelRequestFields={"reasoningConfig": {"type": "enabled"}},
    )["stream"]
    deltas = [e["contentBlockDelta"] for e in stream if "contentBlockDelta" in e]
    reasoning = [d for d in deltas if "reasoningContent" in d["delta"]]
    text = [d for d in deltas if "text" in d["delta"]]
    assert {d["contentBlockIndex"] for d in reasoning} == {0}
    assert {d["contentBlockIndex"] for d in text} == {1}
    assert reasoning[-1]["delta"]["reasoningContent"] == {"signature": "emulator-signature"}
    words = "".join(d["delta"]["reasoningContent"].get("text", "") for d in reasoning)
    assert words == "[emulator] reasoning about: Hi"
    assert deltas.index(reasoning[-1]) < deltas.index(text[0])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "additionalModelRequestFields": {
                    "thinking": {"type": "enabled", "budget_tokens": 10}
                }
            },
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            {"additionalModelRequestFields": THINKING, "inferenceConfig": {"maxTokens": 1024}},
            "`max_tokens` must be greater than `thinking.budget_tokens`.",
        ),
        (
            {"additionalModelRequestFields": THINKING, "inferenceConfig": {"temperature": 0.5}},
            "`temperature` may only be set to 1 when thinking is enabled.",
        ),
        (
            {"additionalModelRequestFields": {**THINKING, "top_k": 5}},
            "`top_k` must be unset when thinking is enabled.",
        ),
        (
            {"serviceTier": {"type": "gold"}},
            "1 validation error detected: Value 'gold' at 'serviceTier.type' failed to satisfy "
            "constraint: Member must satisfy enum value set: [priority, default, flex, reserved]",
        ),
        (
            {"performanceConfig": {"latency": "fast"}},
            "Value 'fast' at 'performanceConfig.latency' failed to satisfy constraint: Member "
            "must satisfy enum value set: [standard, optimized]",
        ),
        (
            {"guardrailConfig": {"guardrailIdentifier": "Bad Id", "guardrailVersion": "1"}},
            "Value 'Bad Id' at 'guardrailConfig.guardrailIdentifier' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern",
        ),
        (
            {"requestMetadata": {"bad!": "x"}},
            "Value 'bad!' at 'requestMetadata.key' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern",
        ),
    ],
)
def test_malformed_controls_are_refused_as_bedrock_refuses_them(
    runtime: Any, fields: dict[str, Any], message: str
) -> None:
    assert message in refused(runtime, **fields)


def test_the_guardrail_blocks_the_word_blocked(runtime: Any, bedrock: Emulator) -> None:
    guardrail = {"guardrailIdentifier": "gr1", "guardrailVersion": "DRAFT", "trace": "enabled"}
    reply = converse(runtime, "Say BLOCKED please", guardrailConfig=guardrail)
    assert reply["stopReason"] == "guardrail_intervened"
    assert reply["output"]["message"]["content"] == [
        {"text": "Sorry, the model cannot answer this question."}
    ]
    assessment = reply["trace"]["guardrail"]["inputAssessment"]["gr1"]
    assert assessment["topicPolicy"]["topics"][0]["action"] == "BLOCKED"
    # Without trace, no trace; without the word, the model answers.
    quiet = converse(runtime, "Say BLOCKED", guardrailConfig={**guardrail, "trace": "disabled"})
    assert quiet["stopReason"] == "guardrail_intervened" and "trace" not in quiet
    assert converse(runtime, "Say hello", guardrailConfig=guardrail)["stopReason"] == "end_turn"
    # The word alone: "UNBLOCKED" is not blocked, nor is any text without a guardrail.
    assert converse(runtime, "UNBLOCKED")["stopReason"] == "end_turn"
    assert converse(runtime, "BLOCKED")["stopReason"] == "end_turn"


def test_a_blocked_stream_carries_the_trace_in_its_metadata_event(runtime: Any) -> None:
    guardrail = {"guardrailIdentifier": "gr1", "guardrailVersion": "1", "trace": "enabled"}
    stream = runtime.converse_stream(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": "BLOCKED"}]}],
        guardrailConfig=guardrail,
    )["stream"]
    events = list(stream)
    assert events[-2]["messageStop"]["stopReason"] == "guardrail_intervened"
    assert "gr1" in events[-1]["metadata"]["trace"]["guardrail"]["inputAssessment"]


def test_performance_config_and_service_tier_are_echoed(runtime: Any) -> None:
    fields: dict[str, Any] = {
        "performanceConfig": {"latency": "optimized"},
        "serviceTier": {"type": "flex"},
    }
    reply = converse(runtime, **fields)
    assert reply["performanceConfig"] == {"latency": "optimized"}
    assert reply["serviceTier"] == {"type": "flex"}
    stream = runtime.converse_stream(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Hi"}]}], **fields
    )["stream"]
    metadata = list(stream)[-1]["metadata"]
    assert metadata["performanceConfig"] == {"latency": "optimized"}
    assert metadata["serviceTier"] == {"type": "flex"}


def test_invoke_model_echoes_its_headers_and_records_them(runtime: Any, bedrock: Emulator) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 2000,
        "messages": [{"role": "user", "content": "Hi"}],
        **THINKING,
    }
    reply = runtime.invoke_model(
        modelId=CLAUDE_37,
        body=json.dumps(body),
        serviceTier="priority",
        performanceConfigLatency="optimized",
        requestMetadata=json.dumps({"team": "a"}),
    )
    assert reply["serviceTier"] == "priority"
    assert reply["performanceConfigLatency"] == "optimized"
    thinking, text = json.loads(reply["body"].read())["content"]
    assert thinking["type"] == "thinking" and thinking["signature"] == "emulator-signature"
    assert text["type"] == "text"
    [call] = bedrock.state.calls
    assert call.request["headers"]["serviceTier"] == "priority"
    assert call.request["thinking"] == THINKING["thinking"]


def test_invoke_model_refuses_an_unknown_service_tier(runtime: Any) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    with pytest.raises(ClientError) as caught:
        runtime.invoke_model(modelId=CLAUDE_37, body=json.dumps(body), serviceTier="gold")
    assert "Value 'gold' at 'serviceTier'" in caught.value.response["Error"]["Message"]
