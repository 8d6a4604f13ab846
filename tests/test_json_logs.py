"""JSON logs (CHAINSERVE_LOG_FORMAT=json): every line a chainserve process writes parses, and
a run's line carries its fields; nothing secret or prompt-like ever appears — unless
CHAINSERVE_LOG_PROMPTS=true asks for the prompt and reply (never keys, never image bytes).

The servers here are real `chainserve serve` processes (python -m service serve), not in-process
apps: logging set-up is per process, and only a process's own stdout/stderr show that *every*
line (uvicorn's too) is JSON. Lambda is "detected" by giving the process Lambda's environment
variables: there is no Lambda runtime here, and detection reads nothing else.
"""

import base64
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.emulator.server import Emulator
from service.emulator.state import Fault
from service.settings import Settings, on_lambda
from tests import image_files
from tests.helpers import wait_for
from tests.processes import ServeProcess, launcher

KEY = "sk-json-logs-5d1c9e7a2b"
PROMPT = "Zebras-hum-quietly-7319"  # a marker that must never reach a log line
LAMBDA_ID = "8f5c2a1e-1111-4c3b-9d2e-7a6b5c4d3e2f"
LAMBDA_ENV = {"AWS_LAMBDA_FUNCTION_NAME": "chainserve", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}


class Process(ServeProcess):
    """A `chainserve serve` process and the lines it wrote, each parsed as JSON."""

    def lines(self) -> list[dict[str, Any]]:
        """Every line, each parsed as JSON (a line that is not fails the test)."""
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def run_line(self, run_id: str) -> dict[str, Any]:
        wait_for(lambda: run_id in self.text())
        return next(line for line in self.lines() if line.get("run_id") == run_id)


@pytest.fixture(scope="module")
def start(
    bedrock: Emulator, chains_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Process]]:
    with launcher(
        tmp_path_factory,
        Process,
        ("CHAINSERVE_", "AWS_LAMBDA"),
        CHAINSERVE_CHAINS_DIR=str(chains_dir),
        CHAINSERVE_BEDROCK_ENDPOINT_URL=bedrock.url,
        CHAINSERVE_BEDROCK_MAX_ATTEMPTS="1",
        CHAINSERVE_API_KEYS=KEY,
        CHAINSERVE_ACCESS_LOG="true",
    ) as launch:
        yield launch


@pytest.fixture(scope="module")
def on_aws(start: Callable[..., Process]) -> Process:
    """Lambda's environment and no CHAINSERVE_LOG_FORMAT: JSON by default."""
    return start(**LAMBDA_ENV)


def post(process: Process, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        process.url + path, json=body, headers={"x-api-key": KEY, **headers}, timeout=30
    )


def test_an_invoke_line_has_the_runs_fields(on_aws: Process) -> None:
    response = post(
        on_aws,
        "/chains/summarize/invoke",
        {"input": {"text": PROMPT}},
        **{"x-request-id": "req-json-1", "x-amzn-lambda-context": json.dumps(_context())},
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["metadata"]["run_id"]
    line = on_aws.run_line(run_id)
    assert line["level"] == "INFO" and line["logger"] == "chainserve"
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None  # RFC 3339, UTC
    assert line["timestamp"].endswith("Z")
    assert line["request_id"] == "req-json-1"
    assert line["lambda_request_id"] == LAMBDA_ID
    assert line["chain"] == "summarize" and line["route"] == "invoke" and line["status"] == 200
    assert line["model"] == response.json()["metadata"]["model"]
    assert line["input_tokens"] > 0 and line["output_tokens"] > 0
    assert line["stop_reason"] == "end_turn" and isinstance(line["latency_ms"], int)
    assert "ttft_ms" not in line  # not a stream
    assert "fallback_from" not in line and "cache_read_tokens" not in line
    assert line["message"].startswith(f"invoke chain=summarize run_id={run_id} ")

    # uvicorn's access line for the same request: JSON, with the same ids.
    wait_for(lambda: any(row["logger"] == "uvicorn.access" for row in on_aws.lines()))
    access = [row for row in on_aws.lines() if row.get("request_id") == "req-json-1"]
    assert {"chainserve", "uvicorn.access"} <= {row["logger"] for row in access}
    hit = next(row for row in access if row["logger"] == "uvicorn.access")
    assert (hit["method"], hit["path"], hit["status"]) == ("POST", "/chains/summarize/invoke", 200)
    assert hit["lambda_request_id"] == LAMBDA_ID


def test_a_stream_line_has_the_time_to_first_token(on_aws: Process) -> None:
    response = post(on_aws, "/chains/summarize/stream", {"input": {"text": PROMPT}})
    assert response.status_code == 200, response.text
    run_id = response.headers["x-run-id"]
    line = on_aws.run_line(run_id)
    assert line["route"] == "stream" and line["status"] == 200
    assert isinstance(line["ttft_ms"], int) and 0 <= line["ttft_ms"] <= line["latency_ms"]
    assert "lambda_request_id" not in line  # this request had no adapter header


def test_a_failure_line_has_its_status(on_aws: Process, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="throttle", times=1)])
    response = post(
        on_aws, "/chains/summarize/invoke", {"input": {"text": PROMPT}}, **{"x-request-id": "t-1"}
    )
    assert response.status_code == 429, response.text
    wait_for(lambda: any(row.get("status") == 429 for row in on_aws.lines()))
    line = next(row for row in on_aws.lines() if row.get("status") == 429)
    assert line["level"] == "WARNING" and line["request_id"] == "t-1"
    assert line["chain"] == "summarize" and line["route"] == "invoke"
    assert line["model"] and line["run_id"] and "throttl" in line["message"].lower()


def test_no_key_signature_or_prompt_is_ever_logged(on_aws: Process) -> None:
    minted = post(on_aws, "/chains/summarize/stream-url", {"input": {"text": PROMPT}}).json()
    signature = dict(httpx.QueryParams(minted["url"].partition("?")[2]))["chainserve-signature"]
    streamed = httpx.get(minted["url"], headers={"x-request-id": "signed-1"}, timeout=30)
    assert streamed.status_code == 200 and PROMPT in streamed.text  # the model did see it
    bearer = httpx.get(f"{on_aws.url}/chains", headers={"authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200
    wait_for(lambda: any(row.get("path") == "/chains/summarize/stream" for row in on_aws.lines()))

    text = on_aws.text()
    for secret in (KEY, signature, PROMPT):
        assert secret not in text
    assert len(on_aws.lines()) >= 5  # and every line parsed as JSON


def test_text_is_the_default_off_lambda_and_json_can_be_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Settings read the process environment; no Lambda runtime runs here, so its variables stand in.
    for name in (*LAMBDA_ENV, "LAMBDA_TASK_ROOT", "CHAINSERVE_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    assert not on_lambda() and Settings().log_format == "text"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chainserve")
    assert not on_lambda(), "a function name alone could be anyone's shell"
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    assert on_lambda() and Settings().log_format == "json"
    monkeypatch.setenv("CHAINSERVE_LOG_FORMAT", "text")
    assert Settings().log_format == "text"


def test_off_lambda_the_adapter_header_is_not_believed(start: Callable[..., Process]) -> None:
    local = start(CHAINSERVE_LOG_FORMAT="json")
    response = post(
        local,
        "/chains/summarize/invoke",
        {"input": {"text": "hello"}},
        **{"x-amzn-lambda-context": json.dumps(_context())},
    )
    line = local.run_line(response.json()["metadata"]["run_id"])
    assert line["status"] == 200 and "lambda_request_id" not in line
    assert LAMBDA_ID not in local.text()
    startup = [row for row in local.lines() if row["logger"].startswith("uvicorn")]
    assert any("Uvicorn running" in row["message"] for row in startup)


@pytest.fixture(scope="module")
def with_prompts(start: Callable[..., Process]) -> Process:
    return start(CHAINSERVE_LOG_FORMAT="json", CHAINSERVE_LOG_PROMPTS="true")


def test_with_log_prompts_a_run_line_has_its_prompt_and_reply(with_prompts: Process) -> None:
    response = post(with_prompts, "/chains/summarize/invoke", {"input": {"text": PROMPT}})
    assert response.status_code == 200, response.text
    line = with_prompts.run_line(response.json()["metadata"]["run_id"])
    system, user = line["prompt"]
    assert system["role"] == "system" and "summar" in system["parts"][0]["content"].lower()
    assert user["role"] == "user" and PROMPT in user["parts"][0]["content"]
    (reply,) = line["reply"]
    assert reply["role"] == "assistant" and reply["finish_reason"] == "end_turn"
    assert reply["parts"] == [{"type": "text", "content": response.json()["output"]}]
    assert PROMPT not in line["message"]  # a JSON line carries the text once, as fields
    assert KEY not in with_prompts.text()

    streamed = post(with_prompts, "/chains/summarize/stream", {"input": {"text": PROMPT}})
    line = with_prompts.run_line(streamed.headers["x-run-id"])
    assert line["route"] == "stream" and line["reply"][0]["parts"][0]["content"] == streamed.text


def test_with_log_prompts_a_failure_line_has_the_prompt(
    with_prompts: Process, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="throttle", times=1)])
    response = post(
        with_prompts,
        "/chains/summarize/invoke",
        {"input": {"text": PROMPT}},
        **{"x-request-id": "p-429"},
    )
    assert response.status_code == 429
    wait_for(lambda: any(row.get("request_id") == "p-429" for row in with_prompts.lines()))
    line = next(row for row in with_prompts.lines() if row.get("status") == 429)
    assert PROMPT in line["prompt"][-1]["parts"][0]["content"] and "reply" not in line


def test_with_log_prompts_images_are_described_never_sent_as_base64(with_prompts: Process) -> None:
    photo = base64.b64encode(image_files.png(8, 8)).decode()
    body = {"input": {"question": PROMPT, "photo": f"data:image/png;base64,{photo}"}}
    response = post(with_prompts, "/chains/describe_image/invoke", body)
    assert response.status_code == 200, response.text
    line = with_prompts.run_line(response.json()["metadata"]["run_id"])
    parts = [part["content"] for part in line["prompt"][-1]["parts"]]
    assert PROMPT in parts[0] and parts[1].startswith("[image png 8×8, ")
    assert photo not in with_prompts.text()


def test_text_lines_carry_the_prompt_as_json(start: Callable[..., Process]) -> None:
    local = start(CHAINSERVE_LOG_FORMAT="text", CHAINSERVE_LOG_PROMPTS="true")
    response = post(local, "/chains/summarize/invoke", {"input": {"text": PROMPT}})
    run_id = response.json()["metadata"]["run_id"]
    wait_for(lambda: run_id in local.text())
    (line,) = [row for row in local.text().splitlines() if run_id in row]
    prompt = json.loads(line.partition(" prompt=")[2].partition(" reply=")[0])
    assert PROMPT in prompt[-1]["parts"][0]["content"]
    assert json.loads(line.partition(" reply=")[2])[0]["finish_reason"] == "end_turn"


def _context() -> dict[str, Any]:
    """What the Lambda Web Adapter puts in ``x-amzn-lambda-context`` (lambda_runtime's Context)."""
    return {
        "request_id": LAMBDA_ID,
        "deadline": 1_900_000_000_000,
        "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:chainserve",
        "xray_trace_id": None,
        "client_context": None,
        "identity": None,
        "env_config": {"function_name": "chainserve", "memory": 1024, "version": "$LATEST"},
    }
