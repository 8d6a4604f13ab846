"""The processes of a run: where each runs (which CPU) and what /proc says about it.

Two cores are shared this way: the server under test gets one core to itself; the emulator,
the load client and this orchestrator share the other. So a server's figures are its own,
and the load side's limit is measured too (the ``emulator-direct`` target, and the load
side's CPU share at every step). On a one-core machine everything shares that core.
"""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

REPO = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS = {_CPUS[-1]}
LOAD_CPUS = {_CPUS[0]} if len(_CPUS) > 1 else set(_CPUS)

# botocore signs with these; nothing reaches AWS (every call goes to the emulator).
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "PYTHONPATH": str(REPO),
}


def cpu_layout() -> dict[str, Any]:
    return {
        "cpus": len(_CPUS),
        "server": sorted(SERVER_CPUS),
        "emulator_and_load": sorted(LOAD_CPUS),
    }


def pin_self_to_load_cpus() -> None:
    os.sched_setaffinity(0, LOAD_CPUS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A child process pinned to ``cpus``; its stderr goes to a file shown if it fails, and so
    does its stdout unless ``capture`` (a load client's JSON): a server's stdout (EMF records,
    access lines) must never fill an unread pipe and stall it."""

    def __init__(
        self, command: Sequence[str], cpus: set[int], env: dict[str, str], capture: bool = False
    ) -> None:
        self.command = list(command)
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            self.command,
            cwd=REPO,
            env={**os.environ, **BASE_ENV, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if capture else self._log,
            stderr=self._log,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (all threads)."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def rss_mb(self, field: str = "VmRSS") -> float:
        """Resident memory now (``VmRSS``) or at its peak so far (``VmHWM``), in MiB."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} for pid {self.pid}")

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def failure(self, what: str) -> RuntimeError:
        self._log.seek(0)
        tail = self._log.read().decode(errors="replace")[-3000:]
        return RuntimeError(f"{what}: {' '.join(self.command)}\n{tail}")

    def communicate(self, payload: bytes = b"", timeout: float | None = None) -> bytes:
        out, _ = self.popen.communicate(payload, timeout=timeout)
        if self.popen.returncode:
            raise self.failure(f"exit {self.popen.returncode}")
        return out

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def wait_ready(process: Process, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise process.failure("exited before it was ready")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.02)
    raise process.failure(f"not ready after {timeout} s")


class Emulator:
    """The Bedrock emulator in its own process on the load CPU; pace set per figure."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process(
            [sys.executable, "-m", "service", "emulator", "--port", str(self.port),
             "--log-level", "warning"],
            LOAD_CPUS,
            {},
        )  # fmt: skip
        wait_ready(self.process, f"{self.url}/_emulator/state")

    def pace(
        self, ttft_ms: float = 0, tokens_per_second: float = 0, reply_tokens: int = 20
    ) -> None:
        """Set the pace of every reply from now on and forget past calls."""
        httpx.post(f"{self.url}/_emulator/reset").raise_for_status()
        pace = {"ttft_ms": ttft_ms, "tokens_per_second": tokens_per_second}
        httpx.put(
            f"{self.url}/_emulator/pace", json={**pace, "reply_tokens": reply_tokens}
        ).raise_for_status()

    def forget_calls(self) -> None:
        pace = httpx.get(f"{self.url}/_emulator/state").json()["pace"]
        httpx.post(f"{self.url}/_emulator/reset").raise_for_status()
        httpx.put(f"{self.url}/_emulator/pace", json=pace).raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = httpx.get(f"{self.url}/_emulator/state", timeout=30).json()[
            "calls"
        ]
        return calls

    def stop(self) -> None:
        self.process.stop()


def server_env(emulator: Emulator) -> dict[str, str]:
    """The environment of a server under test: Bedrock is the emulator; quiet logs."""
    return {"CHAINSERVE_BEDROCK_ENDPOINT_URL": emulator.url, "CHAINSERVE_LOG_LEVEL": "warning"}


@contextlib.contextmanager
def server(contender: Any, emulator: Emulator) -> Iterator[tuple[Process, str]]:
    """A contender's server process, ready, on the server CPU: ``(process, base_url)``."""
    port = free_port()
    process = Process(
        contender.command(port),
        SERVER_CPUS,
        server_env(emulator),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base + contender.ready_path)
        yield process, base
    finally:
        process.stop()
