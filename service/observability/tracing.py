"""OpenTelemetry traces (``CHAINSERVE_OTEL=true``; off by default), exported over OTLP/HTTP as
the standard ``OTEL_*`` variables say (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME`` …).

A request is FastAPI's own SERVER span (FastAPI ≥ 0.165 makes it, continuing the caller's
``traceparent``); under it one span per run (``invoke_workflow {chain}``) and under that one
CLIENT span per model call (``chat {model}``, with the GenAI semantic conventions' attributes;
a fallback shows the failed call and the one that answered). Run and model spans are made when
the run has ended, from what it recorded (:class:`~service.runs.info.ModelCall`), with their real
start and end times: nothing on the per-chunk path, no context to carry into worker threads.

Nothing secret leaves the process: every query value in a URL attribute is redacted (signed
stream URLs carry a chain's inputs; keys may come as query parameters), and prompt or reply
text appears only with ``CHAINSERVE_LOG_PROMPTS=true``. The SDK is an optional extra, imported
only here, only when tracing is on.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from service import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from service.observability import EndedRun
    from service.runs.info import ModelCall
    from service.settings import Settings

INSTALL = "pip install 'chainserve[otel]'"
DEFAULT_SERVICE_NAME = "chainserve"
UNTRACED_PATHS = frozenset({"/healthz", "/metrics"})  # probes and scrapes: noise in a trace


class TracingUnavailable(SystemExit):
    """``CHAINSERVE_OTEL=true`` without the SDK installed: start-up stops with one line (a
    SystemExit prints its message, no traceback, wherever the app is created: `chainserve
    serve`, ``uvicorn service.app:app``, Lambda)."""


def fastapi_telemetry(settings: Settings) -> TelemetryConfig:
    """FastAPI's own telemetry (its ``telemetry=``): request spans only when tracing is on, so
    a provider someone else set process-wide (a test, LangSmith's OTel mode) never records our
    URLs unredacted; no per-step spans (``fastapi.endpoint`` …: lean traces); no FastAPI log
    records (an exception's text may quote a request)."""
    return {
        "tracing": settings.otel,
        "metrics": settings.otel,
        "logs": False,
        "operation_spans": False,
        "exclude": _untraced,
        # FASTAPI_OTEL_AUTO_CONFIGURE=true would add a second exporter to our provider.
        "auto_configure": False,
    }


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def enable(app: FastAPI, settings: Settings) -> Tracing:
    """Trace ``app``'s requests and runs; the process's SDK TracerProvider if it has one
    (``opentelemetry-instrument``, or an earlier app in this process), else a new one made the
    process's, exporting over OTLP/HTTP. Raises :class:`TracingUnavailable` without the SDK."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError as exc:
        raise TracingUnavailable(
            f"chainserve: CHAINSERVE_OTEL=true needs the OpenTelemetry SDK ({exc.name} is "
            f"missing): {INSTALL}"
        ) from None
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = _new_provider()
        # Process-wide, so FastAPI's request spans (it reads the global) and any library the
        # deployer instruments share it. Only once per process: later apps find it above.
        trace.set_tracer_provider(provider)
    _add_processors(provider)
    return Tracing(provider.get_tracer("chainserve", __version__), settings.log_prompts)


def _new_provider() -> TracerProvider:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable(
            f"chainserve: CHAINSERVE_OTEL=true needs the OTLP exporter ({exc.name} is "
            f"missing): {INSTALL}"
        ) from None
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win; without them the service is ours.
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER
    # The exporter reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT/HEADERS/TIMEOUT itself.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


_prepared: weakref.WeakSet[Any] = weakref.WeakSet()  # providers given our processors


def _add_processors(provider: TracerProvider) -> None:
    """Redaction on every provider we trace into (once: several apps may share it); on
    Lambda, a flush at each request's end."""
    from service.observability.span_processors import FlushAfterRequest, RedactQueries
    from service.settings import on_lambda

    if provider in _prepared:
        return
    _prepared.add(provider)
    provider.add_span_processor(RedactQueries())
    if on_lambda():
        provider.add_span_processor(FlushAfterRequest(provider))


class Tracing:
    """The run observer: a run's span and its model calls' spans, made when the run ended."""

    def __init__(self, tracer: Tracer, log_prompts: bool) -> None:
        self.tracer = tracer
        self.log_prompts = log_prompts

    def record(self, run: EndedRun) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, StatusCode

        info = run.info
        if info is None:  # a batch that failed before any input ran: the request's span says so
            return
        end_ns = info.wall_ns(info.ended or time.perf_counter())
        streamed = info.stream
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.workflow.name": run.chain.name,
            "gen_ai.request.model": run.chain.model_id,
            "chainserve.chain": run.chain.name,
            "chainserve.run_id": info.run_id,
            "chainserve.request_id": run.request_id,
            "chainserve.route": run.route,
            "chainserve.outcome": run.outcome,
            **_usage(info.usage),
        }
        if info.model:
            attributes["gen_ai.response.model"] = info.model
        if info.fallback_from:
            attributes["chainserve.fallback_from"] = list(info.fallback_from)
        if info.stop_reason:
            attributes["gen_ai.response.finish_reasons"] = [info.stop_reason]
        if info.first_output is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = info.first_output - info.started
        if run.error is not None:
            attributes["error.type"] = run.error.code
            attributes["http.response.status_code"] = run.error.status
        span = self.tracer.start_span(
            f"invoke_workflow {run.chain.name}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=info.started_ns,
        )
        if run.error is not None:
            span.set_status(StatusCode.ERROR, run.error.code)
        under = trace.set_span_in_context(span)
        first_ns = info.wall_ns(info.first_output) if info.first_output is not None else None
        for call in info.collector.calls:
            self._model_call(call, under, end_ns, streamed, first_ns)
        span.end(end_time=end_ns)

    def _model_call(
        self,
        call: ModelCall,
        parent: Context,
        run_end_ns: int,
        streamed: bool,
        first_ns: int | None,
    ) -> None:
        from opentelemetry.trace import SpanKind, StatusCode

        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "aws.bedrock",
            "gen_ai.request.model": call.model,
            "gen_ai.request.stream": streamed,
        }
        if (temperature := call.params.get("temperature")) is not None:
            attributes["gen_ai.request.temperature"] = float(temperature)
        if (max_tokens := call.params.get("max_tokens")) is not None:
            attributes["gen_ai.request.max_tokens"] = int(max_tokens)
        if call.error is None:
            attributes["gen_ai.response.model"] = call.model
            attributes |= _usage(call.usage)
            if call.stop_reason:
                attributes["gen_ai.response.finish_reasons"] = [call.stop_reason]
            if streamed and first_ns is not None and first_ns >= call.started_ns:
                attributes["gen_ai.response.time_to_first_chunk"] = (
                    first_ns - call.started_ns
                ) / 1e9
        else:
            attributes["error.type"] = _error_type(call.error)
        if self.log_prompts:  # opt-in: CHAINSERVE_LOG_PROMPTS=true
            from service.observability.prompts import prompt_messages, reply_messages

            attributes["gen_ai.input.messages"] = json.dumps(
                prompt_messages(call), ensure_ascii=False
            )
            if call.reply is not None:
                attributes["gen_ai.output.messages"] = json.dumps(
                    reply_messages(call), ensure_ascii=False
                )
        span = self.tracer.start_span(
            f"chat {call.model}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=call.started_ns,
        )
        if call.error is not None:
            span.set_status(StatusCode.ERROR, attributes["error.type"])
        # A call cut short (the client went away) has no end of its own: the run's.
        span.end(end_time=min(call.ended_ns or run_end_ns, max(run_end_ns, call.started_ns)))


def _usage(usage: Any) -> dict[str, int]:
    counts = {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
    }
    if usage.cache_read_tokens or usage.cache_write_tokens:
        counts["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
        counts["gen_ai.usage.cache_write.input_tokens"] = usage.cache_write_tokens
    return counts


def _error_type(error: BaseException) -> str:
    """Low-cardinality, secret-free: botocore's error code (``ThrottlingException``) when it
    has one, else the exception's class name — never its message."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code:
            return code
    return type(error).__name__
