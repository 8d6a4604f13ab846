"""Requests checked as Bedrock checks them, failing with Bedrock's ValidationException messages.

Two layers, as in Bedrock. Converse: the service's own constraints (the API model's ranges and
enums, reported the AWS way: ``1 validation error detected: Value '1.5' at
'inferenceConfig.temperature' failed to satisfy constraint: ...``), then the conversation's
rules and the model's limits. InvokeModel with an Anthropic body: the body's JSON schema
(``Malformed input request: #: required key [max_tokens] not found, please reformat your input
and try again.``), then the Messages API's rules (``messages: first message must use the "user"
role``).
"""

import base64
import binascii
import itertools
import json
import re
from typing import Any

from service.chains.images import sniff
from service.emulator.bedrock_errors import BedrockError

# The most output tokens a request may ask of a model (Anthropic's documented maxima; Bedrock
# caps Claude 3.5 Sonnet v1 at 4096). Matched by the first fragment the model id contains, so
# inference profiles (us.…, global.…) and ARNs match too; other models are not limited here.
MAX_OUTPUT_TOKENS: tuple[tuple[str, int], ...] = (
    ("anthropic.claude-3-5-sonnet-20240620", 4096),
    ("anthropic.claude-3-5-sonnet-20241022", 8192),
    ("anthropic.claude-3-5-haiku", 8192),
    ("anthropic.claude-3-7-sonnet", 64000),
    ("anthropic.claude-3-haiku", 4096),
    ("anthropic.claude-3-sonnet", 4096),
    ("anthropic.claude-3-opus", 4096),
    ("anthropic.claude-sonnet-4-5", 64000),
    ("anthropic.claude-haiku-4-5", 64000),
    ("anthropic.claude-opus-4-5", 64000),
    ("anthropic.claude-opus-4-1", 32000),
    ("anthropic.claude-opus-4", 32000),
    ("anthropic.claude-sonnet-4", 64000),
)
# The Anthropic Messages body's keys that Bedrock accepts; any other is "extraneous".
ANTHROPIC_KEYS = frozenset(
    {
        "anthropic_version",
        "anthropic_beta",
        "max_tokens",
        "messages",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "thinking",
    }
)
ROLES = ("user", "assistant")
# ToolSpecification.name: 1–64 characters of [a-zA-Z0-9_-] (botocore checks only the minimum).
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_TOOL_NAME_MAX = 64
# Converse's ImageFormat enum, and Anthropic's image media types, in their APIs' order.
IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
ANTHROPIC_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def max_output_tokens(model: str) -> int | None:
    return next((limit for fragment, limit in MAX_OUTPUT_TOKENS if fragment in model), None)


def invalid(message: str) -> BedrockError:
    return BedrockError(400, "ValidationException", message)


# -- Converse ---------------------------------------------------------------------------------


def check_converse(model: str, body: dict[str, Any]) -> None:
    """Raise Bedrock's ValidationException for a Converse / ConverseStream body it refuses."""
    messages = body.get("messages") or []
    config = body.get("inferenceConfig") or {}
    _check_constraints(messages, config, (body.get("toolConfig") or {}).get("tools") or [])
    roles = [message["role"] for message in messages]
    if not roles or roles[0] != "user":
        raise invalid(
            "A conversation must start with a user message. Try again with a conversation that "
            "starts with a user message."
        )
    if any(a == b for a, b in itertools.pairwise(roles)):
        raise invalid(
            "A conversation must alternate between user and assistant roles. Make sure the "
            "conversation alternates between user and assistant roles and try again."
        )
    for i, message in enumerate(messages):
        for j, block in enumerate(message.get("content") or []):
            if "text" in block and not str(block["text"]).strip():
                raise invalid(
                    f"The text field in the ContentBlock object at messages.{i}.content.{j} is "
                    "blank. Add text to the text field, and try again."
                )
            if "image" in block:
                image = block["image"]
                problem = _image_problem(f"image/{image.get('format')}", image["source"]["bytes"])
                if problem:  # the model's own check, passed on by Bedrock
                    at = f"messages.{i}.content.{j}.image.source.base64"
                    raise invalid(f"The model returned the following errors: {at}: {problem}")
    limit = max_output_tokens(model)
    max_tokens = config.get("maxTokens")
    if limit is not None and max_tokens is not None and max_tokens > limit:
        raise invalid(
            f"The maximum tokens you requested exceeds the model limit of {limit}. Try again "
            f"with a maximum tokens value that is lower than {limit}."
        )


def _check_constraints(
    messages: list[dict[str, Any]], config: dict[str, Any], tools: list[dict[str, Any]]
) -> None:
    """The API model's own constraints, checked by the service before any model sees them."""
    errors = []
    for i, tool in enumerate(tools, start=1):
        name = (tool.get("toolSpec") or {}).get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str):
            continue  # a cachePoint, or botocore refused it already
        at = f"Value '{name}' at 'toolConfig.tools.{i}.member.toolSpec.name' failed to satisfy"
        if len(name) > _TOOL_NAME_MAX:
            errors.append(f"{at} constraint: Member must have length less than or equal to 64")
        if not _TOOL_NAME.fullmatch(name):
            errors.append(
                f"{at} constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
            )
    for i, message in enumerate(messages, start=1):
        role = message.get("role")
        if role not in ROLES:
            errors.append(
                f"Value '{role}' at 'messages.{i}.member.role' failed to satisfy constraint: "
                "Member must satisfy enum value set: [user, assistant]"
            )
        for j, block in enumerate(message.get("content") or [], start=1):
            image = block.get("image") if isinstance(block, dict) else None
            if image is None:
                continue
            at = f"messages.{i}.member.content.{j}.member.image"
            if image.get("format") not in IMAGE_FORMATS:
                errors.append(
                    f"Value '{image.get('format')}' at '{at}.format' failed to satisfy "
                    f"constraint: Member must satisfy enum value set: [{', '.join(IMAGE_FORMATS)}]"
                )
            if not (image.get("source") or {}).get("bytes"):
                errors.append(
                    f"Value null at '{at}.source' failed to satisfy constraint: Member must not "
                    "be null"
                )
    bounds = {"maxTokens": (1, None), "temperature": (0, 1), "topP": (0, 1)}
    for name, (low, high) in bounds.items():
        value = config.get(name)
        if not isinstance(value, int | float):
            continue
        at = f"Value '{value}' at 'inferenceConfig.{name}' failed to satisfy constraint:"
        if value < low:
            errors.append(f"{at} Member must have value greater than or equal to {low}")
        elif high is not None and value > high:
            errors.append(f"{at} Member must have value less than or equal to {high}")
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected"
        raise invalid(f"{count}: {'; '.join(errors)}")


# -- InvokeModel, Anthropic Messages body -----------------------------------------------------


def parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid(
            "Malformed input request, please reformat your input and try again."
        ) from None


def check_anthropic(model: str, body: Any) -> None:
    """Raise Bedrock's ValidationException for an Anthropic InvokeModel body it refuses."""
    if not isinstance(body, dict):
        raise invalid("Malformed input request, please reformat your input and try again.")
    errors = [f"#: required key [{key}] not found" for key in _REQUIRED if key not in body]
    errors += [
        f"#: extraneous key [{key}] is not permitted" for key in body if key not in ANTHROPIC_KEYS
    ]
    errors += _number(
        "max_tokens", body.get("max_tokens"), 1, max_output_tokens(model), integer=True
    )
    errors += _number("temperature", body.get("temperature"), 0, 1)
    errors += _number("top_p", body.get("top_p"), 0, 1)
    if errors:
        if "messages" in body:  # the schema's other branch (text completions) is ruled out
            errors.insert(
                0, '#: subject must not be valid against schema {"required":["messages"]}'
            )
        raise invalid(
            f"Malformed input request: {''.join(errors)}, please reformat your input and try again."
        )
    messages = body["messages"]
    if not messages:
        raise invalid("messages: at least one message is required")
    for i, message in enumerate(messages):
        if message.get("role") not in ROLES:
            raise invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    roles = [message["role"] for message in messages]
    if roles[0] != "user":
        raise invalid('messages: first message must use the "user" role')
    for a, b in itertools.pairwise(roles):
        if a == b:
            raise invalid(
                'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{a}" roles in a row'
            )
    for i, message in enumerate(messages):
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if any(b.get("type") == "text" and not b.get("text") for b in blocks or []):
            raise invalid("messages: text content blocks must be non-empty")
        for j, block in enumerate(blocks or []):
            if block.get("type") != "image":
                continue
            source, at = block.get("source") or {}, f"messages.{i}.content.{j}.image.source"
            media_type = source.get("media_type")
            if media_type not in ANTHROPIC_IMAGE_TYPES:
                allowed = ", ".join(f"'{kind}'" for kind in ANTHROPIC_IMAGE_TYPES[:-1])
                raise invalid(
                    f"{at}.base64.media_type: Input should be {allowed} or "
                    f"'{ANTHROPIC_IMAGE_TYPES[-1]}'"
                )
            problem = _image_problem(media_type, source.get("data"))
            if problem:
                raise invalid(f"{at}.base64: {problem}")


def _image_problem(declared: str, data: Any) -> str | None:
    """The model's check of an image's bytes (Anthropic's wording), None if they are fine."""
    try:
        raw = base64.b64decode(data if isinstance(data, str) else "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    actual = sniff(raw)
    if actual is None:
        return "Could not process image"
    if actual != declared:
        return (
            f"The image was specified using the {declared} media type, but the image appears "
            f"to be a {actual} image"
        )
    return None


_REQUIRED = ("messages", "max_tokens", "anthropic_version")
_JSON_TYPES = {str: "String", bool: "Boolean", dict: "JSONObject", list: "JSONArray"}


def _number(
    key: str, value: Any, low: float, high: float | None, *, integer: bool = False
) -> list[str]:
    """Everit-style schema messages for a number out of its type or range (absent: none)."""
    if value is None:
        return []
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        found = _JSON_TYPES.get(type(value), "BigDecimal")
        return [f"#/{key}: expected type: {'Integer' if integer else 'Number'}, found: {found}"]
    if value < low:
        return [f"#/{key}: {value} is not greater or equal to {low}"]
    if high is not None and value > high:
        return [f"#/{key}: {value} is not less or equal to {high}"]
    return []
