"""OpenAI's Chat Completions API, with chains as models: ``GET /v1/models``,
``GET /v1/models/{model}``, ``POST /v1/chat/completions`` (whole, or streamed as
``chat.completion.chunk`` events), and OpenAI's error body for every path under ``/v1/``.

A request's conversation fills the chain's inputs by the one rule of
:mod:`service.chains.conversation`; its inference parameters are checked against the chain
file and Bedrock here (:mod:`service.protocols.openai_request`), then bound onto the chain's
model for this request only.
"""

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Scope

from service.chains.catalog import Catalog, Chain
from service.chains.conversation import chat_shape, conversation_inputs
from service.protocols import running
from service.protocols.openai_request import parse_chat_request
from service.runs import errors
from service.runs.info import RunInfo

router = APIRouter()
PATH_PREFIX = "/v1/"


@router.get("/v1/models", tags=["openai"], summary="OpenAI: the chains that take a conversation")
async def list_models(request: Request) -> JSONResponse:
    models = [_model(chain) for chain in _conversational(running.catalog(request))]
    return JSONResponse({"object": "list", "data": models})


@router.get("/v1/models/{model}", tags=["openai"], summary="OpenAI: one chain, as a model")
async def get_model(request: Request, model: str) -> JSONResponse:
    return JSONResponse(_model(_find(running.catalog(request), model)))


@router.post(
    "/v1/chat/completions",
    tags=["openai"],
    summary="OpenAI Chat Completions: run a chain on a conversation (SSE with stream: true)",
)
async def chat_completions(request: Request) -> Response:
    chat = parse_chat_request(await running.read_body(request))
    chain = _find(running.catalog(request), chat.model)
    params = chat.params_for(chain.spec)
    variables = conversation_inputs(chain, chat.turns, chat.inputs)
    run = dataclasses.replace(chain, runnable=chain.assembly.with_params(params))
    config = {"run_name": chain.name}  # traces (LangSmith) name the run after the chain
    if chat.stream:
        encoder = ChatCompletionChunks(chain.name, chat.include_usage)
        return await running.stream_run(
            request, run, variables, config, encoder, route="chat.completions"
        )
    output, info = await running.invoke_run(
        request, run, variables, config, route="chat.completions"
    )
    if not isinstance(output, str):  # a structured chain's object: content is its JSON text
        output = json.dumps(output, ensure_ascii=False)
    return JSONResponse(_completion(chain.name, output, info), headers={"X-Run-Id": info.run_id})


def _conversational(chains: Catalog) -> list[Chain]:
    return [chain for chain in chains if chat_shape(chain.spec) is not None]


def _find(chains: Catalog, name: str) -> Chain:
    """The chain named ``name`` if it takes a conversation; 404 naming the models otherwise."""
    try:
        chain: Chain | None = chains.get(name)
    except errors.ApiError:
        chain = None
    if chain is not None and chat_shape(chain.spec) is not None:
        return chain
    why = (
        "no chain has that name"
        if chain is None
        else "that chain cannot take a conversation (it needs exactly one required string "
        "input, or one string input, for the user's message)"
    )
    models = ", ".join(c.name for c in _conversational(chains)) or "none are loaded"
    raise errors.ApiError(
        404, f"model {name!r} not found: {why}; models: {models}", code="model_not_found"
    )


def _model(chain: Chain) -> dict[str, Any]:
    return {
        "id": chain.name,
        "object": "model",
        "created": _modified(chain),
        "owned_by": "chainserve",
    }


def _modified(chain: Chain) -> int:
    """When the chain file was last changed: the nearest thing a chain has to a creation
    time (0 for a chain that has no file)."""
    try:
        return int(os.stat(chain.spec.source_path).st_mtime)
    except OSError:
        return 0


def _completion(model: str, output: str, info: RunInfo) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{info.run_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": output, "refusal": None},
                "logprobs": None,
                "finish_reason": info.finish_reason or "stop",
            }
        ],
        "usage": _usage(info),
        "system_fingerprint": None,
    }


def _usage(info: RunInfo) -> dict[str, Any]:
    usage = info.usage
    counts: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read_tokens or usage.cache_write_tokens:
        # OpenAI's spelling of prompt tokens read from the cache (of prompt_tokens).
        counts["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    return counts


class ChatCompletionChunks:
    """The streamed wire format: one ``data: {chat.completion.chunk}`` event per batch of
    chunks, the first carrying ``delta.role``; a last choice chunk with the finish reason;
    with ``stream_options.include_usage``, a usage chunk (``choices: []``); ``data: [DONE]``.

    A failure after the first chunk is ``data: {"error": {...}}`` and no ``[DONE]``: the
    openai SDKs raise it from the stream.

    Per chunk only the text is encoded: every byte around it is built once, at the opening.
    """

    media_type = "text/event-stream; charset=utf-8"
    headers: Mapping[str, str] = {}

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._head = ""
        self._tail = ""
        self._before_text = b""
        self._after_text = b""

    def opening(self, info: RunInfo) -> bytes:
        created = int(time.time())
        self._head = (
            f'data: {{"id":"chatcmpl-{info.run_id}","object":"chat.completion.chunk",'
            f'"created":{created},"model":{json.dumps(self._model)},"system_fingerprint":null,'
        )
        # With include_usage, OpenAI sends "usage": null on every chunk but the last.
        self._tail = (',"usage":null' if self._include_usage else "") + "}\n\n"
        self._before_text = (self._head + '"choices":[{"index":0,"delta":{"content":').encode()
        self._after_text = ('},"logprobs":null,"finish_reason":null}]' + self._tail).encode()
        return self._choice('{"role":"assistant","content":""}', "null")

    def chunks(self, chunks: list[str]) -> bytes:
        return self._before_text + json.dumps("".join(chunks)).encode() + self._after_text

    def closing(self, info: RunInfo) -> bytes:
        last = self._choice("{}", json.dumps(info.finish_reason or "stop"))
        if self._include_usage:
            usage = json.dumps(_usage(info), separators=(",", ":"))
            last += f'{self._head}"choices":[],"usage":{usage}}}\n\n'.encode()
        return last + b"data: [DONE]\n\n"

    def error(self, error: errors.ApiError, request_id: str) -> bytes:
        return b"data: " + json.dumps(error_body(error, request_id)).encode() + b"\n\n"

    def _choice(self, delta: str, reason: str) -> bytes:
        choice = f'{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{reason}}}'
        return f'{self._head}"choices":[{choice}]{self._tail}'.encode()


# -- errors -----------------------------------------------------------------------------------

_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
# Our codes that OpenAI's clients know by another name.
_ERROR_CODES = {"unauthorized": "invalid_api_key"}


def error_body(error: errors.ApiError, request_id: str | None) -> dict[str, Any]:
    """``error`` in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``, with
    our ``request_id`` beside them (the SDKs keep unknown keys, in ``exc.body``)."""
    status = error.status
    kind = _ERROR_TYPES.get(status) or (
        "server_error" if status >= 500 else "invalid_request_error"
    )
    body: dict[str, Any] = {
        "message": error.message,
        "type": kind,
        "param": error.errors[0]["field"] if error.errors else None,
        "code": _ERROR_CODES.get(error.code, error.code),
    }
    if request_id:
        body["request_id"] = request_id
    return {"error": body}


def error_body_for(scope: Scope, error: errors.ApiError) -> dict[str, Any]:
    """The one choice of an error body's shape, for the app's exception handlers and the
    middleware alike: OpenAI's for paths under ``/v1/`` (its clients read only that), the
    service's own everywhere else."""
    request_id = scope.get("state", {}).get("request_id")
    path = str(scope.get("path", ""))
    if path.startswith(PATH_PREFIX) or path == PATH_PREFIX.rstrip("/"):
        return error_body(error, request_id)
    return error.body(request_id)
