"""What langchain-aws can do with a chain file's model: refuse at load time what would fail later.

Every answer is asked of the installed langchain-aws (or botocore) rather than copied from it,
so an upgrade that changes what it can do changes our answer with it:

- chat: ``ChatPromptAdapter.convert_messages_to_prompt`` (what ChatBedrock does with a chat on
  InvokeModel) raises for a vendor it has no prompt format for — every call would be a 500;
- streaming: ``ChatBedrockConverse._get_streaming_support`` (what it sets ``disable_streaming``
  from) says no for a model it does not know — the whole reply would arrive at once;
- region: botocore's partition and endpoint data (no network);
- params on InvokeModel: ``LLMInputOutputAdapter.prepare_input`` (where a value lands in the
  request body) and ChatBedrock's per-vendor stop-sequence key.

The two facts not in langchain-aws are pinned by tests/test_compat.py: the key
``models.build_model`` writes stop sequences under, and the camelCase spelling of ``top_p``
inside a nested generation config.
"""

import functools
from dataclasses import dataclass
from typing import Any

from service.chains.error_texts import did_you_mean
from service.chains.model_spec import ModelSpec

# How models.build_model hands params to ChatBedrock (model_kwargs keys); pinned by a test.
STOP_KEY_WE_SEND = "stop_sequences"
TOP_P_KEY_WE_SEND = "top_p"
# A vendor whose body nests the generation settings (Titan's textGenerationConfig) spells them
# in camelCase, as langchain-aws's own maxTokenCount there: top_p is topP.
_NESTED_TOP_P = "topP"
# Probe values: distinctive, so finding one in a request body means it was put there.
_PROBE_MAX_TOKENS = 4321
_PROBE_TEMPERATURE = 0.4321


@dataclass(frozen=True)
class Problem:
    """One thing that will fail, at a location in the chain file (``("model", "region")``)."""

    where: tuple[str | int, ...]
    message: str


def check_model(model: ModelSpec) -> list[Problem]:
    """Everything about ``model`` that langchain-aws or Bedrock would fail on, with the fix."""
    vendor, base = model_vendor(model), (model.base_model or model.id)
    problems: list[Problem] = []
    uses_converse = model.provider == "bedrock-converse" or bedrock_uses_converse(model)
    if not uses_converse and not can_chat(vendor, base):
        problems.append(Problem(("model", "provider"), _cannot_chat(vendor)))
    else:
        streams = can_stream_converse(vendor, base) if uses_converse else can_stream_invoke(vendor)
        if not streams and model.streaming is not False:
            problems.append(Problem(("model", "id"), _cannot_stream(vendor, base)))
        elif streams and model.streaming is False:
            problems.append(Problem(("model", "streaming"), _streams_anyway(base)))
        if not uses_converse:
            problems.extend(_invoke_params(model, vendor))
    region = region_problem(model.region)
    if region:
        problems.append(Problem(("model", "region"), region))
    from service.chains.controls import check_controls  # it builds on this module

    problems.extend(check_controls(model))
    return problems


def model_vendor(model: ModelSpec) -> str:
    """Whose model it is, as langchain-aws reads it from the id (or ours, for an ARN)."""
    from langchain_aws.utils import parse_model_provider

    return model.vendor or parse_model_provider(model.id)


def bedrock_uses_converse(model: ModelSpec) -> bool:
    """``provider: bedrock`` hands some models (Nova) to ChatBedrockConverse: ask ChatBedrock."""
    from langchain_aws import ChatBedrock

    decide: Any = ChatBedrock.set_beta_use_converse_api
    values = decide({"model_id": model.id, "base_model_id": model.base_model or ""})
    return bool(values.get("beta_use_converse_api"))


@functools.cache
def can_chat(vendor: str, base_model: str) -> bool:
    """Whether ChatBedrock (InvokeModel) can turn a conversation into this vendor's request."""
    from langchain_aws.chat_models.bedrock import ChatPromptAdapter
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    messages = [SystemMessage("s"), HumanMessage("h"), AIMessage("a"), HumanMessage("h")]
    try:
        ChatPromptAdapter.convert_messages_to_prompt(vendor, messages, base_model)
    except NotImplementedError:
        return False
    return True


def can_stream_converse(vendor: str, base_model: str) -> bool:
    """Whether ChatBedrockConverse streams this model, or quietly calls Converse instead."""
    from langchain_aws import ChatBedrockConverse

    support: Any = ChatBedrockConverse._get_streaming_support
    return bool(support(vendor, base_model.lower()))


def can_stream_invoke(vendor: str) -> bool:
    """Whether ChatBedrock knows where the text is in this vendor's stream chunks."""
    from langchain_aws.llms.bedrock import LLMInputOutputAdapter

    return bool(LLMInputOutputAdapter.provider_to_output_key_map.get(vendor))


def stop_key(vendor: str) -> str | None:
    """The body key ChatBedrock sends this vendor's stop sequences under (None: it has none)."""
    from langchain_aws import ChatBedrock

    keys = ChatBedrock.model_fields["provider_stop_sequence_key_name_map"].default
    key = keys.get(vendor)
    return key if isinstance(key, str) else None


def _invoke_params(model: ModelSpec, vendor: str) -> list[Problem]:
    """``params`` that ChatBedrock would drop, or put where the vendor's API rejects them."""
    from langchain_aws.llms.bedrock import LLMInputOutputAdapter

    params = model.params
    body = LLMInputOutputAdapter.prepare_input(
        vendor,
        {TOP_P_KEY_WE_SEND: 0.5},
        prompt="p",
        max_tokens=_PROBE_MAX_TOKENS,
        temperature=_PROBE_TEMPERATURE,
    )
    problems: list[Problem] = []
    for name, probe in (("max_tokens", _PROBE_MAX_TOKENS), ("temperature", _PROBE_TEMPERATURE)):
        if getattr(params, name) is not None and not _contains(body, probe):
            problems.append(Problem(("model", "params", name), _param_dropped(name, vendor)))
    if params.top_p is not None and TOP_P_KEY_WE_SEND not in body:
        problems.append(
            Problem(
                ("model", "params", "top_p"),
                _param_elsewhere("top_p", vendor, _NESTED_TOP_P, params.top_p),
            )
        )
    if params.stop:
        key = stop_key(vendor)
        if key is None:
            problems.append(Problem(("model", "params", "stop"), _no_stop(vendor)))
        elif key != STOP_KEY_WE_SEND:
            problems.append(
                Problem(
                    ("model", "params", "stop"),
                    _param_elsewhere("stop", vendor, key, params.stop),
                )
            )
    return problems


def image_problem(model: ModelSpec) -> str | None:
    """Why langchain-aws would not send a chain's image to this model as an image, or None.

    Asked of the conversion it runs on each request, with a probe image: Converse turns the
    image block into a Converse image block; ChatBedrock formats Anthropic (and OpenAI)
    messages with their image blocks, but writes any other vendor's chat as one text prompt,
    where the image would be its Python repr — megabytes of base64 read as text.
    """
    from langchain_core.messages import BaseMessage, HumanMessage

    from service.chains.images import TINY_PNG_DATA_URL

    probe = TINY_PNG_DATA_URL.partition(",")[2]
    block = {"type": "image", "base64": probe, "mime_type": "image/png"}
    messages: list[BaseMessage] = [HumanMessage([{"type": "text", "text": "t"}, block])]
    vendor, base = model_vendor(model), (model.base_model or model.id)
    if model.provider == "bedrock-converse" or bedrock_uses_converse(model):
        from langchain_aws.chat_models.bedrock_converse import _messages_to_bedrock

        sent: Any = _messages_to_bedrock(messages, model_id=base, provider=vendor)
    else:
        from langchain_aws.chat_models.bedrock import ChatPromptAdapter

        try:
            sent = ChatPromptAdapter.format_messages(vendor, messages)
        except NotImplementedError:
            sent = None  # a text prompt (convert_messages_to_prompt): no image blocks
    if _has_image(sent, probe):
        return None
    return (
        f"langchain-aws's ChatBedrock (provider: bedrock, InvokeModel) cannot send images to "
        f"{vendor!r} models: it writes the chat as one text prompt; use provider: "
        "bedrock-converse"
    )


def _has_image(value: Any, probe: str) -> bool:
    """An image-shaped block (Converse ``image``, Anthropic ``image``, OpenAI ``image_url``)
    that carries the probe's bytes."""
    if isinstance(value, list | tuple):
        return any(_has_image(item, probe) for item in value)
    if not isinstance(value, dict):
        return False
    shaped = "image" in value or value.get("type") in ("image", "image_url")
    if shaped and _carries(value, probe):
        return True
    return any(_has_image(item, probe) for item in value.values())


def _carries(value: Any, probe: str) -> bool:
    if isinstance(value, dict):
        return any(_carries(item, probe) for item in value.values())
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode() == probe
    return isinstance(value, str) and (value == probe or value.endswith("," + probe))


def _contains(body: Any, value: Any) -> bool:
    if isinstance(body, dict):
        return any(_contains(item, value) for item in body.values())
    return bool(body == value)


def region_problem(region: str | None) -> str | None:
    """A region botocore does not know; a malformed name is left to botocore's own error."""
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    if region is None:
        return None
    try:
        validate_region_name(region)
    except InvalidRegionError:
        return None  # building the client says "Provided region_name ... doesn't match"
    known = known_regions()
    return None if region in known else _unknown_region(region, sorted(known))


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region in botocore's partition and endpoint data: aws, China, GovCloud, ISO."""
    import botocore.session

    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_data("partitions")["partitions"]:
        regions.update(partition.get("regions", {}))
    for partition in session.get_data("endpoints")["partitions"]:
        regions.update(partition.get("regions", {}))
    # "aws-global" and kin name global endpoints, not places a model runs.
    return frozenset(region for region in regions if not region.endswith("-global"))


# Wording: each says what fails and what to write instead. (Here rather than in error_texts,
# which words the file's syntax; these are about the model.)


def _cannot_chat(vendor: str) -> str:
    return (
        f"langchain-aws's ChatBedrock (provider: bedrock, InvokeModel) cannot chat with "
        f"{vendor!r} models: every request would fail; use provider: bedrock-converse"
    )


def _cannot_stream(vendor: str, base_model: str) -> str:
    return (
        f"langchain-aws does not know {base_model!r} (vendor {vendor!r}) as a model it can "
        "stream, so it would silently send the whole reply at once; check the model id, or "
        "add streaming: false under model to accept replies that arrive in one piece"
    )


def _streams_anyway(base_model: str) -> str:
    return (
        f"langchain-aws streams {base_model!r}; streaming: false is only for a model that "
        "cannot stream: remove it"
    )


def _param_dropped(name: str, vendor: str) -> str:
    return (
        f"langchain-aws's ChatBedrock does not send {name} to {vendor!r} models, so it would "
        "be ignored; remove it, or use provider: bedrock-converse"
    )


def _param_elsewhere(name: str, vendor: str, key: str, value: Any) -> str:
    shown = "[…]" if isinstance(value, list) else value
    return (
        f"{vendor!r} models on InvokeModel (provider: bedrock) take {name} as {key!r}, so "
        f"Bedrock would reject it as params.{name}; write it under "
        f"model.additional_request_fields: {{{key}: {shown}}}, or use provider: bedrock-converse"
    )


def _no_stop(vendor: str) -> str:
    return (
        f"langchain-aws's ChatBedrock has no stop-sequence key for {vendor!r} models; remove "
        "params.stop, or use provider: bedrock-converse"
    )


def _unknown_region(region: str, known: list[str]) -> str:
    return (
        f"{region!r} is not an AWS region botocore knows{did_you_mean(region, known)}; "
        "write one such as us-east-1, eu-west-1 or us-gov-west-1, or leave region out to use "
        "AWS_REGION"
    )
