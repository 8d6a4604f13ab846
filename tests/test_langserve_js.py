"""LangChain.js's ``RemoteRunnable`` (npm ``@langchain/core``, ``runnables/remote``) against
chainserve's LangServe routes.

``tests/js/langserve_remote.mjs`` drives the real package against a real server (with an API
key, sent as the client's ``options.headers``) and the emulator, and reports what the client
returned or threw as JSON; the checks are here, against ``/invoke``'s output for the same
input. Needs Node and ``tests/js/node_modules`` (``make test`` runs ``npm ci`` there); skipped
where Node is absent, except in CI (``CHAINSERVE_REQUIRE_NODE=1``), as ``test_emulator_js.py``.
"""

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.emulator.server import Emulator
from tests.conftest import ServerFactory

JS = Path(__file__).resolve().parent / "js"
CLIENT = JS / "node_modules" / "@langchain" / "core" / "dist" / "runnables" / "remote.js"
NODE = shutil.which("node")
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEY = "js-client-key"
TEXT = {"text": "Cats sleep."}
HISTORY = "user: My name is Ada.\nassistant: Hello Ada!\nuser: Who am I?"

if NODE is None and os.environ.get("CHAINSERVE_REQUIRE_NODE") != "1":
    pytest.skip("no node on this machine", allow_module_level=True)


class Run:
    """One run of the script: what each case observed, what it printed to stderr, and /invoke's
    outputs to compare with."""

    def __init__(self, results: dict[str, dict[str, Any]], stderr: str, http: httpx.Client):
        self.results = results
        self.stderr = stderr
        self.http = http

    def value(self, case: str) -> Any:
        observed = self.results[case]
        assert "error" not in observed, observed["error"]
        return observed["value"]

    def error(self, case: str) -> tuple[dict[str, Any], list[Any]]:
        """The error a case threw, and what its stream gave before."""
        observed = self.results[case]
        assert "value" not in observed, f"{case} did not fail: {observed['value']!r}"
        error: dict[str, Any] = observed["error"]
        assert error["name"] == "Error"
        received: list[Any] = observed["received"]
        return error, received

    def invoke(self, chain: str, **inputs: Any) -> str:
        response = self.http.post(f"/chains/{chain}/invoke", json={"input": inputs})
        assert response.status_code == 200, response.text
        output: str = response.json()["output"]
        return output


@pytest.fixture(scope="module")
def run(make_server: ServerFactory, bedrock: Emulator) -> Iterator[Run]:
    assert NODE is not None, "CHAINSERVE_REQUIRE_NODE=1 but node is not on the PATH"
    assert CLIENT.is_file(), "@langchain/core is not installed: cd tests/js && npm ci (make test)"
    server = make_server(api_keys=[KEY])
    bedrock.state.reset()  # the script queues its own faults, each just before its call
    # No LangSmith tracing from a developer's environment: it would call out to the network.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGCHAIN_", "LANGSMITH_"))}
    done = subprocess.run(
        [NODE, str(JS / "langserve_remote.mjs"), server.url, bedrock.url, KEY],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    with httpx.Client(base_url=server.url, headers={"x-api-key": KEY}, timeout=30) as http:
        yield Run(json.loads(done.stdout), done.stderr, http)


def status_error(message: str) -> tuple[int, dict[str, Any]]:
    """The client's ``Error("<status> Error: <body>")`` (invoke, batch, streamLog,
    streamEvents before the stream starts) → status, our JSON error body."""
    found = re.fullmatch(r"(\d{3}) Error: (.*)", message, re.DOTALL)
    assert found, message
    body: dict[str, Any] = json.loads(found[2])
    assert body["status_code"] == int(found[1])
    return int(found[1]), body


def test_invoke(run: Run) -> None:
    output = run.value("invoke")
    assert output == run.invoke("summarize", **TEXT)
    assert output.startswith(f"[emulator] {MODEL} received:") and output.endswith("Cats sleep.")


def test_messages_from_langchain_objects(run: Run) -> None:
    """HumanMessage/AIMessage, serialized by the client ({type: "human", content, ...})."""
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada!"},
    ]
    output = run.value("chatMessages")
    assert output == run.invoke("chat", history=history, question="Who am I?")
    assert HISTORY in output


def test_batch(run: Run) -> None:
    assert run.value("batch") == [
        run.invoke("summarize", text="one"),
        run.invoke("summarize", text="two", sentences=1),
    ]


def test_stream(run: Run) -> None:
    """The client sends ``Accept: */*``; its body (with ``kwargs``) gets SSE, as LangServe's."""
    chunks = run.value("stream")
    assert len(chunks) > 1 and "".join(chunks) == run.invoke("summarize", **TEXT)


def test_stream_with_accept_event_stream(run: Run) -> None:
    """With ``Accept: text/event-stream`` in the client's headers, /stream is SSE."""
    chunks = run.value("streamSse")
    assert len(chunks) > 1 and all(isinstance(chunk, str) and chunk for chunk in chunks)
    assert "".join(chunks) == run.invoke("summarize", **TEXT)


def test_stream_log(run: Run) -> None:
    log = run.value("streamLog")
    output = run.invoke("summarize", **TEXT)
    assert log["patches"] > 1 and log["logClass"] == "RunLog"  # the client's own concat
    assert log["final_output"] == output == "".join(log["streamed_output"])
    assert set(log["logs"]) == {"ChatPromptTemplate", "ChatBedrockConverse", "StrOutputParser"}
    model = log["logs"]["ChatBedrockConverse"]
    assert model["type"] == "llm"
    chunks = model["streamed_output"]
    assert chunks and {chunk["class"] for chunk in chunks} == {"AIMessageChunk"}
    assert "".join(chunk["text"] for chunk in chunks) == output


def test_stream_events_v2(run: Run) -> None:
    events = run.value("streamEvents")
    output = run.invoke("summarize", **TEXT)
    kinds = [event["event"] for event in events]
    assert kinds[0] == "on_chain_start" and kinds[-1] == "on_chain_end"
    for kind in ("on_prompt_start", "on_prompt_end", "on_chat_model_start", "on_parser_start"):
        assert kind in kinds
    assert kinds.index("on_prompt_end") < kinds.index("on_chat_model_start")
    [start] = [e for e in events if e["event"] == "on_chat_model_start"]
    [messages] = start["input"]  # revived by the client as message objects
    assert [m["class"] for m in messages] == ["SystemMessage", "HumanMessage"]
    assert messages[1]["text"].endswith("Cats sleep.")
    chunks = [e["chunk"] for e in events if e["event"] == "on_chat_model_stream"]
    assert len(chunks) > 1 and {chunk["class"] for chunk in chunks} == {"AIMessageChunk"}
    assert "".join(chunk["text"] for chunk in chunks) == output
    assert events[-1]["output"] == output


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("badInput", 422, "invalid_input"),
        ("noKey", 401, "unauthorized"),
        ("throttledInvoke", 429, "throttled"),
        ("throttledStreamEvents", 429, "throttled"),  # before the first token: the status
    ],
)
def test_status_errors_are_the_clients_errors(run: Run, case: str, status: int, code: str) -> None:
    error, received = run.error(case)
    got, body = status_error(error["message"])
    assert (got, body["code"]) == (status, code)
    assert received == []
    if case == "badInput":
        fields = [item["field"] for item in body["errors"]]
        assert fields == ["input.text", "input.nope"]
        assert (
            body["message"] == "input.text: required; add it; input.nope: unknown field; remove it"
        )
    if case.startswith("throttled"):
        assert body["message"].startswith(f"Bedrock is throttling model {MODEL}")


def test_a_stream_refused_before_its_first_token(run: Run) -> None:
    """stream() raises its own message: our status and the body's message."""
    error, received = run.error("throttledStream")
    assert error["message"].startswith(
        f"RemoteRunnable call failed with status code 429: Bedrock is throttling model {MODEL}"
    )
    assert received == []


@pytest.mark.parametrize("case", ["brokenStream", "brokenStreamEvents"])
def test_a_failure_mid_stream_is_the_clients_error(run: Run, case: str) -> None:
    """After the first token the status is sent: the stream ends with ``event: error``, which
    the client raises with our error body as the message. What came before it is a beginning
    of the full stream — or less: the client drops what it parsed but had not yet handed out
    when the error arrives in the same read, so how much is seen depends on the reads."""
    error, received = run.error(case)
    body = json.loads(error["message"])
    assert (body["status_code"], body["code"]) == (502, "bedrock_error")
    assert "modelStreamErrorException" in body["message"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    if case == "brokenStream":  # two tokens were sent before the failure
        full = run.value("streamSse")
        assert len(received) <= 2 and received == full[: len(received)]
    else:
        full = [event["event"] for event in run.value("streamEvents")]
        assert received == full[: len(received)] and "on_chain_end" not in received


def test_the_client_printed_nothing_to_stderr(run: Run) -> None:
    """LangChain.js reports failing callbacks and its own warnings with console.warn/error."""
    assert run.stderr == ""
