"""Connection-bound concurrency: 1,000 slow streams at once (1 chunk/s, 30 s each).

Counts streams that fail or do not finish within 30 s of their expected end, and the
server's resident memory: sampled four times a second, peak minus the warm idle figure
before the load, divided by the streams.
"""

import threading
from typing import Any

import httpx

from bench.procs import Process, server
from bench.rig import Rig, gaps_beyond_pacing, load_job, read_stream
from bench.stats import distribution


class _PeakSampler(threading.Thread):
    def __init__(self, process: Process) -> None:
        super().__init__(daemon=True)
        self.process, self.peak_mb, self.peak_threads = process, 0.0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.25):
            self.peak_mb = max(self.peak_mb, self.process.rss_mb())
            self.peak_threads = max(self.peak_threads, self.process.threads())


def measure(rig: Rig) -> dict[str, Any]:
    sizes = rig.sizes
    rig.emulator.pace(tokens_per_second=1, reply_tokens=sizes.slow_tokens)
    results: dict[str, Any] = {}
    for contender in rig.contenders:
        with server(contender, rig.emulator) as (process, base):
            rig.emulator.pace(reply_tokens=sizes.slow_tokens)  # warm up at full speed
            with httpx.Client(timeout=60) as client:
                for _ in range(3):
                    read_stream(client, contender, base)
            rig.emulator.pace(tokens_per_second=1, reply_tokens=sizes.slow_tokens)
            idle_mb = process.rss_mb()
            sampler = _PeakSampler(process)
            sampler.start()
            job = load_job(
                contender, base, sizes.slow_tokens,
                streams=sizes.slow_streams, stagger_s=sizes.slow_stagger_s,
                timeout_s=sizes.slow_tokens + 30,
            )  # fmt: skip
            try:
                result = rig.load(job)
            finally:
                sampler.done.set()
                sampler.join()
        streams = result["streams"]
        errors = [stream["error"] for stream in streams if stream["error"]]
        gaps = [gap * 1000 for gap in gaps_beyond_pacing(streams, 1.0)]
        peak = max(sampler.peak_mb, idle_mb)
        results[contender.name] = {
            "streams": len(streams),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "idle_rss_mb": idle_mb,
            "peak_rss_mb": peak,
            "rss_per_stream_mb": (peak - idle_mb) / len(streams),
            "peak_threads": sampler.peak_threads,
            "gap_beyond_pacing_ms": distribution(gaps) if gaps else None,
        }
    return results
