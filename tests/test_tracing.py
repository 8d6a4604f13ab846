"""OpenTelemetry traces (``CHAINSERVE_OTEL=true``), in process: real uvicorn servers, real HTTP
against the emulator, the real SDK recording into its own ``InMemorySpanExporter``.

The app traces into the process's SDK TracerProvider when there is one — the path of a
deployer running ``opentelemetry-instrument`` — so this module installs one, as that tool
would (a process may set it once; apps with tracing off never use it). Every request sends a
caller's ``traceparent`` with a fresh trace id, so each test reads only its own spans.
Export over the wire (OTLP/HTTP, the app's own provider): tests/test_tracing_export.py.
"""

import itertools
import json
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.conftest import ServerFactory
from tests.helpers import ANSWER, MODEL, SECOND, wait_for

EXAMPLES = Path(__file__).parent.parent / "chains"
KEY = "sk-trace-5d1e9b7c3a"
SECRET_INPUT = "a-request-value-that-must-never-reach-a-span"
TEXT = {"input": {"text": f"Traces show runs. {SECRET_INPUT}"}}


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    found = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(found))
    return found


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = tmp_path_factory.mktemp("traced-chains")
    shutil.copy(EXAMPLES / "summarize.yaml", found / "summarize.yaml")
    (found / "answer.yaml").write_text(ANSWER)
    return found


@pytest.fixture(scope="module")
def traced(
    make_server: ServerFactory, folder: Path, exporter: InMemorySpanExporter
) -> BackgroundServer:
    return make_server(chains_dir=folder, otel=True, api_keys=KEY)


@pytest.fixture
def http(traced: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=traced.url, timeout=30, headers={"x-api-key": KEY}) as client:
        yield client


class Caller:
    """A caller's span context, sent as ``traceparent``."""

    def __init__(self) -> None:
        self.trace_id = random.getrandbits(128)
        self.span_id = random.getrandbits(64)
        self.headers = {"traceparent": f"00-{self.trace_id:032x}-{self.span_id:016x}-01"}


def spans_of(exporter: InMemorySpanExporter, caller: Caller) -> list[ReadableSpan]:
    """The caller's trace, once its request span has ended (it ends last)."""

    def mine() -> list[ReadableSpan]:
        found = exporter.get_finished_spans()
        return [s for s in found if s.context is not None and s.context.trace_id == caller.trace_id]

    wait_for(lambda: any(s.kind is SpanKind.SERVER for s in mine()))
    return mine()


def tree(
    exporter: InMemorySpanExporter, caller: Caller, route: str
) -> tuple[ReadableSpan, list[ReadableSpan], dict[int, list[ReadableSpan]]]:
    """The request span (checked: the caller's child, named for the route), the run spans
    (checked: its children) and each run's chat spans (checked: the run's children), with no
    span outside that tree and every span inside its parent's time."""
    spans = spans_of(exporter, caller)
    (server,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert server.name == route
    assert server.parent is not None and server.parent.span_id == caller.span_id
    assert server.parent.is_remote
    runs = [s for s in spans if s.kind is SpanKind.INTERNAL]
    chats: dict[int, list[ReadableSpan]] = {}
    for run in runs:
        assert run.parent is not None and run.parent.span_id == server.context.span_id
        assert run.name == f"invoke_workflow {attributes(run)['gen_ai.workflow.name']}"
        chats[run.context.span_id] = sorted(
            (s for s in spans if s.parent is not None and s.parent.span_id == run.context.span_id),
            key=lambda s: s.start_time or 0,
        )
        for chat in chats[run.context.span_id]:
            assert chat.kind is SpanKind.CLIENT
            assert chat.name == f"chat {attributes(chat)['gen_ai.request.model']}"
            assert within(chat, run)
        assert within(run, server)
    assert len(spans) == 1 + len(runs) + sum(len(c) for c in chats.values())
    no_secrets(spans)
    return server, runs, chats


def within(inner: ReadableSpan, outer: ReadableSpan) -> bool:
    assert inner.start_time and inner.end_time and outer.start_time and outer.end_time
    # A millisecond of slack: the run's times come from perf_counter mapped to the wall clock.
    slack = 1_000_000
    return outer.start_time - slack <= inner.start_time <= inner.end_time <= outer.end_time + slack


def no_secrets(spans: list[ReadableSpan], *more: str) -> None:
    """No input text, key or reply text (the emulator's reply quotes the prompt) in any span."""
    for span in spans:
        text = json.dumps(dict(span.attributes or {}), default=str)
        for secret in (SECRET_INPUT, KEY, "[emulator]", "received:", *more):
            assert secret not in text, (span.name, secret, text)


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_invoke_continues_the_callers_trace(
    http: httpx.Client, exporter: InMemorySpanExporter
) -> None:
    caller = Caller()
    response = http.post("/chains/summarize/invoke", json=TEXT, headers=caller.headers)
    assert response.status_code == 200, response.text
    server, (run,), chats = tree(exporter, caller, "POST /chains/{name}/invoke")
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    metadata = response.json()["metadata"]
    usage = metadata["usage"]
    assert dict(run.attributes or {}) == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "summarize",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": MODEL,
        "chainserve.chain": "summarize",
        "chainserve.run_id": metadata["run_id"],
        "chainserve.request_id": response.headers["x-request-id"],
        "chainserve.route": "invoke",
        "chainserve.outcome": "ok",
        "gen_ai.usage.input_tokens": usage["input_tokens"],
        "gen_ai.usage.output_tokens": usage["output_tokens"],
        "gen_ai.response.finish_reasons": ("end_turn",),
    }
    assert run.status.status_code is StatusCode.UNSET
    (chat,) = chats[run.context.span_id]
    found = attributes(chat)
    assert found["gen_ai.operation.name"] == "chat"
    assert found["gen_ai.provider.name"] == "aws.bedrock"
    assert found["gen_ai.response.model"] == MODEL
    assert found["gen_ai.request.stream"] is False
    assert found["gen_ai.usage.input_tokens"] == usage["input_tokens"] > 0
    assert found["gen_ai.usage.output_tokens"] == usage["output_tokens"] > 0
    assert found["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert "gen_ai.input.messages" not in found  # CHAINSERVE_LOG_PROMPTS is off


@pytest.mark.parametrize("accept", ["text/plain", "text/event-stream"])
def test_streams(http: httpx.Client, exporter: InMemorySpanExporter, accept: str) -> None:
    caller = Caller()
    headers = {**caller.headers, "accept": accept}
    response = http.post("/chains/summarize/stream", json=TEXT, headers=headers)
    assert response.status_code == 200, response.text
    _, (run,), chats = tree(exporter, caller, "POST /chains/{name}/stream")
    assert run.attributes is not None
    assert run.attributes["chainserve.route"] == "stream"
    assert run.attributes["chainserve.outcome"] == "ok"
    ttft = run.attributes["gen_ai.response.time_to_first_chunk"]
    assert isinstance(ttft, float) and 0 < ttft < 30
    (chat,) = chats[run.context.span_id]
    assert attributes(chat)["gen_ai.request.stream"] is True
    assert attributes(chat)["gen_ai.usage.output_tokens"] > 0


def test_openai_chat_completion(traced: BackgroundServer, exporter: InMemorySpanExporter) -> None:
    caller = Caller()
    client = openai.OpenAI(base_url=f"{traced.url}/v1", api_key=KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="summarize",
        messages=[{"role": "user", "content": f"Cats sleep. {SECRET_INPUT}"}],
        stream=True,
        extra_headers=caller.headers,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    _, (run,), chats = tree(exporter, caller, "POST /v1/chat/completions")
    assert run.attributes is not None and run.attributes["chainserve.route"] == "chat.completions"
    assert len(chats[run.context.span_id]) == 1


def test_batch_makes_a_run_span_per_input(
    http: httpx.Client, exporter: InMemorySpanExporter
) -> None:
    caller = Caller()
    inputs = [{"text": f"One. {SECRET_INPUT}"}, {"text": f"Two. {SECRET_INPUT}"}]
    response = http.post("/chains/summarize/batch", json={"inputs": inputs}, headers=caller.headers)
    assert response.status_code == 200, response.text
    _, runs, chats = tree(exporter, caller, "POST /chains/{name}/batch")
    assert sorted(str((r.attributes or {})["chainserve.run_id"]) for r in runs) == sorted(
        response.json()["metadata"]["run_ids"]
    )
    assert all(len(chats[run.context.span_id]) == 1 for run in runs)


def test_batch_inputs_run_one_at_a_time_keep_their_own_times(
    http: httpx.Client, exporter: InMemorySpanExporter, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(ttft_ms=20)
    caller = Caller()
    inputs = [{"text": "One."}, {"text": "Two."}, {"text": "Three."}]
    body = {"inputs": inputs, "config": {"max_concurrency": 1}}
    response = http.post("/chains/summarize/batch", json=body, headers=caller.headers)
    assert response.status_code == 200, response.text
    _, runs, chats = tree(exporter, caller, "POST /chains/{name}/batch")  # chats inside runs
    ordered = sorted(runs, key=lambda run: run.start_time or 0)
    for earlier, later in itertools.pairwise(ordered):
        assert earlier.end_time and later.start_time and earlier.end_time <= later.start_time
    for run in runs:
        (chat,) = chats[run.context.span_id]
        assert chat.end_time and chat.start_time and chat.end_time - chat.start_time >= 15e6


def test_a_stream_throttled_before_its_first_chunk_was_still_a_stream(
    http: httpx.Client, exporter: InMemorySpanExporter, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
    caller = Caller()
    response = http.post("/chains/summarize/stream", json=TEXT, headers=caller.headers)
    assert response.status_code == 429, response.text
    _, (run,), chats = tree(exporter, caller, "POST /chains/{name}/stream")
    (chat,) = chats[run.context.span_id]
    assert attributes(chat)["gen_ai.request.stream"] is True
    assert "gen_ai.response.time_to_first_chunk" not in attributes(run)


def test_a_throttled_run_is_an_error(
    http: httpx.Client, exporter: InMemorySpanExporter, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
    caller = Caller()
    response = http.post("/chains/summarize/invoke", json=TEXT, headers=caller.headers)
    assert response.status_code == 429, response.text
    server, (run,), chats = tree(exporter, caller, "POST /chains/{name}/invoke")
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 429
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes is not None
    assert run.attributes["chainserve.outcome"] == "error"
    assert run.attributes["error.type"] == response.json()["code"]
    assert run.attributes["http.response.status_code"] == 429
    (chat,) = chats[run.context.span_id]
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes is not None
    assert chat.attributes["error.type"] == "ThrottlingException"
    assert "gen_ai.usage.input_tokens" not in chat.attributes


def test_a_fallback_shows_both_model_calls(
    http: httpx.Client, exporter: InMemorySpanExporter, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="throttle", model=MODEL, times=0)])
    caller = Caller()
    body = {"input": {"question": f"Who answers? {SECRET_INPUT}"}}
    response = http.post("/chains/answer/invoke", json=body, headers=caller.headers)
    assert response.status_code == 200, response.text
    _, (run,), chats = tree(exporter, caller, "POST /chains/{name}/invoke")
    assert run.attributes is not None
    assert run.attributes["gen_ai.request.model"] == MODEL
    assert run.attributes["gen_ai.response.model"] == SECOND
    assert run.attributes["chainserve.fallback_from"] == (MODEL,)
    assert run.status.status_code is StatusCode.UNSET
    failed, answered = chats[run.context.span_id]
    assert failed.name == f"chat {MODEL}" and failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "ThrottlingException"
    assert answered.name == f"chat {SECOND}"
    assert answered.status.status_code is StatusCode.UNSET
    assert (answered.attributes or {})["gen_ai.response.model"] == SECOND
    assert failed.end_time is not None and answered.start_time is not None
    assert failed.end_time <= answered.start_time


def test_a_signed_stream_urls_query_never_reaches_a_span(
    traced: BackgroundServer, exporter: InMemorySpanExporter
) -> None:
    minted = httpx.post(
        f"{traced.url}/chains/summarize/stream-url",
        headers={"x-api-key": KEY},
        json={"input": {"text": f"Signed. {SECRET_INPUT}"}},
    ).json()
    assert SECRET_INPUT in minted["url"] and "chainserve-signature=" in minted["url"]
    caller = Caller()
    response = httpx.get(minted["url"], headers=caller.headers, timeout=30)  # no key: signed
    assert response.status_code == 200, response.text
    server, (_run,), _ = tree(exporter, caller, "GET /chains/{name}/stream")
    signature = dict(parse_qsl(urlsplit(minted["url"]).query))["chainserve-signature"]
    no_secrets(spans_of(exporter, caller), signature)
    assert server.attributes is not None
    assert server.attributes["url.query"] == (
        "text=REDACTED&chainserve-expires=REDACTED&chainserve-signature=REDACTED"
    )
    # A key sent as a query parameter is redacted the same way.
    caller = Caller()
    keyed = httpx.get(
        f"{traced.url}/chains/summarize/stream",
        params={"text": SECRET_INPUT, "api_key": KEY},
        headers=caller.headers,
    )
    spans = spans_of(exporter, caller)
    no_secrets(spans)
    (server,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert (server.attributes or {})["url.query"] == "text=REDACTED&api_key=REDACTED", keyed.text


def test_prompts_only_when_asked(
    make_server: ServerFactory, folder: Path, exporter: InMemorySpanExporter
) -> None:
    server = make_server(chains_dir=folder, otel=True, log_prompts=True)
    caller = Caller()
    response = httpx.post(
        f"{server.url}/chains/summarize/invoke", json=TEXT, headers=caller.headers, timeout=30
    )
    assert response.status_code == 200, response.text
    spans = spans_of(exporter, caller)
    (chat,) = [s for s in spans if s.kind is SpanKind.CLIENT]
    attributes = chat.attributes or {}
    sent = json.loads(str(attributes["gen_ai.input.messages"]))
    assert sent[-1]["role"] == "user" and SECRET_INPUT in sent[-1]["parts"][0]["content"]
    (reply,) = json.loads(str(attributes["gen_ai.output.messages"]))
    assert reply["role"] == "assistant" and reply["finish_reason"] == "end_turn"
    assert reply["parts"][0]["content"] == response.json()["output"]


def test_health_checks_are_not_traced(
    traced: BackgroundServer, exporter: InMemorySpanExporter
) -> None:
    caller = Caller()
    assert httpx.get(f"{traced.url}/healthz", headers=caller.headers).status_code == 200
    httpx.get(f"{traced.url}/chains", headers={**caller.headers, "x-api-key": KEY})
    spans = spans_of(exporter, caller)  # /chains' span: so /healthz's would be there by now
    assert [s.name for s in spans] == ["GET /chains"]


def test_apps_with_tracing_off_make_no_spans(
    server: BackgroundServer, exporter: InMemorySpanExporter
) -> None:
    """The process has an SDK provider (this module's), yet an app without CHAINSERVE_OTEL
    leaves it alone: FastAPI's own request spans are off too."""
    caller = Caller()
    response = httpx.post(
        f"{server.url}/chains/summarize/invoke", json=TEXT, headers=caller.headers, timeout=30
    )
    assert response.status_code == 200
    time.sleep(0.5)  # a span would have ended with the response; give it time to be exported
    assert not [
        s
        for s in exporter.get_finished_spans()
        if s.context is not None and s.context.trace_id == caller.trace_id
    ]
