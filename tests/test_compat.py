"""``chainserve validate`` refuses what langchain-aws would fail on: file:line and the fix.

Each refusal is paired with a test of the installed langchain-aws (through the emulator where
a call is needed) showing the failure it prevents, so an upgrade that changes langchain-aws's
answer fails here.
"""

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from service.chains.compat import (
    STOP_KEY_WE_SEND,
    TOP_P_KEY_WE_SEND,
    check_model,
    known_regions,
)
from service.chains.loader import ChainFileErrors, parse
from service.chains.model_spec import ModelSpec
from service.chains.models import BedrockClients, build_model
from service.chains.spec import ChainSpec
from service.emulator.server import Emulator
from service.settings import Settings

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
PROMPT = "prompt:\n  messages:\n    - user: hello\n"


def chain(model: str) -> str:
    """A chain file whose ``model:`` block is ``model`` (indented lines), starting at line 1."""
    return "model:\n" + model + PROMPT


def refusal(model: str) -> str:
    with pytest.raises(ChainFileErrors) as caught:
        parse(chain(model), Path("c.yaml"))
    [error] = caught.value.errors
    return str(error)


def built(bedrock: Emulator, **model: Any) -> Any:
    spec = ChainSpec.model_validate({"model": model, "prompt": {"messages": [{"user": "hi"}]}})
    return build_model(spec.model, BedrockClients(Settings(bedrock_endpoint_url=bedrock.url)))


# --- provider: bedrock with a vendor ChatBedrock cannot chat with --------------------------


@pytest.mark.parametrize("model_id", ["cohere.command-r-v1:0", "ai21.jamba-1-5-mini-v1:0"])
def test_a_vendor_chatbedrock_cannot_chat_with_is_refused(model_id: str) -> None:
    text = refusal(f"  provider: bedrock\n  id: {model_id}\n")
    vendor = model_id.partition(".")[0]
    assert text == (
        f"c.yaml:2: model.provider: langchain-aws's ChatBedrock (provider: bedrock, InvokeModel) "
        f"cannot chat with {vendor!r} models: every request would fail; "
        "use provider: bedrock-converse"
    )


@pytest.mark.parametrize("model_id", ["cohere.command-r-v1:0", "ai21.jamba-1-5-mini-v1:0"])
def test_chatbedrock_really_fails_on_those_vendors(bedrock: Emulator, model_id: str) -> None:
    model = built(bedrock, provider="bedrock", id=model_id)
    with pytest.raises(NotImplementedError, match="does not support chat"):
        model.invoke([HumanMessage("hello")])
    # The fix the message names works: Converse chats with any model.
    assert check_model(ModelSpec(id=model_id)) == []


@pytest.mark.parametrize(
    "model_id",
    [CLAUDE, "meta.llama3-8b-instruct-v1:0", "mistral.mistral-large-2402-v1:0"],
)
def test_vendors_chatbedrock_chats_with_pass(bedrock: Emulator, model_id: str) -> None:
    assert check_model(ModelSpec(provider="bedrock", id=model_id)) == []
    model = built(bedrock, provider="bedrock", id=model_id)
    with contextlib.suppress(Exception):  # the emulator may not speak this vendor's body
        model.invoke([HumanMessage("hello")])  # but langchain-aws got as far as calling it


# --- a model langchain-aws would not stream ----------------------------------------------


def test_an_unknown_model_is_refused_unless_streaming_false() -> None:
    assert refusal("  id: acme.rocket-v1\n") == (
        "c.yaml:2: model.id: langchain-aws does not know 'acme.rocket-v1' (vendor 'acme') as a "
        "model it can stream, so it would silently send the whole reply at once; check the "
        "model id, or add streaming: false under model to accept replies that arrive in one piece"
    )
    spec = parse(chain("  id: acme.rocket-v1\n  streaming: false\n"), Path("c.yaml"))
    assert spec.model.streaming is False


def test_streaming_false_on_a_model_that_streams_is_refused() -> None:
    assert refusal(f"  id: {CLAUDE}\n  streaming: false\n") == (
        f"c.yaml:3: model.streaming: langchain-aws streams {CLAUDE!r}; streaming: false is only "
        "for a model that cannot stream: remove it"
    )


def test_langchain_aws_really_streams_only_the_models_we_pass(
    bedrock: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "langchain_aws"):
        unknown = built(bedrock, id="acme.rocket-v1", streaming=False)
    assert unknown.disable_streaming is True
    assert "Streaming disabled for model 'acme.rocket-v1'" in caplog.text
    assert built(bedrock, id=CLAUDE).disable_streaming is False
    # Tools-only limits still stream plain text: those models pass.
    llama = "meta.llama3-8b-instruct-v1:0"
    assert built(bedrock, id=llama).disable_streaming == "tool_calling"
    assert check_model(ModelSpec(id=llama)) == []
    # And the stream itself: word by word for a known model, one piece for the unknown one.
    assert len(list(built(bedrock, id=CLAUDE).stream("one two three four"))) > 2
    assert len([c for c in unknown.stream("one two three four") if c.content]) == 1


@pytest.mark.parametrize(
    "model",
    [
        {"id": f"us.{CLAUDE}"},
        {"id": f"eu.{CLAUDE}", "region": "eu-west-1"},
        {"id": "arn:aws:bedrock:us-east-1:1:application-inference-profile/p", "base_model": CLAUDE},
        {
            "id": "arn:aws:bedrock:us-east-1:1:application-inference-profile/p",
            "base_model": f"us.{CLAUDE}",
        },
        {"id": "amazon.nova-lite-v1:0"},
        {"id": "amazon.nova-lite-v1:0", "provider": "bedrock"},  # ChatBedrock hands it to Converse
        {"id": "cohere.command-r-plus-v1:0"},
        {"id": "mistral.mistral-large-2402-v1:0"},
    ],
)
def test_models_langchain_aws_streams_pass(model: dict[str, Any]) -> None:
    assert check_model(ModelSpec(**model)) == []


# --- regions -------------------------------------------------------------------------------


def test_a_region_botocore_does_not_know_is_refused() -> None:
    assert refusal(f"  id: {CLAUDE}\n  region: us-est-1\n").startswith(
        "c.yaml:3: model.region: 'us-est-1' is not an AWS region botocore knows (did you mean "
    )
    assert refusal(f"  id: {CLAUDE}\n  region: mars-north-1\n").endswith(
        "write one such as us-east-1, eu-west-1 or us-gov-west-1, or leave region out to use "
        "AWS_REGION"
    )


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-central-2", "ap-southeast-4", "cn-north-1", "us-gov-west-1"]
)
def test_regions_of_every_partition_pass(region: str) -> None:
    import botocore.session

    assert check_model(ModelSpec(id=CLAUDE, region=region)) == []
    # botocore's own answer: a partition claims the region by name.
    partitions = botocore.session.get_session().get_data("partitions")["partitions"]
    assert any(region in partition["regions"] for partition in partitions)
    assert "aws-global" not in known_regions()


def test_a_malformed_region_is_left_to_botocores_own_error() -> None:
    assert check_model(ModelSpec(id=CLAUDE, region="eu west 1")) == []


# --- params on InvokeModel ---------------------------------------------------------------


def sent_body(bedrock: Emulator, **model: Any) -> dict[str, Any]:
    """The InvokeModel body langchain-aws really sends for ``model``."""
    chat = built(bedrock, provider="bedrock", **model)
    bodies: list[dict[str, Any]] = []

    def keep(params: dict[str, Any], **_: Any) -> None:
        bodies.append(json.loads(params["body"]))

    chat.client.meta.events.register("before-call.bedrock-runtime.*", keep)
    try:
        with contextlib.suppress(Exception):  # the emulator need not answer; the body was sent
            chat.invoke([HumanMessage("hello")])
    finally:
        chat.client.meta.events.unregister("before-call.bedrock-runtime.*", keep)
    return bodies[0]


def test_titan_params_in_the_wrong_place_are_refused(bedrock: Emulator) -> None:
    titan = "amazon.titan-text-express-v1"
    text = refusal(f"  provider: bedrock\n  id: {titan}\n  params:\n    top_p: 0.9\n")
    assert text == (
        "c.yaml:5: model.params.top_p: 'amazon' models on InvokeModel (provider: bedrock) take "
        "top_p as 'topP', so Bedrock would reject it as params.top_p; write it under "
        "model.additional_request_fields: {topP: 0.9}, or use provider: bedrock-converse"
    )
    text = refusal(f"  provider: bedrock\n  id: {titan}\n  params:\n    stop: [END]\n")
    assert text.startswith("c.yaml:5: model.params.stop: 'amazon' models on InvokeModel")
    assert "model.additional_request_fields: {stopSequences: […]}" in text
    # What langchain-aws really sends: ours nested under textGenerationConfig, by our name.
    body = sent_body(bedrock, id=titan, params={"top_p": 0.9, "stop": ["END"]})
    assert body["textGenerationConfig"][TOP_P_KEY_WE_SEND] == 0.9
    assert body["textGenerationConfig"][STOP_KEY_WE_SEND] == ["END"]
    # The fix, as written, arrives where Titan reads it.
    body = sent_body(
        bedrock, id=titan, additional_request_fields={"topP": 0.9, "stopSequences": ["END"]}
    )
    assert body["textGenerationConfig"] == {"topP": 0.9, "stopSequences": ["END"]}
    assert (
        check_model(
            ModelSpec(provider="bedrock", id=titan, additional_request_fields={"topP": 0.9})
        )
        == []
    )


def test_stop_on_a_vendor_without_a_stop_key_is_refused(bedrock: Emulator) -> None:
    llama = "meta.llama3-8b-instruct-v1:0"
    assert refusal(f"  provider: bedrock\n  id: {llama}\n  params:\n    stop: [END]\n") == (
        "c.yaml:5: model.params.stop: langchain-aws's ChatBedrock has no stop-sequence key for "
        "'meta' models; remove params.stop, or use provider: bedrock-converse"
    )
    # langchain-aws itself refuses a stop for them when asked the ordinary way (streaming).
    model = built(bedrock, provider="bedrock", id=llama)
    with pytest.raises(ValueError, match="Stop sequence key name for meta is not supported"):
        list(model.stream([HumanMessage("hello")], stop=["END"]))


def test_claude_on_invokemodel_takes_every_common_param(bedrock: Emulator) -> None:
    params = {"temperature": 0.2, "max_tokens": 50, "top_p": 0.9, "stop": ["END"]}
    assert check_model(ModelSpec(provider="bedrock", id=CLAUDE, params=params)) == []
    body = sent_body(bedrock, id=CLAUDE, params=params)
    assert (body["temperature"], body["max_tokens"], body["top_p"]) == (0.2, 50, 0.9)
    assert body["stop_sequences"] == ["END"]
