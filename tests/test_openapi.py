"""``/openapi.json`` describes each chain with its real input schema, every route with its
real statuses, error bodies and media types; with keys, how to send one.

tests/test_schemathesis.py holds the running server to the whole document; these tests pin
what the document must say.
"""

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from tests.conftest import ServerFactory

KEY = "openapi-test-key-0123456789"


def _validate(value: Any, name: str, document: dict[str, Any]) -> None:
    """``value`` against the component schema ``name``, its references resolved."""
    schemas = document["components"]["schemas"]
    text = json.dumps({"$ref": f"#/$defs/{name}", "$defs": schemas})
    jsonschema.validate(value, json.loads(text.replace("#/components/schemas/", "#/$defs/")))


@pytest.fixture(scope="module")
def keyed(make_server: ServerFactory) -> BackgroundServer:
    return make_server(api_keys=KEY)


def test_each_chain_has_concrete_paths(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    for name in ("summarize", "chat", "translate"):
        for action in ("invoke", "batch", "stream"):
            assert f"/chains/{name}/{action}" in paths
    assert "/chains/{name}/invoke" not in paths
    assert (
        "get" in paths["/chains/translate/stream"] and "post" in paths["/chains/translate/stream"]
    )
    assert "get" not in paths["/chains/translate/invoke"]
    # The one generic path names the chains there are.
    [name] = paths["/chains/{name}"]["get"]["parameters"]
    assert {"chat", "summarize", "translate"} <= set(name["schema"]["enum"])


def test_request_schema_is_the_chains_inputs(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/chains/translate/invoke"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schemas = document["components"]["schemas"]
    request = schemas[ref.rsplit("/", 1)[-1]]
    input_ref = request["properties"]["input"]["$ref"].rsplit("/", 1)[-1]
    inputs = schemas[input_ref]
    assert inputs["required"] == ["text"]
    assert inputs["properties"]["language"]["enum"][0] == "French"
    query = document["paths"]["/chains/translate/stream"]["get"]["parameters"]
    assert {p["name"] for p in query} == {"text", "language"}
    [language] = [p for p in query if p["name"] == "language"]
    assert language["schema"]["enum"][0] == "French" and not language["required"]
    # A messages input goes in the query string as JSON.
    [history] = [
        p
        for p in document["paths"]["/chains/chat/stream"]["get"]["parameters"]
        if p["name"] == "history"
    ]
    assert history["content"]["application/json"]["schema"]["type"] == "array"


def test_examples_are_the_chains_own_tests(client: httpx.Client) -> None:
    """ "Try it out" starts from the chain's first test's inputs, which work."""
    document = client.get("/openapi.json").json()
    body = document["paths"]["/chains/chat/invoke"]["post"]["requestBody"]["content"]
    example = body["application/json"]["example"]
    assert example["input"]["question"] == "What is my name?"
    response = client.post("/chains/chat/invoke", json=example)
    assert response.status_code == 200, response.text


def test_docs_page(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
    assert client.get("/redoc").status_code == 404


def test_similar_chain_names_get_their_own_schemas(tmp_path: Path, bedrock: Emulator) -> None:
    from service.app import create_app
    from service.settings import Settings

    for name, variable in (("a-b", "first"), ("a_b", "second")):
        chain = "model: {id: anthropic.claude-3-haiku-20240307-v1:0}\nprompt: {messages: [user: '{VAR}']}\ninputs: {VAR: {}}\n"
        (tmp_path / f"{name}.yaml").write_text(chain.replace("VAR", variable))
    settings = Settings(chains_dir=tmp_path, bedrock_endpoint_url=bedrock.url)
    with BackgroundServer(create_app(settings)) as server:
        document = httpx.get(f"{server.url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert set(schemas["a-b_Input"]["properties"]) == {"first"}
    assert set(schemas["a_b_Input"]["properties"]) == {"second"}


def test_every_route_is_described(chains_dir: Path) -> None:
    """A route added without its line in service/protocols/openapi_routes.py fails here."""
    from service.app import create_app
    from service.protocols.openapi import routes
    from service.protocols.openapi_routes import ROUTES
    from service.settings import Settings

    served = routes(create_app(Settings(chains_dir=chains_dir, log_level="warning")))
    assert served - ROUTES.keys() == set(), "describe these in openapi_routes.ROUTES"
    assert ROUTES.keys() - served == set(), "these declarations have no route"


def test_errors_are_the_real_error_body(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    text = json.dumps(document)
    assert "HTTPValidationError" not in text and '"detail"' not in text
    responses = document["components"]["responses"]
    invoke = document["paths"]["/chains/translate/invoke"]["post"]["responses"]
    assert set(invoke) == {"200", "404", "413", "415", "422", "429", "502", "503", "504"}
    assert invoke["422"] == {"$ref": "#/components/responses/ErrorBody422"}
    assert set(responses["ErrorBody429"]["headers"]) == {"X-Request-Id", "Retry-After"}
    assert responses["OpenAIError404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OpenAIError"
    }
    assert "401" not in invoke and "securitySchemes" not in document["components"]
    # Real errors are what the document says they are.
    for response in (
        client.get("/chains/nope"),
        client.post("/chains/translate/invoke", json={"input": {}}),
        client.post(
            "/chains/translate/invoke", content=b"{}", headers={"content-type": "text/plain"}
        ),
    ):
        assert response.status_code in (404, 415, 422)
        _validate(response.json(), "ErrorBody", document)
    _validate(client.get("/v1/models/nope").json(), "OpenAIError", document)


def test_stream_media_types(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    post = paths["/chains/summarize/stream"]["post"]["responses"]["200"]
    assert set(post["content"]) == {"text/plain", "text/event-stream"}
    assert "X-Run-Id" in post["headers"]
    get = paths["/chains/summarize/stream"]["get"]["responses"]["200"]
    assert set(get["content"]) == {"text/event-stream"}
    events = get["content"]["text/event-stream"]["schema"]["oneOf"]
    names = [event["properties"]["event"]["const"] for event in events]
    assert names == ["metadata", "data", "end", "error"]
    for action in ("stream_log", "stream_events", "chat"):
        content = paths[f"/chains/summarize/{action}"]["post"]["responses"]["200"]["content"]
        assert set(content) == {"text/event-stream"}, action
    completions = paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert set(completions) == {"application/json", "text/event-stream"}


def test_keys_are_declared_and_required(keyed: BackgroundServer) -> None:
    # The document itself needs no key, so Swagger UI can load it.
    document = httpx.get(f"{keyed.url}/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["bearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path == "/healthz":
                assert "security" not in operation and "401" not in operation["responses"]
                continue
            assert {"apiKey": []} in operation["security"], (method, path)
            assert {"bearer": []} in operation["security"], (method, path)
            assert "401" in operation["responses"], (method, path)
    # A signed URL stands in for a key on GET …/stream only; it can be refused with 403.
    get = document["paths"]["/chains/chat/stream"]["get"]
    assert {"signedUrl": []} in get["security"] and "403" in get["responses"]
    post = document["paths"]["/chains/chat/stream"]["post"]
    assert {"signedUrl": []} not in post["security"]
    unauthorized = httpx.get(f"{keyed.url}/chains")
    _validate(unauthorized.json(), "ErrorBody", document)
    assert httpx.get(f"{keyed.url}/v1/models").json()["error"]["code"] == "invalid_api_key"


def test_a_keyed_servers_document_shows_no_test_inputs(keyed: BackgroundServer) -> None:
    """Anyone may read the document of a server with keys: the examples, taken from chain
    files' tests (which may hold real samples), are left out there."""
    text = httpx.get(f"{keyed.url}/openapi.json").text
    assert "What is my name?" not in text and '"example"' not in text
