"""Request bodies per chain: pydantic models built from a chain's declared inputs.

Bodies are LangServe's: ``{"input": {...}, "config": {...}, "kwargs": {}}`` and, for batch,
``{"inputs": [...], ...}``. JSON bodies are validated strictly (``"3"`` is not an integer);
query strings (``GET .../stream?topic=x``) are text, so they are validated leniently. A key
given twice (in a JSON object, or a query string) is refused, never silently the last.

Any identifier is an input name — ``model_config``, ``json``, ``schema`` too: each input is
a field with a safe internal name and the input's name as its alias, so pydantic's own
attributes never shadow it, and schemas and error messages show the real name.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    create_model,
    field_validator,
)

from service.chains.images import BEDROCK_MAX_IMAGE_BYTES, image_field
from service.chains.messages import ChatMessage, message_model, shown
from service.chains.patterns import compile_pattern
from service.chains.spec import ChainSpec, InputSpec
from service.runs import errors


def whole_number(value: Any) -> Any:
    """``3.0`` as ``3``: JSON Schema's integers include whole-number floats, and Python's
    ``json`` writes a float that way. Other floats stay, to be refused as not integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


# An integer field of a request: strict (no "3", no true), whole-number floats included.
WholeInt = Annotated[int, BeforeValidator(whole_number)]


class RunConfig(BaseModel):
    """The part of LangChain's ``RunnableConfig`` a client may set."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # LangChain.js's RemoteRunnable sends these in camelCase (recursionLimit on every call).
    run_name: str | None = Field(None, validation_alias=AliasChoices("run_name", "runName"))
    recursion_limit: WholeInt | None = Field(
        None, validation_alias=AliasChoices("recursion_limit", "recursionLimit")
    )
    max_concurrency: Annotated[int, Field(ge=1), BeforeValidator(whole_number)] | None = Field(
        None, validation_alias=AliasChoices("max_concurrency", "maxConcurrency")
    )
    configurable: dict[str, Any] = Field(
        default_factory=dict, description="Accepted for LangServe clients; must be empty."
    )

    @field_validator("configurable")
    @classmethod
    def _nothing_configurable(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:
            raise ValueError("chains have no configurable fields; send an empty object")
        return value

    def to_langchain(self, default_name: str | None = None) -> dict[str, Any]:
        """LangChain's config; ``default_name`` names the run (its root, in LangSmith) unless
        the client set ``run_name``."""
        config: dict[str, Any] = {"tags": self.tags, "metadata": self.metadata}
        if name := self.run_name or default_name:
            config["run_name"] = name
        if self.max_concurrency:
            config["max_concurrency"] = self.max_concurrency
        if self.recursion_limit:
            config["recursion_limit"] = self.recursion_limit
        return config


def _no_kwargs(value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) and not item for item in items):
        raise ValueError("chains take no kwargs: send {}, or one {} per input")
    return value


# LangServe's batch kwargs: {} — or, from LangChain.js's RemoteRunnable, one {} per input.
BatchKwargs = Annotated[
    Any,
    AfterValidator(_no_kwargs),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object", "maxProperties": 0},
                {"type": "array", "items": {"type": "object", "maxProperties": 0}},
            ],
            "description": "Accepted for LangServe clients; empty.",
        }
    ),
]


class BatchRequest(NamedTuple):
    """A validated ``/batch`` body."""

    variables: list[dict[str, Any]]
    configs: list[dict[str, Any]]
    return_exceptions: bool


class ChainInputs:
    """Validation and conversion of one chain's inputs."""

    def __init__(
        self,
        spec: ChainSpec,
        max_input_length: int,
        max_batch_size: int,
        max_image_bytes: int = BEDROCK_MAX_IMAGE_BYTES,
    ) -> None:
        assert spec.name is not None
        # Named after the chain as it is (a-b and a_b are two chains): also the OpenAPI names.
        self.name = title = spec.name
        # Input name → internal field name; only the alias (the input name) is accepted.
        self._fields = {name: f"input_{i}" for i, name in enumerate(spec.inputs)}
        fields = {
            self._fields[name]: _field(item, max_input_length, alias=name, images=max_image_bytes)
            for name, item in spec.inputs.items()
        }
        self.model: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{title}_Input",
            __config__=ConfigDict(extra="forbid", validate_by_name=False, validate_by_alias=True),
            **fields,
        )
        self.request_model: type[BaseModel] = create_model(
            f"{title}_Request",
            __config__=ConfigDict(extra="forbid"),
            input=(self.model, ...),
            config=(RunConfig, Field(default_factory=RunConfig)),
            kwargs=(dict[str, Any], Field(default_factory=dict, max_length=0)),
        )
        self.batch_model: type[BaseModel] = create_model(
            f"{title}_BatchRequest",
            __config__=ConfigDict(extra="forbid"),
            inputs=(list[self.model], Field(min_length=1, max_length=max_batch_size)),  # type: ignore[name-defined]
            config=(RunConfig | list[RunConfig], Field(default_factory=RunConfig)),
            kwargs=(BatchKwargs, Field(default_factory=dict)),
            return_exceptions=(
                bool,
                Field(
                    False,
                    description="true: a failed input gives null in output and its error in "
                    "metadata.runs[i].error, and the other inputs' outputs are kept; false "
                    "(LangServe's behaviour): the first failure fails the whole batch.",
                ),
            ),
        )
        self._specs = spec.inputs
        images = {self._fields[name] for name, item in spec.inputs.items() if item.type == "image"}
        self.url_model: type[BaseModel] = (
            create_model(  # type: ignore[call-overload]
                f"{title}_UrlInput",
                __config__=ConfigDict(
                    extra="forbid", validate_by_name=False, validate_by_alias=True
                ),
                **{name: value for name, value in fields.items() if name not in images},
            )
            if images
            else self.model
        )
        """The inputs a URL can carry (``GET …/stream``, signed URLs): all but images."""

    def json_schema(self) -> dict[str, Any]:
        return self.model.model_json_schema()

    def parse_request(self, body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        """A ``/invoke`` or ``/stream`` body → (prompt variables, run config)."""
        variables, config, _ = self.parse_request_as_sent(body)
        return variables, config

    def parse_request_as_sent(self, body: bytes) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """:meth:`parse_request`, and whether the body was LangServe's whole form (it names
        ``kwargs``, as LangServe's clients send it)."""
        request: Any = parse_body(self.request_model, body)
        langserve = "kwargs" in request.model_fields_set
        config = request.config.to_langchain(self.name)  # traced under the chain's name
        return self._variables(request.input), config, langserve

    def parse_batch(self, body: bytes) -> BatchRequest:
        """A ``/batch`` body → variables per input, run config per input, return_exceptions."""
        request: Any = parse_body(self.batch_model, body)
        configs = request.config if isinstance(request.config, list) else None
        if configs is not None and len(configs) != len(request.inputs):
            raise errors.bad_request(
                "config", f"give one config, or one per input ({len(request.inputs)})"
            )
        variables = [self._variables(item) for item in request.inputs]
        return BatchRequest(
            variables,
            [
                (configs[i] if configs else request.config).to_langchain(self.name)
                for i in range(len(variables))
            ],
            request.return_exceptions,
        )

    def parse_data(self, data: dict[str, Any], prefix: str = "input") -> dict[str, Any]:
        """Inputs already decoded from JSON (a chat protocol's) → prompt variables; errors
        name fields under ``prefix``."""
        try:
            validated = self.model.model_validate(data, strict=True)
        except ValidationError as exc:
            raise errors.invalid_input(exc, prefix=prefix) from None
        return self._variables(validated)

    def parse_query(
        self, query: Mapping[str, str] | Iterable[tuple[str, str]], *, images: bool = False
    ) -> dict[str, Any]:
        """Query parameters (all text; pairs, so a name given twice is seen) → prompt
        variables; messages inputs are JSON. Image inputs are refused unless ``images`` (the
        command line's ``-i photo=@cat.png``, which is no URL)."""
        data: dict[str, Any] = {}
        pairs = query.items() if isinstance(query, Mapping) else query
        for name, value in pairs:
            if name in data:
                raise errors.bad_request(f"input.{name}", "given more than once; give it once")
            spec = self._specs.get(name)
            if spec is not None and spec.type == "image" and not images:
                # Megabytes of base64 do not belong in a URL (servers, proxies and logs cap
                # and record URLs): images travel in a POST body only.
                raise errors.bad_request(
                    f"input.{name}",
                    "an image cannot be sent in a URL; POST the inputs as JSON to "
                    "/invoke or /stream instead",
                )
            if spec is not None and spec.type == "messages":
                try:
                    data[name] = json.loads(value)
                except (ValueError, RecursionError):
                    raise errors.bad_request(
                        f"input.{name}", "a messages input in a query string is a JSON list"
                    ) from None
            elif spec is not None and spec.type in _NUMBERS and spec.enum is not None:
                data[name] = _number(value, _NUMBERS[spec.type])  # enums match values, not text
            else:
                data[name] = value
        try:
            validated = self.model.model_validate(data)
        except ValidationError as exc:
            raise errors.invalid_input(exc, prefix="input") from None
        return self._variables(validated)

    def _variables(self, validated: BaseModel) -> dict[str, Any]:
        variables: dict[str, Any] = {}
        for name, field_name in self._fields.items():
            value = getattr(validated, field_name)
            if isinstance(value, list):
                value = [m.to_langchain() if isinstance(m, ChatMessage) else m for m in value]
            variables[name] = shown(value)
        return variables


_NUMBERS: dict[str, type] = {"integer": int, "number": float}


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text  # validation names the field and the expected type


class _Repeated(dict[str, Any]):
    """A JSON object in which ``key`` appeared more than once."""

    key = ""


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: bytes) -> M:
    """A JSON request body as ``model``, strictly (``"3"`` is not an integer); a key given twice,
    ``NaN`` and invalid JSON refused: 422 naming each bad field, with the fix."""
    refuse_duplicate_keys(body)
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise errors.invalid_input(exc) from None


def refuse_duplicate_keys(body: bytes) -> None:
    """422 naming the first key given twice in a JSON object (``input.text``), where a JSON
    parser would silently keep the last value; 422 for ``NaN`` and ``Infinity``, which are not
    JSON (Python's parser takes them, and they would come back out unreadable). Invalid JSON is
    left to the validation."""
    repeated = False

    def not_json(constant: str) -> Any:
        raise errors.bad_request("body", f"{constant} is not a JSON number; send a number, or null")

    def pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        result = dict(pairs)
        if len(result) == len(pairs):
            return result
        repeated = True
        marked, seen = _Repeated(result), set()
        for key, _ in pairs:
            if key in seen:
                marked.key = key
                break
            seen.add(key)
        return marked

    try:
        document = json.loads(body, object_pairs_hook=pairs_to_dict, parse_constant=not_json)
    except (ValueError, RecursionError):
        return
    if repeated:
        path = _repeated_path(document) or ["body"]
        raise errors.bad_request(".".join(path), "given more than once; give it once")


def _repeated_path(value: Any) -> list[str] | None:
    if isinstance(value, _Repeated):
        return [value.key]
    if isinstance(value, dict):
        children: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return None
    for key, child in children:
        below = _repeated_path(child)
        if below is not None:
            return [str(key), *below]
    return None


def _field(spec: InputSpec, max_input_length: int, alias: str, images: int) -> tuple[Any, Any]:
    annotation: Any
    constraints: dict[str, Any] = {"description": spec.description or None, "alias": alias}
    if spec.type == "image":
        annotation = image_field(images, optional=not spec.is_required)
    elif spec.type == "messages":
        annotation = list[ChatMessage]
        if spec.max_length:
            constraints["max_length"] = spec.max_length
        annotation = list[message_model(spec.allowed_roles)]  # type: ignore[misc]
    elif spec.enum is not None:
        annotation = Literal[tuple(spec.enum)]
        if spec.type == "integer":
            annotation = Annotated[annotation, BeforeValidator(whole_number)]
        # The enum is within the bounds (checked at load); published for clients all the same.
        bounds = {"minimum": spec.minimum, "maximum": spec.maximum}
        constraints["json_schema_extra"] = {k: v for k, v in bounds.items() if v is not None}
    elif spec.type == "string":
        annotation = str
        constraints["max_length"] = spec.max_length or max_input_length
        if spec.least_length:
            constraints["min_length"] = spec.least_length
        if spec.pattern is not None:
            annotation = Annotated[str, AfterValidator(_matcher(spec.pattern))]
            constraints["json_schema_extra"] = {"pattern": spec.pattern}
    else:
        annotation = {"integer": WholeInt, "number": float, "boolean": bool}[spec.type]
        if spec.type == "number":
            constraints["allow_inf_nan"] = False  # NaN, ±Infinity, 1e400: no prompt shows them
        if spec.type != "boolean":
            constraints["ge"], constraints["le"] = spec.minimum, spec.maximum
    if spec.is_required:
        default: Any = ...
    elif spec.default is not None:
        default = spec.default
    elif spec.type == "image":
        default = None  # an optional image not sent: its prompt item is left out
    else:
        default = [] if spec.type == "messages" else ""
    return annotation, Field(default, **constraints)


def _matcher(pattern: str) -> Any:
    """A validator: the value must contain a match of ``pattern``, as JSON Schema's ``pattern``
    (JavaScript's dialect: see :mod:`service.chains.patterns`)."""
    compiled = compile_pattern(pattern)

    def check(value: str) -> str:
        if not compiled.search(value):
            raise ValueError(f"does not match the pattern {pattern!r}; send text that does")
        return value

    return check
