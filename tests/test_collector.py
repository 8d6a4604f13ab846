"""Garbage collection policy: full collections between runs, never in the middle of streams."""

import asyncio
import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from service.runs.collector import NEVER, collect_between_runs, freeze_start_up


@pytest.fixture
def full_collections() -> Iterator[list[float]]:
    """Records each collection of the oldest generation; restores GC settings afterwards."""
    seen: list[float] = []
    threshold = gc.get_threshold()
    this_thread = threading.get_ident()

    def record(phase: str, info: dict[str, Any]) -> None:
        # Only this thread's: servers other tests left running collect on their own threads.
        if phase == "stop" and info["generation"] == 2 and threading.get_ident() == this_thread:
            seen.append(1.0)

    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_start_up_objects_are_frozen_and_full_collections_stop(
    full_collections: list[float],
) -> None:
    freeze_start_up()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[2] == NEVER
    # Plenty of young collections (containers are tracked), none of the oldest generation.
    survivors: list[list[list[object]]] = [[[]] for _ in range(200_000)]
    assert len(survivors) == 200_000
    assert full_collections == []


@pytest.fixture
def collect_calls(full_collections: list[float], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The full collections the collector asks for (its calls of ``gc.collect``, which still
    run). Asked, not finished: CPython skips ``gc.collect()`` while another thread is in the
    middle of a collection, and servers other tests left running have threads that collect."""
    calls: list[int] = []
    real_collect = gc.collect
    this_thread = threading.get_ident()

    def recording_collect(generation: int = 2) -> int:
        if threading.get_ident() == this_thread and generation == 2:
            calls.append(generation)
        return real_collect(generation)

    monkeypatch.setattr(gc, "collect", recording_collect)
    return calls


def _run_collector(active: int, longest_wait: float) -> None:
    # As in the server: no automatic full collections (other tests' threads may allocate), so
    # every one recorded is the collector's.
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)

    async def main() -> None:
        task = asyncio.create_task(collect_between_runs(lambda: active, 0.02, longest_wait))
        await asyncio.sleep(0.5)
        task.cancel()

    asyncio.run(main())


def test_collects_when_no_run_is_in_progress(collect_calls: list[int]) -> None:
    _run_collector(active=0, longest_wait=600)
    assert len(collect_calls) >= 1


def test_waits_while_runs_are_in_progress_up_to_the_longest_wait(
    collect_calls: list[int], full_collections: list[float]
) -> None:
    _run_collector(active=3, longest_wait=600)
    assert collect_calls == [] and full_collections == []  # neither asked for nor automatic
    _run_collector(active=3, longest_wait=0.05)
    assert len(collect_calls) >= 1
