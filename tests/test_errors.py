"""Honest statuses: every Bedrock failure before the first chunk gets a real HTTP status;
after it, the stream ends in-band. Driven by emulator faults over real HTTP."""

import httpx
import pytest

from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
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


def test_read_timeout_is_504(make_server, bedrock: Emulator) -> None:
    server = make_server(bedrock_read_timeout=0.3)
    bedrock.state.add_faults([Fault(kind="slow_first_token", delay_ms=1500)])
    response = httpx.post(f"{server.url}/chains/summarize/stream", json=BODY, timeout=10)
    assert response.status_code == 504
    assert f"model {MODEL} did not answer in time" in response.json()["message"]


def test_unexpected_failure_is_500_without_details(client: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_corrupt", after_chunks=0)])
    response = post(client, "stream")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Checksum" not in response.text and "Traceback" not in response.text


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


def test_unexpected_error_after_first_chunk(client: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_corrupt", after_chunks=2)])
    events = parse_sse(post(client, "stream", accept="text/event-stream").text)
    assert events[-1] == (
        "error",
        {
            "status_code": 500,
            "message": "internal error; the server log has the details under this request id",
        },
    )


def test_throttling_is_retried_when_attempts_allow(make_server, bedrock: Emulator) -> None:
    server = make_server(bedrock_max_attempts=3)
    bedrock.state.add_faults([Fault(kind="throttle")])
    response = httpx.post(f"{server.url}/chains/summarize/invoke", json=BODY, timeout=30)
    assert response.status_code == 200
    assert [call.status for call in bedrock.state.calls] == ["failed", "completed"]


def test_over_capacity_is_503(make_server, bedrock: Emulator) -> None:
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
    client: httpx.Client, bedrock: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    bedrock.state.add_faults([Fault(kind="stream_corrupt", after_chunks=0)])
    response = post(client, "stream")
    request_id = response.json()["request_id"]
    [record] = [r for r in caplog.records if request_id in r.getMessage() and r.levelname != "INFO"]
    assert record.levelname == "ERROR"
    assert record.exc_info is not None and "Checksum" in type(record.exc_info[1]).__name__


def test_timeout_after_first_chunk_ends_in_band(make_server, bedrock: Emulator) -> None:
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


def test_batch_counts_each_concurrent_call(make_server, bedrock: Emulator) -> None:
    server = make_server(max_concurrency=2)
    inputs = [{"text": str(i)} for i in range(6)]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        too_many = http.post("/chains/summarize/batch", json={"inputs": inputs})
        assert too_many.status_code == 503  # six calls at once would pass the cap of two
        bedrock.state.pace = Pace(ttft_ms=100)
        limited = http.post(
            "/chains/summarize/batch", json={"inputs": inputs, "config": {"max_concurrency": 2}}
        )
        assert limited.status_code == 200
        assert len(limited.json()["output"]) == 6
    assert len(bedrock.state.calls) == 6
    assert bedrock.state.peak_concurrency() == 2


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
