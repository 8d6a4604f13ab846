"""A batch's runs: each input invoked as a run of its own, a few at a time.

Not LangChain's ``Runnable.batch``: that runs the chain's steps in lockstep across inputs, so
every run's callbacks end together (one latency for all) and one failure discards the rest.
"""

import time
from concurrent.futures import FIRST_EXCEPTION, wait
from typing import Any

from langchain_core.runnables import Runnable
from langchain_core.runnables.config import ContextThreadPoolExecutor

from service.runs.info import RunInfo


def run_batch(
    runnable: Runnable[dict[str, Any], str],
    inputs: list[dict[str, Any]],
    configs: list[dict[str, Any]],
    infos: list[RunInfo],
    at_once: int,
    return_exceptions: bool,
) -> list[Any]:
    """A batch, on a worker thread: each input invoked as a run of its own (timed on its own,
    into its :class:`RunInfo`), at most ``at_once`` at a time on a pool's threads.

    With ``return_exceptions``, a failed input's exception takes the place of its output.
    Without, the first failure is raised and the inputs not yet started never start.
    """

    def one(index: int) -> Any:
        info = infos[index]
        info.started = time.perf_counter()
        try:
            return runnable.invoke(inputs[index], info.config(configs[index]))  # type: ignore[arg-type]
        except Exception as exc:
            info.error = exc  # whose failure it was, when the batch fails as a whole
            raise
        finally:
            info.ended = time.perf_counter()

    if at_once == 1:  # one at a time: on this thread, no pool
        results: list[Any] = []
        for index in range(len(inputs)):
            try:
                results.append(one(index))
            except Exception as exc:
                if not return_exceptions:
                    raise
                results.append(exc)
        return results
    with ContextThreadPoolExecutor(max_workers=at_once, thread_name_prefix="batch") as pool:
        futures = [pool.submit(one, index) for index in range(len(inputs))]
        if not return_exceptions:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                for future in futures:
                    future.cancel()  # those not started yet
                raise failed[0].exception()  # type: ignore[misc]
        return [f.exception() or f.result() for f in futures]
