"""``chainserve render``, ``run`` and what ``dev`` says: real processes, as users run them."""

import json
import os
import subprocess
from pathlib import Path

import httpx

from service.emulator.server import Emulator
from service.emulator.state import Fault
from tests.helpers import wait_for
from tests.test_cli import CHAINSERVE, free_port, run, running

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def chainserve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHAINSERVE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_render_prints_the_messages(chains_dir: Path) -> None:
    result = run("render", "summarize", "--chains", str(chains_dir), "-i", "text=Cats sleep.")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{MODEL} (bedrock-converse)  temperature=0.2 max_tokens=400\n"
        "\n[system]\nYou are a precise editor. Summarize faithfully, without adding facts.\n"
        "\n[user]\nSummarize the following text in 3 sentences:\n\nCats sleep.\n"
    )


def test_render_json_matches_the_http_route(
    chains_dir: Path, tmp_path: Path, client: httpx.Client
) -> None:
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    (tmp_path / "history.json").write_text(json.dumps(history))
    args = ["--chains", str(chains_dir), "-i", "question=And you?", "--json"]
    result = run("render", "chat", *args, "-i", f"history=@{tmp_path / 'history.json'}")
    assert result.returncode == 0, result.stderr
    expected = client.post(
        "/chains/chat/render", json={"input": {"history": history, "question": "And you?"}}
    ).json()
    assert json.loads(result.stdout) == expected


def test_render_names_bad_inputs_as_flags(chains_dir: Path) -> None:
    result = run("render", "summarize", "--chains", str(chains_dir), "-i", "sentences=two")
    assert result.returncode == 2
    assert "-i text: required; add it" in result.stderr
    assert "-i sentences: input should be a valid integer" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("render", "summarize", "--chains", str(chains_dir), "-i", "text")
    assert result.returncode == 2 and "write -i NAME=VALUE" in result.stderr
    result = run("render", "nope", "--chains", str(chains_dir))
    assert result.returncode == 2 and "no chain named 'nope'" in result.stderr


def test_a_broken_file_does_not_stop_another_chain(tmp_path: Path, chains_dir: Path) -> None:
    (tmp_path / "summarize.yaml").write_text((chains_dir / "summarize.yaml").read_text())
    (tmp_path / "broken.yaml").write_text("model: {}\n")
    result = run("render", "summarize", "--chains", str(tmp_path), "-i", "text=x")
    assert result.returncode == 0, result.stderr
    result = run("render", "broken", "--chains", str(tmp_path))
    assert result.returncode == 1
    assert "no chain named 'broken'" in result.stderr
    assert "broken.yaml:1: model: missing required key 'id'" in result.stderr


def test_run_streams_from_the_emulator_by_default(chains_dir: Path) -> None:
    args = ["--chains", str(chains_dir), "--ttft-ms", "0", "--tokens-per-second", "0"]
    env = {"CHAINSERVE_BEDROCK_ENDPOINT_URL": "http://127.0.0.1:9"}  # ignored without --live
    result = chainserve("run", "translate", *args, "-i", "text=Good morning", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"[emulator] {MODEL} received:\n"
        "system: You are a professional translator. Translate into French. "
        "Reply with the translation only.\nuser: Good morning\n"
    )
    assert "answered by the built-in Bedrock emulator" in result.stderr
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("15 input + 20 output tokens · first token ")
    assert summary.endswith("stop: end_turn")


def test_run_live_uses_the_configured_endpoint(chains_dir: Path, bedrock: Emulator) -> None:
    env = {"CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url}
    result = chainserve(
        "run", "summarize", "--live", "--chains", str(chains_dir), "-i", "text=x", env=env
    )
    assert result.returncode == 0, result.stderr
    assert f"answered by Bedrock ({bedrock.url})" in result.stderr
    assert [call.status for call in bedrock.state.calls] == ["completed"]


def test_run_reports_a_failure_with_its_status(chains_dir: Path, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=3)])
    env = {"CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url, "CHAINSERVE_BEDROCK_MAX_ATTEMPTS": "1"}
    result = chainserve(
        "run", "summarize", "--live", "--chains", str(chains_dir), "-i", "text=x", env=env
    )
    assert result.returncode == 1
    assert result.stdout == f"[emulator] {MODEL} received:\n"  # what came before the failure
    assert "[error] 502: " in result.stderr and "Traceback" not in result.stderr


def test_run_says_a_chat_bedrock_failure_once(chains_dir: Path, bedrock: Emulator) -> None:
    """langchain-aws logs its own traceback for a failed InvokeModel call; run says it once."""
    bedrock.state.add_faults([Fault(kind="throttle")])
    env = {"CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url, "CHAINSERVE_BEDROCK_MAX_ATTEMPTS": "1"}
    args = ["--live", "--chains", str(chains_dir), "-i", "text=x"]
    result = chainserve("run", "translate", *args, env=env)
    assert result.returncode == 1
    assert "[error] 429: Bedrock is throttling" in result.stderr
    assert "Traceback" not in result.stderr and "Error raised by bedrock" not in result.stderr


def test_dev_says_try_once_the_port_is_bound(tmp_path: Path) -> None:
    (tmp_path / "echo.yaml").write_text(
        "model:\n  id: anthropic.claude-3-haiku-20240307-v1:0\nprompt:\n  messages:\n    - user: 'Say {words} {times} times'\n"
        "inputs:\n  words: {}\n  times: {type: integer}\n"
    )
    port = free_port()
    with running(["dev", "--port", str(port), "--chains", str(tmp_path)]) as process:
        wait_for(lambda: process.said("Try: "), timeout=60)
        # Said after binding: the port answers by now.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        [line] = [line for line in process.lines if line.startswith("Try: ")]
        assert process.said(f"Playground: http://127.0.0.1:{port}/playground")
        command = line.removeprefix("Try: ").strip()
        result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0
        assert result.stdout.endswith("user: Say Streams are fun. 1 times")
