"""LangServe's stream_log, stream_events and schema routes over real HTTP: their bodies, their
Server-Sent Events, their statuses, and that they run as every run does (the cap, usage,
cancel-on-disconnect). RemoteRunnable's view of them: tests/test_langserve_client.py."""

import json
import logging
import threading
from typing import Any

import httpx
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.conftest import ServerFactory
from tests.helpers import parse_sse, wait_for

BODY = {"input": {"text": "Streams are fun."}}
SSE = "text/event-stream; charset=utf-8"


def events_of(response: httpx.Response) -> list[tuple[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == SSE
    return parse_sse(response.text)


# -- schemas ------------------------------------------------------------------------------------


def test_input_schema_is_the_chains(client: httpx.Client) -> None:
    schema = client.get("/chains/chat/input_schema").json()
    assert schema == client.get("/chains/chat").json()["input_schema"]
    assert schema["required"] == ["question"]
    assert schema["properties"]["history"]["maxItems"] == 50


def test_output_schema_is_a_string(client: httpx.Client) -> None:
    assert client.get("/chains/summarize/output_schema").json() == {
        "title": "summarize_Output",
        "type": "string",
    }


def test_config_schema_says_what_a_config_may_hold(client: httpx.Client) -> None:
    schema = client.get("/chains/summarize/config_schema").json()
    assert schema["title"] == "summarize_Config" and schema["type"] == "object"
    assert schema["additionalProperties"] is False
    properties = schema["properties"]
    assert set(properties) == {
        "tags",
        "metadata",
        "run_name",
        "recursion_limit",
        "max_concurrency",
        "configurable",
    }
    assert properties["configurable"]["maxProperties"] == 0
    # The schema is what the routes accept: its keys pass, others are refused.
    config = {"tags": ["t"], "metadata": {"k": 1}, "run_name": "r", "configurable": {}}
    ok = client.post("/chains/summarize/stream_events", json={**BODY, "config": config})
    assert ok.status_code == 200
    refused = client.post("/chains/summarize/stream_events", json={**BODY, "config": {"x": 1}})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "config.x"


@pytest.mark.parametrize("route", ["input_schema", "output_schema", "config_schema"])
def test_schemas_of_an_unknown_chain_are_404(client: httpx.Client, route: str) -> None:
    response = client.get(f"/chains/nope/{route}")
    assert response.status_code == 404 and "summarize" in response.json()["message"]


# -- stream_events -------------------------------------------------------------------------------


def test_stream_events_are_the_runs_langchain_events(
    client: httpx.Client, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(reply_tokens=6)
    response = client.post("/chains/summarize/stream_events", json=BODY)
    events = events_of(response)
    assert events[-1] == ("end", None)
    assert {name for name, _ in events[:-1]} == {"data"}  # no metadata: the client logs one
    data = [event for _, event in events[:-1]]
    kinds = [(event["event"], event["name"]) for event in data]
    assert kinds[:4] == [
        ("on_chain_start", "RunnableSequence"),
        ("on_prompt_start", "ChatPromptTemplate"),
        ("on_prompt_end", "ChatPromptTemplate"),
        ("on_chat_model_start", "ChatBedrockConverse"),
    ]
    assert kinds[-3:] == [
        ("on_chat_model_end", "ChatBedrockConverse"),
        ("on_parser_end", "StrOutputParser"),
        ("on_chain_end", "RunnableSequence"),
    ]
    # The root run is the run the X-Run-Id header names; the steps are its children.
    assert data[0]["run_id"] == response.headers["x-run-id"]
    assert all(response.headers["x-run-id"] in e["parent_ids"] for e in data[1:] if e["tags"])
    # Each model chunk is an AIMessageChunk, as LangServe serializes it.
    chunks = [e["data"]["chunk"] for e in data if e["event"] == "on_chat_model_stream"]
    assert {chunk["type"] for chunk in chunks} == {"AIMessageChunk"}
    text = "".join(
        b["text"] for c in chunks if isinstance(c["content"], list) for b in c["content"]
    )
    output = data[-1]["data"]["output"]
    assert text == output == client.post("/chains/summarize/invoke", json=BODY).json()["output"]
    assert len(output.split()) == 6
    prompt = data[2]["data"]["output"]["messages"]
    assert [m["type"] for m in prompt] == ["system", "human"]


def test_stream_events_of_a_chatbedrock_chain(client: httpx.Client) -> None:
    """translate runs ChatBedrock (InvokeModel): its events are LangChain's too."""
    body = {"input": {"text": "Good morning", "language": "German"}}
    events = events_of(client.post("/chains/translate/stream_events", json=body))
    data = [e for name, e in events if name == "data"]
    chunks = [e["data"]["chunk"] for e in data if e["event"] == "on_chat_model_stream"]
    assert chunks and {e["name"] for e in data if e["event"] == "on_chat_model_stream"} == {
        "ChatBedrock"
    }
    output = client.post("/chains/translate/invoke", json=body).json()["output"]
    assert "".join(chunk["content"] for chunk in chunks) == output == data[-1]["data"]["output"]


def test_stream_events_filters(client: httpx.Client) -> None:
    only_model = {**BODY, "include_types": ["chat_model"]}
    events = events_of(client.post("/chains/summarize/stream_events", json=only_model))
    assert {e["name"] for name, e in events if name == "data"} == {"ChatBedrockConverse"}
    tagged = {**BODY, "config": {"tags": ["mine"]}, "exclude_names": ["StrOutputParser"]}
    events = events_of(client.post("/chains/summarize/stream_events", json=tagged))
    data = [e for name, e in events if name == "data"]
    assert "StrOutputParser" not in {e["name"] for e in data}
    assert all("mine" in e["tags"] for e in data)


def test_messages_inputs_go_in_as_langchain_messages(client: httpx.Client) -> None:
    body = {
        "input": {
            "question": "And now?",
            "history": [{"type": "human", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
        }
    }
    events = events_of(client.post("/chains/chat/stream_events", json=body))
    [start] = [e for name, e in events if name == "data" and e["event"] == "on_chat_model_start"]
    [messages] = start["data"]["input"]["messages"]
    assert [(m["type"], m["content"]) for m in messages][1:] == [
        ("human", "Hi"),
        ("ai", "Yo"),
        ("human", "And now?"),
    ]


# -- stream_log ----------------------------------------------------------------------------------


def test_stream_log_patches_build_the_runs_state(client: httpx.Client, bedrock: Emulator) -> None:
    import jsonpatch  # type: ignore[import-untyped]  # LangChain's own dependency

    bedrock.state.pace = Pace(reply_tokens=5)
    response = client.post("/chains/summarize/stream_log", json=BODY)
    events = events_of(response)
    assert events[-1] == ("end", None)
    state: Any = None
    for name, data in events[:-1]:
        assert name == "data" and set(data) == {"ops"}
        state = jsonpatch.apply_patch(state, data["ops"])
    output = client.post("/chains/summarize/invoke", json=BODY).json()["output"]
    assert state["id"] == response.headers["x-run-id"]
    assert state["final_output"] == output == "".join(state["streamed_output"])
    assert set(state["logs"]) == {"ChatPromptTemplate", "ChatBedrockConverse", "StrOutputParser"}
    assert state["logs"]["StrOutputParser"]["final_output"]["output"] == output


# -- requests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["stream_log", "stream_events"])
def test_the_input_is_validated_as_streams_is(client: httpx.Client, route: str) -> None:
    for body in (
        {"input": {"txt": "typo"}},
        {"input": {"text": "x", "sentences": "3"}},
        {"input": {"text": "x" * 20_001}},
        {"input": {"text": "x"}, "kwargs": {"a": 1}} if route == "stream_log" else {},
        {"input": {"text": "x"}, "config": {"configurable": {"model": "y"}}},
    ):
        ours = client.post(f"/chains/summarize/{route}", json=body)
        native = client.post("/chains/summarize/stream", json=body)
        assert ours.status_code == native.status_code == 422
        assert ours.json()["errors"] == native.json()["errors"], body


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        ({"include_types": ["llm"]}, "include_types.0", "must be one of"),
        ({"exclude_types": "chain"}, "exclude_types", "valid array"),
        ({"include_names": [1]}, "include_names.0", "string"),
        ({"include_tags": ["t"] * 101}, "include_tags", "at most 100"),
        ({"filter": ["x"]}, "filter", "unknown field"),
        ({"kwargs": {"version": "v1"}}, "kwargs.version", "must be one of 'v2'"),
        ({"kwargs": {"other": 1}}, "kwargs.other", "unknown field"),
    ],
)
def test_filters_are_checked_strictly(
    client: httpx.Client, extra: dict[str, Any], field: str, says: str
) -> None:
    response = client.post("/chains/summarize/stream_events", json={**BODY, **extra})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == field and says in error["message"], error


@pytest.mark.parametrize("route", ["stream_log", "stream_events"])
def test_what_langserve_clients_add_is_accepted(client: httpx.Client, route: str) -> None:
    """RemoteRunnable sends `diff: true` to stream_log; LangChain.js's sends `diff: false`
    to both, and `kwargs: {"version": "v2"}` to stream_events. Patches either way, as
    LangServe answers them (LangChain.js reads patches too)."""
    extra: dict[str, Any] = {"diff": False}
    if route == "stream_events":
        extra["kwargs"] = {"version": "v2"}
    events = events_of(client.post(f"/chains/summarize/{route}", json={**BODY, **extra}))
    assert events[-1] == ("end", None)
    if route == "stream_log":
        assert all(set(data) == {"ops"} for name, data in events if name == "data")
    wrong = client.post(f"/chains/summarize/{route}", json={**BODY, "diff": "yes"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "diff"


@pytest.mark.parametrize("route", ["invoke", "stream", "stream_log", "stream_events"])
def test_langchain_js_config_keys_are_accepted(client: httpx.Client, route: str) -> None:
    """LangChain.js's RemoteRunnable sends its config in camelCase (recursionLimit on every
    call): those keys mean what the snake_case ones do; unknown keys are still refused."""
    config = {"recursionLimit": 25, "runName": "js", "maxConcurrency": 2, "tags": []}
    response = client.post(f"/chains/summarize/{route}", json={**BODY, "config": config})
    assert response.status_code == 200, response.text
    wrong = client.post(f"/chains/summarize/{route}", json={**BODY, "config": {"recursion": 2}})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "config.recursion"


def test_body_rules_are_the_native_routes(client: httpx.Client) -> None:
    repeated = b'{"input": {"text": "a"}, "include_names": ["x"], "include_names": ["y"]}'
    response = client.post(
        "/chains/summarize/stream_events",
        content=repeated,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "include_names"
    response = client.post("/chains/summarize/stream_log", content=json.dumps(BODY))
    assert response.status_code == 415
    assert client.post("/chains/nope/stream_events", json=BODY).status_code == 404
    assert client.get("/chains/summarize/stream_events").status_code == 405


# -- failures, the cap, usage, disconnects ------------------------------------------------------


@pytest.mark.parametrize("route", ["stream_log", "stream_events"])
def test_a_failure_before_the_first_token_is_a_status(
    client: httpx.Client, bedrock: Emulator, route: str
) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
    response = client.post(f"/chains/summarize/{route}", json=BODY)
    assert response.status_code == 429 and response.headers["retry-after"]
    assert response.json()["code"] == "throttled"
    # Also when the stream opened but failed before any text.
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=0)])
    assert client.post(f"/chains/summarize/{route}", json=BODY).status_code == 502


@pytest.mark.parametrize("route", ["stream_log", "stream_events"])
def test_a_failure_mid_stream_is_an_error_event(
    client: httpx.Client, bedrock: Emulator, route: str
) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=3)])
    events = events_of(client.post(f"/chains/summarize/{route}", json=BODY))
    name, error = events[-1]
    assert name == "error" and "end" not in [n for n, _ in events]
    assert error["status_code"] == 502 and error["code"] and error["message"]
    assert error["request_id"]
    assert len(events) > 4  # the events before the failure were delivered


def test_usage_is_collected_and_logged(
    client: httpx.Client, bedrock: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chainserve")
    bedrock.state.pace = Pace(reply_tokens=7)
    response = client.post("/chains/summarize/stream_events", json=BODY)
    assert response.status_code == 200
    run_id = response.headers["x-run-id"]
    wait_for(lambda: run_id in caplog.text)
    [line] = [r.getMessage() for r in caplog.records if run_id in r.getMessage()]
    assert line.startswith("stream_events chain=summarize ")
    assert "output_tokens=7" in line and "input_tokens=0" not in line


def test_event_runs_count_towards_the_cap(make_server: ServerFactory, bedrock: Emulator) -> None:
    server = make_server(max_concurrency=1)
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=100)
    with httpx.Client(base_url=server.url, timeout=30) as http:  # noqa: SIM117
        with http.stream("POST", "/chains/summarize/stream_events", json=BODY) as response:
            assert response.status_code == 200
            busy = http.post("/chains/summarize/stream", json=BODY)
            assert busy.status_code == 503 and busy.json()["code"] == "busy"


def test_client_disconnect_stops_the_model_stream(
    server: BackgroundServer, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=200)  # 10 s if left to run
    received = 0
    executors = {t for t in threading.enumerate() if t.name.startswith("asyncio_")}
    with httpx.Client(base_url=server.url) as http:  # noqa: SIM117
        with http.stream("POST", "/chains/summarize/stream_events", json=BODY) as response:
            for line in response.iter_lines():
                received += '"on_chat_model_stream"' in line
                if received >= 3:
                    break  # leaving the block closes the connection
    [call] = bedrock.state.calls
    wait_for(lambda: call.status != "running", timeout=5)
    assert call.status == "disconnected"
    # The server stops within a chunk of noticing: a few tokens in flight, never the rest.
    assert call.tokens_sent <= received + 3, (call.tokens_sent, received)
    assert call.tokens_planned == 200
    # The run read Bedrock on its worker thread, not on an event loop's executor threads
    # (other tests' loops may have left theirs: only new ones count).
    now = {t for t in threading.enumerate() if t.name.startswith("asyncio_")}
    assert not now - executors, now - executors


def test_the_routes_need_a_key(make_server: ServerFactory) -> None:
    key = "sk-test-langserve-routes"
    server = make_server(api_keys=key)
    for method, route in [
        ("GET", "input_schema"),
        ("GET", "output_schema"),
        ("GET", "config_schema"),
        ("POST", "stream_log"),
        ("POST", "stream_events"),
    ]:
        url = f"{server.url}/chains/summarize/{route}"
        assert httpx.request(method, url, json=BODY).status_code == 401, route
        keyed = httpx.request(method, url, json=BODY, headers={"x-api-key": key})
        assert keyed.status_code == 200, route


@pytest.mark.parametrize("route", ["stream_events", "stream_log"])
def test_a_structured_chains_events_stream_as_its_tool_input_grows(
    make_server: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
    bedrock: Emulator,
    route: str,
) -> None:
    # Function calling: the object arrives as a tool's input, chunks with no text. Events are
    # held only until the model's first output — a tool's arguments count.
    folder = tmp_path_factory.mktemp("tool-chains")
    (folder / "tool.yaml").write_text(
        "model: {id: anthropic.claude-3-haiku-20240307-v1:0}\n"
        "prompt:\n  messages:\n    - user: '{text}'\n"
        "inputs: {text: {}}\n"
        "output:\n  schema: {type: object, properties: {a: {type: string}}, required: [a]}\n"
    )
    server = make_server(chains_dir=folder)
    bedrock.state.pace = Pace(tokens_per_second=10)
    words = " ".join(f"w{i}" for i in range(12))  # the tool input echoes them: about a second
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream("POST", f"/chains/tool/{route}", json={"input": {"text": words}}) as response,
    ):
        assert response.status_code == 200
        seen = b""
        for part in response.iter_bytes():
            seen += part
            if b"event: data" in seen:
                break
        [call] = bedrock.state.calls
        assert call.status == "running"  # the first events came while the model wrote
