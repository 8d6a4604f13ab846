"""Model controls at load time: what each key becomes in langchain-aws's request fields, and
each refusal (file:line and the fix), asked of the installed langchain-aws and botocore so an
upgrade that changes their answer fails here."""

import typing
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from langchain_aws import ChatBedrock, ChatBedrockConverse

from service.chains import controls
from service.chains.loader import ChainFileErrors, parse
from service.chains.model_spec import GuardrailSpec, ModelSpec
from service.chains.models import BedrockClients, build_model
from service.chains.spec import ChainSpec
from service.settings import Settings

SONNET_4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
HAIKU_3 = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA_PRO = "us.amazon.nova-pro-v1:0"
PROMPT = "prompt:\n  messages:\n    - system: Be brief.\n    - user: hello\n"


def chain(model: str, prompt: str = PROMPT) -> str:
    return "model:\n" + model + prompt


def refusals(model: str, prompt: str = PROMPT) -> list[str]:
    with pytest.raises(ChainFileErrors) as caught:
        parse(chain(model, prompt), Path("c.yaml"))
    return [str(error) for error in caught.value.errors]


def refusal(model: str, prompt: str = PROMPT) -> str:
    [text] = refusals(model, prompt)
    return text


def loads(model: str, prompt: str = PROMPT) -> ChainSpec:
    return parse(chain(model, prompt), Path("c.yaml"))


def _runtime() -> Any:
    return botocore.session.get_session().get_service_model("bedrock-runtime")


# --- the spec's choices are botocore's --------------------------------------------------------


def test_service_tier_and_trace_take_exactly_what_botocore_takes() -> None:
    tier = typing.get_args(typing.get_args(ModelSpec.model_fields["service_tier"].annotation)[0])
    assert list(tier) == list(_runtime().shape_for("ServiceTierType").enum)
    trace = typing.get_args(GuardrailSpec.model_fields["trace"].annotation)
    assert list(trace) == list(_runtime().shape_for("GuardrailTrace").enum)
    latency = typing.get_args(typing.get_args(ModelSpec.model_fields["latency"].annotation)[0])
    assert list(latency) == list(_runtime().shape_for("PerformanceConfigLatency").enum)


def test_langchain_aws_takes_the_fields_build_model_sets() -> None:
    for name in ("guardrail_config", "performance_config", "service_tier", "request_metadata"):
        assert name in ChatBedrockConverse.model_fields
    assert ChatBedrockConverse.model_fields["guardrail_config"].alias == "guardrails"
    assert "reasoning_effort" in ChatBedrockConverse.model_fields
    for name in ("guardrails", "service_tier", "request_metadata"):
        assert name in ChatBedrock.model_fields
    # ChatBedrock has no latency field: latency is refused on provider: bedrock (below).
    assert "performance_config" not in ChatBedrock.model_fields


# --- what build_model hands langchain-aws -----------------------------------------------------


def built(text: str) -> Any:
    spec = loads(text)
    return build_model(spec.model, BedrockClients(Settings(bedrock_endpoint_url="http://x")))


def test_top_k_lands_where_each_vendor_takes_it() -> None:
    claude = built(f"  id: {SONNET_4}\n  params: {{top_k: 40}}\n")
    assert claude.additional_model_request_fields == {"top_k": 40}
    nova = built(f"  id: {NOVA_PRO}\n  params: {{top_k: 40}}\n")
    assert nova.additional_model_request_fields == {"inferenceConfig": {"topK": 40}}
    invoke = built(f"  provider: bedrock\n  id: {HAIKU_3}\n  params: {{top_k: 40}}\n")
    assert invoke.model_kwargs == {"top_k": 40}


def test_top_k_merges_with_additional_request_fields() -> None:
    nova = built(
        f"  id: {NOVA_PRO}\n  params: {{top_k: 9}}\n"
        "  additional_request_fields: {inferenceConfig: {other: 1}, x: 2}\n"
    )
    assert nova.additional_model_request_fields == {
        "inferenceConfig": {"other": 1, "topK": 9},
        "x": 2,
    }


def test_controls_become_langchain_aws_fields() -> None:
    model = built(
        f"  id: {SONNET_4}\n  params: {{max_tokens: 4000}}\n"
        "  reasoning: {budget_tokens: 2048, include: true}\n"
        "  guardrail: {id: gr1, version: DRAFT, trace: enabled_full}\n"
        "  service_tier: flex\n  request_metadata: {team: search}\n"
    )
    assert model.additional_model_request_fields == {
        "thinking": {"type": "enabled", "budget_tokens": 2048}
    }
    assert model.guardrail_config == {
        "guardrailIdentifier": "gr1",
        "guardrailVersion": "DRAFT",
        "trace": "enabled_full",
    }
    assert (model.service_tier, model.request_metadata) == ("flex", {"team": "search"})
    assert model.metadata["chainserve_include_reasoning"] is True
    fast = built(f"  id: {NOVA_PRO}\n  latency: optimized\n")
    assert fast.performance_config == {"latency": "optimized"}


@pytest.mark.parametrize(
    ("model_id", "fields"),
    [
        ("openai.gpt-oss-120b-1:0", {"reasoning_effort": "high"}),
        ("amazon.nova-2-lite-v1:0", {"reasoningConfig": {"type": "enabled"}}),
    ],
)
def test_effort_is_langchain_aws_own_translation(model_id: str, fields: dict[str, Any]) -> None:
    model = built(f"  id: {model_id}\n  reasoning: {{effort: high}}\n")
    assert model.reasoning_effort == "high"
    sent = model.additional_model_request_fields
    for key, value in fields.items():
        assert sent[key] == value or value.items() <= sent[key].items()


# --- refusals ---------------------------------------------------------------------------------


def test_top_k_on_a_vendor_without_one() -> None:
    text = refusal("  id: meta.llama3-1-70b-instruct-v1:0\n  params:\n    top_k: 5\n")
    assert text == (
        "c.yaml:4: model.params.top_k: 'meta' models take no top_k on Bedrock; remove it (if "
        "this model has a field of its own for it, write that under "
        "model.additional_request_fields)"
    )


def test_a_key_given_twice_is_refused() -> None:
    text = refusal(
        f"  id: {SONNET_4}\n  params: {{top_k: 5}}\n  additional_request_fields:\n    top_k: 7\n"
    )
    assert text == (
        "c.yaml:5: model.additional_request_fields.top_k: top_k is given twice: by "
        "params.top_k and by additional_request_fields; keep one"
    )


def test_a_budget_needs_max_tokens_above_it_and_no_temperature() -> None:
    texts = refusals(
        f"  id: {SONNET_4}\n  params:\n    temperature: 0.5\n    top_p: 0.5\n"
        "  reasoning:\n    budget_tokens: 2000\n"
    )
    assert texts == [
        "c.yaml:7: model.reasoning.budget_tokens: with reasoning.budget_tokens 2000, "
        "max_tokens must be set and "
        "above it (the budget is part of the reply); set params.max_tokens above 2000",
        "c.yaml:4: model.params.temperature: Anthropic's extended thinking does not take "
        "temperature; remove params.temperature or reasoning",
        "c.yaml:5: model.params.top_p: with extended thinking, top_p must be from 0.95 to 1; "
        "raise it or remove it",
    ]


def test_a_budget_on_a_model_that_cannot_think() -> None:
    text = refusal(f"  id: {HAIKU_3}\n  reasoning:\n    budget_tokens: 2000\n")
    assert text == (
        f"c.yaml:4: model.reasoning.budget_tokens: {HAIKU_3!r} does not think with a token "
        "budget (budget_tokens); remove reasoning, or use a model that can (Claude 3.7 Sonnet, "
        "Claude 4)"
    )


def test_a_budget_below_anthropics_minimum_is_refused_by_the_spec() -> None:
    text = refusal(f"  id: {SONNET_4}\n  reasoning:\n    budget_tokens: 100\n")
    assert text.startswith("c.yaml:4: model.reasoning.budget_tokens:")
    assert "1024" in text


def test_a_budget_on_a_model_that_thinks_adaptively_points_to_effort() -> None:
    # langchain-aws's profile: Opus 4.7 takes no temperature, and reasoning efforts.
    assert controls.model_profile(ModelSpec(id="anthropic.claude-opus-4-7"))["temperature"] is False
    text = refusal(
        "  id: anthropic.claude-opus-4-7\n  params: {max_tokens: 9000}\n"
        "  reasoning: {budget_tokens: 2000}\n"
    )
    assert "write reasoning.effort (low, medium, high, xhigh, max) instead" in text


def test_effort_on_models_without_one() -> None:
    text = refusal("  id: meta.llama3-1-70b-instruct-v1:0\n  reasoning: {effort: low}\n")
    assert text.startswith(
        "c.yaml:3: model.reasoning.effort: langchain-aws knows no reasoning effort for "
        "'meta.llama3-1-70b-instruct-v1:0'; or remove reasoning"
    )
    text = refusal("  id: openai.gpt-oss-120b-1:0\n  reasoning: {effort: max}\n")
    assert text == (
        "c.yaml:3: model.reasoning.effort: 'openai.gpt-oss-120b-1:0' takes reasoning effort "
        "low, medium, high, not 'max'; write one of those"
    )
    text = refusal(f"  provider: bedrock\n  id: {HAIKU_3}\n  reasoning: {{effort: low}}\n")
    assert "cannot send reasoning.effort to 'anthropic' models" in text


def test_guardrail_id_and_trace() -> None:
    text = refusal(f"  id: {SONNET_4}\n  guardrail:\n    id: Not An Id\n    version: '1'\n")
    assert text.startswith("c.yaml:4: model.guardrail.id: 'Not An Id' is not a guardrail id")
    text = refusal(
        f"  provider: bedrock\n  id: {HAIKU_3}\n  guardrail:\n    id: gr1\n    version: '1'\n"
        "    trace: enabled_full\n"
    )
    assert text.startswith("c.yaml:7: model.guardrail.trace: langchain-aws's ChatBedrock")
    arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123"
    loads(f"  id: {SONNET_4}\n  guardrail: {{id: '{arn}', version: DRAFT}}\n")


def test_latency_optimized() -> None:
    text = refusal(f"  id: {SONNET_4}\n  latency: optimized\n")
    assert text == (
        "c.yaml:3: model.latency: Bedrock offers latency-optimized inference for Amazon Nova "
        "Pro, Claude 3.5 Haiku and Llama 3.1 70B/405B only, not "
        "'anthropic.claude-sonnet-4-20250514-v1:0'; remove latency"
    )
    text = refusal(
        "  provider: bedrock\n  id: us.anthropic.claude-3-5-haiku-20241022-v1:0\n"
        "  latency: optimized\n"
    )
    assert text.startswith("c.yaml:4: model.latency: langchain-aws's ChatBedrock")
    loads("  id: us.anthropic.claude-3-5-haiku-20241022-v1:0\n  latency: optimized\n")
    loads(f"  id: {SONNET_4}\n  latency: standard\n")


def test_request_metadata_as_botocore_constrains_it() -> None:
    text = refusal(f"  id: {SONNET_4}\n  request_metadata:\n    'bad key!': x\n")
    assert text.startswith("c.yaml:4: model.request_metadata.bad key!: request_metadata key")
    assert "1 to 256 characters" in text
    many = "".join(f"    k{i}: v\n" for i in range(17))
    text = refusal(f"  id: {SONNET_4}\n  request_metadata:\n{many}")
    assert "takes 1 to 16 pairs, not 17" in text
    loads(f"  id: {SONNET_4}\n  request_metadata: {{'team:a/b': '', cost-center: '1 2'}}\n")


CACHED = "prompt:\n  messages:\n    - system: Long rules.\n      cache: true\n    - user: hi\n"


def test_cache_on_a_model_that_caches_and_one_that_does_not() -> None:
    loads(f"  id: {SONNET_4}\n", CACHED)
    loads(f"  id: {NOVA_PRO}\n", CACHED)
    text = refusal("  id: meta.llama3-1-70b-instruct-v1:0\n", CACHED)
    assert text == (
        "c.yaml:6: prompt.messages[0].cache: 'meta.llama3-1-70b-instruct-v1:0' takes no "
        "prompt-cache points (Bedrock caches prompts for Anthropic Claude and Amazon Nova "
        "models); remove cache"
    )


def test_the_example_chains_still_validate() -> None:
    from service.chains.loader import load_folder

    assert load_folder(Path(__file__).parent.parent / "chains")


def test_cache_on_a_user_item_next_to_an_image_follows_the_whole_user_turn() -> None:
    from langchain_aws.chat_models.bedrock_converse import _messages_to_bedrock

    from service.chains.images import TINY_PNG_DATA_URL, parse_image
    from service.chains.runnable import build_prompt

    spec = loads(
        f"  id: {SONNET_4}\n",
        "prompt:\n  messages:\n    - system: Describe.\n    - user: Look at this\n"
        "      cache: true\n    - image: photo\n    - user: '{question}'\n"
        "inputs:\n  photo: {type: image}\n  question: {}\n",
    )
    image = parse_image(TINY_PNG_DATA_URL, 10**6)
    rendered = build_prompt(spec).invoke({"photo": image, "question": "What?"}).to_messages()
    [message], _ = _messages_to_bedrock(rendered)
    assert [next(iter(block)) for block in message["content"]] == [
        "text",
        "image",
        "text",
        "cachePoint",
    ]
