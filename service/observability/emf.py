"""CloudWatch metrics on Lambda (``CHAINSERVE_METRICS=emf``): one Embedded Metric Format (EMF)
record per ended run, a JSON line on stdout. Lambda ships stdout to CloudWatch Logs, and
CloudWatch Logs turns each record's metrics into CloudWatch metrics: no agent, no API call, no
IAM permission beyond writing logs, which every function has.

Records are made by Powertools for AWS Lambda's ``AmazonCloudWatchEMFProvider``, one fresh
provider per run: the ``Metrics`` class keeps its values in class attributes shared by every
instance, so runs ending at once on different threads would mix theirs. We serialise the
provider's metric set and write the line ourselves (see :meth:`Emf.write`), rather than
``flush_metrics``, which ``print``s and which ``POWERTOOLS_METRICS_DISABLED`` silently turns off.

Dimensions: ``[chain, model]`` only. CloudWatch bills each metric name × dimension-value
combination as one custom metric; a second set ``[chain]`` would double the bill of every
one-model chain (the common case) for numbers identical to ``[chain, model]``'s. Per-chain
totals across a chain's fallbacks are one Metrics Insights query away
(``SELECT SUM(runs) FROM SCHEMA(chainserve, chain, model) GROUP BY chain``), and alarms can
be set on such queries. Everything else that identifies a run (run id, request id, route,
status) is a property: searchable in Logs Insights, never a metric of its own.

Importing Powertools has one side effect: botocore sessions made afterwards (Bedrock's) append
``PT/no-op/<version> PTEnv/<AWS_EXECUTION_ENV>`` to their User-Agent — AWS's count of Powertools
users, carrying no data of ours.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.metric_properties import MetricUnit

from service.observability import logs

if TYPE_CHECKING:
    from service.observability import EndedRun
    from service.runs.stream import Workers
    from service.settings import Settings

COUNT, MILLISECONDS = MetricUnit.Count, MetricUnit.Milliseconds

# Every record holds each of these (0 when it did not happen), so a metric's Average is a rate
# (errors: the error rate) and its SampleCount the number of runs.
ALWAYS = ("runs", "errors", "throttles", "fallbacks", "disconnects")


class Emf:
    """Writes each ended run as one EMF line to ``stream`` (stdout when None)."""

    def __init__(self, namespace: str, workers: Workers, stream: TextIO | None = None) -> None:
        self.namespace = namespace
        self.workers = workers
        self.stream = stream
        self._lock = threading.Lock()

    def record(self, run: EndedRun) -> None:
        self.write(json.dumps(self.document(run), separators=(",", ":")))

    def document(self, run: EndedRun) -> dict[str, Any]:
        """The run's EMF record: ``_aws`` (namespace, dimensions, metric definitions), the
        dimensions' values, the properties, and the metrics' values."""
        # service="": a POWERTOOLS_SERVICE_NAME in the environment would otherwise add a
        # "service" dimension (a different metric identity, and more metrics to pay for).
        provider = AmazonCloudWatchEMFProvider(namespace=self.namespace, service="")
        provider.add_dimension("chain", run.chain.name)
        provider.add_dimension("model", run.model)
        for name, value in self.metrics(run).items():
            unit = MILLISECONDS if name.endswith("_ms") else COUNT
            provider.add_metric(name=name, unit=unit, value=value)
        for key, value in self.properties(run).items():
            provider.add_metadata(key, value)
        return dict(provider.serialize_metric_set())

    def metrics(self, run: EndedRun) -> dict[str, float]:
        error, info = run.error, run.info
        found: dict[str, float] = dict.fromkeys(ALWAYS, 0)
        found["runs"] = 1
        found["errors"] = int(error is not None)
        # Model calls throttled, also those a fallback recovered from (then the record's model
        # is the one that answered; throttled_models names the ones throttled).
        found["throttles"] = len(run.throttled_models)
        found["disconnects"] = int(run.disconnected)
        if info is not None:
            found["fallbacks"] = int(info.answered_by_fallback)
            usage = info.usage
            found["input_tokens"] = usage.input_tokens
            found["output_tokens"] = usage.output_tokens
            # Only when the model read or wrote Bedrock's prompt cache: a chain that never
            # caches makes no cache metrics (none to pay for).
            if usage.cache_read_tokens or usage.cache_write_tokens:
                found["cache_read_tokens"] = usage.cache_read_tokens
                found["cache_write_tokens"] = usage.cache_write_tokens
            ttft = info.ttft_ms  # streams only
            if ttft is not None:
                found["ttft_ms"] = ttft
            if run.outcome == "ok":  # as Prometheus': a failure's time is not a latency
                found["latency_ms"] = info.latency_ms
        found["active_runs"] = self.workers.active
        return found

    def properties(self, run: EndedRun) -> dict[str, Any]:
        """Non-dimension members: ids and outcome, bounded and free of request data."""
        info, error = run.info, run.error
        found: dict[str, Any] = {
            "run_id": info.run_id if info else None,
            "request_id": run.request_id,
            # Set by the request middleware only on Lambda, from the adapter's header.
            "lambda_request_id": logs.context_fields.get().get("lambda_request_id"),
            "route": run.route,
            "outcome": run.outcome,
            # A disconnected run has no status of its own: the client was gone.
            "status": error.status if error else None if run.disconnected else 200,
            "code": error.code if error else None,
            "stop_reason": info.stop_reason if info else None,
            "fallback_from": info.fallback_from if info and info.fallback_from else None,
            "throttled_models": run.throttled_models or None,
        }
        return {key: value for key, value in found.items() if value is not None}

    def write(self, line: str) -> None:
        """One ``write`` of the whole line, then ``flush``. Lambda freezes the process once the
        response is sent: an unflushed buffer would reach CloudWatch only after the next invoke
        (or never). The lock keeps EMF lines from different threads whole and in order; the
        other stdout writers (uvicorn's access log, a logging StreamHandler) also write a whole
        line per call, and CPython's buffered stdout appends each call's text as one piece, so
        lines never interleave mid-line."""
        with self._lock:
            stream = self.stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()


def enable(settings: Settings, workers: Workers) -> Emf:
    return Emf(settings.metrics_namespace, workers)
