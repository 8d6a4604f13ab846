"""The emulator's structured output: values that conform to the requested schema (checked with
jsonschema over many schemas), Converse's outputConfig through boto3, a forced tool's input
streamed word by word, and the invalid_output fault."""

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from service.emulator.examples import broken, example
from service.emulator.server import Emulator
from service.emulator.state import Fault
from tests.helpers import EMULATED_MODEL as MODEL

TEXT = "Grace Hopper grace@navy.mil https://example.org/cobol met us on 1952-05-01"
SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"a": {"type": "string"}}},
    {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    },
    {"type": "object", "properties": {"e": {"enum": ["x", "y"]}, "c": {"const": 42}}},
    {"type": "object", "properties": {"n": {"type": ["null", "number"]}}, "required": ["n"]},
    {
        "type": "object",
        "properties": {
            "deep": {
                "type": "object",
                "properties": {"list": {"type": "array", "items": {"type": "boolean"}}},
                "required": ["list"],
            }
        },
        "required": ["deep"],
    },
    {
        "type": "object",
        "properties": {
            "few": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 3},
            "none": {"type": "array", "maxItems": 0},
            "unique": {
                "type": "array",
                "items": {"type": "string", "format": "email"},
                "minItems": 4,
                "uniqueItems": True,
            },
        },
        "required": ["few", "none", "unique"],
    },
    {
        "type": "object",
        "properties": {
            "short": {"type": "string", "maxLength": 5},
            "long": {"type": "string", "minLength": 200},
        },
        "required": ["short", "long"],
    },
    {
        "type": "object",
        "properties": {
            "i": {"type": "integer", "minimum": 7, "maximum": 9},
            "x": {"type": "number", "exclusiveMinimum": 1.5, "exclusiveMaximum": 3},
            "m": {"type": "integer", "multipleOf": 5, "minimum": 12},
            "f": {"type": "number", "multipleOf": 0.25, "minimum": 0.3},
            "neg": {"type": "integer", "maximum": -4},
            "below": {"type": "integer", "exclusiveMaximum": 0},
        },
        "required": ["i", "x", "m", "f", "neg", "below"],
    },
    {
        "type": "object",
        "properties": {
            name: {"type": "string", "format": name}
            for name in ("date", "date-time", "time", "email", "uri", "uuid", "ipv4", "ipv6")
        },
        "required": ["date", "date-time", "time", "email", "uri", "uuid", "ipv4", "ipv6"],
    },
    {
        "type": "object",
        "$defs": {
            "person": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "boss": {"$ref": "#/$defs/person"}},
                "required": ["name"],
            }
        },
        "properties": {"people": {"type": "array", "items": {"$ref": "#/$defs/person"}}},
        "required": ["people"],
    },
    {
        "type": "object",
        "properties": {
            "any": {"anyOf": [{"type": "integer", "minimum": 3}, {"type": "string"}]},
            "one": {"oneOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]},
            "all": {
                "allOf": [
                    {"type": "object", "properties": {"p": {"type": "string"}}, "required": ["p"]},
                    {"properties": {"q": {"type": "integer"}}, "required": ["q"]},
                ]
            },
        },
        "required": ["any", "one", "all"],
    },
    {"type": "object", "properties": {"t": {"prefixItems": [{"type": "integer"}, {"const": "z"}]}}},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
def test_examples_conform(schema: dict[str, Any]) -> None:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    value = example(schema, TEXT)
    assert list(validator.iter_errors(value)) == []
    assert example(schema, TEXT) == value  # deterministic
    assert not validator.is_valid(broken(schema, value))


def test_examples_echo_the_users_words() -> None:
    schema = SCHEMAS[8]
    value = example(schema, TEXT)
    assert value["email"] == "grace@navy.mil"
    assert value["uri"] == "https://example.org/cobol"
    assert value["date"] == "1952-05-01"
    assert example({"type": "object", "properties": {"s": {}}}, TEXT) == {"s": TEXT}


def test_botocore_converse_has_output_config() -> None:
    """langchain-aws sends outputConfig.textFormat; botocore must know the shape."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    for operation in ("Converse", "ConverseStream"):
        members = model.operation_model(operation).input_shape.members
        text_format = members["outputConfig"].members["textFormat"]
        assert set(text_format.members["structure"].members["jsonSchema"].members) >= {
            "schema",
            "name",
        }


def output_config(schema: dict[str, Any]) -> dict[str, Any]:
    structure = {"jsonSchema": {"schema": json.dumps(schema), "name": "x"}}
    return {"textFormat": {"type": "json_schema", "structure": structure}}


def test_converse_output_config_replies_with_the_json(runtime: Any) -> None:
    schema = SCHEMAS[5]
    messages = [{"role": "user", "content": [{"text": TEXT}]}]
    reply = runtime.converse(modelId=MODEL, messages=messages, outputConfig=output_config(schema))
    [block] = reply["output"]["message"]["content"]
    assert json.loads(block["text"]) == example(schema, TEXT)
    assert reply["stopReason"] == "end_turn"
    stream = runtime.converse_stream(
        modelId=MODEL, messages=messages, outputConfig=output_config(schema)
    )["stream"]
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in stream if "contentBlockDelta" in e]
    assert len(deltas) > 10  # word by word
    assert json.loads("".join(deltas)) == example(schema, TEXT)


def test_converse_tool_input_streams_word_by_word(runtime: Any) -> None:
    schema = SCHEMAS[5]
    tool = {"toolSpec": {"name": "out", "inputSchema": {"json": schema}}}
    stream = runtime.converse_stream(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": TEXT}]}],
        toolConfig={"tools": [tool], "toolChoice": {"tool": {"name": "out"}}},
    )["stream"]
    parts = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in stream
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    ]
    assert len(parts) > 10
    assert json.loads("".join(parts)) == example(schema, TEXT)


def test_invalid_output_fault_breaks_the_next_structured_reply(
    runtime: Any, bedrock: Emulator
) -> None:
    schema = SCHEMAS[1]
    messages = [{"role": "user", "content": [{"text": TEXT}]}]
    bedrock.state.add_faults([Fault(kind="invalid_output")])
    reply = runtime.converse(modelId=MODEL, messages=messages, outputConfig=output_config(schema))
    value = json.loads(reply["output"]["message"]["content"][0]["text"])
    assert not Draft202012Validator(schema).is_valid(value)
    tool = {"toolSpec": {"name": "out", "inputSchema": {"json": schema}}}
    bedrock.state.add_faults([Fault(kind="invalid_output")])
    reply = runtime.converse(
        modelId=MODEL,
        messages=messages,
        toolConfig={"tools": [tool], "toolChoice": {"any": {}}},
    )
    call = reply["output"]["message"]["content"][1]["toolUse"]["input"]
    assert call == {"a": 12345}
    again = runtime.converse(modelId=MODEL, messages=messages, outputConfig=output_config(schema))
    assert json.loads(again["output"]["message"]["content"][0]["text"]) == {"a": TEXT}


def test_examples_are_bounded(runtime: Any) -> None:
    """Counts are clamped (the value then does not conform: the check says so); a schema that
    requires endless nesting is the emulator's ValidationException, not a RecursionError."""
    import botocore.exceptions

    huge = {
        "type": "object",
        "properties": {
            "a": {
                "type": "array",
                "minItems": 10**9,
                "items": {"type": "string", "minLength": 10**9},
            }
        },
        "required": ["a"],
    }
    value = example(huge, TEXT)
    assert len(value["a"]) == 100 and len(value["a"][0]) == 10_000
    messages = [{"role": "user", "content": [{"text": TEXT}]}]
    endless = {
        "type": "object",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"next": {"$ref": "#/$defs/node"}},
                "required": ["next"],
            }
        },
        "properties": {"root": {"$ref": "#/$defs/node"}},
        "required": ["root"],
    }
    for schema, why in ((endless, "nested more than 64 levels"), (_many(), "10,000 values")):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            runtime.converse(modelId=MODEL, messages=messages, outputConfig=output_config(schema))
        error = caught.value.response["Error"]
        assert error["Code"] == "ValidationException" and why in error["Message"]


def _many() -> dict[str, Any]:
    inner = {"type": "array", "minItems": 100, "items": {"type": "integer"}}
    return {"type": "object", "properties": {"a": {**inner, "items": inner}}, "required": ["a"]}
