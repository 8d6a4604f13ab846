"""The check of a structured reply and the SSE partial objects, on real text: failures are
described without the reply's values, deep replies are refused (not a RecursionError), patterns
follow the input-pattern dialect, and partial objects cost linear CPU and bytes."""

import json
import re
import time
from typing import Any

import pytest

from service.chains.structured import OutputNotConforming, conforming_object
from service.protocols.partial_objects import MAX_PARTIAL_CHARS, PartialObjects

SECRET = "jane.secret@example.com"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "emails": {"type": "array", "items": {"type": "string", "format": "email"}},
        "kind": {"enum": ["person", "company"]},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "name": {"type": "string", "maxLength": 5},
        "age": {"type": "integer", "minimum": 18},
        "tags": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
    "required": ["kind"],
    "additionalProperties": False,
}


def failure(value: Any, schema: dict[str, Any] = SCHEMA) -> str:
    with pytest.raises(OutputNotConforming) as caught:
        conforming_object(schema, json.dumps(value))
    return str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"kind": "person", "emails": ["ok@example.com", "jane secret"]},
            "at $.emails[1]: a string of 11 characters, not in format 'email' "
            "(schema: #/properties/emails/items/format)",
        ),
        (
            {"kind": SECRET},
            "at $.kind: a string of 23 characters, not one of the 2 values of its enum "
            "(schema: #/properties/kind/enum)",
        ),
        (
            {"kind": "person", "code": SECRET},
            "at $.code: a string of 23 characters, not matching pattern '^[A-Z]{3}$' "
            "(schema: #/properties/code/pattern)",
        ),
        (
            {"kind": "person", "name": SECRET},
            "at $.name: a string of 23 characters, longer than maxLength 5 "
            "(schema: #/properties/name/maxLength)",
        ),
        (
            {"kind": "person", "age": 17},
            "at $.age: a number, below minimum 18 (schema: #/properties/age/minimum)",
        ),
        (
            {"kind": "person", SECRET: 1},
            "at $: an object of 2 properties, with 1 property the schema does not declare "
            "(additionalProperties: false) (schema: #/additionalProperties)",
        ),
        (
            {"emails": []},
            "at $: an object of 1 property, without required property 'kind' (schema: #/required)",
        ),
        (
            # A name the reply chose is not shown either: `*`.
            {"kind": "person", "tags": {SECRET: "x"}},
            "at $.tags.*: a string of 1 character, not of type 'integer' "
            "(schema: #/properties/tags/additionalProperties/type)",
        ),
    ],
)
def test_failures_say_where_and_why_never_the_value(value: Any, expected: str) -> None:
    message = failure(value)
    assert message == expected
    assert "secret" not in message and "17" not in message


def test_a_deeply_nested_reply_is_not_conforming_not_a_crash() -> None:
    """Python's JSON reader recurses (~1000 levels); a recursive $ref makes the validator
    follow the reply as deep as it goes."""
    assert failure_text("[" * 5000 + "]" * 5000) == "the reply's JSON is nested too deeply to read"
    recursive = {
        "type": "object",
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
        "properties": {"next": {"$ref": "#/$defs/node"}},
    }
    deep = '{"next": ' * 900 + "{}" + "}" * 900  # json reads it; the validator cannot
    assert failure_text(deep, recursive) == "the reply's JSON is nested too deeply to read"


def failure_text(text: str, schema: dict[str, Any] = SCHEMA) -> str:
    with pytest.raises(OutputNotConforming) as caught:
        conforming_object(schema, text)
    return str(caught.value)


def test_patterns_match_with_javascript_meanings() -> None:
    """Python's `$` also matches before a final newline; JavaScript's (and ours) does not."""
    assert re.search("^[A-Z]{3}$", "ABC\n")  # what jsonschema's default would accept
    message = failure_text(json.dumps({"kind": "person", "code": "ABC\n"}))
    assert "not matching pattern" in message
    assert conforming_object(SCHEMA, json.dumps({"kind": "person", "code": "ABC"}))


def stream(text: str, encoder: PartialObjects) -> tuple[list[Any], int]:
    """The text word by word (as the emulator streams it), then the end: the data events'
    objects and the bytes sent."""
    from service.runs.info import RunInfo

    sent = b"".join(encoder.chunks([token]) for token in re.findall(r"\s*\S+", text))
    sent += encoder.closing(RunInfo())
    events = [block.split("\ndata: ", 1) for block in sent.decode().split("\n\n") if block]
    objects = [json.loads(data) for name, data in events if name == "event: data"]
    return objects, len(sent)


def reply(chars: int) -> dict[str, Any]:
    words = [
        "Ada",
        "Lovelace",
        "wrote",
        "the",
        "first",
        "program",
        "for",
        "the",
        "Analytical",
        "Engine",
    ]
    people = [{"name": f"{words[i % 10]} {i}", "age": i} for i in range(chars // 60)]
    return {"summary": " ".join(words[i % 10] for i in range(chars // 12)), "people": people}


def test_partial_objects_grow_in_linear_cpu_and_bytes() -> None:
    value = reply(20_000)
    text = json.dumps(value)
    assert 18_000 < len(text) < 24_000
    start = time.process_time()
    objects, sent = stream(text, PartialObjects())
    cpu = time.process_time() - start
    assert objects[-1] == value  # the end sends the whole object
    assert len(objects) > 20  # it still grows as it comes
    # Parsing at every chunk sent 22 MB and took 1.8 s of CPU for this reply.
    assert sent < 12 * len(text)
    assert cpu < 0.3


def test_above_the_cap_only_the_final_object_is_sent() -> None:
    value = reply(MAX_PARTIAL_CHARS * 2)
    objects, sent = stream(json.dumps(value), PartialObjects())
    assert objects[-1] == value
    assert sent < 12 * MAX_PARTIAL_CHARS + 2 * len(json.dumps(value))


def test_partial_objects_survive_a_deep_reply() -> None:
    objects, _ = stream("[" * 3000 + "]" * 3000, PartialObjects())
    assert all(isinstance(item, list) for item in objects)  # no RecursionError out of it
