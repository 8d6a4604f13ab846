"""The HTTP routes. Bodies and responses follow LangServe's, so ``RemoteRunnable`` works."""

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from service import observability
from service.chains.catalog import Chain
from service.chains.render import render as render_prompt
from service.protocols import partial_objects, running, wire
from service.runs import errors
from service.runs.batch import run_batch
from service.runs.info import RunInfo, Usage

router = APIRouter()


@router.get("/healthz", tags=["service"], summary="Readiness; never calls a model")
async def healthz(request: Request) -> dict[str, Any]:
    # Always 200: with broken chain files (chainserve dev) the other chains still serve.
    chains = running.catalog(request)
    return {
        "status": "degraded" if chains.errors else "ok",
        "chains": len(chains),
        "runs_active": running.workers(request).active,
        "errors": [error.as_dict() for error in chains.errors],
    }


@router.get("/chains", tags=["chains"], summary="Every chain: name, description, inputs")
async def list_chains(request: Request) -> dict[str, Any]:
    chains = running.catalog(request)
    return {
        "chains": [chain.summary() for chain in chains],
        "errors": [error.as_dict() for error in chains.errors],
    }


@router.get("/chains/{name}", tags=["chains"], summary="One chain, with its input JSON Schema")
async def get_chain(request: Request, name: str) -> dict[str, Any]:
    chain = running.catalog(request).get(name)
    return chain.summary() | {"input_schema": chain.inputs.json_schema()}


@router.post("/chains/{name}/invoke", tags=["chains"], summary="Run a chain; the whole output")
async def invoke(request: Request, name: str) -> dict[str, Any]:
    chain = running.catalog(request).get(name)
    variables, config = chain.inputs.parse_request(await running.read_body(request))
    output, info = await running.invoke_run(request, chain, variables, config)
    return {"output": output, "metadata": _metadata(chain, info)}


@router.post(
    "/chains/{name}/render",
    tags=["chains"],
    summary="The messages the model would receive for this input; never calls a model",
)
async def render(request: Request, name: str) -> dict[str, Any]:
    chain = running.catalog(request).get(name)
    variables, _ = chain.inputs.parse_request(await running.read_body(request))
    return render_prompt(chain, variables)


def _observe_failed_batch(
    request: Request,
    chain: Chain,
    infos: list[RunInfo],
    exc: BaseException,
    error: errors.ApiError,
) -> None:
    """A batch that failed as a whole: each input that ran is still a run (its tokens were
    spent), ended with its own failure or none; a batch that failed before any ran, one."""
    ran = [info for info in infos if info.collector.calls]
    if not ran:
        observability.run_ended(request, chain, None, "batch", error)
    for info in ran:
        own = None
        if info.error is exc:
            own = error
        elif info.error is not None:  # another input that failed meanwhile
            own = running.failure(request, chain, info.error, "", info, "batch")
        observability.run_ended(request, chain, info, "batch", own)


@router.post("/chains/{name}/batch", tags=["chains"], summary="Run a chain on several inputs")
async def batch(request: Request, name: str) -> dict[str, Any]:
    chain = running.catalog(request).get(name)
    many, configs, return_exceptions = chain.inputs.parse_batch(await running.read_body(request))
    # Each input is a model call that holds a slot of the cap while it runs. A batch runs
    # max_concurrency of them at once, or all — but never more than the slots that are free.
    wanted = min(len(many), configs[0].get("max_concurrency") or len(many))
    infos = [RunInfo() for _ in many]
    started = time.perf_counter()
    try:
        results = await running.workers(request).run_up_to(
            lambda at_once: run_batch(
                chain.runnable, many, configs, infos, at_once, return_exceptions
            ),
            wanted,
        )
    except Exception as exc:
        failing = next((info for info in infos if info.error is exc), None)  # whose it was
        error = running.failure(request, chain, exc, info=failing, route="batch")
        _observe_failed_batch(request, chain, infos, exc, error)
        raise error from None
    latency_ms = round((time.perf_counter() - started) * 1000)
    total = Usage()
    outputs: list[Any] = []
    runs: list[dict[str, Any]] = []
    for index, (info, result) in enumerate(zip(infos, results, strict=True)):
        total.input_tokens += info.usage.input_tokens
        total.output_tokens += info.usage.output_tokens
        total.cache_read_tokens += info.usage.cache_read_tokens
        total.cache_write_tokens += info.usage.cache_write_tokens
        run = _metadata(chain, info)
        if isinstance(result, BaseException):  # only with return_exceptions
            error = running.failure(
                request, chain, result, f"run_id={info.run_id} input={index}", info, "batch"
            )
            run["error"] = error.body(running.request_id(request))
            observability.run_ended(request, chain, info, "batch", error)
            outputs.append(None)
        else:
            running.log_run(request, chain, info, "batch")
            observability.run_ended(request, chain, info, "batch")
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
    chain = running.catalog(request).get(name)
    body = await running.read_body(request)
    variables, config, langserve_client = chain.inputs.parse_request_as_sent(body)
    encoder = wire.negotiate(request.headers.get("accept"), langserve_client)
    encoder = partial_objects.for_chain(chain, encoder)  # SSE of a structured chain: objects
    return await running.stream_run(request, chain, variables, config, encoder)


@router.get(
    "/chains/{name}/stream",
    tags=["chains"],
    summary="Stream as Server-Sent Events for a browser's EventSource; inputs as query parameters",
)
async def stream_get(request: Request, name: str) -> StreamingResponse:
    chain = running.catalog(request).get(name)
    variables = chain.inputs.parse_query(request.query_params.multi_items())
    encoder = partial_objects.for_chain(chain, wire.ServerSentEvents())
    return await running.stream_run(request, chain, variables, {}, encoder)


def _metadata(chain: Chain, info: RunInfo) -> dict[str, Any]:
    return {"model": chain.model_id, **info.summary()}
