"""A conversation as a chain's inputs: one rule for every chat protocol (OpenAI's Chat
Completions, the AI SDK's ``useChat``).

- The last message is the user's: its text goes to the chain's *message input* — its one
  required string input or, when it has none, its one string input (enums aside).
- The messages before it (system, user, assistant, in order) go to the chain's ``messages``
  input, its history. A chain without one takes a single user message. A system message is
  refused (422 naming the messages field) unless that input's ``roles`` lists system: it would
  join the chain's own system prompt.
- Every other input comes from ``extra`` (a protocol's ``inputs`` body field), validated as
  ``/invoke`` validates it.

A chain with no message input cannot take a conversation: chat protocols do not offer it.
"""

from dataclasses import dataclass
from typing import Any

from service.chains.catalog import Chain
from service.chains.messages import SYSTEM_OPT_IN
from service.chains.spec import ChainSpec
from service.runs import errors

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, in a protocol-neutral form."""

    role: str  # system, user or assistant
    text: str


@dataclass(frozen=True)
class ChatShape:
    """Which inputs of a chain a conversation fills."""

    message_input: str
    history_input: str | None


def chat_shape(spec: ChainSpec) -> ChatShape | None:
    """How ``spec``'s chain takes a conversation; ``None`` if it cannot."""
    strings = [
        name for name, item in spec.inputs.items() if item.type == "string" and item.enum is None
    ]
    required = [name for name in strings if spec.inputs[name].is_required]
    if len(required) == 1:
        message = required[0]
    elif not required and len(strings) == 1:
        message = strings[0]
    else:
        return None
    histories = [name for name, item in spec.inputs.items() if item.type == "messages"]
    return ChatShape(message, histories[0] if len(histories) == 1 else None)


def conversation_inputs(
    chain: Chain,
    turns: list[Turn],
    extra: dict[str, Any] | None,
    *,
    messages_field: str = "messages",
    extra_field: str = "inputs",
    chain_field: str = "model",
) -> dict[str, Any]:
    """The prompt variables for ``turns`` (plus ``extra``) on ``chain``.

    Errors name the request's fields as the protocol calls them (``messages_field``,
    ``extra_field``, and ``chain_field`` for the chain), with the fix.
    """
    shape = chat_shape(chain.spec)
    if shape is None:
        raise errors.bad_request(
            chain_field,
            f"chain {chain.name!r} cannot take a conversation: it needs exactly one required "
            "string input (or one string input) for the user's message; use /invoke or /stream",
        )
    if not turns or turns[-1].role != "user":
        raise errors.bad_request(
            messages_field, "the last message must be the user's; end with a user message"
        )
    earlier = turns[:-1]
    if earlier and shape.history_input is None:
        raise errors.bad_request(
            messages_field,
            f"chain {chain.name!r} takes no conversation history (it has no messages input); "
            "send only the user's message",
        )
    if shape.history_input is not None:
        allowed = chain.spec.inputs[shape.history_input].allowed_roles
        refused = sorted({turn.role for turn in earlier} - set(allowed))
        if refused:
            hint = f"; {SYSTEM_OPT_IN}" if "system" in refused else ""
            raise errors.bad_request(
                messages_field,
                f"chain {chain.name!r} takes no {' or '.join(refused)} messages (its history "
                f"takes {' and '.join(allowed)} turns); remove them{hint}",
            )
    extra = dict(extra or {})
    for name in (shape.message_input, shape.history_input):
        if name is not None and name in extra:
            raise errors.bad_request(
                f"{extra_field}.{name}",
                f"comes from {messages_field}; remove it from {extra_field}",
            )
    data: dict[str, Any] = {**extra, shape.message_input: turns[-1].text}
    if shape.history_input is not None:
        data[shape.history_input] = [{"role": t.role, "content": t.text} for t in earlier]
    try:
        return chain.inputs.parse_data(data, prefix=extra_field)
    except errors.ApiError as exc:
        raise _renamed(exc, extra_field, shape, messages_field) from None


def _renamed(
    error: errors.ApiError, extra_field: str, shape: ChatShape, messages_field: str
) -> errors.ApiError:
    """Errors about the inputs the conversation filled name the conversation's field."""
    ours = {f"{extra_field}.{name}" for name in (shape.message_input, shape.history_input) if name}
    fields = [
        {**item, "field": messages_field}
        if ".".join(item["field"].split(".")[:2]) in ours
        else item
        for item in error.errors or []
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in fields[:5])
    return errors.ApiError(error.status, summary, code=error.code, errors=fields)
