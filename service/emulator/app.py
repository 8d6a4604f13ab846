"""The emulator's HTTP app: Bedrock Runtime's four inference routes plus control routes.

Requests are parsed as botocore sends them (Converse JSON; the Anthropic Messages body for
InvokeModel), replies planned by :mod:`replies` and sent by :mod:`responses`, with the faults
queued in :mod:`state`.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.emulator import responses
from service.emulator.replies import Reply, Turn, plan
from service.emulator.responses import BedrockError
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
            try:
                if "authorization" not in request.headers:
                    raise BedrockError(403, "AccessDeniedException", "Missing Authentication Token")
                body = await request.json()
                reply = parse(model, body, state)
                call.tokens_planned = reply.output_tokens
                fault = state.take_fault(model)
                call.fault = fault.kind if fault else None
                if fault and fault.kind in responses.ERRORS:
                    raise BedrockError(*responses.ERRORS[fault.kind])
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
    app = Starlette(routes=routes)
    app.state.emulator = state
    return app


# -- request parsing --------------------------------------------------------------------------


def _parse_converse(model: str, body: dict[str, Any], state: EmulatorState) -> Reply:
    messages = body.get("messages") or []
    if not messages:
        raise BedrockError(400, "ValidationException", "messages: at least one message required")
    turns = [Turn(m["role"], _text_blocks(m.get("content", []))) for m in messages]
    system = [block["text"] for block in body.get("system", []) if "text" in block]
    config = body.get("inferenceConfig", {})
    return plan(
        model,
        system,
        turns,
        max_tokens=config.get("maxTokens"),
        stop=config.get("stopSequences", []),
        reply_tokens=state.pace.reply_tokens,
    )


def _parse_anthropic(model: str, body: dict[str, Any], state: EmulatorState) -> Reply:
    if "messages" not in body:
        raise BedrockError(
            400,
            "ValidationException",
            "The emulator's InvokeModel speaks the Anthropic Messages body (anthropic.* models)",
        )
    turns = [Turn(m["role"], _anthropic_text(m["content"])) for m in body["messages"]]
    system = body.get("system")
    system_texts = [_anthropic_text(system)] if system else []
    return plan(
        model,
        system_texts,
        turns,
        max_tokens=body.get("max_tokens"),
        stop=body.get("stop_sequences", []),
        reply_tokens=state.pace.reply_tokens,
    )


def _text_blocks(blocks: list[dict[str, Any]]) -> str:
    return "".join(block.get("text", "") for block in blocks)


def _anthropic_text(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if block.get("type") == "text")


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
