"""What a model's final message says besides its text: reasoning, a guardrail's trace, cache
tokens — read for the run's metadata (``info.UsageCollector``), never for its output.

Where langchain-aws puts them:

- reasoning: content blocks of type ``reasoning_content`` (Converse: ``{"reasoning_content":
  {"text", "signature"}}``) or ``thinking`` (ChatBedrock, Anthropic's InvokeModel body:
  ``{"thinking": ...}``). ``StrOutputParser`` keeps only ``text`` blocks, so reasoning never
  reaches a chain's output;
- a guardrail's trace: Converse's ``trace.guardrail`` (the response, or ConverseStream's
  metadata event), in ``response_metadata``;
- cache tokens: ``usage_metadata.input_token_details`` ``cache_read`` and ``cache_creation``
  (both included in ``input_tokens``).
"""

from typing import Any

# Set in a model's LangChain ``metadata`` (models.build_model) when the chain file says
# ``reasoning.include: true``; the collector sees it when the model starts.
INCLUDE_REASONING = "chainserve_include_reasoning"


def reasoning_text(message: Any) -> str:
    """The reasoning text of a final message (empty: none)."""
    content = getattr(message, "content", None)
    if not isinstance(content, list):
        return ""
    parts = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "reasoning_content":
            parts.append(str((block.get("reasoning_content") or {}).get("text") or ""))
        elif block.get("type") == "thinking":
            parts.append(str(block.get("thinking") or ""))
    return "".join(parts)


def guardrail_trace(response_metadata: dict[str, Any]) -> dict[str, Any] | None:
    trace = response_metadata.get("trace")
    guardrail = trace.get("guardrail") if isinstance(trace, dict) else None
    return guardrail if isinstance(guardrail, dict) else None


def cache_tokens(usage_metadata: Any) -> tuple[int, int]:
    """(read from the cache, written to it) of a final message's usage."""
    details = (usage_metadata or {}).get("input_token_details") or {}
    return int(details.get("cache_read") or 0), int(details.get("cache_creation") or 0)
