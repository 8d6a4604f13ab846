"""What a run reports besides its output: its id, token usage, latency and why it stopped —
for every protocol's ending (invoke's metadata, a stream's last event, OpenAI's finish_reason).
"""

import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from service.runs import model_output


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    # Of input_tokens: read from Bedrock's prompt cache, and written to it (cache: true).
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, int]:
        """The counts; the cache's only when the model read or wrote it (non-zero)."""
        counts = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cache_read_tokens or self.cache_write_tokens:
            counts["cache_read_tokens"] = self.cache_read_tokens
            counts["cache_write_tokens"] = self.cache_write_tokens
        return counts


@dataclass
class ModelCall:
    """One model call of a run (a fallback makes two or more), as traces and prompt logs show
    it. ``messages`` and ``reply`` are references to what LangChain already holds, not copies."""

    model: str
    started_ns: int  # wall clock (time.time_ns), as trace spans take it
    params: dict[str, Any]  # temperature, max_tokens, as the model reports them
    messages: list[BaseMessage]
    ended_ns: int | None = None
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    error: BaseException | None = None
    reply: BaseMessage | None = None


# LangChain's ls_* metadata of a chat model call → the request parameter it reports (not
# ls_stop: stop sequences may come from a caller).
_CALL_PARAMS = {"ls_temperature": "temperature", "ls_max_tokens": "max_tokens"}


class UsageCollector(BaseCallbackHandler):
    """Token counts and stop reason of a run, from the model's final message; and which model
    answered, with those that failed before it (fallbacks); each model call (``calls``)."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.stop_reason: str | None = None
        self.model: str | None = None
        self.calls: list[ModelCall] = []
        self._started: dict[UUID, ModelCall] = {}
        self.reasoning = ""  # the model's reasoning text, when the chain file includes it
        self.guardrail: dict[str, Any] | None = None  # a guardrail's trace (trace: enabled)
        self._include_reasoning: set[UUID] = set()

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        metadata = metadata or {}
        # langchain-aws names the model it calls in LangSmith's metadata (the model id).
        call = ModelCall(
            model=str(metadata.get("ls_model_name") or ""),
            started_ns=time.time_ns(),
            params={
                name: metadata[key]
                for key, name in _CALL_PARAMS.items()
                if metadata.get(key) is not None
            },
            messages=messages[0] if messages else [],
        )
        self._started[run_id] = call
        self.calls.append(call)
        if metadata.get(model_output.INCLUDE_REASONING):
            self._include_reasoning.add(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._started.pop(run_id, None)
        if call is None:
            return
        call.ended_ns, call.error = time.time_ns(), error

    @property
    def failed_models(self) -> list[str]:
        """The models whose calls failed, in the order they were called."""
        return [call.model for call in self.calls if call.error is not None and call.model]

    def failed_with(self, error: BaseException) -> str | None:
        """The model whose call raised ``error`` (or the error it was raised as: ``__cause__``)."""
        for call in self.calls:
            failed = call.error
            if call.model and failed is not None and (failed is error or failed is error.__cause__):
                return call.model
        return None

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._started.pop(run_id, None) or ModelCall("", time.time_ns(), {}, [])
        call.ended_ns = time.time_ns()
        self.model = call.model or self.model
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                call.reply = message or call.reply
                metadata = getattr(message, "usage_metadata", None)
                if metadata:
                    call.usage.input_tokens += metadata.get("input_tokens", 0)
                    call.usage.output_tokens += metadata.get("output_tokens", 0)
                self._read_controls(message, run_id, call.usage)
                # Converse says stopReason, InvokeModel (ChatBedrock) stop_reason.
                response_metadata = getattr(message, "response_metadata", None) or {}
                reason = response_metadata.get("stopReason") or response_metadata.get("stop_reason")
                if reason:
                    self.stop_reason = call.stop_reason = str(reason)
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            setattr(self.usage, name, getattr(self.usage, name) + getattr(call.usage, name))

    def _read_controls(self, message: Any, run_id: UUID, usage: Usage) -> None:
        """Cache tokens, the reasoning text (if the chain file includes it) and the guardrail's
        trace of a final message (``model_output``)."""
        read, written = model_output.cache_tokens(getattr(message, "usage_metadata", None))
        usage.cache_read_tokens += read
        usage.cache_write_tokens += written
        if run_id in self._include_reasoning:
            self._include_reasoning.discard(run_id)
            self.reasoning += model_output.reasoning_text(message)
        trace = model_output.guardrail_trace(getattr(message, "response_metadata", None) or {})
        self.guardrail = trace or self.guardrail


# Why a model stopped (Bedrock's stop reasons, Converse's and InvokeModel's) → why the run
# finished, in the words chat protocols use (OpenAI's spelling; the AI SDK's has hyphens).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "refusal": "content_filter",
    # Chains offer callers no tools: a tool_use stop is structured output's forced tool,
    # whose input is the whole reply.
    "tool_use": "stop",
}


@dataclass
class RunInfo:
    """What a run reports besides its output."""

    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None  # set when the run ended; until then latency runs on
    first_output: float | None = None  # when a stream's first chunk reached the loop
    collector: UsageCollector = field(default_factory=UsageCollector)
    stream: bool = False  # the client asked for a stream (a stream route)
    failed_model: str | None = None  # the model the run's failure is named after (errors)
    error: BaseException | None = None  # a batch input's own exception (runs/batch.py)
    # perf_counter seconds → wall clock ns, taken once: a batch restarts ``started`` later.
    _wall_offset_ns: int = field(
        default_factory=lambda: time.time_ns() - round(time.perf_counter() * 1e9), repr=False
    )

    def config(self, base: dict[str, Any]) -> dict[str, Any]:
        return {**base, "run_id": uuid.UUID(self.run_id), "callbacks": [self.collector]}

    @property
    def ttft_ms(self) -> int | None:
        """Time to first token: from the run's start to its first chunk (streams only)."""
        if self.first_output is None:
            return None
        return round((self.first_output - self.started) * 1000)

    def wall_ns(self, moment: float) -> int:
        """A ``perf_counter`` moment of this run on the wall clock (ns), as traces take it."""
        return self._wall_offset_ns + round(moment * 1e9)

    @property
    def started_ns(self) -> int:
        """When the run started, on the wall clock (ns)."""
        return self.wall_ns(self.started)

    @property
    def answered_by_fallback(self) -> bool:
        """A fallback answered: the chain's model (and maybe others) failed first."""
        return bool(self.model and self.fallback_from)

    @property
    def latency_ms(self) -> int:
        return round(((self.ended or time.perf_counter()) - self.started) * 1000)

    @property
    def usage(self) -> Usage:
        return self.collector.usage

    @property
    def stop_reason(self) -> str | None:
        """Why the model stopped (``end_turn``, ``max_tokens``, ``stop_sequence`` …), if it said."""
        return self.collector.stop_reason

    @property
    def model(self) -> str | None:
        """The model that answered (a fallback, if the chain's model failed), once it has."""
        return self.collector.model

    def model_for(self, error: BaseException) -> str | None:
        """The model that failed with ``error`` (or, for a failure of its reply — one that
        does not conform to the output schema — the model that answered); None: unknown."""
        return self.collector.failed_with(error) or self.model

    @property
    def fallback_from(self) -> list[str]:
        """The models that failed before the one that answered, in the order tried."""
        return self.collector.failed_models

    @property
    def finish_reason(self) -> str | None:
        """:data:`FINISH_REASONS` of the stop reason; ``None`` if unknown or not given."""
        return FINISH_REASONS.get(self.stop_reason or "")

    def summary(self) -> dict[str, Any]:
        """The run id, the model that answered, usage, latency and stop reason (when the model
        gave one), and the models that failed before it (when a fallback answered), as
        invoke's metadata has them: the end of an SSE stream."""
        summary: dict[str, Any] = {"run_id": self.run_id}
        if self.model:
            summary["model"] = self.model
        summary |= {"usage": self.usage.as_dict(), "latency_ms": self.latency_ms}
        if self.stop_reason:
            summary["stop_reason"] = self.stop_reason
        if self.answered_by_fallback:
            summary["fallback_from"] = self.fallback_from
        if self.collector.reasoning:
            summary["reasoning"] = self.collector.reasoning
        if self.collector.guardrail:
            summary["guardrail"] = self.collector.guardrail
        return summary
