"""The chain file format: strict models of one YAML chain file.

Unknown keys are errors everywhere (``extra="forbid"``), so a typo never passes silently.
``chainserve schema`` publishes the JSON Schema of :class:`ChainSpec` for editors.
"""

import keyword
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from service.chaintests.spec import ChainTest

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
InputType = Literal["string", "integer", "number", "boolean", "messages"]
ROLES = ("system", "user", "assistant")
_NEEDS_DEFAULT = ("integer", "number", "boolean")
_INFERENCE_PROFILE_GEOS = ("us", "eu", "apac", "jp", "au", "ca", "us-gov", "global")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelParams(Strict):
    """Inference parameters, passed to the model unchanged."""

    temperature: float | None = Field(None, ge=0, le=1, description="Sampling temperature, 0–1.")
    max_tokens: int | None = Field(None, ge=1, description="Most tokens the model may generate.")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling, 0–1.")
    stop: list[str] | None = Field(None, description="Stop sequences.")


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
    additional_request_fields: dict[str, Any] | None = Field(
        None,
        description="Model-specific request fields, sent as they are (Converse: "
        "additionalModelRequestFields; InvokeModel: merged into the body), e.g. {top_k: 50}.",
    )

    @model_validator(mode="after")
    def _arn_needs_base_model(self) -> "ModelSpec":
        if self.id.startswith("arn:") and not self.base_model:
            raise ValueError(
                "a model ARN does not say which model it serves: add base_model, the "
                "foundation model id behind it (e.g. anthropic.claude-3-haiku-20240307-v1:0)"
            )
        return self

    @property
    def vendor(self) -> str | None:
        """Whose model an ARN serves (langchain-aws cannot tell from the ARN)."""
        if not self.base_model:
            return None
        return _foundation_model(self.base_model).partition(".")[0]

    def iam_resources(self) -> list[str]:
        """The ARNs IAM must allow ``bedrock:InvokeModel*`` on for this model.

        A cross-region inference profile (``us.anthropic...``) needs the profile and its
        foundation model in every region it routes to; a foundation model, only itself.
        """
        region = self.region or "*"
        if self.id.startswith("arn:"):
            assert self.base_model is not None
            foundation = _foundation_model(self.base_model)
            return [self.id, f"arn:aws:bedrock:*::foundation-model/{foundation}"]
        foundation = _foundation_model(self.id)
        if foundation != self.id:
            return [
                f"arn:aws:bedrock:{region}:*:inference-profile/{self.id}",
                f"arn:aws:bedrock:*::foundation-model/{foundation}",
            ]
        return [f"arn:aws:bedrock:{region}::foundation-model/{self.id}"]


def _foundation_model(model_id: str) -> str:
    """A cross-region inference profile id without its geography: ``us.x`` → ``x``."""
    geo, _, rest = model_id.partition(".")
    return rest if geo in _INFERENCE_PROFILE_GEOS and rest else model_id


class MessageSpec(Strict):
    """One prompt message: exactly one of ``system``, ``user``, ``assistant``, ``placeholder``."""

    system: str | None = None
    user: str | None = None
    assistant: str | None = None
    placeholder: str | None = Field(
        None, description="Name of a `messages` input spliced in here (chat history)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> "MessageSpec":
        given = [key for key in (*ROLES, "placeholder") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                "a message has exactly one key: system, user, assistant or placeholder"
                + (f" (found {', '.join(given)})" if given else "")
            )
        return self

    @property
    def role(self) -> str:
        return next(key for key in (*ROLES, "placeholder") if getattr(self, key) is not None)

    @property
    def text(self) -> str:
        value = getattr(self, self.role)
        assert isinstance(value, str)
        return value


class PromptSpec(Strict):
    format: str = Field(
        "f-string",
        description="Template syntax: f-string ({name}) or mustache ({{name}}). "
        "jinja2 is refused: it can execute code.",
        json_schema_extra={"enum": ["f-string", "mustache"]},
    )
    messages: list[MessageSpec] = Field(min_length=1)

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value == "jinja2":
            raise ValueError(
                "jinja2 templates are refused because they can execute code; "
                "use f-string ({name}) or mustache ({{name}})"
            )
        if value not in ("f-string", "mustache"):
            raise ValueError(f"unknown format {value!r}; use f-string or mustache")
        return value


class InputSpec(Strict):
    type: InputType = "string"
    required: bool | None = Field(None, description="Default: true unless a default is given.")
    default: Any = None
    description: str = ""
    enum: list[str | int | float] | None = Field(None, min_length=1)
    max_length: int | None = Field(
        None, ge=1, description="Most characters (string) or messages (messages)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "InputSpec":
        if self.required and self.default is not None:
            raise ValueError("an input with a default is not required; drop one of the two")
        if self.enum is not None and self.type not in ("string", "integer", "number"):
            raise ValueError(f"enum applies to string, integer and number inputs, not {self.type}")
        if self.max_length is not None and self.type not in ("string", "messages"):
            raise ValueError(f"max_length applies to string and messages inputs, not {self.type}")
        if self.required is False and self.default is None and self.type in _NEEDS_DEFAULT:
            raise ValueError(f"an optional {self.type} input needs a default")
        if self.type == "messages" and self.default not in (None, []):
            raise ValueError("a messages input can only default to an empty list")
        if self.default is not None and self.enum is not None and self.default not in self.enum:
            raise ValueError(f"default {_shown(self.default)} is not one of enum {self.enum}")
        for value in [*(self.enum or []), *([self.default] if self.default is not None else [])]:
            if not _is_a(self.type, value):
                article = "an" if self.type == "integer" else "a"
                raise ValueError(
                    f"{_shown(value)} is not {article} {self.type}: enum and default take its type"
                )
        if self.enum is not None and self.required is False and self.default is None:
            raise ValueError("an optional enum input needs a default (one of the enum)")
        return self

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return self.default is None and self.type != "messages"


def _shown(value: Any) -> str:
    """A value as an error message shows it: short, however large it is (an alias bomb)."""
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "a mapping"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _is_a(kind: str, value: Any) -> bool:
    if kind == "messages":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    allowed = (int,) if kind == "integer" else (int, float)
    return isinstance(value, allowed) and not isinstance(value, bool)


class ChainSpec(Strict):
    name: str | None = Field(
        None, pattern=NAME_PATTERN, description="URL segment; default: the file name's stem."
    )
    description: str = ""
    model: ModelSpec
    prompt: PromptSpec
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    tests: list[ChainTest] = Field(
        default_factory=list,
        description="Examples with expectations, run by chainserve test.",
    )
    _source: tuple[Path, int] = PrivateAttr(default=(Path("<memory>"), 1))
    """The file it came from, and the line of its ``model`` (for errors found later)."""

    @property
    def source_path(self) -> Path:
        """The chain file it came from (``<memory>`` for one that has none)."""
        return self._source[0]

    @field_validator("inputs")
    @classmethod
    def _identifier_names(cls, inputs: dict[str, InputSpec]) -> dict[str, InputSpec]:
        for name in inputs:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise ValueError(
                    f"input name {name!r} must be a Python identifier (letters, digits, _)"
                )
        return inputs
