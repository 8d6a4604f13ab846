"""The ``model`` section of a chain file: the model, its parameters and Bedrock controls, and
its fallbacks (strict models, as all of :mod:`service.chains.spec`)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Cross-region inference profiles' geographies (``us.anthropic…``) besides those langchain-aws
# knows (``langchain_aws.utils.MODEL_ID_GEO_PREFIXES``, asked in :func:`foundation_model`).
_INFERENCE_PROFILE_GEOS = frozenset({"us", "eu", "apac", "jp", "au", "ca", "us-gov", "global"})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelParams(Strict):
    """Inference parameters, passed to the model unchanged."""

    temperature: float | None = Field(None, ge=0, le=1, description="Sampling temperature, 0–1.")
    max_tokens: int | None = Field(None, ge=1, description="Most tokens the model may generate.")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling, 0–1.")
    stop: list[str] | None = Field(None, description="Stop sequences.")
    top_k: int | None = Field(
        None,
        ge=1,
        description="Sample from the k most likely tokens only (models that take it: see "
        "the chain-file reference).",
    )


class ModelSpec(Strict):
    provider: Literal["bedrock-converse", "bedrock"] = Field(
        "bedrock-converse",
        description="bedrock-converse: ChatBedrockConverse (Converse API, any model); "
        "bedrock: ChatBedrock (InvokeModel API).",
    )
    id: str = Field(min_length=1, description="Bedrock model id or inference profile id/ARN.")
    region: str | None = Field(None, description="AWS region; default: AWS_REGION.")
    base_model: str | None = Field(
        None,
        description="When id is an ARN (an application inference profile): the foundation "
        "model behind it, e.g. anthropic.claude-3-haiku-20240307-v1:0.",
    )
    params: ModelParams = Field(default_factory=ModelParams)
    streaming: bool | None = Field(
        None,
        description="false: accept that this model's replies arrive in one piece (langchain-aws "
        "cannot stream it); refused for a model it streams. Default: the model must stream.",
    )
    additional_request_fields: dict[str, Any] | None = Field(
        None,
        description="Model-specific request fields, sent as they are (Converse: "
        "additionalModelRequestFields; InvokeModel: merged into the body), e.g. {top_k: 50}.",
    )

    reasoning: "ReasoningSpec | None" = Field(
        None, description="Let the model think before it answers (models that can)."
    )
    guardrail: "GuardrailSpec | None" = Field(
        None, description="An Amazon Bedrock guardrail applied to the prompt and the reply."
    )
    latency: Literal["standard", "optimized"] | None = Field(
        None, description="optimized: Bedrock's latency-optimized inference (models that offer it)."
    )
    service_tier: Literal["priority", "default", "flex", "reserved"] | None = Field(
        None, description="Bedrock's service tier for this model's requests."
    )
    request_metadata: dict[str, str] | None = Field(
        None,
        description="Key-value pairs Bedrock records with each request (invocation logs), "
        "e.g. {team: search}.",
    )
    fallbacks: "list[FallbackSpec]" = Field(
        default_factory=list,
        description="Further models or inference profiles, tried in order when this one fails "
        "before its first token (throttled, unavailable, timed out). Each is a model id or a "
        "mapping of model keys; the keys it does not set come from this model (params key by "
        "key, but for top_k), except base_model, streaming, additional_request_fields and "
        "reasoning.",
        json_schema_extra=lambda schema: schema.update(
            items={"anyOf": [{"type": "string", "minLength": 1}, schema["items"]]}
        ),
    )

    @model_validator(mode="after")
    def _arn_needs_base_model(self) -> "ModelSpec":
        if self.id.startswith("arn:") and not self.base_model:
            raise ValueError(
                "a model ARN does not say which model it serves: add base_model, the "
                "foundation model id behind it (e.g. anthropic.claude-3-haiku-20240307-v1:0)"
            )
        return self

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _model_ids(cls, fallbacks: Any) -> Any:
        """A fallback written as a model id is a fallback with just that id."""
        if isinstance(fallbacks, list):
            return [{"id": item} if isinstance(item, str) else item for item in fallbacks]
        return fallbacks

    @model_validator(mode="after")
    def _distinct_fallbacks(self) -> "ModelSpec":
        seen = {(self.id, self.region)}
        for fallback in self.fallbacks:
            region = fallback.region or self.region
            if (fallback.id, region) in seen:
                raise ValueError(
                    f"fallbacks lists {fallback.id!r} again: each model is tried once, so list "
                    "it once (a fallback may name the same model in another region)"
                )
            seen.add((fallback.id, region))
        return self

    @property
    def vendor(self) -> str | None:
        """Whose model an ARN serves (langchain-aws cannot tell from the ARN)."""
        if not self.base_model:
            return None
        return foundation_model(self.base_model).partition(".")[0]

    def iam_resources(self) -> list[str]:
        """The ARNs IAM must allow ``bedrock:InvokeModel*`` on for this model.

        A cross-region inference profile (``us.anthropic...``) needs the profile and its
        foundation model in every region it routes to; a foundation model, only itself.
        """
        region = self.region or "*"
        if self.id.startswith("arn:"):
            assert self.base_model is not None
            foundation = foundation_model(self.base_model)
            return [self.id, f"arn:aws:bedrock:*::foundation-model/{foundation}"]
        foundation = foundation_model(self.id)
        if foundation != self.id:
            return [
                f"arn:aws:bedrock:{region}:*:inference-profile/{self.id}",
                f"arn:aws:bedrock:*::foundation-model/{foundation}",
            ]
        return [f"arn:aws:bedrock:{region}::foundation-model/{self.id}"]


class ReasoningSpec(Strict):
    """Extended thinking: a token budget (Anthropic Claude) or an effort (other reasoning
    models); the reasoning text stays out of the output unless ``include`` is set."""

    budget_tokens: int | None = Field(
        None, ge=1024, description="Most tokens the model may think with (Anthropic Claude)."
    )
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = Field(
        None,
        description="How hard the model thinks (models that take an effort: Amazon Nova 2, "
        "OpenAI gpt-oss, Claude Opus 4.5 and later…; which levels, langchain-aws's model "
        "profile says).",
    )
    include: bool = Field(
        False, description="true: the reasoning text is returned too (in the run's metadata)."
    )

    @model_validator(mode="after")
    def _budget_or_effort(self) -> "ReasoningSpec":
        if (self.budget_tokens is None) == (self.effort is None):
            raise ValueError("reasoning takes one of budget_tokens (Anthropic Claude) or effort")
        return self


class GuardrailSpec(Strict):
    """An Amazon Bedrock guardrail (create it in the console or with CreateGuardrail)."""

    id: str = Field(min_length=1, description="The guardrail's id or ARN.")
    version: str = Field(
        pattern=r"^(DRAFT|[1-9][0-9]{0,7})$", description="Its version: a number, or DRAFT."
    )
    trace: Literal["enabled", "disabled", "enabled_full"] = Field(
        "disabled", description="enabled: the guardrail's assessment is returned in the metadata."
    )


class FallbackSpec(ModelSpec):
    """A fallback model: a model's keys, those it does not set taken from the chain's model."""

    @model_validator(mode="after")
    def _no_nested_fallbacks(self) -> "FallbackSpec":
        if self.fallbacks:
            raise ValueError("a fallback has no fallbacks of its own: list them all under model")
        return self


# What a fallback takes from the chain's model when it does not set it: the keys that are
# about the request, not about one model (additional_request_fields and reasoning are).
INHERITED_BY_FALLBACKS = (
    "provider",
    "region",
    "params",
    "guardrail",
    "latency",
    "service_tier",
    "request_metadata",
)
ModelSpec.model_rebuild()


def fallback_models(model: ModelSpec) -> list[ModelSpec]:
    """``model.fallbacks`` as whole models: what each does not set, taken from ``model``.

    Each part was validated as the file was read (a fallback is a ``ModelSpec`` itself), so
    the whole is valid too.
    """
    resolved = []
    for fallback in model.fallbacks:
        own = fallback.model_dump(exclude_unset=True, by_alias=True)
        inherited = model.model_dump(include=set(INHERITED_BY_FALLBACKS), exclude_none=True)
        # params merge key by key: a fallback that sets max_tokens keeps the temperature. Not
        # top_k: where it goes, and whether a model takes it at all, is the vendor's.
        params = {k: v for k, v in inherited.get("params", {}).items() if k != "top_k"}
        own["params"] = {**params, **own.get("params", {})}
        resolved.append(ModelSpec.model_validate({**inherited, **own}))
    return resolved


def foundation_model(model_id: str) -> str:
    """A cross-region inference profile id without its geography: ``us.x`` → ``x``."""
    from langchain_aws.utils import MODEL_ID_GEO_PREFIXES

    geo, _, rest = model_id.partition(".")
    known = geo.lower() in MODEL_ID_GEO_PREFIXES or geo.lower() in _INFERENCE_PROFILE_GEOS
    return rest if known and rest else model_id
