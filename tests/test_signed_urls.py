"""Signed stream URLs: a key holder mints one, an ``EventSource`` (or anyone) opens it with no
key; expired, altered or misplaced ones are refused; neither key nor signature is logged.

Real servers on loopback throughout; tests/test_signed_urls_browser.py runs the README's
backend and page in headless Chromium.
"""

import os
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from tests.conftest import ServerFactory
from tests.helpers import parse_sse, wait_for
from tests.test_cli import CHAINSERVE, free_port, running, wait_ready

KEY, OTHER_KEY = "sk-signed-3b7e1d9a5f", "sk-signed-8c2f6e0b4d"
TRANSLATE = {"text": "Good morning & bye", "language": "German"}


@pytest.fixture(scope="module")
def guarded(make_server: ServerFactory) -> BackgroundServer:
    return make_server(api_keys=f"{KEY},{OTHER_KEY}")


def mint(
    server: BackgroundServer, chain: str, inputs: dict[str, Any], key: str = KEY, **body: Any
) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/chains/{chain}/stream-url",
        headers={"x-api-key": key},
        json={"input": inputs, **body},
    )
    assert response.status_code == 200, response.text
    minted: dict[str, Any] = response.json()
    return minted


def streamed(response: httpx.Response) -> str:
    """The text of an SSE stream that ended well."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[-1][0] == "end"
    return "".join(data for name, data in events if name == "data")


def with_query(url: str, change: Any) -> str:
    """``url`` with its query pairs passed through ``change`` (a list → a list)."""
    parts = urlsplit(url)
    pairs = change(parse_qsl(parts.query, keep_blank_values=True))
    return parts._replace(query=urlencode(pairs)).geturl()


def test_a_signed_url_streams_with_no_key(guarded: BackgroundServer) -> None:
    before = time.time()
    minted = mint(guarded, "translate", TRANSLATE)
    assert minted["signed"] is True
    assert minted["url"] == guarded.url + minted["path"]
    assert minted["path"].startswith("/chains/translate/stream?")
    expires = datetime.fromisoformat(minted["expires_at"]).timestamp()
    assert minted["expires_at"].endswith("Z") and before + 300 <= expires <= time.time() + 301
    assert KEY not in minted["url"] and OTHER_KEY not in minted["url"]
    query = dict(parse_qsl(urlsplit(minted["url"]).query))
    assert set(query) == {"text", "language", "chainserve-expires", "chainserve-signature"}

    text = streamed(httpx.get(minted["url"]))  # no key header at all
    assert "Translate into German." in text and text.endswith("user: Good morning & bye")
    invoked = httpx.post(
        f"{guarded.url}/chains/translate/invoke",
        json={"input": TRANSLATE},
        headers={"x-api-key": KEY},
    )
    assert text == invoked.json()["output"]
    # Good until it expires, not once: EventSource reconnects, and a page may reload. What is
    # signed is the parameters, not their spelling: re-encoded (+ for spaces) and reordered.
    assert streamed(httpx.get(minted["url"])) == text
    assert streamed(httpx.get(with_query(minted["url"], lambda pairs: pairs[::-1]))) == text


def test_every_input_type_arrives_as_sent(make_server: ServerFactory, tmp_path: Path) -> None:
    """What the URL carries parses back to exactly what /invoke gets for the same input."""
    (tmp_path / "kinds.yaml").write_text(
        "model:\n  id: anthropic.claude-3-haiku-20240307-v1:0\n"
        "prompt:\n  messages:\n"
        "    - system: 's={s} i={i} n={n} b={b} e={e} d={d}'\n"
        "    - placeholder: history\n"
        "    - user: '{s}'\n"
        "inputs:\n"
        "  s: {type: string}\n"
        "  i: {type: integer}\n"
        "  n: {type: number}\n"
        "  b: {type: boolean}\n"
        "  e: {type: integer, enum: [1, 2, 3]}\n"
        "  d: {type: string, default: kept}\n"
        "  history: {type: messages}\n"
    )
    server = make_server(chains_dir=tmp_path, api_keys=KEY)
    inputs = {
        "s": 'naïve 日本 &=?#%+ "quoted"\nsecond line',
        "i": 42,
        "n": 2.5,
        "b": False,
        "e": 2,
        "history": [
            {"role": "user", "content": "Hi & bye"},
            {"role": "assistant", "content": "Hello?"},
        ],
    }
    minted = mint(server, "kinds", inputs)
    invoked = httpx.post(
        f"{server.url}/chains/kinds/invoke", json={"input": inputs}, headers={"x-api-key": KEY}
    )
    text = streamed(httpx.get(minted["url"]))
    assert text == invoked.json()["output"]
    assert "s=naïve 日本 &=?#%+" in text and "i=42 n=2.5 b=false e=2 d=kept" in text
    assert "user: Hi & bye" in text and "assistant: Hello?" in text


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"input": {}}, "input.text", "required"),
        ({"input": {"text": "x", "language": "Klingon"}}, "input.language", "one of"),
        ({"input": {"text": "x", "nope": "y"}}, "input.nope", "unknown"),
        ({"input": {"text": 5}}, "input.text", "string"),  # strict, as /invoke
        ({"text": "x"}, "input", "required"),
        ({"input": {"text": "x"}, "expires_in": 0}, "expires_in", "greater than or equal to 1"),
        ({"input": {"text": "x"}, "expires_in": "60"}, "expires_in", "integer"),
        (
            {"input": {"text": "x"}, "expires_in": 3601},
            "expires_in",
            "at most 3600 seconds on this server (CHAINSERVE_SIGNED_URL_MAX_SECONDS)",
        ),
    ],
)
def test_inputs_are_validated_before_signing(
    guarded: BackgroundServer, bedrock: Emulator, body: dict[str, Any], field: str, says: str
) -> None:
    response = httpx.post(
        f"{guarded.url}/chains/translate/stream-url", json=body, headers={"x-api-key": KEY}
    )
    assert response.status_code == 422
    error = response.json()
    assert error["code"] == "invalid_input"
    assert any(e["field"] == field and says in e["message"] for e in error["errors"]), error
    assert not bedrock.state.calls


def test_bad_requests_to_mint(guarded: BackgroundServer) -> None:
    url = f"{guarded.url}/chains/translate/stream-url"
    body = {"input": {"text": "x"}}
    assert httpx.post(url, json=body).status_code == 401  # minting needs a key
    assert httpx.post(url, json=body, headers={"x-api-key": "sk-wrong"}).status_code == 401
    missing = httpx.post(
        f"{guarded.url}/chains/nope/stream-url", json=body, headers={"x-api-key": KEY}
    )
    assert missing.status_code == 404 and "translate" in missing.json()["message"]
    as_form = httpx.post(url, data={"input": "x"}, headers={"x-api-key": KEY})
    assert as_form.status_code == 415
    twice = httpx.post(
        url,
        content=b'{"input": {"text": "a", "text": "b"}}',
        headers={"x-api-key": KEY, "content-type": "application/json"},
    )
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "input.text"
    long = httpx.post(
        f"{guarded.url}/chains/summarize/stream-url",
        json={"input": {"text": "é" * 15_000}},  # 6 bytes each in a URL
        headers={"x-api-key": KEY},
    )
    assert long.status_code == 422
    assert "too long for a URL" in long.json()["message"]
    assert "POST /chains/summarize/stream" in long.json()["message"]


def test_an_expired_url_is_refused_with_401(guarded: BackgroundServer, bedrock: Emulator) -> None:
    minted = mint(guarded, "translate", {"text": "soon gone"}, expires_in=1)
    expires = datetime.fromisoformat(minted["expires_at"]).timestamp()
    wait_for(lambda: time.time() >= expires, timeout=3)
    response = httpx.get(minted["url"])
    assert response.status_code == 401
    error = response.json()
    assert error["code"] == "signed_url_expired"
    assert f"expired at {minted['expires_at']}" in error["message"]
    assert "mint a new one (POST /chains/translate/stream-url" in error["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not bedrock.state.calls


def test_altered_urls_are_refused_with_403(
    guarded: BackgroundServer, make_server: ServerFactory, bedrock: Emulator
) -> None:
    url = mint(guarded, "translate", TRANSLATE)["url"]
    plain = mint(guarded, "translate", {"text": "x"})["url"]  # language left to its default
    elsewhere = make_server(api_keys="sk-another-service-1")
    foreign = mint(elsewhere, "translate", TRANSLATE, key="sk-another-service-1")["url"]

    def replace(name: str, value: str) -> Any:
        return lambda pairs: [(n, value if n == name else v) for n, v in pairs]

    def later(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(n, str(int(v) + 3600) if n == "chainserve-expires" else v) for n, v in pairs]

    altered = {
        "another input value": with_query(url, replace("language", "Spanish")),
        "another text": with_query(url, replace("text", "Good night")),
        "an input added": with_query(plain, lambda pairs: [*pairs, ("language", "German")]),
        "an input removed": with_query(url, lambda pairs: [p for p in pairs if p[0] != "text"]),
        "another chain": plain.replace("/chains/translate/", "/chains/summarize/"),
        "a later expiry": with_query(url, later),
        "another signature": with_query(url, replace("chainserve-signature", "A" * 43)),
        "a signature given twice": with_query(
            url, lambda pairs: [*pairs, ("chainserve-signature", pairs[-1][1])]
        ),
        "no signature": with_query(url, lambda pairs: pairs[:-1]),
        "no expiry": with_query(url, lambda pairs: [p for p in pairs if "expires" not in p[0]]),
        "a key the server does not have": foreign.replace(elsewhere.url, guarded.url),
    }
    for why, target in altered.items():
        for headers in ({}, {"x-api-key": KEY}):  # judged by the signature alone
            response = httpx.get(target, headers=headers)
            assert response.status_code == 403, why
            error = response.json()
            assert error["code"] == "signed_url_invalid", why
            assert "mint a new one" in error["message"], why
    assert not bedrock.state.calls


def test_a_signature_is_good_only_on_the_stream_route(guarded: BackgroundServer) -> None:
    url = mint(guarded, "translate", TRANSLATE)["url"]
    query = urlsplit(url).query
    for method, path in [
        ("GET", "/chains/translate"),
        ("GET", "/chains"),
        ("POST", "/chains/translate/invoke"),
        ("POST", "/chains/translate/stream"),
        ("POST", "/chains/translate/stream-url"),
        ("GET", "/chains/translate/stream/"),
    ]:
        response = httpx.request(
            method, f"{guarded.url}{path}?{query}", json={"input": {"text": "x"}}
        )
        assert response.status_code == 403, path
        assert "good only for GET /chains/{name}/stream" in response.json()["message"], path


def test_revoking_a_key_revokes_its_urls(
    guarded: BackgroundServer, make_server: ServerFactory
) -> None:
    by_other = mint(guarded, "translate", TRANSLATE, key=OTHER_KEY)["path"]
    by_key = mint(guarded, "translate", TRANSLATE, key=KEY)["path"]
    assert streamed(httpx.get(guarded.url + by_other))
    # The same service after OTHER_KEY was removed from its key store.
    revoked = make_server(api_keys=KEY)
    assert httpx.get(revoked.url + by_other).status_code == 403
    assert "Translate into German." in streamed(httpx.get(revoked.url + by_key))


def test_without_keys_the_url_is_the_plain_one(server: BackgroundServer) -> None:
    response = httpx.post(f"{server.url}/chains/translate/stream-url", json={"input": TRANSLATE})
    minted = response.json()
    assert minted["signed"] is False and minted["expires_at"] is None
    assert "no API keys" in minted["message"]
    assert (
        minted["path"] == "/chains/translate/stream?text=Good%20morning%20%26%20bye&language=German"
    )
    assert "Translate into German." in streamed(httpx.get(minted["url"]))
    bad = httpx.post(f"{server.url}/chains/translate/stream-url", json={"input": {}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "input.text"


def test_logs_hold_neither_key_nor_signature_and_chainserve_sign_works(
    chains_dir: Path, bedrock: Emulator
) -> None:
    """``chainserve serve`` with its access log on; ``chainserve sign`` mints against it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "CHAINSERVE_API_KEYS": KEY,
        "CHAINSERVE_ACCESS_LOG": "true",
        "CHAINSERVE_LOG_LEVEL": "debug",
        "CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url,
    }
    args = ["serve", "--port", str(port), "--chains", str(chains_dir)]
    with running(args, env) as process:
        wait_ready(f"{base}/healthz", process)
        minted = httpx.post(
            f"{base}/chains/translate/stream-url",
            json={"input": TRANSLATE},
            headers={"x-api-key": KEY},
        ).json()
        assert "Translate into German." in streamed(httpx.get(minted["url"]))
        tampered = with_query(minted["url"], lambda pairs: [*pairs[:-1], (pairs[-1][0], "x")])
        assert httpx.get(tampered).status_code == 403

        signed = subprocess.run(
            [
                *CHAINSERVE,
                *("sign", "translate", "-i", "text=From the CLI", "-i", "language=German"),
                *("--expires", "120", "--base-url", base, "--chains", str(chains_dir)),
            ],
            env={**process_env(), "CHAINSERVE_API_KEYS": KEY},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert signed.returncode == 0, signed.stderr
        cli_url = signed.stdout.strip()
        assert cli_url.startswith(f"{base}/chains/translate/stream?") and KEY not in cli_url
        assert re.search(r"expires at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 120 s\)", signed.stderr)
        text = streamed(httpx.get(cli_url))
        assert "Translate into German." in text and text.endswith("From the CLI")
        # Three GETs of signed URLs (minted, tampered with, from the CLI), each in the access log.
        wait_for(lambda: sum("chainserve-signature=REDACTED" in ln for ln in process.lines) >= 3)
    logged = "".join(process.lines)
    signatures = [
        dict(parse_qsl(urlsplit(url).query))["chainserve-signature"]
        for url in (minted["url"], cli_url)
    ]
    assert KEY not in logged
    for signature in signatures:
        assert signature not in logged
    assert '"GET /chains/translate/stream?text=' in logged  # the access log is on


def process_env() -> dict[str, str]:
    """This environment without any CHAINSERVE_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHAINSERVE_")}


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["translate", "-i", "text=x"], {}, "no API key is configured: set CHAINSERVE_API_KEYS"),
        (
            ["translate", "-i", "text=x", "--expires", "0"],
            {"CHAINSERVE_API_KEYS": KEY},
            "--expires",
        ),
        (
            ["translate", "-i", "text=x", "--expires", "7200"],
            {"CHAINSERVE_API_KEYS": KEY, "CHAINSERVE_SIGNED_URL_MAX_SECONDS": "3600"},
            "from 1 to 3600 seconds",
        ),
        (["nope", "-i", "text=x"], {"CHAINSERVE_API_KEYS": KEY}, "no chain named 'nope'"),
        (
            ["translate", "-i", "text=x", "-i", "language=Klingon"],
            {"CHAINSERVE_API_KEYS": KEY},
            "-i language: must be one of",
        ),
    ],
)
def test_sign_command_errors(
    chains_dir: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    result = subprocess.run(
        [*CHAINSERVE, "sign", *args, "--chains", str(chains_dir)],
        env={**process_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and result.stdout == ""
    assert "Traceback" not in result.stderr
