"""Honest statuses: every Bedrock failure before the first chunk gets a real HTTP status;
after it, the stream ends in-band. Driven by emulator faults over real HTTP."""

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.conftest import ServerFactory
from tests.helpers import parse_sse, wait_for

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
BODY = {"input": {"text": "Hello."}}
ROUTES = ["invoke", "stream"]


def post(client: httpx.Client, route: str, accept: str = "text/plain") -> httpx.Response:
    return client.post(f"/chains/summarize/{route}", json=BODY, headers={"Accept": accept})


@pytest.mark.parametrize("route", ROUTES)
def test_throttling_is_429_with_retry_after(
    client: httpx.Client, bedrock: Emulator, route: str
) -> None:
    bedrock.state.add_faults([Fault(kind="throttle")])
    response = post(client, route)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert MODEL in response.json()["message"]


@pytest.mark.parametrize(
    ("kind", "status", "words"),
    [
        ("access_denied", 502, "denied access to model"),
        ("unknown_model", 502, "was not found"),
        ("model_timeout", 504, "timed out"),
        ("unavailable", 503, "unavailable"),
        ("not_ready", 503, "unavailable"),
    ],
)
@pytest.mark.parametrize("route", ROUTES)
def test_bedrock_failures_before_output(
    client: httpx.Client, bedrock: Emulator, route: str, kind: str, status: int, words: str
) -> None:
    bedrock.state.add_faults([Fault(kind=kind)])
    response = post(client, route)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    assert MODEL in body["message"] and words in body["message"]
    assert body["request_id"] == response.headers["x-request-id"]


def test_failure_before_first_chunk_is_a_status_for_sse_too(
    client: httpx.Client, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=0)])
    response = post(client, "stream", accept="text/event-stream")
    assert response.status_code == 502
    assert "modelStreamErrorException" in response.json()["message"]


def test_read_timeout_is_504(make_server: ServerFactory, bedrock: Emulator) -> None:
    server = make_server(bedrock_read_timeout=0.3)
    bedrock.state.add_faults([Fault(kind="slow_first_token", delay_ms=1500)])
    response = httpx.post(f"{server.url}/chains/summarize/stream", json=BODY, timeout=10)
    assert response.status_code == 504
    assert f"model {MODEL} did not answer in time" in response.json()["message"]


@pytest.fixture
def broken_library(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Make langchain-aws fail as a bug of its own would, after ``n`` chunks of text: an
    exception no mapping knows (the emulator's faults all map to statuses)."""
    from langchain_aws import ChatBedrockConverse

    original = ChatBedrockConverse._stream

    def fail_after(n: int) -> None:
        def stream(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            sent = 0
            for chunk in original(self, *args, **kwargs):
                if chunk.text and sent == n:
                    raise RuntimeError("a bug in the library, account 123456789012")
                sent += bool(chunk.text)
                yield chunk

        monkeypatch.setattr(ChatBedrockConverse, "_stream", stream)

    return fail_after


def test_unexpected_failure_is_500_without_details(
    client: httpx.Client, broken_library: Callable[[int], None]
) -> None:
    broken_library(0)
    response = post(client, "stream")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "a bug" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("chain", ["summarize", "translate"])  # ConverseStream, InvokeModel…Stream
def test_corrupt_event_stream_is_502(client: httpx.Client, bedrock: Emulator, chain: str) -> None:
    """A frame that fails its checksum (botocore's ChecksumMismatch) is Bedrock's failure."""
    bedrock.state.add_faults([Fault(kind="stream_corrupt", after_chunks=0)])
    response = client.post(f"/chains/{chain}/stream", json=BODY)
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["code"] == "bedrock_stream_corrupt"
    assert body["message"] == f"Bedrock sent a corrupt event stream for model {MODEL}"
    assert body["request_id"] == response.headers["x-request-id"]


def test_corrupt_event_stream_after_first_chunk_in_band_with_request_id(
    client: httpx.Client, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="stream_corrupt", after_chunks=2)] * 2)
    sse = post(client, "stream", accept="text/event-stream")
    name, error = parse_sse(sse.text)[-1]
    assert name == "error"
    assert error == {
        "status_code": 502,
        "code": "bedrock_stream_corrupt",
        "message": f"Bedrock sent a corrupt event stream for model {MODEL}",
        "request_id": sse.headers["x-request-id"],
    }
    text = post(client, "stream")
    assert text.text.endswith(
        f"\n[error] 502: Bedrock sent a corrupt event stream for model {MODEL} "
        f"(request_id: {text.headers['x-request-id']})\n"
    )


def test_error_after_first_chunk_ends_text_in_band(client: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=4)])
    response = post(client, "stream")
    assert response.status_code == 200  # the headers went with the first chunk
    text, _, last = response.text.rstrip("\n").rpartition("\n")
    assert len(text.split()) == 4
    assert last.startswith("[error] 502: Bedrock failed for model")
    assert "modelStreamErrorException" in last


def test_error_after_first_chunk_ends_sse_in_band(client: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_throttle", after_chunks=3)])
    response = post(client, "stream", accept="text/event-stream")
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["metadata", "data", "data", "data", "error"]
    error = events[-1][1]
    assert error["status_code"] == 429
    assert MODEL in error["message"]


def test_unexpected_error_after_first_chunk(
    client: httpx.Client, broken_library: Callable[[int], None]
) -> None:
    broken_library(2)
    response = post(client, "stream", accept="text/event-stream")
    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["metadata", "data", "data", "error"]
    assert events[-1][1] == {
        "status_code": 500,
        "code": "internal_error",
        "message": "internal error; the server log has the details under this request id",
        "request_id": response.headers["x-request-id"],
    }


def test_throttling_is_retried_when_attempts_allow(
    make_server: ServerFactory, bedrock: Emulator
) -> None:
    server = make_server(bedrock_max_attempts=3)
    bedrock.state.add_faults([Fault(kind="throttle")])
    response = httpx.post(f"{server.url}/chains/summarize/invoke", json=BODY, timeout=30)
    assert response.status_code == 200
    assert [call.status for call in bedrock.state.calls] == ["failed", "completed"]


def test_over_capacity_is_503(make_server: ServerFactory, bedrock: Emulator) -> None:
    server = make_server(max_concurrency=1)
    bedrock.state.pace = Pace(tokens_per_second=50, reply_tokens=50)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        with http.stream("POST", "/chains/summarize/stream", json=BODY) as first:
            next(first.iter_text())
            second = http.post("/chains/summarize/stream", json=BODY)
            assert second.status_code == 503
            assert second.headers["retry-after"] == "2"
            assert "busy" in second.json()["message"]
        wait_for(lambda: http.get("/healthz").json()["runs_active"] == 0)
        assert http.post("/chains/summarize/invoke", json=BODY).status_code == 200


def test_account_ids_are_redacted() -> None:
    from botocore.exceptions import ClientError

    from service.runs.errors import classify

    exc = ClientError(
        {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": "User: arn:aws:sts::123456789012:assumed-role/r is not authorized",
            }
        },
        "ConverseStream",
    )
    error = classify(exc, model_id=MODEL, retry_after=1)
    assert error.status == 502 and "123456789012" not in error.message


def test_failures_are_logged_with_request_id(
    client: httpx.Client, bedrock: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="chainserve")
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=2)])
    response = post(client, "stream")
    request_id = response.headers["x-request-id"]
    [record] = [r for r in caplog.records if request_id in r.getMessage() and r.levelname != "INFO"]
    assert record.levelname == "WARNING"
    message = record.getMessage()
    assert "chain=summarize" in message and "after_first_chunk=true" in message
    assert "status=502" in message


def test_unexpected_failures_log_the_traceback(
    client: httpx.Client, broken_library: Callable[[int], None], caplog: pytest.LogCaptureFixture
) -> None:
    broken_library(0)
    response = post(client, "stream")
    request_id = response.json()["request_id"]
    [record] = [r for r in caplog.records if request_id in r.getMessage() and r.levelname != "INFO"]
    assert record.levelname == "ERROR"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_chat_bedrock_failures_log_one_line_not_a_traceback(
    client: httpx.Client, bedrock: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """langchain-aws logs each failed InvokeModel call with a traceback of its own
    ("Error raised by bedrock service"); the log gets the run's one line, ours."""
    caplog.set_level("INFO")
    for route in ROUTES:
        bedrock.state.add_faults([Fault(kind="throttle")])
        response = client.post(f"/chains/translate/{route}", json=BODY)
        assert response.status_code == 429
        request_id = response.headers["x-request-id"]
        [line] = [r for r in caplog.records if request_id in r.getMessage()]
        assert line.name == "chainserve" and line.levelname == "WARNING" and not line.exc_info
    assert bedrock.state.calls and all(call.status == "failed" for call in bedrock.state.calls)
    loud = [r for r in caplog.records if r.name.startswith("langchain_aws") and r.levelno >= 30]
    assert loud == []
    assert [r for r in caplog.records if r.exc_info] == []


def test_only_that_langchain_aws_record_is_dropped(client: httpx.Client) -> None:
    logger = logging.getLogger("langchain_aws.llms.bedrock")

    def record(message: str, exc_info: Any) -> logging.LogRecord:
        return logger.makeRecord(logger.name, logging.ERROR, "f", 1, message, (), exc_info)

    failure = (ValueError, ValueError("x"), None)
    assert not logger.filter(record("Error raised by bedrock service", failure))
    assert logger.filter(record("Error raised by bedrock service", None))
    assert logger.filter(record("something else went wrong", failure))


def test_timeout_after_first_chunk_ends_in_band(
    make_server: ServerFactory, bedrock: Emulator
) -> None:
    server = make_server(bedrock_read_timeout=0.3)
    bedrock.state.add_faults([Fault(kind="stall", after_chunks=2, delay_ms=1500)])
    response = httpx.post(
        f"{server.url}/chains/summarize/stream",
        json=BODY,
        headers={"Accept": "text/event-stream"},
        timeout=10,
    )
    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["metadata", "data", "data", "error"]
    assert events[-1][1]["status_code"] == 504


def test_batch_larger_than_the_cap_runs_within_it(
    make_server: ServerFactory, bedrock: Emulator
) -> None:
    server = make_server(max_concurrency=2)
    bedrock.state.pace = Pace(ttft_ms=100)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for size in (3, 6):  # more inputs than the cap: run two at a time, not 503
            inputs = [{"text": str(i)} for i in range(size)]
            response = http.post("/chains/summarize/batch", json={"inputs": inputs})
            assert response.status_code == 200, response.text
            outputs = response.json()["output"]
            assert [o.split()[-1] for o in outputs] == [str(i) for i in range(size)]
            assert bedrock.state.peak_concurrency() == 2
            bedrock.state.reset()
            bedrock.state.pace = Pace(ttft_ms=100)


def test_batch_runs_in_the_slots_that_are_free(
    make_server: ServerFactory, bedrock: Emulator
) -> None:
    server = make_server(max_concurrency=2)
    slow, quick = Pace(tokens_per_second=20, reply_tokens=100), Pace(ttft_ms=50)
    inputs = [{"text": str(i)} for i in range(3)]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        bedrock.state.pace = slow
        with http.stream("POST", "/chains/summarize/stream", json=BODY) as held:
            held_text = held.iter_text()  # kept: a dropped iterator closes the connection
            next(held_text)  # one slot taken: the batch gets the other one
            bedrock.state.pace = quick
            response = http.post("/chains/summarize/batch", json={"inputs": inputs})
            assert response.status_code == 200, response.text
            assert len(response.json()["output"]) == 3
            assert bedrock.state.peak_concurrency() == 2  # the stream and one batch call
            bedrock.state.pace = slow
            with http.stream("POST", "/chains/summarize/stream", json=BODY) as other:
                other_text = other.iter_text()
                next(other_text)
                full = http.post("/chains/summarize/batch", json={"inputs": inputs})
                assert full.status_code == 503  # no slot free at all: busy, as for any run
                assert "server busy: 2 of 2" in full.json()["message"]
        wait_for(lambda: http.get("/healthz").json()["runs_active"] == 0)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        ("ConnectionClosedError", 502),
        ("SSLError", 502),
        ("ResponseStreamingError", 502),
        ("CredentialRetrievalError", 502),
        ("EndpointConnectionError", 502),
        ("NoCredentialsError", 502),
        ("ConnectTimeoutError", 504),
    ],
)
def test_botocore_failures_that_the_emulator_cannot_cause(exc: str, status: int) -> None:
    """Network and credential failures, raised as botocore raises them (no real part can
    make a TLS or credential-provider failure here), mapped without a 500."""
    from botocore import exceptions

    from service.runs.errors import classify

    error = getattr(exceptions, exc)(
        endpoint_url="https://bedrock", error="x", provider="p", error_msg="m"
    )
    assert classify(error, model_id=MODEL, retry_after=1).status == status


@pytest.mark.parametrize("route", ROUTES)
def test_input_bedrock_refuses_is_422(client: httpx.Client, bedrock: Emulator, route: str) -> None:
    """A conversation that starts with the assistant passes our validation, but Bedrock
    refuses it (ValidationException): the input is at fault, so 422 with Bedrock's reason."""
    body = {"input": {"history": [{"role": "assistant", "content": "Hi"}], "question": "Hello"}}
    response = client.post(f"/chains/chat/{route}", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["code"] == "model_rejected_input" and error["errors"][0]["field"] == "input"
    assert "must start with a user message" in error["message"]
