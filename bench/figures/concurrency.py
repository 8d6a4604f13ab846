"""Throughput-bound concurrency: how many 20-chunk/s streams a server sustains.

Ramp: at each level, that many clients stream at once (started evenly over a second), each
fed 20 chunks/s by the emulator. A level holds if no stream fails and the p99 inter-chunk gap
beyond the emulator's 50 ms pacing is at most 50 ms; the ramp stops at the first level that
does not hold. The emulator-direct target (no server) shows the most the load side can drive;
each step records the CPU share of the server and of the load side (emulator + client), whose
core they share.
"""

from contextlib import nullcontext
from typing import Any

from bench.contenders.catalog import EMULATOR_DIRECT, Contender, Target
from bench.procs import Process, server
from bench.rig import Rig, gaps_beyond_pacing, load_job
from bench.stats import percentile, spread

PACE = 20  # chunks per second per stream
GAP_LIMIT_S = 0.050  # beyond the pacing, at p99


def _step(
    rig: Rig, target: Target, base: str, process: Process | None, level: int
) -> dict[str, Any]:
    sizes = rig.sizes
    rig.emulator.forget_calls()
    emulator_before = rig.emulator.process.cpu_seconds()
    server_before = process.cpu_seconds() if process else 0.0
    duration = sizes.ramp_tokens / PACE + sizes.ramp_stagger_s
    job = load_job(
        target, base, sizes.ramp_tokens,
        streams=level, stagger_s=sizes.ramp_stagger_s, timeout_s=duration + 30,
    )  # fmt: skip
    result = rig.load(job)
    wall = result["wall_s"]
    errors = [stream["error"] for stream in result["streams"] if stream["error"]]
    gaps = gaps_beyond_pacing(result["streams"], 1 / PACE)
    p99 = percentile(gaps, 99) if gaps else float("inf")
    load_cpu = rig.emulator.process.cpu_seconds() - emulator_before + result["client_cpu_s"]
    return {
        "streams": level,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "gap_beyond_pacing_ms": {"p50": percentile(gaps, 50) * 1000 if gaps else None,
                                 "p99": p99 * 1000},
        "holds": not errors and p99 <= GAP_LIMIT_S,
        "server_cpu_share": (process.cpu_seconds() - server_before) / wall if process else None,
        "load_cpu_share": load_cpu / wall,
    }  # fmt: skip


def _ramp(
    rig: Rig, target: Target, base: str, process: Process | None, start: int
) -> dict[str, Any]:
    steps = []
    sustained = 0
    for level in rig.sizes.ramp_levels[start:]:
        step = _step(rig, target, base, process, level)
        steps.append(step)
        if not step["holds"]:
            break
        sustained = level
    return {"sustained": sustained, "steps": steps}


def _target(rig: Rig, target: Target, repeats: int) -> dict[str, Any]:
    levels = rig.sizes.ramp_levels
    with (
        server(target, rig.emulator)
        if isinstance(target, Contender)
        else nullcontext((None, rig.emulator.url)) as (process, base)
    ):
        ramps = [_ramp(rig, target, base, process, 0)]
        # Later ramps start two levels below the first one's result: the levels under it held.
        first = ramps[0]["sustained"]
        start = max(0, levels.index(first) - 2) if first in levels else 0
        ramps += [_ramp(rig, target, base, process, start) for _ in range(repeats - 1)]
    return {
        "sustained_streams": spread([ramp["sustained"] for ramp in ramps]),
        "ramps": ramps,
    }


def measure(rig: Rig) -> dict[str, Any]:
    rig.emulator.pace(tokens_per_second=PACE, reply_tokens=rig.sizes.ramp_tokens)
    results = {EMULATOR_DIRECT.name: _target(rig, EMULATOR_DIRECT, 1)}
    for contender in rig.contenders:
        results[contender.name] = _target(rig, contender, rig.sizes.ramp_repeats)
    return results
