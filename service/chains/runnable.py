"""Specs → runnables: ``ChatPromptTemplate | ChatBedrockConverse or ChatBedrock | StrOutputParser``.

One boto3 ``bedrock-runtime`` client per region is shared by every chain: clients are
thread-safe, and one connection pool sized to the service's concurrency serves all streams.
"""

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable

from service.chains.spec import ChainSpec, ModelParams
from service.settings import Settings

DEFAULT_REGION = "us-east-1"
_ROLE_TO_LANGCHAIN = {"system": "system", "user": "human", "assistant": "ai"}
# A mustache variable tag, {{name}}: not a section, comment, partial or already unescaped tag.
_MUSTACHE_VARIABLE = re.compile(r"(?<!\{)\{\{\s*([^#^/!>&{}\s][^{}]*?)\s*\}\}(?!\})")
_STREAMING_OPERATIONS = ("ConverseStream", "InvokeModelWithResponseStream")

# The botocore event streams opened by the current chain run (see ``opened_streams``).
_opened: ContextVar[list[Any] | None] = ContextVar("chainserve_opened_streams", default=None)


@contextlib.contextmanager
def opened_streams() -> Iterator[list[Any]]:
    """Collect the botocore event streams that Bedrock calls made inside the block open.

    Why: closing a LangChain sync stream does not stop its model — LangChain catches
    ``GeneratorExit`` and drains the upstream iterator — so a run that must stop early closes
    botocore's stream (and with it the HTTP connection to Bedrock) itself.
    """
    opened: list[Any] = []
    token = _opened.set(opened)
    try:
        yield opened
    finally:
        _opened.reset(token)


def _remember_stream(parsed: dict[str, Any], **kwargs: Any) -> None:
    opened = _opened.get()
    stream = parsed.get("stream") or parsed.get("body")
    if opened is not None and hasattr(stream, "close"):
        opened.append(stream)


class BedrockClients:
    """boto3 Bedrock clients, one per (service, region), configured from the settings.

    ``bedrock-runtime`` runs the models; ``bedrock`` (control plane) is what langchain-aws
    asks for to resolve application inference profiles — shared too, or every chain would
    build its own.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, region: str | None, service: str = "bedrock-runtime") -> Any:
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        region = region or DEFAULT_REGION
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                client = self._clients[service, region] = self._create(service, region)
        return client

    def _create(self, service: str, region: str) -> Any:
        import boto3
        from botocore.config import Config

        settings = self._settings
        config = Config(
            read_timeout=settings.bedrock_read_timeout,
            connect_timeout=settings.bedrock_connect_timeout,
            retries={"total_max_attempts": settings.bedrock_max_attempts, "mode": "standard"},
            max_pool_connections=settings.max_concurrency,
            user_agent_appid="chainserve",
        )
        client = boto3.client(
            service,
            region_name=region,
            endpoint_url=settings.bedrock_endpoint_url,
            config=config,
        )
        for operation in _STREAMING_OPERATIONS:
            client.meta.events.register(f"after-call.bedrock-runtime.{operation}", _remember_stream)
        return client


class _ControlPlane:
    """The shared ``bedrock`` control-plane client, created on first use.

    langchain-aws calls it only to resolve an application inference profile ARN without a
    ``base_model`` (which chain files cannot have), so usually never: creating it eagerly
    cost 20 ms of every cold start.
    """

    def __init__(self, clients: BedrockClients, region: str | None) -> None:
        self._clients, self._region = clients, region

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clients.get(self._region, "bedrock"), name)


def build_prompt(spec: ChainSpec) -> ChatPromptTemplate:
    parts: list[Any] = []
    for message in spec.prompt.messages:
        if message.role == "placeholder":
            history = spec.inputs[message.text]
            parts.append(MessagesPlaceholder(message.text, optional=not history.is_required))
        else:
            text = message.text
            if spec.prompt.format == "mustache":
                # Mustache escapes {{name}} for HTML; a prompt is not HTML, so inputs go in as
                # they were sent ({{&name}}), never as &lt;b&gt; or &amp;.
                text = _MUSTACHE_VARIABLE.sub(r"{{&\1}}", text)
            parts.append((_ROLE_TO_LANGCHAIN[message.role], text))
    return ChatPromptTemplate.from_messages(parts, template_format=spec.prompt.format)  # type: ignore[arg-type]


def build_model(spec: ChainSpec, clients: BedrockClients) -> BaseChatModel:
    model = spec.model
    params = model.params
    client = clients.get(model.region)
    shared = {"client": client, "bedrock_client": _ControlPlane(clients, model.region)}
    if model.base_model:  # an ARN: langchain-aws would otherwise call GetInferenceProfile
        shared["provider"] = model.vendor
        shared["base_model_id"] = model.base_model
    if model.provider == "bedrock":
        from langchain_aws import ChatBedrock

        # ChatBedrock logs every failed Bedrock call with a full traceback ("Error raised by
        # bedrock service") and raises it on; whoever runs the chain maps that same error and
        # says it once (the server's run line, `chainserve run`, chain tests). Only that record
        # is dropped: the module's other messages still reach the log. Added here, where such
        # chains are built, so every command gets it (addFilter ignores a filter added twice).
        logging.getLogger("langchain_aws.llms.bedrock").addFilter(_not_bedrock_traceback)

        kwargs: dict[str, Any] = dict(model.additional_request_fields or {})
        if params.top_p is not None:
            kwargs["top_p"] = params.top_p
        if params.stop:
            kwargs["stop_sequences"] = params.stop
        return ChatBedrock(  # type: ignore[no-any-return]
            model_id=model.id,
            **shared,
            region_name=client.meta.region_name,
            temperature=params.temperature,
            max_tokens=params.max_tokens,
            model_kwargs=kwargs or None,
        )
    from langchain_aws import ChatBedrockConverse

    return ChatBedrockConverse(  # type: ignore[no-any-return, call-arg]
        model=model.id,
        **shared,
        region_name=client.meta.region_name,
        temperature=params.temperature,
        max_tokens=params.max_tokens,
        top_p=params.top_p,
        stop=params.stop,
        additional_model_request_fields=model.additional_request_fields,
    )


def _not_bedrock_traceback(record: logging.LogRecord) -> bool:
    return not (record.exc_info and record.msg == "Error raised by bedrock service")


def build_runnable(spec: ChainSpec, clients: BedrockClients) -> Runnable[dict[str, Any], str]:
    """The chain a spec describes: prompt, then model, then the text of the reply."""
    return build_prompt(spec) | build_model(spec, clients) | StrOutputParser()


def with_params(
    runnable: Runnable[dict[str, Any], str], params: ModelParams
) -> Runnable[dict[str, Any], str]:
    """``runnable`` (as :func:`build_runnable` made it) with one request's inference
    parameters: those set in ``params`` replace the chain file's, and its ``stop`` sequences
    are added to the file's. The prompt and model are shared, not rebuilt.

    Why two ways: ``ChatBedrockConverse`` takes these per call (``bind``). ``ChatBedrock``
    does not — its own ``max_tokens`` and ``temperature`` win over per-call kwargs, and a
    per-call ``stop`` is written into its shared ``model_kwargs`` (so into later requests) —
    so it gets a shallow copy with the values set, sharing the boto3 client.
    """
    if params == ModelParams():
        return runnable
    prompt, model, parser = runnable.steps  # type: ignore[attr-defined]
    from langchain_aws import ChatBedrock

    if isinstance(model, ChatBedrock):
        model_kwargs = dict(model.model_kwargs or {})
        update: dict[str, Any] = {"model_kwargs": model_kwargs}
        if params.max_tokens is not None:
            update["max_tokens"] = params.max_tokens
        if params.temperature is not None:
            update["temperature"] = params.temperature
        if params.top_p is not None:
            model_kwargs["top_p"] = params.top_p
        if params.stop:
            model_kwargs["stop_sequences"] = [*model_kwargs.get("stop_sequences", []), *params.stop]
        bound: Runnable[Any, Any] = model.model_copy(update=update)
    else:
        per_call: dict[str, Any] = {
            name: value
            for name, value in params.model_dump(exclude={"stop"}).items()
            if value is not None
        }
        if params.stop:
            per_call["stop"] = [*(model.stop_sequences or []), *params.stop]
        bound = model.bind(**per_call)
    return prompt | bound | parser  # type: ignore[no-any-return]
