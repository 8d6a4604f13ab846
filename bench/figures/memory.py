"""Memory: resident set idle after start, after a warm-up, and after 10,000 requests.

Requests are short streams (20 tokens at full speed), 8 at a time. Growth from the warm
figure to the end is the leak check: the warm-up first pays for what the first requests load
once (modules imported on first use, caches), which is not a leak.
"""

import time
from typing import Any

from bench.procs import server
from bench.rig import Rig, load_job


def measure(rig: Rig) -> dict[str, Any]:
    sizes = rig.sizes
    rig.emulator.pace(reply_tokens=sizes.memory_tokens)
    results: dict[str, Any] = {}
    for contender in rig.contenders:
        with server(contender, rig.emulator) as (process, base):
            time.sleep(1)
            idle = process.rss_mb()
            outcomes: dict[str, int] = {}
            figures = {"idle_rss_mb": idle}
            for label, count in (("warm", sizes.memory_warmup), ("after", sizes.memory_requests)):
                rig.emulator.forget_calls()
                job = load_job(
                    contender, base, sizes.memory_tokens,
                    requests=count, concurrency=sizes.memory_concurrency, timeout_s=60,
                )  # fmt: skip
                for outcome, n in rig.load(job)["outcomes"].items():
                    outcomes[outcome] = outcomes.get(outcome, 0) + n
                time.sleep(0.5)
                figures[f"{label}_rss_mb"] = process.rss_mb()
        results[contender.name] = {
            **figures,
            "requests": sizes.memory_warmup + sizes.memory_requests,
            "outcomes": outcomes,
            "growth_mb": figures["after_rss_mb"] - figures["warm_rss_mb"],
            "growth_from_idle_mb": figures["after_rss_mb"] - idle,
        }
    return results
