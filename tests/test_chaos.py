"""Chaos: a few hundred concurrent streams, random client disconnects, injected Bedrock faults.

A real ``chainserve serve`` process, the emulator over real HTTP, an asyncio load of httpx
clients. Nothing is timed; everything is bounded. Every request must end in exactly one of:
a complete stream, a clear error status with our JSON body, or a stream that ends in-band with
an error — never a 500, a silently truncated body or a hang. Afterwards no run is active, the
worker threads drain, and memory stops growing from round to round.
"""

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.helpers import parse_sse, wait_for
from tests.test_cli import free_port, running, wait_ready

CONCURRENCY = 250
PER_ROUND = 500
ROUNDS = 2
REPLY_TOKENS = 30
EXPECTED_STATUSES = {429, 502, 503, 504}  # what the injected faults map to
BEFORE_STREAM = ["throttle", "unavailable", "model_timeout", "not_ready"]
IN_STREAM = ["stream_error", "stream_throttle", "stream_corrupt", "stall"]


def _faults(rng: random.Random, count: int) -> list[Fault]:
    """One fault for about a third of the calls, in random order among them."""
    faults = []
    for _ in range(count // 3):
        kind = rng.choice(BEFORE_STREAM + IN_STREAM)
        faults.append(
            Fault(kind=kind, after_chunks=rng.randrange(REPLY_TOKENS), delay_ms=200)  # type: ignore[arg-type]
        )
    return faults


def _check_error_body(response: httpx.Response, body: bytes) -> str:
    assert response.status_code in EXPECTED_STATUSES, (response.status_code, body[:300])
    error = json.loads(body)
    assert error["status_code"] == response.status_code and error["message"]
    return f"status {response.status_code}"


def _check_text(text: str) -> str:
    if "\n[error] " in text or text.startswith("[error] "):
        line = text.rstrip("\n").rsplit("\n", 1)[-1]
        status = int(line.removeprefix("[error] ").split(":", 1)[0])
        assert status in EXPECTED_STATUSES, line
        return f"in-band {status}"
    assert len(text.split()) == REPLY_TOKENS, f"truncated text stream: {text[-200:]!r}"
    return "complete"


def _check_sse(text: str) -> str:
    events = parse_sse(text)
    names = [name for name, _ in events]
    assert names[0] == "metadata", names[:3]
    if names[-1] == "error":
        status = events[-1][1]["status_code"]
        assert status in EXPECTED_STATUSES, events[-1]
        return f"in-band {status}"
    assert names[-2:] == ["metadata", "end"], f"truncated event stream: {names[-5:]}"
    assert events[-2][1]["usage"]["output_tokens"] == REPLY_TOKENS
    assert names.count("data") == REPLY_TOKENS
    return "complete"


async def _one(client: httpx.AsyncClient, rng: random.Random) -> str:
    """One request of a random kind; a random 40 % of streams are abandoned part-way."""
    kind = rng.choice(["text", "sse", "get", "invoke"])
    body = {"input": {"text": f"chaos {rng.random()}"}}
    if kind == "invoke":
        response = await client.post("/chains/long/invoke", json=body)
        if response.status_code != 200:
            return _check_error_body(response, response.content)
        assert len(response.json()["output"].split()) == REPLY_TOKENS
        return "complete"
    if kind == "get":
        request = client.build_request("GET", "/chains/long/stream", params=body["input"])
    else:
        accept = "text/event-stream" if kind == "sse" else "text/plain"
        request = client.build_request(
            "POST", "/chains/long/stream", json=body, headers={"Accept": accept}
        )
    abandon_after = rng.randrange(1, 6) if rng.random() < 0.4 else None
    response = await client.send(request, stream=True)
    try:
        if response.status_code != 200:
            return _check_error_body(response, await response.aread())
        received = b""
        reads = 0
        async for piece in response.aiter_raw():
            received += piece
            reads += 1
            if abandon_after is not None and reads >= abandon_after:
                return "abandoned"
        text = received.decode()
        return (
            _check_sse(text)
            if "event-stream" in response.headers["content-type"]
            else (_check_text(text))
        )
    finally:
        await response.aclose()


async def _round(url: str, rng: random.Random) -> Counter[str]:
    # A pooled connection is dropped after 1 s idle, well before the server's 5 s keep-alive
    # timeout: reusing one the server is closing at that moment fails in any client.
    limits = httpx.Limits(
        max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY, keepalive_expiry=1
    )
    gate = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def guarded() -> str:
            async with gate:
                return await _one(client, rng)

        outcomes = await asyncio.gather(*(guarded() for _ in range(PER_ROUND)))
    return Counter(outcomes)


def _proc_status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "Threads"):
            fields[name] = int(value.split()[0])
    return fields


def test_chaos(chains_dir: Path, bedrock: Emulator) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    bedrock.state.pace = Pace(tokens_per_second=100, reply_tokens=REPLY_TOKENS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url,
        "CHAINSERVE_BEDROCK_MAX_ATTEMPTS": "1",  # a fault reaches the client, not a retry
        "CHAINSERVE_LOG_LEVEL": "error",
    }
    args = ["serve", "--port", str(port), "--chains", str(chains_dir)]
    with running(args, env) as process:
        wait_ready(f"{base}/healthz", process)
        threads_idle = _proc_status(process.pid)["Threads"]
        totals: Counter[str] = Counter()

        def rounds(count: int) -> None:
            for _ in range(count):
                bedrock.state.add_faults(_faults(rng, PER_ROUND))
                totals.update(asyncio.run(_round(base, rng)))
                wait_for(lambda: httpx.get(f"{base}/healthz").json()["runs_active"] == 0, 30)
                bedrock.state.reset()
                bedrock.state.pace = Pace(tokens_per_second=100, reply_tokens=REPLY_TOKENS)

        def settled() -> int:
            """RSS once idle: the worker threads gone (30 s without a run) and, in that
            time, the collector's full collection done (it waits for a moment with no run)."""
            wait_for(lambda: _proc_status(process.pid)["Threads"] <= threads_idle + 2, 90)
            return _proc_status(process.pid)["VmRSS"]

        rounds(ROUNDS)
        warm = settled()
        rounds(ROUNDS)
        again = settled()
        print(f"seed {seed}: {dict(totals)}; settled RSS {warm} kB, then {again} kB")
        assert sum(totals.values()) == 2 * ROUNDS * PER_ROUND
        assert totals["complete"] and totals["abandoned"] and len(totals) > 3, totals
        assert again - warm < 8 * 1024, (warm, again)  # the same load again: no growth
        assert process.poll() is None
    log: Any = "".join(process.lines)
    assert "Traceback" not in log, log[-3000:]
