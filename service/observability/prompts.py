"""A model call's prompt and reply as text, for log lines and trace spans — only when
``CHAINSERVE_LOG_PROMPTS=true``: otherwise no line or span ever holds prompt or reply text.

The shape is OpenTelemetry's GenAI one (``gen_ai.input.messages``/``gen_ai.output.messages``):
``[{"role": "user", "parts": [{"type": "text", "content": "…"}]}]``, so logs and traces agree.
Images appear as their description (``[image png 64×64, 1234 bytes]``), never as base64, and the
text of one field stops after :data:`MAX_CHARS` characters.
"""

import json
from typing import Any

from langchain_core.messages import BaseMessage

from service.chains.images import shown_part
from service.runs.info import ModelCall

MAX_CHARS = 32_768
"""Most characters of text in one field (a prompt, a reply): CloudWatch takes 256 KB a line."""

# LangChain's message types → the roles chat APIs and the GenAI conventions name.
ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def prompt_messages(call: ModelCall) -> list[dict[str, Any]]:
    """The messages sent to the model in ``call``."""
    budget = _Budget()
    return [_message(message, budget) for message in call.messages]


def reply_messages(call: ModelCall) -> list[dict[str, Any]]:
    """The model's reply in ``call`` (empty if it failed before replying), with its stop reason."""
    if call.reply is None:
        return []
    budget = _Budget()
    message = _message(call.reply, budget)
    for tool_call in getattr(call.reply, "tool_calls", None) or []:  # structured output's tool
        arguments: Any = tool_call["args"]
        text = json.dumps(arguments, ensure_ascii=False)
        if len(text) > budget.left:  # too long: cut as text, like any other
            arguments = budget.take(text)
        else:
            budget.left -= len(text)
        message["parts"].append(
            {"type": "tool_call", "name": tool_call["name"], "arguments": arguments}
        )
    if call.stop_reason:
        message["finish_reason"] = call.stop_reason
    return [message]


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_CHARS

    def take(self, text: str) -> str:
        kept = text[: self.left]
        self.left -= len(kept)
        if len(kept) < len(text):
            return f"{kept}…[{len(text) - len(kept)} more characters]"
        return kept


def _message(message: BaseMessage, budget: _Budget) -> dict[str, Any]:
    content = message.content
    blocks = [content] if isinstance(content, str) else content
    texts = [_text(block) for block in blocks]
    parts = [{"type": "text", "content": budget.take(text)} for text in texts if text]
    return {"role": ROLES.get(message.type, message.type), "parts": parts}


def _text(block: Any) -> str:
    if isinstance(block, dict) and (
        block.get("type") in ("tool_use", "reasoning_content", "thinking") or "cachePoint" in block
    ):
        return ""  # tool calls are parts of their own; reasoning is never shown; nor cache points
    return shown_part(block)
