"""OpenTelemetry traces leaving a real `chainserve serve` process: exported over OTLP/HTTP
(protobuf) to a loopback receiver (tests/otlp_standin.py) as the standard ``OTEL_*`` variables
say; the start-up error without the SDK; and no SDK import at all when tracing is off."""

import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from service.emulator.server import Emulator
from tests.helpers import wait_for
from tests.otlp_standin import OtlpStandIn, ReceivedSpan
from tests.processes import REPO, ServeProcess, environment, launcher

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"  # summarize.yaml's
SECRET_INPUT = "a-request-value-that-must-never-be-exported"
SERVER, CLIENT = 2, 3  # OTLP's SpanKind numbers


@pytest.fixture(scope="module")
def collector() -> Iterator[OtlpStandIn]:
    with OtlpStandIn() as standin:
        yield standin


@pytest.fixture(scope="module")
def start(
    bedrock: Emulator,
    chains_dir: Path,
    collector: OtlpStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ServeProcess]]:
    with launcher(
        tmp_path_factory,
        ServeProcess,
        ("CHAINSERVE_", "AWS_LAMBDA", "OTEL_"),
        CHAINSERVE_CHAINS_DIR=str(chains_dir),
        CHAINSERVE_BEDROCK_ENDPOINT_URL=bedrock.url,
        CHAINSERVE_BEDROCK_MAX_ATTEMPTS="1",
        CHAINSERVE_OTEL="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
    ) as launch:
        yield launch


def invoke_traced(process: ServeProcess, collector: OtlpStandIn) -> list[ReceivedSpan]:
    """Invoke summarize under a caller's trace; its spans, once the request's has arrived."""
    trace_id = f"{random.getrandbits(128):032x}"
    headers = {"traceparent": f"00-{trace_id}-{random.getrandbits(64):016x}-01"}
    body = {"input": {"text": f"Spans travel. {SECRET_INPUT}"}}
    response = httpx.post(
        f"{process.url}/chains/summarize/invoke", json=body, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text

    def mine() -> list[ReceivedSpan]:
        return [s for s in collector.spans if s.trace_id == trace_id]

    wait_for(lambda: any(s.kind == SERVER for s in mine()), timeout=15)
    spans = mine()
    assert len(spans) == 3, [s.name for s in spans]  # request, run, model call
    assert all(SECRET_INPUT not in repr(s.attributes) for s in spans)
    return spans


def test_spans_are_exported_over_otlp_http(
    start: Callable[..., ServeProcess], collector: OtlpStandIn
) -> None:
    process = start(
        OTEL_BSP_SCHEDULE_DELAY="50",  # ms: export soon after each span ends
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=test",
    )
    spans = invoke_traced(process, collector)
    assert set(collector.content_types) == {"application/x-protobuf"}
    (chat,) = [s for s in spans if s.kind == CLIENT]
    assert chat.resource["service.name"] == "chainserve"  # ours unless OTEL_* names one
    assert chat.resource["deployment.environment.name"] == "test"
    assert chat.name == f"chat {MODEL}"
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert chat.attributes["gen_ai.request.model"] == MODEL
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0
    assert chat.attributes["gen_ai.usage.output_tokens"] > 0
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["end_turn"]
    (server,) = [s for s in spans if s.kind == SERVER]
    (run,) = [s for s in spans if s.parent_span_id == server.span_id]
    assert chat.parent_span_id == run.span_id and run.name == "invoke_workflow summarize"


def test_on_lambda_each_request_is_flushed_at_its_end(
    start: Callable[..., ServeProcess], collector: OtlpStandIn
) -> None:
    """Lambda freezes the process after the response: a request's spans go at its end, not
    at the batch processor's next tick (here a minute away)."""
    process = start(
        AWS_LAMBDA_FUNCTION_NAME="chainserve",
        AWS_LAMBDA_RUNTIME_API="127.0.0.1:9001",
        OTEL_BSP_SCHEDULE_DELAY="60000",
        OTEL_SERVICE_NAME="answers-prod",
    )
    spans = invoke_traced(process, collector)
    assert {s.resource["service.name"] for s in spans} == {"answers-prod"}


# A stand-in for an environment without the `otel` extra: uninstalling the SDK from the shared
# venv would break every other test, so the child process's imports of it fail instead.
BLOCK_SDK = """\
import sys

class BlockSdk:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry.sdk" or name.startswith("opentelemetry.sdk."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, BlockSdk())
"""


def test_without_the_sdk_start_up_fails_with_the_fix(chains_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BLOCK_SDK)
    environ = environment(
        ("CHAINSERVE_", "OTEL_", "PYTHONPATH"),
        CHAINSERVE_CHAINS_DIR=str(chains_dir),
        CHAINSERVE_OTEL="true",
        PYTHONPATH=str(tmp_path),
    )
    done = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "0"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "chainserve: CHAINSERVE_OTEL=true needs the OpenTelemetry SDK (opentelemetry.sdk is "
        "missing): pip install 'chainserve[otel]'"
    )


def test_tracing_off_sets_nothing_up(chains_dir: Path) -> None:
    """No exporter, no span processor, no provider. (Not "no opentelemetry.sdk module": when
    the SDK is installed, langsmith.client — imported by LangChain — imports its TracerProvider
    class itself.)"""
    script = (
        "import sys\n"
        "from opentelemetry import trace\n"
        "from service.app import create_app\n"
        "from service.settings import Settings\n"
        f"create_app(Settings(chains_dir={str(chains_dir)!r}))\n"
        "ours = ('opentelemetry.exporter', 'opentelemetry.sdk.trace.export', "
        "'service.observability.span_processors')\n"
        "print(sorted(m for m in sys.modules if m.startswith(ours)))\n"
        "print(type(trace.get_tracer_provider()).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=environment(("CHAINSERVE_", "OTEL_")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "ProxyTracerProvider"]
