"""What a run reports besides its output: its id, token usage, latency and why it stopped —
for every protocol's ending (invoke's metadata, a stream's last event, OpenAI's finish_reason).
"""

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


class UsageCollector(BaseCallbackHandler):
    """Token counts and stop reason of a run, from the model's final message."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.stop_reason: str | None = None

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                metadata = getattr(message, "usage_metadata", None)
                if metadata:
                    self.usage.input_tokens += metadata.get("input_tokens", 0)
                    self.usage.output_tokens += metadata.get("output_tokens", 0)
                # Converse says stopReason, InvokeModel (ChatBedrock) stop_reason.
                response_metadata = getattr(message, "response_metadata", None) or {}
                reason = response_metadata.get("stopReason") or response_metadata.get("stop_reason")
                if reason:
                    self.stop_reason = str(reason)


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
    "tool_use": "tool_calls",
}


@dataclass
class RunInfo:
    """What a run reports besides its output."""

    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None  # set when the run ended; until then latency runs on
    collector: UsageCollector = field(default_factory=UsageCollector)

    def config(self, base: dict[str, Any]) -> dict[str, Any]:
        return {**base, "run_id": uuid.UUID(self.run_id), "callbacks": [self.collector]}

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
    def finish_reason(self) -> str | None:
        """:data:`FINISH_REASONS` of the stop reason; ``None`` if unknown or not given."""
        return FINISH_REASONS.get(self.stop_reason or "")

    def summary(self) -> dict[str, Any]:
        """The run id, usage, latency and stop reason (when the model gave one), as invoke's
        metadata has them: the end of an SSE stream."""
        summary: dict[str, Any] = {
            "run_id": self.run_id,
            "usage": self.usage.as_dict(),
            "latency_ms": self.latency_ms,
        }
        if self.stop_reason:
            summary["stop_reason"] = self.stop_reason
        return summary
