"""Specs → runnables: ``ChatPromptTemplate | model | StrOutputParser``, where the model is
``ChatBedrockConverse`` or ``ChatBedrock`` (:mod:`service.chains.models`), with its fallbacks
when the file lists some; a chain with ``output`` ends instead in the one check that makes the
reply the schema's object (each model bound to the schema: :mod:`service.chains.structured`).

Fallbacks (:mod:`service.chains.fallbacks`) are tried only when a model failed before its
first token, never after output was sent.
"""

import re
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable

from service.chains import structured
from service.chains.cache_points import CachePointAfter, cache_style, cached_content
from service.chains.fallbacks import with_fallbacks
from service.chains.image_prompt import UserTurn, with_user_turns
from service.chains.model_spec import ModelParams
from service.chains.models import BedrockClients, build_model, with_params
from service.chains.spec import ChainSpec

_ROLE_TO_LANGCHAIN = {"system": "system", "user": "human", "assistant": "ai"}
# A mustache variable tag, {{name}}: not a section, comment, partial or already unescaped tag.
_MUSTACHE_VARIABLE = re.compile(r"(?<!\{)\{\{\s*([^#^/!>&{}\s][^{}]*?)\s*\}\}(?!\})")


def build_prompt(spec: ChainSpec) -> ChatPromptTemplate:
    parts: list[Any] = []
    fmt = spec.prompt.format
    for message in with_user_turns(spec.prompt.messages, fmt, lambda text: _template(fmt, text)):
        if isinstance(message, UserTurn):  # user text and images: one user message
            style = cache_style(spec.model)
            parts.append(CachePointAfter(inner=message, style=style) if message.cache else message)
        elif message.role == "placeholder":
            history = spec.inputs[message.text]
            parts.append(MessagesPlaceholder(message.text, optional=not history.is_required))
        else:
            text = _template(fmt, message.text)
            content = cached_content(text, cache_style(spec.model)) if message.cache else text
            parts.append((_ROLE_TO_LANGCHAIN[message.role], content))
    return ChatPromptTemplate.from_messages(parts, template_format=spec.prompt.format)  # type: ignore[arg-type]


def _template(fmt: str, text: str) -> str:
    if fmt == "mustache":
        # Mustache escapes {{name}} for HTML; a prompt is not HTML, so inputs go in as
        # they were sent ({{&name}}), never as &lt;b&gt; or &amp;.
        return _MUSTACHE_VARIABLE.sub(r"{{&\1}}", text)
    return text


class Assembly:
    """A chain's runnable and the parts it is made of: kept so that one request's parameters
    (OpenAI's ``max_tokens``, …) make a runnable of the same parts, never rebuilding them."""

    def __init__(self, spec: ChainSpec, clients: BedrockClients) -> None:
        self.spec = spec
        self.prompt = build_prompt(spec)
        self.models = [build_model(model, clients) for model in spec.models]
        self.runnable = self._assemble(self.models)

    def with_params(self, params: ModelParams) -> Runnable[dict[str, Any], Any]:
        """The runnable with one request's inference parameters (see ``models.with_params``)."""
        if params == ModelParams():
            return self.runnable
        return self._assemble([with_params(model, params) for model in self.models])

    def _assemble(self, models: list[BaseChatModel]) -> Runnable[dict[str, Any], Any]:
        steps: list[Runnable[Any, Any]] = list(models)
        if self.spec.output is not None:  # each model bound to the schema; one check after all
            steps = structured.bind_models(self.spec, models)
        model = steps[0] if len(steps) == 1 else with_fallbacks(steps, models)
        if self.spec.output is not None:
            return self.prompt | model | structured.conforming_parser(self.spec)
        return self.prompt | model | StrOutputParser()


def build_runnable(spec: ChainSpec, clients: BedrockClients) -> Runnable[dict[str, Any], Any]:
    """The chain a spec describes: prompt, then model, then the text of the reply (with
    ``output``: the object the reply makes, checked against the schema)."""
    return Assembly(spec, clients).runnable
