"""The benchmark (bench/): its arithmetic, and a seconds-long smoke run end to end.

The smoke run keeps ``python -m bench`` working; its figures are meaningless at these sizes and
nothing here is timed. The real run and its table are in docs/performance.md.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import FIGURES
from bench.report import table, targets
from bench.rig import SMOKE, gaps_beyond_pacing
from bench.stats import percentile, spread
from tests.conftest import REPO

SERVERS = ("chainserve", "langserve", "fastapi-floor")


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([3.0], 99) == 3.0
    assert spread([3, 1, 2]) == {"median": 2, "min": 1, "max": 3, "n": 3}


def test_gaps_are_measured_from_the_first_token_less_the_pacing() -> None:
    streams: list[dict[str, Any]] = [
        {"first": 1.0, "arrivals": [1.05, 1.2]},
        {"first": None, "arrivals": []},  # failed before its first token: no gaps
    ]
    assert gaps_beyond_pacing(streams, 0.05) == pytest.approx([0.0, 0.1])


def test_targets_are_ratios_within_the_same_run() -> None:
    figures = {
        "cpu": {
            "chainserve": {"us_per_chunk": {"median": 60}},
            "langserve": {"us_per_chunk": {"median": 300}},
            "botocore-floor": {"us_per_chunk": {"median": 20}},
        },
        "concurrency": {
            "chainserve": {"sustained_streams": {"median": 400}},
            "langserve": {"sustained_streams": {"median": 0}},
        },
    }
    rows = {row["target"]: row for row in targets(figures)}
    assert rows["CPU per chunk vs LangServe"]["value"] == pytest.approx(0.2)
    assert rows["CPU per chunk vs LangServe"]["met"] is True
    assert rows["CPU per chunk vs botocore floor"]["value"] == pytest.approx(3)
    # LangServe sustained no level at all: any chainserve figure is an unbounded ratio.
    assert rows["sustained 20/s streams vs LangServe"]["met"] is True
    assert rows["idle RSS"]["met"] is None  # not measured in this run


def test_unknown_figure_is_refused() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--figures", "cpu,speed"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "unknown: speed" in run.stderr


def test_smoke_run_measures_every_figure_for_every_contender(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    figures = results["figures"]
    assert set(figures) == set(FIGURES)
    for name in (*SERVERS, "botocore-floor"):
        assert figures["cpu"][name]["us_per_chunk"]["n"] == SMOKE.cpu_rounds
        assert figures["ttfb"][name]["added_ms"]["n"] == SMOKE.ttfb_requests
    assert figures["concurrency"]["emulator-direct"]["ramps"][0]["steps"]
    for name in SERVERS:
        assert figures["concurrency"][name]["ramps"][0]["steps"]
        assert figures["slow_streams"][name]["streams"] == SMOKE.slow_streams
        assert figures["cold_start"][name]["first_byte_s"]["n"] == SMOKE.cold_runs
        outcomes = figures["memory"][name]["outcomes"]
        assert sum(outcomes.values()) == SMOKE.memory_warmup + SMOKE.memory_requests
    # chainserve itself serves every smoke request whole (functional, not a timing).
    assert figures["slow_streams"]["chainserve"]["errors"] == 0
    assert set(figures["memory"]["chainserve"]["outcomes"]) == {"ok"}
    assert results["machine"]["packages"]["langserve"]
    assert len(results["targets"]) == 9
    assert table(results) in run.stdout


def test_readme_quotes_the_recorded_run() -> None:
    """The headline ratios in the README are those of docs/performance-run.json."""
    recorded = json.loads((REPO / "docs" / "performance-run.json").read_text())
    rows = {row["target"]: row["value"] for row in recorded["targets"]}
    readme = (REPO / "README.md").read_text()
    performance = (REPO / "docs" / "performance.md").read_text()
    cpu = f"{rows['CPU per chunk vs LangServe']:.2f}× the CPU of LangServe"
    streams = f"{rows['sustained 20/s streams vs LangServe']:.0f}× as many"
    assert cpu in readme and cpu in performance
    assert streams in readme and streams in performance
    assert recorded["machine"]["commit"] in performance
