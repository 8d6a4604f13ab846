"""Schemathesis over the whole API: the OpenAPI document and the server agree.

Against a real server on loopback (the emulator as Bedrock), schemathesis' own command line
(``st run``, as a user runs it) reads ``/openapi.json`` and, for every operation in it, sends
requests made from the document — its examples, boundary and invalid values (the coverage
phase), then generated ones — and checks every response: no 5xx, a status the document lists
for the operation, its media type, its headers, its body against the schema (each SSE event
too: its name, and its data as its ``contentSchema`` says), invalid input refused and valid
input accepted, 405 with ``Allow`` for other methods. Bounded and deterministic: a few
examples per operation, a fixed seed, no example database; replies are capped at a few tokens,
so a run costs time in requests, not in echoes.

It runs without keys and with keys configured; then schemathesis sends the key as the
document's ``apiKey`` scheme says, and checks that the same requests without it are refused.

This module is also the run's hooks module (``SCHEMATHESIS_HOOKS``), for what the document
cannot say in JSON Schema.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from service.emulator.server import Emulator
from service.emulator.state import Pace
from tests.conftest import REPO, ServerFactory

KEY = "schemathesis-key-0123456789"
EXAMPLES = 3  # per operation, for the generating phase
SEED = 20251122

CONFIG = f"""
seed = {SEED}
suppress-health-check = ["all"]
request-timeout = 30
workers = 1

[generation]
max-examples = {EXAMPLES}
deterministic = true
database = "none"

[phases.stateful]
enabled = false

[checks]
enabled = false
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
response_headers_conformance.enabled = true
# Our refusals: 413 and 431 too (a body, or a GET's query, over the server's limits),
# OpenAI's 400 for a parameter out of range (its clients expect that status), and 403 for a
# signed stream URL's signature that does not verify (with keys).
negative_data_rejection.enabled = true
negative_data_rejection.expected-statuses = [400, 401, 403, 404, 405, 413, 415, 422, 431]
# Valid input runs: 2xx, or a failure of the model (the emulator's), or too large a body.
positive_data_acceptance.enabled = true
positive_data_acceptance.expected-statuses = ["2XX", 413, 429, 502, 503, 504]
missing_required_header.enabled = true
unsupported_method.enabled = true
allow_header_conformance.enabled = true
ignored_auth.enabled = true
not_a_server_error.enabled = true
every_operation_succeeds.enabled = true

# Rules JSON Schema cannot state, so a body valid by the document may be rightly refused
# (422): /batch's list of configs has one per input; a conversation (/chat, OpenAI's
# /v1/chat/completions) ends with the user's message, which has text.
[[operations]]
include-path-regex = "/batch$|/chat$|^/v1/chat/completions$"
checks.positive_data_acceptance.enabled = false

# Inputs valid by the schema that Bedrock refuses — a chat history that starts with the
# assistant, a message left empty (translate's and chat's user message is the input alone) —
# are 422 model_rejected_input (service/runs/errors.py): the input's fault, said as such.
[[operations]]
include-path-regex = "^/chains/(chat|translate)/(invoke|stream|stream_log|stream_events)$"
checks.positive_data_acceptance.expected-statuses = ["2XX", 413, 422, 429, 502, 503, 504]

# An image's rules are in its bytes (a PNG, JPEG, GIF or WebP whose type matches), which JSON
# Schema cannot state: generated base64 is rightly refused (422).
[[operations]]
include-path-regex = "^/chains/describe_image/"
checks.positive_data_acceptance.expected-statuses = ["2XX", 413, 422, 429, 502, 503, 504]

# Time: the coverage phase's boundary values of a chain's inputs are tried on invoke, render
# and stream for every chain; the routes that cost most per request (a batch, a run as
# LangChain events) get them for one chain, and generated requests for all.
[[operations]]
include-path-regex = "^/chains/(?!summarize/)[^/]+/(batch|stream_log|stream_events)$"
phases.coverage.enabled = false
"""


@pytest.mark.parametrize("keys", [False, True], ids=["open", "keyed"])
def test_api_matches_its_document(
    keys: bool, make_server: ServerFactory, bedrock: Emulator, tmp_path: Path
) -> None:
    bedrock.state.pace = Pace(reply_tokens=3)
    server = make_server(**({"api_keys": KEY} if keys else {}))
    config = CONFIG
    if keys:
        # A keyed server's document shows no examples (they come from chain tests), and a few
        # generated bodies rarely pass a chain's rules (a chat ends with the user's text): the
        # open run, with examples and the coverage phase, is the one that sees every route work.
        config = config.replace(
            "every_operation_succeeds.enabled = true", "every_operation_succeeds.enabled = false"
        )
        config += f'\n[auth.openapi.apiKey]\napi_key = "{KEY}"\n'
    (tmp_path / "schemathesis.toml").write_text(config)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "run",
        f"{server.url}/openapi.json",
        # The keyed run checks what keys change — the 401s, the security schemes, requests
        # without the key refused — on the examples and generated requests; the open run
        # adds the coverage phase's boundary and invalid values.
        *(["--phases=examples,fuzzing"] if keys else []),
    ]
    environment = {**os.environ, "SCHEMATHESIS_HOOKS": __name__, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    took = time.monotonic() - started
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"schemathesis failed after {took:.0f} s:\n{report[-20000:]}"
    assert "No issues found" in report or " passed" in report, report[-5000:]


# ---------------------------------------------------------------- hooks (in schemathesis' run)


@schemathesis.check
class every_operation_succeeds:  # the check's name, as the config names it
    """Each operation answered 2xx at least once: the run exercised the API, not only its
    refusals (with keys, a key that is never sent would leave nothing but 401s)."""

    def __init__(self) -> None:
        self.tested: set[str] = set()
        self.succeeded: set[str] = set()

    def after_response(self, ctx: Any, response: Any, case: Any) -> None:
        self.tested.add(case.operation.label)
        if 200 <= response.status_code < 300:
            self.succeeded.add(case.operation.label)

    def after_run(self, ctx: Any) -> None:
        never = sorted(self.tested - self.succeeded)
        if never:
            raise AssertionError("never answered 2xx: " + ", ".join(never))
