"""The JSON routes over real HTTP: listing, invoke, batch, and bad input."""

from typing import Any

import httpx
import pytest

from service.emulator.server import Emulator
from tests.conftest import ServerFactory

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def test_healthz_never_calls_a_model(client: httpx.Client, bedrock: Emulator) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok",
        "chains": 6,
        "runs_active": 0,
        "errors": [],
    }
    assert bedrock.state.calls == []


def test_list_chains(client: httpx.Client) -> None:
    chains = {c["name"]: c for c in client.get("/chains").json()["chains"]}
    assert set(chains) == {"chat", "summarize", "translate", "long", "extract", "describe_image"}
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
    client: httpx.Client, bedrock: Emulator, body: dict[str, Any], field: str, hint: str
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
    response = client.post(
        "/chains/summarize/invoke",
        content=b'{"input": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["message"]


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


def test_cors(make_server: ServerFactory) -> None:
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


# -- batch: per-input results, per-run latency ------------------------------------------------


def test_batch_return_exceptions_keeps_the_other_outputs(
    client: httpx.Client, bedrock: Emulator
) -> None:
    from service.emulator.state import Fault

    bedrock.state.add_faults([Fault(kind="throttle")])  # the first call: input 0, one at a time
    inputs = [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    response = client.post(
        "/chains/summarize/batch",
        json={"inputs": inputs, "config": {"max_concurrency": 1}, "return_exceptions": True},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    output, runs = body["output"], body["metadata"]["runs"]
    assert output[0] is None
    assert [text.split()[-1] for text in output[1:]] == ["two", "three"]
    error = runs[0]["error"]
    assert error["status_code"] == 429 and error["code"] == "throttled"
    assert MODEL in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert ["error" in run for run in runs] == [True, False, False]
    assert body["metadata"]["run_ids"] == [run["run_id"] for run in runs]
    assert body["metadata"]["usage"]["output_tokens"] == sum(
        run["usage"]["output_tokens"] for run in runs
    )


def test_batch_without_return_exceptions_fails_whole_and_stops(
    client: httpx.Client, bedrock: Emulator
) -> None:
    """LangServe's behaviour, kept: the first failure is the batch's status; the inputs not
    yet started never call the model."""
    from service.emulator.state import Fault

    bedrock.state.add_faults([Fault(kind="access_denied")])
    inputs = [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    response = client.post(
        "/chains/summarize/batch", json={"inputs": inputs, "config": {"max_concurrency": 1}}
    )
    assert response.status_code == 502
    assert response.json()["code"] == "model_access_denied"
    assert len(bedrock.state.calls) == 1


def test_batch_runs_each_have_their_own_latency(client: httpx.Client, bedrock: Emulator) -> None:
    from service.emulator.state import Fault, Pace

    bedrock.state.pace = Pace(ttft_ms=50)
    bedrock.state.add_faults([Fault(kind="slow_first_token", delay_ms=500)])  # one call of three
    inputs = [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    response = client.post("/chains/summarize/batch", json={"inputs": inputs})  # all at once
    assert response.status_code == 200
    metadata = response.json()["metadata"]
    latencies = sorted(run["latency_ms"] for run in metadata["runs"])
    model_ms = sorted((call.ended - call.started) * 1000 for call in bedrock.state.calls)  # type: ignore[operator]
    for latency, model in zip(latencies, model_ms, strict=True):
        assert model - 5 <= latency <= model + 100, (latencies, model_ms)
    assert latencies[0] < 300 and latencies[1] < 300 and latencies[2] >= 550
    assert metadata["latency_ms"] >= latencies[2]  # the batch: as long as its slowest run


def test_batch_return_exceptions_must_be_a_boolean(client: httpx.Client) -> None:
    response = client.post(
        "/chains/summarize/batch", json={"inputs": [{"text": "x"}], "return_exceptions": "yes"}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["return_exceptions"]


# -- methods, CORS, repeated names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/chains/summarize/invoke", "POST"),
        ("PUT", "/chains/summarize/stream", "GET, POST"),  # two routes, one path
        ("DELETE", "/chains/summarize/batch", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_405_names_the_allowed_methods(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    body = response.json()
    assert body["code"] == "method_not_allowed"
    assert body["message"] == f"method {method} is not allowed on this path; use {allow}"
    assert body["request_id"] == response.headers["x-request-id"]


def test_refused_cors_preflight_is_a_json_error(make_server: ServerFactory) -> None:
    server = make_server(cors_origins="https://app.example")
    url = f"{server.url}/chains/summarize/stream"
    evil = httpx.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert evil.status_code == 400
    body = evil.json()
    assert body["code"] == "cors_refused"
    assert body["errors"] == [
        {
            "field": "origin",
            "message": "origin 'https://evil.example' is not allowed; the server's "
            "CHAINSERVE_CORS_ORIGINS lists the origins that are",
        }
    ]
    assert body["request_id"] == evil.headers["x-request-id"]
    assert "access-control-allow-origin" not in evil.headers
    put = httpx.options(
        url, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"}
    )
    assert put.status_code == 400
    assert put.json()["message"] == (
        "CORS preflight refused: method 'PUT' is not allowed; use GET or POST"
    )
    assert put.headers["access-control-allow-origin"] == "https://app.example"  # readable


def test_repeated_query_parameter_is_422(client: httpx.Client, bedrock: Emulator) -> None:
    response = client.get("/chains/summarize/stream", params=[("text", "a"), ("text", "b")])
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "input.text", "message": "given more than once; give it once"}
    ]
    assert bedrock.state.calls == []


@pytest.mark.parametrize(
    ("route", "raw", "field"),
    [
        ("invoke", b'{"input": {"text": "a", "text": "b"}}', "input.text"),
        ("stream", b'{"input": {"text": "a"}, "input": {"text": "b"}}', "input"),
        (
            "render",
            b'{"input": {"text": "a"}, "config": {"tags": [], "tags": ["x"]}}',
            "config.tags",
        ),
        ("batch", b'{"inputs": [{"text": "a"}, {"text": "a", "text": "b"}]}', "inputs.1.text"),
        (
            "invoke",
            b'{"input": {"text": "a", "history": [{"role": "user", "role": "ai", "content": ""}]}}',
            "input.history.0.role",
        ),
    ],
)
def test_duplicate_json_keys_are_422(
    client: httpx.Client, bedrock: Emulator, route: str, raw: bytes, field: str
) -> None:
    chain = "chat" if b"history" in raw else "summarize"
    response = client.post(
        f"/chains/{chain}/{route}", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": field, "message": "given more than once; give it once"}
    ]
    assert bedrock.state.calls == []
