"""Images in the prompt: a run of ``user`` and ``image`` items is one user message.

A chain file places an image with ``- image: photo``, next to the user text around it::

    - user: "What is in this picture?"
    - image: photo
    - user: "Answer in one sentence."

Consecutive user and image items are ONE user message whose content blocks are in file order
(text, image, text). langchain-aws would merge consecutive human messages too (Converse and
ChatBedrock's Anthropic formatter both do), but merging here means the rendered prompt, chain
tests' transcripts and every provider see the same single message. A run of user items with
no image is left as it was (separate messages): plain chains are unchanged.

An optional image input that was not sent leaves its item out; a message left with nothing
in it is left out as a whole.
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.prompts import PromptTemplate
from langchain_core.prompts.message import BaseMessagePromptTemplate

from service.chains.images import ImageInput
from service.chains.spec import MessageSpec


class UserTurn(BaseMessagePromptTemplate):
    """One user message of text templates and images, in file order."""

    parts: list[tuple[str, Any]]
    """("text", PromptTemplate) or ("image", input name)."""
    cache: bool = False
    """An item of the turn has ``cache: true``: the cache point follows the whole turn, the
    one message its items become (``cache_points.CachePointAfter``)."""

    @property
    def input_variables(self) -> list[str]:
        names: list[str] = []
        for kind, part in self.parts:
            for name in part.input_variables if kind == "text" else [part]:
                if name not in names:
                    names.append(name)
        return names

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        content: list[str | dict[str, Any]] = []
        for kind, part in self.parts:
            if kind == "text":
                text = part.format(**{name: kwargs[name] for name in part.input_variables})
                if text.strip():  # Bedrock refuses a blank text block
                    content.append({"type": "text", "text": text})
            elif isinstance(image := kwargs.get(part), ImageInput):
                content.append(image.content_block())
        return [HumanMessage(content=content)] if content else []

    def pretty_repr(self, html: bool = False) -> str:
        shown = [
            part.template if kind == "text" else f"[image {{{part}}}]" for kind, part in self.parts
        ]
        return "Human Message: " + " ".join(shown)


def with_user_turns(
    messages: Sequence[MessageSpec], fmt: str, prepare: Callable[[str], str]
) -> Iterator[MessageSpec | UserTurn]:
    """``messages``, with each run of user and image items that holds an image as one
    :class:`UserTurn`; ``prepare`` readies a text template as the chain's other messages are."""
    run: list[MessageSpec] = []

    def flush() -> Iterator[MessageSpec | UserTurn]:
        if any(item.role == "image" for item in run):
            parts = [_part(item, fmt, prepare) for item in run]
            yield UserTurn(parts=parts, cache=any(item.cache for item in run))
        else:
            yield from run
        run.clear()

    for message in messages:
        if message.role in ("user", "image"):
            run.append(message)
            continue
        yield from flush()
        yield message
    yield from flush()


def _part(item: MessageSpec, fmt: str, prepare: Callable[[str], str]) -> tuple[str, Any]:
    if item.role == "image":
        return ("image", item.text)
    template_format = cast(Any, fmt)  # "f-string" or "mustache": checked by the spec
    return (
        "text",
        PromptTemplate.from_template(prepare(item.text), template_format=template_format),
    )
