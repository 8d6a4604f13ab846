"""A chain file's ``output`` section, at load time: the schema read from its ``$ref`` file, checked
as a JSON Schema, and what langchain-aws can do with it on each of the chain's models.

``schema: {$ref: contact.schema.json}`` names a JSON file beside the chain file, read with the
chain files' own safety rules (:mod:`service.chains.reading`: a regular UTF-8 file of bounded
size; here it must also resolve inside the chain's folder). Only ``.json``: a ``.yaml`` file in
the folder would be loaded as a chain. The file is read when its chain file loads — a changed
schema file is seen when the chain file is next reloaded (touch it) or the server restarts.

A schema is bounded — at most :data:`MAX_DEPTH` levels of nested objects and arrays and
:data:`MAX_VALUES` values — because it is checked, sent with every request and walked by code
that recurses (jsonschema's own checks fail past ~150 levels). Its ``pattern``s must be
regular expressions of the dialect input patterns use (:mod:`service.chains.patterns`): the
replies are matched with JavaScript's meanings, as a client's validator would.

What langchain-aws can do with the schema on each model is asked of a probe: the chat model
``models.build_model`` makes for the chain's model spec (the same settings: reasoning effort,
thinking budget …), on a client that is never called.

Every problem is a :class:`Problem` at a location in the chain file (the ``$ref`` line, the
``schema`` key), with the fix; the loader pins it to file:line.
"""

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from service.chains.compat import Problem, bedrock_uses_converse
from service.chains.model_spec import ModelSpec
from service.chains.models import DEFAULT_REGION, BedrockClients, build_model
from service.chains.patterns import compile_pattern
from service.chains.reading import DEFAULT_MAX_BYTES, UnreadableFile, read_chain_file
from service.chains.spec import ChainSpec
from service.chains.structured import choose_method, schema_for_model

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

_SCHEMA = ("output", "schema")
_REF = ("output", "schema", "$ref")
MAX_DEPTH = 64
"""Levels of nested JSON objects and arrays in a schema (a property's schema is two: the
``properties`` object, then its own)."""
MAX_VALUES = 10_000
"""Values in a schema (every object, array, string, number …)."""
# Subtrees that are data, not schemas: a "pattern" key in them is not a pattern.
_DATA_KEYWORDS = ("const", "enum", "default", "examples")


def resolve(spec: ChainSpec, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Problem]:
    """Replace a file ``$ref`` by the file's schema, then check the schema and the models;
    the problems found (none: ``spec.output.json_schema`` is the schema to use)."""
    if spec.output is None:
        return []
    schema = spec.output.json_schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        if len(schema) > 1:
            others = ", ".join(sorted(key for key in schema if key != "$ref"))
            return [Problem(_REF, f"a schema file's $ref stands alone; move {others} into it")]
        loaded = _read_schema_file(path.parent, ref, max_bytes)
        if isinstance(loaded, Problem):
            return [loaded]
        spec.output.json_schema = schema = loaded
    problems = check_schema(schema)
    if problems:
        return problems
    return check_models(spec)


def _read_schema_file(folder: Path, ref: str, max_bytes: int) -> dict[str, Any] | Problem:
    if not ref.endswith(".json"):
        return Problem(
            _REF,
            f"$ref {ref!r}: a schema file is a .json file beside the chain file (a .yaml one "
            "would be loaded as a chain); rename it to end in .json",
        )
    candidate = folder / ref
    real = Path(os.path.realpath(candidate))
    if Path(ref).is_absolute() or not real.is_relative_to(os.path.realpath(folder)):
        return Problem(
            _REF,
            f"$ref {ref!r} is outside the chains folder; put the schema file in the folder, "
            "beside the chain file",
        )
    try:
        text = read_chain_file(candidate, max_bytes)
    except UnreadableFile as exc:
        return Problem(_REF, f"$ref {ref!r}: {exc.message}")
    try:
        loaded = json.loads(text)
    except RecursionError:  # Python's JSON reader recurses: ~1000 levels of {"items": …
        return Problem(_REF, f"$ref {ref!r}: {_too_deep()}")
    except json.JSONDecodeError as exc:
        return Problem(
            _REF,
            f"$ref {ref!r} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
            "fix the file (a JSON Schema, written as JSON)",
        )
    if not isinstance(loaded, dict):
        return Problem(_REF, f"$ref {ref!r} holds {_kind(loaded)}, not a JSON Schema object")
    return loaded


def check_schema(schema: dict[str, Any]) -> list[Problem]:
    """A JSON Schema (by its metaschema) for an object, of bounded size, with only local
    ``$ref``s and patterns of our dialect."""
    from jsonschema import exceptions, validators

    too_big = _size_problem(schema)  # first: what follows recurses
    if too_big:
        return [Problem(_SCHEMA, too_big)]
    try:
        json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError):
        return [
            Problem(
                _SCHEMA,
                "the schema holds a value JSON cannot (a YAML date, .nan or .inf); quote it",
            )
        ]
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        where = "#/" + "/".join(str(part) for part in exc.path)
        return [
            Problem(
                _SCHEMA,
                f"not a valid JSON Schema: at {where}: {_clip(exc.message)}; fix it "
                "(json-schema.org/understanding-json-schema)",
            )
        ]
    if schema.get("type") != "object":
        return [
            Problem(
                _SCHEMA,
                "the output schema's top level must be type: object (models return an object, "
                'e.g. {"type": "object", "properties": {...}}); wrap other values in a property',
            )
        ]
    remote = sorted(set(_remote_refs(schema)))
    if remote:
        return [
            Problem(
                _SCHEMA,
                f"$ref {remote[0]!r} points outside the schema; only local references "
                '("#/$defs/…") work inside it: copy the definition into $defs',
            )
        ]
    return [Problem(_SCHEMA, message) for message in _pattern_problems(schema)]


def _size_problem(schema: Any) -> str | None:
    """Too deep or too big (see :data:`MAX_DEPTH`), found without recursing."""
    stack: list[tuple[Any, int]] = [(schema, 1)]
    values = 0
    while stack:
        value, depth = stack.pop()
        values += 1
        if values > MAX_VALUES:
            return (
                f"the schema has more than {MAX_VALUES:,} values (objects, arrays, strings, "
                "numbers …); make it smaller (each request sends it)"
            )
        if depth > MAX_DEPTH:
            return _too_deep()
        items = (
            value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        )
        stack.extend((item, depth + 1) for item in items)
    return None


def _too_deep() -> str:
    return (
        f"the schema is nested more than {MAX_DEPTH} levels deep (objects and arrays); flatten "
        'it: name deep parts in $defs and point to them with {"$ref": "#/$defs/name"}'
    )


def _pattern_problems(schema: Any, where: str = "#") -> list[str]:
    """Each ``pattern`` (and ``patternProperties`` name) that is not a regular expression of
    our dialect (:func:`service.chains.patterns.compile_pattern`, as input patterns)."""
    problems: list[str] = []
    if isinstance(schema, dict):
        patterns = [("pattern", schema.get("pattern"))]
        names = schema.get("patternProperties")
        patterns += (
            [("patternProperties", name) for name in names or {}] if isinstance(names, dict) else []
        )
        for keyword, pattern in patterns:
            if not isinstance(pattern, str):
                continue
            try:
                compile_pattern(pattern)
            except ValueError as exc:
                problems.append(f"{keyword} {pattern!r} at {where}: {exc}")
        for key, value in schema.items():
            if key not in _DATA_KEYWORDS:
                problems += _pattern_problems(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            problems += _pattern_problems(value, f"{where}/{index}")
    return problems


def _remote_refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [str(ref) for key, ref in value.items() if key == "$ref" and not _local(ref)]
        return found + [ref for item in value.values() for ref in _remote_refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _remote_refs(item)]
    return []


def _local(ref: Any) -> bool:
    return isinstance(ref, str) and ref.startswith("#")


def check_models(spec: ChainSpec) -> list[Problem]:
    """What langchain-aws cannot do with this output on each model, asked of langchain-aws."""
    assert spec.output is not None
    problems: list[Problem] = []
    for index, model in enumerate(spec.models):
        where: tuple[Any, ...] = ("model",) if index == 0 else ("model", "fallbacks", index - 1)
        method = choose_method(model, spec.output)
        name = f"model {model.id!r}"
        at_method = ("output", "method") if spec.output.method else ("output",)
        if model.provider == "bedrock" and not bedrock_uses_converse(model):
            if method == "json_schema":
                problems.append(Problem(at_method, _invoke_no_json_schema(name)))
                continue
            forced = invoke_forces_tool(model, schema_for_model(spec))
            if forced is None:
                problems.append(Problem((*where, "provider"), _invoke_cannot(name)))
            elif not forced:
                at = (*where, "reasoning") if model.reasoning else at_method
                problems.append(Problem(at, _cannot_force_tool(name, ("auto",), thinks=True)))
        elif method == "function_calling":
            choices = tool_choices(model)
            if not {"tool", "any"} & set(choices):
                # Forcing worked without the chain's reasoning: that is what stops it.
                thinks = model.reasoning is not None and bool(
                    {"tool", "any"}
                    & set(tool_choices(model.model_copy(update={"reasoning": None})))
                )
                at = (*where, "reasoning") if thinks else at_method
                problems.append(Problem(at, _cannot_force_tool(name, choices, thinks)))
    return problems


class _ProbeClients(BedrockClients):
    """Stands in for the boto3 clients in a probe: langchain-aws builds its request settings
    when the model is made, and the probe never calls Bedrock."""

    def __init__(self) -> None:
        self._client = SimpleNamespace(meta=SimpleNamespace(region_name=DEFAULT_REGION))

    def get(self, region: str | None, service: str = "bedrock-runtime") -> Any:
        return self._client


def probe(model: ModelSpec) -> "BaseChatModel":
    """The chat model ``models.build_model`` makes for ``model`` — every setting the real one
    gets (reasoning effort, a thinking budget in ``model_kwargs``, guardrails …) — on a client
    that is never called: what langchain-aws will do with the real model is asked of it."""
    return build_model(model, _ProbeClients())


def invoke_forces_tool(model: ModelSpec, schema: dict[str, Any]) -> bool | None:
    """Whether ChatBedrock (InvokeModel) forces the output tool for this model: None when it
    has no structured output for it (it raises ``ValueError``), False when it binds the tool
    without forcing it (Claude with a thinking budget: the reply may be text)."""
    try:
        structured = probe(model).with_structured_output(schema)
    except ValueError:
        return None
    bound = structured.first  # type: ignore[attr-defined]
    return bool(getattr(bound, "kwargs", {}).get("tool_choice"))


def tool_choices(model: ModelSpec) -> tuple[str, ...]:
    """The ``tool_choice`` values ChatBedrockConverse sends for this model: without ``tool`` or
    ``any``, it cannot force the output tool, and the reply may be text (Claude thinking, from
    ``reasoning`` or the request fields, is one reason). ``provider: bedrock`` models that run
    on Converse are asked through ChatBedrock's own Converse twin."""
    chat_model: Any = probe(model)
    if model.provider == "bedrock":
        chat_model = chat_model._as_converse
    return tuple(chat_model.supports_tool_choice_values or ())


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a value")


def _clip(text: str) -> str:
    return text if len(text) <= 200 else text[:199] + "…"


def _invoke_no_json_schema(name: str) -> str:
    return (
        f"langchain-aws's ChatBedrock (provider: bedrock, InvokeModel) has no json_schema "
        f"structured output for {name}; use method: function_calling, or provider: "
        "bedrock-converse"
    )


def _invoke_cannot(name: str) -> str:
    return (
        f"langchain-aws's ChatBedrock (provider: bedrock, InvokeModel) has no structured output "
        f"for {name} (it has it for Anthropic Claude only); use provider: bedrock-converse"
    )


def _cannot_force_tool(name: str, choices: tuple[str, ...], thinks: bool = False) -> str:
    takes = f"only tool_choice {', '.join(choices)}" if choices else "no tool_choice"
    if thinks:  # Claude is never forced to call a tool while it thinks
        return (
            f"langchain-aws cannot force {name} to call the output tool while it reasons "
            f"({takes}), so its reply could be text instead of the object; remove reasoning "
            "(or the thinking request field), or set output.method: json_schema if Bedrock "
            "has structured outputs for this model"
        )
    return (
        f"langchain-aws cannot force {name} to call the output tool ({takes}), so its reply "
        "could be text instead of the object; set output.method: json_schema if Bedrock has "
        "structured outputs for this model, or use a model that can be made to call a tool"
    )
