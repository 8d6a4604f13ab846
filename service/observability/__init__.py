"""What operators read: log lines (``logs``), metrics (``prometheus``, ``emf``), traces
(``tracing``: OpenTelemetry; ``langsmith_setup``). Each is switched on by one setting and costs
nothing when off: its library is imported only then.

Every run is observed once, when it ends, through :func:`run_ended` — called by the protocols'
shared run code (service/protocols/running.py) and the batch route — which hands an
:class:`EndedRun` to each observer the settings switched on (:func:`observers`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

    from service.chains.catalog import Chain
    from service.runs.errors import ApiError
    from service.runs.info import RunInfo
    from service.runs.stream import Workers
    from service.settings import Settings

log = logging.getLogger("chainserve")


@dataclass(frozen=True)
class EndedRun:
    """A run as it ended. ``info`` is None for a batch that failed before any input started;
    ``error`` is the mapped failure (in-band for a stream that had started); ``disconnected``:
    the client went away before the end."""

    chain: Chain
    info: RunInfo | None
    route: str
    error: ApiError | None
    disconnected: bool
    request_id: str

    @property
    def model(self) -> str:
        """The model a failed run's error names (as its log line does); else the model that
        answered; else the one still being called when the client left; else the chain's."""
        info = self.info
        if info is None:
            return self.chain.model_id
        if self.error is not None and info.failed_model:
            return info.failed_model
        calls = info.collector.calls
        return info.model or (calls[-1].model if calls else "") or self.chain.model_id

    @functools.cached_property
    def throttled_models(self) -> list[str]:
        """The model of each call Bedrock throttled in this run (still 429 after botocore's
        retries) — also when a fallback then answered, so throttling is never hidden."""
        if self.info is None:
            return [self.model] if self.error is not None and self.error.status == 429 else []
        from service.runs.errors import classify

        return [
            call.model
            for call in self.info.collector.calls
            if call.error is not None
            and classify(call.error, model_id=call.model, retry_after=0).status == 429
        ]

    @property
    def outcome(self) -> str:
        return "disconnected" if self.disconnected else "error" if self.error else "ok"


class RunObserver(Protocol):
    def record(self, run: EndedRun) -> None: ...


def observers(app: FastAPI, settings: Settings, workers: Workers) -> list[RunObserver]:
    """The observers ``settings`` switch on (each may add routes to ``app``: ``/metrics``)."""
    found: list[RunObserver] = []
    if settings.metrics == "prometheus":
        from service.observability import prometheus

        found.append(prometheus.enable(app, workers, settings.max_concurrency))
    elif settings.metrics == "emf":
        from service.observability import emf

        found.append(emf.enable(settings, workers))
    if settings.otel:
        from service.observability import tracing

        found.append(tracing.enable(app, settings))
    return found


def run_ended(
    request: Request,
    chain: Chain,
    info: RunInfo | None,
    route: str,
    error: ApiError | None = None,
    disconnected: bool = False,
) -> None:
    """Hand the ended run to every observer; nothing to do (and nothing made) when none is on.
    An observer's failure is logged, never the request's."""
    found: list[RunObserver] = request.app.state.run_observers
    if not found:
        return
    request_id = str(request.scope.get("state", {}).get("request_id", "-"))
    run = EndedRun(chain, info, route, error, disconnected, request_id)
    for observer in found:
        try:
            observer.record(run)
        except Exception:
            log.exception("recording run %s failed", info.run_id if info else "-")
