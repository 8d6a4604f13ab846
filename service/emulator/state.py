"""The emulator's mutable state: pacing, queued faults, and a record of every call.

Owned by one emulator app instance (never module-level), changed through the control
endpoints (``/_emulator/...``) or directly by in-process tests.
"""

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal[
    # Errors before the stream (any operation), as Bedrock sends them:
    "throttle",  # 429 ThrottlingException
    "access_denied",  # 403 AccessDeniedException (model not enabled, no permission)
    "unknown_model",  # 400 ValidationException: invalid model identifier
    "not_found",  # 404 ResourceNotFoundException (e.g. a model past its end of life)
    "quota_exceeded",  # 400 ServiceQuotaExceededException
    "model_error",  # 424 ModelErrorException (originalStatusCode, resourceName)
    "internal",  # 500 InternalServerException
    "not_ready",  # 429 ModelNotReadyException
    "unavailable",  # 503 ServiceUnavailableException
    "model_timeout",  # 408 ModelTimeoutException
    "slow_first_token",  # wait delay_ms before the first event
    # Failures inside the stream, after after_chunks tokens (for Converse and InvokeModel, the
    # matching HTTP error instead):
    "stream_error",  # modelStreamErrorException (originalStatusCode, originalMessage)
    "stream_throttle",  # throttlingException
    "stream_internal",  # internalServerException
    "stream_validation",  # validationException
    "stream_unavailable",  # serviceUnavailableException
    "stream_model_timeout",  # modelTimeoutException (ConverseStream: modelStreamErrorException)
    "stream_corrupt",  # a frame with a bad checksum
    "stall",  # pause delay_ms, then go on
    # A reply that is wrong, not an error:
    "invalid_output",  # structured output (a forced tool, outputConfig) that breaks its schema
]
STREAM_FAULTS = (
    "stream_error",
    "stream_throttle",
    "stream_internal",
    "stream_validation",
    "stream_unavailable",
    "stream_model_timeout",
    "stream_corrupt",
    "stall",
)
STALL_MS = 10_000  # `--fault stall:N` without :MS


class Pace(BaseModel):
    """How fast replies come: time to first token, then tokens per second (0 = no wait)."""

    model_config = ConfigDict(extra="forbid")

    ttft_ms: float = Field(0, ge=0)
    tokens_per_second: float = Field(0, ge=0)
    reply_tokens: int | None = Field(
        None, ge=1, description="Make every reply exactly this long (repeating the transcript)."
    )


class Fault(BaseModel):
    """A failure the next matching call(s) will show."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    after_chunks: int = Field(0, ge=0, description="Stream faults: tokens sent before failing.")
    delay_ms: int = Field(0, ge=0, description="slow_first_token and stall: the extra wait.")
    times: int = Field(1, ge=0, description="How many calls it hits; 0 = every call until cleared.")
    model: str | None = Field(None, description="Only calls for this model id.")

    @classmethod
    def parse_cli(cls, text: str) -> "Fault":
        """A persistent fault from the command line: ``KIND``, ``slow_first_token:MS``,
        ``STREAM_KIND:N`` (after N tokens) or ``stall:N[:MS]`` (MS default 10000); then
        ``@MODEL`` for one model's calls only (``throttle@anthropic.claude-…-v1:0``)."""
        text, _, model = text.partition("@")
        kind, *numbers = text.split(":")
        if kind not in get_args(FaultKind):
            raise ValueError(f"{text}: unknown fault kind; one of {', '.join(get_args(FaultKind))}")
        try:
            values = [int(number) for number in numbers]
        except ValueError:
            raise ValueError(f"{text}: expected whole numbers after the kind") from None
        if kind == "slow_first_token":
            keys, form = ["delay_ms"], f"{kind}[:MS]"
        elif kind == "stall":
            keys, form = ["after_chunks", "delay_ms"], f"{kind}[:N[:MS]]"
            values += [0, STALL_MS][len(values) :]
        elif kind in STREAM_FAULTS:
            keys, form = ["after_chunks"], f"{kind}[:N]"
        else:
            keys, form = [], kind
        if len(values) > len(keys):
            raise ValueError(f"{text}: expected {form}")
        return cls.model_validate(
            {
                "kind": kind,
                **dict(zip(keys, values, strict=False)),
                "times": 0,
                "model": model or None,
            }
        )


@dataclass
class Call:
    """One API call the emulator answered."""

    id: int
    operation: str
    model: str
    tokens_planned: int = 0
    tokens_sent: int = 0
    status: str = "running"  # running | completed | failed | disconnected
    fault: str | None = None
    http_version: str = "1.1"  # "2" for HTTP/2 (the AWS SDK for JavaScript)
    request_id: str = ""  # the x-amzn-RequestId it was answered with
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None  # when the first token was sent (streams), monotonic
    ended: float | None = None
    request: dict[str, Any] = field(default_factory=dict)
    """The request's fields besides the conversation (Converse: inferenceConfig, guardrailConfig,
    additionalModelRequestFields…; InvokeModel: the body's, and its control ``headers`` by the
    API's names: guardrailIdentifier, serviceTier…)."""

    def end(self, status: str) -> None:
        self.status, self.ended = status, time.monotonic()


@dataclass
class EmulatorState:
    pace: Pace = field(default_factory=Pace)
    faults: list[Fault] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    prompt_cache: set[str] = field(default_factory=set)
    """The prompt prefixes cached so far (digests of what precedes a cache point)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # What reset() returns to: the pace and faults the emulator was started with.
        self._initial = (self.pace.model_copy(), list(self.faults))

    def start_call(self, operation: str, model: str) -> Call:
        with self._lock:
            call = Call(id=len(self.calls) + 1, operation=operation, model=model)
            self.calls.append(call)
            return call

    def take_fault(self, model: str) -> Fault | None:
        """The first queued fault that applies to ``model``, used up once."""
        with self._lock:
            for index, fault in enumerate(self.faults):
                if fault.model not in (None, model):
                    continue
                if fault.times == 1:
                    del self.faults[index]
                elif fault.times > 1:
                    self.faults[index] = fault.model_copy(update={"times": fault.times - 1})
                return fault
            return None

    def cache_prompt(self, key: str) -> bool:
        """Cache a prompt prefix; whether it was cached already (a read, not a write)."""
        with self._lock:
            hit = key in self.prompt_cache
            self.prompt_cache.add(key)
            return hit

    def add_faults(self, faults: list[Fault]) -> None:
        with self._lock:
            self.faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.pace, faults = self._initial[0].model_copy(), self._initial[1]
            self.faults[:] = faults
            self.calls.clear()
            self.prompt_cache.clear()

    def peak_concurrency(self) -> int:
        """The most calls that were running at the same moment."""
        with self._lock:
            edges = [(call.started, 1) for call in self.calls]
            edges += [(call.ended, -1) for call in self.calls if call.ended is not None]
        running = peak = 0
        for _, step in sorted(edges):
            running += step
            peak = max(peak, running)
        return peak

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pace": self.pace.model_dump(),
                "faults": [fault.model_dump() for fault in self.faults],
                "calls": [asdict(call) for call in self.calls],
            }
