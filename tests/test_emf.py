"""CloudWatch EMF metrics (``CHAINSERVE_METRICS=emf``): a real `chainserve serve` process with
Lambda's environment, runs over real HTTP against the emulator, then every line it wrote read
back: each must be JSON, and each EMF record must be a valid EMF document — checked against
our JSON Schema of AWS's "Specification: Embedded metric format" (tests/emf_schema.json) plus
the rules a schema cannot state (the references from ``_aws`` to root members).

No CloudWatch runs here: the spec is the contract CloudWatch Logs applies to each line.
"""

import copy
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from numbers import Real
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from service.settings import Settings
from tests.helpers import ANSWER, MODEL, SECOND, wait_for
from tests.processes import REPO, ServeProcess, environment, launcher
from tests.template import Template

EXAMPLES = REPO / "chains"
SCHEMA = json.loads((Path(__file__).parent / "emf_schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
NAMESPACE = "chainserve-emf-test"
KEY = "sk-emf-3b9d0c7e51"
SECRET = "Okapis-whistle-softly-4402"  # a chain input that must never reach a line
TEXT = {"input": {"text": f"Metrics count runs. {SECRET}"}}
LAMBDA_ID = "0b7c6d5e-2222-4f3a-8e1d-9c8b7a6f5e4d"
LAMBDA_ENV = {"AWS_LAMBDA_FUNCTION_NAME": "chainserve", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}
# Powertools' own variables, set to show they change nothing: no "service" dimension, our
# namespace, and records still written (POWERTOOLS_METRICS_DISABLED only stops its flush).
POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "not-a-dimension",
    "POWERTOOLS_METRICS_NAMESPACE": "not-our-namespace",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


def emf_problems(document: Any) -> list[str]:
    """Why ``document`` is not a valid EMF document (empty: it is)."""
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in VALIDATOR.iter_errors(document)
    ]
    if problems:
        return problems
    # What the schema cannot say: every reference in _aws names a root member of the right type.
    for directive in document["_aws"]["CloudWatchMetrics"]:
        dimension_keys = {key for keys in directive["Dimensions"] for key in keys}
        for key in sorted(dimension_keys):
            value = document.get(key)
            if not isinstance(value, str) or not 1 <= len(value) <= 1024:
                problems.append(f"dimension {key!r}: not a root string of 1-1024 characters")
        for definition in directive["Metrics"]:
            name = definition["Name"]
            if name in dimension_keys:
                problems.append(f"metric {name!r} is also a dimension")
            if not _metric_value(document.get(name)):
                problems.append(f"metric {name!r}: not a root number or array of 1-100 numbers")
    return problems


def _metric_value(value: Any) -> bool:
    def number(item: Any) -> bool:
        return isinstance(item, Real) and not isinstance(item, bool)

    if isinstance(value, list):
        return 1 <= len(value) <= 100 and all(number(item) for item in value)
    return number(value)


class Process(ServeProcess):
    def lines(self) -> list[dict[str, Any]]:
        """Every line the process wrote, each parsed as JSON (one that is not fails the test)."""
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if "_aws" in line]

    def record(self, **properties: Any) -> dict[str, Any]:
        """The one EMF record with these members (waited for: it is written as the run ends)."""

        def matching() -> list[dict[str, Any]]:
            return [r for r in self.records() if properties.items() <= r.items()]

        wait_for(lambda: bool(matching()))
        [found] = matching()
        assert emf_problems(found) == []
        return found


@pytest.fixture(scope="module")
def emf(bedrock: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    folder = tmp_path_factory.mktemp("emf-chains")
    shutil.copy(EXAMPLES / "summarize.yaml", folder / "summarize.yaml")
    (folder / "answer.yaml").write_text(ANSWER)
    with launcher(
        tmp_path_factory,
        Process,
        ("CHAINSERVE_", "AWS_LAMBDA", "LAMBDA_", "POWERTOOLS_"),
        CHAINSERVE_CHAINS_DIR=str(folder),
        CHAINSERVE_BEDROCK_ENDPOINT_URL=bedrock.url,
        CHAINSERVE_BEDROCK_MAX_ATTEMPTS="1",
        CHAINSERVE_API_KEYS=KEY,
        CHAINSERVE_ACCESS_LOG="true",  # uvicorn's access lines share stdout with the records
        CHAINSERVE_METRICS="emf",
        CHAINSERVE_METRICS_NAMESPACE=NAMESPACE,
        **LAMBDA_ENV,
        **POWERTOOLS_ENV,
    ) as launch:
        yield launch()


def post(process: Process, path: str, body: Any, request_id: str, **headers: str) -> httpx.Response:
    headers = {"x-api-key": KEY, "x-request-id": request_id, **headers}
    return httpx.post(process.url + path, json=body, headers=headers, timeout=30)


def metric_units(record: dict[str, Any]) -> dict[str, str]:
    [directive] = record["_aws"]["CloudWatchMetrics"]
    return {definition["Name"]: definition["Unit"] for definition in directive["Metrics"]}


def test_an_invoke_record(emf: Process) -> None:
    context = json.dumps({"request_id": LAMBDA_ID, "deadline": 1_900_000_000_000})
    response = post(
        emf, "/chains/summarize/invoke", TEXT, "emf-invoke", **{"x-amzn-lambda-context": context}
    )
    assert response.status_code == 200, response.text
    metadata = response.json()["metadata"]
    record = emf.record(request_id="emf-invoke")

    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["chain", "model"]]  # no POWERTOOLS_SERVICE_NAME "service"
    assert "service" not in record
    assert (record["chain"], record["model"]) == ("summarize", MODEL)
    assert metric_units(record) == {
        "runs": "Count",
        "errors": "Count",
        "throttles": "Count",
        "fallbacks": "Count",
        "disconnects": "Count",
        "input_tokens": "Count",
        "output_tokens": "Count",
        "latency_ms": "Milliseconds",
        "active_runs": "Count",
    }  # no ttft_ms: not a stream; no cache tokens: this chain does not cache
    assert record["runs"] == [1] and record["errors"] == [0] and record["throttles"] == [0]
    assert record["input_tokens"] == [metadata["usage"]["input_tokens"]]
    assert record["output_tokens"] == [metadata["usage"]["output_tokens"]]
    assert record["latency_ms"][0] >= 0 and record["active_runs"] == [0]
    assert record["run_id"] == metadata["run_id"]
    assert record["lambda_request_id"] == LAMBDA_ID
    assert (record["route"], record["status"], record["outcome"]) == ("invoke", 200, "ok")
    assert record["stop_reason"] == "end_turn"
    assert abs(record["_aws"]["Timestamp"] / 1000 - time.time()) < 60


def test_a_stream_record_has_the_time_to_first_token(emf: Process, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(ttft_ms=50)
    response = post(emf, "/chains/summarize/stream", TEXT, "emf-stream")
    assert response.status_code == 200 and response.text
    record = emf.record(request_id="emf-stream")
    assert record["run_id"] == response.headers["x-run-id"]
    assert metric_units(record)["ttft_ms"] == "Milliseconds"
    assert 50 <= record["ttft_ms"][0] <= record["latency_ms"][0]
    assert (record["route"], record["outcome"], record["runs"]) == ("stream", "ok", [1])
    assert "lambda_request_id" not in record  # no adapter header on this request


def test_a_throttled_run(emf: Process, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
    response = post(emf, "/chains/summarize/invoke", TEXT, "emf-throttle")
    assert response.status_code == 429
    record = emf.record(request_id="emf-throttle")
    assert (record["chain"], record["model"]) == ("summarize", MODEL)
    assert record["errors"] == [1] and record["throttles"] == [1] and record["fallbacks"] == [0]
    assert (record["status"], record["outcome"]) == (429, "error")
    assert record["code"] == response.json()["code"]
    assert "latency_ms" not in record  # only answered runs have a latency


def test_a_run_answered_by_a_fallback(emf: Process, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="throttle", model=MODEL, times=0)])
    response = post(emf, "/chains/answer/invoke", {"input": {"question": "Who?"}}, "emf-fb")
    assert response.status_code == 200
    assert response.json()["metadata"]["model"] == SECOND
    record = emf.record(request_id="emf-fb")
    assert (record["chain"], record["model"]) == ("answer", SECOND)  # the model that answered
    assert record["fallbacks"] == [1] and record["errors"] == [0]
    # The throttle the fallback recovered from still counts, and names the model throttled.
    assert record["throttles"] == [1] and record["throttled_models"] == [MODEL]
    assert record["fallback_from"] == [MODEL]


def test_a_client_disconnect(emf: Process, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=200)  # 10 s if left to run
    headers = {"x-api-key": KEY, "x-request-id": "emf-gone"}
    with httpx.Client(base_url=emf.url, headers=headers) as client:  # noqa: SIM117
        with client.stream("POST", "/chains/summarize/stream", json=TEXT) as response:
            assert response.status_code == 200
            next(response.iter_text())  # leaving the block closes the connection
    record = emf.record(request_id="emf-gone")
    assert record["disconnects"] == [1] and record["errors"] == [0]
    assert record["outcome"] == "disconnected" and "status" not in record
    assert "latency_ms" not in record and record["ttft_ms"][0] >= 0


def test_each_run_of_a_batch_is_a_record(emf: Process) -> None:
    body = {"inputs": [{"text": "one"}, {"text": "two"}], "config": {"max_concurrency": 1}}
    response = post(emf, "/chains/summarize/batch", body, "emf-batch")
    assert response.status_code == 200
    run_ids = response.json()["metadata"]["run_ids"]
    wait_for(lambda: len([r for r in emf.records() if r["request_id"] == "emf-batch"]) == 2)
    for run_id in run_ids:
        record = emf.record(request_id="emf-batch", run_id=run_id)
        assert record["route"] == "batch" and record["runs"] == [1] and record["outcome"] == "ok"


def test_every_line_is_json_and_every_record_valid_emf(emf: Process) -> None:
    """Last of the process's tests: all it wrote, records and log lines, read back."""
    wait_for(lambda: len(emf.records()) >= 7)
    text = emf.text()
    raw = [line for line in text.splitlines() if '"_aws"' in line]
    assert all(len(line.encode()) < 256 * 1024 for line in raw)  # a log event's limit
    records = emf.records()
    assert len(records) == len(raw) >= 7
    for record in records:
        assert emf_problems(record) == [], record
        assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    assert any(line.get("logger") == "uvicorn.access" for line in emf.lines())
    for secret in (KEY, SECRET, "Who?"):
        assert secret not in text


def test_the_validator_catches_broken_records(emf: Process) -> None:
    assert post(emf, "/chains/summarize/invoke", TEXT, "emf-good").status_code == 200
    good = emf.record(request_id="emf-good")
    Draft202012Validator.check_schema(SCHEMA)  # the schema itself is a valid schema
    assert emf_problems(good) == []

    def broken(change: Callable[[dict[str, Any]], None]) -> list[str]:
        record = copy.deepcopy(good)
        change(record)
        return emf_problems(record)

    directive = ("_aws", "CloudWatchMetrics", 0)

    def at(record: dict[str, Any], *path: Any) -> Any:
        for step in path:
            record = record[step]
        return record

    cases: dict[str, Callable[[dict[str, Any]], None]] = {
        "no _aws": lambda r: r.pop("_aws"),
        "no Timestamp": lambda r: r["_aws"].pop("Timestamp"),
        "Timestamp in seconds as a string": lambda r: r["_aws"].update(Timestamp="1700000000"),
        "no directive": lambda r: r["_aws"].update(CloudWatchMetrics=[]),
        "an AWS/ namespace": lambda r: at(r, *directive).update(Namespace="AWS/Lambda"),
        "a unit CloudWatch lacks": lambda r: at(r, *directive, "Metrics", 0).update(Unit="Tokens"),
        "a storage resolution of 5 s": lambda r: at(r, *directive, "Metrics", 0).update(
            StorageResolution=5
        ),
        "an unknown directive member": lambda r: at(r, *directive).update(Dimension=[["chain"]]),
        "31 dimensions": lambda r: at(r, *directive).update(
            Dimensions=[[f"d{i}" for i in range(31)]]
        ),
        "101 metrics": lambda r: at(r, *directive).update(
            Metrics=[{"Name": f"m{i}", "Unit": "Count"} for i in range(101)]
        ),
        "a dimension with no root member": lambda r: r.pop("model"),
        "a dimension that is not a string": lambda r: r.update(chain=7),
        "a dimension value over 1024 characters": lambda r: r.update(chain="c" * 1025),
        "a metric with no root member": lambda r: r.pop("runs"),
        "a metric that is a string": lambda r: r.update(runs="1"),
        "a metric that is a boolean": lambda r: r.update(runs=True),
        "a metric array of 101 values": lambda r: r.update(runs=[1] * 101),
        "a metric array holding a string": lambda r: r.update(runs=[1, "2"]),
        "a nested metric": lambda r: r.update(runs={"value": 1}),
    }
    for name, change in cases.items():
        assert broken(change), f"{name}: not caught"


def test_a_bad_namespace_stops_start_up(tmp_path: Path) -> None:
    environ = environment(("CHAINSERVE_", "AWS_LAMBDA"), CHAINSERVE_METRICS="emf")
    done = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "0"],
        cwd=REPO,
        env=environ | {"CHAINSERVE_METRICS_NAMESPACE": "AWS/x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "metrics_namespace" in done.stderr and "AWS/ namespaces are AWS's own" in done.stderr
    assert "Traceback" not in done.stderr
    for bad in ("AWS/x", "chain serve!", "", "x" * 256):
        with pytest.raises(ValueError, match="metrics_namespace"):
            Settings(metrics_namespace=bad)


@pytest.mark.parametrize("name", ["template.yaml", "template-image.yaml"])
def test_the_templates_pass_the_settings_and_need_no_new_permission(name: str) -> None:
    off = Template(REPO / name)
    env = off.function()["Properties"]["Environment"]["Variables"]
    assert (env["CHAINSERVE_METRICS"], env["CHAINSERVE_METRICS_NAMESPACE"]) == ("off", "chainserve")
    on = Template(REPO / name, Metrics="emf", MetricsNamespace="shop/chains")
    properties = on.function()["Properties"]
    env = properties["Environment"]["Variables"]
    assert (env["CHAINSERVE_METRICS"], env["CHAINSERVE_METRICS_NAMESPACE"]) == (
        "emf",
        "shop/chains",
    )
    assert Settings(metrics=env["CHAINSERVE_METRICS"]).metrics == "emf"
    # EMF is log lines: the same policy as with metrics off (logs are Lambda's own permission).
    assert properties["Policies"] == off.function()["Properties"]["Policies"]
    # CloudFormation refuses what the app would refuse at start-up (Java regex; the same here).
    parameter = on.raw["Parameters"]["MetricsNamespace"]
    pattern = re.compile(parameter["AllowedPattern"])
    for good in ("chainserve", "shop/chains", "team.a-b_c#1: x"):
        assert pattern.match(good) and Settings(metrics_namespace=good)
    for bad in ("AWS/Lambda", "chain serve!", "", "x" * 256):
        assert not pattern.match(bad), bad
    assert on.raw["Parameters"]["Metrics"]["Default"] == "off"
