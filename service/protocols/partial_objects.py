"""Server-Sent Events for a structured chain: each ``data`` event carries the object as it has
grown so far (LangChain's partial JSON parse of the text received), one event per change —
what ``RemoteRunnable.stream`` and a browser's ``EventSource`` show as it builds up.

A partial parse reads the whole text and each event sends the whole object, so parsing at every
chunk costs O(n²) in CPU (on the event loop) and bytes. Instead the text is parsed again only
once it has grown by an eighth since the last parse — so the texts parsed, and the objects sent,
add up to about nine times the reply: linear — or, for a slow stream, when a quarter second has
passed (at most four updates a second, so a long reply still visibly grows). Gating on
"structural" characters (``,`` ``:`` ``}`` ``"``) would not bound it: an array of numbers
has a comma in nearly every chunk. Past :data:`MAX_PARTIAL_CHARS` of text no partial objects
are sent; the whole object comes once, at the end. The end always sends the final object if
the last event was not of the whole text.

Only chains with ``output`` get this encoder (chosen where the routes choose theirs), so the
plain SSE encoder's per-chunk path is untouched.
"""

import time
from typing import Any

from langchain_core.utils.json import parse_partial_json

from service.chains.catalog import Chain
from service.protocols.wire import Encoder, ServerSentEvents, sse_event
from service.runs.info import RunInfo

MAX_PARTIAL_CHARS = 64 * 1024
_GROWTH = 8  # parse again once the text has grown by 1/_GROWTH of its length
_INTERVAL_S = 0.25  # … or once this long has passed since the last parse


class PartialObjects(ServerSentEvents):
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._parsed_length = 0
        self._parsed_at = time.monotonic()
        self._last: Any = None

    def chunks(self, chunks: list[str]) -> bytes:
        for chunk in chunks:
            self._parts.append(chunk)
            self._length += len(chunk)
        if self._length > MAX_PARTIAL_CHARS:  # only the final object, at the end
            return b""
        grown = self._length - self._parsed_length
        if grown < max(1, self._length // _GROWTH) and (
            grown == 0 or time.monotonic() - self._parsed_at < _INTERVAL_S
        ):
            return b""
        return self._event()

    def closing(self, info: RunInfo) -> bytes:
        final = self._event() if self._parsed_length < self._length else b""
        return final + super().closing(info)

    def _event(self) -> bytes:
        text = "".join(self._parts)
        self._parts = [text]
        self._parsed_length, self._parsed_at = len(text), time.monotonic()
        try:
            parsed = parse_partial_json(text)
            if parsed is None or parsed == self._last:
                return b""
            event = sse_event("data", parsed)
        # Not JSON at all, or nested too deeply to read: the end of the run says so (the
        # check's 502 error event).
        except (ValueError, RecursionError):
            return b""
        self._last = parsed
        return event


def for_chain(chain: Chain, encoder: Encoder) -> Encoder:
    """``encoder``, or for a structured chain's SSE, :class:`PartialObjects`."""
    if chain.spec.output is not None and type(encoder) is ServerSentEvents:
        return PartialObjects()
    return encoder
