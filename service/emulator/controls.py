"""Bedrock's model controls, as the emulator answers them: reasoning, guardrails, the
performance configuration, service tier and request metadata.

- Reasoning: a request that asks the model to think — Anthropic's ``thinking`` (enabled with a
  ``budget_tokens``, or adaptive), Nova 2's ``reasoningConfig``, gpt-oss's ``reasoning_effort``
  — gets a reasoning block before its text: ``[emulator] reasoning about: <the last user
  text>``, signed ``emulator-signature``. Anthropic's thinking rules are checked as Anthropic
  checks them (budget ≥ 1024 and below max_tokens; no temperature or top_k; top_p ≥ 0.95).
- Guardrails: a request with a guardrail whose prompt contains the word ``BLOCKED`` is blocked:
  the reply is the guardrail's message (:data:`BLOCKED_MESSAGE`), the stop reason
  ``guardrail_intervened``, and with trace enabled the response's ``trace.guardrail`` holds an
  input assessment naming the guardrail (Converse).
- ``performanceConfig`` and ``serviceTier`` are echoed in the response, as Bedrock does;
  ``requestMetadata`` is validated.

Malformed values fail with Bedrock's ValidationException texts, the service's constraints
(from botocore's model of the API: enums, patterns, lengths) reported the AWS way.
"""

import dataclasses
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from service.emulator.bedrock_errors import BedrockError
from service.emulator.replies import Reply
from service.emulator.state import Call

BLOCKED_WORD = "BLOCKED"
BLOCKED_MESSAGE = "Sorry, the model cannot answer this question."
SIGNATURE = "emulator-signature"
_BLOCKED = re.compile(rf"\b{BLOCKED_WORD}\b")
_TOKEN = re.compile(r"\s*\S+")
# Request fields recorded in Call.request: all but the conversation itself.
_CONVERSATION = ("messages", "system", "toolConfig", "tools")
_THINKING_DOCS = (
    "Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)


@dataclass(frozen=True)
class Controls:
    """What a request asked for besides its conversation."""

    reasoning: bool = False
    guardrail: dict[str, Any] | None = None  # guardrailIdentifier, guardrailVersion, trace
    performance: dict[str, Any] | None = None
    service_tier: dict[str, Any] | None = None

    def echoed(self) -> dict[str, Any]:
        """Converse's response fields that repeat the request's configuration."""
        echo: dict[str, Any] = {}
        if self.performance:
            echo["performanceConfig"] = self.performance
        if self.service_tier:
            echo["serviceTier"] = self.service_tier
        return echo

    def blocks(self, prompt: str) -> bool:
        return self.guardrail is not None and _BLOCKED.search(prompt) is not None

    def trace(self) -> dict[str, Any] | None:
        """The guardrail's trace of a blocked prompt (trace enabled), as Converse sends it."""
        guardrail = self.guardrail or {}
        if guardrail.get("trace", "disabled") == "disabled":
            return None
        topic = {"name": BLOCKED_WORD, "type": "DENY", "action": "BLOCKED", "detected": True}
        assessment = {"topicPolicy": {"topics": [topic]}}
        return {
            "guardrail": {
                "inputAssessment": {guardrail["guardrailIdentifier"]: assessment},
                "actionReason": "Guardrail blocked.",
            }
        }


def reasoning_text(last_user_text: str) -> str:
    return f"[emulator] reasoning about: {last_user_text or 'nothing'}"


def apply(operation: str, body: Any, headers: Any, reply: Reply, call: Call) -> Reply:
    """Check the request's controls, record them in ``call.request``, and shape the reply:
    blocked by the guardrail, or with reasoning before its text; Converse's echoed fields."""
    if not isinstance(body, dict):
        return reply
    invoke = operation.startswith("invoke")
    call.request = {key: value for key, value in body.items() if key not in _CONVERSATION}
    if invoke:
        named = invoke_headers(headers)
        call.request["headers"] = named
        controls = invoke_controls(body, named)
    else:
        controls = converse_controls(body)
    echoed = controls.echoed()
    prompt = json.dumps([body.get("system"), body.get("messages")], ensure_ascii=False)
    if not invoke and controls.blocks(prompt):
        return dataclasses.replace(
            reply,
            tokens=_TOKEN.findall(BLOCKED_MESSAGE),
            stop_reason="guardrail_intervened",
            stop_sequence=None,
            tool=None,
            trace=controls.trace(),
            echoed=echoed,
        )
    reasoning = _TOKEN.findall(reasoning_text(_last_user_text(body))) if controls.reasoning else []
    return dataclasses.replace(reply, reasoning=tuple(reasoning), echoed=echoed)


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = [{"text": content}] if isinstance(content, str) else content or []
        text = " ".join(str(block.get("text", "")) for block in blocks if isinstance(block, dict))
        if text.strip():
            return " ".join(text.split())
    return ""


# -- Converse -----------------------------------------------------------------------------------


def converse_controls(body: dict[str, Any]) -> Controls:
    """Check a Converse body's controls as Bedrock does; what they ask for."""
    errors: list[str] = []
    guardrail = body.get("guardrailConfig")
    if guardrail is not None:
        errors += _shape_errors("GuardrailConfiguration", guardrail, "guardrailConfig")
    tier = body.get("serviceTier")
    if tier is not None:
        errors += _shape_errors("ServiceTier", tier, "serviceTier")
    performance = body.get("performanceConfig")
    if performance is not None:
        errors += _shape_errors("PerformanceConfiguration", performance, "performanceConfig")
    metadata = body.get("requestMetadata")
    if metadata is not None:
        errors += _metadata_errors(metadata)
    _raise(errors)
    fields = body.get("additionalModelRequestFields") or {}
    config = body.get("inferenceConfig") or {}
    reasoning = _reasons(fields)
    if _thinking_enabled(fields):
        _check_thinking(
            fields["thinking"],
            config.get("maxTokens"),
            {"temperature": config.get("temperature"), "top_k": fields.get("top_k")},
            config.get("topP"),
        )
    return Controls(reasoning, guardrail, performance, tier)


# -- InvokeModel --------------------------------------------------------------------------------

_HEADERS = {
    "x-amzn-bedrock-guardrailidentifier": "guardrailIdentifier",
    "x-amzn-bedrock-guardrailversion": "guardrailVersion",
    "x-amzn-bedrock-trace": "trace",
    "x-amzn-bedrock-performanceconfig-latency": "performanceConfigLatency",
    "x-amzn-bedrock-service-tier": "serviceTier",
    "x-amzn-bedrock-request-metadata": "requestMetadata",
}


def invoke_headers(headers: Any) -> dict[str, str]:
    """InvokeModel's control headers by the API's member names."""
    return {name: headers[header] for header, name in _HEADERS.items() if header in headers}


def invoke_controls(body: dict[str, Any], headers: dict[str, str]) -> Controls:
    """Check an Anthropic InvokeModel request's controls (its headers and body's thinking)."""
    errors: list[str] = []
    enums = {
        "trace": ["ENABLED", "DISABLED", "ENABLED_FULL"],
        "performanceConfigLatency": ["standard", "optimized"],
        "serviceTier": ["priority", "default", "flex", "reserved"],
    }
    for name, allowed in enums.items():
        value = headers.get(name)
        if value is not None and value not in allowed:
            errors.append(_enum_error(value, name, allowed))
    _raise(errors)
    guardrail = None
    if "guardrailIdentifier" in headers:
        guardrail = {
            "guardrailIdentifier": headers["guardrailIdentifier"],
            "guardrailVersion": headers.get("guardrailVersion", ""),
            "trace": headers.get("trace", "DISABLED").lower(),
        }
    if isinstance(body, dict) and _thinking_enabled(body):
        _check_thinking(
            body["thinking"],
            body.get("max_tokens"),
            {"temperature": body.get("temperature"), "top_k": body.get("top_k")},
            body.get("top_p"),
        )
    latency = headers.get("performanceConfigLatency")
    tier = headers.get("serviceTier")
    return Controls(
        reasoning=isinstance(body, dict) and _reasons(body),
        guardrail=guardrail,
        performance={"latency": latency} if latency else None,
        service_tier={"type": tier} if tier else None,
    )


# -- checks -------------------------------------------------------------------------------------


def _reasons(fields: dict[str, Any]) -> bool:
    thinking = fields.get("thinking") or {}
    reasoning_config = fields.get("reasoningConfig") or {}
    return (
        thinking.get("type") in ("enabled", "adaptive")
        or reasoning_config.get("type") == "enabled"
        or bool(fields.get("reasoning_effort"))
    )


def _thinking_enabled(fields: dict[str, Any]) -> bool:
    return isinstance(fields.get("thinking"), dict) and fields["thinking"].get("type") == "enabled"


def _check_thinking(
    thinking: dict[str, Any], max_tokens: Any, unset: dict[str, Any], top_p: Any
) -> None:
    """Anthropic's rules for extended thinking with a budget, in its own words."""
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise _invalid("thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        raise _invalid(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if isinstance(max_tokens, int) and max_tokens <= budget:
        raise _invalid(
            f"`max_tokens` must be greater than `thinking.budget_tokens`. {_THINKING_DOCS}"
        )
    if unset.get("temperature") not in (None, 1):
        raise _invalid(
            "`temperature` may only be set to 1 when thinking is enabled. " + _THINKING_DOCS
        )
    if unset.get("top_k") is not None:
        raise _invalid("`top_k` must be unset when thinking is enabled. " + _THINKING_DOCS)
    if isinstance(top_p, int | float) and top_p < 0.95:
        raise _invalid(
            "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. "
            + _THINKING_DOCS
        )


def _metadata_errors(metadata: Any) -> list[str]:
    if not isinstance(metadata, dict):
        return []
    shape = _shape("RequestMetadata")
    errors = []
    if len(metadata) > shape.metadata["max"]:
        errors.append(
            f"Value at 'requestMetadata' failed to satisfy constraint: Member must have "
            f"length less than or equal to {shape.metadata['max']}"
        )
    for key, value in metadata.items():
        for member, text, kind in ((shape.key, key, "key"), (shape.value, value, "value")):
            errors += _string_errors(member, str(text), f"requestMetadata.{kind}")
    return errors


def _shape_errors(name: str, value: Any, at: str) -> list[str]:
    """Enum, pattern and length errors in a structure of strings, by botocore's model."""
    if not isinstance(value, dict):
        return []
    errors = []
    for member_name, member in _shape(name).members.items():
        member_value = value.get(member_name)
        if not isinstance(member_value, str):
            continue
        if member.enum and member_value not in member.enum:
            errors.append(_enum_error(member_value, f"{at}.{member_name}", list(member.enum)))
        else:
            errors += _string_errors(member, member_value, f"{at}.{member_name}")
    return errors


def _string_errors(member: Any, text: str, at: str) -> list[str]:
    errors = []
    low, high = member.metadata.get("min"), member.metadata.get("max")
    if high is not None and len(text) > high:
        errors.append(
            f"Value '{text}' at '{at}' failed to satisfy constraint: Member must have length "
            f"less than or equal to {high}"
        )
    elif low is not None and len(text) < low:
        errors.append(
            f"Value '{text}' at '{at}' failed to satisfy constraint: Member must have length "
            f"greater than or equal to {low}"
        )
    pattern = member.metadata.get("pattern")
    if pattern and not re.fullmatch(pattern, text):
        errors.append(
            f"Value '{text}' at '{at}' failed to satisfy constraint: Member must satisfy "
            f"regular expression pattern: {pattern}"
        )
    return errors


def _enum_error(value: str, at: str, allowed: list[str]) -> str:
    return (
        f"Value '{value}' at '{at}' failed to satisfy constraint: Member must satisfy enum "
        f"value set: [{', '.join(allowed)}]"
    )


@functools.cache
def _shape(name: str) -> Any:
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return model.shape_for(name)


def _raise(errors: list[str]) -> None:
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected"
        raise _invalid(f"{count}: {'; '.join(errors)}")


def _invalid(message: str) -> BedrockError:
    return BedrockError(400, "ValidationException", message)
