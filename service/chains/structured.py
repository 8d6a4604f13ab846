"""Structured output: a chain whose ``output.schema`` makes it return a JSON object.

Each model (the chain's and each fallback) is bound through langchain-aws's own
``with_structured_output`` — we take the bound model it builds (the forced tool, or Bedrock's
``outputConfig``) and not its parser, because its parser streams nothing useful for us (whole
objects, or nothing until the end) and never checks the schema. After each bound model comes a
:class:`JsonText` that reduces its reply to the JSON text alone (a tool call's arguments, or the
reply text); after the model (and its fallbacks) comes ONE :class:`ConformingObject`, which
streams that text as it grows and, at the end, parses it and validates it against the schema:
``invoke`` returns the object, a stream the JSON text, and a reply that does not conform raises
:class:`OutputNotConforming` (a 502 in ``runs/errors.py``) naming where it failed. The two
parsers are in :mod:`service.chains.structured_parsers`.

``jsonschema`` and the parser classes (pydantic models: 13 ms to define) are imported only when
a chain has ``output``: chains without it pay nothing at cold start.
"""

import functools
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

from service.chains.model_spec import ModelSpec, foundation_model
from service.chains.patterns import compile_pattern
from service.chains.spec import ChainSpec, OutputSpec

Method = Literal["json_schema", "function_calling"]

# Models with Bedrock's native structured outputs (Converse ``outputConfig.textFormat``: the
# reply is decoded under the schema's grammar, so it always parses and conforms), as AWS lists
# them in "Get validated JSON results from models" (bedrock/latest/userguide/structured-output
# .html; langchain-aws issue #883): Claude Haiku 4.5, Sonnet 4.5, Opus 4.5 and 4.6, and the
# open-weight Qwen3, gpt-oss, DeepSeek V3.1, Gemma 3, MiniMax M2, Kimi K2 and Nemotron.
# Matched on the foundation model id (an inference profile's geography removed).
JSON_SCHEMA_MODELS = (
    "anthropic.claude-haiku-4-5",
    "anthropic.claude-sonnet-4-5",
    "anthropic.claude-opus-4-5",
    "anthropic.claude-opus-4-6",
    "qwen.qwen3",
    "openai.gpt-oss",
    "deepseek.v3",
    "google.gemma-3",
    "minimax.minimax-m2",
    "moonshot.kimi-k2",
    "moonshotai.kimi-k2",
    "nvidia.nemotron",
)
# Bedrock's tool names (ToolSpecification.name; also outputConfig's jsonSchema name).
TOOL_NAME_CHARS = 64
_TOOL_NAME = re.compile(rf"^[a-zA-Z0-9_-]{{1,{TOOL_NAME_CHARS}}}$")
_SHOWN_CHARS = 40


class OutputNotConforming(ValueError):
    """The model's reply is not the JSON object the chain's schema describes. The message
    says where and why, never the reply itself (it may hold user data): see :func:`describe`."""


def choose_method(model: ModelSpec, output: OutputSpec) -> Method:
    """How ``model`` is made to follow the schema: the file's ``output.method`` if it says;
    else ``json_schema`` for a Converse model Bedrock constrains natively (the reply always
    conforms, and it is plain text, streamed as it is decoded); else ``function_calling``, a
    tool the model is forced to call with the object as its input — every model that can be
    forced to call a tool, but the schema is only a strong hint there, so replies are checked.
    InvokeModel (``provider: bedrock``) has function calling only in langchain-aws.
    """
    if output.method is not None:
        return output.method
    if model.provider == "bedrock":
        return "function_calling"
    base = foundation_model(model.base_model or model.id)
    return "json_schema" if base.startswith(JSON_SCHEMA_MODELS) else "function_calling"


def schema_for_model(spec: ChainSpec) -> dict[str, Any]:
    """The schema as langchain-aws gets it: with a ``title``, which it uses as the tool's (or
    the JSON schema's) name, one Bedrock accepts — the schema's own title if it is such a name,
    else the chain's name, cut to Bedrock's 64 characters (chain names use only characters a
    tool name may have)."""
    assert spec.output is not None and spec.name is not None
    schema = dict(spec.output.json_schema)
    title = schema.get("title")
    if not (isinstance(title, str) and _TOOL_NAME.match(title)):
        schema["title"] = spec.name[:TOOL_NAME_CHARS]
    return schema


def bind_models(spec: ChainSpec, models: "list[BaseChatModel]") -> "list[Runnable[Any, Any]]":
    """Each model (``spec.models[i]`` ↔ ``models[i]``) bound for structured output, followed
    by its :class:`JsonText`: what ``with_fallbacks`` chooses between."""
    from service.chains.structured_parsers import JsonText

    assert spec.output is not None
    schema = schema_for_model(spec)
    bound: list[Runnable[Any, Any]] = []
    for model_spec, model in zip(spec.models, models, strict=True):
        method = choose_method(model_spec, spec.output)
        if model_spec.provider == "bedrock":
            # ChatBedrock.with_structured_output has no method (function calling only); it
            # hands models it runs on Converse (Nova) to ChatBedrockConverse, method and all.
            uses_converse = bool(getattr(model, "beta_use_converse_api", False))
            extra: dict[str, Any] = {"method": method} if uses_converse else {}
            structured = model.with_structured_output(schema, **extra)
        else:
            structured = model.with_structured_output(schema, method=method)
        # with_structured_output returns `bound model | its parser`: keep the bound model.
        first: Runnable[Any, Any] = structured.first  # type: ignore[attr-defined]
        bound.append(first | JsonText(method=method))
    return bound


def conforming_parser(spec: ChainSpec) -> "Runnable[Any, Any]":
    """The one check after the model (and its fallbacks): see :class:`ConformingObject`."""
    from service.chains.structured_parsers import ConformingObject

    assert spec.output is not None
    return ConformingObject(json_schema=spec.output.json_schema)


def conforming_object(schema: dict[str, Any], text: str) -> Any:
    """The object ``text`` holds, if it conforms to ``schema``; else :class:`OutputNotConforming`
    naming the instance path and the schema path that failed."""
    from jsonschema import exceptions, validators

    if not text.strip():
        raise OutputNotConforming("the reply is empty: no JSON object")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position, never the text: it is the model's reply.
        if exc.pos >= len(text.rstrip()):
            raise OutputNotConforming(
                f"the reply's JSON is cut short at character {exc.pos} (is max_tokens too low?)"
            ) from None
        raise OutputNotConforming(
            f"the reply is not JSON ({exc.msg} at character {exc.pos})"
        ) from None
    except RecursionError:  # Python's JSON reader recurses: ~1000 levels of [[[…
        raise OutputNotConforming(_TOO_DEEP) from None
    cls = _with_our_patterns(validators.validator_for(schema))
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    try:  # a recursive $ref follows the reply as deep as it goes
        error = exceptions.best_match(validator.iter_errors(value))
    except RecursionError:
        raise OutputNotConforming(_TOO_DEEP) from None
    if error is not None:
        raise OutputNotConforming(describe(error))
    return value


_TOO_DEEP = "the reply's JSON is nested too deeply to read"


@functools.cache
def _with_our_patterns(cls: Any) -> Any:
    """``cls`` with ``pattern`` matched as input patterns are (:mod:`service.chains.patterns`:
    JavaScript's meanings, as a client's validator reads the published schema), not by
    Python's ``re``; ``output_schema`` refused at load what that dialect cannot compile."""
    from jsonschema import validators

    return validators.extend(cls, {"pattern": _pattern})


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _compiled(str(pattern)).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


@functools.cache
def _compiled(pattern: str) -> "re.Pattern[str]":
    return compile_pattern(pattern)


class GuardrailIntervened(Exception):
    """The model's guardrail blocked the request or the reply (stop reason
    ``guardrail_intervened``): the reply is the guardrail's message, not the object."""


def describe(error: Any) -> str:
    """``at $.emails[0]: a string of 9 characters, not in format 'email' (schema:
    #/properties/emails/items/format)``: where, what kind of value and which rule, from the
    validator keyword, the paths and the value's JSON type and length — never the value (the
    reply may hold user data), nor a property name the schema does not declare (shown as
    ``*``: it comes from the reply too)."""
    schema_path = list(error.absolute_schema_path)
    where = _where(list(error.absolute_path), schema_path)
    shown_schema_path = "#/" + "/".join(str(part) for part in schema_path)
    return f"at {where}: {_kind(error.instance)}, {_reason(error)} (schema: {shown_schema_path})"


def _where(path: list[Any], schema_path: list[Any]) -> str:
    parts: list[str] = []
    position = 0
    for segment in path:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
            continue
        declared = next(
            (
                i
                for i in range(max(position, 1), len(schema_path))
                if schema_path[i] == segment and schema_path[i - 1] == "properties"
            ),
            None,
        )
        if declared is None:  # a name the reply chose (additionalProperties, patternProperties)
            parts.append(".*")
        else:
            parts.append(f".{segment}")
            position = declared + 1
    return "$" + "".join(parts)


def _kind(value: Any) -> str:
    """The JSON type of ``value`` and its length: nothing of its content."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"a string of {_count(len(value), 'character')}"
    if isinstance(value, list):
        return f"an array of {_count(len(value), 'item')}"
    if isinstance(value, dict):
        return f"an object of {_count(len(value), 'property', 'properties')}"
    return "a value"


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else (many or one + 's')}"


_REASONS = {
    "format": "not in format {value!r}",
    "minLength": "shorter than minLength {value}",
    "maxLength": "longer than maxLength {value}",
    "minimum": "below minimum {value}",
    "maximum": "above maximum {value}",
    "exclusiveMinimum": "not above exclusiveMinimum {value}",
    "exclusiveMaximum": "not below exclusiveMaximum {value}",
    "multipleOf": "not a multiple of {value}",
    "minItems": "fewer than minItems {value}",
    "maxItems": "more than maxItems {value}",
    "uniqueItems": "with items that are not unique",
    "minProperties": "fewer than minProperties {value}",
    "maxProperties": "more than maxProperties {value}",
    "const": "not the schema's const",
    "not": "matching the schema under not",
    "contains": "without an item that contains asks for",
    "minContains": "with fewer items than minContains {value} that contains asks for",
    "maxContains": "with more items than maxContains {value} that contains asks for",
    "propertyNames": "with a property name that propertyNames refuses",
    "dependentRequired": "without a property dependentRequired asks for",
    "unevaluatedProperties": "with properties the schema does not allow (unevaluatedProperties)",
    "unevaluatedItems": "with items the schema does not allow (unevaluatedItems)",
}


def _reason(error: Any) -> str:
    """Which rule the value breaks, from the schema's side only (the keyword and its value)."""
    keyword, value, instance = error.validator, error.validator_value, error.instance
    if keyword is None:  # a `false` schema
        return "where the schema allows no value"
    if keyword == "type":
        types = value if isinstance(value, list) else [value]
        return "not of type " + " or ".join(repr(name) for name in types)
    if keyword == "enum":
        return f"not one of the {_count(len(value), 'value')} of its enum"
    if keyword == "pattern":
        return f"not matching pattern {_clip(str(value))!r}"
    if keyword == "required" and isinstance(instance, dict):
        missing = [name for name in value if name not in instance]
        names = ", ".join(repr(name) for name in missing)
        return f"without required {'property' if len(missing) == 1 else 'properties'} {names}"
    if keyword == "additionalProperties" and isinstance(instance, dict):
        extra = _undeclared(error.schema, instance)
        return (
            f"with {_count(extra, 'property', 'properties')} the schema does not declare "
            "(additionalProperties: false)"
        )
    if keyword in ("anyOf", "oneOf"):
        options = _count(len(value), "option")
        fits = "none" if keyword == "anyOf" else "none or more than one"
        return f"matching {fits} of the {options} of its {keyword}"
    template = _REASONS.get(keyword)
    if template is None:
        return f"failing {keyword}"
    return template.format(value=value if isinstance(value, int | float | str) else "…")


def _undeclared(schema: Any, instance: dict[str, Any]) -> int:
    schema = schema if isinstance(schema, dict) else {}
    declared = schema.get("properties") or {}
    patterns = [re.compile(p) for p in schema.get("patternProperties") or {}]
    return sum(
        1 for name in instance if name not in declared and not any(p.search(name) for p in patterns)
    )


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
