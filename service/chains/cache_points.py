"""Prompt caching: ``cache: true`` on a prompt message puts a cache point after it.

Bedrock caches the prompt up to a cache point and reads that prefix from the cache on later
requests that start the same way. The point is written as the API the model is called through
spells it, inside the message's LangChain content (ChatPromptTemplate keeps such blocks):

- Converse (ChatBedrockConverse): a ``{"cachePoint": {"type": "default"}}`` block after the
  message's text (``ChatBedrockConverse.create_cache_point()``), passed through to Bedrock;
- InvokeModel with Anthropic's body (ChatBedrock): ``cache_control: {type: ephemeral}`` on the
  message's last block.
"""

from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompts.message import BaseMessagePromptTemplate

from service.chains.compat import Problem, bedrock_uses_converse, model_vendor
from service.chains.controls import base_model
from service.chains.model_spec import ModelSpec
from service.chains.spec import ChainSpec

_EPHEMERAL = {"type": "ephemeral"}
# Prompt caching ("Prompt caching for faster model inference"): Anthropic Claude and Amazon
# Nova models take cache points; others refuse them.
_CACHING_VENDORS = ("anthropic", "amazon")


def cache_block(style: str) -> dict[str, Any]:
    from langchain_aws import ChatBedrockConverse

    assert style == "converse"
    return ChatBedrockConverse.create_cache_point()


def cached_content(text: str, style: str) -> list[dict[str, Any]]:
    """A message template's content: its text, then the cache point."""
    if style == "anthropic":
        return [{"type": "text", "text": text, "cache_control": _EPHEMERAL}]
    return [{"type": "text", "text": text}, cache_block(style)]


class CachePointAfter(BaseMessagePromptTemplate):
    """A message template with a cache point after the message it makes."""

    inner: BaseMessagePromptTemplate
    style: str

    @property
    def input_variables(self) -> list[str]:
        return list(self.inner.input_variables)

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        messages = self.inner.format_messages(**kwargs)
        if not messages:
            return messages
        last = messages[-1]
        content = last.content if isinstance(last.content, list) else [last.content]
        blocks: list[Any] = [
            {"type": "text", "text": block} if isinstance(block, str) else dict(block)
            for block in content
        ]
        if self.style == "anthropic" and blocks:
            blocks[-1]["cache_control"] = _EPHEMERAL
        else:
            blocks.append(cache_block(self.style))
        return [*messages[:-1], last.model_copy(update={"content": blocks})]

    def pretty_repr(self, html: bool = False) -> str:
        return self.inner.pretty_repr(html) + " [cache point]"


def check_cache(spec: ChainSpec) -> list[Problem]:
    """``cache: true`` on a model that takes no cache points, or models that spell them apart."""
    cached = [i for i, message in enumerate(spec.prompt.messages) if message.cache]
    if not cached:
        return []
    where = ("prompt", "messages", cached[0], "cache")
    problems = []
    for model in spec.models:
        vendor, base = model_vendor(model), base_model(model)
        if vendor not in _CACHING_VENDORS or (vendor == "amazon" and "nova" not in base):
            problems.append(
                Problem(
                    where,
                    f"{base!r} takes no prompt-cache points (Bedrock caches prompts for "
                    "Anthropic Claude and Amazon Nova models); remove cache",
                )
            )
    if len({cache_style(model) for model in spec.models}) > 1:
        problems.append(
            Problem(
                where,
                "the chain's model and its fallbacks send cache points in different forms "
                "(Converse and InvokeModel); give them one provider, or remove cache",
            )
        )
    return problems


def cache_style(model: ModelSpec) -> str:
    """How a cache point is written into a prompt message for this model: ``converse`` (a
    ``cachePoint`` block after the message's text) or ``anthropic`` (``cache_control`` on its
    last block, the InvokeModel body's form)."""
    if model.provider == "bedrock" and not bedrock_uses_converse(model):
        return "anthropic"
    return "converse"
