"""The rest of LangServe's per-runnable routes, so ``RemoteRunnable`` works in full: its
``astream_log`` (``POST /chains/{name}/stream_log``), ``astream_events``
(``POST /chains/{name}/stream_events``), and the schema routes (``GET .../input_schema``,
``output_schema``, ``config_schema``). invoke, batch and stream are the native routes
(``routes.py``), which already speak LangServe's bodies.

Requests are LangServe's: ``{"input", "config", "kwargs"}`` validated exactly as
``/stream`` validates them (the chain's own request model, strict), plus LangChain's filters
``include_names`` / ``include_types`` / ``include_tags`` / ``exclude_*``, checked as strictly.
LangServe's clients also send ``diff`` (accepted, as LangServe does: patches either way) and,
LangChain.js to stream_events, ``kwargs.version`` (``"v2"`` only).

Responses are LangServe's Server-Sent Events: one ``data`` event per item — an
``astream_events`` v2 event, or ``{"ops": [...]}`` of an ``astream_log`` patch — serialized
as LangServe's ``WellKnownLCSerializer`` does (LangChain objects as their pydantic dump, which
the client turns back into ``AIMessageChunk``, ``ChatPromptValue`` …), then ``end``. No
``metadata`` event: RemoteRunnable's ``astream_log`` / ``astream_events`` log an error for
any event but ``data``, ``error`` and ``end``; the run id is the ``X-Run-Id`` header (and the
root run's ``run_id`` / ``id`` in the events). A failure before the model's first token is a
real HTTP status; after it, ``error`` with our error body, whose ``status_code`` and
``message`` RemoteRunnable raises as an ``httpx.HTTPStatusError``.

The runs are real LangChain runs (:class:`~service.runs.events.EventStream`), on the worker
threads, through the one streaming path (:func:`running.stream_run`).
"""

import dataclasses
import json
import weakref
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from service.chains.catalog import Chain
from service.chains.inputs import ChainInputs, RunConfig, parse_body
from service.protocols import running, wire
from service.runs.errors import ApiError
from service.runs.events import EventStream, Kind
from service.runs.info import RunInfo

router = APIRouter()

Route = Literal["stream_log", "stream_events"]
FILTERS = (
    "include_names",
    "include_types",
    "include_tags",
    "exclude_names",
    "exclude_types",
    "exclude_tags",
)
MAX_FILTER_ITEMS = 100
# The run types in a chain: the sequence, its prompt, its model and its output parser.
RunType = Literal["chain", "prompt", "chat_model", "parser"]


@router.get(
    "/chains/{name}/input_schema",
    tags=["chains"],
    summary="LangServe: JSON Schema of the chain's input",
)
async def input_schema(request: Request, name: str) -> dict[str, Any]:
    return running.catalog(request).get(name).inputs.json_schema()


@router.get(
    "/chains/{name}/output_schema",
    tags=["chains"],
    summary="LangServe: JSON Schema of the chain's output (a string, or its output schema)",
)
async def output_schema(request: Request, name: str) -> dict[str, Any]:
    chain = running.catalog(request).get(name)
    if chain.spec.output is not None:  # a structured chain returns an object of its schema
        return {"title": f"{chain.name}_Output", **chain.spec.output.json_schema}
    return {"title": f"{chain.name}_Output", "type": "string"}


@router.get(
    "/chains/{name}/config_schema",
    tags=["chains"],
    summary="LangServe: JSON Schema of the config a run takes",
)
async def config_schema(request: Request, name: str) -> dict[str, Any]:
    chain = running.catalog(request).get(name)
    schema = RunConfig.model_json_schema()
    schema["title"] = f"{chain.name}_Config"
    schema["properties"]["configurable"]["maxProperties"] = 0  # chains have no configurable fields
    return schema


@router.post(
    "/chains/{name}/stream_log",
    tags=["chains"],
    summary="LangServe: the run as astream_log patches (Server-Sent Events)",
)
async def stream_log(request: Request, name: str) -> StreamingResponse:
    return await _stream(request, name, "stream_log")


@router.post(
    "/chains/{name}/stream_events",
    tags=["chains"],
    summary="LangServe: the run's LangChain events, astream_events v2 (Server-Sent Events)",
)
async def stream_events(request: Request, name: str) -> StreamingResponse:
    return await _stream(request, name, "stream_events")


async def _stream(request: Request, name: str, route: Route) -> StreamingResponse:
    chain = running.catalog(request).get(name)
    body = await running.read_body(request)
    variables, config, filters = parse(chain, body, route)
    kind: Kind = "log" if route == "stream_log" else "events"
    encode = _patch_json if kind == "log" else to_json
    events = EventStream(chain.runnable, kind, filters, encode)
    # The chain, run as its events: the one streaming path runs `events.stream` on a worker.
    as_events = dataclasses.replace(chain, runnable=events)
    return await running.stream_run(
        request, as_events, variables, config, LangServeEvents(), route=route
    )


# -- requests -----------------------------------------------------------------------------------

# Per chain as loaded (a reloaded chain has new inputs, so new models); built on first use.
_models: "weakref.WeakKeyDictionary[ChainInputs, dict[Route, type[BaseModel]]]" = (
    weakref.WeakKeyDictionary()
)


def request_model(chain: Chain, route: Route) -> type[BaseModel]:
    """The request body of ``route`` for ``chain``: its ``/stream`` body plus the filters and
    ``diff`` (and stream_events' ``kwargs.version``)."""
    models = _models.get(chain.inputs)
    if models is None:
        models = _models[chain.inputs] = {
            "stream_log": _build(chain, "stream_log"),
            "stream_events": _build(chain, "stream_events"),
        }
    return models[route]


class EventsKwargs(BaseModel):
    """stream_events' ``kwargs``: LangChain.js's RemoteRunnable sends its ``version`` here."""

    model_config = ConfigDict(extra="forbid")

    version: Literal["v2"] | None = Field(None, description="Only v2 events are streamed.")


def _build(chain: Chain, route: Route) -> type[BaseModel]:
    fields: dict[str, Any] = {name: _filter_field(name) for name in FILTERS}
    # Sent by LangServe's clients — RemoteRunnable `true` to stream_log, LangChain.js `false`
    # to both routes — and, as by LangServe, answered with patches either way (LangChain.js
    # reads them as patches too).
    fields["diff"] = (bool, Field(True, description="Accepted; patches are streamed either way."))
    if route == "stream_events":
        fields["kwargs"] = (EventsKwargs, Field(default_factory=EventsKwargs))
    title = "StreamLogRequest" if route == "stream_log" else "StreamEventsRequest"
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{chain.name}_{title}", __base__=chain.inputs.request_model, **fields
    )
    return model


def _filter_field(name: str) -> tuple[Any, Any]:
    keep, _, what = name.partition("_")
    which = "Only" if keep == "include" else "Leave out"
    descriptions = {
        "names": "runs with these names: the chain (`RunnableSequence`, or `config.run_name`), "
        "`ChatPromptTemplate`, `ChatBedrockConverse` or `ChatBedrock`, `StrOutputParser`",
        "types": "runs of these types: `chain`, `prompt`, `chat_model`, `parser`",
        "tags": "runs with these tags (`config.tags` tag every run; LangChain tags the steps "
        "`seq:step:1` …)",
    }
    item: Any = RunType if what == "types" else str
    field = Field(None, max_length=MAX_FILTER_ITEMS, description=f"{which} {descriptions[what]}.")
    return list[item] | None, field


def parse(
    chain: Chain, body: bytes, route: Route
) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str] | None]]:
    """A ``route`` body → (prompt variables, run config, LangChain's filters)."""
    request: Any = parse_body(request_model(chain, route), body)
    # The input is valid already; parse_data makes the chain's variables of it (messages as
    # LangChain messages), as /stream's parsing does.
    variables = chain.inputs.parse_data(request.input.model_dump(by_alias=True))
    filters = {name: getattr(request, name) for name in FILTERS}
    return variables, request.config.to_langchain(), filters


# -- responses ----------------------------------------------------------------------------------


class LangServeEvents:
    """The SSE of LangServe's stream_log and stream_events: items arrive as JSON text
    (serialized on the worker thread), each one ``data`` event; then ``end``."""

    media_type = "text/event-stream; charset=utf-8"
    headers: Mapping[str, str] = {}

    def opening(self, info: RunInfo) -> bytes:
        return b""  # no metadata event: RemoteRunnable's astream_log/astream_events log one

    def chunks(self, chunks: list[str]) -> bytes:
        return "".join(f"event: data\ndata: {chunk}\n\n" for chunk in chunks).encode()

    def closing(self, info: RunInfo) -> bytes:
        return b"event: end\ndata: \n\n"

    def error(self, error: ApiError, request_id: str) -> bytes:
        return wire.sse_event("error", error.body(request_id))


def to_json(value: Any) -> str:
    """``value`` as LangServe's ``WellKnownLCSerializer`` writes it: JSON, pydantic objects
    (LangChain's messages, prompt values, generations) as their ``model_dump``. One line."""
    return json.dumps(value, default=_plain, separators=(",", ":"))


def _patch_json(patch: Any) -> str:
    return to_json({"ops": patch.ops})


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
