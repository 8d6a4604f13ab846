"""Streaming over real HTTP: incremental delivery, both wire formats, EventSource, disconnects."""

import asyncio
import contextvars
import gc
import threading
import time
import weakref
from collections.abc import Callable

import httpx
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Call, Pace
from service.runs.errors import ApiError
from service.runs.stream import Workers
from tests.helpers import parse_sse, wait_for

BODY = {"input": {"text": "Streams are fun."}}


def text_of(response: httpx.Response) -> str:
    return "".join(data for name, data in parse_sse(response.text) if name == "data")


def test_text_arrives_while_the_model_is_still_generating(
    client: httpx.Client, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(tokens_per_second=40, reply_tokens=40)  # about a second
    pieces: list[str] = []
    with client.stream("POST", "/chains/summarize/stream", json=BODY) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "content-length" not in response.headers
        assert "content-encoding" not in response.headers
        for piece in response.iter_text():
            if not pieces:
                [call] = bedrock.state.calls
                assert call.status == "running"
                assert call.tokens_sent < call.tokens_planned
            pieces.append(piece)
    [call] = bedrock.state.calls
    assert call.status == "completed"
    assert len("".join(pieces).split()) == 40
    assert len(pieces) > 10  # written as the tokens came, not at the end


def test_text_matches_invoke(client: httpx.Client) -> None:
    streamed = client.post("/chains/summarize/stream", json=BODY).text
    invoked = client.post("/chains/summarize/invoke", json=BODY).json()["output"]
    assert streamed == invoked


def test_sse_format(client: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(reply_tokens=12)
    response = client.post(
        "/chains/summarize/stream", json=BODY, headers={"Accept": "text/event-stream"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.text.startswith('event: metadata\ndata: {"run_id": ')
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    # What the run cost comes in a second metadata event (RemoteRunnable ignores metadata).
    assert names == ["metadata"] + ["data"] * 12 + ["metadata", "end"]
    assert events[0][1] == {"run_id": response.headers["x-run-id"]}
    assert len("".join(data for name, data in events if name == "data").split()) == 12
    metadata = events[-2][1]
    assert set(metadata) == {"run_id", "model", "usage", "latency_ms", "stop_reason"}
    assert metadata["run_id"] == response.headers["x-run-id"]
    usage = metadata["usage"]
    assert usage["output_tokens"] == 12
    assert usage["total_tokens"] == usage["input_tokens"] + 12
    assert metadata["latency_ms"] >= 0
    assert metadata["stop_reason"] == "end_turn"


def test_sse_says_when_max_tokens_cut_the_reply(client: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(reply_tokens=500)  # summarize allows 400
    response = client.post(
        "/chains/summarize/stream", json=BODY, headers={"Accept": "text/event-stream"}
    )
    name, metadata = parse_sse(response.text)[-2]
    assert name == "metadata"
    assert metadata["usage"]["output_tokens"] == 400 and metadata["stop_reason"] == "max_tokens"


def test_a_text_stream_cut_by_max_tokens_says_so_in_its_run_log_line(
    client: httpx.Client, bedrock: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="chainserve")
    bedrock.state.pace = Pace(reply_tokens=500)  # summarize allows 400
    response = client.post("/chains/summarize/stream", json=BODY)
    assert response.status_code == 200 and "[error]" not in response.text  # a complete stream
    run_id = response.headers["x-run-id"]
    wait_for(lambda: any(run_id in r.getMessage() for r in caplog.records))
    [line] = [r.getMessage() for r in caplog.records if run_id in r.getMessage()]
    assert line.startswith("stream chain=summarize ") and line.endswith("stop_reason=max_tokens")


def test_sse_for_eventsource_via_get(client: httpx.Client) -> None:
    response = client.get("/chains/translate/stream", params={"text": "Hi", "language": "German"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    text = "".join(data for name, data in events if name == "data")
    assert "Translate into German." in text and text.endswith("user: Hi")
    assert events[-1] == ("end", None)


def test_get_converts_query_types_and_reports_bad_ones(client: httpx.Client) -> None:
    ok = client.get("/chains/summarize/stream", params={"text": "Hi", "sentences": "2"})
    assert "in 2 sentences" in text_of(ok)
    bad = client.get("/chains/summarize/stream", params={"text": "Hi", "sentences": "two"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "input.sentences"
    history = client.get(
        "/chains/chat/stream",
        params={
            "question": "and?",
            "history": '[{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}]',
        },
    )
    assert "user: first\nassistant: ok\nuser: and?" in text_of(history)


def test_client_disconnect_stops_the_model_stream(
    server: BackgroundServer, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=200)  # 10 s if left to run
    received = 0
    with httpx.Client(base_url=server.url) as http:  # noqa: SIM117
        with http.stream("POST", "/chains/summarize/stream", json=BODY) as response:
            for piece in response.iter_text():
                received += len(piece.split())
                if received >= 3:
                    break  # leaving the block closes the connection
    [call] = bedrock.state.calls
    wait_for(lambda: call.status != "running", timeout=5)
    assert call.status == "disconnected"
    # The server stops within one chunk of noticing: a few tokens in flight, never the rest.
    assert call.tokens_sent <= received + 3, (call.tokens_sent, received)
    assert call.tokens_planned == 200


def test_empty_chunks_are_not_sent(client: httpx.Client) -> None:
    """ChatBedrockConverse yields an empty chunk for messageStart: no empty data event."""
    headers = {"Accept": "text/event-stream"}
    response = client.post("/chains/summarize/stream", json=BODY, headers=headers)
    assert all(data for name, data in parse_sse(response.text) if name == "data")


@pytest.mark.parametrize(
    ("accept", "sse"),
    [
        ("text/event-stream", True),
        ("text/plain, text/event-stream;q=0.5", True),
        ("text/event-stream;q=0, text/plain", False),
        ("*/*", False),
        ("application/json", False),
    ],
)
def test_accept_negotiation(client: httpx.Client, accept: str, sse: bool) -> None:
    response = client.post("/chains/summarize/stream", json=BODY, headers={"Accept": accept})
    assert response.headers["content-type"].startswith("text/event-stream") is sse


@pytest.mark.parametrize(
    ("accept", "sse"),
    [("*/*", True), ("", True), ("text/plain", False), ("text/event-stream;q=0", False)],
)
def test_langserve_bodies_get_sse_unless_they_ask_for_text(
    client: httpx.Client, accept: str, sse: bool
) -> None:
    """LangServe's /stream was SSE only; its clients' bodies name kwargs (LangChain.js's
    RemoteRunnable sends Accept: */*), so they get SSE unless they ask for text."""
    body = {**BODY, "config": {}, "kwargs": {}}
    response = client.post("/chains/summarize/stream", json=body, headers={"Accept": accept})
    assert response.headers["content-type"].startswith("text/event-stream") is sse


def test_a_stalled_reader_stalls_the_model_stream(
    server: BackgroundServer, bedrock: Emulator
) -> None:
    """Backpressure: chunks are not read from Bedrock faster than the client takes them."""
    tokens = 20_000  # a fifth of them 50 kB: far more than the socket buffers on the way hold
    bedrock.state.pace = Pace(reply_tokens=tokens)
    body = {"input": {"text": "x" * 50_000}}
    with httpx.Client(base_url=server.url) as http:  # noqa: SIM117
        with http.stream("POST", "/chains/long/stream", json=body) as response:
            pieces = response.iter_raw()  # kept: dropping it would make httpx read the rest
            next(pieces)
            [call] = bedrock.state.calls
            wait_for(lambda: _still(call), timeout=10)  # the emulator had to stop sending
            assert call.status == "running"
            assert call.tokens_sent < tokens
    wait_for(lambda: call.status != "running")
    assert call.status == "disconnected"


def _still(call: Call) -> bool:
    before = call.tokens_sent
    time.sleep(0.3)
    return call.tokens_sent == before


def test_get_takes_number_enums_from_text(client: httpx.Client) -> None:
    response = client.get("/chains/long/stream", params={"text": "Hi", "take": "2"})
    assert response.status_code == 200 and "(take 2)" in text_of(response)
    response = client.get("/chains/long/stream", params={"text": "Hi", "take": "4"})
    assert response.status_code == 422 and "input.take" in response.text


def test_deeply_nested_query_json_is_422(client: httpx.Client) -> None:
    params = {"question": "q", "history": "[" * 5000}
    response = client.get("/chains/chat/stream", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "input.history"


# -- Workers: the threads runs execute on ------------------------------------------------------

_marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


def test_a_finished_runs_thread_takes_the_next_run_in_a_fresh_context() -> None:
    def first() -> tuple[int, str]:
        _marker.set("left by the first run")
        return threading.get_ident(), _marker.get()

    def second() -> tuple[int, str]:
        return threading.get_ident(), _marker.get()

    async def main() -> tuple[tuple[int, str], tuple[int, str], int]:
        workers = Workers(max_workers=4, retry_after=1)
        one = await workers.run(first)
        await wait_async(lambda: workers.threads == 1)
        two = await workers.run(second)
        return one, two, workers.active

    (thread_one, seen_one), (thread_two, seen_two), active = asyncio.run(main())
    assert thread_one == thread_two  # no new thread per run
    assert (seen_one, seen_two) == ("left by the first run", "unset")
    assert active == 0


def test_idle_threads_exit_and_the_cap_still_holds() -> None:
    release = threading.Event()

    async def main() -> None:
        workers = Workers(max_workers=2, retry_after=1, idle_seconds=0.1)
        running = [workers.run(release.wait), workers.run(release.wait)]
        with pytest.raises(ApiError) as busy:
            workers.run(release.wait)
        assert busy.value.status == 503
        release.set()
        await asyncio.gather(*running)
        await wait_async(lambda: workers.threads == 2)
        await wait_async(lambda: workers.threads == 0)  # after idle_seconds

    before = {t for t in threading.enumerate() if t.name == "chain"}
    asyncio.run(main())
    time.sleep(0.1)
    assert {t for t in threading.enumerate() if t.name == "chain"} <= before


def test_a_waiting_thread_keeps_nothing_of_its_last_run() -> None:
    class Run:
        def __call__(self) -> str:
            return "done"

    async def main() -> weakref.ref[Run]:
        workers = Workers(max_workers=1, retry_after=1)
        run = Run()
        assert await workers.run(run) == "done"
        await wait_async(lambda: workers.threads == 1)
        return weakref.ref(run)

    finished = asyncio.run(main())
    gc.collect()
    assert finished() is None


async def wait_async(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
