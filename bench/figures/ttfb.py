"""Time to first byte added over the emulator's time to first token (p50, p99).

Per request: the client's time from sending to the first token's bytes, minus the emulator's
time from receiving the call to sending its first token (both from the same requests, each
measured on its own clock). What remains is what the server adds on the way in (parse,
validate, render, sign, connect) and on the way out (decode, encode, write). The botocore
floor shows the part any Python client of Bedrock pays (signing, decoding, loopback HTTP).
"""

from typing import Any

import httpx

from bench.procs import server
from bench.rig import Rig, read_stream
from bench.stats import distribution

_WARMUP = 5


def _emulator_ttft(rig: Rig, count: int) -> list[float]:
    calls = rig.emulator.calls()[-count:]
    return [call["first_token"] - call["started"] for call in calls]


def _summary(client_s: list[float], emulator_s: list[float]) -> dict[str, Any]:
    added_ms = [(c - e) * 1000 for c, e in zip(client_s, emulator_s, strict=True)]
    return {
        "added_ms": distribution(added_ms),
        "client_ttfb_ms": distribution([c * 1000 for c in client_s]),
        "emulator_ttft_ms": distribution([e * 1000 for e in emulator_s]),
    }


def measure(rig: Rig) -> dict[str, Any]:
    count = rig.sizes.ttfb_requests
    # Paced as a model streams (50 tokens/s), not a burst: in a burst, the worker that has
    # the first token goes on decoding the next ones before the loop can write it.
    rig.emulator.pace(ttft_ms=rig.sizes.ttfb_ttft_ms, tokens_per_second=50, reply_tokens=5)
    results: dict[str, Any] = {}
    for contender in rig.contenders:
        with server(contender, rig.emulator) as (_, base), httpx.Client(timeout=60) as client:
            for _ in range(_WARMUP):
                read_stream(client, contender, base)
            rig.emulator.forget_calls()
            client_s = [read_stream(client, contender, base)[0] for _ in range(count)]
        results[contender.name] = _summary(client_s, _emulator_ttft(rig, count))
    rig.emulator.forget_calls()
    client_s = rig.botocore_floor("ttfb", requests=count, warmup=_WARMUP)["first_token"]
    results["botocore-floor"] = _summary(client_s, _emulator_ttft(rig, count))
    return results
