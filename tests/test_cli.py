"""The ``chainserve`` command, run as users run it: real processes on loopback ports."""

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from service.emulator.server import Emulator
from service.emulator.state import Fault
from tests.helpers import wait_for

CHAINSERVE = [sys.executable, "-m", "service"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Process(subprocess.Popen[str]):
    """A running command whose output lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        super().__init__(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.stdout is not None
        for line in self.stdout:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))


@contextmanager
def running(args: list[str], env: dict[str, str] | None = None) -> Iterator[Process]:
    process = Process([*CHAINSERVE, *args], {**os.environ, **(env or {})})
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_ready(url: str, process: Process) -> None:
    def ready() -> bool:
        assert process.poll() is None, "".join(process.lines)
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.TransportError:
            return False

    wait_for(ready, timeout=60)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHAINSERVE, *args], capture_output=True, text=True, timeout=60)


def test_validate_ok(chains_dir: Path) -> None:
    result = run("validate", str(chains_dir))
    assert result.returncode == 0
    assert (
        "6 chains OK (chat, describe_image, extract, long, summarize, translate)" in result.stdout
    )


def test_validate_reports_file_and_line(tmp_path: Path, chains_dir: Path) -> None:
    text = (chains_dir / "summarize.yaml").read_text().replace("temperature", "temprature")
    (tmp_path / "summarize.yaml").write_text(text)
    result = run("validate", str(tmp_path))
    assert result.returncode == 1
    assert "summarize.yaml:7: model.params: unknown key 'temprature'" in result.stderr
    assert "(did you mean 'temperature'?)" in result.stderr


def test_validate_reports_model_build_errors(tmp_path: Path, chains_dir: Path) -> None:
    text = (chains_dir / "summarize.yaml").read_text()
    (tmp_path / "summarize.yaml").write_text(
        text.replace("  params:", "  region: eu west 1\n  params:")
    )
    result = run("validate", str(tmp_path))
    assert result.returncode == 1
    assert (
        "summarize.yaml:3: model: cannot build: Provided region_name 'eu west 1'" in result.stderr
    )


def test_inference_profile_arn_builds_without_calling_aws(tmp_path: Path) -> None:
    """With base_model given, langchain-aws need not ask Bedrock (GetInferenceProfile)."""
    arn = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc123"
    (tmp_path / "profiled.yaml").write_text(
        f"model:\n  id: {arn}\n  base_model: anthropic.claude-3-haiku-20240307-v1:0\n"
        "prompt:\n  messages:\n    - user: hello\n"
    )
    result = run("validate", str(tmp_path))  # no network here: a call would fail
    assert result.returncode == 0, result.stderr
    arns = run("models", "--arns", str(tmp_path)).stdout.strip().split(",")
    assert arns == [
        arn,
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
    ]


def test_schema_describes_chain_files() -> None:
    result = run("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "chainserve chain file"
    assert schema["additionalProperties"] is False
    assert {"name", "description", "model", "prompt", "inputs"} <= set(schema["properties"])


def test_help_lists_commands() -> None:
    result = run("--help")
    for command in ("serve", "dev", "validate", "emulator", "schema"):
        assert command in result.stdout


def test_serve_streams_from_bedrock_endpoint(chains_dir: Path, bedrock: Emulator) -> None:
    port = free_port()
    env = {"CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url}
    args = ["serve", "--port", str(port), "--chains", str(chains_dir)]
    with running(args, env) as process:
        wait_ready(f"http://127.0.0.1:{port}/healthz", process)
        response = httpx.post(
            f"http://127.0.0.1:{port}/chains/summarize/stream",
            json={"input": {"text": "From a process."}},
        )
        assert response.status_code == 200
        assert response.text.endswith("From a process.")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_sees_tokens_as_they_come(chains_dir: Path) -> None:
    """``chainserve dev`` and the README's ``curl -N``: output arrives in many pieces."""
    port = free_port()
    args = ["dev", "--port", str(port), "--chains", str(chains_dir), "--tokens-per-second", "50"]
    with running(args) as process:
        wait_ready(f"http://127.0.0.1:{port}/healthz", process)
        curl = subprocess.Popen(
            [
                "curl",
                "-sN",
                f"http://127.0.0.1:{port}/chains/summarize/stream",
                "-H",
                "Content-Type: application/json",
                "-d",
                '{"input": {"text": "Streams are fun."}}',
            ],
            stdout=subprocess.PIPE,
        )
        # read1 (whatever has arrived) is on the BufferedReader Popen gives by default.
        assert isinstance(curl.stdout, io.BufferedReader)
        reads = []
        while piece := curl.stdout.read1(65536):
            reads.append(piece)
        curl.wait(timeout=30)
    text = b"".join(reads).decode()
    assert text.endswith("Streams are fun.")
    assert len(reads) > 5  # tokens reached curl one by one, not in one final write


def test_dev_reloads_chain_files(tmp_path: Path, chains_dir: Path) -> None:
    for path in chains_dir.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(["dev", "--port", str(port), "--chains", str(tmp_path)]) as process:
        wait_ready(f"{base}/healthz", process)
        summarize = tmp_path / "summarize.yaml"
        original = summarize.read_text()

        def description() -> str:
            return str(httpx.get(f"{base}/chains/summarize").json()["description"])

        summarize.write_text(original.replace("Summarize a text", "Condense a text"))
        wait_for(lambda: description().startswith("Condense"), timeout=20)
        # A broken edit keeps the file's last good version serving; other files load.
        summarize.write_text(original.replace("temperature", "temprature"))
        (tmp_path / "echo.yaml").write_text(original.replace("Summarize a text", "Echo"))
        wait_for(lambda: process.said("unknown key 'temprature'"), timeout=20)
        assert process.said("summarize.yaml:7: model.params: unknown key 'temprature'")
        assert description().startswith("Condense")
        wait_for(lambda: httpx.get(f"{base}/chains/echo").status_code == 200, timeout=20)
        # A model that cannot be built is reported the same way, and watching goes on.
        summarize.write_text(original.replace("  params:", "  region: eu west 1\n  params:"))
        wait_for(lambda: process.said("cannot build"), timeout=20)
        summarize.write_text(original.replace("Summarize a text", "Shorten a text"))
        wait_for(lambda: description().startswith("Shorten"), timeout=20)


def test_dev_starts_with_broken_files_and_prints_their_errors(
    tmp_path: Path, chains_dir: Path
) -> None:
    original = (chains_dir / "summarize.yaml").read_text()
    (tmp_path / "summarize.yaml").write_text(original)
    (tmp_path / "draft.yaml").write_text(original.replace("  params:", "  params:\n\ttop_p: 1"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(["dev", "--port", str(port), "--chains", str(tmp_path)]) as process:
        wait_ready(f"{base}/healthz", process)
        draft = tmp_path / "draft.yaml"
        tab_error = f"{draft}:7: a tab in the indentation: indent with spaces, not tabs"
        wait_for(lambda: process.said(tab_error))  # printed at start, file:line first
        health = httpx.get(f"{base}/healthz").json()
        assert (health["status"], health["chains"]) == ("degraded", 1)
        assert [error["text"] for error in health["errors"]] == [tab_error]

        # Droppings change nothing; the fixed file reloads and is reported as fixed.
        for name in (".#draft.yaml", "draft.yaml~", ".draft.yaml.swp", "#draft.yaml#"):
            (tmp_path / name).write_text("model: [")
        draft.write_text(original.replace("Summarize a text", "Draft"))
        wait_for(lambda: process.said("reloaded draft.yaml; serving draft, summarize; 0 errors"))
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        draft.unlink()
        wait_for(lambda: process.said("reloaded draft.yaml (removed); serving summarize; 0 errors"))
    output = "".join(process.lines).split("Shutting down")[0]  # what dev said while serving
    assert "Traceback" not in output, output
    assert "#draft" not in output and "draft.yaml~" not in output and ".swp" not in output


def test_shutdown_does_not_wait_for_a_stalled_model(chains_dir: Path, bedrock: Emulator) -> None:
    port = free_port()
    env = {"CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url}
    with running(["serve", "--port", str(port), "--chains", str(chains_dir)], env) as process:
        wait_ready(f"http://127.0.0.1:{port}/healthz", process)
        bedrock.state.add_faults([Fault(kind="stall", after_chunks=2, delay_ms=60_000)])
        url = f"http://127.0.0.1:{port}/chains/summarize/stream"
        with httpx.stream("POST", url, json={"input": {"text": "x"}}, timeout=90) as response:
            next(response.iter_raw())
            process.send_signal(signal.SIGINT)
            process.wait(timeout=20)  # not the minute the model stalls for
    # The emulator notices the closed connection on its own loop, a moment later.
    wait_for(lambda: bedrock.state.calls[0].status == "disconnected")
    assert len(bedrock.state.calls) == 1


def test_serve_refuses_broken_chains(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("model: {}\nprompt: {messages: []}\n")
    result = run("serve", "--port", str(free_port()), "--chains", str(tmp_path))
    assert result.returncode == 1
    assert "bad.yaml:1: model: missing required key 'id'" in result.stderr


def test_emulator_command_with_fault() -> None:
    port = free_port()
    args = ["emulator", "--port", str(port), "--fault", "throttle"]
    with running(args) as process:
        wait_ready(f"http://127.0.0.1:{port}/_emulator/state", process)
        runtime = boto3.client("bedrock-runtime", endpoint_url=f"http://127.0.0.1:{port}")
        with pytest.raises(ClientError) as caught:
            runtime.converse(modelId="m", messages=[{"role": "user", "content": [{"text": "x"}]}])
        assert caught.value.response["Error"]["Code"] == "ThrottlingException"


def test_bad_setting_is_a_clear_error() -> None:
    result = subprocess.run(
        [*CHAINSERVE, "serve", "--port", str(free_port())],
        env={**os.environ, "CHAINSERVE_MAX_CONCURRENCY": "lots"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid settings" in result.stderr and "max_concurrency" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [["schema"], ["models", "--arns"], ["run", "summarize", "-i", "text=x", "--ttft-ms", "0"]],
)
def test_a_closed_pipe_ends_quietly(command: list[str]) -> None:
    """``chainserve schema | head``: the reader is gone before the output is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: every write fails with EPIPE
    with os.fdopen(write_end, "wb") as stdout:
        result = subprocess.run(
            [*CHAINSERVE, *command], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60
        )
    # No BrokenPipeError traceback, no "Exception ignored", no error line: only what the
    # command says on stderr anyway (run: who answers).
    said = [line for line in result.stderr.splitlines() if "answered by" not in line]
    assert said == []
    assert result.returncode == 141  # as a command that SIGPIPE ended
