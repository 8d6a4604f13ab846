"""The frames and fields of the emulator's replies that come from a request's model controls
(:mod:`service.emulator.controls`): reasoning blocks before the text, the guardrail's trace and
the echoed configuration in a stream's metadata event, InvokeModel's echoed headers and its
stream's cache metrics.
"""

from typing import Any

from service.emulator import eventstream
from service.emulator.controls import SIGNATURE
from service.emulator.replies import Reply

__all__ = ["SIGNATURE"]


def converse_reasoning(reply: Reply) -> list[bytes]:
    """The reasoning block a ConverseStream sends before the text: its text, word by word,
    then its signature."""
    if not reply.reasoning:
        return []
    deltas = [{"text": token} for token in reply.reasoning] + [{"signature": SIGNATURE}]
    return [
        *(
            eventstream.event(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": d}}
            )
            for d in deltas
        ),
        eventstream.event("contentBlockStop", {"contentBlockIndex": 0}),
    ]


def anthropic_thinking(reply: Reply) -> list[dict[str, Any]]:
    """The thinking block Anthropic's stream sends before the text (InvokeModel)."""
    if not reply.reasoning:
        return []
    block = {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [{"type": "thinking_delta", "thinking": token} for token in reply.reasoning]
    deltas.append({"type": "signature_delta", "signature": SIGNATURE})
    return [
        {"type": "content_block_start", "index": 0, "content_block": block},
        *({"type": "content_block_delta", "index": 0, "delta": delta} for delta in deltas),
        {"type": "content_block_stop", "index": 0},
    ]


def stream_metadata(reply: Reply, usage: dict[str, int], metrics: dict[str, Any]) -> dict[str, Any]:
    """ConverseStream's metadata event: usage, metrics, the echoed configuration and the
    guardrail's trace."""
    metadata: dict[str, Any] = {"usage": usage, "metrics": metrics, **reply.echoed}
    if reply.trace is not None:
        metadata["trace"] = reply.trace
    return metadata


def cache_metrics(reply: Reply) -> dict[str, int]:
    """InvokeModel stream's invocation metrics of the prompt cache (when there is a point)."""
    if reply.cache is None:
        return {}
    return {
        "cacheReadInputTokenCount": reply.cache_read,
        "cacheWriteInputTokenCount": reply.cache_write,
    }


def echoed_headers(reply: Reply) -> dict[str, str]:
    """InvokeModel's response headers that repeat the request's latency and service tier."""
    headers = {}
    if latency := (reply.echoed.get("performanceConfig") or {}).get("latency"):
        headers["X-Amzn-Bedrock-PerformanceConfig-Latency"] = str(latency)
    if tier := (reply.echoed.get("serviceTier") or {}).get("type"):
        headers["X-Amzn-Bedrock-Service-Tier"] = str(tier)
    return headers
