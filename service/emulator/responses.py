"""What the emulator sends back: Bedrock's JSON replies, event streams and errors.

Each responder paces the reply (time to first token, tokens per second) and plays the call's
fault, if any: an HTTP error before the stream, or a failure inside it.
"""

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

from service.emulator import eventstream
from service.emulator.replies import Reply
from service.emulator.state import STREAM_FAULTS, Call, EmulatorState, Fault, Pace

EVENTSTREAM = "application/vnd.amazon.eventstream"

# Fault kind → (HTTP status, Bedrock error code, message), as Bedrock answers them.
ERRORS: dict[str, tuple[int, str, str]] = {
    "throttle": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "access_denied": (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    "unknown_model": (400, "ValidationException", "The provided model identifier is invalid."),
    "not_ready": (429, "ModelNotReadyException", "Model is not ready for inference."),
    "unavailable": (503, "ServiceUnavailableException", "Service is unavailable."),
    "model_timeout": (408, "ModelTimeoutException", "Model has timed out in processing."),
}
# In-stream fault kind → (exception event type, message); for non-streaming calls, an HTTP error.
_STREAM_ERRORS = {
    "stream_error": ("modelStreamErrorException", "The model stream failed (emulated)."),
    "stream_throttle": ("throttlingException", "Too many tokens, please wait (emulated)."),
}
_STREAM_ERRORS_HTTP = {
    "stream_error": (424, "ModelErrorException", "The model failed (emulated)."),
    "stream_corrupt": (500, "InternalServerException", "The model failed (emulated)."),
    "stream_throttle": (429, "ThrottlingException", "Too many tokens, please wait (emulated)."),
}


class BedrockError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return JSONResponse(
            {"message": self.message},
            status_code=self.status,
            headers={"x-amzn-ErrorType": f"{self.code}:http://internal.amazon.com/coral/"},
        )


async def _first_token_wait(pace: Pace, fault: Fault | None) -> None:
    delay = pace.ttft_ms + (fault.delay_ms if fault and fault.kind == "slow_first_token" else 0)
    if delay:
        await asyncio.sleep(delay / 1000)


def _stream_fault(fault: Fault | None) -> Fault | None:
    return fault if fault and fault.kind in STREAM_FAULTS else None


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
        "totalTokens": reply.input_tokens + reply.output_tokens,
    }


async def _whole_reply(reply: Reply, call: Call, fault: Fault | None, state: EmulatorState) -> None:
    """A non-streaming call: wait as the first token would, then fail or complete at once."""
    await _first_token_wait(state.pace, fault)
    if (stream_fault := _stream_fault(fault)) is not None:
        if stream_fault.kind == "stall":
            await asyncio.sleep(stream_fault.delay_ms / 1000)
        else:
            raise BedrockError(*_STREAM_ERRORS_HTTP[stream_fault.kind])
    call.tokens_sent = reply.output_tokens
    call.end("completed")


async def converse(reply: Reply, call: Call, fault: Fault | None, state: EmulatorState) -> Response:
    started = time.monotonic()
    await _whole_reply(reply, call, fault, state)
    return JSONResponse(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": reply.text}]}},
            "stopReason": reply.stop_reason,
            "usage": _usage(reply),
            "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
        }
    )


async def invoke(reply: Reply, call: Call, fault: Fault | None, state: EmulatorState) -> Response:
    await _whole_reply(reply, call, fault, state)
    return JSONResponse(
        {
            "id": f"msg_emulator_{call.id}",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        },
        headers={
            "X-Amzn-Bedrock-Input-Token-Count": str(reply.input_tokens),
            "X-Amzn-Bedrock-Output-Token-Count": str(reply.output_tokens),
        },
    )


async def converse_stream(
    reply: Reply, call: Call, fault: Fault | None, state: EmulatorState
) -> Response:
    def frames(token: str | None) -> list[bytes]:
        if token is None:
            return [eventstream.event("messageStart", {"role": "assistant"})]
        return [
            eventstream.event(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": token}}
            )
        ]

    def closing(started: float) -> list[bytes]:
        return [
            eventstream.event("contentBlockStop", {"contentBlockIndex": 0}),
            eventstream.event("messageStop", {"stopReason": reply.stop_reason}),
            eventstream.event(
                "metadata",
                {
                    "usage": _usage(reply),
                    "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
                },
            ),
        ]

    return _event_stream(reply, call, fault, state, frames, closing, {})


async def invoke_stream(
    reply: Reply, call: Call, fault: Fault | None, state: EmulatorState
) -> Response:
    def chunk(payload: dict[str, Any]) -> bytes:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return eventstream.event("chunk", {"bytes": base64.b64encode(raw).decode()})

    def frames(token: str | None) -> list[bytes]:
        if token is not None:
            delta = {"type": "text_delta", "text": token}
            return [chunk({"type": "content_block_delta", "index": 0, "delta": delta})]
        message: dict[str, Any] = {
            "id": f"msg_emulator_{call.id}",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
        }
        return [
            chunk({"type": "message_start", "message": message}),
            chunk(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                }
            ),
        ]

    def closing(started: float) -> list[bytes]:
        latency = int((time.monotonic() - started) * 1000)
        return [
            chunk({"type": "content_block_stop", "index": 0}),
            chunk(
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": reply.stop_reason,
                        "stop_sequence": reply.stop_sequence,
                    },
                    "usage": {"output_tokens": reply.output_tokens},
                }
            ),
            chunk(
                {
                    "type": "message_stop",
                    "amazon-bedrock-invocationMetrics": {
                        "inputTokenCount": reply.input_tokens,
                        "outputTokenCount": reply.output_tokens,
                        "invocationLatency": latency,
                        "firstByteLatency": latency,
                    },
                }
            ),
        ]

    headers = {"X-Amzn-Bedrock-Content-Type": "application/json"}
    return _event_stream(reply, call, fault, state, frames, closing, headers)


def _event_stream(
    reply: Reply,
    call: Call,
    fault: Fault | None,
    state: EmulatorState,
    frames: Callable[[str | None], list[bytes]],
    closing: Callable[[float], list[bytes]],
    headers: dict[str, str],
) -> Response:
    """Stream ``frames(None)`` (the opening), one ``frames(token)`` per token, then ``closing``."""
    pace = state.pace
    stream_fault = _stream_fault(fault)
    gap = 1 / pace.tokens_per_second if pace.tokens_per_second else 0.0

    async def body() -> AsyncIterator[bytes]:
        started = time.monotonic()
        try:
            await _first_token_wait(pace, fault)
            for frame in frames(None):
                yield frame
            for index, token in enumerate(reply.tokens):
                if stream_fault is not None and index == stream_fault.after_chunks:
                    if stream_fault.kind == "stall":
                        await asyncio.sleep(stream_fault.delay_ms / 1000)
                    else:
                        call.end("failed")
                        yield _failure_frame(stream_fault, frames(token)[0])
                        return
                if index:
                    # Even at full speed: after a disconnect, send() returns at once, and only a
                    # suspension lets Starlette cancel this stream (else it "completes").
                    await asyncio.sleep(gap)
                if not index:
                    call.first_token = time.monotonic()
                call.tokens_sent += 1
                for frame in frames(token):
                    yield frame
            for frame in closing(started):
                yield frame
            call.end("completed")
        finally:
            if call.status == "running":
                call.end("disconnected")

    return StreamingResponse(body(), media_type=EVENTSTREAM, headers=headers)


def _failure_frame(fault: Fault, next_frame: bytes) -> bytes:
    """What a failing stream sends instead of its next frame."""
    if fault.kind == "stream_corrupt":
        return next_frame[:-1] + bytes([next_frame[-1] ^ 0xFF])  # breaks the message CRC
    return eventstream.exception(*_STREAM_ERRORS[fault.kind])
