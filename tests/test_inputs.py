"""Input names: any identifier works end to end, pydantic's own attribute names too
(``model_config``, ``json``, ``copy``, ``schema``, ``validate``, ``dict``, ``fields`` …)."""

from pathlib import Path

import httpx
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from tests.conftest import ServerFactory
from tests.helpers import parse_sse

CHAIN = """\
description: Inputs named like pydantic's own attributes.
model:
  id: anthropic.claude-3-haiku-20240307-v1:0
prompt:
  messages:
    - system: "config={model_config} json={json} copy={copy} schema={schema} validate={validate}"
    - placeholder: fields
    - user: "dict={dict} construct={construct} private={_private} input_0={input_0}"
inputs:
  model_config:
    type: string
    description: Shadows BaseModel.model_config.
  json: {type: integer, default: 2}
  copy: {type: string, enum: [a, b], default: a}
  schema: {type: boolean, default: false}
  validate: {type: number, default: 1.5}
  dict: {type: string, max_length: 5}
  construct: {type: string, default: c}
  _private: {type: string, default: p}
  input_0: {type: string, default: i}
  fields: {type: messages}
"""
NAMES = [
    "model_config",
    "json",
    "copy",
    "schema",
    "validate",
    "dict",
    "construct",
    "_private",
    "input_0",
    "fields",
]
INPUT = {
    "model_config": "MC",
    "json": 7,
    "copy": "b",
    "schema": True,
    "validate": 0.5,
    "dict": "D",
    "construct": "K",
    "_private": "P",
    "input_0": "Z",
    "fields": [{"role": "user", "content": "earlier"}],
}
SYSTEM = "config=MC json=7 copy=b schema=True validate=0.5"
USER = "dict=D construct=K private=P input_0=Z"


@pytest.fixture(scope="module")
def reserved(make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder: Path = tmp_path_factory.mktemp("reserved")
    (folder / "reserved.yaml").write_text(CHAIN)
    server: BackgroundServer = make_server(chains_dir=folder)
    return f"{server.url}/chains/reserved"


def test_invoke(reserved: str, bedrock: Emulator) -> None:
    response = httpx.post(f"{reserved}/invoke", json={"input": INPUT})
    assert response.status_code == 200, response.text
    output = response.json()["output"]
    assert f"system: {SYSTEM}\nuser: earlier\n{USER}" in output  # one user turn, merged
    assert "extra" not in output and "forbid" not in output


def test_render_with_defaults(reserved: str) -> None:
    response = httpx.post(f"{reserved}/render", json={"input": {"model_config": "MC", "dict": "D"}})
    assert response.status_code == 200, response.text
    assert response.json()["messages"] == [
        {"role": "system", "content": "config=MC json=2 copy=a schema=False validate=1.5"},
        {"role": "user", "content": "dict=D construct=c private=p input_0=i"},
    ]


def test_stream_query(reserved: str, bedrock: Emulator) -> None:
    query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in INPUT.items()}
    query["fields"] = '[{"role": "user", "content": "earlier"}]'
    response = httpx.get(f"{reserved}/stream", params=query)
    assert response.status_code == 200, response.text
    text = "".join(data for name, data in parse_sse(response.text) if name == "data")
    assert f"system: {SYSTEM}\nuser: earlier\n{USER}" in text  # one user turn, merged


def test_batch(reserved: str, bedrock: Emulator) -> None:
    inputs = [INPUT, {"model_config": "other", "dict": "E"}]
    response = httpx.post(f"{reserved}/batch", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    first, second = response.json()["output"]
    assert USER in first
    assert "config=other json=2" in second and "dict=E" in second


def test_schema_shows_the_real_names(reserved: str) -> None:
    schema = httpx.get(reserved).json()["input_schema"]
    assert list(schema["properties"]) == NAMES
    assert schema["required"] == ["model_config", "dict"]
    assert schema["properties"]["model_config"]["description"] == "Shadows BaseModel.model_config."
    assert schema["properties"]["dict"]["maxLength"] == 5
    document = httpx.get(reserved.removesuffix("/chains/reserved") + "/openapi.json").json()
    assert list(document["components"]["schemas"]["reserved_Input"]["properties"]) == NAMES
    [parameter_names] = [
        [p["name"] for p in operation["parameters"]]
        for operation in document["paths"]["/chains/reserved/stream"].values()
        if operation.get("parameters")
    ]
    assert parameter_names == NAMES


def test_errors_name_the_real_names(reserved: str, bedrock: Emulator) -> None:
    response = httpx.post(
        f"{reserved}/invoke",
        json={"input": {"dict": "too long", "json": "7", "input_1": "x"}},
    )
    assert response.status_code == 422
    assert {e["field"]: e["message"] for e in response.json()["errors"]} == {
        "input.model_config": "required; add it",
        "input.json": "input should be a valid integer",
        "input.dict": "too long; at most 5 characters",
        "input.input_1": "unknown field; remove it",  # the internal names are not inputs
    }
    assert bedrock.state.calls == []
