"""``POST /chains/{name}/stream-url``: a short-lived signed URL of ``GET /chains/{name}/stream``
for a browser's ``EventSource``, which cannot send an API key (service/signed_urls.py).

The inputs are validated as ``/invoke`` validates them, before anything is signed; the URL
carries them as the query string the GET route parses. Without API keys on the server the
URL is the plain one, and the body says so.
"""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from service import signed_urls
from service.chains.inputs import parse_body, whole_number
from service.protocols import running
from service.runs import errors
from service.settings import Settings

router = APIRouter()

DEFAULT_SECONDS = 300


class StreamUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(description="The chain's inputs, as in /invoke's body.")
    expires_in: Annotated[int, Field(ge=1), BeforeValidator(whole_number)] | None = Field(
        None,
        description=f"Seconds the URL stays good: default {DEFAULT_SECONDS}, at most "
        "CHAINSERVE_SIGNED_URL_MAX_SECONDS (3600 unless set).",
    )


@router.post(
    "/chains/{name}/stream-url",
    tags=["chains"],
    summary="A short-lived signed URL of GET /chains/{name}/stream, for a browser's "
    "EventSource (which cannot send an API key)",
)
async def stream_url(request: Request, name: str) -> dict[str, Any]:
    chain = running.catalog(request).get(name)
    settings: Settings = request.app.state.settings
    body = await running.read_body(request)
    given = parse_body(StreamUrlRequest, body)
    chain.inputs.parse_data(given.input, prefix="input")  # 422 naming the field, as /invoke
    seconds = given.expires_in or min(DEFAULT_SECONDS, settings.signed_url_max_seconds)
    if seconds > settings.signed_url_max_seconds:
        raise errors.bad_request(
            "expires_in",
            f"at most {settings.signed_url_max_seconds} seconds on this server "
            "(CHAINSERVE_SIGNED_URL_MAX_SECONDS); mint a new URL when it runs out",
        )
    inputs = [
        (input_name, signed_urls.query_value(value)) for input_name, value in given.input.items()
    ]
    # The URL's query must mean what the body meant: read it back as the GET route will.
    chain.inputs.parse_query(inputs)
    base = str(request.base_url).rstrip("/")

    # Left by the API-key middleware: the signing key of the key this request came with.
    key: bytes | None = request.scope.get("state", {}).get(signed_urls.SIGNING_KEY_STATE)
    if key is None:  # no API keys on this server
        path = signed_urls.unsigned(chain.name, inputs)
        _check_length(path, chain.name, settings)
        return {
            "url": base + path,
            "path": path,
            "expires_at": None,
            "signed": False,
            "message": "this server has no API keys: the URL needs no signature and does not "
            "expire",
        }

    expires = signed_urls.expiry(time.time(), seconds)
    path = signed_urls.sign(chain.name, inputs, key, expires)
    _check_length(path, chain.name, settings)
    return {
        "url": base + path,
        "path": path,
        "expires_at": signed_urls.iso(expires),
        "signed": True,
    }


def _check_length(path: str, chain: str, settings: Settings) -> None:
    """A URL the server would refuse (431: its request head too large) is no use to anyone;
    a quarter of the head is left for the browser's headers."""
    limit = settings.max_header_bytes * 3 // 4
    if len(path) > limit:
        raise errors.bad_request(
            "input",
            f"too long for a URL ({len(path)} bytes with the inputs encoded; at most {limit}); "
            f"send long inputs with POST /chains/{chain}/stream instead",
        )
