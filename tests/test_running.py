"""Request bodies, as every protocol's routes read them (service/protocols/running.py):
JSON only, size-limited, and a client that leaves mid-upload."""

import httpx
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from tests.conftest import ServerFactory


def test_body_over_limit_is_413(make_server: ServerFactory) -> None:
    server = make_server(max_body_bytes=2048)
    response = httpx.post(
        f"{server.url}/chains/summarize/invoke", json={"input": {"text": "x" * 5000}}
    )
    assert response.status_code == 413
    assert "larger than 2048 bytes" in response.json()["message"]


# -- Content-Type: JSON only ------------------------------------------------------------------

JSON_BODY = b'{"input": {"text": "x"}}'


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",  # what a cross-site form or fetch() sends without a CORS preflight
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",  # curl -d without -H
        "multipart/form-data; boundary=x",
        None,  # a Blob with no type, sendBeacon
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
@pytest.mark.parametrize("route", ["invoke", "batch", "stream", "render"])
def test_non_json_bodies_are_415(
    client: httpx.Client, bedrock: Emulator, content_type: str | None, route: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(f"/chains/summarize/{route}", content=JSON_BODY, headers=headers)
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in body["message"]
    assert body["errors"][0]["field"] == "content-type"
    assert body["request_id"] == response.headers["x-request-id"]
    assert bedrock.state.calls == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        'Application/JSON;charset="UTF-8"',
        "application/vnd.chainserve+json",
    ],
)
def test_json_content_types_are_accepted(client: httpx.Client, content_type: str) -> None:
    response = client.post(
        "/chains/summarize/render", content=JSON_BODY, headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text


# -- a client that goes away during its upload ------------------------------------------------


def test_aborted_upload_is_one_info_line(
    server: BackgroundServer, caplog: pytest.LogCaptureFixture, bedrock: Emulator
) -> None:
    import socket

    from tests.helpers import wait_for

    caplog.set_level("INFO", logger="chainserve")
    with socket.create_connection((server.host, server.port)) as raw:
        raw.sendall(
            b"POST /chains/summarize/invoke HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n"
            b"X-Request-Id: aborted-upload-1\r\n\r\n" + b'{"input": '
        )
    wait_for(lambda: any("aborted-upload-1" in r.getMessage() for r in caplog.records))
    lines = [r for r in caplog.records if r.name.startswith("chainserve")]
    [line] = [r for r in lines if "aborted-upload-1" in r.getMessage()]
    assert line.levelname == "INFO" and "client went away during the upload" in line.getMessage()
    assert [r for r in lines if r.levelno >= 40 or r.exc_info] == []
    assert bedrock.state.calls == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(client: httpx.Client, constant: str) -> None:
    body = '{"input": {"text": "x"}, "config": {"metadata": {"score": CONSTANT}}}'
    body = body.replace("CONSTANT", constant)
    response = client.post(
        "/chains/summarize/invoke", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "body", "message": f"{constant} is not a JSON number; send a number, or null"}
    ]
