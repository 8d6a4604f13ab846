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
from service.emulator.bedrock_errors import (
    CONVERSE_STREAM_TIMEOUT,
    STREAM_ERRORS,
    fault_error,
)
from service.emulator.control_frames import (
    SIGNATURE,
    anthropic_thinking,
    cache_metrics,
    converse_reasoning,
    echoed_headers,
    stream_metadata,
)
from service.emulator.replies import Reply
from service.emulator.state import STREAM_FAULTS, Call, EmulatorState, Fault, Pace

EVENTSTREAM = "application/vnd.amazon.eventstream"


async def _first_token_wait(pace: Pace, fault: Fault | None) -> None:
    delay = pace.ttft_ms + (fault.delay_ms if fault and fault.kind == "slow_first_token" else 0)
    if delay:
        await asyncio.sleep(delay / 1000)


def _stream_fault(fault: Fault | None) -> Fault | None:
    return fault if fault and fault.kind in STREAM_FAULTS else None


def _usage(reply: Reply) -> dict[str, int]:
    usage = {"inputTokens": reply.input_tokens, "outputTokens": reply.output_tokens}
    cached = reply.cache_read + reply.cache_write
    usage["totalTokens"] = reply.input_tokens + reply.output_tokens + cached
    if reply.cache is not None:
        usage |= {
            "cacheReadInputTokens": reply.cache_read,
            "cacheWriteInputTokens": reply.cache_write,
        }
    return usage


def _anthropic_usage(reply: Reply, output_tokens: int) -> dict[str, int]:
    usage = {"input_tokens": reply.input_tokens, "output_tokens": output_tokens}
    if reply.cache is not None:
        usage |= {
            "cache_creation_input_tokens": reply.cache_write,
            "cache_read_input_tokens": reply.cache_read,
        }
    return usage


def _anthropic_message(reply: Reply, call: Call) -> dict[str, Any]:
    """The model's own reply (the Anthropic Messages body), as InvokeModel returns it."""
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}]
    if reply.reasoning:
        thinking = "".join(reply.reasoning)
        content.insert(0, {"type": "thinking", "thinking": thinking, "signature": SIGNATURE})
    if reply.tool is not None:
        content.append(
            {
                "type": "tool_use",
                "id": _tool_use_id(call, "toolu_bdrk_emulator"),
                "name": reply.tool.name,
                "input": reply.tool.input,
            }
        )
    return {
        "id": f"msg_emulator_{call.id}",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": _anthropic_usage(reply, reply.output_tokens),
    }


def _tool_use_id(call: Call, prefix: str = "tooluse_emulator") -> str:
    return f"{prefix}{call.id:06d}"


def _response_fields(reply: Reply, call: Call) -> dict[str, Any]:
    """Converse's ``additionalModelResponseFields``: what each requested JSON pointer finds in
    the model's own reply (paths that find nothing are left out)."""
    found: dict[str, Any] = {}
    native = _anthropic_message(reply, call)
    for path in reply.response_field_paths:
        keys = [key.replace("~1", "/").replace("~0", "~") for key in path.split("/")[1:]]
        value: Any = native
        for key in keys:
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING or not keys:
            continue
        into = found
        for key in keys[:-1]:
            into = into.setdefault(key, {})
        into[keys[-1]] = value
    return found


_MISSING = object()


async def _whole_reply(reply: Reply, call: Call, fault: Fault | None, state: EmulatorState) -> None:
    """A non-streaming call: wait as the first token would, then fail or complete at once."""
    await _first_token_wait(state.pace, fault)
    if (stream_fault := _stream_fault(fault)) is not None:
        if stream_fault.kind == "stall":
            await asyncio.sleep(stream_fault.delay_ms / 1000)
        else:
            raise fault_error(stream_fault.kind, call.model)
    call.tokens_sent = reply.output_tokens
    call.end("completed")


async def converse(reply: Reply, call: Call, fault: Fault | None, state: EmulatorState) -> Response:
    started = time.monotonic()
    await _whole_reply(reply, call, fault, state)
    content: list[dict[str, Any]] = [{"text": reply.text}]
    if reply.reasoning:
        text = {"text": "".join(reply.reasoning), "signature": SIGNATURE}
        content.insert(0, {"reasoningContent": {"reasoningText": text}})
    if reply.tool is not None:
        tool_use = {"toolUseId": _tool_use_id(call), "name": reply.tool.name}
        content.append({"toolUse": tool_use | {"input": reply.tool.input}})
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": reply.stop_reason,
        "usage": _usage(reply),
        "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
    }
    if reply.response_field_paths:
        body["additionalModelResponseFields"] = _response_fields(reply, call)
    body |= reply.echoed  # performanceConfig, serviceTier
    if reply.trace is not None:
        body["trace"] = reply.trace
    return JSONResponse(body)


async def invoke(reply: Reply, call: Call, fault: Fault | None, state: EmulatorState) -> Response:
    started = time.monotonic()
    await _whole_reply(reply, call, fault, state)
    headers = {
        "X-Amzn-Bedrock-Invocation-Latency": str(int((time.monotonic() - started) * 1000)),
        "X-Amzn-Bedrock-Input-Token-Count": str(reply.input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(reply.output_tokens),
    }
    if reply.cache is not None:
        headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(reply.cache_read)
        headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(reply.cache_write)
    headers |= echoed_headers(reply)
    return JSONResponse(_anthropic_message(reply, call), headers=headers)


async def converse_stream(
    reply: Reply, call: Call, fault: Fault | None, state: EmulatorState
) -> Response:
    text_index = reply.text_index

    def frames(token: str | None) -> list[bytes]:
        if token is None:
            return [
                eventstream.event("messageStart", {"role": "assistant"}),
                *converse_reasoning(reply),
            ]
        return [
            eventstream.event(
                "contentBlockDelta", {"contentBlockIndex": text_index, "delta": {"text": token}}
            )
        ]

    def closing(started: float) -> list[bytes]:
        events = [eventstream.event("contentBlockStop", {"contentBlockIndex": text_index})]
        if reply.tool is not None:
            start = {"toolUse": {"toolUseId": _tool_use_id(call), "name": reply.tool.name}}
            events.append(
                eventstream.event(
                    "contentBlockStart", {"contentBlockIndex": text_index + 1, "start": start}
                )
            )
            events += [
                eventstream.event(
                    "contentBlockDelta",
                    {"contentBlockIndex": text_index + 1, "delta": {"toolUse": {"input": part}}},
                )
                for part in reply.tool.json_parts()
            ]
            events.append(
                eventstream.event("contentBlockStop", {"contentBlockIndex": text_index + 1})
            )
        stop: dict[str, Any] = {"stopReason": reply.stop_reason}
        if reply.response_field_paths:
            stop["additionalModelResponseFields"] = _response_fields(reply, call)
        metrics = {"latencyMs": int((time.monotonic() - started) * 1000)}
        return [
            *events,
            eventstream.event("messageStop", stop),
            eventstream.event("metadata", stream_metadata(reply, _usage(reply), metrics)),
        ]

    return _event_stream(reply, call, fault, state, frames, closing, {}, converse=True)


async def invoke_stream(
    reply: Reply, call: Call, fault: Fault | None, state: EmulatorState
) -> Response:
    def chunk(payload: dict[str, Any]) -> bytes:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return eventstream.event("chunk", {"bytes": base64.b64encode(raw).decode()})

    text_index = reply.text_index

    def frames(token: str | None) -> list[bytes]:
        if token is not None:
            delta = {"type": "text_delta", "text": token}
            return [chunk({"type": "content_block_delta", "index": text_index, "delta": delta})]
        message = _anthropic_message(reply, call) | {
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _anthropic_usage(reply, 1),
        }
        return [
            chunk({"type": "message_start", "message": message}),
            *[chunk(payload) for payload in anthropic_thinking(reply)],
            chunk(
                {
                    "type": "content_block_start",
                    "index": text_index,
                    "content_block": {"type": "text", "text": ""},
                }
            ),
        ]

    def closing(started: float) -> list[bytes]:
        latency = int((time.monotonic() - started) * 1000)
        events = [chunk({"type": "content_block_stop", "index": text_index})]
        if reply.tool is not None:
            block = {
                "type": "tool_use",
                "id": _tool_use_id(call, "toolu_bdrk_emulator"),
                "name": reply.tool.name,
                "input": {},
            }
            events.append(
                chunk(
                    {"type": "content_block_start", "index": text_index + 1, "content_block": block}
                )
            )
            events += [
                chunk(
                    {
                        "type": "content_block_delta",
                        "index": text_index + 1,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    }
                )
                for part in reply.tool.json_parts()
            ]
            events.append(chunk({"type": "content_block_stop", "index": text_index + 1}))
        return [
            *events,
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
                        **cache_metrics(reply),
                    },
                }
            ),
        ]

    headers = {"X-Amzn-Bedrock-Content-Type": "application/json", **echoed_headers(reply)}
    return _event_stream(reply, call, fault, state, frames, closing, headers)


def _event_stream(
    reply: Reply,
    call: Call,
    fault: Fault | None,
    state: EmulatorState,
    frames: Callable[[str | None], list[bytes]],
    closing: Callable[[float], list[bytes]],
    headers: dict[str, str],
    converse: bool = False,
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
                        yield _failure_frame(stream_fault, frames(token)[0], converse)
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
                if reply.tool is not None and gap:  # a tool's input streams at the pace too
                    await asyncio.sleep(gap)
                yield frame
            call.tokens_sent = reply.output_tokens  # and the tool call's, if any
            call.end("completed")
        finally:
            if call.status == "running":
                call.end("disconnected")

    return StreamingResponse(body(), media_type=EVENTSTREAM, headers=headers)


def _failure_frame(fault: Fault, next_frame: bytes, converse: bool) -> bytes:
    """What a failing stream sends instead of its next frame."""
    if fault.kind == "stream_corrupt":
        return next_frame[:-1] + bytes([next_frame[-1] ^ 0xFF])  # breaks the message CRC
    exception_type, message, fields = STREAM_ERRORS[fault.kind]
    if converse and fault.kind == "stream_model_timeout":
        exception_type, message, fields = CONVERSE_STREAM_TIMEOUT
    return eventstream.exception(exception_type, message, **fields)
