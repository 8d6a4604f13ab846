"""The ``chainserve`` command: serve, dev, render, run, test, validate, emulator, schema, models,
sign, package."""

import argparse
import contextlib
import gc
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI


def main(argv: list[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()  # so a closed pipe shows here, not in the interpreter's last flush
    except BrokenPipeError:
        # Whoever read stdout went away (`chainserve schema | head`): stop quietly, with the
        # status of a command that SIGPIPE ended. Stdout goes to /dev/null so the exit's own
        # flush of what is left has somewhere to go.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return status


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="chainserve", description="Serve LangChain chains from YAML files as streaming HTTP."
    )
    parser.add_argument("--version", action="version", version=f"chainserve {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the chains (Bedrock from the AWS environment)")
    _server_options(serve)

    dev = commands.add_parser(
        "dev", help="serve the chains against the built-in emulator, reloading on change"
    )
    _server_options(dev)
    _workbench_options(dev)

    render = commands.add_parser(
        "render", help="print the messages a chain would send the model; never calls a model"
    )
    _chain_options(render)
    render.add_argument("--json", action="store_true", help="as POST /chains/NAME/render returns")

    run = commands.add_parser(
        "run", help="stream a chain's answer to the terminal (the emulator unless --live)"
    )
    _chain_options(run)
    _workbench_options(run)

    validate = commands.add_parser("validate", help="check chain files; exit 1 on errors")
    validate.add_argument(
        "folder", nargs="?", type=Path, help="default: CHAINSERVE_CHAINS_DIR or chains"
    )

    test = commands.add_parser(
        "test", help="run the chains' tests (the emulator unless --live); exit 1 on failures"
    )
    test.add_argument(
        "folder", nargs="?", type=Path, help="default: CHAINSERVE_CHAINS_DIR or chains"
    )
    test.add_argument(
        "-k",
        dest="pattern",
        metavar="PATTERN",
        help="only tests whose 'chain › test name' contains PATTERN (any case; > for ›)",
    )
    test.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML there")
    test.add_argument(
        "--live",
        action="store_true",
        help="Bedrock (or CHAINSERVE_BEDROCK_ENDPOINT_URL) instead of the emulator; "
        "runs the live: checks too",
    )
    test.add_argument("--concurrency", type=int, default=8, metavar="N", help="tests at once")

    emulator = commands.add_parser("emulator", help="run the Bedrock Runtime emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=4010)
    emulator.add_argument("--ttft-ms", type=float, default=0, help="time to first token")
    emulator.add_argument("--tokens-per-second", type=float, default=0, help="0 = no wait")
    emulator.add_argument("--reply-tokens", type=int, help="make every reply this many tokens")
    emulator.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:N[:MS]][@MODEL]",
        help="fail every call, e.g. throttle, stream_error:3 (after 3 tokens), "
        "slow_first_token:5000 (ms), stall:3:2000 (after 3 tokens, for 2000 ms); @MODEL: only "
        "that model's calls (throttle@amazon.nova-lite-v1:0); the kinds: README, "
        "'The Bedrock emulator'",
    )
    emulator.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="info logs every call; warning only problems",
    )

    commands.add_parser("schema", help="print the JSON Schema of chain files")

    commands.add_parser(
        "package", help="build the Lambda zip (see chainserve package --help)", add_help=False
    )
    models = commands.add_parser("models", help="the Bedrock models the chains use")
    models.add_argument("folder", nargs="?", type=Path, help="default: chains")
    models.add_argument(
        "--arns", action="store_true", help="as IAM resource ARNs, comma-separated (ModelArns)"
    )

    sign = commands.add_parser(
        "sign", help="print a signed stream URL for a browser's EventSource (servers with API keys)"
    )
    _chain_options(sign)
    sign.add_argument(
        "--expires",
        type=int,
        default=300,
        metavar="SECONDS",
        help="seconds the URL stays good (default 300; at most CHAINSERVE_SIGNED_URL_MAX_SECONDS)",
    )
    sign.add_argument(
        "--base-url",
        default="http://127.0.0.1:8080",
        metavar="URL",
        help="the server as browsers reach it (default http://127.0.0.1:8080)",
    )

    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["package"]:  # its own parser: it also runs without the app's dependencies
        from service.deploy.package import main as package

        return package(argv[1:])
    args = parser.parse_args(argv)
    command = {
        "serve": _serve,
        "dev": _dev,
        "render": _render,
        "run": _run,
        "validate": _validate,
        "test": _test,
        "emulator": _emulator,
        "schema": _schema,
        "models": _models,
        "sign": _sign,
    }[args.command]
    return command(args)


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--chains", type=Path, help="folder of chain files (default: chains)")


def _chain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("chain", help="the chain's name")
    parser.add_argument(
        "-i",
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an input (repeat for each); NAME=@FILE reads the value from a file; "
        'messages inputs are JSON: history=\'[{"role": "user", "content": "Hi"}]\'',
    )
    parser.add_argument("--chains", type=Path, help="folder of chain files (default: chains)")


def _workbench_options(parser: argparse.ArgumentParser) -> None:
    """``dev``, ``run`` and ``test`` answer from the emulator unless ``--live`` is given."""
    parser.add_argument(
        "--live",
        action="store_true",
        help="call Bedrock (or CHAINSERVE_BEDROCK_ENDPOINT_URL) instead of the built-in emulator",
    )
    parser.add_argument("--ttft-ms", type=float, default=300, help="emulated time to first token")
    parser.add_argument(
        "--tokens-per-second", type=float, default=25, help="emulated output pace (0 = no wait)"
    )


def _serve(
    args: argparse.Namespace,
    on_ready: "Callable[[FastAPI], None] | None" = None,
    **overrides: object,
) -> int:
    from service.runs.collector import freeze_start_up

    # Start-up creates hundreds of thousands of objects that live as long as the process:
    # collecting them while they are made, or after, is wasted time (0.1 s of a 1 s cold start).
    gc.disable()
    try:
        app_or_exit = _create_app(args, overrides)
    finally:
        freeze_start_up()
        gc.enable()
    if isinstance(app_or_exit, int):
        return app_or_exit

    import uvicorn

    from service.server import HttpLimits, uvicorn_config

    app = app_or_exit
    settings = app.state.settings
    config = uvicorn_config(  # request head/body size and time limits: service/server.py
        app,
        HttpLimits.from_settings(settings),
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        server_header=False,
        ws="none",  # no WebSocket routes: skip loading a WebSocket implementation
        timeout_graceful_shutdown=5,
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if on_ready is not None and not self.should_exit:  # the port is bound: say so
                on_ready(app)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server is stopped
        Server(config).run()
    return 0


def _create_app(args: argparse.Namespace, overrides: dict[str, object]) -> "FastAPI | int":
    """The app for ``serve`` and ``dev``, or the exit status if settings or chains are bad."""
    from pydantic import ValidationError

    from service.app import create_app
    from service.auth import ApiKeysUnavailable
    from service.chains.loader import ChainFileErrors
    from service.settings import Settings

    if args.chains is not None:
        overrides["chains_dir"] = args.chains
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:  # a CHAINSERVE_* variable with a bad value
        print(f"chainserve: invalid settings: {exc}", file=sys.stderr)
        return 2
    try:
        return create_app(settings)
    except (ChainFileErrors, ApiKeysUnavailable) as exc:
        print(exc, file=sys.stderr)
        return 1


def _dev(args: argparse.Namespace) -> int:
    from service.emulator.state import Pace
    from service.local import bedrock_for

    pace = Pace(ttft_ms=args.ttft_ms, tokens_per_second=args.tokens_per_second)
    with bedrock_for(args.live, pace) as backend:
        print(f"Bedrock: {backend.description}", file=sys.stderr)

        def ready(app: "FastAPI") -> None:
            from service.terminal import try_lines

            state = app.state
            print(
                try_lines(state.catalog, state.settings.chains_dir, args.host, args.port),
                file=sys.stderr,
                flush=True,
            )

        return _serve(args, ready, bedrock_endpoint_url=backend.endpoint_url, reload=True)


def _render(args: argparse.Namespace) -> int:
    from service.terminal import render_command

    return render_command(args)


def _run(args: argparse.Namespace) -> int:
    from service.terminal import run_command

    return run_command(args)


def _validate(args: argparse.Namespace) -> int:
    from service.chains.catalog import Catalog
    from service.chains.loader import ChainFileErrors
    from service.settings import Settings

    settings = Settings()
    folder = args.folder or settings.chains_dir
    catalog = Catalog(settings.model_copy(update={"chains_dir": folder}))
    try:
        catalog.load()  # builds each chain's model too, as the server will
    except ChainFileErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    names = [chain.name for chain in catalog]
    print(f"{folder}: {len(names)} chains OK ({', '.join(names)})")
    return 0


def _emulator(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from service.emulator.server import run
    from service.emulator.state import Fault, Pace

    try:
        faults = [Fault.parse_cli(text) for text in args.fault]
        pace = Pace(
            ttft_ms=args.ttft_ms,
            tokens_per_second=args.tokens_per_second,
            reply_tokens=args.reply_tokens,
        )
    except (ValidationError, ValueError) as exc:
        print(f"chainserve emulator: {exc}", file=sys.stderr)
        return 2
    run(args.host, args.port, pace, faults, log_level=args.log_level)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from service.chains.spec import ChainSpec

    schema = ChainSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "chainserve chain file"
    print(json.dumps(schema, indent=2))
    return 0


def _models(args: argparse.Namespace) -> int:
    from service.chains.loader import ChainFileErrors, load_folder
    from service.settings import Settings

    settings = Settings()
    try:
        chains = load_folder(args.folder or settings.chains_dir, settings.max_chain_file_bytes)
    except ChainFileErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.arns:
        arns = {
            arn: None
            for spec in chains.values()
            for model in spec.models
            for arn in model.iam_resources()
        }
        print(",".join(arns))
    else:
        for name, spec in chains.items():
            print(f"{name}\t{spec.model.provider}\t{spec.model.id}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from service.terminal import sign_command

    return sign_command(args)


def _test(args: argparse.Namespace) -> int:
    from service.chaintests.command import main as run_tests

    return run_tests(args)
