"""The span processors tracing adds to the provider it traces into (service/observability/
tracing.py): query redaction, and on Lambda a flush at each request's end. Imports the SDK:
imported only when ``CHAINSERVE_OTEL=true``."""

import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind

# Attributes whose value may hold a URL's query: FastAPI's own, and the older HTTP conventions
# an OpenTelemetry ASGI instrumentation (opentelemetry-instrument) writes.
QUERY_ATTRIBUTES = ("url.query", "url.full", "http.target", "http.url")
REDACTED = "REDACTED"
# On Lambda, how long a request's end waits (on a thread, never the client) for its spans to
# reach the collector extension before the environment may be frozen.
LAMBDA_FLUSH_MILLIS = 2000


class RedactQueries(SpanProcessor):
    """Every query value of a span's URL attributes becomes ``REDACTED`` as the span starts
    (before any exporter sees it). FastAPI redacts only AWS-style signature parameters; ours
    carry prompt text (signed stream URLs) and may carry an API key."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = span.attributes or {}
        for name in QUERY_ATTRIBUTES:
            value = attributes.get(name)
            if isinstance(value, str) and value:
                span.set_attribute(name, redact(value, whole=name == "url.query"))


def redact(value: str, whole: bool) -> str:
    """``value``'s query (all of it when ``whole``) with each parameter's value redacted and
    its name kept (``a=REDACTED&b=REDACTED``); the rest of a URL unchanged."""
    if whole:
        return _redact_query(value)
    head, mark, query = value.partition("?")
    return f"{head}?{_redact_query(query)}" if mark else value


def _redact_query(query: str) -> str:
    # A part without "=" is all value (``?sk-…``): nothing of it is kept.
    return "&".join(
        f"{part.partition('=')[0]}={REDACTED}" if "=" in part else REDACTED
        for part in query.split("&")
        if part
    )


class FlushAfterRequest(SpanProcessor):
    """Lambda freezes the process once the response has gone; spans still buffered then are
    sent at the next invoke (or at shutdown). So when a request's SERVER span ends, export at
    once — on a thread: the client is never held. It usually finishes before the freeze (the
    collector is on localhost); when it does not, it completes after the thaw."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is SpanKind.SERVER:
            threading.Thread(
                target=self._provider.force_flush, args=(LAMBDA_FLUSH_MILLIS,), daemon=True
            ).start()
