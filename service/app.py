"""The app factory: one FastAPI app per :class:`Settings`.

``uvicorn service.app:app`` serves the app made from the environment's settings.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from service import __version__, observability, playground
from service.auth import ApiKeyAuth, load_keys, redact_query_keys
from service.chains.catalog import Catalog
from service.chains.loader import is_chain_file
from service.middleware import Cors, RequestContext
from service.observability import langsmith_setup, logs, tracing
from service.protocols import ai_sdk, docs, langserve, openai, openapi, routes, stream_url
from service.runs import errors
from service.runs.collector import collect_between_runs, freeze_start_up
from service.runs.stream import Workers
from service.settings import Settings

log = logging.getLogger("chainserve")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Load the chains named by ``settings`` and build the app that serves them.

    Raises :class:`service.chains.loader.ChainFileErrors` if a chain file is invalid; with
    ``settings.reload`` (``chainserve dev``) only if the folder is missing: the good files
    serve, and the broken ones are logged and listed at ``/healthz`` until they are fixed.
    """
    settings = settings or Settings()
    _configure_logging(settings)
    langsmith_setup.prepare()  # before any run creates the LangSmith client
    catalog = Catalog(settings)
    catalog.load(keep_going=settings.reload)
    workers = Workers(settings.max_concurrency, settings.retry_after_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(_watch(settings, catalog)) if settings.reload else None
        freeze_start_up()  # again: `chainserve serve` froze before uvicorn started; this covers the rest
        collector = asyncio.create_task(collect_between_runs(lambda: workers.active))
        yield
        collector.cancel()
        if watcher is not None:
            watcher.cancel()
        workers.shutdown()

    app = FastAPI(
        title="chainserve",
        version=__version__,
        description="LangChain chains from YAML files, served as streaming endpoints.",
        lifespan=lifespan,
        # Our own /docs (service/protocols/docs.py): FastAPI's loads from a CDN; no /redoc.
        docs_url=None,
        redoc_url=None,
        # Request spans only with CHAINSERVE_OTEL=true (service/observability/tracing.py).
        telemetry=tracing.fastapi_telemetry(settings),
        openapi_url=docs.OPENAPI_PATH if settings.docs else None,
    )
    app.state.settings = settings
    app.state.catalog = catalog
    app.state.workers = workers
    app.include_router(routes.router)
    app.include_router(langserve.router)
    app.include_router(stream_url.router)
    app.include_router(ai_sdk.router)
    app.include_router(openai.router)
    app.include_router(playground.router)
    if settings.docs:
        app.include_router(docs.router)
    app.state.run_observers = observability.observers(app, settings, workers)
    app.add_exception_handler(errors.ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Starlette runs the last added outermost: request ids, then CORS (preflights carry no
    # key, and a 401 needs CORS headers to be readable), then API keys.
    keys = load_keys(settings)
    if keys:
        public = (
            {"/metrics"} if settings.metrics == "prometheus" and settings.metrics_public else set()
        )
        app.add_middleware(ApiKeyAuth, keys=keys, exempt=frozenset(public))
    if settings.cors_origins:
        app.add_middleware(
            Cors,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Request-Id", "X-Run-Id"],
        )
    app.add_middleware(RequestContext)
    app.openapi = lambda: openapi.build(app, catalog)  # type: ignore[method-assign]
    log.info(
        "serving %d chains from %s: %s",
        len(catalog),
        settings.chains_dir,
        ", ".join(chain.name for chain in catalog),
    )
    catalog.log_errors()
    return app


def _render(request: Request, error: errors.ApiError) -> JSONResponse:
    body = openai.error_body_for(request.scope, error)  # OpenAI's shape under /v1/
    return JSONResponse(body, status_code=error.status, headers=error.headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ApiError)
    return _render(request, exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _render(request, errors.method_not_allowed(request.method, _allowed(request)))
    code = "not_found" if exc.status_code == 404 else "http_error"
    error = errors.ApiError(
        exc.status_code, str(exc.detail), code=code, headers=dict(exc.headers or {})
    )
    return _render(request, error)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(request: Request) -> list[str]:
    """Every method some route of this path takes (Starlette's 405 names one route's only:
    ``/chains/x/stream`` is a GET route and a POST route)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": str(e["msg"])}
        for e in exc.errors()
    ]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return _render(request, errors.ApiError(422, message, code="invalid_input", errors=fields))


async def _watch(settings: Settings, catalog: Catalog) -> None:
    """Reload chain files when they change (``chainserve dev``); never stops watching."""
    from watchfiles import awatch

    from service.chains.guarded import start_server

    folder = settings.chains_dir.absolute()

    def chain_file(_change: Any, path: str) -> bool:  # editors' droppings trigger nothing
        return is_chain_file(Path(path)) or Path(path) == folder

    # Beside the watcher, so the first save neither waits for it nor goes unnoticed meanwhile.
    warm_up = asyncio.create_task(asyncio.to_thread(start_server))
    try:
        while True:
            try:
                async for _ in awatch(folder, watch_filter=chain_file, recursive=False):
                    try:
                        await asyncio.to_thread(catalog.reload)
                    except Exception:  # keep watching: the next save may fix it
                        log.exception("reloading chains failed; keeping the previous chains")
                    if not folder.is_dir():
                        break  # its watch went with it: watch again once it is back
            except Exception as exc:  # the watcher failed, or the folder is still gone
                if folder.is_dir():
                    log.error("watching %s failed (%s); retrying", folder, exc)
            await asyncio.sleep(2)
            with contextlib.suppress(Exception):  # changes while nobody watched
                await asyncio.to_thread(catalog.reload)
    finally:
        warm_up.cancel()


def _configure_logging(settings: Settings) -> None:
    """Our log lines go to stderr unless the host (a test runner, an app) set logging up."""
    logger = logging.getLogger("chainserve")
    logger.setLevel(settings.log_level.upper())
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logs.formatter(settings.log_format))
        # JSON: every library's lines (botocore's, langsmith's …) too, so none comes out as text
        (logging.getLogger() if settings.log_format == "json" else logger).addHandler(handler)
    if settings.log_format == "json":  # (`chainserve serve` sets uvicorn's: service/server.py)
        logs.use_json_for_uvicorn()
        logging.captureWarnings(True)
    # uvicorn's access log (CHAINSERVE_ACCESS_LOG) writes query strings: keys sent there
    # would land in the log. Logger filters survive uvicorn's logging set-up (dictConfig).
    logging.getLogger("uvicorn.access").addFilter(redact_query_keys)


@cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    # ``service.app:app`` is built on first access, so importing this module has no side effects.
    if name == "app":
        return _default_app()
    raise AttributeError(name)
