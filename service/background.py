"""Run an ASGI app under uvicorn on a loopback port in a background thread.

``chainserve dev`` runs the emulator this way beside the service, and tests run servers this
way to talk real HTTP to them.
"""

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from service.server import HttpLimits, limits_of, uvicorn_config


class BackgroundServer:
    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        http_limits: HttpLimits | None = None,
        **config: Any,
    ) -> None:
        """``http_limits`` (service/server.py): default a chainserve app's own, none for others."""
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config.setdefault("log_level", "warning")
        limits = http_limits or limits_of(app)
        self._server = uvicorn.Server(uvicorn_config(app, limits, **config))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30) -> Self:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
