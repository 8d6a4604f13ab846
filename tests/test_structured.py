"""Structured output through every wire format: a chain with output.schema, served for real
(uvicorn on loopback), answered by the emulator, read with the clients users use."""

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.conftest import ServerFactory
from tests.helpers import parse_sse

TOOL_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"  # function calling (a forced tool)
NATIVE_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"  # json_schema (outputConfig)
TEXT = "Ada Lovelace ada@example.com wrote the first program"
SCHEMA = {
    "title": "contact",
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "emails": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 2},
        "age": {"type": "integer", "minimum": 18},
        "kind": {"enum": ["person", "company"]},
    },
    "required": ["name", "emails", "age", "kind"],
}
OBJECT = {
    "name": "Ada Lovelace",
    "emails": ["ada@example.com", "ada+1@example.com"],
    "age": 18,
    "kind": "person",
}
CHAIN = """
model:
  id: {model}
prompt:
  messages:
    - user: "{{text}}"
inputs:
  text: {{}}
output:
  schema: {schema}
"""


def write_chains(folder: Path) -> Path:
    (folder / "contact.schema.json").write_text(json.dumps(SCHEMA))
    (folder / "tool.yaml").write_text(
        CHAIN.format(model=TOOL_MODEL, schema="{$ref: contact.schema.json}")
    )
    (folder / "native.yaml").write_text(CHAIN.format(model=NATIVE_MODEL, schema=json.dumps(SCHEMA)))
    fallback = CHAIN.format(model=NATIVE_MODEL, schema=json.dumps(SCHEMA)).replace(
        f"id: {NATIVE_MODEL}", f"id: {NATIVE_MODEL}\n  fallbacks: [{TOOL_MODEL}]"
    )
    (folder / "fallback.yaml").write_text(fallback)
    invoke_model = CHAIN.format(model=TOOL_MODEL, schema=json.dumps(SCHEMA))
    (folder / "invoke.yaml").write_text(
        invoke_model.replace("model:\n", "model:\n  provider: bedrock\n")
    )
    guardrail = '\n  guardrail: {id: gr1abc, version: "1"}'
    for name, model in (("guarded-tool", TOOL_MODEL), ("guarded-native", NATIVE_MODEL)):
        chain = CHAIN.format(model=model, schema=json.dumps(SCHEMA))
        (folder / f"{name}.yaml").write_text(
            chain.replace(f"id: {model}", f"id: {model}{guardrail}")
        )
    return folder


@pytest.fixture(scope="module")
def structured(
    make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> BackgroundServer:
    return make_server(chains_dir=write_chains(tmp_path_factory.mktemp("structured")))


@pytest.fixture
def http(structured: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=structured.url, timeout=30) as client:
        yield client


CHAINS = ["tool", "native", "invoke"]  # function calling, json_schema, InvokeModel


@pytest.mark.parametrize("chain", CHAINS)
def test_invoke_returns_the_object(http: httpx.Client, chain: str) -> None:
    response = http.post(f"/chains/{chain}/invoke", json={"input": {"text": TEXT}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == OBJECT
    expected = "end_turn" if chain == "native" else "tool_use"
    assert body["metadata"]["stop_reason"] == expected


@pytest.mark.parametrize("chain", CHAINS)
def test_batch_returns_objects(http: httpx.Client, chain: str) -> None:
    inputs = [{"text": TEXT}, {"text": "Bob bob@example.org"}]
    response = http.post(f"/chains/{chain}/batch", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    first, second = response.json()["output"]
    assert first == OBJECT
    assert second["emails"] == ["bob@example.org", "bob+1@example.org"]


@pytest.mark.parametrize("chain", CHAINS)
def test_text_stream_is_the_json_text_as_it_grows(http: httpx.Client, chain: str) -> None:
    with http.stream("POST", f"/chains/{chain}/stream", json={"input": {"text": TEXT}}) as reply:
        assert reply.headers["content-type"].startswith("text/plain")
        pieces = list(reply.iter_text())
    text = "".join(pieces)
    assert "[emulator]" not in text  # a forced tool's preamble text is not the output
    assert json.loads(text) == OBJECT


@pytest.mark.parametrize("chain", CHAINS)
def test_sse_data_events_are_the_partial_object(
    http: httpx.Client, bedrock: Emulator, chain: str
) -> None:
    # Paced: chunks that arrive within a millisecond are sent together (runs/stream.py).
    bedrock.state.pace = Pace(tokens_per_second=100)
    response = http.post(
        f"/chains/{chain}/stream",
        json={"input": {"text": TEXT}},
        headers={"Accept": "text/event-stream"},
    )
    events = parse_sse(response.text)
    assert events[0][0] == "metadata"
    assert [name for name, _ in events][-2:] == ["metadata", "end"]
    objects = [data for name, data in events if name == "data"]
    assert objects[-1] == OBJECT
    assert len(objects) > 3  # it grows word by word
    assert all(isinstance(item, dict) for item in objects)
    assert all(a != b for a, b in itertools.pairwise(objects))  # one per change
    assert set(objects[0]) < set(OBJECT)  # the first is part of the object
    assert events[-2][1]["stop_reason"] in ("tool_use", "end_turn")


def test_get_stream_sends_partial_objects(http: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(tokens_per_second=100)
    response = http.get("/chains/native/stream", params={"text": TEXT})
    objects = [data for name, data in parse_sse(response.text) if name == "data"]
    assert objects[-1] == OBJECT and len(objects) > 3


def test_openai_sdk_gets_the_json_text(structured: BackgroundServer) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{structured.url}/v1", api_key="x", max_retries=0)
    messages: Any = [{"role": "user", "content": TEXT}]
    for chain in CHAINS:
        whole = client.chat.completions.create(model=chain, messages=messages)
        content = whole.choices[0].message.content
        assert content is not None and json.loads(content) == OBJECT
        assert whole.choices[0].finish_reason == "stop"
        chunks = list(client.chat.completions.create(model=chain, messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert json.loads(text) == OBJECT
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_ai_sdk_text_deltas_are_the_json_text(http: httpx.Client) -> None:
    body = {"messages": [{"id": "1", "role": "user", "parts": [{"type": "text", "text": TEXT}]}]}
    response = http.post("/chains/native/chat", json=body)
    assert response.status_code == 200, response.text
    chunks = [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: {")
    ]
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert json.loads(text) == OBJECT


def test_remote_runnable(structured: BackgroundServer, bedrock: Emulator) -> None:
    from langserve import RemoteRunnable

    remote: Any = RemoteRunnable(f"{structured.url}/chains/tool")
    assert remote.invoke({"text": TEXT}) == OBJECT
    assert remote.batch([{"text": TEXT}]) == [OBJECT]
    bedrock.state.pace = Pace(tokens_per_second=100)
    streamed = list(remote.stream({"text": TEXT}))
    assert streamed[-1] == OBJECT and len(streamed) > 3


def test_fallback_with_another_method(http: httpx.Client, bedrock: Emulator) -> None:
    """The chain's model (json_schema) is throttled; its fallback (a forced tool) answers."""
    bedrock.state.add_faults([Fault(kind="throttle", model=NATIVE_MODEL, times=0)])
    response = http.post("/chains/fallback/invoke", json={"input": {"text": TEXT}})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == OBJECT
    with http.stream("POST", "/chains/fallback/stream", json={"input": {"text": TEXT}}) as reply:
        assert json.loads(reply.read()) == OBJECT


@pytest.mark.parametrize("chain", CHAINS)
def test_nonconforming_reply_is_a_502_naming_the_paths(
    http: httpx.Client, bedrock: Emulator, chain: str
) -> None:
    bedrock.state.add_faults([Fault(kind="invalid_output")])
    response = http.post(f"/chains/{chain}/invoke", json={"input": {"text": TEXT}})
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "output_not_conforming"
    assert "at $.name: a number, not of type 'string'" in body["message"]
    assert "(schema: #/properties/name/type)" in body["message"]
    assert "Ada" not in body["message"]  # never the reply: it may hold user data
    assert "12345" not in body["message"]  # not even the wrong value


def test_nonconforming_stream_ends_in_band(http: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="invalid_output"), Fault(kind="invalid_output")])
    with http.stream("POST", "/chains/native/stream", json={"input": {"text": TEXT}}) as reply:
        assert reply.status_code == 200  # the JSON had started: the failure is in the body
        text = reply.read().decode()
    assert text.splitlines()[-1].startswith("[error] 502: the reply of model")
    assert "(schema: #/properties/name/type)" in text
    response = http.post(
        "/chains/native/stream",
        json={"input": {"text": TEXT}},
        headers={"Accept": "text/event-stream"},
    )
    name, error = parse_sse(response.text)[-1]
    assert name == "error" and error["status_code"] == 502
    assert error["code"] == "output_not_conforming"


@pytest.mark.parametrize("chain", ["guarded-tool", "guarded-native"])
def test_a_guardrail_intervention_is_a_422_saying_so(
    http: httpx.Client, bedrock: Emulator, chain: str
) -> None:
    """The emulator's guardrail blocks a prompt with BLOCKED: the reply is its message, not the
    object — said as such (not "not JSON" / "did not call the tool"), before any output."""
    blocked = {"input": {"text": "BLOCKED " + TEXT}}
    response = http.post(f"/chains/{chain}/invoke", json=blocked)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "guardrail_intervened"
    assert "guardrail of model" in body["message"] and "change the input" in body["message"]
    assert "Sorry" not in body["message"]  # the guardrail's text is not quoted
    bedrock.state.pace = Pace(tokens_per_second=200)
    with http.stream("POST", f"/chains/{chain}/stream", json=blocked) as reply:
        assert reply.status_code == 422  # known before the first byte: a real status
        assert json.loads(reply.read())["code"] == "guardrail_intervened"
    sse = http.post(
        f"/chains/{chain}/stream", json=blocked, headers={"Accept": "text/event-stream"}
    )
    assert sse.status_code == 422 and sse.json()["code"] == "guardrail_intervened"
    unblocked = http.post(f"/chains/{chain}/invoke", json={"input": {"text": TEXT}})
    assert unblocked.json()["output"] == OBJECT


def test_reply_cut_short_is_not_json(structured: BackgroundServer) -> None:
    """OpenAI's max_tokens binds per request (a copy of each model, bound again): a reply cut
    by it is a 502 saying where the JSON broke off."""
    import openai

    client = openai.OpenAI(base_url=f"{structured.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="native", messages=[{"role": "user", "content": TEXT}], max_tokens=3
        )
    assert caught.value.status_code == 502
    assert "the reply's JSON is cut short at character 24 (is max_tokens" in str(caught.value)


def test_langserve_output_schema_and_openapi(http: httpx.Client) -> None:
    schema = http.get("/chains/tool/output_schema").json()
    assert schema["properties"] == SCHEMA["properties"]
    assert http.get("/chains/tool/input_schema").status_code == 200
    document = http.get("/openapi.json").json()
    invoke = document["paths"]["/chains/tool/invoke"]["post"]["responses"]["200"]
    output = invoke["content"]["application/json"]["schema"]["properties"]["output"]
    assert output == {"$ref": "#/components/schemas/tool_Output"}
    assert document["components"]["schemas"]["tool_Output"]["required"] == SCHEMA["required"]
    batch = document["paths"]["/chains/tool/batch"]["post"]["responses"]["200"]
    items = batch["content"]["application/json"]["schema"]["properties"]["output"]["items"]
    assert {"$ref": "#/components/schemas/tool_Output"} in items["anyOf"]


def test_stream_events_and_log(http: httpx.Client) -> None:
    """LangServe's event routes run the same chain: the parser streams the JSON text."""
    response = http.post("/chains/tool/stream_events", json={"input": {"text": TEXT}})
    events = parse_sse(response.text)
    assert events[-1][0] == "end" and not [e for e in events if e[0] == "error"]
    streamed = [
        data["data"]["chunk"]
        for name, data in events
        if name == "data" and data["event"] == "on_chain_stream" and data.get("parent_ids") == []
    ]
    assert json.loads("".join(streamed)) == OBJECT
    response = http.post("/chains/native/stream_log", json={"input": {"text": TEXT}})
    assert parse_sse(response.text)[-1][0] == "end"
