"""What every protocol's routes share: the chain a request names, its JSON body, a run
streamed through a wire encoder, a whole run, and failures mapped and logged once.

A protocol module (``routes``, ``openai`` …) parses its own request into a chain's variables
and config, then hands them here; only the encoder — the bytes on the wire — is its own.
"""

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from service import observability
from service.chains.catalog import Catalog, Chain
from service.protocols import wire
from service.runs import errors
from service.runs.info import RunInfo, Usage
from service.runs.stream import ChainRun, Workers
from service.settings import Settings

log = logging.getLogger("chainserve")


async def invoke_run(
    request: Request,
    chain: Chain,
    variables: dict[str, Any],
    config: dict[str, Any],
    route: str = "invoke",
) -> tuple[Any, RunInfo]:
    """Run ``chain`` to the end on a worker thread: its output, and what the run reported;
    logged as ``route``."""
    info = RunInfo()
    try:
        output = await workers(request).run(
            lambda: chain.runnable.invoke(variables, info.config(config))  # type: ignore[arg-type]
        )
    except Exception as exc:
        error = failure(request, chain, exc, info=info, route=route)
        observability.run_ended(request, chain, info, route, error)
        raise error from None
    log_run(request, chain, info, route)
    observability.run_ended(request, chain, info, route)
    return output, info


async def stream_run(
    request: Request,
    chain: Chain,
    variables: dict[str, Any],
    config: dict[str, Any],
    encoder: wire.Encoder,
    route: str = "stream",
) -> StreamingResponse:
    """Start the run and wait for its first chunk, so an early failure still gets a status;
    then stream the rest through ``encoder``, and log the run as ``route``."""
    run = ChainRun(chain.runnable, variables, config)
    run.info.stream = True
    try:
        first = await run.start(workers(request))
    except asyncio.CancelledError:
        run.cancel()
        observability.run_ended(request, chain, run.info, route, disconnected=True)
        raise
    except Exception as exc:
        error = failure(request, chain, exc, info=run.info, route=route)
        observability.run_ended(request, chain, run.info, route, error)
        raise error from None
    failed: list[errors.ApiError] = []  # a failure after the first chunk, sent in-band
    observed: list[bool] = []

    def describe(exc: BaseException) -> errors.ApiError:
        failed.append(failure(request, chain, exc, "after_first_chunk=true", run.info, route))
        return failed[-1]

    def ended(disconnected: bool) -> None:  # once, however the response ends
        if not observed:
            observed.append(True)
            error = failed[-1] if failed else None
            observability.run_ended(request, chain, run.info, route, error, disconnected)

    async def body() -> Any:
        finished = False
        try:
            async for part in wire.encode(run, first, encoder, describe, request_id(request)):
                yield part
            finished = True
            log_run(request, chain, run.info, route)
        finally:  # also when the client went away: RunResponse closes this generator
            ended(disconnected=not finished)

    headers = {**wire.STREAM_HEADERS, **encoder.headers, "X-Run-Id": run.info.run_id}
    return RunResponse(
        run,
        body(),
        # A client gone before the body started: the generator never ran, so never ended it.
        lambda: ended(disconnected=True),
        media_type=encoder.media_type,
        headers=headers,
    )


class RunResponse(StreamingResponse):
    """A streamed run that always ends with the response, however the response ends.

    When the client goes away, Starlette cancels the pending ``send``, not the body's
    generator; left alone, that generator (and with it the run) would only be closed by
    the garbage collector. So the run is cancelled and the body closed here, at once.
    """

    def __init__(
        self, run: ChainRun, content: Any, closed: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._run = run
        self._closed = closed

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._run.cancel()
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
            self._closed()


def failure(
    request: Request,
    chain: Chain,
    exc: BaseException,
    detail: str = "",
    info: RunInfo | None = None,
    route: str | None = None,
) -> errors.ApiError:
    """The mapped failure, logged once with the chain, the request id and ``detail``; named
    after the model that failed (``info``: a fallback's failure is the fallback's)."""
    settings: Settings = request.app.state.settings
    model_id = (info.model_for(exc) if info else None) or chain.model_id
    if info is not None:
        info.failed_model = model_id
    fields: dict[str, Any] = {"route": route, "chain": chain.name, "model": model_id}
    if info is not None:
        fields |= {"run_id": info.run_id, "latency_ms": info.latency_ms, "ttft_ms": info.ttft_ms}
    prompt = _prompt_fields(settings, info)
    return errors.describe(
        exc,
        model_id=model_id,
        retry_after=settings.retry_after_seconds,
        context=f"chain={chain.name} request_id={request_id(request)}"
        + (f" {detail}" if detail else "")
        + _as_text(settings, prompt),
        fields=fields | prompt,
    )


def log_run(request: Request, chain: Chain, info: RunInfo, route: str) -> None:
    """One info line per finished run: which model answered (and, after a fallback, which
    failed first), what it cost, and why the model stopped — so a reply cut by ``max_tokens``
    (a complete text/plain stream all the same) says so under its run id."""
    usage = info.usage
    # One source for both formats: the text line is made of these; JSON lines are these.
    fields: dict[str, Any] = {
        "route": route,
        "chain": chain.name,
        "run_id": info.run_id,
        "request_id": request_id(request),
        "model": info.model or chain.model_id,
        "status": 200,
        "latency_ms": info.latency_ms,
        "ttft_ms": info.ttft_ms,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "stop_reason": info.stop_reason,
        "fallback_from": info.fallback_from or None,
    }
    if usage.cache_read_tokens or usage.cache_write_tokens:
        fields["cache_read_tokens"] = usage.cache_read_tokens
        fields["cache_write_tokens"] = usage.cache_write_tokens
    settings: Settings = request.app.state.settings
    prompt = _prompt_fields(settings, info)
    fields |= prompt
    log.info(
        "%s chain=%s run_id=%s request_id=%s model=%s latency_ms=%d input_tokens=%d "
        "output_tokens=%d stop_reason=%s%s",
        route,
        fields["chain"],
        fields["run_id"],
        fields["request_id"],
        fields["model"],
        fields["latency_ms"],
        fields["input_tokens"],
        fields["output_tokens"],
        fields["stop_reason"] or "-",
        (f" fallback_from={','.join(info.fallback_from)}" if info.fallback_from else "")
        + _cache_fields(usage)
        + _as_text(settings, prompt),
        extra=fields,
    )


def _prompt_fields(settings: Settings, info: RunInfo | None) -> dict[str, Any]:
    """With ``CHAINSERVE_LOG_PROMPTS=true``, the last model call's prompt and reply (the
    fallback's, if one answered); otherwise nothing: no log line holds prompt text."""
    if not settings.log_prompts or info is None or not info.collector.calls:
        return {}
    from service.observability import prompts

    call = info.collector.calls[-1]
    return {"prompt": prompts.prompt_messages(call), "reply": prompts.reply_messages(call) or None}


def _as_text(settings: Settings, prompt: dict[str, Any]) -> str:
    """The prompt fields in a text line (JSON lines carry them as fields, not twice)."""
    if settings.log_format == "json":
        return ""
    return "".join(
        f" {name}={json.dumps(value, ensure_ascii=False)}"
        for name, value in prompt.items()
        if value is not None
    )


def _cache_fields(usage: Usage) -> str:
    """The prompt cache's tokens, when the model read or wrote it (cache: true)."""
    if not (usage.cache_read_tokens or usage.cache_write_tokens):
        return ""
    read, written = usage.cache_read_tokens, usage.cache_write_tokens
    return f" cache_read_tokens={read} cache_write_tokens={written}"


async def read_body(request: Request) -> bytes:
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
            request_id(request),
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


def catalog(request: Request) -> Catalog:
    found: Catalog = request.app.state.catalog
    return found


def workers(request: Request) -> Workers:
    found: Workers = request.app.state.workers
    return found


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))
