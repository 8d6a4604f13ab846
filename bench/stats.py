"""Summaries: a median with its spread, percentiles, ratios."""

import math
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min and max of repeated runs (``n`` of them)."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def distribution(values: Sequence[float]) -> dict[str, Any]:
    """p50 and p99 of one distribution (per request, per chunk gap …)."""
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "n": len(values)}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
