"""Values that conform to a JSON Schema, made from the user's words: the emulator's answer to a
structured-output request (a forced tool's input, or Converse's ``outputConfig`` JSON).

Deterministic, so chain tests can assert on them. Strings echo the user's last message (cut to
``maxLength``); a ``format`` takes a matching word from it when there is one (an email address,
a URL, a date), else a fixed value of that format. Understood: ``type`` (and lists of types),
``enum``, ``const``, ``properties`` (the required ones when ``required`` lists some, else all;
nothing extra), ``items``/``prefixItems`` with ``minItems``/``maxItems``/``uniqueItems``,
``minLength``/``maxLength``, ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``/
``multipleOf``, formats date, date-time, time, email, uri, uuid, hostname, ipv4, ipv6, local
``$ref``s (``#/$defs/…``), ``allOf``, ``anyOf``, ``oneOf``. Not ``pattern`` (no generator).

Bounded, since a schema could ask for anything: at most :data:`MAX_ITEMS` items in an array and
:data:`MAX_CHARS` characters in a string (a larger ``minItems``/``minLength`` gets a value that
does not conform); below depth 12 only required properties and ``minItems`` items are made. A
schema that still requires more than :data:`MAX_DEPTH` levels (a required recursive ``$ref``),
or more than :data:`MAX_VALUES` values or :data:`MAX_TOTAL_CHARS` characters in all, is refused
with a ValidationException (400) saying so.

:func:`broken` makes a value that does not conform (the ``invalid_output`` fault).
"""

import dataclasses
import json
import math
import re
import uuid
from typing import Any

from service.emulator.bedrock_errors import BedrockError
from service.emulator.replies import Reply, ToolCall, words

_DEPTH = 12  # a recursive $ref stops here: optional parts are left out below it
MAX_DEPTH = 64  # … and a schema that requires deeper values is refused
MAX_ITEMS = 100
MAX_CHARS = 10_000
MAX_VALUES = 10_000
MAX_TOTAL_CHARS = 1_000_000
_WORD = re.compile(r"\S+")
_FIXED_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}
_FOUND = {
    # An address's local part has at most 64 characters (RFC 5321), as validators check.
    "email": re.compile(r"^[\w.+-]{1,64}@[\w-]{1,63}(\.[\w-]{1,63})+$"),
    "uri": re.compile(r"^https?://\S+$"),
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
}


def example(schema: Any, text: str) -> Any:
    """A value ``schema`` accepts; strings are ``text`` (the user's last words)."""
    return _Maker(schema if isinstance(schema, dict) else {}, text or "emulator").make(schema)


def broken(schema: dict[str, Any], value: Any) -> Any:
    """``value`` changed so that ``schema`` refuses it: its first property gets a value of the
    wrong kind; else a required property goes missing, or an unexpected one appears."""
    from jsonschema import validators

    cls = validators.validator_for(schema)
    root = cls(schema)
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in value:
            wrongs: tuple[Any, ...] = (12345, "12345", None, [], {}, True)
            for wrong in wrongs:
                candidate = {**value, name: wrong}
                if name in properties and not root.is_valid(candidate):
                    return candidate
        required = [name for name in schema.get("required") or [] if name in value]
        if required:
            return {key: item for key, item in value.items() if key != required[0]}
        if schema.get("additionalProperties") is False:
            return {**value, "unexpected": 1}
    return []


def broken_reply(reply: Reply) -> Reply:
    """``reply`` with its JSON made non-conforming (the ``invalid_output`` fault); a reply with
    no structured output stays as it is."""
    if reply.schema is None:
        return reply
    if reply.tool is not None:
        value = broken(reply.schema, reply.tool.input)
        return dataclasses.replace(reply, tool=ToolCall(reply.tool.name, value or {"": 0}))
    try:
        value = json.loads(reply.text)
    except json.JSONDecodeError:  # already cut short (max_tokens): it does not conform
        return reply
    text = json.dumps(broken(reply.schema, value))
    return dataclasses.replace(reply, tokens=words(text))


class _Maker:
    def __init__(self, root: dict[str, Any], text: str) -> None:
        self.root = root
        self.text = text
        self.depth = 0
        self.values = 0
        self.chars = 0

    def make(self, schema: Any, seed: int = 0) -> Any:
        if not isinstance(schema, dict):
            return self.text if schema is not False else None
        self.depth += 1
        self.values += 1
        if self.depth > MAX_DEPTH:
            raise _too_big(f"values nested more than {MAX_DEPTH} levels deep (a recursive $ref?)")
        if self.values > MAX_VALUES:
            raise _too_big(f"more than {MAX_VALUES:,} values")
        try:
            return self._make(self._resolved(schema), seed)
        finally:
            self.depth -= 1

    def _resolved(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``$ref`` followed (local JSON pointers) and ``allOf`` merged into one schema."""
        seen = 0
        while isinstance(schema.get("$ref"), str) and seen < _DEPTH:
            target = self._pointer(schema["$ref"])
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        for part in schema.get("allOf") or []:
            part = self._resolved_part(part) if isinstance(part, dict) else {}
            merged = {**part, **{k: v for k, v in schema.items() if k != "allOf"}}
            merged["properties"] = {**part.get("properties", {}), **schema.get("properties", {})}
            merged["required"] = [*part.get("required", []), *schema.get("required", [])]
            schema = {k: v for k, v in merged.items() if v or k not in ("properties", "required")}
        return schema

    def _resolved_part(self, part: dict[str, Any]) -> dict[str, Any]:
        """An ``allOf`` part resolved: one level deeper (a part may refer to its own schema)."""
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                return {}
            return self._resolved(part)
        finally:
            self.depth -= 1

    def _pointer(self, ref: str) -> dict[str, Any]:
        node: Any = self.root
        for part in ref.removeprefix("#").strip("/").split("/"):
            if not part:
                continue
            key = part.replace("~1", "/").replace("~0", "~")
            node = node.get(key, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}

    def _make(self, schema: dict[str, Any], seed: int) -> Any:
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][seed % len(schema["enum"])]
        for key in ("oneOf", "anyOf"):
            options = [o for o in schema.get(key) or [] if isinstance(o, dict)]
            if options:
                rest = {k: v for k, v in schema.items() if k != key}
                return self.make({**rest, **options[0]}, seed)
        kind = _kind(schema)
        if kind == "object":
            return self._object(schema)
        if kind == "array":
            return self._array(schema, seed)
        if kind in ("integer", "number"):
            return _number(schema, kind, seed)
        if kind == "boolean":
            return seed % 2 == 1
        if kind == "null":
            return None
        return self._string(schema, seed)

    def _object(self, schema: dict[str, Any]) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = [name for name in schema.get("required") or [] if isinstance(name, str)]
        # The required properties when the schema lists some (the optional ones left out, as
        # a model may), else every property.
        names = required if "required" in schema else list(properties)
        if self.depth > _DEPTH:  # a recursive schema: only what must be there
            names = required
        return {name: self.make(properties.get(name, {})) for name in names}

    def _array(self, schema: dict[str, Any], seed: int) -> list[Any]:
        prefix = [item for item in schema.get("prefixItems") or [] if isinstance(item, dict)]
        low = int(schema.get("minItems", 0))
        count = max(low, len(prefix), 0 if self.depth > _DEPTH else 1)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        count = min(count, MAX_ITEMS)
        items = schema.get("items", {})
        return [self.make(prefix[i] if i < len(prefix) else items, seed + i) for i in range(count)]

    def _string(self, schema: dict[str, Any], seed: int) -> str:
        form = schema.get("format")
        words = _WORD.findall(self.text)
        found = _FOUND.get(str(form))
        match = next(
            (w.strip(",;.()<>") for w in words if found and found.match(w.strip(",;.()<>"))), None
        )
        if match is not None:
            value = match
        elif form == "email":
            name = re.sub(r"[^a-z0-9]", "", (words[0] if words else "").lower())[:32] or "someone"
            value = f"{name}@example.com"
        elif form in ("uri", "url", "iri"):
            slug = re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-")[:40] or "emulator"
            value = f"https://example.com/{slug}"
        elif form == "uuid":
            value = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.text}#{seed}"))
        elif form in _FIXED_FORMATS:
            value = _FIXED_FORMATS[form]
        else:
            value = self.text if not seed else f"{self.text} {seed + 1}"
            value = value[: int(schema["maxLength"])] if "maxLength" in schema else value
        if seed and form:  # items of an array differ (uniqueItems)
            value = _vary(value, str(form), seed)
        least = min(int(schema.get("minLength", 0)), MAX_CHARS)
        value = str(value) + "." * (least - len(value)) if len(value) < least else str(value)
        self.chars += len(value)
        if self.chars > MAX_TOTAL_CHARS:
            raise _too_big(f"more than {MAX_TOTAL_CHARS:,} characters")
        return value


def _too_big(what: str) -> BedrockError:
    return BedrockError(
        400,
        "ValidationException",
        f"The emulator cannot make a value for this schema: it requires {what}.",
    )


def _vary(value: str, form: str, seed: int) -> str:
    """The ``seed``-th variant of a formatted string, of the same format."""
    if form == "email":
        local, _, domain = value.partition("@")
        return f"{local}+{seed}@{domain}"
    if form in ("uri", "url", "iri"):
        return f"{value.rstrip('/')}/{seed}"
    if form == "date":
        return f"{value[:8]}{(int(value[8:10]) + seed - 1) % 28 + 1:02d}"
    if form == "date-time":
        return f"{value[:8]}{(int(value[8:10]) + seed - 1) % 28 + 1:02d}{value[10:]}"
    if form == "ipv4":
        return f"192.0.2.{seed % 254 + 1}"
    if form == "hostname":
        return f"h{seed}.{value}"
    return value


def _kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _number(schema: dict[str, Any], kind: str, seed: int) -> int | float:
    """The smallest value the bounds allow (``seed`` steps above it, if that fits too), on
    ``multipleOf``; 0 when it is allowed and nothing says more."""
    step = schema.get("multipleOf") or 1
    low, above = schema.get("minimum"), schema.get("exclusiveMinimum")
    high, below = schema.get("maximum"), schema.get("exclusiveMaximum")

    def fits(value: float) -> bool:
        return (
            (low is None or value >= low)
            and (above is None or value > above)
            and (high is None or value <= high)
            and (below is None or value < below)
        )

    bounds = [b for b in (low, above) if b is not None]
    tops = [b for b in (high, below) if b is not None]
    start = max(bounds) if bounds else (min(0, *tops) if tops else 0)
    k = math.ceil(start / step)
    while not fits(round(k * step, 10)) and k < math.ceil(start / step) + 3:
        k += 1  # past an exclusive lower bound
    if not fits(round(k * step, 10)) and tops:  # only an upper bound: go down from it
        k = math.floor(min(tops) / step)
        while not fits(round(k * step, 10)) and k > math.floor(min(tops) / step) - 3:
            k -= 1
    if fits(round((k + seed) * step, 10)):
        k += seed
    value = round(k * step, 10)
    if kind == "integer" or (isinstance(step, int) and float(value).is_integer()):
        return int(value)
    return float(value)
