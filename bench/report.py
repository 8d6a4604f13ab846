"""The results as a table, the targets as ratios, and the machine they were measured on."""

import os
import platform
import subprocess
from collections.abc import Callable
from importlib import metadata
from typing import Any

from bench.procs import REPO, cpu_layout
from bench.stats import ratio

COLUMNS = (
    "chainserve",
    "chainserve-text",
    "chainserve-openai",
    "chainserve-ai-sdk",
    "langserve",
    "fastapi-floor",
    "botocore-floor",
    "emulator-direct",
)
_PACKAGES = (
    "langchain-core", "langchain-aws", "langserve", "botocore", "fastapi", "starlette",
    "uvicorn", "httpx",
)  # fmt: skip


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "layout": cpu_layout(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit,
        "packages": {name: _version(name) for name in _PACKAGES},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _get(figures: dict[str, Any], *path: str) -> Any:
    value: Any = figures
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue, with the value measured in this run (None: not measured)."""

    def cpu(name: str) -> Any:
        return _get(figures, "cpu", name, "us_per_chunk", "median")

    def sustained(name: str) -> Any:
        return _get(figures, "concurrency", name, "sustained_streams", "median")

    def cold(name: str) -> Any:
        return _get(figures, "cold_start", name, "first_byte_s", "median")

    slow = _get(figures, "slow_streams", "chainserve") or {}
    memory = _get(figures, "memory", "chainserve") or {}
    rows = [
        ("CPU per chunk vs LangServe", ratio(cpu("chainserve"), cpu("langserve")), "≤", 0.35, "×"),
        ("CPU per chunk vs botocore floor", ratio(cpu("chainserve"), cpu("botocore-floor")), "≤", 5, "×"),
        ("TTFB added, p50", _get(figures, "ttfb", "chainserve", "added_ms", "p50"), "≤", 2, " ms"),
        ("sustained 20/s streams vs LangServe", ratio(sustained("chainserve"), sustained("langserve")), "≥", 2, "×"),
        ("slow streams: errors", slow.get("errors"), "≤", 0, ""),
        ("slow streams: RSS per stream", slow.get("rss_per_stream_mb"), "≤", 0.2, " MB"),
        ("cold first byte vs LangServe", ratio(cold("chainserve"), cold("langserve")), "≤", 0.6, "×"),
        ("idle RSS", memory.get("idle_rss_mb"), "≤", 100, " MB"),
        ("RSS growth over 10,000 requests", memory.get("growth_mb"), "≤", 5, " MB"),
    ]  # fmt: skip
    if sustained("langserve") == 0 and sustained("chainserve"):
        rows[3] = ("sustained 20/s streams vs LangServe", float("inf"), "≥", 2, "×")
    out = []
    for name, value, op, limit, unit in rows:
        met = None if value is None else (value <= limit if op == "≤" else value >= limit)
        out.append({"target": name, "value": value, "limit": f"{op} {limit}{unit}", "met": met})
    return out


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value == float("inf"):
        return "∞"
    return f"{value:,.{digits}f}"


def _spread(summary: Any, digits: int = 0, scale: float = 1) -> str:
    if not summary:
        return "–"
    median, low, high = (summary[k] * scale for k in ("median", "min", "max"))
    return f"{_fmt(median, digits)} ({_fmt(low, digits)}–{_fmt(high, digits)})"


def _p50_p99(summary: Any, digits: int = 1) -> str:
    return f"{_fmt(summary['p50'], digits)} / {_fmt(summary['p99'], digits)}" if summary else "–"


def table(results: dict[str, Any]) -> str:
    figures = results["figures"]
    Row = tuple[str, Callable[[str], str]]
    rows: list[Row] = [
        ("server CPU per chunk, µs: median (min–max)",
         lambda n: _spread(_get(figures, "cpu", n, "us_per_chunk"))),
        ("TTFB added over emulator TTFT, ms: p50 / p99",
         lambda n: _p50_p99(_get(figures, "ttfb", n, "added_ms"), 2)),
        ("sustained 20 chunk/s streams: median (min–max)",
         lambda n: _spread(_get(figures, "concurrency", n, "sustained_streams"))),
        ("1,000 slow streams: errors",
         lambda n: _fmt(_get(figures, "slow_streams", n, "errors"))),
        ("1,000 slow streams: inter-chunk gap beyond pacing, ms: p50 / p99",
         lambda n: _p50_p99(_get(figures, "slow_streams", n, "gap_beyond_pacing_ms"), 1)),
        ("1,000 slow streams: peak RSS per stream, MB",
         lambda n: _fmt(_get(figures, "slow_streams", n, "rss_per_stream_mb"), 3)),
        ("cold start to first byte, s: median (min–max)",
         lambda n: _spread(_get(figures, "cold_start", n, "first_byte_s"), 2)),
        ("RSS idle / warm / after 10,000 requests, MB",
         lambda n: "–" if not _get(figures, "memory", n) else " / ".join(
             _fmt(_get(figures, "memory", n, key)) for key in
             ("idle_rss_mb", "warm_rss_mb", "after_rss_mb"))),
    ]  # fmt: skip
    columns = [c for c in COLUMNS if any(c in (figures.get(f) or {}) for f in figures)]
    header = ["figure", *columns]
    body = [[label, *(cell(c) for c in columns)] for label, cell in rows]
    lines = _markdown([header, *body])
    lines += ["", "| target | measured | limit | met |", "|---|---|---|---|"]
    for target in results["targets"]:
        met = {True: "yes", False: "**no**", None: "–"}[target["met"]]
        value = _fmt(target["value"], 2)
        lines.append(f"| {target['target']} | {value} | {target['limit']} | {met} |")
    return "\n".join(lines)


def _markdown(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines
