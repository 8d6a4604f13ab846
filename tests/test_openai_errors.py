"""The OpenAI-compatible API's refusals and failures, as the official ``openai`` SDK raises
them: a 400 for what a chain cannot honour, a 422 for what is not a request, Bedrock's and the
server's failures with their statuses, before and after the first chunk.
"""

import json
from typing import Any

import httpx
import openai
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.conftest import ServerFactory
from tests.test_openai import MODEL, ask, sdk


@pytest.fixture
def client(server: BackgroundServer) -> openai.OpenAI:
    return sdk(server)


# -- what is refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "param", "says"),
    [
        ({"max_tokens": 1001}, "max_tokens", "above this chain's limit of 1000"),
        ({"temperature": 1.5}, "temperature", "outside 0–1"),
        ({"top_p": -0.1}, "top_p", "outside 0–1"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"n": 2}, "n", "one answer per request"),
        ({"n": True}, "n", "one answer per request"),  # JSON true is not 1
        ({"logprobs": True}, "logprobs", "no log probabilities"),
        ({"response_format": {"type": "json_object"}}, "response_format", "output's form"),
        ({"frequency_penalty": 0.5}, "frequency_penalty", "no frequency penalty"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            "tools",
            "chains call no tools",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": "See"},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "this:"},
                            {"type": "input_audio", "input_audio": {"data": "AAAA"}},
                        ],
                    },
                ]
            },
            "messages[3].content[1].type",
            '"input_audio" parts are not supported',
        ),
        (
            {"messages": [{"role": "tool", "content": "21 °C", "tool_call_id": "t1"}]},
            "messages[0].role",
            "chains call no tools",
        ),
    ],
)
def test_what_a_chain_cannot_honour_is_a_400_naming_the_parameter(
    client: openai.OpenAI, bedrock: Emulator, kwargs: dict[str, Any], param: str, says: str
) -> None:
    request: dict[str, Any] = {"model": "chat", "messages": ask("Hi"), **kwargs}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**request)
    assert refused.value.param == param
    error = refused.value.body
    assert isinstance(error, dict) and error["message"].startswith(f"{param}: ")
    assert says in error["message"]
    assert refused.value.type == "invalid_request_error"
    assert bedrock.state.calls == []


def test_harmless_and_unknown_parameters_pass(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Hi", "name": "ada"}],
        n=1,
        user="ada",
        seed=7,
        frequency_penalty=0,
        presence_penalty=0,
        logit_bias={},
        tool_choice="none",
        metadata={"team": "x"},
        store=False,
        extra_body={"keep_alive": "5m", "top_k": 3},  # other clients' own fields
    )
    assert (completion.choices[0].message.content or "").endswith("user: Hi")


def test_a_body_that_is_not_a_request_is_a_422(server: BackgroundServer) -> None:
    with httpx.Client(base_url=f"{server.url}/v1") as http:
        cases = {
            b"{not json": "body",
            b'{"model": "chat"}': "messages",
            b'{"model": "chat", "messages": [{"role": "user", "content": 3}]}': (
                "messages[0].content"
            ),
            b'{"model": "chat", "messages": [], "model": "x"}': "model",
            b'{"model": "chat", "messages": [{"role": "user", "content": "a"}], "stream": "yes"}': (
                "stream"
            ),
        }
        for body, param in cases.items():
            response = http.post(
                "/chat/completions", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, body
            error = response.json()["error"]
            assert error["param"] == param and error["type"] == "invalid_request_error"
            assert error["request_id"] == response.headers["x-request-id"]


def test_history_on_a_chain_without_one_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.chat.completions.create(
            model="summarize",
            messages=[{"role": "system", "content": "Be brief."}, *ask("Cats sleep.")],
        )
    assert refused.value.param == "messages" and "no conversation history" in refused.value.message


# -- failures -----------------------------------------------------------------------------------


def test_bedrock_failures_keep_their_status(client: openai.OpenAI, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="throttle", times=2)])  # the model and its fallback
    with pytest.raises(openai.RateLimitError) as throttled:
        client.chat.completions.create(model="chat", messages=ask("Hi"), stream=True)
    assert throttled.value.type == "rate_limit_error" and throttled.value.code == "throttled"
    assert throttled.value.response.headers["retry-after"]
    assert MODEL in throttled.value.message

    bedrock.state.add_faults([Fault(kind="internal")])
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="chat", messages=ask("Hi"))
    assert failed.value.status_code == 502 and failed.value.type == "server_error"
    assert failed.value.request_id == failed.value.body["request_id"]  # type: ignore[index]


def test_a_failure_after_the_first_chunk_raises_from_the_stream(
    client: openai.OpenAI, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="stream_throttle", after_chunks=3)])
    stream = client.chat.completions.create(model="chat", messages=ask("Hi"), stream=True)
    received = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == f"[emulator] {MODEL} received:"
    assert failed.value.code == "throttled" and failed.value.type == "rate_limit_error"
    assert "Bedrock is throttling" in failed.value.message
    assert failed.value.body["request_id"]  # type: ignore[index]


def test_in_band_error_event_on_the_wire(server: BackgroundServer, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=2)])
    body = {"model": "chat", "messages": ask("Hi"), "stream": True}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = [block for block in response.text.split("\n\n") if block]
    assert all(event.startswith("data: ") for event in events)  # no named events
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["request_id"] == response.headers["x-request-id"]
    assert last["error"]["type"] == "server_error" and "[DONE]" not in response.text


def test_busy_server_is_a_503(make_server: ServerFactory, bedrock: Emulator) -> None:
    client = sdk(make_server(max_concurrency=1))
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=40)
    stream = client.chat.completions.create(model="chat", messages=ask("Hi"), stream=True)
    next(iter(stream))  # the one slot is taken
    with pytest.raises(openai.InternalServerError) as busy:
        client.chat.completions.create(model="chat", messages=ask("Hi"))
    stream.close()
    assert busy.value.status_code == 503 and busy.value.code == "busy"


def test_api_keys(make_server: ServerFactory) -> None:
    server = make_server(api_keys=["sk-right"])
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk(server, api_key="sk-wrong").models.list()
    assert refused.value.code == "invalid_api_key" and refused.value.type == "authentication_error"
    assert "sk-wrong" not in refused.value.response.text
    assert [m.id for m in sdk(server, api_key="sk-right").models.list()]


def test_error_shape_is_openais_under_v1_only(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        unknown = http.get("/v1/completions")
        assert unknown.status_code == 404 and set(unknown.json()) == {"error"}
        wrong_method = http.get("/v1/chat/completions")
        assert wrong_method.status_code == 405 and wrong_method.json()["error"]["message"]
        plain = http.post("/v1/chat/completions", content=b"{}")  # no JSON content type
        assert plain.status_code == 415 and plain.json()["error"]["param"] == "content-type"
        native = http.post("/chains/nope/invoke", json={"input": {}})
        assert native.status_code == 404 and native.json()["code"] == "chain_not_found"
