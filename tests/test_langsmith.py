"""LangSmith tracing (LANGSMITH_TRACING, LANGSMITH_API_KEY, LANGSMITH_ENDPOINT): each run
arrives as a run tree named after its chain, with the request's tags and metadata; an outage
neither slows a request nor holds a stopping server (Ctrl-C).

The servers are real `chainserve serve` processes, not in-process apps: langsmith reads its
settings once per process (cached), and only a process shows how it stops. LangSmith itself
is a stand-in on loopback that speaks the ingest endpoints the real langsmith client uses
(GET /info, POST /runs/multipart, POST /runs/batch), or a blackhole that accepts connections
and never answers.
"""

import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.emulator.server import Emulator
from tests.helpers import wait_for
from tests.processes import ServeProcess, launcher

KEY = "sk-langsmith-test-3b8e1f"  # chainserve's own API key
LANGSMITH_KEY = "lsv2-standin-9c4d2a7e"  # must never reach chainserve's output
PROJECT = "chainserve-tests"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


class StandIn:
    """A LangSmith ingest endpoint on loopback: keeps every run it is sent, merged by id."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.api_keys: set[str] = set()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.startswith("/info"):
                    # Multipart ingest, no compression: what the client then sends is plain.
                    config = {  # langsmith's client reads every one of these
                        "use_multipart_endpoint": True,
                        "size_limit": 100,
                        "size_limit_bytes": 20_971_520,
                        "scale_up_qsize_trigger": 1000,
                        "scale_up_nthreads_limit": 16,
                        "scale_down_nempty_trigger": 4,
                    }
                    flags = {"zstd_compression_enabled": False}
                    body = {"version": "stand-in", "batch_ingest_config": config}
                    return self.reply(200, body | {"instance_flags": flags})
                self.reply(404, {"detail": self.path})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stand_in.lock:
                    stand_in.api_keys.add(self.headers.get("x-api-key") or "")
                if self.path.startswith("/runs/multipart"):
                    stand_in.multipart(self.headers["Content-Type"], body)
                elif self.path.startswith("/runs/batch"):
                    batch = json.loads(body)
                    for op in ("post", "patch"):
                        for run in batch.get(op, []):
                            stand_in.merge(str(run["id"]), run)
                else:
                    return self.reply(404, {"detail": self.path})
                self.reply(202, {})

        return Handler

    def multipart(self, content_type: str, body: bytes) -> None:
        """Parts are named ``post.<id>``, ``patch.<id>`` or ``post.<id>.<field>`` (inputs,
        outputs, extra, events …), each a JSON document."""
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        for part in BytesParser(policy=HTTP).parsebytes(head + body).iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            op, run_id, *field = name.split(".")
            if op not in ("post", "patch"):
                continue  # attachments, feedback
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes), name
            value = json.loads(payload)
            self.merge(run_id, {field[0]: value} if field else value)

    def merge(self, run_id: str, fields: dict[str, Any]) -> None:
        with self.lock:
            run = self.runs.setdefault(run_id, {"id": run_id})
            run.update({k: v for k, v in fields.items() if v is not None or k not in run})

    def trees(self) -> list[dict[str, Any]]:
        """The finished root runs, each with ``children`` (in run order), recursively."""
        with self.lock:
            runs = [dict(run) for run in self.runs.values()]
        for run in runs:
            run["children"] = sorted(
                (child for child in runs if str(child.get("parent_run_id")) == run["id"]),
                key=lambda child: str(child.get("dotted_order")),
            )
        return [run for run in runs if not run.get("parent_run_id") and run.get("end_time")]

    def root(self, name: str) -> dict[str, Any]:
        """The finished tree named ``name``, once its three steps have arrived too."""

        def done() -> bool:
            found = [run for run in self.trees() if run.get("name") == name]
            children = found[0]["children"] if found else []
            # prompt, model, parser: all three, each finished (parts arrive in any order)
            return len(children) == 3 and all(c.get("end_time") for c in children)

        wait_for(done, timeout=20)
        return next(run for run in self.trees() if run.get("name") == name)


class Blackhole:
    """Accepts connections and never answers: LangSmith down in the worst way."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


class Process(ServeProcess):
    def post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers={"x-api-key": KEY}, timeout=30)


@pytest.fixture(scope="module")
def start(
    bedrock: Emulator, chains_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Process]]:
    """``start(endpoint)``: a `chainserve serve` process tracing to LangSmith at ``endpoint``."""
    with launcher(
        tmp_path_factory,
        Process,
        ("CHAINSERVE_", "LANGSMITH_", "LANGCHAIN_", "AWS_LAMBDA"),
        CHAINSERVE_CHAINS_DIR=str(chains_dir),
        CHAINSERVE_BEDROCK_ENDPOINT_URL=bedrock.url,
        CHAINSERVE_BEDROCK_MAX_ATTEMPTS="1",
        CHAINSERVE_API_KEYS=KEY,
        LANGSMITH_TRACING="true",
        LANGSMITH_API_KEY=LANGSMITH_KEY,
        LANGSMITH_PROJECT=PROJECT,
        NO_PROXY="127.0.0.1,localhost",
    ) as launch:
        yield lambda endpoint: launch(LANGSMITH_ENDPOINT=endpoint)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    endpoint = StandIn()
    threading.Thread(target=endpoint.server.serve_forever, daemon=True).start()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


@pytest.fixture(scope="module")
def traced(start: Callable[[str], Process], stand_in: StandIn) -> Process:
    return start(stand_in.url)


def test_an_invoke_arrives_as_a_run_tree_named_after_its_chain(
    traced: Process, stand_in: StandIn
) -> None:
    config = {"tags": ["team-a", "nightly"], "metadata": {"customer": "c-42", "attempt": 2}}
    response = traced.post(
        "/chains/summarize/invoke", {"input": {"text": "Streams are fun."}, "config": config}
    )
    assert response.status_code == 200, response.text
    root = stand_in.root("summarize")

    assert root["run_type"] == "chain" and root["session_name"] == PROJECT
    assert {"team-a", "nightly"} <= set(root["tags"])
    assert root["extra"]["metadata"]["customer"] == "c-42"
    assert root["extra"]["metadata"]["attempt"] == 2
    # The prompt's variables, as the chain ran with them (defaults filled, as text).
    assert root["inputs"] == {"text": "Streams are fun.", "sentences": "3"}
    assert root["outputs"]["output"] == response.json()["output"]
    assert not root.get("error")

    steps = [(child["name"], child["run_type"]) for child in root["children"]]
    assert steps == [
        ("ChatPromptTemplate", "prompt"),
        ("ChatBedrockConverse", "llm"),
        ("StrOutputParser", "parser"),
    ]
    llm = root["children"][1]
    assert llm["extra"]["metadata"]["ls_model_name"] == MODEL
    assert llm["extra"]["metadata"]["customer"] == "c-42"  # metadata reaches every step
    assert {"team-a", "nightly"} <= set(llm["tags"])
    assert "[emulator]" in json.dumps(llm["outputs"])
    assert stand_in.api_keys == {LANGSMITH_KEY}  # the client authenticates with the key set


def test_a_stream_takes_the_requests_run_name(traced: Process, stand_in: StandIn) -> None:
    body = {"input": {"text": "Named runs."}, "config": {"run_name": "weekly-digest"}}
    with httpx.stream(
        "POST", traced.url + "/chains/summarize/stream", json=body, headers={"x-api-key": KEY}
    ) as response:
        assert response.status_code == 200
        response.read()
    root = stand_in.root("weekly-digest")  # the run's name, not the chain's
    assert root["inputs"]["text"] == "Named runs."
    assert [child["run_type"] for child in root["children"]] == ["prompt", "llm", "parser"]


def test_a_batch_traces_each_input(traced: Process, stand_in: StandIn) -> None:
    body = {
        "inputs": [{"text": "first batch item"}, {"text": "second batch item"}],
        "config": {"tags": ["batch-tag"]},
    }
    response = traced.post("/chains/summarize/batch", body)
    assert response.status_code == 200, response.text
    wait_for(
        lambda: sum("batch-tag" in (run.get("tags") or []) for run in stand_in.trees()) == 2,
        timeout=20,
    )
    tagged = [run for run in stand_in.trees() if "batch-tag" in (run.get("tags") or [])]
    assert {run["name"] for run in tagged} == {"summarize"}
    assert sorted(run["inputs"]["text"] for run in tagged) == [
        "first batch item",
        "second batch item",
    ]


def test_the_langsmith_key_never_reaches_the_output(traced: Process, stand_in: StandIn) -> None:
    assert traced.post("/chains/summarize/invoke", {"input": {"text": "x"}}).status_code == 200
    stand_in.root("summarize")
    assert LANGSMITH_KEY not in traced.output.read_text()


def test_an_outage_neither_slows_requests_nor_holds_the_stopping_server(
    start: Callable[[str], Process],
) -> None:
    blackhole = Blackhole()
    try:
        process = start(blackhole.url)
        for i in range(5):
            began = time.monotonic()
            response = process.post("/chains/summarize/invoke", {"input": {"text": f"run {i}"}})
            assert response.status_code == 200, response.text
            # The emulator answers in milliseconds; the first run also creates langsmith's
            # client. A request waiting on LangSmith would take its 10 s connect/read timeout.
            assert time.monotonic() - began < 3.0
        wait_for(lambda: blackhole.held != [], timeout=10)  # the client is trying to send

        # Ctrl-C: uvicorn stops, then the interpreter exits normally, joining non-daemon
        # threads. (On SIGTERM uvicorn re-raises the signal, which ends the process at once.)
        began = time.monotonic()
        process.popen.send_signal(signal.SIGINT)
        process.popen.wait(timeout=30)
        # uvicorn's shutdown plus at most EXIT_FLUSH_SECONDS (2 s) for the queued runs;
        # langsmith's non-daemon sender thread held it for minutes (measured: > 40 s).
        assert time.monotonic() - began < 8.0, process.output.read_text()
        assert process.popen.returncode == 0
    finally:
        blackhole.close()


def test_a_chat_clients_run_is_named_after_its_chain(traced: Process, stand_in: StandIn) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "Hello there."}]}
    response = traced.post("/v1/chat/completions", body)
    assert response.status_code == 200
    root = stand_in.root("chat")  # OpenAI's body has no config: the chain names the run
    assert root["inputs"]["question"] == "Hello there."
