"""What the emulator answers: a deterministic reply that shows what the model received.

Prompt engineers see their rendered prompt come back, word by word; tests get a reply whose
length, stop reason and token counts follow from the request alone.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


@dataclass(frozen=True)
class ToolCall:
    """The tool a reply calls, after its text."""

    name: str
    input: dict[str, Any]

    @property
    def json(self) -> str:
        return json.dumps(self.input)

    @property
    def tokens(self) -> int:
        return max(1, count_tokens(self.json))

    def json_parts(self) -> list[str]:
        """The input JSON in the pieces a stream sends it in: word by word, as text is, so
        a client sees the object grow."""
        return _TOKEN.findall(self.json) or [self.json]


@dataclass(frozen=True)
class Cache:
    """A request's cache point: the tokens before it, and whether a request before had them."""

    tokens: int
    hit: bool


@dataclass(frozen=True)
class Reply:
    tokens: list[str]
    stop_reason: str  # end_turn | max_tokens | stop_sequence | tool_use
    stop_sequence: str | None
    input_tokens: int  # not counting those read from or written to the cache
    tool: ToolCall | None = None
    cache: Cache | None = None
    response_field_paths: tuple[str, ...] = ()
    """Converse's additionalModelResponseFieldPaths: JSON pointers into the model's own reply."""
    schema: dict[str, Any] | None = None
    """Structured output: the JSON Schema the reply's JSON (text, or the tool's input) follows."""
    reasoning: tuple[str, ...] = ()
    """The reasoning tokens streamed before the text (a request that asked the model to think)."""
    trace: dict[str, Any] | None = None
    """Converse's ``trace`` (a guardrail's assessment)."""
    echoed: dict[str, Any] = field(default_factory=dict)
    """Converse's performanceConfig and serviceTier, repeated from the request."""

    @property
    def text_index(self) -> int:
        """The text's content block: after the reasoning block, if there is one."""
        return 1 if self.reasoning else 0

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def output_tokens(self) -> int:
        return len(self.tokens) + (self.tool.tokens if self.tool else 0) + len(self.reasoning)

    @property
    def cache_read(self) -> int:
        return self.cache.tokens if self.cache and self.cache.hit else 0

    @property
    def cache_write(self) -> int:
        return self.cache.tokens if self.cache and not self.cache.hit else 0


def words(text: str) -> list[str]:
    """The tokens a text is streamed in: each word with the whitespace before it."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Whitespace-separated words: the emulator's stand-in for a tokenizer."""
    return len(_TOKEN.findall(text))


def _spaced(token: str, index: int) -> str:
    return token if index == 0 or token[:1].isspace() else " " + token


def transcript(
    model_id: str, system: list[str], turns: list[Turn], tools: list[str] | None = None
) -> str:
    lines = [f"[emulator] {model_id} received:"]
    lines += [f"system: {text}" for text in system]
    lines += [f"tools: {', '.join(tools)}"] if tools else []
    lines += [f"{turn.role}: {turn.text}" for turn in turns]
    return "\n".join(lines)


def plan(
    model_id: str,
    system: list[str],
    turns: list[Turn],
    *,
    max_tokens: int | None,
    stop: list[str],
    reply_tokens: int | None = None,
    tools: list[str] | None = None,
    tool: ToolCall | None = None,
    input_tokens: int | None = None,
    cache: Cache | None = None,
    text: str | None = None,
) -> Reply:
    """The reply to one request. ``reply_tokens`` repeats the transcript to that many tokens;
    ``tool`` is called after the text, unless a stop sequence or ``max_tokens`` ends it first;
    ``input_tokens`` (default: the words received) includes ``cache.tokens``; ``text`` is the
    reply's text instead of the transcript (structured output's JSON)."""
    if text is None:
        text = transcript(model_id, system, turns, tools)
    else:
        reply_tokens = None
    tokens = _TOKEN.findall(text)
    if reply_tokens is not None:
        tokens = [_spaced(tokens[i % len(tokens)], i) for i in range(reply_tokens)]
        text = "".join(tokens)
    stop_reason, stop_sequence = "end_turn", None
    cut = min(((text.find(s), s) for s in stop if s and s in text), default=None)
    if cut is not None:
        text, stop_sequence = text[: cut[0]], cut[1]
        tokens, stop_reason = _TOKEN.findall(text), "stop_sequence"
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens, stop_reason, stop_sequence = tokens[:max_tokens], "max_tokens", None
    if input_tokens is None:
        input_tokens = sum(count_tokens(t) for t in system)
        input_tokens += sum(count_tokens(t.text) for t in turns)
    if tool is not None and stop_reason == "end_turn":
        stop_reason = "tool_use"
    else:
        tool = None
    uncached = input_tokens - (cache.tokens if cache else 0)
    return Reply(tokens, stop_reason, stop_sequence, uncached, tool, cache)
