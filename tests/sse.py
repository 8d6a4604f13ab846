"""A small Server-Sent Events parser for tests (the spec's line format, nothing more)."""

import json
from typing import Any


def parse(text: str) -> list[tuple[str, Any]]:
    """``event: x / data: y`` blocks → [(event, decoded data)]."""
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
