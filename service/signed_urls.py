"""Signed stream URLs: ``GET /chains/{name}/stream`` for a browser's ``EventSource``, which
cannot send an API key header.

A key holder mints one (``POST /chains/{name}/stream-url``, or ``chainserve sign``): the chain's
stream path, its inputs as the query string that route parses, and two parameters of ours,
``chainserve-expires`` (Unix time, seconds) and ``chainserve-signature``. Their names hold a
hyphen, so no input can be named like them (input names are Python identifiers).

The signature is HMAC-SHA256 under a key derived from one API key,
``HMAC(api_key, "chainserve stream-url v1")``: the API key itself is never in a URL, nor can it
be worked out from one. It covers the method, the path (so the chain), every query parameter
and the expiry. The API-key middleware (service/auth.py) checks it against every configured
key, so removing a key from the store revokes the URLs signed with it.
"""

import base64
import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode

from service.runs.errors import ApiError

EXPIRES = "chainserve-expires"
SIGNATURE = "chainserve-signature"
PARAMETERS = frozenset({EXPIRES, SIGNATURE})

# Where the API-key middleware leaves the signing key of the key a request was let in with.
SIGNING_KEY_STATE = "stream_url_signing_key"

_PURPOSE = b"chainserve stream-url v1"
_STREAM_PATH = re.compile(r"^/chains/([^/]+)/stream$")
_EXPIRY = re.compile(r"^[0-9]{1,12}$")


def signing_key(api_key: bytes) -> bytes:
    """The key that signs URLs for ``api_key``: a URL never shows the API key itself."""
    return hmac.new(api_key, _PURPOSE, hashlib.sha256).digest()


def stream_path(chain: str) -> str:
    return f"/chains/{quote(chain, safe='')}/stream"


def unsigned(chain: str, inputs: list[tuple[str, str]]) -> str:
    """The path and query of ``GET /chains/{chain}/stream`` for ``inputs``, as is."""
    query = urlencode(inputs, quote_via=quote)
    return stream_path(chain) + (f"?{query}" if query else "")


def sign(chain: str, inputs: list[tuple[str, str]], key: bytes, expires: int) -> str:
    """The signed path and query of ``GET /chains/{chain}/stream`` for ``inputs`` (name, text
    as that route parses it), good until the Unix time ``expires``."""
    pairs = [*inputs, (EXPIRES, str(expires))]
    signature = _signature(key, f"/chains/{chain}/stream", pairs)
    return unsigned(chain, [*pairs, (SIGNATURE, signature)])


def expiry(now: float, seconds: int) -> int:
    """The expiry of a URL minted at ``now`` for ``seconds``: at least that long, whole seconds."""
    return math.ceil(now + seconds)


def iso(expires: int) -> str:
    """``1767225600`` → ``2026-01-01T00:00:00Z``."""
    return datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z")


def query_value(value: Any) -> str:
    """An input's JSON value as the query text ``GET …/stream`` parses back to the same value:
    strings as they are, ``true``/``false``, numbers, and messages as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 2.0 was taken as the integer 2
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def is_signed(query_string: bytes) -> bool:
    """Whether a request's query names one of our parameters: then only its signature counts."""
    return any(name in PARAMETERS for name, _ in _pairs(query_string))


def verify(
    method: str, path: str, query_string: bytes, signing_keys: Iterable[bytes], now: float
) -> bytes:
    """The query string without our parameters, if this is a signed URL, unaltered and not yet
    expired; otherwise :class:`ApiError` 403 (not good for this request) or 401 (expired)."""
    route = _STREAM_PATH.match(path)
    if method != "GET" or route is None:
        raise _refused(
            "a signed URL is good only for GET /chains/{name}/stream; other routes need an API "
            "key ('x-api-key: KEY' or 'Authorization: Bearer KEY')"
        )
    mint = f"mint a new one (POST /chains/{route[1]}/stream-url, or chainserve sign)"
    pairs = _pairs(query_string)
    given = [value for name, value in pairs if name == SIGNATURE]
    expiries = [value for name, value in pairs if name == EXPIRES]
    if len(given) != 1 or len(expiries) != 1 or not _EXPIRY.match(expiries[0]):
        raise _refused(
            f"a signed URL has one {EXPIRES} (Unix seconds) and one {SIGNATURE}; this one is "
            f"incomplete or altered; {mint}"
        )
    signed = [(name, value) for name, value in pairs if name != SIGNATURE]
    presented = given[0].encode()
    # Compare with every key, always: the time taken says nothing about which matched.
    matches = [
        hmac.compare_digest(presented, _signature(key, path, signed).encode())
        for key in signing_keys
    ]
    if not any(matches):
        raise _refused(
            "the signature does not match this URL: its chain, an input or its expiry was "
            f"changed after signing, or the key that signed it is no longer valid; {mint}"
        )
    expires = int(expiries[0])
    if now >= expires:
        raise ApiError(
            401,
            f"this signed URL expired at {iso(expires)} ({math.ceil(now - expires)} s ago); {mint}",
            code="signed_url_expired",
            headers={"WWW-Authenticate": 'Bearer realm="chainserve"'},
        )
    return _without_ours(query_string)


def _signature(key: bytes, path: str, pairs: list[tuple[str, str]]) -> str:
    # JSON of the parts: no separator a name or value could forge. Sorted: the order of
    # parameters means nothing to the route (a name given twice is refused there).
    message = json.dumps(["GET", path, sorted(pairs)]).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _pairs(query_string: bytes) -> list[tuple[str, str]]:
    # Decoded as Starlette decodes it for the route, so both see the same names and values.
    return parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)


def _without_ours(query_string: bytes) -> bytes:
    """The query with our parameters removed; every other part byte for byte as sent."""
    kept = [
        part
        for part in query_string.split(b"&")
        if unquote_plus(part.partition(b"=")[0].decode("latin-1")) not in PARAMETERS
    ]
    return b"&".join(kept)


def _refused(message: str) -> ApiError:
    return ApiError(403, message, code="signed_url_invalid")
