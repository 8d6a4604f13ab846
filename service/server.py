"""uvicorn with limits on how a request is received: the one place chainserve's servers are made.

uvicorn's httptools protocol accepts request heads of any size, waits forever for a head or a body
that never completes, keeps a connection that never sends a request, and answers HTTP/1.0 with
chunked coding. ``HttpLimitsProtocol`` (a subclass of uvicorn's ``HttpToolsProtocol``) fixes that
on the request side only:

- the request head (request line and header fields) is fed to the parser only up to
  ``max_header_bytes``; a head still incomplete there gets 431 and the connection is closed;
- a head must be complete within ``header_timeout`` of its first bytes, and a body within
  ``body_timeout`` of the end of its head, else 408 and close (the app, if it is waiting for the
  body, sees a disconnect);
- a connection that sends nothing is closed after ``keep_alive_timeout``, as between requests;
- a response to HTTP/1.0 without Content-Length is delimited by closing the connection.

Once a request is received, no timer runs: responses (long streams) are never cut. The response
path of HTTP/1.1 is uvicorn's own, untouched, so streaming costs nothing more per chunk.
``chainserve serve`` and ``BackgroundServer`` both get their ``uvicorn.Config`` from here.
"""

import json
import sys
import uuid
from asyncio import TimerHandle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import uvicorn
from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

if TYPE_CHECKING:
    from service.settings import Settings

LINGER_SECONDS = 2.0
"""After a 408 or 431, how long to read and discard what the client still sends before closing:
closing with unread input would reset the connection, and the client could lose the answer."""


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 65_536
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: "Settings") -> "HttpLimits":
        return cls(
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
        )


def limits_of(app: Any) -> HttpLimits | None:
    """A chainserve app's limits (from its settings); None for any other app."""
    from service.settings import Settings

    settings = getattr(getattr(app, "state", None), "settings", None)
    return HttpLimits.from_settings(settings) if isinstance(settings, Settings) else None


def uvicorn_config(app: Any, limits: HttpLimits | None, **options: Any) -> uvicorn.Config:
    """uvicorn's Config for ``app``; with ``limits``, its HTTP/1.x protocol enforces them."""
    if limits is not None:
        options["http"] = type("HttpLimitsProtocol", (HttpLimitsProtocol,), {"limits": limits})
        options["timeout_keep_alive"] = limits.keep_alive_timeout
    settings = getattr(getattr(app, "state", None), "settings", None)
    if getattr(settings, "log_format", None) == "json":  # uvicorn's own lines as JSON too
        from service.observability.logs import uvicorn_log_config

        options.setdefault("log_config", uvicorn_log_config())
    return uvicorn.Config(app, **options)


class HttpLimitsProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits] = HttpLimits()

    # Per connection: reading a request head (True) or its body (False); the head's bytes so far;
    # the header or body timer; whether the connection was refused (408/431) and is closing.
    _reading_head = True
    _head_bytes = 0
    _timer: TimerHandle | None = None
    _refused = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after a response: a connection that never sends
        # a request would stay open for ever.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # lingering before the close: discard
            return
        limit = self.limits.max_header_bytes
        # A head is fed only up to the limit; whatever follows once it is complete (body, the next
        # pipelined request) is checked the same way.
        while self._reading_head and len(data) > limit - self._head_bytes:
            room = limit - self._head_bytes
            self._head_bytes = limit  # (on_message_complete resets it for the next request)
            if room > 0:
                super().data_received(data[:room])
                data = data[room:]
            if self.transport.is_closing():  # the parser refused it (400)
                return
            if self._reading_head and self._head_bytes == limit:  # this head is over the limit
                self._refuse(431, "header_too_large", f"request head over {limit} bytes")
                return
        if self._reading_head:
            self._head_bytes += len(data)
        if data:
            super().data_received(data)
        if self._timer is None and not self._refused and not self.transport.is_closing():
            if not self._reading_head:
                self._arm(self.limits.body_timeout, "request body")
            elif self._head_bytes:
                self._arm(self.limits.header_timeout, "request head")

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0
        self._cancel_timer()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if cycle.scope["http_version"] != "1.1":
            cycle.__class__ = Http10Cycle  # before the app runs: it changes only how it responds
        super()._start_asgi_task(cycle, app)

    def _arm(self, seconds: float, what: str) -> None:
        self._timer = self.loop.call_later(seconds, self._timed_out, what, seconds)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, what: str, seconds: float) -> None:
        self._timer = None
        # (after an upgrade, another protocol owns the transport)
        if not self.transport.is_closing() and self.transport.get_protocol() is self:
            self._refuse(408, "request_timeout", f"{what} not received within {seconds:g} s")

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` to the request being received, unless it has an answer, and close."""
        self._refused = True
        self._cancel_timer()
        self._unset_keepalive_if_required()
        self.logger.warning("%s - %d %s", self.client, status, message)
        cycle = self.cycle
        if self._reading_head and cycle is not None and not cycle.response_complete:
            # The previous request's response is under way: let it end, then close.
            cycle.keep_alive = False
            self.flow.pause_reading()
            return
        if self.pipeline:  # a body timed out behind a pipelined response: nothing to answer on
            self.transport.close()
            return
        answered = False
        if not self._reading_head:  # the app may be waiting for this body: it sees a disconnect
            answered = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
        if not answered:
            self._write_error(status, code, message)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _write_error(self, status: int, code: str, message: str) -> None:
        request_id = uuid.uuid4().hex
        body = json.dumps(
            {"status_code": status, "code": code, "message": message, "request_id": request_id}
        ).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _PHRASES[status])]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-request-id: " + request_id.encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join([*head, body]))


_PHRASES = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class Http10Cycle(RequestResponseCycle):
    """The request/response cycle of an HTTP/1.0 request, which knows no chunked coding.

    uvicorn frames a response without Content-Length in chunks whatever the request's version; here
    such a response is sent as it comes and ends by closing the connection (HTTP/1.0 never keeps it
    open in uvicorn). Responses with Content-Length go out as uvicorn sends them.
    """

    _close_delimited = False

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            headers = [
                (name, value)
                for name, value in message.get("headers", [])
                if name.lower() != b"transfer-encoding"
            ]
            if not any(name.lower() == b"content-length" for name, _ in headers):
                self._close_delimited = True
                self.chunked_encoding = False  # uvicorn: do not add Transfer-Encoding
                self.expected_content_length = sys.maxsize
            message = cast(ASGISendEvent, {**message, "headers": headers})
        elif (
            self._close_delimited
            and message["type"] == "http.response.body"
            and not message.get("more_body", False)
        ):  # the last part: uvicorn checks it against the length left, then closes
            self.expected_content_length = len(message.get("body", b""))
        await super().send(message)
