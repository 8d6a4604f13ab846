"""Who is measured: the same chain and client for every contender, each its own process.

- (a) ``chainserve``: ``chainserve serve`` on the bench chain, SSE (LangServe's wire format);
- (b) ``langserve``: LangServe's ``add_routes`` on the identical runnable, SSE;
- (c) ``fastapi-floor``: FastAPI forwarding botocore's text deltas, no LangChain, text/plain;
  and ``botocore-floor`` (:mod:`bench.contenders.botocore_floor`): the ConverseStream consumed in
  one process with no HTTP server at all, for per-chunk CPU and time to first token.
"""

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_CHAINS = Path(__file__).resolve().parent.parent / "chains"
BENCH_CHAIN = BENCH_CHAINS / "bench.yaml"
MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"  # as in bench.yaml
SYSTEM_PROMPT = "You are a benchmark."  # as in bench.yaml
TEXT = "Benchmarks measure what a serving layer adds between the model and its client."


@dataclass(frozen=True)
class Target:
    """An HTTP endpoint the load client streams from."""

    name: str
    what: str
    stream_path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    token_pattern: bytes = rb"\S+"
    """A regular expression matching one token in the body (default: a word of plain text)."""
    text_pattern: bytes | None = None
    """For formats that join the chunks that arrived together into one event: a regular
    expression whose group is a JSON string of streamed text; the tokens are its words."""


@dataclass(frozen=True)
class Contender(Target):
    """A server process under test: ``python -m <module…>``, ``{port}`` filled in."""

    module: tuple[str, ...] = ()
    ready_path: str = "/healthz"

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", *(arg.replace("{port}", str(port)) for arg in self.module)]


# An SSE data event with a non-empty string (LangServe also sends "" for the model's
# start and stop events; those are not tokens).
_SSE_TOKEN = rb'event: data\r?\ndata: "[^"]'
_UVICORN = ("--port", "{port}", "--log-level", "warning", "--no-access-log")

CHAINSERVE = Contender(
    name="chainserve",
    what="chainserve serve, SSE",
    module=("service", "serve", "--chains", str(BENCH_CHAINS), "--port", "{port}"),
    stream_path="/chains/bench/stream",
    body={"input": {"text": TEXT}},
    headers={"accept": "text/event-stream"},
    token_pattern=_SSE_TOKEN,
)
LANGSERVE = Contender(
    name="langserve",
    what="LangServe add_routes, same runnable, SSE",
    module=("uvicorn", "bench.contenders.langserve_app:app", *_UVICORN),
    ready_path="/chains/bench/input_schema",
    stream_path="/chains/bench/stream",
    body={"input": {"text": TEXT}},
    token_pattern=_SSE_TOKEN,
)
FASTAPI_FLOOR = Contender(
    name="fastapi-floor",
    what="FastAPI StreamingResponse over botocore, no LangChain, text",
    module=("uvicorn", "bench.contenders.fastapi_floor:app", *_UVICORN),
    stream_path="/stream",
    body={"text": TEXT},
)
SERVERS = (CHAINSERVE, LANGSERVE, FASTAPI_FLOOR)

# chainserve's other wire formats, on the same chain and the same run: measured when named
# (``--contenders chainserve,chainserve-openai,…``), to compare encoders in one run.
_JSON_STRING = rb'("(?:[^"\\]|\\.)*")'
CHAINSERVE_TEXT = dataclasses.replace(
    CHAINSERVE,
    name="chainserve-text",
    what="chainserve serve, text/plain",
    headers={},
    token_pattern=rb"\S+",
)
CHAINSERVE_OPENAI = dataclasses.replace(
    CHAINSERVE,
    name="chainserve-openai",
    what="chainserve serve, OpenAI chat.completion.chunk events",
    stream_path="/v1/chat/completions",
    body={"model": "bench", "stream": True, "messages": [{"role": "user", "content": TEXT}]},
    headers={},
    text_pattern=rb'"delta":\{"content":' + _JSON_STRING,
)
CHAINSERVE_AI_SDK = dataclasses.replace(
    CHAINSERVE,
    name="chainserve-ai-sdk",
    what="chainserve serve, AI SDK UI message stream",
    stream_path="/chains/bench/chat",
    body={"messages": [{"role": "user", "parts": [{"type": "text", "text": TEXT}]}]},
    headers={},
    text_pattern=rb'"type":"text-delta","id":"[^"]*","delta":' + _JSON_STRING,
)
# The same chain with a fallback listed (never used: the first model answers), SSE.
CHAINSERVE_FALLBACKS = dataclasses.replace(
    CHAINSERVE,
    name="chainserve-fallbacks",
    what="chainserve serve, SSE, the chain with a fallback model",
    # A folder of its own: the other contenders' start-up loads the one bench chain only.
    module=("service", "serve", "--chains", str(BENCH_CHAINS / "fallbacks"), "--port", "{port}"),
    stream_path="/chains/bench-fallbacks/stream",
)
PROTOCOLS = (CHAINSERVE_TEXT, CHAINSERVE_OPENAI, CHAINSERVE_AI_SDK, CHAINSERVE_FALLBACKS)

# The emulator itself, streamed from directly: the most the load side can drive (no server).
EMULATOR_DIRECT = Target(
    name="emulator-direct",
    what="the emulator alone, no server between (the rig's own ceiling)",
    stream_path=f"/model/{MODEL_ID}/converse-stream",
    body={
        "system": [{"text": SYSTEM_PROMPT}],
        "messages": [{"role": "user", "content": [{"text": TEXT}]}],
    },
    headers={"authorization": "unsigned (the emulator only checks presence)"},
    token_pattern=b"contentBlockDelta",
)
