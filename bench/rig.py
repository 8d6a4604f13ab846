"""What every figure shares: the emulator, the sizes of a run, the load client, one stream."""

import json
import re
import sys
import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx

from bench.contenders.catalog import Contender, Target
from bench.procs import LOAD_CPUS, SERVER_CPUS, Emulator, Process


@dataclass(frozen=True)
class Sizes:
    """How much each figure does. ``FULL`` is the issue's method; ``SMOKE`` only checks the
    benchmark still runs end to end (seconds, figures meaningless)."""

    cpu_chunks: int = 2000  # tokens per stream, emulator at full speed
    cpu_rounds: int = 5
    cpu_streams: int = 3  # per round
    ttfb_requests: int = 200
    ttfb_ttft_ms: float = 25
    ramp_levels: tuple[int, ...] = (5, 10, 25, 50, 100, 150, 200, 300, 400, 500, 600, 800, 1000)
    ramp_tokens: int = 100  # per stream, 20/s: 5 s
    ramp_stagger_s: float = 1.0
    ramp_repeats: int = 3
    slow_streams: int = 1000
    slow_tokens: int = 30  # 1/s: 30 s
    slow_stagger_s: float = 5.0
    cold_runs: int = 5
    memory_requests: int = 10_000
    memory_warmup: int = 200
    memory_concurrency: int = 8
    memory_tokens: int = 20


FULL = Sizes()
SMOKE = Sizes(
    cpu_chunks=200,
    cpu_rounds=2,
    cpu_streams=1,
    ttfb_requests=5,
    ramp_levels=(2, 4),
    ramp_tokens=6,
    ramp_stagger_s=0.1,
    ramp_repeats=1,
    slow_streams=20,
    slow_tokens=2,
    slow_stagger_s=0.2,
    cold_runs=1,
    memory_requests=100,
    memory_warmup=10,
    memory_concurrency=4,
)


@dataclass
class Rig:
    emulator: Emulator
    sizes: Sizes
    contenders: tuple[Contender, ...]

    def load(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run a :mod:`bench.load` job in its own process on the load CPU."""
        return _json_process(["bench.load"], LOAD_CPUS, json.dumps(job).encode())

    def botocore_floor(self, mode: str, **options: int) -> dict[str, Any]:
        """Run :mod:`bench.contenders.botocore_floor` on the server CPU, against the emulator."""
        args = ["bench.contenders.botocore_floor", mode, "--endpoint", self.emulator.url]
        for name, value in options.items():
            args += [f"--{name}", str(value)]
        return _json_process(args, SERVER_CPUS)


def _json_process(module_args: list[str], cpus: set[int], stdin: bytes = b"") -> dict[str, Any]:
    """``python -m <module_args>`` on ``cpus``; its standard output, parsed as JSON."""
    process = Process([sys.executable, "-m", *module_args], cpus, {}, capture=True)
    try:
        result: dict[str, Any] = json.loads(process.communicate(stdin))
    finally:
        process.stop()
    return result


def load_job(target: Target, base_url: str, tokens: int, **extra: Any) -> dict[str, Any]:
    if target.text_pattern is not None:
        raise ValueError(f"{target.name}: measured by the cpu, ttfb and cold_start figures only")
    return {
        "url": base_url + target.stream_path,
        "body": target.body,
        "headers": target.headers,
        "token_pattern": target.token_pattern.decode(),
        "tokens": tokens,
        **extra,
    }


def read_stream(client: httpx.Client, target: Target, base_url: str) -> tuple[float, int]:
    """Stream once; return (seconds from sending to the first token's bytes, tokens)."""
    body = bytearray()
    first: float | None = None
    started = time.perf_counter()
    with client.stream(
        "POST", base_url + target.stream_path, json=target.body, headers=target.headers
    ) as response:
        response.raise_for_status()
        for piece in response.iter_raw():
            body += piece
            if first is None and count_tokens(target, body):
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"{target.name}: no token in {bytes(body[:300])!r}")
    return first, count_tokens(target, body)


def count_tokens(target: Target, body: bytes | bytearray) -> int:
    if target.text_pattern is None:
        return len(re.findall(target.token_pattern, body))
    texts = re.findall(target.text_pattern, body)
    return sum(len(json.loads(text).split()) for text in texts)


def gaps_beyond_pacing(streams: list[dict[str, Any]], interval_s: float) -> list[float]:
    """Seconds between a stream's successive arrivals (from its first token on), less the
    emulator's interval between chunks: over all streams of a load result."""
    gaps = []
    for stream in streams:
        if stream["first"] is not None:
            times = [stream["first"], *stream["arrivals"]]
            gaps += [later - earlier - interval_s for earlier, later in pairwise(times)]
    return gaps
