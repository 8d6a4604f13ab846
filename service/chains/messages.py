"""Prompt variables from validated inputs: chat messages (with the roles an input takes) and
scalars as the prompt shows them. Used by :mod:`service.chains.inputs`."""

import functools
import math
from typing import Any, Literal, cast

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, model_validator

_MESSAGE_CLASSES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "user": HumanMessage,
    "human": HumanMessage,
    "assistant": AIMessage,
    "ai": AIMessage,
}


class ChatMessage(BaseModel):
    """A message of chat history: ``{"role": "user", "content": "..."}``.

    LangServe clients send LangChain messages as ``{"type": "human", "content": ...}``; both
    spellings are accepted, other keys of theirs are ignored.
    """

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "human", "ai"] | None = None
    type: Literal["system", "user", "assistant", "human", "ai"] | None = None
    content: str

    @model_validator(mode="after")
    def _has_role(self) -> "ChatMessage":
        if self.role is None and self.type is None:
            raise ValueError('each message needs a "role": system, user or assistant')
        return self

    def to_langchain(self) -> BaseMessage:
        role = self.role or self.type
        assert role is not None
        return _MESSAGE_CLASSES[role](content=self.content)


# Said wherever a caller's system message is refused: the fix is the chain file's.
SYSTEM_OPT_IN = "the chain file can allow system messages with roles: [system, user, assistant]"

# LangChain's spellings of the roles (LangServe clients send "type": "human").
_CANONICAL = {"system": "system", "user": "user", "human": "user", "assistant": "assistant"}
_CANONICAL["ai"] = "assistant"


@functools.cache
def message_model(roles: tuple[str, ...]) -> type[ChatMessage]:
    """The messages of an input taking ``roles`` (its ``allowed_roles``): any other role is a
    422 saying which roles the chain takes — a caller's system message would otherwise join
    the chain's own system prompt. Named ``ChatMessage`` for the default (user, assistant).
    A role that is none of the five spellings is refused by the base class's ``Literal``."""
    spellings = [alias for alias, role in _CANONICAL.items() if role in roles]
    listing = ", ".join(roles[:-1]) + " and " + roles[-1] if len(roles) > 1 else roles[0]
    name = (
        "ChatMessage"
        if roles == ("user", "assistant")
        else "ChatMessage" + "".join(role.title() for role in roles)
    )

    def published(schema: dict[str, Any]) -> None:
        for key in ("role", "type"):
            schema["properties"][key] = {
                "anyOf": [{"enum": spellings, "type": "string"}, {"type": "null"}],
                "default": None,
            }
        schema["anyOf"] = [  # a message needs a role, spelled "role" or "type"
            {"required": [key], "properties": {key: {"type": "string"}}} for key in ("role", "type")
        ]
        schema["description"] = f"A message with the role {' or '.join(roles)}."

    def has_allowed_role(message: ChatMessage) -> ChatMessage:
        role = message.role or message.type
        if role is None:
            raise ValueError(f'each message needs a "role": {" or ".join(roles)}')
        if _CANONICAL.get(role) not in roles:
            hint = "" if role != "system" else f"; {SYSTEM_OPT_IN}"
            raise ValueError(
                f"role {role!r} is not allowed: this input takes {listing} messages{hint}"
            )
        return message

    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": name,
        "model_config": ConfigDict(extra="ignore", json_schema_extra=published),
        "_has_role": model_validator(mode="after")(has_allowed_role),
    }
    return cast(type[ChatMessage], type(name, (ChatMessage,), namespace))


class PromptText(str):
    """A boolean or number as the prompt shows it (``true``, ``3``), which keeps the value's
    truth: a mustache section (``{{#flag}}…{{/flag}}``) over ``false`` or ``0`` stays empty,
    where the plain text ``"false"`` would be true."""

    truthy: bool
    # Mustache (chevron) shows a falsy value's text only when it says so: "0", "false".
    _CHEVRON_return_scope_when_falsy = True

    def __new__(cls, text: str, truthy: bool = True) -> "PromptText":
        made = super().__new__(cls, text)
        made.truthy = truthy
        return made

    def __bool__(self) -> bool:
        return self.truthy


def shown(value: Any) -> Any:
    """A prompt variable: booleans as JSON writes them (``true``, not Python's ``True``), whole
    numbers without ``.0`` (a number input sent ``1`` is ``1``), other values as they are."""
    if isinstance(value, bool):
        return PromptText("true" if value else "false", value)
    if isinstance(value, int):
        return PromptText(str(value), value != 0)
    if isinstance(value, float):
        whole = math.isfinite(value) and value.is_integer() and abs(value) < 2**53
        return PromptText(str(int(value)) if whole else repr(value), value != 0)
    return value
