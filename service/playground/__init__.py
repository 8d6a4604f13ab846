"""The playground: one page for prompt engineers to run chains, served by the app itself.

``GET /playground`` (``?chain=NAME`` opens one chain) and its assets (the stylesheet and the
JavaScript modules), all from this package: no CDN, no build step, nothing fetched from
elsewhere. The page and its assets hold no data, so they need no API key (:data:`PATHS` is
exempt in :mod:`service.auth`); every data call the page makes sends the key the user typed.
The Content-Security-Policy allows only this origin: no inline script or style, no other hosts.
"""

import re
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

# Suffix → media type (ES modules need a JavaScript type, browsers check it).
_MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.css|\.js)")  # not editor droppings


def _assets() -> dict[str, str]:
    """Every stylesheet and module here → its media type, listed once at import. Each gets a
    fixed route of its own, so a request can only ever name one of these files."""
    names = sorted(
        entry.name for entry in resources.files(__package__).iterdir() if entry.is_file()
    )
    return {
        name: _MEDIA_TYPES[match[1]] for name in names if (match := _ASSET_NAME.fullmatch(name))
    }


_ASSETS = _assets()
PAGE_PATH = "/playground"
ICON = (  # chainserve's favicon (the docs page uses it too)
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="4" fill="#2f5fd0"/>'
    '<path d="M4 5h8M4 8h6M4 11h4" stroke="#fff" stroke-width="1.6" stroke-linecap="round"/></svg>'
)
PATHS = frozenset(
    {PAGE_PATH, f"{PAGE_PATH}/", f"{PAGE_PATH}/favicon.svg"}
    | {f"{PAGE_PATH}/{name}" for name in _ASSETS}
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' blob:; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _file(name: str, media_type: str) -> Response:
    content = resources.files(__package__).joinpath(name).read_bytes()
    return Response(content, media_type=media_type, headers=HEADERS)


@router.get(PAGE_PATH)
async def page() -> Response:
    return _file("index.html", "text/html; charset=utf-8")


@router.get(f"{PAGE_PATH}/favicon.svg")
async def icon() -> Response:
    return Response(ICON, media_type="image/svg+xml", headers=HEADERS)


def _asset_route(name: str, media_type: str) -> None:
    async def asset() -> Response:
        return _file(name, media_type)

    router.add_api_route(f"{PAGE_PATH}/{name}", asset, methods=["GET"], name=name)


for _name, _media_type in _ASSETS.items():
    _asset_route(_name, _media_type)
