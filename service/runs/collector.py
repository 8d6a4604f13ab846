"""Garbage collection for a streaming server: no full collection in the middle of streams.

A stream's objects live for seconds, so under load many of them reach CPython's oldest
generation, and collecting that generation walks every object of every stream in flight
while holding the GIL. With hundreds of worker threads waiting for the GIL, that pause grew
from 0.1 s to many seconds, stalling every stream at once (docs/performance.md). So:

- start-up objects (modules, models, clients) are frozen out of every collection;
- the young generations are collected as usual (that is where run garbage dies);
- the oldest generation is collected between runs: every ``interval`` seconds if no run is in
  progress, and at least every ``longest_wait`` seconds under constant load.
"""

import asyncio
import gc
import time
from collections.abc import Callable

NEVER = 1_000_000_000  # an oldest-generation threshold no process reaches


def freeze_start_up() -> None:
    """Keep everything that exists now out of collections; stop automatic full collections."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)


async def collect_between_runs(
    active_runs: Callable[[], int], interval: float = 30.0, longest_wait: float = 600.0
) -> None:
    """Run full collections when no chain run is in progress (a task for the app's life)."""
    last = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        if active_runs() == 0 or now - last >= longest_wait:
            gc.collect()
            last = now
