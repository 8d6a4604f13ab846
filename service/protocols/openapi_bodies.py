"""The bodies the routes send, written out for the OpenAPI document (the routes build them
as dicts): each protocol's success bodies and stream events. Which route sends which is in
service/protocols/openapi_routes.py.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import SkipJsonSchema

from service.chains.spec import InputType
from service.protocols.openapi import ErrorBody, Events

# A field that is left out when it has no value is ``X | SkipJsonSchema[None]``: optional, and
# never null, in the document.

# ---------------------------------------------------------------- the native routes' bodies


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_tokens: int | SkipJsonSchema[None] = Field(
        None, description="Of input_tokens, read from the prompt cache; only when it was used."
    )
    cache_write_tokens: int | SkipJsonSchema[None] = Field(
        None, description="Of input_tokens, written to the prompt cache; only when it was used."
    )


class RunMetadata(BaseModel):
    run_id: str
    model: str = Field(description="The model that answered: a fallback, if the chain's failed.")
    usage: Usage
    latency_ms: int
    stop_reason: str | SkipJsonSchema[None] = Field(
        None, description="Absent when the model gave none."
    )
    fallback_from: list[str] | SkipJsonSchema[None] = Field(
        None, description="When a fallback answered: the models that failed first, in order."
    )
    reasoning: str | SkipJsonSchema[None] = Field(
        None, description="The model's reasoning text, when the chain file includes it."
    )
    guardrail: dict[str, Any] | SkipJsonSchema[None] = Field(
        None, description="The guardrail's trace, when it intervened and trace is enabled."
    )


class StreamMetadata(BaseModel):
    """First ``{"run_id"}``; after the output, what the run cost, as invoke's metadata."""

    run_id: str
    model: str | SkipJsonSchema[None] = Field(
        None, description="After the output: the model that answered."
    )
    usage: Usage | SkipJsonSchema[None] = Field(None, description="After the output.")
    latency_ms: int | SkipJsonSchema[None] = Field(None, description="After the output.")
    stop_reason: str | SkipJsonSchema[None] = Field(
        None, description="After the output; absent when the model gave none."
    )
    fallback_from: list[str] | SkipJsonSchema[None] = Field(
        None, description="After the output, when a fallback answered: the models that failed."
    )
    reasoning: str | SkipJsonSchema[None] = Field(
        None, description="After the output: the reasoning text, when the chain includes it."
    )
    guardrail: dict[str, Any] | SkipJsonSchema[None] = Field(
        None, description="After the output: the guardrail's trace, when it intervened."
    )


class InvokeResponse(BaseModel):
    output: str
    metadata: RunMetadata


class BatchRun(RunMetadata):
    error: ErrorBody | SkipJsonSchema[None] = Field(
        None, description="With `return_exceptions`: why this input failed."
    )


class BatchMetadata(BaseModel):
    run_ids: list[str]
    model: str
    usage: Usage = Field(description="The whole batch's.")
    latency_ms: int = Field(description="The whole batch's.")
    runs: list[BatchRun]


class BatchResponse(BaseModel):
    output: list[str | None] = Field(description="`null` for a failed input.")
    metadata: BatchMetadata


class RenderedMessage(BaseModel):
    role: str
    content: str


class Rendered(BaseModel):
    messages: list[RenderedMessage]
    model: str
    provider: str
    params: dict[str, Any]


class ChainFileError(BaseModel):
    file: str
    line: int
    where: str
    message: str
    text: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    chains: int
    runs_active: int
    errors: list[ChainFileError]


class ModelRef(BaseModel):
    provider: str
    id: str


class ChainInput(BaseModel):
    type: InputType
    required: bool
    description: str
    default: Any = None
    enum: list[Any] | SkipJsonSchema[None] = None
    max_length: int | SkipJsonSchema[None] = None


class ChainSummary(BaseModel):
    name: str
    description: str
    model: ModelRef
    inputs: dict[str, ChainInput]


class ChainList(BaseModel):
    chains: list[ChainSummary]
    errors: list[ChainFileError]


class ChainDetail(ChainSummary):
    input_schema: dict[str, Any] = Field(description="JSON Schema of the chain's inputs.")


class StreamUrl(BaseModel):
    url: str
    path: str = Field(description="The URL's path and query, for a page on this origin.")
    expires_at: str | None = Field(description="ISO 8601; null when the server has no keys.")
    signed: bool
    message: str | SkipJsonSchema[None] = Field(None, description="Why the URL is not signed.")


PLAIN_TEXT = (
    "The output text, written as the model produces it. A failure after the first chunk ends "
    "the body with a line `[error] <status>: <message> (request_id: <id>)`."
)
SERVER_SENT_EVENTS = """LangServe's Server-Sent Events, in order:

- `metadata`: `{"run_id": "…"}`
- `data`: one per chunk of output, as a JSON string
- `metadata` again: what the run cost — `run_id`, `model`, `usage`, `latency_ms`,
  `stop_reason`, `fallback_from` (after a fallback), `reasoning` (when the chain includes
  it), `guardrail` (a guardrail's trace)
- `end`: empty data; the output is complete

A failure after the first chunk ends the stream with an `error` event instead, its data the
error body (`status_code`, `code`, `message`, `request_id`)."""
STREAM_EVENTS = Events(
    {
        "metadata": StreamMetadata,
        "data": {"type": "string", "description": "A chunk of the output."},
        "end": None,
        "error": ErrorBody,
    }
)
RUN_ID = {"X-Run-Id": "The run's id (the `run_id` in metadata and logs)."}

# ---------------------------------------------------------------- LangServe's other routes

LANGSERVE_EVENTS = Events(
    {"data": {"type": "object"}, "end": None, "error": ErrorBody},
)
LANGSERVE_DESCRIPTION = (
    "LangServe's Server-Sent Events: one `data` event per item — an `astream_events` v2 event, "
    'or `{"ops": [...]}` of an `astream_log` patch — then `end`; a failure after the first '
    "item ends with `error` (the error body) instead."
)
JSON_SCHEMA = {"type": "object", "description": "A JSON Schema."}

# ---------------------------------------------------------------- OpenAI's Chat Completions


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None
    request_id: str | None = None


class OpenAIError(BaseModel):
    """The error body of every route under ``/v1/``: OpenAI's."""

    error: OpenAIErrorDetail


class OpenAIModel(BaseModel):
    id: str = Field(description="The chain's name.")
    object: Literal["model"]
    created: int = Field(description="When the chain file last changed (Unix time).")
    owned_by: str


class OpenAIModelList(BaseModel):
    object: Literal["list"]
    data: list[OpenAIModel]


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class OpenAIMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]


class StreamOptions(BaseModel):
    include_usage: bool | None = None


class ChatCompletionRequest(BaseModel):
    """The fields chains honour; other OpenAI fields are accepted when they ask for nothing
    (``n: 1``, ``user`` …), and refused with 400 naming them otherwise (``tools``, ``n: 2``)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, description="A chain's name: `GET /v1/models` lists them.")
    messages: list[OpenAIMessage] = Field(
        min_length=1, description="The conversation; the last message is the user's."
    )
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1, description="Up to the chain's own limit.")
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = Field(None, description="At most 4, none empty.")
    inputs: dict[str, Any] | None = Field(
        None, description="The chain's inputs other than the conversation's."
    )


class PromptTokensDetails(BaseModel):
    cached_tokens: int = Field(description="Prompt tokens read from the prompt cache.")


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | SkipJsonSchema[None] = Field(
        None, description="Only when the chain's prompt cache was used."
    )


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str
    refusal: str | None


class CompletionChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: None
    finish_reason: str


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    system_fingerprint: str | None


class Delta(BaseModel):
    role: Literal["assistant"] | SkipJsonSchema[None] = None
    content: str | SkipJsonSchema[None] = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    logprobs: None
    finish_reason: str | None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: str | None
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None


class OpenAIStreamItem(RootModel[ChatCompletionChunk | OpenAIError]):
    """A chunk, or (after the first) the failure that ends the stream."""


# ---------------------------------------------------------------- the AI SDK's useChat


class UIMessageChunk(BaseModel):
    """A chunk of the UI message stream protocol v1."""

    model_config = ConfigDict(extra="forbid")

    type: (
        Literal[
            "start", "start-step", "text-start", "text-delta", "text-end", "finish-step", "finish"
        ]
        | Literal["error"]
    )
    id: str | SkipJsonSchema[None] = None
    delta: str | SkipJsonSchema[None] = None
    messageId: str | SkipJsonSchema[None] = None
    messageMetadata: dict[str, Any] | SkipJsonSchema[None] = None
    finishReason: str | SkipJsonSchema[None] = None
    errorText: str | SkipJsonSchema[None] = Field(
        None, description="An `error` chunk: the JSON error body."
    )


UI_MESSAGE_STREAM = (
    "The AI SDK's UI message stream protocol v1 (header `x-vercel-ai-ui-message-stream: v1`): "
    "`start` (messageId: the run id), `start-step`, `text-start`, `text-delta` …, `text-end`, "
    "`finish-step`, `finish` (finishReason, messageMetadata: usage, latency, stop reason), then "
    "`[DONE]`. A failure after the first chunk is an `error` chunk, its `errorText` the JSON "
    "error body, then `[DONE]`."
)
