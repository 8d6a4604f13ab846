"""The workbench in a terminal: ``chainserve render``, ``chainserve run`` and ``chainserve sign``.

Inputs come as ``-i key=value`` (``-i history=@turns.json`` reads the value from a file; an
image input's file, ``-i photo=@cat.png``, is read as an image) and are checked by the same rules as HTTP requests' query strings: text, converted to the input's
type; ``messages`` inputs are JSON. Output goes to stdout, everything else to stderr, so
``chainserve run summarize -i text=@doc.txt > summary.txt`` keeps only the answer.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.chains.catalog import Catalog, Chain
from service.chains.images import TINY_PNG_DATA_URL, read_image_file
from service.chains.loader import ChainFileErrors
from service.chains.models import opened_streams
from service.chains.render import render
from service.local import bedrock_for
from service.runs import errors
from service.runs.info import RunInfo
from service.settings import Settings


class CommandError(Exception):
    """A problem the user can fix, said in one line; the command exits with ``status``."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def parse_inputs(pairs: list[str], images: dict[str, int] | None = None) -> dict[str, str]:
    """``["text=hello", "history=@turns.json"]`` → ``{"text": "hello", "history": "[...]"}``;
    an image input's file (``images``: name → most bytes) is read as a data URL."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise CommandError(f"-i {pair!r}: write -i NAME=VALUE (or NAME=@FILE to read a file)")
        if value.startswith("@") and images and name in images:
            try:
                value = read_image_file(Path(), value[1:], images[name], confine=False)
            except ValueError as exc:
                raise CommandError(f"-i {name}: {exc}") from None
        elif value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"-i {name}: cannot read {value[1:]}: {exc}") from None
        values[name] = value
    return values


def render_command(args: argparse.Namespace) -> int:
    return _guarded(_render, args)


def run_command(args: argparse.Namespace) -> int:
    return _guarded(_run, args)


def _guarded(command: Any, args: argparse.Namespace) -> int:
    try:
        return int(command(args))
    except CommandError as exc:
        print(f"chainserve {args.command}: {exc}", file=sys.stderr)
        return exc.status


def _render(args: argparse.Namespace) -> int:
    # Rendering never calls a model: an endpoint that goes nowhere is fine.
    chain, variables = _load(args, endpoint_url=None)
    rendered = render(chain, variables)
    if args.json:
        print(json.dumps(rendered, indent=2, ensure_ascii=False))
        return 0
    params = " ".join(f"{key}={value}" for key, value in rendered["params"].items())
    print(f"{rendered['model']} ({rendered['provider']}){'  ' + params if params else ''}")
    for message in rendered["messages"]:
        print(f"\n[{message['role']}]\n{message['content']}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from service.emulator.state import Pace

    pace = Pace(ttft_ms=args.ttft_ms, tokens_per_second=args.tokens_per_second)
    with bedrock_for(args.live, pace) as backend:
        chain, variables = _load(args, endpoint_url=backend.endpoint_url)
        print(
            f"{chain.name} → {chain.model_id}, answered by {backend.description}", file=sys.stderr
        )
        info = RunInfo()
        first_token_ms: int | None = None
        ends_with_newline = True
        with opened_streams() as upstream:
            try:
                for chunk in chain.runnable.stream(variables, info.config({})):  # type: ignore[arg-type]
                    if first_token_ms is None:
                        first_token_ms = info.latency_ms
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                    ends_with_newline = chunk.endswith("\n") if chunk else ends_with_newline
            except KeyboardInterrupt:
                # LangChain drains the model's stream when its generator closes: stop Bedrock.
                for stream in upstream:
                    stream.close()
                print("\n[stopped]", file=sys.stderr)
                return 130
            except BrokenPipeError:  # stdout's reader went away (`| head`): cli.main ends quietly
                for stream in upstream:
                    stream.close()
                raise
            except Exception as exc:
                error = errors.classify(exc, model_id=chain.model_id, retry_after=0)
                if not ends_with_newline:
                    print()
                print(f"[error] {error.status}: {error.message}", file=sys.stderr)
                return 1
        if not ends_with_newline:
            print()
    print(_summary(info, first_token_ms), file=sys.stderr)
    return 0


def _summary(info: RunInfo, first_token_ms: int | None) -> str:
    usage = info.usage
    parts = [
        f"{usage.input_tokens} input + {usage.output_tokens} output tokens",
        f"first token {first_token_ms} ms" if first_token_ms is not None else "no output",
        f"total {info.latency_ms} ms",
    ]
    if info.stop_reason:
        parts.append(f"stop: {info.stop_reason}")
    if info.fallback_from:
        parts.append(f"answered by {info.model} after {', '.join(info.fallback_from)} failed")
    return " · ".join(parts)


def _load(args: argparse.Namespace, endpoint_url: str | None) -> tuple[Chain, dict[str, Any]]:
    """The chain named on the command line, and its validated inputs."""
    try:
        settings = Settings(bedrock_endpoint_url=endpoint_url)
    except ValidationError as exc:  # a CHAINSERVE_* variable with a bad value
        raise CommandError(f"invalid settings: {exc}") from None
    if args.chains is not None:
        settings = settings.model_copy(update={"chains_dir": args.chains})
    catalog = Catalog(settings)
    try:
        catalog.load(keep_going=True)  # another file's errors are no reason to refuse this one
    except ChainFileErrors as exc:  # no such folder
        raise CommandError(str(exc), status=1) from None
    try:
        chain = catalog.get(args.chain)
    except errors.ApiError as exc:
        broken = "".join(f"\n{error}" for error in catalog.errors)
        raise CommandError(_for_terminal(exc) + broken, status=1 if broken else 2) from None
    limit = settings.max_image_bytes
    images = {name: limit for name, item in chain.spec.inputs.items() if item.type == "image"}
    raw = parse_inputs(args.input, images)
    try:
        return chain, chain.inputs.parse_query(raw, images=True)
    except errors.ApiError as exc:
        raise CommandError(_for_terminal(exc)) from None


def _for_terminal(error: errors.ApiError) -> str:
    """An HTTP error message, said for ``-i`` flags (``input.text`` → ``-i text``)."""
    if not error.errors:
        return error.message
    return "; ".join(
        f"-i {item['field'].removeprefix('input.')}: {item['message']}" for item in error.errors
    )


def try_lines(catalog: Catalog, folder: Path, host: str, port: int) -> str:
    """What ``chainserve dev`` says once its port is bound: the playground, and a ``curl -N``
    for a chain that is really in the folder it serves."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}" if ":" not in shown else f"http://[{shown}]:{port}"
    lines = [f"Playground: {base}/playground"]
    chains = sorted(catalog, key=lambda chain: (_needs_history(chain), chain.name))
    if chains:
        chain = chains[0]
        body = json.dumps({"input": _example_input(chain)})
        lines.append(
            f"Try: curl -N {base}/chains/{chain.name}/stream "
            f"-H 'Content-Type: application/json' -d '{_shell_single(body)}'"
        )
    else:
        lines.append(f"No chains yet: add a chain file to {folder} (see README).")
    return "\n".join(lines)


def _needs_history(chain: Chain) -> bool:
    return any(item.type == "messages" for item in chain.spec.inputs.values())


def _example_input(chain: Chain) -> dict[str, Any]:
    """Values for the required inputs: enough for a first call to succeed."""
    examples = {
        "string": "Streams are fun.",
        "integer": 1,
        "number": 1.0,
        "boolean": True,
        "image": TINY_PNG_DATA_URL,
    }
    return {
        name: item.enum[0] if item.enum else examples.get(item.type, [])
        for name, item in chain.spec.inputs.items()
        if item.is_required
    }


def _shell_single(text: str) -> str:
    return text.replace("'", "'\\''")


def sign_command(args: argparse.Namespace) -> int:
    """``chainserve sign CHAIN -i NAME=VALUE …``: what ``POST /chains/CHAIN/stream-url`` returns,
    signed with the first of the keys the server's settings name (CHAINSERVE_API_KEYS …)."""
    from service import signed_urls
    from service.auth import ApiKeysUnavailable, load_keys

    def fail(message: str, status: int = 2) -> int:
        print(f"chainserve sign: {message}", file=sys.stderr)
        return status

    try:
        settings = Settings()
        keys = load_keys(settings)
    except ValidationError as exc:  # a CHAINSERVE_* variable with a bad value
        return fail(f"invalid settings: {exc}")
    except ApiKeysUnavailable as exc:
        return fail(str(exc), 1)
    if not keys:
        return fail(
            "no API key is configured: set CHAINSERVE_API_KEYS (or CHAINSERVE_API_KEYS_SSM_PARAMETER"
            " or CHAINSERVE_API_KEYS_SECRET_ID) as the server has them; a server without keys "
            "needs no signed URL"
        )
    if not 1 <= args.expires <= settings.signed_url_max_seconds:
        return fail(
            f"--expires: from 1 to {settings.signed_url_max_seconds} seconds "
            "(CHAINSERVE_SIGNED_URL_MAX_SECONDS)"
        )
    try:
        chain, _ = _load(args, endpoint_url=None)  # validated as GET …/stream will
        inputs = list(parse_inputs(args.input).items())
    except CommandError as exc:
        return fail(str(exc), exc.status)
    expires = signed_urls.expiry(time.time(), args.expires)
    key = signed_urls.signing_key(keys[0].get_secret_value().encode())
    try:
        path = signed_urls.sign(chain.name, inputs, key, expires)
    except UnicodeEncodeError:  # undecodable bytes in an argument
        return fail("-i: values must be UTF-8 text")
    print(args.base_url.rstrip("/") + path)
    print(f"expires at {signed_urls.iso(expires)} (in {args.expires} s)", file=sys.stderr)
    return 0
