"""`chainserve serve` as a real child process, for tests of what is set once per process
(logging, LangSmith's client) and of what only a process's own output and exit show."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent


class ServeProcess:
    """A `chainserve serve` process and what it wrote (stdout and stderr, in ``output``)."""

    def __init__(self, url: str, popen: subprocess.Popen[bytes], output: Path) -> None:
        self.url, self.popen, self.output = url, popen, output

    def text(self) -> str:
        return self.output.read_text()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


P = TypeVar("P", bound=ServeProcess)


@contextlib.contextmanager
def launcher(
    temp: pytest.TempPathFactory, kind: type[P], drop: tuple[str, ...], **base: str
) -> Iterator[Callable[..., P]]:
    """``launch(**env)`` starts a `chainserve serve` process (a ``kind``) in this process's
    environment without the variables starting with ``drop``, plus ``base`` and ``env``; every
    process launched is stopped when the block ends."""
    started: list[P] = []

    def launch(**env: str) -> P:
        output = temp.mktemp("serve") / "output.log"
        process = kind(*serve(environment(drop, **base, **env), output), output)
        started.append(process)
        return process

    try:
        yield launch
    finally:
        for process in started:
            process.stop()


def environment(drop: tuple[str, ...], **settings: str) -> dict[str, str]:
    """This process's environment without the variables starting with ``drop``, plus these."""
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | settings


def serve(environ: dict[str, str], output: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `chainserve serve` on a free loopback port and wait until it answers ``/healthz``:
    its base URL and process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with output.open("wb") as sink:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            cwd=REPO,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return url, popen
        except httpx.TransportError:
            pass
        assert popen.poll() is None, output.read_text()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
