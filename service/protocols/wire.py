"""The wire formats of a streamed run: one loop (:func:`encode`) over one run, and an
:class:`Encoder` per format. The formats of the native routes are here; each other protocol
module (``openai``, …) holds its own encoder beside its routes.

- text/plain (the default): the raw text, each chunk written as it arrives; a failure after
  the first chunk ends the body with a line ``[error] <status>: <message> (request_id: <id>)``.
- text/event-stream (``Accept: text/event-stream``, and ``GET .../stream``): LangServe's
  events — ``metadata`` ``{"run_id"}``, one ``data`` per JSON-encoded chunk, a second
  ``metadata`` with what the run cost (``run_id``, ``usage``, ``latency_ms``, ``stop_reason``),
  ``end``; on failure ``error`` with the JSON error body (``status_code``, ``code``, ``message``,
  ``request_id``), as a response before the first chunk would have had.

Chunks that arrived together are written together: one write, never held back for more.
"""

import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from service.runs.errors import ApiError
from service.runs.info import RunInfo
from service.runs.stream import ChainRun

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx and kin: do not buffer this response
}


class Encoder(Protocol):
    """A wire format: the bytes of a run's start, its chunks, its end, or its failure.

    One instance per response, so it may keep state (an id, whether a line is open).
    ``chunks`` gets every chunk that arrived since the last call, never an empty list.
    """

    media_type: str
    headers: Mapping[str, str]  # response headers the format adds

    def opening(self, info: RunInfo) -> bytes: ...

    def chunks(self, chunks: list[Any]) -> bytes: ...

    def closing(self, info: RunInfo) -> bytes: ...

    def error(self, error: ApiError, request_id: str) -> bytes: ...


class PlainText:
    media_type = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = {}

    def __init__(self) -> None:
        self._at_line_start = True

    def opening(self, info: RunInfo) -> bytes:
        return b""

    def chunks(self, chunks: list[str]) -> bytes:
        text = "".join(chunks)
        self._at_line_start = text.endswith("\n")
        return text.encode()

    def closing(self, info: RunInfo) -> bytes:
        return b""

    def error(self, error: ApiError, request_id: str) -> bytes:
        newline = "" if self._at_line_start else "\n"
        line = f"[error] {error.status}: {error.message} (request_id: {request_id})"
        return f"{newline}{line}\n".encode()


class ServerSentEvents:
    media_type = "text/event-stream; charset=utf-8"
    headers: Mapping[str, str] = {}

    def opening(self, info: RunInfo) -> bytes:
        return sse_event("metadata", {"run_id": info.run_id})

    def chunks(self, chunks: list[str]) -> bytes:
        return "".join(f"event: data\ndata: {json.dumps(chunk)}\n\n" for chunk in chunks).encode()

    def closing(self, info: RunInfo) -> bytes:
        # What the run cost goes in a second `metadata` event, the one event besides data,
        # error and end that RemoteRunnable's stream ignores silently (it logs an error for
        # any other). An empty data line: browsers' EventSource drops events with no data.
        return sse_event("metadata", info.summary()) + b"event: end\ndata: \n\n"

    def error(self, error: ApiError, request_id: str) -> bytes:
        return sse_event("error", error.body(request_id))


def negotiate(accept: str | None, langserve_client: bool = False) -> Encoder:
    """SSE when the client accepts ``text/event-stream`` (with q > 0); plain text otherwise —
    but for a LangServe client (its body names ``kwargs``) that names neither: LangServe's
    ``/stream`` was SSE only, and LangChain.js's RemoteRunnable sends ``Accept: */*``."""
    accepted = {}
    for item in (accept or "").split(","):
        media_type, *params = (part.strip() for part in item.split(";"))
        accepted[media_type] = "q=0" not in params and "q=0.0" not in params
    if accepted.get("text/event-stream"):
        return ServerSentEvents()
    if langserve_client and not {"text/plain", "text/event-stream"} & accepted.keys():
        return ServerSentEvents()
    return PlainText()


async def encode(
    run: ChainRun,
    first: list[str],
    wire: Encoder,
    describe: Callable[[BaseException], ApiError],
    request_id: str,
) -> AsyncIterator[bytes]:
    """The response body of a started run; ``describe`` maps (and logs) a mid-stream failure,
    which ends the body in-band under ``request_id``."""
    yield wire.opening(run.info) + (wire.chunks(first) if first else b"")
    try:
        async for chunks in run.rest():
            yield wire.chunks(chunks)
    except Exception as exc:
        yield wire.error(describe(exc), request_id)
        return
    yield wire.closing(run.info)


def sse_event(name: str, data: object) -> bytes:
    """One Server-Sent Event named ``name`` with ``data`` as JSON."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
