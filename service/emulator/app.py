"""The emulator's HTTP app: Bedrock Runtime's four inference routes plus control routes.

Requests are parsed as botocore sends them (Converse JSON; the Anthropic Messages body for
InvokeModel), replies planned by :mod:`replies` and sent by :mod:`responses`, with the faults
queued in :mod:`state`.
"""

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.emulator import controls, responses, validation
from service.emulator.bedrock_errors import ERRORS, BedrockError, fault_error
from service.emulator.content import Content, read_anthropic, read_converse
from service.emulator.examples import broken_reply
from service.emulator.replies import Cache, Reply, plan
from service.emulator.state import Call, EmulatorState, Fault, Pace


def create_emulator_app(state: EmulatorState | None = None) -> Starlette:
    """A fresh emulator; ``app.state.emulator`` holds its :class:`EmulatorState`."""
    state = state or EmulatorState()

    def inference(
        operation: str,
        parse: Callable[[str, dict[str, Any], EmulatorState], Reply],
        respond: Callable[[Reply, Call, Fault | None, EmulatorState], Awaitable[Response]],
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            model = request.path_params["model_id"]
            call = state.start_call(operation, model)
            call.http_version = request.scope.get("http_version", "1.1")
            call.request_id = request.scope[_REQUEST_ID]
            try:
                if "authorization" not in request.headers:
                    raise BedrockError(403, "AccessDeniedException", "Missing Authentication Token")
                body = validation.parse_body(await request.body())
                reply = parse(model, body, state)
                reply = controls.apply(operation, body, request.headers, reply, call)
                call.tokens_planned = reply.output_tokens
                fault = state.take_fault(model)
                call.fault = fault.kind if fault else None
                if fault and fault.kind == "invalid_output":
                    reply = broken_reply(reply)
                if fault and fault.kind in ERRORS:
                    raise fault_error(fault.kind, model)
                return await respond(reply, call, fault, state)
            except BedrockError as exc:
                call.end("failed")
                return exc.response()
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                call.end("failed")
                message = f"Malformed request body: {exc}"
                return BedrockError(400, "ValidationException", message).response()

        return endpoint

    routes = [
        Route(f"/model/{{model_id:path}}/{name}", inference(name, parse, respond), methods=["POST"])
        for name, parse, respond in (
            ("converse", _parse_converse, responses.converse),
            ("converse-stream", _parse_converse, responses.converse_stream),
            ("invoke", _parse_anthropic, responses.invoke),
            ("invoke-with-response-stream", _parse_anthropic, responses.invoke_stream),
        )
    ]
    routes += _control_routes(state)
    app = Starlette(routes=routes, middleware=[Middleware(_RequestId)])
    app.state.emulator = state
    return app


_REQUEST_ID = "emulator.request_id"


class _RequestId:
    """Every response carries an ``x-amzn-RequestId`` (a UUID), as Bedrock's do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope[_REQUEST_ID] = str(uuid.uuid4())
        header = (b"x-amzn-requestid", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_with_id)


# -- request parsing --------------------------------------------------------------------------


def _parse_converse(model: str, body: dict[str, Any], state: EmulatorState) -> Reply:
    validation.check_converse(model, body)
    config = body.get("inferenceConfig") or {}
    reply = _plan(model, read_converse(model, body), config.get("maxTokens"), state, config)
    paths = tuple(body.get("additionalModelResponseFieldPaths") or ())
    return dataclasses.replace(reply, response_field_paths=paths)


def _parse_anthropic(model: str, body: dict[str, Any], state: EmulatorState) -> Reply:
    validation.check_anthropic(model, body)
    stop = {"stopSequences": body.get("stop_sequences") or []}
    return _plan(model, read_anthropic(model, body), body.get("max_tokens"), state, stop)


def _plan(
    model: str, content: Content, max_tokens: int | None, state: EmulatorState, config: Any
) -> Reply:
    cache = None
    if content.cache_key is not None:
        cache = Cache(content.cache_tokens, hit=state.cache_prompt(content.cache_key))
    reply = plan(
        model,
        content.system,
        content.turns,
        max_tokens=max_tokens,
        stop=config.get("stopSequences") or [],
        reply_tokens=state.pace.reply_tokens,
        tools=[name for name, _ in content.tools],
        tool=content.tool_call(),
        input_tokens=content.input_tokens,
        cache=cache,
        text=content.structured_text(),
    )
    return dataclasses.replace(reply, schema=content.reply_schema())


# -- control ----------------------------------------------------------------------------------


def _control_routes(state: EmulatorState) -> list[Route]:
    faults_adapter = TypeAdapter(list[Fault] | Fault)

    async def get_state(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def add_faults(request: Request) -> Response:
        try:
            parsed = faults_adapter.validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"message": str(exc)}, status_code=422)
        state.add_faults(parsed if isinstance(parsed, list) else [parsed])
        return JSONResponse(state.snapshot())

    async def set_pace(request: Request) -> Response:
        try:
            state.pace = Pace.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"message": str(exc)}, status_code=422)
        return JSONResponse(state.snapshot())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse(state.snapshot())

    return [
        Route("/_emulator/state", get_state, methods=["GET"]),
        Route("/_emulator/faults", add_faults, methods=["POST"]),
        Route("/_emulator/pace", set_pace, methods=["PUT"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
    ]
