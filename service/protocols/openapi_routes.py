"""Every route, as the OpenAPI document describes it: one :class:`Described` per route in
:data:`ROUTES` (the mechanism is service/protocols/openapi.py; the bodies the routes send are
written out in service/protocols/openapi_bodies.py).

A new route gets its line here — its success media types and schemas, its body or query, the
statuses it can fail with — and tests/test_openapi.py fails until it has one;
tests/test_schemathesis.py then holds the server to it.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from service.chains.catalog import Chain
from service.chains.conversation import chat_shape
from service.protocols import ai_sdk, langserve
from service.protocols.openapi import BODY, JSON, MODEL, REF, Context, Described, Events, json
from service.protocols.openapi_bodies import (
    JSON_SCHEMA,
    LANGSERVE_DESCRIPTION,
    LANGSERVE_EVENTS,
    PLAIN_TEXT,
    RUN_ID,
    SERVER_SENT_EVENTS,
    STREAM_EVENTS,
    UI_MESSAGE_STREAM,
    BatchResponse,
    ChainDetail,
    ChainList,
    ChatCompletion,
    ChatCompletionRequest,
    Health,
    InvokeResponse,
    OpenAIError,
    OpenAIModel,
    OpenAIModelList,
    OpenAIStreamItem,
    Rendered,
    StreamUrl,
    UIMessageChunk,
)
from service.protocols.openapi_output import stream_events, with_output

# ---------------------------------------------------------------- per chain


def _request(context: Context) -> type[BaseModel]:
    return context.chain.inputs.request_model


def _batch(context: Context) -> type[BaseModel]:
    return context.chain.inputs.batch_model


def _invoke_response(context: Context) -> Any:
    return with_output(context.chain, InvokeResponse)  # a structured chain's output: its schema


def _batch_response(context: Context) -> Any:
    return with_output(context.chain, BatchResponse, many=True)


def _stream_events(context: Context) -> Events:
    return stream_events(context.chain, STREAM_EVENTS)  # a structured chain's: objects


def _stream_url_request(context: Context) -> type[BaseModel]:
    most = context.settings.signed_url_max_seconds
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{context.chain.name}_StreamUrlRequest",
        __config__=ConfigDict(extra="forbid"),
        input=(context.chain.inputs.url_model, ...),  # images cannot travel in a URL
        expires_in=(
            int | None,
            Field(None, ge=1, le=most, description=f"Seconds: default {min(300, most)}."),
        ),
    )
    return model


def _inputs(context: Context) -> dict[str, Any] | None:
    """The chain's first test's inputs (chain files' ``tests:``): inputs known to work."""
    tests = context.chain.spec.tests
    return dict(tests[0].inputs) if tests else None


def _with_input(context: Context) -> dict[str, Any] | None:
    inputs = _inputs(context)
    return None if inputs is None else {"input": inputs}


def _with_url_input(context: Context) -> dict[str, Any] | None:
    """The first test's inputs a URL can carry: all but images."""
    inputs = _inputs(context)
    if inputs is None:
        return None
    kinds = {name: item.type for name, item in context.chain.spec.inputs.items()}
    return {"input": {name: v for name, v in inputs.items() if kinds.get(name) != "image"}}


def _with_inputs(context: Context) -> dict[str, Any] | None:
    inputs = _inputs(context)
    return None if inputs is None else {"inputs": [inputs]}


def _ui_messages(context: Context) -> dict[str, Any]:
    message = {"id": "1", "role": "user", "parts": [{"type": "text", "text": "Hello!"}]}
    body: dict[str, Any] = {"messages": [message]}
    others = _other_inputs(context.chain)
    if others:  # the inputs a conversation does not fill (an image, say), from the chain's test
        body["inputs"] = others
    return body


def _other_inputs(chain: Chain) -> dict[str, Any]:
    shape = chat_shape(chain.spec)
    tests = chain.spec.tests
    if shape is None or not tests:
        return {}
    filled = (shape.message_input, shape.history_input)
    return {name: value for name, value in tests[0].inputs.items() if name not in filled}


def _chat_messages(context: Context) -> dict[str, Any] | None:
    chains = [chain for chain in context.chains if _conversational(chain)]
    # A chain whose conversation is all it needs, where there is one: the example is only
    # "Hello!" (another, with a required image say, needs its inputs too).
    chains.sort(key=lambda chain: bool(_needs_more(chain)))
    if not chains:
        return None
    return {"model": chains[0].name, "messages": [{"role": "user", "content": "Hello!"}]}


def _needs_more(chain: Chain) -> list[str]:
    shape = chat_shape(chain.spec)
    filled = (shape.message_input, shape.history_input) if shape else ()
    return [n for n, item in chain.spec.inputs.items() if item.is_required and n not in filled]


def _conversational(chain: Chain) -> bool:
    return chat_shape(chain.spec) is not None


def _name(context: Context) -> list[dict[str, Any]]:
    """``{name}``: one of the chains (any other name is a 404)."""
    names = [chain.name for chain in context.chains]
    return [{"name": "name", "in": "path", "required": True, "schema": {"enum": names}}]


def _model(context: Context) -> list[dict[str, Any]]:
    """``{model}``: one of the chains that take a conversation (``GET /v1/models``)."""
    names = [chain.name for chain in context.chains if _conversational(chain)]
    return [{"name": "model", "in": "path", "required": True, "schema": {"enum": names}}]


def _chat_request(context: Context) -> dict[str, Any]:
    """OpenAI's request, its ``model`` one of the chains that take a conversation."""
    names = [chain.name for chain in context.chains if _conversational(chain)]
    schema = ChatCompletionRequest.model_json_schema(ref_template=REF)
    schema["properties"]["model"]["enum"] = names
    return schema


def _query(context: Context) -> list[dict[str, Any]]:
    """Each input a query parameter (``GET .../stream``); a messages input as JSON."""
    chain = context.chain
    properties = chain.inputs.model.model_json_schema(ref_template=REF)
    defs = properties.get("$defs", {})
    parameters = []
    for name, item in chain.spec.inputs.items():
        if item.type == "image":
            continue  # refused in a URL (422): an image is POSTed
        schema = {**properties["properties"][name], "$defs": defs}
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": item.is_required,
            "description": item.description,
        }
        if item.type == "messages":
            parameter["content"] = {JSON: {"schema": schema}}
        else:
            parameter["schema"] = schema
        parameters.append(parameter)
    return parameters


# ---------------------------------------------------------------- the routes

ROUTES: dict[tuple[str, str], Described] = {
    # routes.py
    ("GET", "/healthz"): Described(json(Health)),
    ("GET", "/chains"): Described(json(ChainList)),
    ("GET", "/chains/{name}"): Described(json(ChainDetail), errors=(404,), parameters=_name),
    ("POST", "/chains/{name}/invoke"): Described(
        json(_invoke_response), body=_request, example=_with_input, errors=(404, *BODY, *MODEL)
    ),
    ("POST", "/chains/{name}/batch"): Described(
        json(_batch_response), body=_batch, example=_with_inputs, errors=(404, *BODY, *MODEL)
    ),
    ("POST", "/chains/{name}/render"): Described(
        json(Rendered), body=_request, example=_with_input, errors=(404, *BODY)
    ),
    ("POST", "/chains/{name}/stream"): Described(
        {"text/plain": {"type": "string"}, "text/event-stream": _stream_events},
        description=f"`text/plain` (the default): {PLAIN_TEXT}\n\n"
        f"`text/event-stream` (with `Accept: text/event-stream`, or for a body with `kwargs`, "
        f"LangServe's clients', that names neither type): {SERVER_SENT_EVENTS}",
        body=_request,
        example=_with_input,
        errors=(404, *BODY, *MODEL),
        headers=RUN_ID,
    ),
    ("GET", "/chains/{name}/stream"): Described(
        {"text/event-stream": _stream_events},
        description=SERVER_SENT_EVENTS,
        parameters=_query,
        errors=(404, 422, 431, *MODEL),
        headers=RUN_ID,
        signed=True,
    ),
    # stream_url.py
    ("POST", "/chains/{name}/stream-url"): Described(
        json(StreamUrl), body=_stream_url_request, example=_with_url_input, errors=(404, *BODY)
    ),
    # langserve.py
    ("GET", "/chains/{name}/input_schema"): Described(json(JSON_SCHEMA), errors=(404,)),
    ("GET", "/chains/{name}/output_schema"): Described(json(JSON_SCHEMA), errors=(404,)),
    ("GET", "/chains/{name}/config_schema"): Described(json(JSON_SCHEMA), errors=(404,)),
    ("POST", "/chains/{name}/stream_log"): Described(
        {"text/event-stream": LANGSERVE_EVENTS},
        description=LANGSERVE_DESCRIPTION,
        body=lambda context: langserve.request_model(context.chain, "stream_log"),
        example=_with_input,
        errors=(404, *BODY, *MODEL),
        headers=RUN_ID,
    ),
    ("POST", "/chains/{name}/stream_events"): Described(
        {"text/event-stream": LANGSERVE_EVENTS},
        description=LANGSERVE_DESCRIPTION,
        body=lambda context: langserve.request_model(context.chain, "stream_events"),
        example=_with_input,
        errors=(404, *BODY, *MODEL),
        headers=RUN_ID,
    ),
    # ai_sdk.py
    ("POST", "/chains/{name}/chat"): Described(
        {"text/event-stream": Events({"message": UIMessageChunk}, terminator="[DONE]")},
        description=UI_MESSAGE_STREAM,
        body=ai_sdk.ChatRequest,
        example=_ui_messages,
        errors=(404, *BODY, *MODEL),
        headers={**RUN_ID, "x-vercel-ai-ui-message-stream": "`v1`"},
        applies=_conversational,
    ),
    # openai.py
    ("GET", "/v1/models"): Described(json(OpenAIModelList), error_body=OpenAIError),
    ("GET", "/v1/models/{model}"): Described(
        json(OpenAIModel), errors=(404,), error_body=OpenAIError, parameters=_model
    ),
    ("POST", "/v1/chat/completions"): Described(
        {
            JSON: ChatCompletion,
            "text/event-stream": Events({"message": OpenAIStreamItem}, terminator="[DONE]"),
        },
        description="`application/json`: the completion. `text/event-stream` (with `stream: "
        "true`): `chat.completion.chunk` events, then `data: [DONE]`; a failure after the "
        'first chunk is `data: {"error": …}` and no `[DONE]`.',
        body=_chat_request,
        example=_chat_messages,
        errors=(400, 404, *BODY, *MODEL),
        error_body=OpenAIError,
        headers=RUN_ID,
    ),
}
