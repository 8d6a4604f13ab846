"""The JSON routes over real HTTP: listing, invoke, batch, and bad input."""

import httpx
import pytest

from service.emulator.server import Emulator

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def test_healthz_never_calls_a_model(client: httpx.Client, bedrock: Emulator) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok",
        "chains": 4,
        "runs_active": 0,
        "errors": [],
    }
    assert bedrock.state.calls == []


def test_list_chains(client: httpx.Client) -> None:
    chains = {c["name"]: c for c in client.get("/chains").json()["chains"]}
    assert set(chains) == {"chat", "summarize", "translate", "long"}
    summarize = chains["summarize"]
    assert summarize["description"] == "Summarize a text in a few sentences."
    assert summarize["model"] == {"provider": "bedrock-converse", "id": MODEL}
    assert summarize["inputs"]["text"]["required"] is True
    assert summarize["inputs"]["sentences"] == {
        "type": "integer",
        "default": 3,
        "description": "How many sentences the summary has.",
        "required": False,
    }


def test_get_chain_has_input_schema(client: httpx.Client) -> None:
    chain = client.get("/chains/translate").json()
    schema = chain["input_schema"]
    assert schema["required"] == ["text"]
    assert schema["properties"]["language"]["enum"] == [
        "French",
        "German",
        "Spanish",
        "Japanese",
        "Chinese",
    ]
    assert schema["properties"]["language"]["default"] == "French"
    assert schema["properties"]["text"]["maxLength"] == 10000
    assert schema["additionalProperties"] is False


def test_invoke_returns_output_and_metadata(client: httpx.Client) -> None:
    response = client.post("/chains/summarize/invoke", json={"input": {"text": "Cats sleep."}})
    assert response.status_code == 200
    body = response.json()
    assert body["output"].startswith(f"[emulator] {MODEL} received:")
    assert "Summarize the following text in 3 sentences:\n\nCats sleep." in body["output"]
    metadata = body["metadata"]
    assert set(metadata) == {"run_id", "model", "usage", "latency_ms", "stop_reason"}
    assert metadata["model"] == MODEL
    assert metadata["stop_reason"] == "end_turn"
    usage = metadata["usage"]
    assert usage["output_tokens"] == len(body["output"].split())
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0


def test_invoke_through_chat_bedrock(client: httpx.Client, bedrock: Emulator) -> None:
    body = client.post("/chains/translate/invoke", json={"input": {"text": "Hello"}}).json()
    assert "Translate into French." in body["output"]
    assert body["output"].endswith("user: Hello")
    assert bedrock.state.calls[0].operation == "invoke"
    assert body["metadata"]["usage"]["output_tokens"] > 0
    assert body["metadata"]["stop_reason"] == "end_turn"  # ChatBedrock spells it stop_reason


def test_chat_history_reaches_the_model(client: httpx.Client) -> None:
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"type": "ai", "content": "Hello Ada!"},  # LangServe's spelling
    ]
    body = client.post(
        "/chains/chat/invoke", json={"input": {"history": history, "question": "Who am I?"}}
    ).json()
    assert "user: My name is Ada.\nassistant: Hello Ada!\nuser: Who am I?" in body["output"]


def test_batch(client: httpx.Client) -> None:
    inputs = [{"text": "one"}, {"text": "two", "language": "German"}]
    response = client.post("/chains/translate/batch", json={"inputs": inputs})
    assert response.status_code == 200
    body = response.json()
    assert [o.rsplit(" ", 1)[-1] for o in body["output"]] == ["one", "two"]
    assert "German" in body["output"][1]
    metadata = body["metadata"]
    assert len(set(metadata["run_ids"])) == 2
    assert metadata["usage"]["output_tokens"] == sum(
        run["usage"]["output_tokens"] for run in metadata["runs"]
    )


def test_unknown_chain_is_404(client: httpx.Client) -> None:
    response = client.post("/chains/nope/invoke", json={"input": {}})
    assert response.status_code == 404
    assert "no chain named 'nope'" in response.json()["message"]
    assert "summarize" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "field", "hint"),
    [
        ({"input": {}}, "input.text", "required"),
        ({"input": {"text": 5}}, "input.text", "string"),
        ({"input": {"text": "x", "sentences": "3"}}, "input.sentences", "integer"),
        ({"input": {"text": "x" * 20001}}, "input.text", "at most 20000 characters"),
        ({"input": {"text": "x", "tone": "dry"}}, "input.tone", "unknown field"),
        ({"inputs": {"text": "x"}}, "input", "required"),
        (
            {"input": {"text": "x"}, "config": {"configurable": {"a": 1}}},
            "config.configurable",
            "no configurable",
        ),
        (
            {"input": {"text": "x"}, "config": {"callbacks": []}},
            "config.callbacks",
            "unknown field",
        ),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: httpx.Client, bedrock: Emulator, body: dict, field: str, hint: str
) -> None:
    for route in ("invoke", "stream"):
        response = client.post(f"/chains/summarize/{route}", json=body)
        assert response.status_code == 422, response.text
        error = response.json()
        assert field in [e["field"] for e in error["errors"]]
        assert hint in error["message"]
        assert "Traceback" not in response.text
    assert bedrock.state.calls == []


def test_enum_violation_lists_choices(client: httpx.Client) -> None:
    response = client.post(
        "/chains/translate/invoke", json={"input": {"text": "x", "language": "Klingon"}}
    )
    assert response.status_code == 422
    assert "'French'" in response.json()["message"]


def test_invalid_json_is_422(client: httpx.Client) -> None:
    response = client.post("/chains/summarize/invoke", content=b'{"input": ')
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["message"]


def test_body_over_limit_is_413(make_server) -> None:
    server = make_server(max_body_bytes=2048)
    response = httpx.post(
        f"{server.url}/chains/summarize/invoke", json={"input": {"text": "x" * 5000}}
    )
    assert response.status_code == 413
    assert "larger than 2048 bytes" in response.json()["message"]


def test_batch_limits(client: httpx.Client) -> None:
    response = client.post("/chains/translate/batch", json={"inputs": []})
    assert response.status_code == 422
    response = client.post("/chains/translate/batch", json={"inputs": [{"text": "a"}] * 33})
    assert response.status_code == 422 and "at most 32" in response.text
    response = client.post(
        "/chains/translate/batch", json={"inputs": [{"text": "a"}], "config": [{}, {}]}
    )
    assert response.status_code == 422 and "one per input" in response.text


def test_request_id_is_echoed(client: httpx.Client) -> None:
    response = client.post("/chains/nope/invoke", json={}, headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


def test_unknown_route_is_json_404(client: httpx.Client) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["status_code"] == 404


def test_cors(make_server) -> None:
    server = make_server(cors_origins="https://app.example")
    response = httpx.options(
        f"{server.url}/chains/summarize/stream",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_inputs_reach_the_model_unescaped(client: httpx.Client) -> None:
    """Mustache escapes HTML by default; a prompt is not HTML (translate uses mustache)."""
    text = '<b>Tom & Jerry</b> "quoted"'
    output = client.post("/chains/translate/invoke", json={"input": {"text": text}}).json()
    assert output["output"].endswith(f"user: {text}")
