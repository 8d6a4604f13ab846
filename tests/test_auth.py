"""API keys: accepted, refused, and never leaked. SSM and Secrets Manager run as moto's server
on loopback (no real AWS can be reached here); boto3 reaches it through the standard
AWS_ENDPOINT_URL_* variables, so the production code path is unchanged."""

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from langserve import RemoteRunnable

from service.app import create_app
from service.auth import ApiKeysUnavailable
from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.settings import Settings
from tests.conftest import ServerFactory
from tests.helpers import wait_for
from tests.test_cli import CHAINSERVE, free_port, running, wait_ready

KEY, OTHER_KEY = "sk-test-7f3a9c1e5b", "sk-test-2d8e4f6a0c"
BODY = {"input": {"text": "x"}}


@pytest.fixture(scope="module")
def guarded(make_server: ServerFactory) -> BackgroundServer:
    return make_server(api_keys=f"{KEY},{OTHER_KEY}", cors_origins="https://app.example")


def test_requests_without_a_key_are_refused(guarded: BackgroundServer) -> None:
    for method, path in [
        ("POST", "/chains/summarize/invoke"),
        ("POST", "/chains/summarize/stream"),
        ("GET", "/chains"),
        ("GET", "/chains/summarize/stream?text=x"),
    ]:
        response = httpx.request(method, f"{guarded.url}{path}", json=BODY)
        assert response.status_code == 401, path
        body = response.json()
        assert body["code"] == "unauthorized" and "x-api-key" in body["message"]
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_wrong_keys_are_refused(guarded: BackgroundServer) -> None:
    for headers in [
        {"x-api-key": "nope"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Basic {KEY}"},
        {"x-api-key": ""},
    ]:
        response = httpx.post(f"{guarded.url}/chains/summarize/invoke", json=BODY, headers=headers)
        assert response.status_code == 401, headers


@pytest.mark.parametrize("headers", [{"x-api-key": KEY}, {"Authorization": f"Bearer {OTHER_KEY}"}])
def test_valid_keys_are_accepted(guarded: BackgroundServer, headers: dict[str, str]) -> None:
    response = httpx.post(f"{guarded.url}/chains/summarize/stream", json=BODY, headers=headers)
    assert response.status_code == 200
    assert response.text.endswith("x")


def test_health_check_needs_no_key(guarded: BackgroundServer) -> None:
    assert httpx.get(f"{guarded.url}/healthz").status_code == 200


def test_cors_preflight_needs_no_key(guarded: BackgroundServer) -> None:
    response = httpx.options(
        f"{guarded.url}/chains/summarize/stream",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_remote_runnable_with_a_key(guarded: BackgroundServer) -> None:
    chain: RemoteRunnable[dict[str, str], str] = RemoteRunnable(
        f"{guarded.url}/chains/summarize", headers={"x-api-key": KEY}
    )
    assert chain.invoke({"text": "hi"}).endswith("hi")
    assert "".join(chain.stream({"text": "hi"})).endswith("hi")


def test_keys_never_leak(guarded: BackgroundServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    seen = []
    for headers in [
        {"x-api-key": KEY},
        {"x-api-key": KEY + "0"},
        {"Authorization": f"Bearer {KEY}"},
    ]:
        for path in ("/chains/summarize/invoke", "/chains/nope/invoke"):
            response = httpx.post(f"{guarded.url}{path}", json=BODY, headers=headers)
            seen.append(response.text + json.dumps(dict(response.headers)))
    seen.append(caplog.text)
    seen.append(repr(Settings(api_keys=f"{KEY},{OTHER_KEY}")))
    seen.append(str(Settings(api_keys=KEY).model_dump()))
    for text in seen:
        assert KEY not in text and OTHER_KEY not in text


@pytest.fixture(scope="module")
def aws_services(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch_module.setenv("AWS_ENDPOINT_URL_SSM", url)
    monkeypatch_module.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_keys_from_ssm_parameter(aws_services: str, chains_dir: Path, bedrock: Emulator) -> None:
    boto3.client("ssm").put_parameter(
        Name="/chainserve/api-keys", Value=f"{KEY}\n{OTHER_KEY}", Type="SecureString"
    )
    settings = Settings(
        chains_dir=chains_dir,
        bedrock_endpoint_url=bedrock.url,
        api_keys_ssm_parameter="/chainserve/api-keys",
    )
    with BackgroundServer(create_app(settings)) as server:
        url = f"{server.url}/chains/summarize/invoke"
        assert httpx.post(url, json=BODY).status_code == 401
        assert httpx.post(url, json=BODY, headers={"x-api-key": OTHER_KEY}).status_code == 200


def test_keys_from_secrets_manager(aws_services: str, chains_dir: Path, bedrock: Emulator) -> None:
    boto3.client("secretsmanager").create_secret(
        Name="chainserve-api-keys", SecretString=json.dumps([KEY])
    )
    settings = Settings(
        chains_dir=chains_dir,
        bedrock_endpoint_url=bedrock.url,
        api_keys_secret_id="chainserve-api-keys",
    )
    with BackgroundServer(create_app(settings)) as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        url = f"{server.url}/chains/summarize/invoke"
        assert httpx.post(url, json=BODY, headers=headers).status_code == 200


def test_missing_key_store_stops_start_up(aws_services: str, chains_dir: Path) -> None:
    settings = Settings(chains_dir=chains_dir, api_keys_ssm_parameter="/does/not/exist")
    with pytest.raises(ApiKeysUnavailable, match="'/does/not/exist': ParameterNotFound"):
        create_app(settings)


@pytest.mark.parametrize(
    ("stored", "keys"),
    [
        (f"{KEY}\n{OTHER_KEY}\n", [KEY, OTHER_KEY]),
        (f" {KEY} , {OTHER_KEY}", [KEY, OTHER_KEY]),
        (json.dumps([KEY]), [KEY]),
    ],
)
def test_stored_key_formats(stored: str, keys: list[str]) -> None:
    from service.auth import _split

    assert [key.get_secret_value() for key in _split(stored, "test")] == keys


@pytest.mark.parametrize(
    "stored",
    [
        json.dumps({"api_key": KEY}),  # the console's key/value form: its field name is no key
        json.dumps([KEY, None]),
        "[]",
        " ",
        ",\n,",
        "[not json",
    ],
)
def test_unusable_key_stores_stop_start_up(stored: str) -> None:
    from service.auth import _split

    with pytest.raises(ApiKeysUnavailable) as caught:
        _split(stored, "ssm '/keys'")
    assert KEY not in str(caught.value)


def test_empty_key_store_never_serves_open(aws_services: str, chains_dir: Path) -> None:
    boto3.client("ssm").put_parameter(Name="/chainserve/empty", Value="[]", Type="SecureString")
    settings = Settings(chains_dir=chains_dir, api_keys_ssm_parameter="/chainserve/empty")
    with pytest.raises(ApiKeysUnavailable, match="holds no API key"):
        create_app(settings)


@pytest.mark.parametrize(
    "header",
    [
        f"x-api-key: {KEY} ",
        f"x-api-key:  {KEY}\t",
        f"Authorization: Bearer {KEY} ",
        f"Authorization:  Bearer  {OTHER_KEY}",
    ],
)
def test_spaces_around_a_key_are_ignored_in_both_headers(
    guarded: BackgroundServer, header: str
) -> None:
    """Sent raw: HTTP clients trim header values before they reach the wire, proxies may not."""
    import socket

    body = json.dumps(BODY).encode()
    with socket.create_connection((guarded.host, guarded.port), timeout=30) as raw:
        raw.sendall(
            b"POST /chains/summarize/invoke HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + header.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        reply = b""
        while piece := raw.recv(65536):
            reply += piece
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:300]


@pytest.mark.parametrize("value", [",", " ", " , ,"])
def test_api_keys_setting_without_a_key_refuses_to_start(value: str, chains_dir: Path) -> None:
    """Not an open server by accident: a variable that is set but holds no key stops start-up
    (an empty variable means unset, as for every setting)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="holds no API key"):
        Settings(api_keys=value)
    result = subprocess.run(
        [*CHAINSERVE, "serve", "--port", str(free_port()), "--chains", str(chains_dir)],
        env={**os.environ, "CHAINSERVE_API_KEYS": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "api_keys" in result.stderr and "holds no API key" in result.stderr
    assert "Traceback" not in result.stderr


def test_access_log_redacts_keys_in_query_strings(chains_dir: Path, bedrock: Emulator) -> None:
    port = free_port()
    env = {
        "CHAINSERVE_ACCESS_LOG": "true",
        "CHAINSERVE_API_KEYS": KEY,
        "CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url,
    }
    with running(["serve", "--port", str(port), "--chains", str(chains_dir)], env) as process:
        wait_ready(f"http://127.0.0.1:{port}/healthz", process)
        query = f"text=hello&api_key={KEY}&X-Access-Token={OTHER_KEY}&apikey=&token"
        httpx.get(f"http://127.0.0.1:{port}/chains/summarize/stream?{query}")
        wait_for(lambda: process.said("/chains/summarize/stream?"))
    logged = "".join(process.lines)
    assert KEY not in logged and OTHER_KEY not in logged
    assert (
        '"GET /chains/summarize/stream?text=hello&api_key=REDACTED&X-Access-Token=REDACTED'
        '&apikey=REDACTED&token HTTP/1.1" 401'
    ) in logged


def test_redact_query() -> None:
    from service.auth import redact_query

    assert redact_query("/x?a=1&b=2") == "/x?a=1&b=2"
    assert redact_query("/x?my%5Fapi%5Fkey=s&session_token=t&password=p&q=key") == (
        "/x?my%5Fapi%5Fkey=REDACTED&session_token=REDACTED&password=REDACTED&q=key"
    )
