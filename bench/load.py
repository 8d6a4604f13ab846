"""The load client: many concurrent streams from one asyncio process (httpx), as JSON.

Run as its own process on the load CPU: ``python -m bench.load < job.json > result.json``.
A job is ``{"url", "body", "headers", "token_pattern", "tokens", "timeout_s"}`` plus either

- ``"streams": N, "stagger_s": S``: N concurrent streams started evenly over S seconds; the
  result has, per stream, the seconds to its first token, the arrival time of every read after
  it, the tokens counted, and an error (HTTP status, transport error, in-band error, a short
  stream, or unfinished by the deadline) if any;
- ``"requests": N, "concurrency": C``: N streams, C at a time; the result counts outcomes.

Arrivals are network reads, not tokens: tokens that arrive together are one arrival, so a
server that holds tokens back shows a longer gap.
"""

import asyncio
import json
import re
import resource
import ssl
import sys
import time
from collections import Counter
from typing import Any

import httpx

_IN_BAND_ERRORS = (b"event: error", b"[error] ")


async def one_stream(client: httpx.AsyncClient, job: dict[str, Any]) -> dict[str, Any]:
    token = re.compile(job["token_pattern"].encode())
    result: dict[str, Any] = {"first": None, "arrivals": [], "tokens": 0, "error": None}
    body = bytearray()
    sent = time.perf_counter()
    try:
        async with client.stream(
            "POST", job["url"], json=job["body"], headers=job["headers"]
        ) as response:
            if response.status_code != 200:
                await response.aread()
                result["error"] = f"HTTP {response.status_code}"
                return result
            async for piece in response.aiter_raw():
                now = time.perf_counter() - sent
                body += piece
                if result["first"] is not None:
                    result["arrivals"].append(now)
                elif token.search(body):
                    result["first"] = now
    except (httpx.HTTPError, OSError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        result["tokens"] = len(token.findall(body))
    if result["error"] is None:
        if any(error in body for error in _IN_BAND_ERRORS):
            result["error"] = "in-band error: " + bytes(body[-200:]).decode(errors="replace")
        elif result["tokens"] < job["tokens"]:
            result["error"] = f"short stream: {result['tokens']} of {job['tokens']} tokens"
    return result


async def _deadlined(
    job: dict[str, Any], client: httpx.AsyncClient, delay: float
) -> dict[str, Any]:
    await asyncio.sleep(delay)
    try:
        return await asyncio.wait_for(one_stream(client, job), job["timeout_s"])
    except TimeoutError:
        return {"first": None, "arrivals": [], "tokens": 0, "error": "unfinished by the deadline"}


_TLS = ssl.create_default_context()  # loaded once: every client would load the CA bundle again


def _client() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120, connect=30), verify=_TLS)


async def _own_client(job: dict[str, Any], delay: float) -> dict[str, Any]:
    # One client (one connection pool) per stream: httpx's pool does work in proportion to
    # its connections on every request and response, which at 1,000 streams stalled the
    # load client for seconds as streams ended.
    async with _client() as client:
        return await _deadlined(job, client, delay)


async def streams(job: dict[str, Any]) -> dict[str, Any]:
    count, stagger = job["streams"], job.get("stagger_s", 0.0)
    results = await asyncio.gather(*(_own_client(job, stagger * i / count) for i in range(count)))
    return {"streams": list(results)}


async def requests(job: dict[str, Any]) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    remaining = job["requests"]

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            outcome = await _deadlined(job, client, 0)
            outcomes[outcome["error"] or "ok"] += 1

    async with _client() as client:
        await asyncio.gather(*(worker(client) for _ in range(job["concurrency"])))
    return {"outcomes": dict(outcomes)}


def main() -> None:
    job = json.load(sys.stdin)
    started = time.perf_counter()
    result = asyncio.run(streams(job) if "streams" in job else requests(job))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["wall_s"] = time.perf_counter() - started
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
