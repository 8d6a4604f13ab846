"""Cold start: process start to the first byte of the first streamed token.

The clock starts just before the server process is spawned; the client sends its stream
request as soon as the port accepts connections (retrying every 5 ms until then) and stops
the clock at the first token's bytes. Contenders take turns, run after run, so machine noise
falls on all of them alike. RSS is read at that moment.
"""

import time
from typing import Any

import httpx

from bench.procs import SERVER_CPUS, Process, free_port, server_env
from bench.rig import Rig, read_stream
from bench.stats import spread


def _first_byte(rig: Rig, contender: Any) -> tuple[float, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = Process(contender.command(port), SERVER_CPUS, server_env(rig.emulator))
    try:
        with httpx.Client(timeout=60) as client:
            while True:
                if process.popen.poll() is not None:
                    raise process.failure("exited during start-up")
                sent = time.perf_counter()
                try:
                    first, _ = read_stream(client, contender, base)
                    break
                except httpx.ConnectError:
                    time.sleep(0.005)
        return sent + first - process.started, process.rss_mb()
    finally:
        process.stop()


def measure(rig: Rig) -> dict[str, Any]:
    rig.emulator.pace(reply_tokens=20)
    runs: dict[str, list[tuple[float, float]]] = {c.name: [] for c in rig.contenders}
    for _ in range(rig.sizes.cold_runs):
        for contender in rig.contenders:
            runs[contender.name].append(_first_byte(rig, contender))
    return {
        name: {
            "first_byte_s": spread([seconds for seconds, _ in values]),
            "rss_mb": spread([rss for _, rss in values]),
        }
        for name, values in runs.items()
    }
