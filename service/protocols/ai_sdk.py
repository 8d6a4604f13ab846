"""The Vercel AI SDK's chat protocol: ``POST /chains/{name}/chat`` for ``useChat``.

Request: the body ``DefaultChatTransport`` sends (``ai`` 5 and 6) — ``{"id", "messages":
[UI messages], "trigger", "messageId"}`` plus the fields the app adds through the transport's
or ``sendMessage``'s ``body``; ours is ``inputs``, the chain's other inputs. The text parts of
each message are its turn, filled into the chain's inputs by the one conversation rule
(:mod:`service.chains.conversation`).

Response: the UI message stream protocol v1 (header ``x-vercel-ai-ui-message-stream: v1``),
Server-Sent Events of one JSON chunk each::

    start (messageId = run id, messageMetadata {run_id, model}), start-step, text-start,
    text-delta …, text-end, finish-step, finish (finishReason, messageMetadata {usage,
    latency_ms, stop_reason}), [DONE]

The reader validates every chunk against a zod schema, strict (unknown keys refused) in
``ai`` 6.0.0 and the 5.0 releases: chunks carry only the schema's keys. ``finishReason`` is in
that schema from ``ai`` 5.0.92 on (older readers refuse it). A failure after the first chunk
is an ``error`` chunk whose ``errorText`` is the JSON error body, then ``[DONE]``: the same
text ``useChat`` shows as ``error.message`` for a failure before the stream (a non-2xx
response's body).
"""

import json
from collections.abc import Mapping
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.chains.catalog import Chain
from service.chains.conversation import Turn, conversation_inputs
from service.chains.inputs import parse_body
from service.protocols import running
from service.runs import errors
from service.runs.errors import ApiError
from service.runs.info import RunInfo

router = APIRouter()


class UIMessage(BaseModel):
    """A message as ``useChat`` keeps it; only ``role`` and the text of ``parts`` are used."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]] = Field(
        description="The message's parts; text parts are its text, joined by blank lines. "
        "Image file parts (the last message's) fill the chain's image inputs; other file parts "
        "are refused; other parts (reasoning, step-start, source, tool, data) are skipped."
    )

    @model_validator(mode="before")
    @classmethod
    def _not_ai_v4(cls, data: Any) -> Any:
        if isinstance(data, dict) and "parts" not in data and "content" in data:
            raise ValueError(
                "has content but no parts: send UI messages with parts, as useChat does from "
                "ai 5 on (ai 4's data stream protocol is not served)"
            )
        return data


class ChatRequest(BaseModel):
    """The body ``DefaultChatTransport`` sends; other fields the app adds are ignored."""

    model_config = ConfigDict(extra="allow")

    id: str | None = Field(None, description="The chat's id (useChat's); not used.")
    messages: list[UIMessage] = Field(
        min_length=1, description="The conversation; the last message is the user's."
    )
    trigger: str | None = Field(None, description="submit-message or regenerate-message.")
    messageId: str | None = None
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="The chain's inputs other than the conversation's, validated as /invoke's.",
    )


@router.post(
    "/chains/{name}/chat",
    tags=["ai-sdk"],
    summary="Chat with a chain from the Vercel AI SDK's useChat (UI message stream protocol v1)",
)
async def chat(request: Request, name: str) -> StreamingResponse:
    chain = running.catalog(request).get(name)
    body = await running.read_body(request)
    variables = chat_variables(chain, body)
    config = {"run_name": chain.name}  # traces (LangSmith) name the run after the chain
    return await running.stream_run(
        request, chain, variables, config, UIMessageStream(chain.model_id), route="chat"
    )


def chat_variables(chain: Chain, body: bytes) -> dict[str, Any]:
    """A ``useChat`` request body → the chain's prompt variables; 4xx naming the field."""
    chat = parse_body(ChatRequest, body)
    for field in chat.model_extra or {}:
        if field in chain.spec.inputs:
            raise errors.bad_request(
                field,
                f'an input of chain {chain.name!r} goes inside "inputs" '
                f'({{"inputs": {{"{field}": …}}}}), not at the top level of the body',
            )
    return conversation_inputs(chain, _turns(chat.messages), chat.inputs, chain_field="name")


def _turns(messages: list[UIMessage]) -> list[Turn]:
    turns = []
    last = len(messages) - 1
    for index, message in enumerate(messages):
        texts, images = [], []
        for at, part in enumerate(message.parts):
            kind = part.get("type")
            where = f"messages.{index}.parts.{at}"
            if kind == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise errors.bad_request(
                        f"{where}.text", "a text part needs its text, a string"
                    )
                texts.append(text)
            elif kind == "file" and str(part.get("mediaType") or "").startswith("image/"):
                url = part.get("url")
                if not isinstance(url, str):
                    raise errors.bad_request(f"{where}.url", "an image part needs its data URL")
                images.append(url)  # the chain's image input validates it
            elif kind == "file":
                raise errors.bad_request(
                    where,
                    f"file parts ({part.get('mediaType') or 'no media type'}) are not supported; "
                    "send text parts, and images (image/png, image/jpeg, image/gif, image/webp)",
                )
            elif not isinstance(kind, str):
                raise errors.bad_request(f"{where}.type", "each part needs a type, a string")
            # Any other part (reasoning, step-start, sources, tools, data-*, and types newer
            # than this code) is the assistant's workings or the app's own data, not what was
            # said: it is not sent. (A chain has no tools: tool parts come from elsewhere.)
        if index == last and message.role == "user" and not texts:
            raise errors.bad_request(
                f"messages.{index}", "has no text part; send the user's message as a text part"
            )
        # An earlier message with no text (a tool call only, say) said nothing to pass on;
        # the last one stays, so a conversation that does not end with the user's is refused.
        if texts or images or index == last:
            turns.append(Turn(message.role, "\n\n".join(texts), tuple(images)))
    return turns


class UIMessageStream:
    """The UI message stream protocol v1: one ``data: {chunk}`` event per part, ``[DONE]`` last.

    Chunks that arrived together are one ``text-delta``: on the per-chunk path, the bytes
    around each delta are made once per response.
    """

    media_type = "text/event-stream"
    headers: Mapping[str, str] = {"x-vercel-ai-ui-message-stream": "v1"}

    _TEXT_ID = "text-1"  # one text part per message: unique within it is all the id must be
    _DELTA = b'data: {"type":"text-delta","id":"' + _TEXT_ID.encode() + b'","delta":'
    _DONE = b"data: [DONE]\n\n"

    def __init__(self, model_id: str) -> None:
        self._model_id = model_id

    def opening(self, info: RunInfo) -> bytes:
        start = {
            "type": "start",
            "messageId": info.run_id,
            "messageMetadata": {"run_id": info.run_id, "model": self._model_id},
        }
        return (
            _event(start)
            + _event({"type": "start-step"})
            + _event({"type": "text-start", "id": self._TEXT_ID})
        )

    def chunks(self, chunks: list[str]) -> bytes:
        return self._DELTA + json.dumps("".join(chunks)).encode() + b"}\n\n"

    def closing(self, info: RunInfo) -> bytes:
        metadata: dict[str, Any] = {"usage": info.usage.as_dict(), "latency_ms": info.latency_ms}
        finish: dict[str, Any] = {"type": "finish"}
        if info.stop_reason:
            metadata["stop_reason"] = info.stop_reason
            finish["finishReason"] = (info.finish_reason or "other").replace("_", "-")
        finish["messageMetadata"] = metadata
        reasoning = b""
        if info.collector.reasoning:  # reasoning.include: a reasoning part, known at the end
            part = {"id": "reasoning-0"}
            reasoning = (
                _event({"type": "reasoning-start", **part})
                + _event({"type": "reasoning-delta", **part, "delta": info.collector.reasoning})
                + _event({"type": "reasoning-end", **part})
            )
            metadata["reasoning"] = info.collector.reasoning
        if info.collector.guardrail:
            metadata["guardrail"] = info.collector.guardrail
        return (
            reasoning
            + _event({"type": "text-end", "id": self._TEXT_ID})
            + _event({"type": "finish-step"})
            + _event(finish)
            + self._DONE
        )

    def error(self, error: ApiError, request_id: str) -> bytes:
        # The body a failure before the stream has, as compact as that response's.
        text = json.dumps(error.body(request_id), separators=(",", ":"))
        return _event({"type": "error", "errorText": text}) + self._DONE


def _event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
