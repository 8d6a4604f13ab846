"""The emulator as a running server: in a background thread, or in the foreground (CLI).

It runs under hypercorn, which serves HTTP/1.1 (botocore, boto3, langchain-aws) and HTTP/2
cleartext with prior knowledge (the AWS SDK for JavaScript v3, whose Bedrock Runtime client
speaks HTTP/2 only) on the same port: an HTTP/2 connection is told apart by its preface.
"""

import asyncio
import socket
import threading
from types import TracebackType
from typing import Any, Self, cast

import hypercorn.protocol
from h2.errors import ErrorCodes
from hypercorn.asyncio import serve
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.typing import ASGIFramework
from hypercorn.utils import wrap_app
from hyperframe.frame import GoAwayFrame

from service.emulator.app import create_emulator_app
from service.emulator.state import EmulatorState, Fault, Pace

_ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s'


class _H2Protocol(H2Protocol):
    """hypercorn's HTTP/2, outliving a client's graceful GOAWAY.

    The JavaScript SDK's Bedrock Runtime client closes its session (a GOAWAY with NO_ERROR) as
    soon as a response's headers arrive, and reads the event stream after. By RFC 9113 §6.8
    that only means no new streams; but h2 closes the connection on any GOAWAY
    (python-hyper/h2#1181), and hypercorn then drops it: every stream would end, silently, at
    its headers. While the client's streams are open, such a GOAWAY is ignored here; the client
    closes the connection itself once they end.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        connection = self.connection
        receive_goaway = connection._frame_dispatch_table[GoAwayFrame]

        def graceful_goaway(frame: GoAwayFrame) -> Any:
            if frame.error_code == ErrorCodes.NO_ERROR and connection.open_inbound_streams:
                return [], []
            return receive_goaway(frame)

        connection._frame_dispatch_table[GoAwayFrame] = graceful_goaway


# hypercorn's protocol switch (h11 → h2) takes its HTTP/2 protocol from here; only the
# emulator runs under hypercorn.
hypercorn.protocol.H2Protocol = _H2Protocol  # type: ignore[attr-defined]


def _config(log_level: str, **config: Any) -> Config:
    settings: dict[str, Any] = {
        "loglevel": log_level.upper(),
        # `info` logs every call, as uvicorn did; otherwise only problems.
        "accesslog": "-" if log_level in ("debug", "info") else None,
        "access_log_format": _ACCESS_LOG_FORMAT,
        "include_server_header": False,
        # A connection is never closed for its number of requests (botocore pools them).
        "keep_alive_max_requests": 2**31,
        # Stopping does not wait long for streams still running (a stalled one, say).
        "graceful_timeout": 1.0,
        **config,
    }
    return Config.from_mapping(settings)


class Emulator:
    """The emulator on a loopback port in this process: ``with Emulator() as bedrock: ...``.

    ``bedrock.url`` is the ``endpoint_url`` for boto3 / ``CHAINSERVE_BEDROCK_ENDPOINT_URL``;
    ``bedrock.state`` shows every call and takes pacing and faults. ``config``: hypercorn
    settings (``log_level`` too, default ``warning``).
    """

    def __init__(
        self,
        pace: Pace | None = None,
        faults: list[Fault] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **config: Any,
    ) -> None:
        self.state = EmulatorState(pace=pace or Pace(), faults=list(faults or []))
        # Starlette's ASGI types and hypercorn's differ in spelling only.
        self.app = cast(ASGIFramework, create_emulator_app(self.state))
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._socket.listen(1024)
        self._socket.setblocking(False)
        self.host, self.port = self._socket.getsockname()[:2]
        self._config = _config(config.pop("log_level", "warning"), **config)
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bedrock-emulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        async def main() -> None:
            self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()

            async def until_stopped() -> None:
                # hypercorn awaits this once it accepts connections: the server is up.
                self._started.set()
                assert self._stopping is not None
                await self._stopping.wait()

            sockets = Sockets(secure_sockets=[], insecure_sockets=[self._socket], quic_sockets=[])
            await worker_serve(
                wrap_app(self.app, self._config.wsgi_max_body_size, "asgi"),
                self._config,
                sockets=sockets,
                shutdown_trigger=until_stopped,
            )

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._started.set()

    def start(self, timeout: float = 30) -> Self:
        self._thread.start()
        if not self._started.wait(timeout) or self._error is not None:
            raise RuntimeError(f"the emulator on {self.url} did not start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run(host: str, port: int, pace: Pace, faults: list[Fault], log_level: str = "info") -> None:
    """Serve the emulator in the foreground until interrupted (SIGINT, SIGTERM)."""
    app = cast(ASGIFramework, create_emulator_app(EmulatorState(pace=pace, faults=faults)))
    config = _config(log_level, bind=[f"{host}:{port}"])
    asyncio.run(serve(app, config, mode="asgi"))
