"""``/docs``: Swagger UI, served from files installed with chainserve.

Swagger UI's bundle and stylesheet come from the ``fastapi-offline`` package (its ``static/``
folder holds swagger-ui-dist's files); the page and its small start-up script are ours.
Nothing is fetched from a CDN, so the page works offline and under a Content-Security-Policy
that allows this origin only: no inline script or style, no other host (``img-src data:``
for the icons inlined in Swagger UI's stylesheet).

There is no ``/redoc``: ReDoc needs inline styles and a ``blob:`` worker, and loads its logo
from cdn.redoc.ly whatever its options; Swagger UI shows the same document and runs it.

The page, its assets and ``/openapi.json`` need no API key (:data:`PATHS` is exempt in
:mod:`service.auth`): the document holds chain names, descriptions, input schemas and each
chain's first test's inputs (as examples) — no prompts, model ids or run data — and Swagger UI's
"Authorize" sends the key with every "Try it out".
``CHAINSERVE_DOCS=false`` turns them off (404).
"""

import hashlib
import html
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service import playground

DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"

# Our name → (the file in fastapi_offline/static, or None for ours below; media type).
_JS = "text/javascript; charset=utf-8"
_ASSETS: dict[str, tuple[str | None, str]] = {
    "swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", _JS),
    "swagger-init.js": (None, _JS),
    "favicon.svg": (None, "image/svg+xml"),
}
PATHS = frozenset(
    {DOCS_PATH, f"{DOCS_PATH}/", OPENAPI_PATH} | {f"{DOCS_PATH}/{name}" for name in _ASSETS}
)

# The page reads the document's URL from its own markup (``data-openapi``), so the script
# is a static file and the CSP needs no inline script. validatorUrl null: Swagger UI would
# otherwise send the document to validator.swagger.io for a badge. persistAuthorization
# false: a key typed into "Authorize" stays in the page's memory, never in localStorage.
_SWAGGER_INIT = """\
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false,
  displayRequestDuration: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""
_OURS = {"swagger-init.js": _SWAGGER_INIT, "favicon.svg": playground.ICON}

_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{root}/docs/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{root}/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{root}{openapi}"></div>
<script src="{root}/docs/swagger-ui-bundle.js"></script>
<script src="{root}/docs/swagger-init.js"></script>
</body>
</html>
"""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> Response:
    # root_path: behind a proxy that mounts the app under a prefix, the URLs keep it.
    root = html.escape(request.scope.get("root_path", "").rstrip("/"))
    page = _PAGE.format(
        title=html.escape(f"{request.app.title} — API"), root=root, openapi=OPENAPI_PATH
    )
    headers = {**_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    return Response(page, media_type="text/html; charset=utf-8", headers=headers)


@cache
def _asset(name: str) -> tuple[bytes, str]:
    """The file's bytes and its ETag; read on first request, so start-up reads none of it."""
    source, _ = _ASSETS[name]
    if source is None:
        content = _OURS[name].encode()
    else:
        content = resources.files("fastapi_offline").joinpath("static", source).read_bytes()
    return content, f'"{hashlib.sha256(content).hexdigest()[:32]}"'


def _asset_route(name: str, media_type: str) -> None:
    async def asset(request: Request) -> Response:
        content, etag = _asset(name)
        # The bundles are 1–2 MB: a browser that has this version revalidates for a 304.
        headers = {**_HEADERS, "ETag": etag, "Cache-Control": "no-cache"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(content, media_type=media_type, headers=headers)

    router.add_api_route(f"{DOCS_PATH}/{name}", asset, methods=["GET"], name=f"docs-{name}")


for _name, (_, _media_type) in _ASSETS.items():
    _asset_route(_name, _media_type)
