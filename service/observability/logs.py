"""Log lines as JSON objects, one a line (``CHAINSERVE_LOG_FORMAT=json``, the default on Lambda).

A stdlib :class:`logging.Formatter`, no dependency. Only the keys named in :data:`FIELDS` leave
a record's ``extra=``: whatever else a caller passes (a prompt, a header) is never written.
Lambda's log-level filter reads the ``level`` and RFC 3339 ``timestamp`` keys, hence the names.
"""

import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The request's own fields (request_id, lambda_request_id), set by the request middleware, so
# every line logged while it is served carries them; and a run's, around a failure's line.
context_fields: ContextVar[dict[str, Any]] = ContextVar("log_fields", default={})  # noqa: B039

FIELDS = (
    "request_id",
    "lambda_request_id",
    "run_id",
    "chain",
    "route",
    "model",
    "status",
    "code",
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "stop_reason",
    "fallback_from",
    "method",
    "path",
    "prompt",  # these two only with CHAINSERVE_LOG_PROMPTS=true (service/protocols/running.py)
    "reply",
)

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonLines(logging.Formatter):
    """``{"timestamp", "level", "logger", "message", …fields}``; a traceback as ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context_fields.get(),
        }
        if record.name == "uvicorn.access":
            out |= _access_fields(record)
        given = record.__dict__
        for key in FIELDS:
            if given.get(key) is not None:
                out[key] = given[key]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str)


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line as fields, its message without the query string: a signed stream
    URL's query holds the chain's inputs (prompt text). uvicorn's arguments are (client, method,
    path, version, status)."""
    args = record.args
    if not (isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str)):
        return {}
    path = args[2].partition("?")[0]
    return {
        "message": str(record.msg) % (*args[:2], path, *args[3:]),
        "method": args[1],
        "path": path,
        "status": args[4],
    }


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonLines()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def use_json_for_uvicorn() -> None:
    """uvicorn's own lines (errors, the access log) in JSON too, when uvicorn set its handlers
    up before the app was made (``uvicorn service.app:app``)."""
    for name in UVICORN_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(JsonLines())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's ``log_config`` for JSON lines: its loggers as uvicorn sets them up (errors to
    stderr, the access log to stdout), each line through :class:`JsonLines`."""
    json_lines = {"()": f"{__name__}.JsonLines"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": json_lines},
        "handlers": {
            "default": {
                "formatter": "json",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "formatter": "json",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


@contextlib.contextmanager
def fields(**values: Any) -> Iterator[None]:
    """Add ``values`` to every line logged in this context (None values are left out)."""
    token = context_fields.set(
        {**context_fields.get(), **{k: v for k, v in values.items() if v is not None}}
    )
    try:
        yield
    finally:
        context_fields.reset(token)


def lambda_request_id(raw: bytes) -> str | None:
    """The invoke's request id from the Lambda Web Adapter's ``x-amzn-lambda-context`` header
    (the JSON of the runtime's context). Read only on Lambda: elsewhere any client could send it,
    and there the adapter replaces whatever a client sent."""
    if not raw:
        return None
    try:
        found = json.loads(raw).get("request_id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) and found else None
