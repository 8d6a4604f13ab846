"""Running chain tests: each renders its prompt and calls its chain, many at once on threads.

A test runs exactly as an HTTP request would: its inputs go through the chain's request
validation (:meth:`ChainInputs.parse_request`), its prompt is the chain's own rendering
(:mod:`service.chains.render`), and the model is called through the chain's runnable. Threads, because
the model call is boto3's, synchronous and spent waiting on the network.
"""

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from service.chains.catalog import Chain
from service.chains.render import render, transcript
from service.chaintests.checks import Failure, run_checks
from service.chaintests.spec import ChainTest
from service.runs import errors
from service.runs.info import RunInfo

Status = Literal["passed", "failed", "error"]


@dataclass(frozen=True)
class Case:
    """One test of one chain."""

    chain: Chain
    test: ChainTest

    @property
    def id(self) -> str:
        """``chain › test name``: what ``-k`` matches and failures are reported under."""
        return f"{self.chain.name} › {self.test.name}"

    @property
    def path(self) -> Path:
        return self.chain.spec._source[0]


@dataclass(frozen=True)
class Outcome:
    case: Case
    status: Status
    failures: list[Failure] = field(default_factory=list)
    """What failed: the checks that did not hold, or the error that stopped the test."""
    seconds: float = 0.0
    live_checks_not_run: int = 0


def collect(chains: Iterable[Chain], pattern: str | None = None) -> list[Case]:
    """Every test of ``chains`` in file order; with ``pattern``, those whose id contains it
    (case-insensitively, ``>`` standing for ``›``, which few keyboards have)."""
    cases = [Case(chain, test) for chain in chains for test in chain.spec.tests]
    if pattern is None:
        return cases
    wanted = _comparable(pattern)
    return [case for case in cases if wanted in _comparable(case.id)]


def _comparable(text: str) -> str:
    return text.casefold().replace("›", ">")


def run_all(
    cases: list[Case],
    *,
    live: bool,
    concurrency: int,
    retry_after: int,
    on_outcome: Callable[[Outcome], None],
) -> list[Outcome]:
    """Run every case, ``concurrency`` at a time; ``on_outcome`` hears of each as it ends
    (on this thread). Returns the outcomes in the order of ``cases``."""
    outcomes: dict[int, Outcome] = {}
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="chain-test")
    try:
        futures = {
            pool.submit(run_case, case, live=live, retry_after=retry_after): index
            for index, case in enumerate(cases)
        }
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[futures[future]] = outcome
            on_outcome(outcome)
    finally:
        # On Ctrl-C, drop the tests not started instead of running them all first.
        pool.shutdown(wait=True, cancel_futures=True)
    return [outcomes[index] for index in range(len(cases))]


def run_case(case: Case, *, live: bool, retry_after: int) -> Outcome:
    """One test: its prompt checks, then (if any check needs it) the model and output checks."""
    started = time.perf_counter()
    test, chain = case.test, case.chain
    skipped = 0 if live else test.live_checks()

    def ended(status: Status, failures: list[Failure]) -> Outcome:
        return Outcome(case, status, failures, time.perf_counter() - started, skipped)

    def error(message: str, failures: list[Failure]) -> Outcome:
        return ended("error", [*failures, Failure(test._line, message)])

    failures: list[Failure] = []
    try:
        body = json.dumps({"input": test.inputs}, default=str).encode()
        try:
            variables, _ = chain.inputs.parse_request(body)
        except errors.ApiError as exc:  # loaded, so only the server's own limits can refuse
            return error(f"the inputs were refused: {exc.status} {exc.message}", failures)
        if test.prompt is not None:
            prompt = transcript(render(chain, variables)["messages"])
            failures += run_checks(test.prompt, prompt, "prompt")
        if test.calls_model(live):
            info = RunInfo()
            try:
                output = chain.runnable.invoke(variables, info.config({}))  # type: ignore[arg-type]
            except Exception as exc:
                failure = errors.classify(exc, model_id=chain.model_id, retry_after=retry_after)
                # Unlike an HTTP client, the person running tests may see the raw error.
                detail = (
                    f"{type(exc).__name__}: {exc}"
                    if failure.code == "internal_error"
                    else failure.message
                )
                return error(f"the model call failed: {failure.status} {detail}", failures)
            if not isinstance(output, str):  # a structured chain's object: checked as JSON text
                output = json.dumps(output, ensure_ascii=False)
            if test.output is not None:
                failures += run_checks(test.output, output, "output")
            if live and test.live is not None and test.live.output is not None:
                failures += run_checks(test.live.output, output, "output")
    except Exception as exc:  # a bug here must not take the other tests down with it
        return error(f"the test could not run: {type(exc).__name__}: {exc}", failures)
    return ended("failed" if failures else "passed", failures)
