"""Server CPU per streamed chunk: 2,000-chunk replies from the emulator at full speed.

The server's own CPU time (user + system, all threads, from /proc) over each round of
streams, divided by the chunks it streamed. The botocore floor measures its own process.
"""

import time
from typing import Any

import httpx

from bench.procs import server
from bench.rig import Rig, read_stream
from bench.stats import spread


def measure(rig: Rig) -> dict[str, Any]:
    sizes = rig.sizes
    rig.emulator.pace(reply_tokens=sizes.cpu_chunks)
    results: dict[str, Any] = {}
    for contender in rig.contenders:
        per_round = []
        with (
            server(contender, rig.emulator) as (process, base),
            httpx.Client(timeout=120) as client,
        ):
            read_stream(client, contender, base)  # warm-up: first-request imports and caches
            for _ in range(sizes.cpu_rounds):
                before = process.cpu_seconds()
                for _ in range(sizes.cpu_streams):
                    _, tokens = read_stream(client, contender, base)
                    if tokens != sizes.cpu_chunks:
                        raise RuntimeError(f"{contender.name}: {tokens} of {sizes.cpu_chunks}")
                time.sleep(0.05)  # the server's bookkeeping after the last byte counts too
                chunks = sizes.cpu_chunks * sizes.cpu_streams
                per_round.append((process.cpu_seconds() - before) / chunks * 1e6)
        results[contender.name] = {"us_per_chunk": spread(per_round), "rounds": per_round}
    floor = rig.botocore_floor("cpu", rounds=sizes.cpu_rounds, streams=sizes.cpu_streams)
    rounds = [seconds * 1e6 for seconds in floor["cpu_per_event"]]
    results["botocore-floor"] = {"us_per_chunk": spread(rounds), "rounds": rounds}
    return results
