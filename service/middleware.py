"""Request ids, and the last line of defence: an unexpected exception becomes a clean 500;
CORS, with refused preflights answered in the service's own error body.

Pure ASGI (no ``BaseHTTPMiddleware``), so streamed responses pass through untouched.
"""

import json
import logging
import re
import uuid

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability import logs
from service.protocols.openai import error_body_for
from service.runs.errors import ApiError, cors_refused, unexpected
from service.settings import on_lambda

log = logging.getLogger("chainserve")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class RequestContext:
    """Gives each request an id (``X-Request-Id``, echoed or made) for logs and error bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.on_lambda = on_lambda()  # only there is x-amzn-lambda-context the adapter's own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        lambda_id = None
        if self.on_lambda:
            lambda_id = logs.lambda_request_id(headers.get(b"x-amzn-lambda-context", b""))
            scope["state"]["lambda_request_id"] = lambda_id
        # Every line logged while serving this request carries its ids (JSON logs).
        log_fields = logs.context_fields.set(
            {"request_id": request_id, "lambda_request_id": lambda_id}
            if lambda_id
            else {"request_id": request_id}
        )
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected failure request_id=%s path=%s", request_id, scope.get("path"))
            if started:
                raise
            await send_error(scope, send_with_id, unexpected())
        finally:
            logs.context_fields.reset(log_fields)


async def send_error(scope: Scope, send: Send, error: ApiError) -> None:
    """Send ``error`` as the JSON error body, from ASGI middleware (no app to raise into)."""
    raw = json.dumps(error_body_for(scope, error)).encode()  # OpenAI's shape under /v1/
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class Cors(CORSMiddleware):
    """Starlette's CORS middleware; a preflight it refuses gets the JSON error body, naming
    what was refused, instead of Starlette's plain-text line."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ").split(", ")
        origin = request_headers.get("origin", "")
        method = request_headers.get("access-control-request-method", "")
        why = {
            "origin": (
                "origin",
                f"origin {origin!r} is not allowed; the server's CHAINSERVE_CORS_ORIGINS lists "
                "the origins that are",
            ),
            "method": (
                "access-control-request-method",
                f"method {method!r} is not allowed; use {' or '.join(self.allow_methods)}",
            ),
            "headers": (
                "access-control-request-headers",
                "these request headers are not allowed",
            ),
            "private-network": (
                "access-control-request-private-network",
                "private network access is not allowed",
            ),
        }
        problems = dict(why[item] for item in refused if item in why)
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return _ErrorResponse(cors_refused(problems, headers))


class _ErrorResponse(Response):
    """An :class:`ApiError` as a response, rendered with the request's id."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(status_code=error.status)
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_error(scope, send, self.error)
