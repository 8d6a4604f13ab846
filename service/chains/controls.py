"""Bedrock's model controls in a chain file (issue 11, item 2): what each key becomes in
langchain-aws's request fields, and what Bedrock would refuse, found at load time.

The keys: ``params.top_k`` (a vendor-specific request field), ``reasoning`` (Anthropic's
extended thinking with a token budget, or langchain-aws's ``reasoning_effort``), ``guardrail``,
``latency``, ``service_tier``, ``request_metadata`` and ``cache: true`` on prompt messages
(:mod:`service.chains.cache_points`). ``models.build_model`` sends them; :func:`check_controls`
(called by ``compat.check_model``) refuses what cannot work, with the fix.

What langchain-aws and botocore know is asked of them (model profiles, effort translation,
the request shapes' enums and patterns); what only Bedrock's documentation says is written
here, each with where it comes from, and pinned by tests/test_model_controls_load.py.
"""

import functools
import re
from typing import Any

from service.chains.compat import Problem, bedrock_uses_converse, model_vendor
from service.chains.model_spec import ModelSpec, foundation_model

# Anthropic's extended-thinking rules (Bedrock user guide, "Extended thinking"): a budget of at
# least 1024 tokens, below max_tokens; no temperature or top_k; top_p only from 0.95 to 1.
THINKING_MIN_TOP_P = 0.95
# Claude 3.7 Sonnet thinks with a budget but is not in langchain-aws's model profiles.
_BUDGET_THINKERS_WITHOUT_PROFILE = ("anthropic.claude-3-7-sonnet",)
# Bedrock's latency-optimized inference ("Optimize model inference for latency"): these models
# only (by foundation model id prefix, so inference profiles match too).
LATENCY_OPTIMIZED_MODELS = (
    "amazon.nova-pro-v1",
    "anthropic.claude-3-5-haiku-20241022",
    "meta.llama3-1-70b-instruct",
    "meta.llama3-1-405b-instruct",
)


def top_k_fields(vendor: str, base_model: str, top_k: int) -> dict[str, Any] | None:
    """Where ``top_k`` goes for this model (Converse's additionalModelRequestFields, or the
    InvokeModel body for ChatBedrock), per Bedrock's "Inference request parameters for
    foundation models"; None: the vendor's models take no top_k."""
    if vendor == "anthropic":
        return {"top_k": top_k}
    if vendor == "amazon" and "nova" in base_model:
        return {"inferenceConfig": {"topK": top_k}}
    if vendor == "cohere":
        return {"k": top_k}
    return None


def thinking_fields(budget_tokens: int) -> dict[str, Any]:
    """Anthropic's extended thinking with a token budget, as its request body spells it."""
    return {"thinking": {"type": "enabled", "budget_tokens": budget_tokens}}


def request_fields(model: ModelSpec) -> dict[str, Any]:
    """``additional_request_fields`` with ``params.top_k`` and a thinking budget merged in
    (a key given twice is refused at load by :func:`check_controls`)."""
    fields: dict[str, Any] = dict(model.additional_request_fields or {})
    vendor, base = model_vendor(model), base_model(model)
    extra: list[dict[str, Any]] = []
    if model.params.top_k is not None:
        extra.append(top_k_fields(vendor, base, model.params.top_k) or {})
    if model.reasoning and model.reasoning.budget_tokens is not None:
        extra.append(thinking_fields(model.reasoning.budget_tokens))
    for part in extra:
        fields = _merge(fields, part)
    return fields


def base_model(model: ModelSpec) -> str:
    """The foundation model id, without a cross-region profile's geography, lower case."""
    return foundation_model(model.base_model or model.id).lower()


def model_profile(model: ModelSpec) -> dict[str, Any]:
    """langchain-aws's profile of the model (what it can do: reasoning, effort levels…)."""
    from langchain_aws.chat_models.bedrock_converse import _get_default_model_profile

    profile = _get_default_model_profile(model.id) or _get_default_model_profile(base_model(model))
    return dict(profile or {})


def effort_levels(model: ModelSpec) -> tuple[str, ...]:
    """The reasoning efforts langchain-aws sends for this model (none: it takes no effort)."""
    from langchain_aws.utils import reasoning_effort_additional_fields

    levels = tuple(model_profile(model).get("reasoning_effort_levels") or ())
    return tuple(
        level for level in levels if reasoning_effort_additional_fields(base_model(model), level)
    )


def thinks_with_budget(model: ModelSpec) -> bool:
    """Anthropic extended thinking with ``budget_tokens``: Claude models that reason, except
    those that only think adaptively (their profile takes no temperature: Opus 4.7 and later)."""
    if model_vendor(model) != "anthropic":
        return False
    base = base_model(model)
    if base.startswith(_BUDGET_THINKERS_WITHOUT_PROFILE):
        return True
    profile = model_profile(model)
    return bool(profile.get("reasoning_output")) and profile.get("temperature") is not False


def check_controls(model: ModelSpec) -> list[Problem]:
    """Every model control in ``model`` that langchain-aws cannot send or Bedrock would refuse."""
    converse = model.provider == "bedrock-converse" or bedrock_uses_converse(model)
    problems = _top_k(model, converse) + _reasoning(model, converse)
    problems += _guardrail(model, converse) + _latency(model, converse)
    problems += _request_metadata(model)
    return problems


def _top_k(model: ModelSpec, converse: bool) -> list[Problem]:
    top_k = model.params.top_k
    if top_k is None:
        return []
    vendor = model_vendor(model)
    where = ("model", "params", "top_k")
    fields = top_k_fields(vendor, base_model(model), top_k)
    if fields is None:
        return [
            Problem(
                where,
                f"{vendor!r} models take no top_k on Bedrock; remove it (if this model has "
                "a field of its own for it, write that under model.additional_request_fields)",
            )
        ]
    if not converse and vendor != "anthropic":
        return [Problem(where, _invoke_only("top_k", vendor))]
    return _collisions(model, fields, "params.top_k")


def _reasoning(model: ModelSpec, converse: bool) -> list[Problem]:
    reasoning = model.reasoning
    if reasoning is None:
        return []
    vendor, base = model_vendor(model), base_model(model)
    if reasoning.effort is not None:
        where = ("model", "reasoning", "effort")
        levels = effort_levels(model)
        if not converse:
            return [Problem(where, _invoke_only("reasoning.effort", vendor))]
        if not levels:
            hint = " use budget_tokens instead," if thinks_with_budget(model) else ""
            return [
                Problem(
                    where,
                    f"langchain-aws knows no reasoning effort for {base!r};{hint} or remove "
                    "reasoning (models with an effort: Amazon Nova 2, OpenAI gpt-oss, Claude "
                    "Opus 4.5 and later…)",
                )
            ]
        if reasoning.effort not in levels:
            return [
                Problem(
                    where,
                    f"{base!r} takes reasoning effort {', '.join(levels)}, not "
                    f"{reasoning.effort!r}; write one of those",
                )
            ]
        from langchain_aws.utils import reasoning_effort_additional_fields

        fields = reasoning_effort_additional_fields(base, reasoning.effort)
        return _collisions(model, fields, "reasoning.effort")
    where = ("model", "reasoning", "budget_tokens")
    assert reasoning.budget_tokens is not None
    budget = reasoning.budget_tokens
    if not thinks_with_budget(model):
        efforts = effort_levels(model)
        fix = (
            f"write reasoning.effort ({', '.join(efforts)}) instead"
            if efforts and converse
            else "remove reasoning, or use a model that can (Claude 3.7 Sonnet, Claude 4)"
        )
        return [
            Problem(where, f"{base!r} does not think with a token budget (budget_tokens); {fix}")
        ]
    problems = _collisions(model, thinking_fields(budget), "reasoning.budget_tokens")
    params = model.params
    if params.max_tokens is None or params.max_tokens <= budget:
        at = ("params", "max_tokens") if params.max_tokens else ("reasoning", "budget_tokens")
        problems.append(
            Problem(
                ("model", *at),
                f"with reasoning.budget_tokens {budget}, max_tokens must be set and above it "
                f"(the budget is part of the reply); set params.max_tokens above {budget}",
            )
        )
    for name in ("temperature", "top_k"):
        if getattr(params, name) is not None:
            problems.append(
                Problem(
                    ("model", "params", name),
                    f"Anthropic's extended thinking does not take {name}; remove params.{name} "
                    "or reasoning",
                )
            )
    if params.top_p is not None and params.top_p < THINKING_MIN_TOP_P:
        problems.append(
            Problem(
                ("model", "params", "top_p"),
                f"with extended thinking, top_p must be from {THINKING_MIN_TOP_P} to 1; raise "
                "it or remove it",
            )
        )
    return problems


def _guardrail(model: ModelSpec, converse: bool) -> list[Problem]:
    guardrail = model.guardrail
    if guardrail is None:
        return []
    problems = []
    pattern = _botocore_pattern("GuardrailConfiguration", "guardrailIdentifier")
    if not re.fullmatch(pattern, guardrail.id):
        problems.append(
            Problem(
                ("model", "guardrail", "id"),
                f"{guardrail.id!r} is not a guardrail id: write its id (lowercase letters and "
                "digits, e.g. gr1abc2def3) or its ARN (arn:aws:bedrock:REGION:ACCOUNT:"
                "guardrail/ID)",
            )
        )
    if model.provider == "bedrock" and guardrail.trace != "disabled":
        if converse:  # a model ChatBedrock hands to ChatBedrockConverse (Nova)
            problems.append(
                Problem(
                    ("model", "guardrail", "trace"),
                    "langchain-aws's ChatBedrock hands this model to Converse without the "
                    "guardrail's trace setting; use provider: bedrock-converse",
                )
            )
        elif guardrail.trace == "enabled_full":
            problems.append(
                Problem(
                    ("model", "guardrail", "trace"),
                    "langchain-aws's ChatBedrock (provider: bedrock) sends only trace: enabled "
                    "on InvokeModel; use trace: enabled, or provider: bedrock-converse",
                )
            )
    return problems


def _latency(model: ModelSpec, converse: bool) -> list[Problem]:
    if model.latency != "optimized":
        return []
    from langchain_aws import ChatBedrock, ChatBedrockConverse

    where = ("model", "latency")
    fields = ChatBedrockConverse if model.provider == "bedrock-converse" else ChatBedrock
    if "performance_config" not in fields.model_fields:
        return [
            Problem(
                where,
                "langchain-aws's ChatBedrock (provider: bedrock) cannot send latency: "
                "optimized; use provider: bedrock-converse, or remove latency",
            )
        ]
    base = base_model(model)
    if not base.startswith(LATENCY_OPTIMIZED_MODELS):
        return [
            Problem(
                where,
                f"Bedrock offers latency-optimized inference for Amazon Nova Pro, Claude 3.5 "
                f"Haiku and Llama 3.1 70B/405B only, not {base!r}; remove latency",
            )
        ]
    return []


def _request_metadata(model: ModelSpec) -> list[Problem]:
    metadata = model.request_metadata
    if metadata is None:
        return []
    shape = _runtime_model().shape_for("RequestMetadata")
    where = ("model", "request_metadata")
    allowed = "letters, digits, spaces and : _ @ $ # = / + , - ."
    if not shape.metadata["min"] <= len(metadata) <= shape.metadata["max"]:
        return [
            Problem(
                where,
                f"request_metadata takes {shape.metadata['min']} to {shape.metadata['max']} "
                f"pairs, not {len(metadata)}; remove some",
            )
        ]
    problems = []
    for key, value in metadata.items():
        for kind, text, member in (("key", key, shape.key), ("value", value, shape.value)):
            low, high = member.metadata["min"], member.metadata["max"]
            if not low <= len(text) <= high or not re.fullmatch(member.metadata["pattern"], text):
                shown = text if len(text) <= 40 else text[:39] + "…"
                problems.append(
                    Problem(
                        (*where, key),
                        f"request_metadata {kind} {shown!r}: Bedrock takes {low} to {high} "
                        f"characters, {allowed}; change it",
                    )
                )
    return problems


def _collisions(model: ModelSpec, fields: dict[str, Any], source: str) -> list[Problem]:
    """The keys of ``fields`` already in ``additional_request_fields``: given twice."""
    taken = model.additional_request_fields or {}
    return [
        Problem(
            ("model", "additional_request_fields", path[0]),
            f"{'.'.join(path)} is given twice: by {source} and by additional_request_fields; "
            "keep one",
        )
        for path in _leaves(fields)
        if _has(taken, path)
    ]


def _leaves(fields: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for key, value in fields.items():
        if isinstance(value, dict) and value:
            found += _leaves(value, (*prefix, key))
        else:
            found.append((*prefix, key))
    return found


def _has(fields: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(fields, dict) or key not in fields:
            return False
        fields = fields[key]
    return True


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(into)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _botocore_pattern(shape: str, member: str) -> str:
    return str(_runtime_model().shape_for(shape).members[member].metadata["pattern"])


@functools.cache
def _runtime_model() -> Any:
    """botocore's model of the Bedrock Runtime API (its shapes' enums, patterns, lengths)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("bedrock-runtime")


def _invoke_only(key: str, vendor: str) -> str:
    return (
        f"langchain-aws's ChatBedrock (provider: bedrock, InvokeModel) cannot send {key} to "
        f"{vendor!r} models; use provider: bedrock-converse"
    )
