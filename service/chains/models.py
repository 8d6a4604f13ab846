"""Model specs → LangChain chat models: ``ChatBedrockConverse`` or ``ChatBedrock``, with the
chain file's parameters and Bedrock features mapped onto langchain-aws's own fields.

One boto3 ``bedrock-runtime`` client per region is shared by every chain: clients are
thread-safe, and one connection pool sized to the service's concurrency serves all streams.
"""

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from langchain_core.language_models import BaseChatModel

from service.chains.controls import request_fields
from service.chains.model_spec import ModelParams, ModelSpec
from service.runs.model_output import INCLUDE_REASONING
from service.settings import Settings

DEFAULT_REGION = "us-east-1"
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


def build_model(model: ModelSpec, clients: BedrockClients) -> BaseChatModel:
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

        # top_k and a thinking budget go into the InvokeModel body (Anthropic's spelling).
        kwargs: dict[str, Any] = request_fields(model)
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
            **_controls(model, converse=False),
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
        additional_model_request_fields=request_fields(model) or None,
        **_controls(model, converse=True),
    )


def _controls(model: ModelSpec, converse: bool) -> dict[str, Any]:
    """The chain file's Bedrock controls as langchain-aws's own fields (checked at load by
    ``controls.check_controls``: only what the class can send is here)."""
    fields: dict[str, Any] = {}
    if model.guardrail is not None:
        guardrail = model.guardrail
        fields["guardrails"] = {
            "guardrailIdentifier": guardrail.id,
            "guardrailVersion": guardrail.version,
            # ChatBedrock sends trace ENABLED for any true value, and none for None.
            "trace": guardrail.trace if converse else (guardrail.trace == "enabled" or None),
        }
    if model.service_tier is not None:
        fields["service_tier"] = model.service_tier
    if model.request_metadata is not None:
        fields["request_metadata"] = model.request_metadata
    if converse and model.latency is not None:
        fields["performance_config"] = {"latency": model.latency}
    if converse and model.reasoning is not None and model.reasoning.effort is not None:
        # langchain-aws's own translation: Nova 2 reasoningConfig, gpt-oss reasoning_effort,
        # Claude adaptive thinking with output_config.effort.
        fields["reasoning_effort"] = model.reasoning.effort
    if model.reasoning is not None and model.reasoning.include:
        fields["metadata"] = {INCLUDE_REASONING: True}  # read by runs.info's collector
    return fields


def _not_bedrock_traceback(record: logging.LogRecord) -> bool:
    return not (record.exc_info and record.msg == "Error raised by bedrock service")


def with_params(model: BaseChatModel, params: ModelParams) -> BaseChatModel:
    """``model`` (as :func:`build_model` made it) with one request's inference parameters:
    those set in ``params`` replace the chain file's, and its ``stop`` sequences are added to
    the file's.

    A shallow copy with the values set, sharing the boto3 client: ``ChatBedrock``'s own
    ``max_tokens`` and ``temperature`` win over per-call kwargs, and a per-call ``stop`` is
    written into its shared ``model_kwargs`` (so into later requests); a copy also keeps the
    model a model, so structured output and fallbacks are put together around it as usual.
    """
    from langchain_aws import ChatBedrock

    update: dict[str, Any] = {}
    if params.max_tokens is not None:
        update["max_tokens"] = params.max_tokens
    if params.temperature is not None:
        update["temperature"] = params.temperature
    if isinstance(model, ChatBedrock):
        model_kwargs = dict(model.model_kwargs or {})
        update["model_kwargs"] = model_kwargs
        if params.top_p is not None:
            model_kwargs["top_p"] = params.top_p
        if params.stop:
            model_kwargs["stop_sequences"] = [*model_kwargs.get("stop_sequences", []), *params.stop]
    else:
        if params.top_p is not None:
            update["top_p"] = params.top_p
        if params.stop:
            update["stop_sequences"] = [*(model.stop_sequences or []), *params.stop]  # type: ignore[attr-defined]
    return model.model_copy(update=update)


def is_output(message: Any) -> bool:
    """Whether a streamed message chunk carries some of what a client gets: text, or a tool
    call's arguments (a structured chain's object). Not reasoning, which never reaches a
    client, nor a stream's start and end (role, usage). A run's first token is the first such
    chunk: fallbacks are tried before it, and LangChain's events are held until it."""
    if getattr(message, "text", ""):
        return True
    return any(chunk.get("args") for chunk in getattr(message, "tool_call_chunks", None) or [])
