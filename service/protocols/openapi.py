"""The OpenAPI document (``/docs``), with each chain's real input schema.

The routes are generic (``/chains/{name}/invoke``); the document lists, for every loaded chain,
its concrete paths (``/chains/summarize/invoke`` …) with that chain's request schema. They are
the same routes, described per chain — nothing is registered only for the docs.
"""

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.chains.catalog import Catalog, Chain

_PER_CHAIN = ("invoke", "batch", "stream", "render")


def build(app: FastAPI, catalog: Catalog) -> dict[str, Any]:
    cached = getattr(app.state, "openapi_cache", None)
    if cached is not None and cached[0] == catalog.version:
        return dict(cached[1])
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    paths = document.setdefault("paths", {})
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    generic = {action: paths.pop(f"/chains/{{name}}/{action}", {}) for action in _PER_CHAIN}
    for chain in catalog:
        for action in _PER_CHAIN:
            paths[f"/chains/{chain.name}/{action}"] = _describe(
                chain, action, generic[action], schemas
            )
    app.state.openapi_cache = (catalog.version, document)
    return document


def _describe(
    chain: Chain, action: str, generic: dict[str, Any], schemas: dict[str, Any]
) -> dict[str, Any]:
    model = chain.inputs.batch_model if action == "batch" else chain.inputs.request_model
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    path = copy.deepcopy(generic)
    path.pop("get", None) if action != "stream" else None
    for method, operation in path.items():
        operation["operationId"] = f"{chain.name}_{action}_{method}"
        operation["tags"] = [chain.name]
        operation["description"] = chain.spec.description
        operation["parameters"] = [
            p for p in operation.get("parameters", []) if p.get("name") != "name"
        ]
        if method == "post":
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                    }
                },
            }
        else:
            operation["parameters"] += [
                {
                    "name": name,
                    "in": "query",
                    "required": item.is_required,
                    "description": item.description,
                    "schema": {"type": item.type if item.type != "messages" else "string"},
                }
                for name, item in chain.spec.inputs.items()
            ]
    return path
