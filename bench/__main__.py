"""``python -m bench``: run the figures, print the table, write the JSON results.

python -m bench                      # everything, as recorded in docs/performance.md
python -m bench --figures cpu,ttfb   # some figures only
python -m bench --smoke              # seconds: checks the benchmark runs, figures meaningless
"""

import argparse
import compileall
import datetime
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.contenders.catalog import PROTOCOLS, SERVERS
from bench.procs import REPO, Emulator, pin_self_to_load_cpus
from bench.rig import FULL, SMOKE, Rig

FIGURES = ("cpu", "ttfb", "concurrency", "slow_streams", "cold_start", "memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--figures", default=",".join(FIGURES), help=f"comma-separated, of: {', '.join(FIGURES)}"
    )
    parser.add_argument(
        "--contenders",
        default=",".join(c.name for c in SERVERS),
        help="comma-separated server contenders (the botocore floor always runs); besides "
        "the default ones, chainserve's other wire formats: "
        + ", ".join(c.name for c in PROTOCOLS),
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a run check only")
    parser.add_argument(
        "--json", type=Path, default=Path("bench-results.json"), help="results file"
    )
    args = parser.parse_args(argv)
    figures = [name.strip() for name in args.figures.split(",") if name.strip()]
    unknown = set(figures) - set(FIGURES)
    known = {c.name: c for c in (*SERVERS, *PROTOCOLS)}
    contenders = [name.strip() for name in args.contenders.split(",") if name.strip()]
    unknown |= set(contenders) - set(known)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")

    pin_self_to_load_cpus()
    # Byte code for our modules, as a deployment has it (where PYTHONDONTWRITEBYTECODE is set,
    # every start would compile them again and the cold start would measure that).
    for package in ("service", "bench"):
        compileall.compile_dir(REPO / package, quiet=1)
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "machine": report.machine(),
        "figures": {},
    }
    emulator = Emulator()
    try:
        rig = Rig(emulator, SMOKE if args.smoke else FULL, tuple(known[n] for n in contenders))
        for name in figures:
            started = time.monotonic()
            print(f"… {name}", file=sys.stderr, flush=True)
            module = importlib.import_module(f"bench.figures.{name}")
            results["figures"][name] = module.measure(rig)
            results["figures"][name]["seconds"] = round(time.monotonic() - started, 1)
    finally:
        emulator.stop()
    results["targets"] = report.targets(results["figures"])
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(report.table(results))
    print(f"\nresults: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
