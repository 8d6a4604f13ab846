"""API-key authentication, for a Lambda Function URL with ``AuthType: NONE``.

Keys come from ``CHAINSERVE_API_KEYS``, or from an SSM Parameter Store parameter or a Secrets
Manager secret named in the settings, resolved once at start-up and kept in memory. A request
sends one as ``x-api-key: KEY`` or ``Authorization: Bearer KEY``; every route but the health
check, the playground page and the API docs (:data:`EXEMPT_PATHS`) needs it. Keys are compared in constant
time and never logged; surrounding whitespace in a header is ignored. Keys belong in headers:
query parameters named like keys are redacted in uvicorn's access log all the same.

A browser's ``EventSource`` cannot send a header: ``GET /chains/{name}/stream`` is let in
without one when its URL was signed with a key (service/signed_urls.py).
"""

import hmac
import json
import logging
import re
import time
from typing import Any
from urllib.parse import unquote_plus

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from service import playground, signed_urls
from service.middleware import send_error
from service.protocols import docs
from service.runs.errors import ApiError
from service.settings import Settings

# The playground page and its assets hold no data; its data calls send the key.
EXEMPT_PATHS = frozenset({"/healthz", *playground.PATHS, *docs.PATHS})  # docs: why, in docs.py


class ApiKeysUnavailable(RuntimeError):
    """The configured key store could not be read: the service must not start open."""


def load_keys(settings: Settings) -> list[SecretStr]:
    """Every configured key; reads SSM / Secrets Manager when their names are set."""
    keys = list(settings.api_keys)
    if name := settings.api_keys_ssm_parameter:
        value = _read("ssm", name, lambda c: c.get_parameter(Name=name, WithDecryption=True))
        keys += _split(value["Parameter"]["Value"], f"ssm {name!r}")
    if name := settings.api_keys_secret_id:
        value = _read("secretsmanager", name, lambda c: c.get_secret_value(SecretId=name))
        keys += _split(value.get("SecretString", ""), f"secretsmanager {name!r}")
    return keys


def _read(service: str, name: str, call: Any) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call(boto3.client(service))
    except (BotoCoreError, ClientError) as exc:
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        raise ApiKeysUnavailable(f"cannot read API keys from {service} {name!r}: {code}") from None


def _split(value: str, source: str) -> list[SecretStr]:
    """Keys stored as a JSON list of strings, or as text separated by commas or newlines.

    Anything else is refused, never guessed at: a JSON object's field names, or ``null``,
    must not become keys. A store that holds no key stops start-up: the service would run open.
    """
    keys: Any
    if value.lstrip().startswith(("[", "{")):
        try:
            keys = json.loads(value)
        except json.JSONDecodeError:
            keys = None
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise ApiKeysUnavailable(
                f"API keys in {source} must be a JSON list of strings, or text with one key "
                "per line or comma"
            )
    else:
        keys = value.replace("\n", ",").split(",")
    found = [SecretStr(key.strip()) for key in keys if key.strip()]
    if not found:
        raise ApiKeysUnavailable(f"{source} holds no API key: refusing to start without one")
    return found


class ApiKeyAuth:
    """Refuses requests without a valid key with 401; lets the health check through, and
    signed stream URLs (judged by their signature alone: 403 if altered, 401 if expired)."""

    def __init__(
        self, app: ASGIApp, keys: list[SecretStr], exempt: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self._exempt = EXEMPT_PATHS | exempt  # and /metrics with CHAINSERVE_METRICS_PUBLIC
        self._keys = [key.get_secret_value().encode() for key in keys]
        self._signing_keys = [signed_urls.signing_key(key) for key in self._keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self.app(scope, receive, send)
            return
        if signed_urls.is_signed(scope["query_string"]):
            try:
                query = signed_urls.verify(
                    scope["method"],
                    scope["path"],
                    scope["query_string"],
                    self._signing_keys,
                    time.time(),
                )
            except ApiError as refused:
                await send_error(scope, send, refused)
                return
            # The route sees only the chain's inputs; uvicorn's access log keeps the original
            # scope (the signature redacted there).
            await self.app({**scope, "query_string": query}, receive, send)
            return
        matched = self._matched(scope)
        if matched is None:
            error = ApiError(
                401,
                "missing or invalid API key; send it as 'x-api-key: KEY' or "
                "'Authorization: Bearer KEY'",
                code="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="chainserve"'},
            )
            await send_error(scope, send, error)
            return
        # POST /chains/{name}/stream-url signs with the caller's own key: revoking it revokes them.
        state = scope.setdefault("state", {})
        state[signed_urls.SIGNING_KEY_STATE] = self._signing_keys[matched]
        await self.app(scope, receive, send)

    def _matched(self, scope: Scope) -> int | None:
        """The index of the key the request presents, if it is one of ours."""
        given = _presented_key(scope)
        # Compare with every key, always: the time taken says nothing about which matched.
        matches = [hmac.compare_digest(given, key) for key in self._keys]
        return matches.index(True) if given and any(matches) else None


def _presented_key(scope: Scope) -> bytes:
    # Stripped alike in both headers: servers differ on trimming a header value's spaces.
    headers = dict(scope["headers"])
    if key := headers.get(b"x-api-key", b"").strip():
        return bytes(key)
    scheme, _, token = headers.get(b"authorization", b"").strip().partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" else b""


# Query parameter names that may carry a credential: api_key, apikey, token, access_token …
_SECRET_NAME = re.compile(r"key|token|secret|passw|auth|signature|credential", re.IGNORECASE)


def redact_query_keys(record: logging.LogRecord) -> bool:
    """A filter for ``uvicorn.access``: its line's path (the third argument) with the values
    of key-like query parameters replaced by ``REDACTED``."""
    args = record.args
    if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
        record.args = (*args[:2], redact_query(args[2]), *args[3:])
    return True


def redact_query(target: str) -> str:
    """``/x?api_key=sk-1&text=a`` → ``/x?api_key=REDACTED&text=a``."""
    path, _, query = target.partition("?")
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(
            f"{name}=REDACTED" if equals and _SECRET_NAME.search(unquote_plus(name)) else part
        )
    return f"{path}?{'&'.join(parts)}"
