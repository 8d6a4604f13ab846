"""Prometheus metrics (``CHAINSERVE_METRICS=prometheus``): runs over real HTTP against the
emulator, then ``GET /metrics`` read with prometheus_client's own parser, as Prometheus would."""

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.conftest import ServerFactory
from tests.helpers import ANSWER, MODEL, SECOND, wait_for

EXAMPLES = Path(__file__).parent.parent / "chains"
SECRET_INPUT = "a-request-value-that-must-never-become-a-label"
TEXT = {"input": {"text": f"Metrics count runs. {SECRET_INPUT}"}}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = tmp_path_factory.mktemp("metrics-chains")
    shutil.copy(EXAMPLES / "summarize.yaml", found / "summarize.yaml")
    (found / "answer.yaml").write_text(ANSWER)
    return found


@pytest.fixture(scope="module")
def metrics_server(make_server: ServerFactory, folder: Path) -> BackgroundServer:
    return make_server(chains_dir=folder, metrics="prometheus")


@pytest.fixture
def http(metrics_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=metrics_server.url, timeout=30) as client:
        yield client


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert SECRET_INPUT not in response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_invoke_and_stream_are_counted(http: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(ttft_ms=50)
    before = scrape(http)
    invoked = http.post("/chains/summarize/invoke", json=TEXT)
    assert invoked.status_code == 200
    usage = invoked.json()["metadata"]["usage"]
    streamed = http.post("/chains/summarize/stream", json=TEXT)
    assert streamed.status_code == 200 and streamed.text
    after = scrape(http)

    model = {"chain": "summarize", "model": MODEL}
    runs = "chainserve_runs_total"
    assert delta(before, after, runs, **model, route="invoke", outcome="ok") == 1
    assert delta(before, after, runs, **model, route="stream", outcome="ok") == 1
    tokens = "chainserve_tokens_total"
    # The emulator's counts are the same for the same prompt: the stream's equal invoke's.
    assert delta(before, after, tokens, **model, direction="input") == 2 * usage["input_tokens"]
    assert delta(before, after, tokens, **model, direction="output") == 2 * usage["output_tokens"]
    # Time to first token: streams only, and at least the emulator's 50 ms.
    ttft = "chainserve_time_to_first_token_seconds"
    assert delta(before, after, f"{ttft}_count", **model) == 1
    assert delta(before, after, f"{ttft}_sum", **model) >= 0.05
    assert delta(before, after, f"{ttft}_bucket", **model, le="0.05") == 0
    assert delta(before, after, "chainserve_run_duration_seconds_count", **model) == 2
    assert value(after, "chainserve_active_runs") == 0
    assert value(after, "chainserve_max_runs") == 1024


def test_active_runs_are_read_at_scrape_time(http: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=40)  # 2 s
    with http.stream("POST", "/chains/summarize/stream", json=TEXT) as response:
        next(response.iter_text())
        assert value(scrape(http), "chainserve_active_runs") == 1


def test_a_throttled_run_is_an_error_and_a_throttle(http: httpx.Client, bedrock: Emulator) -> None:
    before = scrape(http)
    bedrock.state.add_faults([Fault(kind="throttle")])
    assert http.post("/chains/summarize/invoke", json=TEXT).status_code == 429
    after = scrape(http)
    model = {"chain": "summarize", "model": MODEL}
    assert delta(before, after, "chainserve_runs_total", **model, route="invoke", outcome="error")
    assert delta(before, after, "chainserve_errors_total", **model, status="429") == 1
    assert delta(before, after, "chainserve_throttles_total", **model) == 1
    # Only answered runs have a duration.
    assert delta(before, after, "chainserve_run_duration_seconds_count", **model) == 0


def test_a_failure_mid_stream_is_an_error(http: httpx.Client, bedrock: Emulator) -> None:
    before = scrape(http)
    bedrock.state.add_faults([Fault(kind="stream_internal", after_chunks=2)])
    response = http.post(
        "/chains/summarize/stream", json=TEXT, headers={"Accept": "text/event-stream"}
    )
    assert response.status_code == 200 and "event: error" in response.text
    after = scrape(http)
    model = {"chain": "summarize", "model": MODEL}
    runs = "chainserve_runs_total"
    assert delta(before, after, runs, **model, route="stream", outcome="error") == 1
    assert delta(before, after, runs, **model, route="stream", outcome="ok") == 0
    errors = [
        k
        for k in after
        if k[0] == "chainserve_errors_total" and delta(before, after, k[0], **dict(k[1]))
    ]
    assert len(errors) == 1 and dict(errors[0][1])["status"].startswith("5"), errors


def test_a_run_answered_by_a_fallback(http: httpx.Client, bedrock: Emulator) -> None:
    before = scrape(http)
    bedrock.state.add_faults([Fault(kind="throttle", model=MODEL, times=0)])
    response = http.post("/chains/answer/invoke", json={"input": {"question": "Who?"}})
    assert response.status_code == 200
    assert response.json()["metadata"]["model"] == SECOND
    after = scrape(http)
    answered = {"chain": "answer", "model": SECOND}
    assert delta(before, after, "chainserve_fallbacks_total", **answered) == 1
    runs = "chainserve_runs_total"
    assert delta(before, after, runs, **answered, route="invoke", outcome="ok") == 1
    # The throttle a fallback recovered from is still counted, against the model throttled.
    assert delta(before, after, "chainserve_throttles_total", chain="answer", model=MODEL) == 1
    assert delta(before, after, "chainserve_throttles_total", **answered) == 0


def test_a_run_whose_every_model_failed_is_named_after_its_error(
    http: httpx.Client, bedrock: Emulator
) -> None:
    """LangChain raises the first model's error when every fallback failed too: the run's error
    is counted against that model, as its log line and error body name it."""
    before = scrape(http)
    bedrock.state.add_faults([Fault(kind="throttle", times=0)])  # every call, every model
    response = http.post("/chains/answer/invoke", json={"input": {"question": "Who?"}})
    assert response.status_code == 429 and MODEL in response.json()["message"]
    after = scrape(http)
    errors = "chainserve_errors_total"
    assert delta(before, after, errors, chain="answer", model=MODEL, status="429") == 1
    assert delta(before, after, errors, chain="answer", model=SECOND, status="429") == 0
    for model in (MODEL, SECOND):
        assert delta(before, after, "chainserve_throttles_total", chain="answer", model=model) == 1


def test_a_client_disconnect(http: httpx.Client, bedrock: Emulator) -> None:
    before = scrape(http)
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=200)  # 10 s if left to run
    with httpx.Client(base_url=str(http.base_url)) as other:  # noqa: SIM117
        with other.stream("POST", "/chains/summarize/stream", json=TEXT) as response:
            next(response.iter_text())  # leaving the block closes the connection
    model = {"chain": "summarize", "model": MODEL}
    disconnects = "chainserve_client_disconnects_total"
    wait_for(lambda: delta(before, scrape(http), disconnects, **model, route="stream") == 1)
    after = scrape(http)
    runs = "chainserve_runs_total"
    assert delta(before, after, runs, **model, route="stream", outcome="disconnected") == 1
    assert delta(before, after, runs, **model, route="stream", outcome="ok") == 0


def test_a_client_gone_before_the_first_token(http: httpx.Client, bedrock: Emulator) -> None:
    """The client hangs up while the model is still thinking (the response has not started):
    the run is stopped and counted as a disconnect."""
    before = scrape(http)
    bedrock.state.pace = Pace(ttft_ms=400, tokens_per_second=20, reply_tokens=200)
    body = json.dumps(TEXT).encode()
    with socket.create_connection((http.base_url.host, http.base_url.port)) as raw:
        raw.sendall(
            b"POST /chains/summarize/stream HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        wait_for(lambda: bool(bedrock.state.calls))  # the model call has started
    model = {"chain": "summarize", "model": MODEL}
    runs = "chainserve_runs_total"
    gone = {"route": "stream", "outcome": "disconnected"}
    wait_for(lambda: delta(before, scrape(http), runs, **model, **gone) == 1)
    after = scrape(http)
    assert delta(before, after, "chainserve_client_disconnects_total", **model, route="stream") == 1
    assert delta(before, after, runs, **model, route="stream", outcome="ok") == 0


def test_batch_runs_each_count(http: httpx.Client, bedrock: Emulator) -> None:
    before = scrape(http)
    body = {"inputs": [{"text": "one"}, {"text": "two"}], "config": {"max_concurrency": 1}}
    assert http.post("/chains/summarize/batch", json=body).status_code == 200
    after = scrape(http)
    model = {"chain": "summarize", "model": MODEL}
    assert delta(before, after, "chainserve_runs_total", **model, route="batch", outcome="ok") == 2


def test_a_batch_that_failed_still_counts_the_inputs_that_ran(
    http: httpx.Client, bedrock: Emulator
) -> None:
    before = scrape(http)
    # The first call passes (a harmless fault uses up its turn), the second is throttled.
    slow = Fault(kind="slow_first_token", delay_ms=1, times=1)
    bedrock.state.add_faults([slow, Fault(kind="throttle", times=1)])
    inputs = [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    body = {"inputs": inputs, "config": {"max_concurrency": 1}}
    assert http.post("/chains/summarize/batch", json=body).status_code == 429
    after = scrape(http)
    model = {"chain": "summarize", "model": MODEL}
    runs = "chainserve_runs_total"
    assert delta(before, after, runs, **model, route="batch", outcome="ok") == 1
    assert (
        delta(before, after, runs, **model, route="batch", outcome="error") == 1
    )  # 3rd: never ran
    assert delta(before, after, "chainserve_errors_total", **model, status="429") == 1
    assert delta(before, after, "chainserve_tokens_total", **model, direction="output") > 0


def test_openmetrics_when_asked(http: httpx.Client) -> None:
    response = http.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    names = {family.name for family in openmetrics_families(response.text)}
    assert {"chainserve_runs", "chainserve_active_runs"} <= names


def test_off_by_default(client: httpx.Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_metrics_need_a_key_when_keys_are_set(make_server: ServerFactory) -> None:
    server = make_server(metrics="prometheus", api_keys="sk-metrics")
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    keyed = httpx.get(f"{server.url}/metrics", headers={"x-api-key": "sk-metrics"})
    assert keyed.status_code == 200 and "chainserve_active_runs" in keyed.text


def test_metrics_public(make_server: ServerFactory) -> None:
    server = make_server(metrics="prometheus", api_keys="sk-metrics", metrics_public=True)
    assert httpx.get(f"{server.url}/metrics").status_code == 200
    assert httpx.get(f"{server.url}/chains").status_code == 401  # only /metrics is open
