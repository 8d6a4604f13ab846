"""A structured chain's output in the OpenAPI document: ``invoke``'s ``output`` is its schema,
``batch``'s an array of it (or null), instead of a string; its SSE ``data`` events objects.

The chain's schema becomes a component of its own, ``<chain>_Output`` (its ``$defs`` as
``<chain>_Output_<name>``), with its local ``$ref``s rewritten to point there, so that refs
inside it still resolve in the document.
"""

import copy
from typing import Any

from pydantic import BaseModel

from service.chains.catalog import Chain
from service.protocols.openapi import REF, Events


def with_output(chain: Chain, body: type[BaseModel], many: bool = False) -> Any:
    """``body`` (a response model with an ``output`` string), or for a structured chain its
    JSON Schema with ``output`` the chain's object (``many``: a list of them or null)."""
    if chain.spec.output is None:
        return body
    name = f"{chain.name}_Output"
    schema = body.model_json_schema(ref_template=REF)
    defs = schema.pop("$defs", {})
    own = _rewritten(copy.deepcopy(chain.spec.output.json_schema), name)
    for key in ("$defs", "definitions"):
        for part, definition in (own.pop(key, None) or {}).items():
            defs[f"{name}_{part}"] = definition
    defs[name] = own
    reference = {"$ref": REF.format(model=name)}
    schema["properties"]["output"] = (
        {"type": "array", "items": {"anyOf": [reference, {"type": "null"}]}} if many else reference
    )
    schema["title"] = f"{chain.name}_{body.__name__}"
    return {**schema, "$defs": defs}


def _rewritten(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith("#"):
                value[key] = _target(item, name)
            else:
                _rewritten(item, name)
    elif isinstance(value, list):
        for item in value:
            _rewritten(item, name)
    return value


def _target(ref: str, name: str) -> str:
    for key in ("$defs", "definitions"):
        prefix = f"#/{key}/"
        if ref.startswith(prefix):
            part, _, rest = ref.removeprefix(prefix).partition("/")
            return REF.format(model=f"{name}_{part}") + (f"/{rest}" if rest else "")
    return REF.format(model=name) + ref[1:]


def stream_events(chain: Chain, events: Events) -> Events:
    """``events``, or for a structured chain the same with each ``data`` an object: the
    object so far (a partial object need not have its required properties yet)."""
    if chain.spec.output is None:
        return events
    partial = {"type": "object", "description": "The object so far, as it grows."}
    return Events({**events.events, "data": partial}, events.terminator)
