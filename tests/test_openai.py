"""The OpenAI-compatible API, through the clients people point at it: the official ``openai``
SDK (sync and async) and LangChain's ``ChatOpenAI``, against a real server and the emulator.
"""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from service.app import create_app
from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from service.settings import Settings
from tests.conftest import ServerFactory

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ECHO = f"[emulator] {MODEL} received:"


def sdk(server: BackgroundServer, api_key: str = "unused") -> openai.OpenAI:
    # No retries: the tests check what the first answer was.
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=api_key, max_retries=0)


@pytest.fixture
def client(server: BackgroundServer) -> openai.OpenAI:
    return sdk(server)


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# -- models -----------------------------------------------------------------------------------


def test_models_are_the_chains_that_take_a_conversation(
    make_server: ServerFactory, chains_dir: Path, tmp_path: Path
) -> None:
    for path in chains_dir.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    # Two required strings: no input is "the user's message", so it is not a model.
    (tmp_path / "pair.yaml").write_text(
        "model: {id: m}\nprompt:\n  messages:\n    - user: '{a} {b}'\ninputs: {a: {}, b: {}}\n"
    )
    client = sdk(make_server(chains_dir=tmp_path))
    models = {model.id: model for model in client.models.list()}
    assert set(models) == {"chat", "summarize", "translate", "long"}
    assert models["chat"].object == "model" and models["chat"].owned_by == "chainserve"
    assert models["chat"].created == int((tmp_path / "chat.yaml").stat().st_mtime)

    assert client.models.retrieve("translate").id == "translate"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert missing.value.code == "model_not_found"
    assert "models: chat, long, summarize, translate" in missing.value.message
    with pytest.raises(openai.NotFoundError) as pair:
        client.chat.completions.create(model="pair", messages=ask("hi"))
    assert "cannot take a conversation" in pair.value.message


# -- completions ------------------------------------------------------------------------------


def test_conversation_fills_history_and_question(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="chat",
        messages=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada!"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Who"}, {"type": "text", "text": "am I?"}],
            },
        ],
    )
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == (
        # The developer message joins the chain's system prompt (Converse's system blocks).
        f"{ECHO}\nsystem: You are a helpful, concise assistant.\nAnswer in French.\n"
        "user: My name is Ada.\nassistant: Hello Ada!\nuser: Who\nam I?"
    )
    assert choice.finish_reason == "stop"
    assert completion.object == "chat.completion" and completion.model == "chat"
    assert completion.id.startswith("chatcmpl-")
    usage = completion.usage
    assert usage is not None
    assert usage.completion_tokens == len(choice.message.content.split())
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0


def test_stream_matches_the_whole_answer(client: openai.OpenAI, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(reply_tokens=30, tokens_per_second=300)
    whole = client.chat.completions.create(model="summarize", messages=ask("Cats sleep."))
    chunks = list(
        client.chat.completions.create(model="summarize", messages=ask("Cats sleep."), stream=True)
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(chunk.usage is None for chunk in chunks)  # no include_usage: no usage chunk
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == whole.choices[0].message.content
    assert len(chunks) > 5  # paced: streamed in pieces, not as one block
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {chunk.id for chunk in chunks} == {chunks[0].id}


def test_include_usage_adds_a_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="chat",
            messages=ask("Hello"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *rest, last = chunks
    assert last.choices == [] and last.usage is not None
    text = "".join(chunk.choices[0].delta.content or "" for chunk in rest)
    assert last.usage.completion_tokens == len(text.split())
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert rest[-1].choices[0].finish_reason == "stop"


def test_async_client(server: BackgroundServer) -> None:
    async def main() -> tuple[str, str]:
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        whole = await client.chat.completions.create(model="chat", messages=ask("Hi there"))
        stream = await client.chat.completions.create(
            model="chat", messages=ask("Hi there"), stream=True
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
        return whole.choices[0].message.content or "", streamed

    whole, streamed = asyncio.run(main())
    assert whole == streamed and whole.endswith("user: Hi there")


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="chat", messages=ask("Hi"), max_tokens=4)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 4
    chunks = list(
        client.chat.completions.create(
            model="translate", messages=ask("Hi"), max_completion_tokens=3, stream=True
        )
    )
    assert chunks[-1].choices[0].finish_reason == "length"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ECHO  # 3 words


def test_stop_sequence_ends_the_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="chat", messages=ask("Hi"), stop="received:")
    assert completion.choices[0].message.content == f"[emulator] {MODEL}"
    assert completion.choices[0].finish_reason == "stop"


def test_other_inputs_come_from_inputs(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="translate",
        messages=ask("Good morning"),
        extra_body={"inputs": {"language": "German"}},
    )
    assert "Translate into German." in (completion.choices[0].message.content or "")
    with pytest.raises(openai.UnprocessableEntityError) as bad:
        client.chat.completions.create(
            model="translate", messages=ask("Hi"), extra_body={"inputs": {"language": "Klingon"}}
        )
    assert bad.value.param == "inputs.language"
    assert bad.value.code == "invalid_input"


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
                            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                        ],
                    },
                ]
            },
            "messages[3].content[1].type",
            '"image_url" parts are not supported',
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


# -- parameters on the wire ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(bedrock: Emulator, chains_dir: Path) -> Iterator[tuple[BackgroundServer, list[Any]]]:
    """A server whose Bedrock requests are recorded as sent, JSON bodies decoded (botocore's
    own before-send hook on the app's shared client)."""
    settings = Settings(
        chains_dir=chains_dir,
        bedrock_endpoint_url=bedrock.url,
        bedrock_max_attempts=1,
        log_level="warning",
    )
    app = create_app(settings)
    sent: list[Any] = []
    client = app.state.catalog.get("chat").runnable.steps[1].client  # one per region, shared

    def capture(request: Any, **kwargs: Any) -> None:
        sent.append(json.loads(request.body))

    client.meta.events.register("before-send.bedrock-runtime", capture)
    with BackgroundServer(app) as server:
        yield server, sent
    client.meta.events.unregister("before-send.bedrock-runtime", capture)


@pytest.mark.parametrize("stream", [False, True])
def test_parameters_reach_converse(
    recorded: tuple[BackgroundServer, list[Any]], stream: bool
) -> None:
    server, sent = recorded
    sent.clear()
    client = sdk(server)
    request: dict[str, Any] = {"model": "chat", "messages": ask("Hi"), "stream": stream}
    answer = client.chat.completions.create(
        **request, max_tokens=50, temperature=0.1, top_p=0.5, stop=["zz", "yy"]
    )
    if stream:
        list(answer)
    answer = client.chat.completions.create(**request)  # the chain's own again: nothing stuck
    if stream:
        list(answer)
    assert [body["inferenceConfig"] for body in sent] == [
        {"maxTokens": 50, "temperature": 0.1, "topP": 0.5, "stopSequences": ["zz", "yy"]},
        {"maxTokens": 1000, "temperature": 0.7},
    ]


def test_parameters_reach_invoke_model_beside_the_chains_stop(
    recorded: tuple[BackgroundServer, list[Any]],
) -> None:
    server, sent = recorded
    sent.clear()
    client = sdk(server)
    for stream in (False, True):
        answer = client.chat.completions.create(
            model="translate", messages=ask("Hi"), stream=stream,
            max_tokens=20, temperature=0.9, top_p=0.4, stop="zz",
        )  # fmt: skip
        if stream:
            list(answer)
    client.chat.completions.create(model="translate", messages=ask("Hi"))
    fields = ("max_tokens", "temperature", "top_p", "stop_sequences")
    assert [{key: body.get(key) for key in fields} for body in sent] == [
        {"max_tokens": 20, "temperature": 0.9, "top_p": 0.4, "stop_sequences": ["</translation>", "zz"]},
        {"max_tokens": 20, "temperature": 0.9, "top_p": 0.4, "stop_sequences": ["</translation>", "zz"]},
        {"max_tokens": 1000, "temperature": 0, "top_p": None, "stop_sequences": ["</translation>"]},
    ]  # fmt: skip


# -- failures -----------------------------------------------------------------------------------


def test_bedrock_failures_keep_their_status(client: openai.OpenAI, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
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


# -- LangChain's ChatOpenAI ---------------------------------------------------------------------


def test_langchain_chat_openai(server: BackgroundServer) -> None:
    chat = ChatOpenAI(
        model="chat",
        base_url=f"{server.url}/v1",
        api_key="unused",
        max_retries=0,
    )
    messages = [
        SystemMessage("Be brief."),
        HumanMessage("Hi"),
        AIMessage("Hello!"),
        HumanMessage("Bye"),
    ]
    answer = chat.invoke(messages)
    assert isinstance(answer.content, str)
    assert answer.content.endswith("assistant.\nBe brief.\nuser: Hi\nassistant: Hello!\nuser: Bye")
    assert answer.response_metadata["finish_reason"] == "stop"
    assert answer.usage_metadata and answer.usage_metadata["output_tokens"] > 0

    chunks = list(chat.stream(messages, stream_usage=True))
    assert "".join(str(chunk.content) for chunk in chunks) == answer.content
    usage = [chunk.usage_metadata for chunk in chunks if chunk.usage_metadata]
    assert usage and usage[-1]["output_tokens"] == answer.usage_metadata["output_tokens"]

    short = ChatOpenAI(
        model="translate", base_url=f"{server.url}/v1", api_key="unused", max_tokens=2,
        extra_body={"inputs": {"language": "Spanish"}},
    )  # fmt: skip
    assert short.invoke("Hola").response_metadata["finish_reason"] == "length"
