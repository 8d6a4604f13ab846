"""What the emulator answers: a deterministic reply that shows what the model received.

Prompt engineers see their rendered prompt come back, word by word; tests get a reply whose
length, stop reason and token counts follow from the request alone.
"""

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


@dataclass(frozen=True)
class Reply:
    tokens: list[str]
    stop_reason: str  # end_turn | max_tokens | stop_sequence
    stop_sequence: str | None
    input_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def output_tokens(self) -> int:
        return len(self.tokens)


def count_tokens(text: str) -> int:
    """Whitespace-separated words: the emulator's stand-in for a tokenizer."""
    return len(_TOKEN.findall(text))


def _spaced(token: str, index: int) -> str:
    return token if index == 0 or token[:1].isspace() else " " + token


def transcript(model_id: str, system: list[str], turns: list[Turn]) -> str:
    lines = [f"[emulator] {model_id} received:"]
    lines += [f"system: {text}" for text in system]
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
) -> Reply:
    """The reply to one request. ``reply_tokens`` repeats the transcript to that many tokens."""
    text = transcript(model_id, system, turns)
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
    input_tokens = sum(count_tokens(t) for t in system) + sum(count_tokens(t.text) for t in turns)
    return Reply(tokens, stop_reason, stop_sequence, input_tokens)
