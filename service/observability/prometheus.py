"""Prometheus metrics at ``GET /metrics`` (``CHAINSERVE_METRICS=prometheus``; off by default).

Every run is recorded once, when it ends (:func:`service.observability.run_ended`). Labels
are the chain's name, the model id and the route: bounded by the chain files, never request
data. ``prometheus_client`` is imported only when metrics are on, and each app has its
own registry (no process-wide state, so two apps in one process — tests — never mix counts).

One process serves (uvicorn runs one worker; runs are threads sharing this registry), so no
multiprocess mode is needed. On Lambda, scrape nothing: each instance has its own counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

if TYPE_CHECKING:
    from service.observability import EndedRun
    from service.runs.stream import Workers

PATH = "/metrics"

# Seconds. Time to first token: Bedrock's is usually 0.2–2 s; a whole run can take minutes.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The app's registry and its metrics; ``workers`` is read at scrape time (active runs)."""

    def __init__(self, workers: Workers, max_concurrency: int) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry(auto_describe=True)
        model = ("chain", "model")
        self.runs = Counter(
            "chainserve_runs",
            "Chain runs ended, by route and outcome (ok, error, disconnected).",
            (*model, "route", "outcome"),
            registry=registry,
        )
        self.errors = Counter(
            "chainserve_errors",
            "Failed runs, by the HTTP status of the failure (in-band for a started stream).",
            (*model, "status"),
            registry=registry,
        )
        self.throttles = Counter(
            "chainserve_throttles",
            "Model calls Bedrock throttled (429 after botocore's retries), also when a "
            "fallback then answered.",
            model,
            registry=registry,
        )
        self.fallbacks = Counter(
            "chainserve_fallbacks",
            "Runs answered by a fallback model (model: the one that answered).",
            model,
            registry=registry,
        )
        self.disconnects = Counter(
            "chainserve_client_disconnects",
            "Streamed runs cut short because the client went away.",
            (*model, "route"),
            registry=registry,
        )
        self.tokens = Counter(
            "chainserve_tokens",
            "Tokens, by direction: input, output, cache_read, cache_write (of input).",
            (*model, "direction"),
            registry=registry,
        )
        self.ttft = Histogram(
            "chainserve_time_to_first_token_seconds",
            "Streamed runs: from the run's start to its first chunk.",
            model,
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "chainserve_run_duration_seconds",
            "Runs that ended ok: from the run's start to its end.",
            model,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        active = Gauge("chainserve_active_runs", "Runs holding a worker now.", registry=registry)
        active.set_function(lambda: workers.active)
        limit = Gauge(
            "chainserve_max_runs",
            "CHAINSERVE_MAX_CONCURRENCY: runs past it get 503.",
            registry=registry,
        )
        limit.set(max_concurrency)

    def record(self, run: EndedRun) -> None:
        labels = (run.chain.name, run.model)
        outcome, error, info = run.outcome, run.error, run.info
        self.runs.labels(*labels, run.route, outcome).inc()
        if error is not None:
            self.errors.labels(*labels, str(error.status)).inc()
        for model in run.throttled_models:
            self.throttles.labels(run.chain.name, model).inc()
        if run.disconnected:
            self.disconnects.labels(*labels, run.route).inc()
        if info is None:
            return
        if info.answered_by_fallback:
            self.fallbacks.labels(*labels).inc()
        usage = info.usage
        for direction, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
        ):
            if count:
                self.tokens.labels(*labels, direction).inc(count)
        if info.first_output is not None:
            self.ttft.labels(*labels).observe(info.first_output - info.started)
        if outcome == "ok":
            self.duration.labels(*labels).observe(info.latency_ms / 1000)

    def exposition(self, accept: str) -> Response:
        """The text format Prometheus asked for (OpenMetrics when its Accept says so)."""
        from prometheus_client.exposition import choose_encoder

        encode, media_type = choose_encoder(accept)
        return Response(encode(self.registry), media_type=media_type)


# Not in the OpenAPI document, like /docs: an operator's route, not the chains' API.
router = APIRouter(include_in_schema=False)


@router.get(PATH)
async def scrape(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return metrics.exposition(request.headers.get("accept", ""))


def enable(app: Any, workers: Workers, max_concurrency: int) -> Metrics:
    """Serve ``/metrics`` from a fresh registry on ``app``."""
    app.state.metrics = metrics = Metrics(workers, max_concurrency)
    app.include_router(router)
    return metrics
