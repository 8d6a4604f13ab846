"""LangServe's own client, ``RemoteRunnable``, works against chainserve unchanged."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.tracers.log_stream import RunLog, RunLogPatch
from langserve import RemoteRunnable
from langserve.client import _log_error_message_once, _log_info_message_once

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
T = TypeVar("T")
Remote = RemoteRunnable[Any, Any]


@pytest.fixture
def summarize(server: BackgroundServer) -> Remote:
    return RemoteRunnable(f"{server.url}/chains/summarize")


def run_async(url: str, work: Callable[[Remote], Awaitable[T]]) -> T:
    """``work`` on a RemoteRunnable of its own, in a loop of its own. Its async client is
    closed in that loop: left to the client's finalizer, it would be closed after the loop,
    and print 'Event loop is closed'."""

    async def main() -> T:
        remote: Remote = RemoteRunnable(url)
        try:
            return await work(remote)
        finally:
            await remote.async_client.aclose()

    return asyncio.run(main())


def test_invoke(summarize: Remote) -> None:
    output = summarize.invoke({"text": "Cats sleep."})
    assert isinstance(output, str)
    assert output.startswith(f"[emulator] {MODEL} received:") and output.endswith("Cats sleep.")


def test_batch(summarize: Remote) -> None:
    outputs = summarize.batch([{"text": "one"}, {"text": "two", "sentences": 1}])
    assert [o.split()[-1] for o in outputs] == ["one", "two"]
    assert "in 1 sentences" in outputs[1]


def test_stream(summarize: Remote, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(reply_tokens=25)
    chunks = list(summarize.stream({"text": "Cats sleep."}))
    assert len(chunks) == 25
    assert "".join(chunks) == summarize.invoke({"text": "Cats sleep."})


def test_astream(summarize: Remote) -> None:
    async def collect(remote: Remote) -> list[str]:
        return [chunk async for chunk in remote.astream({"text": "Cats sleep."})]

    assert "".join(run_async(summarize.url, collect)).endswith("Cats sleep.")


def test_messages_from_langchain_objects(server: BackgroundServer) -> None:
    chat: Remote = RemoteRunnable(f"{server.url}/chains/chat")
    history = [HumanMessage("My name is Ada."), AIMessage("Hello Ada!")]
    output = chat.invoke({"history": history, "question": "Who am I?"})
    assert "user: My name is Ada.\nassistant: Hello Ada!\nuser: Who am I?" in output


def test_status_errors_reach_the_client(summarize: Remote, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
    with pytest.raises(httpx.HTTPStatusError) as caught:
        summarize.invoke({"text": "x"})
    assert caught.value.response.status_code == 429
    with pytest.raises(httpx.HTTPStatusError) as caught:
        summarize.invoke({"nope": "x"})
    assert caught.value.response.status_code == 422


def test_error_event_mid_stream_raises(summarize: Remote, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=2)])
    received = []
    with pytest.raises(httpx.HTTPStatusError) as caught:
        for chunk in summarize.stream({"text": "x"}):
            received.append(chunk)
    assert len(received) == 2
    assert caught.value.response.status_code == 502


# -- astream_events, astream_log, and no client call logging a warning ------------------------


def test_astream_events_v2(summarize: Remote, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(reply_tokens=9)

    async def collect(remote: Remote) -> list[dict[str, Any]]:
        stream = remote.astream_events({"text": "Cats sleep."}, version="v2")
        return [dict(event) async for event in stream]

    events = run_async(summarize.url, collect)
    kinds = [event["event"] for event in events]
    assert kinds[0] == "on_chain_start" and kinds[-1] == "on_chain_end"
    for kind in ("on_prompt_start", "on_prompt_end", "on_chat_model_start", "on_parser_start"):
        assert kind in kinds
    assert kinds.index("on_prompt_end") < kinds.index("on_chat_model_start")
    [start] = [e for e in events if e["event"] == "on_chat_model_start"]
    [messages] = start["data"]["input"]["messages"]
    assert isinstance(messages[0], SystemMessage) and isinstance(messages[1], HumanMessage)
    chunks = [e["data"]["chunk"] for e in events if e["event"] == "on_chat_model_stream"]
    assert chunks and all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    output = summarize.invoke({"text": "Cats sleep."})
    assert "".join(chunk.text for chunk in chunks) == output
    assert events[-1]["data"]["output"] == output
    [end] = [e for e in events if e["event"] == "on_chat_model_end"]
    message = end["data"]["output"]
    assert isinstance(message, AIMessageChunk) and message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == 9


def test_astream_events_with_filters_and_messages(server: BackgroundServer) -> None:
    history = [HumanMessage("My name is Ada."), AIMessage("Hello Ada!")]

    async def collect(remote: Remote) -> list[dict[str, Any]]:
        stream = remote.astream_events(
            {"history": history, "question": "Who am I?"},
            version="v2",
            include_types=["chat_model"],
        )
        return [dict(event) async for event in stream]

    events = run_async(f"{server.url}/chains/chat", collect)
    assert {event["name"] for event in events} == {"ChatBedrockConverse"}
    [end] = [e for e in events if e["event"] == "on_chat_model_end"]
    assert (
        "user: My name is Ada.\nassistant: Hello Ada!\nuser: Who am I?"
        in end["data"]["output"].text
    )


def test_astream_log(summarize: Remote, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(reply_tokens=7)

    async def collect(remote: Remote) -> list[RunLogPatch]:
        return [patch async for patch in remote.astream_log({"text": "Cats sleep."})]

    patches = run_async(summarize.url, collect)
    log = sum(patches[1:], patches[0])
    assert isinstance(log, RunLog)
    output = summarize.invoke({"text": "Cats sleep."})
    assert log.state["final_output"] == output == "".join(log.state["streamed_output"])
    assert set(log.state["logs"]) == {
        "ChatPromptTemplate",
        "ChatBedrockConverse",
        "StrOutputParser",
    }
    model = log.state["logs"]["ChatBedrockConverse"]
    chunks = model["streamed_output"]
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == output
    result: Any = model["final_output"]  # an LLMResult, as the client decodes it
    assert result.generations[0][0].message.usage_metadata["output_tokens"] == 7


def test_astream_events_errors_reach_the_client(summarize: Remote, bedrock: Emulator) -> None:
    async def drain(remote: Remote) -> list[Any]:
        return [event async for event in remote.astream_events({"text": "x"}, version="v2")]

    bedrock.state.add_faults([Fault(kind="throttle")])
    with pytest.raises(httpx.HTTPStatusError) as caught:
        run_async(summarize.url, drain)
    assert caught.value.response.status_code == 429  # before the first token: the status
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=2)])
    with pytest.raises(httpx.HTTPStatusError) as caught:
        run_async(summarize.url, drain)
    assert caught.value.response.status_code == 502  # after it: the error event


def test_no_client_call_logs_a_warning(summarize: Remote, caplog: pytest.LogCaptureFixture) -> None:
    """Every RemoteRunnable call, streams included, runs without an error or warning in the
    client's log (an SSE event it does not know is logged as an error)."""
    # The client logs each message once per process (an lru_cache): forget what earlier
    # tests may have logged, so a message this test causes is seen.
    _log_error_message_once.cache_clear()
    _log_info_message_once.cache_clear()
    caplog.set_level(logging.INFO)
    text = {"text": "Cats sleep."}

    async def streams(remote: Remote) -> None:
        assert [chunk async for chunk in remote.astream(text)]
        assert [patch async for patch in remote.astream_log(text)]
        assert [event async for event in remote.astream_events(text, version="v2")]
        assert await remote.ainvoke(text)
        assert await remote.abatch([text, text])

    assert list(summarize.stream(text))
    assert summarize.invoke(text) and summarize.batch([text, text])
    run_async(summarize.url, streams)
    loud = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []
    # The log was captured: astream_events(version=...) says at INFO that it ignores version.
    assert any(r.name == "langserve.client" for r in caplog.records)
