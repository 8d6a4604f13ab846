"""The one place that maps failures to HTTP statuses and client-safe messages.

Every route raises or hands its failures here: :func:`classify` turns an exception from a
chain run (botocore, langchain-aws, anything else) into an :class:`ApiError`, and the app
renders an ``ApiError`` the same way everywhere — as a JSON body before the first byte, or
in-band (SSE ``error`` event, text ``[error]`` line) after it. Details of unexpected errors
go to the log under the request id, never to the client.
"""

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

log = logging.getLogger("chainserve")

_ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")


class ApiError(Exception):
    """A failure with the status, message and headers the client gets."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.errors = errors
        self.headers = headers or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        """The JSON error body; ``status_code`` and ``message`` as LangServe's clients read."""
        body: dict[str, Any] = {"status_code": self.status, "code": self.code}
        body["message"] = self.message
        if self.errors:
            body["errors"] = self.errors
        if request_id:
            body["request_id"] = request_id
        return body


def chain_not_found(name: str, known: list[str]) -> ApiError:
    listing = ", ".join(known) if known else "none are loaded"
    return ApiError(404, f"no chain named {name!r}; chains: {listing}", code="chain_not_found")


def invalid_input(exc: ValidationError, prefix: str = "") -> ApiError:
    """422 naming every bad field, with how to fix it."""
    errors = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in (*([prefix] if prefix else []), *error["loc"]))
        errors.append({"field": field or "body", "message": _fix(error)})
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return ApiError(422, summary, code="invalid_input", errors=errors)


def bad_request(field: str, message: str, status: int = 422) -> ApiError:
    return ApiError(
        status,
        f"{field}: {message}",
        code="invalid_input" if status == 422 else "bad_request",
        errors=[{"field": field, "message": message}],
    )


def unsupported_media_type(given: str) -> ApiError:
    """415: a POST body that does not say it is JSON.

    Browsers send ``text/plain``, form and ``multipart`` bodies cross-site without asking
    (no CORS preflight), so parsing them as JSON would let any web page start chains.
    """
    said = f"got {given!r}" if given else "got none"
    message = f"send the body as JSON with 'Content-Type: application/json' ({said})"
    return ApiError(
        415,
        f"content-type: {message}",
        code="unsupported_media_type",
        errors=[{"field": "content-type", "message": message}],
    )


def method_not_allowed(method: str, allowed: list[str]) -> ApiError:
    listing = ", ".join(allowed)
    return ApiError(
        405,
        f"method {method} is not allowed on this path; use {listing}",
        code="method_not_allowed",
        headers={"Allow": listing},
    )


def cors_refused(problems: dict[str, str], headers: dict[str, str]) -> ApiError:
    """400 for a CORS preflight the settings do not allow; ``problems``: header → why."""
    return ApiError(
        400,
        "CORS preflight refused: " + "; ".join(problems.values()),
        code="cors_refused",
        errors=[{"field": name, "message": why} for name, why in problems.items()],
        headers=headers,
    )


def client_gone() -> ApiError:
    """The client closed the connection while sending its body: nobody reads the answer."""
    return ApiError(400, "the client went away during the upload", code="client_disconnected")


def _fix(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        return "required; add it"
    if kind == "extra_forbidden":
        return "unknown field; remove it"
    if kind == "string_too_long":
        return f"too long; at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"too many items; at most {ctx.get('max_length')}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "json_invalid":
        return f"the body is not valid JSON ({ctx.get('error', 'parse error')})"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def classify(exc: BaseException, *, model_id: str, retry_after: int) -> ApiError:
    """The client-facing form of a failure while running a chain on ``model_id``."""
    if isinstance(exc, ApiError):
        return exc
    for cause in _causes(exc):
        mapped = _classify_one(cause, model_id, retry_after)
        if mapped is not None:
            return mapped
    return unexpected()


def unexpected() -> ApiError:
    return ApiError(
        500,
        "internal error; the server log has the details under this request id",
        code="internal_error",
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: langchain-aws sometimes re-raises Bedrock errors."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify_one(exc: BaseException, model: str, retry_after: int) -> ApiError | None:
    from botocore import exceptions as boto
    from botocore.eventstream import ParserError
    from urllib3.exceptions import ProtocolError, ReadTimeoutError

    from service.chains.structured import GuardrailIntervened, OutputNotConforming

    # botocore wraps timeouts until the response starts; reads of a stream raise urllib3's.
    timeouts = (boto.ReadTimeoutError, boto.ConnectTimeoutError, ReadTimeoutError, TimeoutError)

    name = type(exc).__name__
    if name == "BedrockContextOverflowError":
        return ApiError(
            422,
            f"input: too long for the context window of model {model}; shorten it",
            code="input_too_long",
            errors=[{"field": "input", "message": "too long for the model's context window"}],
        )
    if isinstance(exc, boto.ClientError):
        return _from_bedrock(exc, model, retry_after)
    if isinstance(exc, OutputNotConforming):  # says where, never the reply (user data)
        return ApiError(
            502,
            f"the reply of model {model} does not conform to the chain's output schema: {exc}",
            code="output_not_conforming",
        )
    if isinstance(exc, GuardrailIntervened):
        # 422, not 502: nothing failed and a retry gets the same answer — the chain's guardrail
        # refused this content (the input, or the reply it led to), so what the client can do
        # is change the input. Plain-text chains pass the guardrail's message on as the reply;
        # a structured chain has no object to return. The guardrail's text is not quoted: a
        # masking guardrail's reply may hold user data.
        return ApiError(
            422,
            f"input: the guardrail of model {model} intervened (it blocked the input or the "
            "reply), so there is no object; change the input",
            code="guardrail_intervened",
            errors=[{"field": "input", "message": f"blocked by the guardrail of model {model}"}],
        )
    if isinstance(exc, timeouts):
        return ApiError(504, f"model {model} did not answer in time", code="model_timeout")
    if isinstance(exc, boto.EndpointConnectionError):
        return ApiError(502, f"cannot reach Bedrock for model {model}", code="bedrock_unreachable")
    if isinstance(exc, ParserError):  # a frame failed its CRC or length checks
        return ApiError(
            502,
            f"Bedrock sent a corrupt event stream for model {model}",
            code="bedrock_stream_corrupt",
        )
    if isinstance(exc, boto.HTTPClientError | boto.ConnectionError | boto.ResponseStreamingError):
        return ApiError(
            502, f"the connection to Bedrock failed for model {model}", code="bedrock_connection"
        )
    credentials = (
        boto.NoCredentialsError,
        boto.PartialCredentialsError,
        boto.CredentialRetrievalError,
    )
    if isinstance(exc, credentials):
        return ApiError(
            502,
            f"no AWS credentials to call model {model}; configure the AWS environment",
            code="bedrock_credentials",
        )
    if isinstance(exc, ProtocolError) or (
        isinstance(exc, ConnectionError) and "Bedrock" in str(exc)
    ):
        return ApiError(502, f"model {model}: {exc}", code="bedrock_stream_broken")
    return None


def _from_bedrock(exc: Any, model: str, retry_after: int) -> ApiError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    cause = _redact(str(error.get("Message") or exc))
    key = code.lower().removesuffix("exception")
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    wait = {"Retry-After": str(headers.get("retry-after", retry_after))}
    if key in ("throttling", "toomanyrequests", "servicequotaexceeded"):
        return ApiError(
            429, f"Bedrock is throttling model {model}: {cause}", code="throttled", headers=wait
        )
    if key in ("serviceunavailable", "modelnotready"):
        return ApiError(
            503, f"model {model} is unavailable: {cause}", code="model_unavailable", headers=wait
        )
    if key == "modeltimeout":
        return ApiError(504, f"model {model} timed out: {cause}", code="model_timeout")
    if key in ("accessdenied", "unrecognizedclient", "expiredtoken", "invalidsignature"):
        return ApiError(
            502,
            f"Bedrock denied access to model {model} ({code}): {cause} — check that the model is "
            "enabled in this account and region and that the role may invoke it",
            code="model_access_denied",
        )
    if key == "validation" and "model identifier is invalid" not in cause:
        # Bedrock refused what it was sent: a conversation that starts with the assistant, an
        # empty message … — the input (or the chain's settings for it) does not suit the model.
        return ApiError(
            422,
            f"input: model {model} refused the request: {cause} — change the input (or, if "
            "every input fails, the chain file's model settings)",
            code="model_rejected_input",
            errors=[{"field": "input", "message": f"refused by model {model}: {cause}"}],
        )
    if key == "resourcenotfound" or "model identifier is invalid" in cause:
        return ApiError(
            502,
            f"model {model} was not found ({code}): {cause} — check model.id and model.region",
            code="model_not_found",
        )
    return ApiError(
        502, f"Bedrock failed for model {model} ({code}): {cause}", code="bedrock_error"
    )


def _redact(message: str) -> str:
    """Client-bound messages keep no AWS account ids (they name roles in AccessDenied)."""
    return _ACCOUNT_ID.sub("************", message)


def describe(
    exc: BaseException,
    *,
    model_id: str,
    retry_after: int,
    context: str,
    fields: Mapping[str, Any] | None = None,
) -> ApiError:
    """:func:`classify`, and log it: a warning for known failures, a traceback otherwise;
    ``fields`` and the status go on the record (JSON logs: ``service/observability/logs.py``)."""
    error = classify(exc, model_id=model_id, retry_after=retry_after)
    extra = {**(fields or {}), "status": error.status}
    if error.code == "internal_error":
        log.error("unexpected failure %s", context, exc_info=exc, extra=extra)
    else:
        log.warning(
            "%s status=%d code=%s: %s",
            context,
            error.status,
            error.code,
            error.message,
            extra=extra,
        )
    return error
