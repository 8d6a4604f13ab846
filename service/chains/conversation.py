"""A conversation as a chain's inputs: one rule for every chat protocol (OpenAI's Chat
Completions, the AI SDK's ``useChat``).

- The last message is the user's: its text goes to the chain's *message input* — its one
  required string input or, when it has none, its one string input (enums aside).
- The messages before it (system, user, assistant, in order) go to the chain's ``messages``
  input, its history. A chain without one takes a single user message. A system message is
  refused (422 naming the messages field) unless that input's ``roles`` lists system: it would
  join the chain's own system prompt.
- The last message's images (OpenAI's ``image_url`` parts, the AI SDK's image ``file``
  parts) fill the chain's ``image`` inputs, in the order the file declares them; an image in an
  earlier message, or more images than the chain has image inputs, is refused (422).
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
    images: tuple[Any, ...] = ()  # as sent: data URLs (validated as an image input is)


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
    images = _image_inputs(chain, turns, messages_field)
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
    for name in (shape.message_input, shape.history_input, *images):
        if name is not None and name in extra:
            raise errors.bad_request(
                f"{extra_field}.{name}",
                f"comes from {messages_field}; remove it from {extra_field}",
            )
    data: dict[str, Any] = {**extra, **images}
    if turns[-1].text or not images:
        data[shape.message_input] = turns[-1].text
    elif chain.spec.inputs[shape.message_input].is_required:
        raise errors.bad_request(
            messages_field,
            f"the last message has an image but no text, and chain {chain.name!r} needs the "
            "user's text too; add a text part",
        )
    # else: an image alone leaves the message input its default
    if shape.history_input is not None:
        data[shape.history_input] = [{"role": t.role, "content": t.text} for t in earlier]
    try:
        return chain.inputs.parse_data(data, prefix=extra_field)
    except errors.ApiError as exc:
        filled = [shape.message_input, shape.history_input, *images]
        raise _renamed(exc, extra_field, filled, messages_field) from None


def _image_inputs(chain: Chain, turns: list[Turn], messages_field: str) -> dict[str, Any]:
    """The chain's image inputs the last message's images fill, in declared order."""
    if any(turn.images for turn in turns[:-1]):
        raise errors.bad_request(
            messages_field,
            "an image in an earlier message: images are taken from the last user message "
            "only; send the image with the message that asks about it",
        )
    sent = turns[-1].images
    names = [name for name, item in chain.spec.inputs.items() if item.type == "image"]
    if len(sent) > len(names):
        takes = (
            f"takes {len(names)} image{'s' if len(names) != 1 else ''}"
            if names
            else ("takes no images")
        )
        raise errors.bad_request(
            messages_field,
            f"chain {chain.name!r} {takes}, and the last message has {len(sent)}; send fewer",
        )
    return dict(zip(names, sent, strict=False))


def _renamed(
    error: errors.ApiError, extra_field: str, filled: list[str | None], messages_field: str
) -> errors.ApiError:
    """Errors about the inputs the conversation filled name the conversation's field."""
    ours = {f"{extra_field}.{name}" for name in filled if name}
    fields = [
        {**item, "field": messages_field}
        if ".".join(item["field"].split(".")[:2]) in ours
        else item
        for item in error.errors or []
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in fields[:5])
    return errors.ApiError(error.status, summary, code=error.code, errors=fields)
