"""HTTP limits (service/server.py), over raw sockets against real servers: request head size, time
to receive a head and a body, idle connections, and HTTP/1.0 responses delimited by close.

Timeouts are set to 1 s and asserted with 10 s bounds: these tests check that a connection is
closed, never how fast.
"""

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.emulator.state import Pace
from service.server import HttpLimits, HttpLimitsProtocol, limits_of, uvicorn_config
from tests.conftest import ServerFactory
from tests.helpers import parse_sse, wait_for
from tests.test_cli import free_port, running, wait_ready

BOUND = 10.0  # seconds: how long a 1 s limit may take to act on a loaded machine
LIMIT = 4096

Connect = Callable[[BackgroundServer], socket.socket]


@pytest.fixture(scope="module")
def strict(make_server: ServerFactory) -> BackgroundServer:
    """chainserve with small limits: 4 KiB heads, 1 s for a head, a body, an idle connection."""
    return make_server(
        max_header_bytes=LIMIT, header_timeout=1, body_timeout=1, keep_alive_timeout=1
    )


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open raw sockets to a server; closed after the test."""
    sockets: list[socket.socket] = []

    def open_to(server: BackgroundServer) -> socket.socket:
        sock = socket.create_connection((server.host, server.port), timeout=BOUND)
        sockets.append(sock)
        return sock

    yield open_to
    for sock in sockets:
        sock.close()


def read_until_closed(sock: socket.socket, deadline: float | None = None) -> bytes:
    """Everything the server sends until it closes the connection, which must be within BOUND."""
    deadline = deadline or time.monotonic() + BOUND
    data = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"connection still open after {BOUND} s; received {data[:200]!r}")
        if not piece:
            return data
        data += piece


def split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def send_ignoring_resets(sock: socket.socket, data: bytes) -> None:
    """Send as a client that does not listen would; the server may have closed already."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def head_of(size: int, path: str = "/healthz") -> bytes:
    """A complete GET head of exactly ``size`` bytes (request line, headers, blank line)."""
    start = f"GET {path} HTTP/1.1\r\nHost: test\r\nX-Padding: ".encode()
    padding = size - len(start) - len(b"\r\n\r\n")
    return start + b"a" * padding + b"\r\n\r\n"


# Request head size


def test_head_at_the_limit_is_served_one_byte_more_is_431(
    strict: BackgroundServer, connect: Connect
) -> None:
    sock = connect(strict)
    sock.sendall(
        head_of(LIMIT) + b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    response = read_until_closed(sock)
    assert response.count(b"HTTP/1.1 200 OK") == 2  # both served, on one connection

    sock = connect(strict)
    sock.sendall(head_of(LIMIT + 1))
    status, headers, body = split(read_until_closed(sock))
    assert status == 431
    assert headers["connection"] == "close"
    error = json.loads(body)
    assert error["status_code"] == 431
    assert error["code"] == "header_too_large"
    assert error["request_id"] == headers["x-request-id"]


def test_unfinished_huge_head_is_refused_and_closed(
    server: BackgroundServer, connect: Connect
) -> None:
    """The report's attack: a header that never ends. Default limit, 64 KiB."""
    sock = connect(server)
    send_ignoring_resets(sock, b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: ")
    for _ in range(8):  # 512 KiB of one header value, never finished
        send_ignoring_resets(sock, b"a" * 65536)
    status, _, body = split(read_until_closed(sock))
    assert status == 431
    assert json.loads(body)["code"] == "header_too_large"


def test_default_limit_allows_large_legitimate_heads(
    server: BackgroundServer, connect: Connect
) -> None:
    sock = connect(server)
    head = head_of(60_000).replace(b"Host: test\r\n", b"Host: test\r\nConnection: close\r\n")
    sock.sendall(head)
    status, _, body = split(read_until_closed(sock))
    assert status == 200
    assert json.loads(body)["status"] == "ok"


# Time to receive a request


def test_connection_that_sends_nothing_is_closed(
    strict: BackgroundServer, connect: Connect
) -> None:
    sock = connect(strict)
    assert read_until_closed(sock) == b""  # closed, no answer: there was no request


def test_idle_keep_alive_connection_is_closed(strict: BackgroundServer, connect: Connect) -> None:
    sock = connect(strict)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert response.count(b"HTTP/1.1") == 1


def test_unfinished_head_gets_408(strict: BackgroundServer, connect: Connect) -> None:
    sock = connect(strict)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
    status, headers, body = split(read_until_closed(sock))
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["code"] == "request_timeout"


def trickle(sock: socket.socket, byte: bytes, what: str) -> bytes:
    """Send ``byte`` every 0.2 s until the server answers; its answer, to the close."""
    deadline = time.monotonic() + BOUND
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            answer = sock.recv(65536)
            break
        except TimeoutError:
            send_ignoring_resets(sock, byte)
    else:
        pytest.fail(f"{what} kept the connection open")
    return answer + read_until_closed(sock)


def test_head_sent_a_byte_at_a_time_gets_408(strict: BackgroundServer, connect: Connect) -> None:
    """Slowloris: each byte well within the timeout, the whole head never."""
    sock = connect(strict)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
    status, _, _ = split(trickle(sock, b"a", "a head sent byte by byte"))
    assert status == 408


def test_short_body_gets_408_and_no_run_starts(
    strict: BackgroundServer,
    connect: Connect,
    bedrock: Emulator,
) -> None:
    sock = connect(strict)
    sock.sendall(
        b"POST /chains/translate/stream HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'{"input": '  # 10 of the 100 bytes
    )
    status, _, body = split(read_until_closed(sock))
    assert status == 408
    assert json.loads(body)["code"] == "request_timeout"
    assert bedrock.state.calls == []
    assert httpx.get(f"{strict.url}/healthz").json()["runs_active"] == 0


def test_body_sent_a_byte_at_a_time_gets_408(
    strict: BackgroundServer,
    connect: Connect,
    bedrock: Emulator,
) -> None:
    sock = connect(strict)
    sock.sendall(
        b"POST /chains/translate/invoke HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    status, _, _ = split(trickle(sock, b" ", "a body sent byte by byte"))
    assert status == 408
    assert bedrock.state.calls == []


def test_limits_never_cut_a_response(
    strict: BackgroundServer,
    connect: Connect,
    bedrock: Emulator,
) -> None:
    """A stream lasting longer than every timeout ends whole; only then does idleness count."""
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=50)  # 2.5 s
    sock = connect(strict)
    sock.settimeout(30)
    sock.sendall(b"GET /chains/translate/stream?text=Hi HTTP/1.1\r\nHost: test\r\n\r\n")
    response = b""
    while not response.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of a chunked body
        piece = sock.recv(65536)
        assert piece, f"closed mid-stream: {response[-200:]!r}"
        response += piece
    status, headers, _ = split(response)
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert b"event: end" in response
    [call] = bedrock.state.calls
    wait_for(lambda: call.status == "completed")
    assert read_until_closed(sock) == b""  # then idle: closed after the keep-alive timeout


# HTTP/1.0


def check_close_delimited(response: bytes) -> tuple[dict[str, str], str]:
    status, headers, body = split(response)
    assert status == 200
    assert "transfer-encoding" not in headers
    assert "content-length" not in headers
    assert headers["connection"] == "close"
    return headers, body.decode()


def test_http10_stream_is_close_delimited_and_incremental(
    server: BackgroundServer,
    connect: Connect,
    bedrock: Emulator,
) -> None:
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=40)  # two seconds
    sock = connect(server)
    sock.sendall(b"GET /chains/translate/stream?text=Hi HTTP/1.0\r\n\r\n")
    first = sock.recv(65536)
    while b"event: data" not in first:
        piece = sock.recv(65536)
        assert piece, first
        first += piece
    [call] = bedrock.state.calls
    assert call.status == "running"  # the first tokens came before the model finished
    headers, body = check_close_delimited(first + read_until_closed(sock, time.monotonic() + 30))
    assert headers["content-type"].startswith("text/event-stream")
    events = parse_sse(body)  # the whole body is SSE: no chunk sizes in between
    assert events[0][0] == "metadata"
    assert events[-1] == ("end", None)
    assert len("".join(data for name, data in events if name == "data").split()) == 40


def test_http10_post_stream_is_close_delimited(
    server: BackgroundServer,
    connect: Connect,
    client: httpx.Client,
) -> None:
    payload = json.dumps({"input": {"text": "Good morning", "language": "German"}}).encode()
    sock = connect(server)
    sock.sendall(
        b"POST /chains/translate/stream HTTP/1.0\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
    )
    headers, body = check_close_delimited(read_until_closed(sock))
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert (
        body
        == client.post(
            "/chains/translate/stream",
            content=payload,
            headers={"Content-Type": "application/json"},
        ).text
    )


def test_http10_response_with_content_length_is_unchanged(
    server: BackgroundServer, connect: Connect
) -> None:
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    status, headers, body = split(read_until_closed(sock))
    assert status == 200
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body)["status"] == "ok"


# Where the limits apply


def test_background_server_limits_chainserve_apps_by_default(strict: BackgroundServer) -> None:
    """Other apps (a test's page, a stub) keep uvicorn's own protocol unless given limits."""
    from starlette.applications import Starlette

    assert issubclass(strict._server.config.http, HttpLimitsProtocol)  # type: ignore[arg-type]
    assert limits_of(Starlette()) is None
    assert uvicorn_config(Starlette(), None).http == "auto"
    limited = uvicorn_config(Starlette(), HttpLimits(header_timeout=3))
    assert issubclass(limited.http, HttpLimitsProtocol)  # type: ignore[arg-type]
    assert limited.http.limits.header_timeout == 3  # type: ignore[union-attr]


def test_chainserve_serve_has_the_limits(chains_dir: Path, bedrock: Emulator) -> None:
    port = free_port()
    env = {
        "CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url,
        "CHAINSERVE_HEADER_TIMEOUT": "1",
        "CHAINSERVE_MAX_HEADER_BYTES": str(LIMIT),
    }
    with running(["serve", "--port", str(port), "--chains", str(chains_dir)], env) as process:
        wait_ready(f"http://127.0.0.1:{port}/healthz", process)
        with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
            sock.sendall(head_of(LIMIT + 1))
            assert split(read_until_closed(sock))[0] == 431
        with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
            assert split(read_until_closed(sock))[0] == 408
