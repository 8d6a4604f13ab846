"""``/docs`` and ``/openapi.json`` describe each chain with its real input schema."""

import httpx


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


def test_docs_page(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_similar_chain_names_get_their_own_schemas(tmp_path, bedrock) -> None:
    from service.app import create_app
    from service.background import BackgroundServer
    from service.settings import Settings

    for name, variable in (("a-b", "first"), ("a_b", "second")):
        chain = "model: {id: m}\nprompt: {messages: [user: '{VAR}']}\ninputs: {VAR: {}}\n"
        (tmp_path / f"{name}.yaml").write_text(chain.replace("VAR", variable))
    settings = Settings(chains_dir=tmp_path, bedrock_endpoint_url=bedrock.url)
    with BackgroundServer(create_app(settings)) as server:
        document = httpx.get(f"{server.url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert set(schemas["a-b_Input"]["properties"]) == {"first"}
    assert set(schemas["a_b_Input"]["properties"]) == {"second"}
