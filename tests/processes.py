"""`chainserve serve` as a real child process, for tests of what is set once per process
(logging, LangSmith's client) and of what only a process's own output and exit show."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


class ServeProcess:
    """A `chainserve serve` process and what it wrote (stdout and stderr, in ``output``)."""

    def __init__(self, url: str, popen: subprocess.Popen[bytes], output: Path) -> None:
        self.url, self.popen, self.output = url, popen, output

    def text(self) -> str:
        return self.output.read_text()


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
