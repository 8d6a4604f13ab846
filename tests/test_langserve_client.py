"""LangServe's own client, ``RemoteRunnable``, works against chainserve unchanged."""

import asyncio

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langserve import RemoteRunnable

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def summarize(server: BackgroundServer) -> RemoteRunnable:
    return RemoteRunnable(f"{server.url}/chains/summarize")


def test_invoke(summarize: RemoteRunnable) -> None:
    output = summarize.invoke({"text": "Cats sleep."})
    assert isinstance(output, str)
    assert output.startswith(f"[emulator] {MODEL} received:") and output.endswith("Cats sleep.")


def test_batch(summarize: RemoteRunnable) -> None:
    outputs = summarize.batch([{"text": "one"}, {"text": "two", "sentences": 1}])
    assert [o.split()[-1] for o in outputs] == ["one", "two"]
    assert "in 1 sentences" in outputs[1]


def test_stream(summarize: RemoteRunnable, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(reply_tokens=25)
    chunks = list(summarize.stream({"text": "Cats sleep."}))
    assert len(chunks) == 25
    assert "".join(chunks) == summarize.invoke({"text": "Cats sleep."})


def test_astream(summarize: RemoteRunnable) -> None:
    async def collect() -> list[str]:
        return [chunk async for chunk in summarize.astream({"text": "Cats sleep."})]

    assert "".join(asyncio.run(collect())).endswith("Cats sleep.")


def test_messages_from_langchain_objects(server: BackgroundServer) -> None:
    chat = RemoteRunnable(f"{server.url}/chains/chat")
    history = [HumanMessage("My name is Ada."), AIMessage("Hello Ada!")]
    output = chat.invoke({"history": history, "question": "Who am I?"})
    assert "user: My name is Ada.\nassistant: Hello Ada!\nuser: Who am I?" in output


def test_status_errors_reach_the_client(summarize: RemoteRunnable, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
    with pytest.raises(httpx.HTTPStatusError) as caught:
        summarize.invoke({"text": "x"})
    assert caught.value.response.status_code == 429
    with pytest.raises(httpx.HTTPStatusError) as caught:
        summarize.invoke({"nope": "x"})
    assert caught.value.response.status_code == 422


def test_error_event_mid_stream_raises(summarize: RemoteRunnable, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=2)])
    received = []
    with pytest.raises(httpx.HTTPStatusError) as caught:
        for chunk in summarize.stream({"text": "x"}):
            received.append(chunk)
    assert len(received) == 2
    assert caught.value.response.status_code == 502
