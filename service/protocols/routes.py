"""The HTTP routes. Bodies and responses follow LangServe's, so ``RemoteRunnable`` works."""

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from service.chains.catalog import Catalog, Chain
from service.chains.render import render as render_prompt
from service.protocols import wire
from service.runs import errors
from service.runs.batch import run_batch
from service.runs.stream import ChainRun, RunInfo, Usage, Workers
from service.settings import Settings

log = logging.getLogger("chainserve")
router = APIRouter()


@router.get("/healthz", tags=["service"], summary="Readiness; never calls a model")
async def healthz(request: Request) -> dict[str, Any]:
    # Always 200: with broken chain files (chainserve dev) the other chains still serve.
    catalog = _catalog(request)
    return {
        "status": "degraded" if catalog.errors else "ok",
        "chains": len(catalog),
        "runs_active": _workers(request).active,
        "errors": [error.as_dict() for error in catalog.errors],
    }


@router.get("/chains", tags=["chains"], summary="Every chain: name, description, inputs")
async def list_chains(request: Request) -> dict[str, Any]:
    catalog = _catalog(request)
    return {
        "chains": [chain.summary() for chain in catalog],
        "errors": [error.as_dict() for error in catalog.errors],
    }


@router.get("/chains/{name}", tags=["chains"], summary="One chain, with its input JSON Schema")
async def get_chain(request: Request, name: str) -> dict[str, Any]:
    chain = _catalog(request).get(name)
    return chain.summary() | {"input_schema": chain.inputs.json_schema()}


@router.post("/chains/{name}/invoke", tags=["chains"], summary="Run a chain; the whole output")
async def invoke(request: Request, name: str) -> dict[str, Any]:
    chain = _catalog(request).get(name)
    variables, config = chain.inputs.parse_request(await _body(request))
    info = RunInfo()
    try:
        output = await _workers(request).run(
            lambda: chain.runnable.invoke(variables, info.config(config))  # type: ignore[arg-type]
        )
    except Exception as exc:
        raise _failure(request, chain, exc) from None
    _log_run(request, chain, info, "invoke")
    return {"output": output, "metadata": _metadata(chain, info)}


@router.post(
    "/chains/{name}/render",
    tags=["chains"],
    summary="The messages the model would receive for this input; never calls a model",
)
async def render(request: Request, name: str) -> dict[str, Any]:
    chain = _catalog(request).get(name)
    variables, _ = chain.inputs.parse_request(await _body(request))
    return render_prompt(chain, variables)


@router.post("/chains/{name}/batch", tags=["chains"], summary="Run a chain on several inputs")
async def batch(request: Request, name: str) -> dict[str, Any]:
    chain = _catalog(request).get(name)
    many, configs, return_exceptions = chain.inputs.parse_batch(await _body(request))
    # Each input is a model call that holds a slot of the cap while it runs. A batch runs
    # max_concurrency of them at once, or all — but never more than the slots that are free.
    wanted = min(len(many), configs[0].get("max_concurrency") or len(many))
    infos = [RunInfo() for _ in many]
    started = time.perf_counter()
    try:
        results = await _workers(request).run_up_to(
            lambda at_once: run_batch(
                chain.runnable, many, configs, infos, at_once, return_exceptions
            ),
            wanted,
        )
    except Exception as exc:
        raise _failure(request, chain, exc) from None
    latency_ms = round((time.perf_counter() - started) * 1000)
    total = Usage()
    outputs: list[Any] = []
    runs: list[dict[str, Any]] = []
    for index, (info, result) in enumerate(zip(infos, results, strict=True)):
        total.input_tokens += info.usage.input_tokens
        total.output_tokens += info.usage.output_tokens
        run = _metadata(chain, info)
        if isinstance(result, BaseException):  # only with return_exceptions
            error = _failure(request, chain, result, f"run_id={info.run_id} input={index}")
            run["error"] = error.body(_request_id(request))
            outputs.append(None)
        else:
            _log_run(request, chain, info, "batch")
            outputs.append(result)
        runs.append(run)
    return {
        "output": outputs,
        "metadata": {
            "run_ids": [info.run_id for info in infos],
            "model": chain.model_id,
            "usage": total.as_dict(),
            "latency_ms": latency_ms,
            "runs": runs,
        },
    }


@router.post(
    "/chains/{name}/stream",
    tags=["chains"],
    summary="Run a chain, streaming its output (text/plain, or SSE with Accept: text/event-stream)",
)
async def stream(request: Request, name: str) -> StreamingResponse:
    chain = _catalog(request).get(name)
    variables, config = chain.inputs.parse_request(await _body(request))
    return await _stream(
        request, chain, variables, config, wire.negotiate(request.headers.get("accept"))
    )


@router.get(
    "/chains/{name}/stream",
    tags=["chains"],
    summary="Stream as Server-Sent Events for a browser's EventSource; inputs as query parameters",
)
async def stream_get(request: Request, name: str) -> StreamingResponse:
    chain = _catalog(request).get(name)
    variables = chain.inputs.parse_query(request.query_params.multi_items())
    return await _stream(request, chain, variables, {}, wire.ServerSentEvents())


async def _stream(
    request: Request,
    chain: Chain,
    variables: dict[str, Any],
    config: dict[str, Any],
    fmt: wire.WireFormat,
) -> StreamingResponse:
    """Start the run and wait for its first chunk, so an early failure still gets a status."""
    run = ChainRun(chain.runnable, variables, config)
    try:
        first = await run.start(_workers(request))
    except asyncio.CancelledError:
        run.cancel()
        raise
    except Exception as exc:
        raise _failure(request, chain, exc) from None

    def describe(exc: BaseException) -> errors.ApiError:
        return _failure(request, chain, exc, "after_first_chunk=true")

    async def body() -> Any:
        async for part in wire.encode(run, first, fmt, describe, _request_id(request)):
            yield part
        _log_run(request, chain, run.info, "stream")

    headers = {**wire.STREAM_HEADERS, "X-Run-Id": run.info.run_id}
    return RunResponse(run, body(), media_type=fmt.media_type, headers=headers)


class RunResponse(StreamingResponse):
    """A streamed run that always ends with the response, however the response ends.

    When the client goes away, Starlette cancels the pending ``send``, not the body's
    generator; left alone, that generator (and with it the run) would only be closed by
    the garbage collector. So the run is cancelled and the body closed here, at once.
    """

    def __init__(self, run: ChainRun, content: Any, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._run = run

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._run.cancel()
            await self.body_iterator.aclose()  # type: ignore[attr-defined]


def _metadata(chain: Chain, info: RunInfo) -> dict[str, Any]:
    metadata = {
        "run_id": info.run_id,
        "model": chain.model_id,
        "usage": info.usage.as_dict(),
        "latency_ms": info.latency_ms,
    }
    if info.stop_reason:
        metadata["stop_reason"] = info.stop_reason
    return metadata


def _failure(
    request: Request, chain: Chain, exc: BaseException, detail: str = ""
) -> errors.ApiError:
    """The mapped failure, logged once with the chain, the request id and ``detail``."""
    settings: Settings = request.app.state.settings
    return errors.describe(
        exc,
        model_id=chain.model_id,
        retry_after=settings.retry_after_seconds,
        context=f"chain={chain.name} request_id={_request_id(request)}"
        + (f" {detail}" if detail else ""),
    )


def _log_run(request: Request, chain: Chain, info: RunInfo, route: str) -> None:
    usage = info.usage
    log.info(
        "%s chain=%s run_id=%s request_id=%s latency_ms=%d input_tokens=%d output_tokens=%d",
        route,
        chain.name,
        info.run_id,
        _request_id(request),
        info.latency_ms,
        usage.input_tokens,
        usage.output_tokens,
    )


async def _body(request: Request) -> bytes:
    """The JSON request body: 415 unless it says it is JSON, 413 past the configured limit."""
    _require_json(request.headers.get("content-type", ""))
    limit = request.app.state.settings.max_body_bytes
    too_large = errors.bad_request("body", f"larger than {limit} bytes; send less", status=413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        async for part in request.stream():
            body += part
            if len(body) > limit:  # a chunked body has no Content-Length to refuse early
                raise too_large
    except ClientDisconnect:  # nothing went wrong here, and nobody waits for an answer
        log.info(
            "client went away during the upload request_id=%s path=%s after %d bytes",
            _request_id(request),
            request.url.path,
            len(body),
        )
        raise errors.client_gone() from None
    return bytes(body)


def _require_json(content_type: str) -> None:
    """``application/json`` or an ``application/*+json`` type, in UTF-8 if a charset is given.

    Not a formality: the types a web page may POST cross-site without a CORS preflight
    (``text/plain``, forms) are refused, so no page can start a chain from a browser.
    """
    media_type, *params = (part.strip().lower() for part in content_type.split(";"))
    is_json = media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    charsets = [p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")]
    if not is_json or any(charset not in ("utf-8", "utf8") for charset in charsets):
        raise errors.unsupported_media_type(content_type)


def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def _workers(request: Request) -> Workers:
    workers: Workers = request.app.state.workers
    return workers


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))
