"""Small helpers shared by the tests."""

import json
import time
from collections.abc import Callable
from typing import Any


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """Server-Sent Events text → [(event, JSON-decoded data)], per the spec's line format."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            fields[name] = value
        data = fields.get("data")
        events.append((fields["event"], json.loads(data) if data else None))
    return events


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds (a bound, not a measure)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# What the emulator tests send: a Converse message, and an Anthropic InvokeModel body.
EMULATED_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
HI = [{"role": "user", "content": [{"text": "hi"}]}]
HI_ANTHROPIC = [{"role": "user", "content": "hi"}]
ANTHROPIC_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "messages": HI_ANTHROPIC,
}


# The observability tests' chain with a fallback: `answer`, on summarize.yaml's model, falling
# back to another (an emulator fault on MODEL makes the fallback answer).
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
SECOND = "amazon.nova-lite-v1:0"
ANSWER = f"""\
model:
  id: {MODEL}
  fallbacks:
    - {SECOND}
prompt:
  messages:
    - user: "{{question}}"
inputs:
  question: {{}}
"""
