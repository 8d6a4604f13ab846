"""The OpenAI-compatible API, through the clients people point at it: the official ``openai``
SDK (sync and async) and LangChain's ``ChatOpenAI``, against a real server and the emulator.
What it refuses, and how failures reach those clients: tests/test_openai_errors.py.
"""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from service.app import create_app
from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Pace
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
        "model: {id: anthropic.claude-3-haiku-20240307-v1:0}\nprompt:\n  messages:\n    - user: '{a} {b}'\ninputs: {a: {}, b: {}}\n"
    )
    client = sdk(make_server(chains_dir=tmp_path))
    models = {model.id: model for model in client.models.list()}
    assert set(models) == {"chat", "summarize", "translate", "long", "extract", "describe_image"}
    assert models["chat"].object == "model" and models["chat"].owned_by == "chainserve"
    assert models["chat"].created == int((tmp_path / "chat.yaml").stat().st_mtime)

    assert client.models.retrieve("translate").id == "translate"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert missing.value.code == "model_not_found"
    assert (
        "models: chat, describe_image, extract, long, summarize, translate" in missing.value.message
    )
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
