"""The two parsers of a structured chain (see :mod:`service.chains.structured`): imported only
when a chain has ``output``, since defining them (pydantic models) costs cold start time."""

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.output_parsers import BaseTransformOutputParser
from langchain_core.outputs import ChatGeneration, Generation

from service.chains.structured import GuardrailIntervened, OutputNotConforming, conforming_object

GUARDRAIL_STOP = "guardrail_intervened"


class JsonText(BaseTransformOutputParser[AIMessageChunk]):
    """A model's reply reduced to its JSON text, delta by delta: the arguments of its first
    tool call (function calling; any text the model writes before the call is dropped), or its
    text (json_schema). Each delta is a message chunk's content, so that the fallbacks' first
    token (``fallbacks.FirstToken``) is the first piece of JSON.

    A reply its guardrail stopped (stop reason ``guardrail_intervened``) raises
    :class:`GuardrailIntervened`: its text is the guardrail's message, not the object. So that
    this is known before any output is sent (a real status, not an error in the body), json_schema
    text is held back until it starts like a JSON object (``{``): a guardrail's message never
    does, and text that does not is not the object anyway (the check says so at the end)."""

    method: str

    def parse(self, text: str) -> AIMessageChunk:
        return AIMessageChunk(content=text if self.method == "json_schema" else "")

    def parse_result(self, result: list[Any], *, partial: bool = False) -> AIMessageChunk:
        _refuse_guardrail(getattr(result[0], "message", None))
        return AIMessageChunk(content=self._text(result[0]))

    def _text(self, generation: Any) -> str:
        message = getattr(generation, "message", None)
        if not isinstance(message, BaseMessage):
            return str(self.parse(generation.text).content)
        if self.method == "json_schema":
            return message.text
        chunks = getattr(message, "tool_call_chunks", None)
        if chunks is not None:  # a streamed delta (the tool is forced: there is one call)
            return "".join(chunk.get("args") or "" for chunk in chunks)
        calls = getattr(message, "tool_calls", None) or []
        if calls:
            return json.dumps(calls[0]["args"])
        invalid = getattr(message, "invalid_tool_calls", None) or []
        if invalid:  # arguments that were not JSON: the check says so
            return str(invalid[0].get("args") or "")
        raise OutputNotConforming("the model did not call the output tool (its reply is text)")

    def _step(self, chunk: str | BaseMessage) -> AIMessageChunk:
        if isinstance(chunk, BaseMessage):
            return self.parse_result([ChatGeneration(message=chunk)])
        return self.parse_result([Generation(text=chunk)])

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[AIMessageChunk]:
        start = _JsonStart(held=self.method == "json_schema")
        for chunk in input:
            yield start.step(self._step(chunk))
        yield from start.rest()

    async def _atransform(
        self, input: AsyncIterator[str | BaseMessage]
    ) -> AsyncIterator[AIMessageChunk]:
        start = _JsonStart(held=self.method == "json_schema")
        async for chunk in input:
            yield start.step(self._step(chunk))
        for rest in start.rest():
            yield rest

    @property
    def _type(self) -> str:
        return "chainserve_json_text"


class _JsonStart:
    """Holds a reply's text back until it starts like a JSON object (see :class:`JsonText`)."""

    def __init__(self, held: bool) -> None:
        self.held: list[str] | None = [] if held else None

    def step(self, delta: AIMessageChunk) -> AIMessageChunk:
        if self.held is None:
            return delta
        self.held.append(str(delta.content))
        text = "".join(self.held)
        if not text.lstrip().startswith("{"):
            return AIMessageChunk(content="")  # the chunk still passes: it may carry metadata
        self.held = None
        return AIMessageChunk(content=text)

    def rest(self) -> Iterator[AIMessageChunk]:
        if self.held:  # never started like JSON: the check says it is not
            yield AIMessageChunk(content="".join(self.held))


def _refuse_guardrail(message: Any) -> None:
    metadata = getattr(message, "response_metadata", None) or {}
    # Converse says stopReason, InvokeModel (ChatBedrock) stop_reason (as runs.info reads them).
    if GUARDRAIL_STOP in (metadata.get("stopReason"), metadata.get("stop_reason")):
        raise GuardrailIntervened("a guardrail intervened (stop reason guardrail_intervened)")


class ConformingObject(BaseTransformOutputParser[Any]):
    """The JSON text as it streams; at its end (and on ``invoke``) the object it makes,
    checked against the chain's schema."""

    json_schema: dict[str, Any]

    def parse(self, text: str) -> Any:
        return conforming_object(self.json_schema, text)

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[Any]:
        seen: list[str] = []
        for chunk in input:
            text = chunk if isinstance(chunk, str) else chunk.text
            if text:
                seen.append(text)
                yield text
        self.parse("".join(seen))  # raises if it does not conform: the stream ends in error

    async def _atransform(self, input: AsyncIterator[str | BaseMessage]) -> AsyncIterator[Any]:
        seen: list[str] = []
        async for chunk in input:
            text = chunk if isinstance(chunk, str) else chunk.text
            if text:
                seen.append(text)
                yield text
        self.parse("".join(seen))

    def get_output_jsonschema(self, config: Any = None) -> dict[str, Any]:
        return self.json_schema

    @property
    def _type(self) -> str:
        return "chainserve_conforming_object"
