"""The OpenAPI document (``/openapi.json``, shown at ``/docs``): what each route really takes
and returns, and every way it can fail.

The routes are generic (``/chains/{name}/invoke``); the document lists, for every loaded chain,
its concrete paths (``/chains/summarize/invoke`` …) with that chain's request schema. They are
the same routes, described per chain — nothing is registered only for the docs.

FastAPI sees a route's path, method and summary, not what it reads, streams or raises (the
routes read their own bodies and fail through :class:`~service.runs.errors.ApiError`), so each
route is declared once, in :data:`service.protocols.openapi_routes.ROUTES`, keyed by method and
path template: a :class:`Described` — its success content (media types, schemas, a stream's
events), its request body or query parameters, and the statuses it fails with. This module
turns those into the document: every failure with the body the client really gets
(:class:`ErrorBody`, or another protocol's) and its headers; with API keys configured, the
security schemes, and a 401, on every route that needs a key. A route with no declaration
keeps FastAPI's bare description, and tests/test_openapi.py names it.
"""

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeGuard, cast

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from service import auth
from service.chains.catalog import Catalog, Chain
from service.settings import Settings

JSON = "application/json"
REF = "#/components/schemas/{model}"
_PER_CHAIN = "/chains/{name}/"  # paths under it are listed once per chain


class FieldError(BaseModel):
    field: str = Field(description="Where: `input.text`, `body`, `content-type` …")
    message: str = Field(description="What is wrong, and how to fix it.")


class ErrorBody(BaseModel):
    """Every error response's body (service/runs/errors.py), except under ``/v1/``."""

    status_code: int
    code: str = Field(description="Stable, for programs: `invalid_input`, `throttled` …")
    message: str
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        None, description="Each bad field, for 4xx input; absent otherwise."
    )
    request_id: str


@dataclass(frozen=True)
class Context:
    """What a schema made per document is made from: the server's chains and settings, and
    on a per-chain path its chain."""

    chains: Catalog
    settings: Settings
    chain_or_none: Chain | None = None

    @property
    def chain(self) -> Chain:
        assert self.chain_or_none is not None, "only a per-chain path has a chain"
        return self.chain_or_none


@dataclass(frozen=True)
class Events:
    """A ``text/event-stream``: each event's name → the schema of its data, which is JSON
    (``None``: empty). Events sent without a name are named ``message``, as browsers read
    them; ``terminator`` is a last event's data that is not JSON (``[DONE]``)."""

    events: "Mapping[str, Schema | None]"
    terminator: str | None = None


# Where a schema comes from: a pydantic model, JSON Schema, a stream, or one made per
# document (from the chain, the chains, the settings).
Schema: TypeAlias = (
    type[BaseModel]
    | dict[str, Any]
    | Events
    | Callable[[Context], type[BaseModel] | dict[str, Any] | Events]
)


@dataclass(frozen=True)
class Described:
    """What one route takes and returns, beyond what FastAPI sees."""

    ok: Mapping[str, Schema]
    """The success response: media type → its schema."""
    description: str = "OK"
    """What the success response holds (a stream: its events)."""
    errors: tuple[int, ...] = ()
    """The statuses it can fail with (401 is added when keys are configured)."""
    body: Schema | None = None
    """The JSON request body."""
    example: Callable[[Context], Any] | None = None
    """A request body that works, for "Try it out" (``None``: none for this chain)."""
    parameters: Callable[[Context], list[dict[str, Any]]] | None = None
    """Path and query parameters; each replaces FastAPI's of the same name."""
    error_body: type[BaseModel] = ErrorBody
    headers: Mapping[str, str] = field(default_factory=dict)
    """Response headers of the success: name → description."""
    applies: Callable[[Chain], bool] | None = None
    """A per-chain path: the chains that have it (default: all)."""
    signed: bool = False
    """With keys configured, a signed URL (``POST …/stream-url``) may stand in for a key."""


def json(schema: Schema) -> dict[str, Schema]:
    return {JSON: schema}


# What can go wrong, by status; a route lists the ones it can return.
BODY = (413, 415, 422)  # reading and validating a JSON body (running.read_body, inputs)
MODEL = (429, 502, 503, 504)  # running the model (errors.classify; 503 also at the cap)
_WHY = {
    400: "A valid request this server cannot honour: a parameter or feature a chain does not "
    "have, or outside the chain's limits; `param` names it.",
    401: "Missing or invalid API key: send it as `x-api-key: KEY` or `Authorization: Bearer KEY`"
    " (a signed URL: expired).",
    403: "A signed URL that was altered, or signed with a key the server no longer has.",
    404: "No chain (model) of that name: the message lists them.",
    413: "The request body is larger than `CHAINSERVE_MAX_BODY_BYTES`.",
    415: "The body is not sent as JSON: use `Content-Type: application/json`.",
    422: "Invalid input: each bad field is named, with how to fix it; also input too long for "
    "the model's context window.",
    429: "Bedrock is throttling the model; retry after `Retry-After` seconds.",
    431: "The request head is over `CHAINSERVE_MAX_HEADER_BYTES`: long input goes in a POST body.",
    502: "Bedrock denied access, does not know the model, failed, or sent a corrupt stream.",
    503: "The model is not ready, or the server runs `CHAINSERVE_MAX_CONCURRENCY` runs already; "
    "retry after `Retry-After` seconds.",
    504: "The model did not answer in time.",
}
_ERROR_HEADERS = {
    401: {"WWW-Authenticate": '`Bearer realm="chainserve"`'},
    429: {"Retry-After": "Seconds to wait before retrying."},
    503: {"Retry-After": "Seconds to wait before retrying."},
}
_KEYS: list[dict[str, list[str]]] = [{"apiKey": []}, {"bearer": []}]
_SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key as the token."},
    "signedUrl": {
        "type": "apiKey",
        "in": "query",
        "name": "chainserve-signature",
        "description": "A signed URL from `POST /chains/{name}/stream-url` (or `chainserve "
        "sign`): its `chainserve-signature` and `chainserve-expires` parameters stand in for a "
        "key on `GET /chains/{name}/stream`, for a browser's EventSource.",
    },
}


def build(app: FastAPI, catalog: Catalog) -> dict[str, Any]:
    from service.protocols.openapi_routes import ROUTES  # the declarations use this module

    cached = getattr(app.state, "openapi_cache", None)
    if cached is not None and cached[0] == catalog.version:
        return dict(cached[1])
    generated = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = generated.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422: never ours
        components.pop(unused, None)
    keyed = any(getattr(m, "cls", None) is auth.ApiKeyAuth for m in app.user_middleware)
    document = _Document(components, keyed, catalog, app.state.settings)
    paths: dict[str, dict[str, Any]] = {}
    for path, item in generated.get("paths", {}).items():
        for method, operation in item.items():
            described = ROUTES.get((method.upper(), path))
            if not path.startswith(_PER_CHAIN):
                paths.setdefault(path, {})[method] = document.operation(operation, described, path)
                continue
            action = path.removeprefix(_PER_CHAIN)
            for chain in catalog:
                if described is not None and described.applies and not described.applies(chain):
                    continue
                concrete = paths.setdefault(f"/chains/{chain.name}/{action}", {})
                concrete[method] = document.operation(operation, described, path, chain)
                concrete[method]["operationId"] = f"{chain.name}_{action}_{method}"
    generated["paths"] = paths
    generated["components"] = document.components()
    app.state.openapi_cache = (catalog.version, generated)
    return generated


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path template) of the app's documented routes, as FastAPI sees them."""
    generated = get_openapi(title=app.title, version=app.version, routes=app.routes)
    return {(method.upper(), path) for path, item in generated["paths"].items() for method in item}


class _Document:
    """The components gathered while the operations are described."""

    def __init__(
        self, schemas: dict[str, Any], keyed: bool, chains: Catalog, settings: Settings
    ) -> None:
        self.schemas = schemas
        self.keyed = keyed
        self.chains = chains
        self.settings = settings
        self.responses: dict[str, Any] = {}
        self.signed = False

    def components(self) -> dict[str, Any]:
        _fix_validators(self.schemas)
        found: dict[str, Any] = {
            "schemas": dict(sorted(self.schemas.items())),
            "responses": dict(sorted(self.responses.items())),
            "headers": {
                "RequestId": {
                    "description": "The request's id (yours, if you sent one): in logs and "
                    "error bodies.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        }
        if self.keyed:
            schemes = {"apiKey", "bearer", *(["signedUrl"] if self.signed else [])}
            found["securitySchemes"] = {
                name: scheme for name, scheme in _SECURITY_SCHEMES.items() if name in schemes
            }
        return found

    def operation(
        self,
        generated: dict[str, Any],
        described: Described | None,
        path: str,
        chain: Chain | None = None,
    ) -> dict[str, Any]:
        operation = copy.deepcopy(generated)
        context = Context(self.chains, self.settings, chain)
        if chain is not None:
            operation["tags"] = [chain.name]
            operation["description"] = chain.spec.description
            operation["parameters"] = [
                p for p in operation.get("parameters", []) if p.get("name") != "name"
            ]
            if not operation["parameters"]:
                del operation["parameters"]
        needs_key = self.keyed and path not in auth.EXEMPT_PATHS
        signed = needs_key and described is not None and described.signed
        if needs_key:
            operation["security"] = [*_KEYS, *([{"signedUrl": []}] if signed else [])]
            self.signed = self.signed or signed
        if described is None:  # FastAPI's own description, without its 422 body
            operation.get("responses", {}).pop("422", None)
            return operation
        if described.body is not None:
            media: dict[str, Any] = {"schema": self.schema(described.body, context)}
            # Examples come from chain files' tests, which may hold real samples: a document
            # anyone may read (keys configured, /openapi.json needs none) shows none.
            example = described.example(context) if described.example and not self.keyed else None
            if example is not None:
                media["example"] = example
            operation["requestBody"] = {"required": True, "content": {JSON: media}}
        if described.parameters is not None:
            parameters = [self._hoist(p) for p in described.parameters(context)]
            names = {(p["name"], p["in"]) for p in parameters}
            kept = [p for p in operation.get("parameters", []) if (p["name"], p["in"]) not in names]
            operation["parameters"] = [*kept, *parameters]
        ok = {
            "description": described.description,
            "headers": self._headers(described.headers),
            "content": {
                media_type: {"schema": self.schema(schema, context)}
                for media_type, schema in described.ok.items()
            },
        }
        responses = {"200": ok}
        statuses = {*described.errors, *([401] if needs_key else []), *([403] if signed else [])}
        for status in sorted(statuses):
            responses[str(status)] = self._error(status, described.error_body)
        operation["responses"] = responses
        return operation

    def schema(self, source: Schema, context: Context) -> dict[str, Any]:
        """A reference to ``source``'s schema, its definitions added to the components."""
        if isinstance(source, dict):  # its definitions, if any, go to the components too
            source = dict(source)
            self.schemas.update(source.pop("$defs", {}))
            return source
        if isinstance(source, Events):
            return self._events(source, context)
        if not _is_model(source):
            return self.schema(cast(Any, source)(context), context)
        schema = source.model_json_schema(ref_template=REF)
        self.schemas.update(schema.pop("$defs", {}))
        self.schemas[source.__name__] = schema
        return {"$ref": REF.format(model=source.__name__)}

    def _events(self, stream: Events, context: Context) -> dict[str, Any]:
        """One event's schema (Open API 3.1 reads a stream's ``schema`` as each event's), as
        the client parses it: ``{"event": name, "data": text}``."""
        events = []
        for name, data in stream.events.items():
            text: dict[str, Any] = {"type": "string", "const": ""}
            if data is not None:
                text = {
                    "type": "string",
                    "contentMediaType": JSON,
                    "contentSchema": self.schema(data, context),
                }
                if stream.terminator is not None:
                    text = {"anyOf": [text, {"const": stream.terminator}]}
            events.append(
                {"properties": {"event": {"const": name}, "data": text}, "required": ["event"]}
            )
        return {
            "type": "object",
            "required": ["event", "data"],
            "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
            "oneOf": events,
        }

    def _hoist(self, parameter: dict[str, Any]) -> dict[str, Any]:
        """A parameter's schema definitions go to the components, as a body's do."""
        holder = parameter["content"][JSON] if "content" in parameter else parameter
        self.schemas.update(holder["schema"].pop("$defs", {}))
        return parameter

    def _error(self, status: int, body: type[BaseModel]) -> dict[str, Any]:
        """A reference to the error response ``status`` with ``body``, shared by the routes."""
        name = f"{body.__name__}{status}"
        if name not in self.responses:
            self.responses[name] = {
                "description": _WHY[status],
                "headers": self._headers(_ERROR_HEADERS.get(status, {})),
                "content": {
                    JSON: {"schema": self.schema(body, Context(self.chains, self.settings))}
                },
            }
        return {"$ref": f"#/components/responses/{name}"}

    def _headers(self, described: Mapping[str, str]) -> dict[str, Any]:
        """Every response's ``X-Request-Id``, and ``described`` (name → description)."""
        headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}}
        for name, description in described.items():
            headers[name] = {
                "description": description,
                "required": True,
                "schema": {"type": "string"},
            }
        return headers


def _is_model(source: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(source, type) and issubclass(source, BaseModel)


def _fix_validators(found: dict[str, Any]) -> None:
    """What pydantic's schemas leave out of checks made in validators (service/chains/inputs.py),
    so that a body valid by the document is accepted."""
    message = found.get("ChatMessage")
    if message is not None:  # a message needs a role, spelled "role" or "type"
        message["anyOf"] = [
            {"required": [key], "properties": {key: {"type": "string"}}} for key in ("role", "type")
        ]
    config = found.get("RunConfig", {}).get("properties", {}).get("configurable")
    if config is not None:  # chains have no configurable fields
        config["maxProperties"] = 0
    for schema in found.values():  # a batch's list of configs has one per input
        properties = schema.get("properties", {})
        if {"inputs", "config"} <= properties.keys():
            for option in properties["config"].get("anyOf", []):
                if option.get("type") == "array":
                    option["minItems"] = 1
                    option["maxItems"] = properties["inputs"].get("maxItems")
                    option["description"] = "One config per input, as many as `inputs`."
