"""``chainserve test [DIR] [-k PATTERN] [--junit FILE] [--live] [--concurrency N]``.

Exit status: 0 when every selected test passed; 1 on any failure or error, on a chain file
that does not load (the tests of the files that do load still run), and when there is no test
to run (none written, or ``-k`` matched none): a CI step that tests nothing should not look
green. 2 on bad settings or options.
"""

import argparse
import sys
import time

from pydantic import ValidationError

from service.chains.catalog import Catalog
from service.chains.loader import ChainFileError, ChainFileErrors
from service.chaintests.junit import write_junit
from service.chaintests.report import Progress, failure_lines, live_note, summary
from service.chaintests.runner import collect, run_all
from service.local import bedrock_for
from service.settings import Settings


def main(args: argparse.Namespace) -> int:
    """Run the tests; ``args`` as :mod:`service.cli` parses them: ``folder``, ``pattern``
    (``-k``), ``junit``, ``live``, ``concurrency``. Returns the exit status."""
    if args.concurrency < 1:
        print("chainserve test: --concurrency must be at least 1", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with bedrock_for(live=args.live) as backend:
        try:
            settings = Settings(bedrock_endpoint_url=backend.endpoint_url)
        except ValidationError as exc:  # a CHAINSERVE_* variable with a bad value
            print(f"chainserve test: invalid settings: {exc}", file=sys.stderr)
            return 2
        if args.folder is not None:
            settings = settings.model_copy(update={"chains_dir": args.folder})
        catalog = Catalog(settings)
        load_errors = _load(catalog)
        cases = collect(catalog, args.pattern)
        if not cases:
            written = len(collect(catalog))
            print(_nothing_to_run(settings, args.pattern, written, load_errors), file=sys.stderr)
            if args.junit:
                write_junit(args.junit, [], load_errors, time.perf_counter() - started)
            return 1
        print(
            f"chainserve test: {_tests(len(cases))} from {settings.chains_dir}, "
            f"answered by {backend.description}",
            file=sys.stderr,
        )
        progress = Progress(len(cases), sys.stdout)
        outcomes = run_all(
            cases,
            live=args.live,
            concurrency=args.concurrency,
            retry_after=settings.retry_after_seconds,
            on_outcome=progress.add,
        )
    progress.finish()
    seconds = time.perf_counter() - started
    for outcome in outcomes:
        for line in failure_lines(outcome):
            print(line)
    for note in (live_note(outcomes), _not_loaded(load_errors)):
        if note:
            print(note)
    print(summary(progress.counts, seconds))
    if args.junit:
        write_junit(args.junit, outcomes, load_errors, seconds)
    return 0 if progress.counts.passed == len(cases) and not load_errors else 1


def _load(catalog: Catalog) -> list[ChainFileError]:
    """Load the folder, the good files even when others are broken; say what did not load."""
    try:
        catalog.load(keep_going=True)
        load_errors = catalog.errors
    except ChainFileErrors as exc:  # no such folder
        load_errors = exc.errors
    for error in load_errors:
        print(error, file=sys.stderr)
    return load_errors


def _not_loaded(load_errors: list[ChainFileError]) -> str | None:
    files = len({error.path for error in load_errors})
    if not files:
        return None
    return f"{files} chain file{'' if files == 1 else 's'} did not load (the errors are on stderr)"


def _nothing_to_run(
    settings: Settings, pattern: str | None, written: int, load_errors: list[ChainFileError]
) -> str:
    folder = settings.chains_dir
    if pattern is not None and written:
        return f"chainserve test: no test matches -k {pattern!r} ({_tests(written)} in {folder})"
    if load_errors:
        return f"chainserve test: no tests run: chain files in {folder} did not load"
    return (
        f"chainserve test: no tests in {folder}; add a tests: section to a chain file "
        "(README: Chain tests)"
    )


def _tests(count: int) -> str:
    return f"{count} test" + ("" if count == 1 else "s")
