"""The chain file format: strict models of one YAML chain file.

Unknown keys are errors everywhere (``extra="forbid"``), so a typo never passes silently.
``chainserve schema`` publishes the JSON Schema of :class:`ChainSpec` for editors.
"""

import keyword
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from service.chains.model_spec import ModelSpec, Strict, fallback_models
from service.chains.patterns import compile_pattern
from service.chaintests.spec import ChainTest

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
InputType = Literal["string", "integer", "number", "boolean", "messages", "image"]
ROLES = ("system", "user", "assistant")
_NEEDS_DEFAULT = ("integer", "number", "boolean")
_NUMBERS = ("integer", "number")


MESSAGE_KINDS = (*ROLES, "placeholder", "image")


class MessageSpec(Strict):
    """One prompt message: exactly one of ``system``, ``user``, ``assistant``,
    ``placeholder``, ``image`` — and, on a system, user or assistant message, ``cache``."""

    system: str | None = None
    user: str | None = None
    assistant: str | None = None
    placeholder: str | None = Field(
        None, description="Name of a `messages` input spliced in here (chat history)."
    )
    image: str | None = Field(
        None, description="Name of an `image` input, placed here in a user message."
    )
    cache: bool = Field(
        False,
        description="true: a prompt-cache point after this message — what comes before it is "
        "cached by Bedrock and read from the cache by later requests (models that cache).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> "MessageSpec":
        given = [key for key in MESSAGE_KINDS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                "a message has exactly one key: system, user, assistant, placeholder or image"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if self.cache and given[0] not in ROLES:
            raise ValueError(
                f"cache applies to system, user and assistant messages, not {given[0]}"
            )
        return self

    @property
    def role(self) -> str:
        return next(key for key in MESSAGE_KINDS if getattr(self, key) is not None)

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
    min_length: int | None = Field(
        None,
        ge=0,
        description="Fewest characters (string). Default: 1 for a required string (an empty "
        "one is refused), 0 for an optional one; min_length: 0 lets a required string be empty.",
    )
    pattern: str | None = Field(
        None,
        min_length=1,
        description="A regular expression a string must contain a match of (anchor with ^…$); "
        "syntax JavaScript and Python share, as JSON Schema publishes it.",
    )
    minimum: int | float | None = Field(None, description="Smallest value (integer, number).")
    maximum: int | float | None = Field(None, description="Largest value (integer, number).")
    roles: list[Literal["system", "user", "assistant"]] | None = Field(
        None,
        min_length=1,
        description="Roles a messages input takes. Default: [user, assistant]; a caller's "
        "system message is refused unless system is listed.",
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                compile_pattern(pattern)
            except ValueError as exc:
                raise ValueError(f"pattern {_shown(pattern)}: {exc}") from None
        return pattern

    @field_validator("roles")
    @classmethod
    def _distinct_roles(cls, roles: list[str] | None) -> list[str] | None:
        if roles is not None and len(set(roles)) != len(roles):
            raise ValueError("roles lists a role twice; list each once")
        return roles

    @model_validator(mode="after")
    def _consistent(self) -> "InputSpec":
        if self.type == "image" and self.default is not None:
            raise ValueError(
                "an image input has no default; to let callers leave it out, write "
                "required: false (its image item is then left out of the prompt)"
            )
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
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{value} is not a finite number; no request could send it")
            if not _is_a(self.type, value):
                article = "an" if self.type == "integer" else "a"
                raise ValueError(
                    f"{_shown(value)} is not {article} {self.type}: enum and default take its type"
                )
        if self.enum is not None and self.required is False and self.default is None:
            raise ValueError("an optional enum input needs a default (one of the enum)")
        return self

    @model_validator(mode="after")
    def _constraints(self) -> "InputSpec":
        """The constraints of issue 11: each on the types it applies to, and consistent with
        the input's own default and enum (which are never validated per request)."""
        values = [*(self.enum or []), *([self.default] if self.default is not None else [])]
        for key in ("minimum", "maximum"):
            bound = getattr(self, key)
            if bound is None:
                continue
            if self.type not in _NUMBERS:
                raise ValueError(f"{key} applies to integer and number inputs, not {self.type}")
            if not _is_a(self.type, bound):
                kind = "an integer" if self.type == "integer" else "a finite number"
                raise ValueError(f"{key} {_shown(bound)} is not {kind}")
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and low > high:
            raise ValueError(f"minimum {low} is above maximum {high}; swap them")
        for value in values if self.type in _NUMBERS else []:
            if not _is_a(self.type, value):
                raise ValueError(f"{_shown(value)} is not finite: enum and default are numbers")
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"{_shown(value)} is outside minimum/maximum; fix one of them")
        for key in ("min_length", "pattern"):
            if getattr(self, key) is None:
                continue
            if self.type != "string":
                raise ValueError(f"{key} applies to string inputs, not {self.type}")
            if self.enum is not None:
                raise ValueError(
                    f"{key} does not apply to an enum input: the enum lists its values"
                )
        if (self.min_length or 0) > (self.max_length or self.min_length or 0):
            raise ValueError(f"min_length {self.min_length} is above max_length {self.max_length}")
        if self.roles is not None and self.type != "messages":
            raise ValueError(f"roles applies to messages inputs, not {self.type}")
        if isinstance(self.default, str) and self.type == "string" and self.enum is None:
            if len(self.default) < (self.min_length or 0):
                raise ValueError(f"default {_shown(self.default)} is shorter than min_length")
            if self.max_length is not None and len(self.default) > self.max_length:
                raise ValueError(f"default {_shown(self.default)} is longer than max_length")
            if self.pattern is not None and not compile_pattern(self.pattern).search(self.default):
                raise ValueError(f"default {_shown(self.default)} does not match pattern")
        return self

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return self.default is None and self.type != "messages"

    @property
    def least_length(self) -> int:
        """Fewest characters a sent string may have: an empty required string is refused
        unless the file says ``min_length: 0``."""
        if self.min_length is not None:
            return self.min_length
        return 1 if self.type == "string" and self.enum is None and self.is_required else 0

    @property
    def allowed_roles(self) -> tuple[str, ...]:
        """The roles a messages input takes, in ROLES order (system only if listed)."""
        chosen = set(self.roles or ("user", "assistant"))
        return tuple(role for role in ROLES if role in chosen)


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
    # YAML's .nan and .inf are floats: never a value a request could send or a prompt show.
    return isinstance(value, allowed) and not isinstance(value, bool) and math.isfinite(value)


class OutputSpec(Strict):
    """Structured output: the chain returns a JSON object that conforms to ``schema``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    json_schema: dict[str, Any] = Field(
        alias="schema",
        description='A JSON Schema (type: object), inline or {"$ref": "file.json"}: a JSON file '
        "beside the chain file.",
    )
    method: Literal["json_schema", "function_calling"] | None = Field(
        None,
        description="How the model is made to follow the schema; default: json_schema (Bedrock's "
        "structured outputs) for models that have it, else function_calling (a forced tool).",
    )


class ChainSpec(Strict):
    name: str | None = Field(
        None, pattern=NAME_PATTERN, description="URL segment; default: the file name's stem."
    )
    description: str = ""
    model: ModelSpec
    prompt: PromptSpec
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    output: OutputSpec | None = Field(
        None, description="Structured output: a JSON Schema the reply conforms to."
    )
    tests: list[ChainTest] = Field(
        default_factory=list,
        description="Examples with expectations, run by chainserve test.",
    )
    _source: tuple[Path, int] = PrivateAttr(default=(Path("<memory>"), 1))
    """The file it came from, and the line of its ``model`` (for errors found later)."""

    @property
    def models(self) -> list[ModelSpec]:
        """The chain's model, then its fallbacks (each as a whole model), in the order tried."""
        return [self.model, *fallback_models(self.model)]

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
