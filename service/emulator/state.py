"""The emulator's mutable state: pacing, queued faults, and a record of every call.

Owned by one emulator app instance (never module-level), changed through the control
endpoints (``/_emulator/...``) or directly by in-process tests.
"""

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal[
    "throttle",  # 429 ThrottlingException before the stream
    "access_denied",  # 403 AccessDeniedException (model not enabled, no permission)
    "unknown_model",  # 400 ValidationException: invalid model identifier
    "not_ready",  # 429 ModelNotReadyException
    "unavailable",  # 503 ServiceUnavailableException
    "model_timeout",  # 408 ModelTimeoutException
    "slow_first_token",  # wait delay_ms before the first event
    "stream_error",  # modelStreamErrorException after after_chunks tokens
    "stream_throttle",  # throttlingException after after_chunks tokens
    "stream_corrupt",  # a frame with a bad checksum after after_chunks tokens
    "stall",  # pause delay_ms after after_chunks tokens, then go on
]
STREAM_FAULTS = ("stream_error", "stream_throttle", "stream_corrupt", "stall")


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
        """``KIND[:N]`` from the command line, N being after_chunks or delay_ms; persistent."""
        kind, _, number = text.partition(":")
        value = int(number) if number else 0
        key = "delay_ms" if kind == "slow_first_token" else "after_chunks"
        fields = {"kind": kind, key: value, "times": 0}
        if kind == "stall":
            fields["delay_ms"] = 10_000
        return cls.model_validate(fields)


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
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None  # when the first token was sent (streams), monotonic
    ended: float | None = None

    def end(self, status: str) -> None:
        self.status, self.ended = status, time.monotonic()


@dataclass
class EmulatorState:
    pace: Pace = field(default_factory=Pace)
    faults: list[Fault] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
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

    def add_faults(self, faults: list[Fault]) -> None:
        with self._lock:
            self.faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.pace, faults = self._initial[0].model_copy(), self._initial[1]
            self.faults[:] = faults
            self.calls.clear()

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
