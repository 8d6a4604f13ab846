"""A request's content as the emulator reads it: every kind of block, described and counted.

Text is echoed as it is. Other blocks are echoed as a short description (``[image png
64×64]``, ``[toolResult: 21 °C]``) and counted in usage as Bedrock would roughly count them: an
image ``width × height / 750`` tokens (Anthropic's rule; PNG, GIF, JPEG and WebP sizes are
read from the bytes), a document the words of its text (binary formats: a token per 100 bytes), tool
definitions the words of their JSON. Cache points (``cachePoint``, ``cache_control``) mark the
prefix that is written to, then read from, the emulator's prompt cache. With tools, the reply
calls one (see :meth:`Content.tool_call`).
"""

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

# One reader of image headers for the service and its emulator; tests pin it to sizes.
from service.chains.images import dimensions
from service.emulator.examples import example
from service.emulator.replies import ToolCall, Turn, count_tokens

_TEXT_DOCUMENTS = ("txt", "md", "csv", "html", "htm", "text/plain", "text/markdown", "text/csv")


@dataclass
class Content:
    system: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    extra_tokens: int = 0
    """Input tokens beyond the echoed words: images, documents, tool definitions."""
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(name, input JSON schema) of each tool offered."""
    tool_choice: str = "auto"  # auto | any | tool | none
    tool_name: str | None = None
    answered_tool: bool = False
    """The last turn is the user's, with tool results: the model answers them."""
    last_user_text: str = ""
    cache_key: str | None = None
    """What precedes the last cache point (a digest); None: the request has none."""
    output_schema: dict[str, Any] | None = None
    """Converse's outputConfig JSON schema: the reply is a JSON text that conforms to it."""
    cache_tokens: int = 0

    @property
    def input_tokens(self) -> int:
        words = sum(count_tokens(text) for text in self.system)
        return words + sum(count_tokens(turn.text) for turn in self.turns) + self.extra_tokens

    def tool_call(self) -> ToolCall | None:
        """The tool the reply calls: the one ``tool`` names; else the first, with ``any``, or
        with ``auto`` unless the last turn brings tool results (the model answers them)."""
        if not self.tools or self.tool_choice == "none":
            return None
        if self.tool_choice == "auto" and self.answered_tool:
            return None
        named = [tool for tool in self.tools if tool[0] == self.tool_name]
        name, schema = named[0] if self.tool_choice == "tool" and named else self.tools[0]
        value = example(schema, self.last_user_text)
        return ToolCall(name, value if isinstance(value, dict) else {})

    def reply_schema(self) -> dict[str, Any] | None:
        """The JSON Schema the reply's JSON follows: outputConfig's, or the called tool's."""
        call = self.tool_call()
        if self.output_schema is not None or call is None:
            return self.output_schema
        return next(schema for name, schema in self.tools if name == call.name)

    def structured_text(self) -> str | None:
        """The reply's text under ``outputConfig``: JSON conforming to its schema."""
        if self.output_schema is None:
            return None
        return json.dumps(example(self.output_schema, self.last_user_text))


class _Reader:
    """Walks the blocks in prompt order, keeping count for the cache point."""

    def __init__(self, content: Content) -> None:
        self.content = content
        self.seen: list[Any] = []
        self.tokens = 0

    def add(self, block: Any, text: str, extra: int = 0) -> str:
        self.seen.append(block)
        self.tokens += count_tokens(text) + extra
        self.content.extra_tokens += extra
        return text

    def cache_point(self) -> None:
        digest = hashlib.sha256(json.dumps(self.seen, sort_keys=True, default=str).encode())
        self.content.cache_key = digest.hexdigest()
        self.content.cache_tokens = self.tokens


# -- Converse -----------------------------------------------------------------------------------


def read_converse(model: str, body: dict[str, Any]) -> Content:
    content = Content()
    reader = _Reader(content)
    reader.seen.append(model)
    config = body.get("toolConfig") or {}
    for tool in config.get("tools") or []:
        if "cachePoint" in tool:
            reader.cache_point()
        elif spec := tool.get("toolSpec"):
            content.tools.append((spec["name"], (spec.get("inputSchema") or {}).get("json", {})))
            reader.add(tool, "", count_tokens(json.dumps(spec)))
    choice = config.get("toolChoice") or {"auto": {}}
    content.tool_choice = next(iter(choice), "auto")
    content.tool_name = (choice.get("tool") or {}).get("name")
    text_format = (body.get("outputConfig") or {}).get("textFormat") or {}
    if text_format.get("type") == "json_schema":  # a malformed schema: a ValidationException
        content.output_schema = json.loads(text_format["structure"]["jsonSchema"]["schema"])
    for block in body.get("system") or []:
        if "cachePoint" in block:
            reader.cache_point()
        elif "text" in block:
            content.system.append(reader.add(block, block["text"]))
    for message in body["messages"]:
        parts = []
        for block in message.get("content") or []:
            if "cachePoint" in block:
                reader.cache_point()
            else:
                parts.append(_converse_block(reader, block))
        content.turns.append(Turn(message["role"], "".join(parts).strip()))
    last = body["messages"][-1]
    content.answered_tool = last["role"] == "user" and any(
        "toolResult" in block for block in last.get("content") or []
    )
    content.last_user_text = _last_user_text(
        [
            (m["role"], "".join(b.get("text", "") for b in m.get("content") or []))
            for m in body["messages"]
        ]
    )
    return content


def _converse_block(reader: _Reader, block: dict[str, Any]) -> str:
    if "text" in block:
        return reader.add(block, block["text"])
    if image := block.get("image"):
        raw = _b64((image.get("source") or {}).get("bytes"))
        description, tokens = _image(image.get("format", "?"), raw)
        return reader.add(block, f" {description} ", tokens)
    if document := block.get("document"):
        raw = _b64((document.get("source") or {}).get("bytes"))
        kind = document.get("format", "?")
        name = document.get("name", "document")
        return reader.add(block, f" [document {name} ({kind}), {len(raw)} bytes] ", _doc(kind, raw))
    if tool_use := block.get("toolUse"):
        text = f" [toolUse {tool_use.get('name')} {json.dumps(tool_use.get('input'))}] "
        return reader.add(block, text)
    if result := block.get("toolResult"):
        parts = [
            part["text"] if "text" in part else json.dumps(part.get("json", part))
            for part in result.get("content") or []
        ]
        status = "" if result.get("status", "success") == "success" else f" {result['status']}"
        return reader.add(block, f" [toolResult{status}: {' '.join(parts)}] ")
    kind = next(iter(block), "block")
    return reader.add(block, f" [{kind}] ")


# -- InvokeModel, Anthropic Messages body -----------------------------------------------------


def read_anthropic(model: str, body: dict[str, Any]) -> Content:
    content = Content()
    reader = _Reader(content)
    reader.seen.append(model)
    for tool in body.get("tools") or []:
        content.tools.append((tool.get("name", "tool"), tool.get("input_schema") or {}))
        reader.add(tool, "", count_tokens(json.dumps(tool)))
        if "cache_control" in tool:
            reader.cache_point()
    choice = body.get("tool_choice") or {"type": "auto"}
    content.tool_choice, content.tool_name = choice.get("type", "auto"), choice.get("name")
    system = body.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system or []
    texts = [_anthropic_block(reader, block) for block in blocks]
    if texts:
        content.system.append("".join(texts).strip())
    for message in body["messages"]:
        blocks = _anthropic_blocks(message.get("content"))
        text = "".join(_anthropic_block(reader, block) for block in blocks)
        content.turns.append(Turn(message["role"], text.strip()))
    last = body["messages"][-1]
    content.answered_tool = last["role"] == "user" and any(
        block.get("type") == "tool_result" for block in _anthropic_blocks(last.get("content"))
    )
    content.last_user_text = _last_user_text(
        [
            (m["role"], "".join(b.get("text", "") for b in _anthropic_blocks(m.get("content"))))
            for m in body["messages"]
        ]
    )
    return content


def _anthropic_blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content or []


def _anthropic_block(reader: _Reader, block: dict[str, Any]) -> str:
    kind = block.get("type")
    source = block.get("source") or {}
    if kind == "text":
        text = reader.add(block, block.get("text", ""))
    elif kind == "image":
        media = str(source.get("media_type", "image/?")).removeprefix("image/")
        description, tokens = _image(media, _b64(source.get("data")))
        text = reader.add(block, f" {description} ", tokens)
    elif kind == "document":
        raw = _b64(source.get("data")) if source.get("type") == "base64" else b""
        if source.get("type") == "text":
            raw = str(source.get("data", "")).encode()
        media = str(source.get("media_type", "?"))
        text = reader.add(block, f" [document ({media}), {len(raw)} bytes] ", _doc(media, raw))
    elif kind == "tool_use":
        text = reader.add(
            block, f" [toolUse {block.get('name')} {json.dumps(block.get('input'))}] "
        )
    elif kind == "tool_result":
        parts = _anthropic_blocks(block.get("content"))
        result = " ".join(part.get("text", json.dumps(part)) for part in parts)
        status = " error" if block.get("is_error") else ""
        text = reader.add(block, f" [toolResult{status}: {result}] ")
    else:
        text = reader.add(block, f" [{kind}] ")
    if "cache_control" in block:
        reader.cache_point()
    return text


# -- helpers ------------------------------------------------------------------------------------


def _b64(data: Any) -> bytes:
    if not isinstance(data, str):
        return b""
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return b""


def _image(kind: str, raw: bytes) -> tuple[str, int]:
    size = dimensions(raw)
    if size is None:
        return f"[image {kind}, {len(raw)} bytes]", max(1, math.ceil(len(raw) / 750))
    width, height = size
    return f"[image {kind} {width}×{height}]", max(1, math.ceil(width * height / 750))


def _doc(kind: str, raw: bytes) -> int:
    if kind in _TEXT_DOCUMENTS:
        return count_tokens(raw.decode("utf-8", "replace"))
    return math.ceil(len(raw) / 100)


def _last_user_text(turns: list[tuple[str, str]]) -> str:
    return next(
        (text.strip() for role, text in reversed(turns) if role == "user" and text.strip()), ""
    )
