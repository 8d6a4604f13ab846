"""Fallbacks (``model.fallbacks``): another model answers when the chain's model fails before
its first token — throttled, unavailable, timed out — and never once output has been sent.
Driven over real HTTP by the emulator's per-model faults."""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core.runnables.schema import StreamEvent
from langserve import RemoteRunnable

from service.background import BackgroundServer
from service.chains.loader import ChainFileErrors, load_file
from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.browser import Tab, expect
from tests.conftest import ServerFactory
from tests.helpers import parse_sse, wait_for

PRIMARY = "anthropic.claude-3-haiku-20240307-v1:0"
SECOND = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
THIRD = "amazon.nova-lite-v1:0"
CHAIN = f"""\
description: Answers from the first model that can.
model:
  id: {PRIMARY}
  params:
    max_tokens: 6
  fallbacks:
    - {SECOND}
    - id: {THIRD}
      params:
        temperature: 0.1
prompt:
  messages:
    - system: You are terse.
    - placeholder: history
    - user: "{{question}}"
inputs:
  question: {{}}
  history:
    type: messages
"""
# ChatBedrock (InvokeModel) first, then a Converse model: one chain, both APIs.
MIXED = f"""\
model:
  provider: bedrock
  id: {PRIMARY}
  fallbacks:
    - id: {THIRD}
      provider: bedrock-converse
prompt:
  messages:
    - user: "{{question}}"
inputs:
  question: {{}}
"""
BODY = {"input": {"question": "Where is the answer?"}}


@pytest.fixture(scope="module")
def fallback_server(
    make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> BackgroundServer:
    folder = tmp_path_factory.mktemp("fallback-chains")
    (folder / "answer.yaml").write_text(CHAIN)
    (folder / "mixed.yaml").write_text(MIXED)
    return make_server(chains_dir=folder, log_level="info")


@pytest.fixture
def http(fallback_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fallback_server.url, timeout=30) as client:
        yield client


def fail(bedrock: Emulator, kind: str, model: str = PRIMARY) -> None:
    bedrock.state.add_faults([Fault(kind=kind, model=model, times=0)])  # type: ignore[arg-type]


def calls(bedrock: Emulator) -> list[tuple[str, str]]:
    return [(call.model, call.status) for call in bedrock.state.calls]


def test_the_chains_model_answers_when_it_can(http: httpx.Client, bedrock: Emulator) -> None:
    response = http.post("/chains/answer/invoke", json=BODY)
    assert response.status_code == 200
    metadata = response.json()["metadata"]
    assert metadata["model"] == PRIMARY
    assert "fallback_from" not in metadata
    assert calls(bedrock) == [(PRIMARY, "completed")]


@pytest.mark.parametrize("kind", ["throttle", "unavailable", "model_timeout", "not_ready"])
def test_a_fallback_answers_when_the_model_fails_before_its_first_token(
    http: httpx.Client, bedrock: Emulator, kind: str
) -> None:
    fail(bedrock, kind)
    response = http.post("/chains/answer/invoke", json=BODY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"].startswith(f"[emulator] {SECOND} received:")
    assert body["metadata"]["model"] == SECOND
    assert body["metadata"]["fallback_from"] == [PRIMARY]
    assert calls(bedrock) == [(PRIMARY, "failed"), (SECOND, "completed")]


def test_fallbacks_are_tried_in_order_and_inherit_the_models_params(
    http: httpx.Client, bedrock: Emulator
) -> None:
    fail(bedrock, "throttle")
    fail(bedrock, "unavailable", SECOND)
    body = http.post("/chains/answer/invoke", json=BODY).json()
    assert body["metadata"]["model"] == THIRD
    assert body["metadata"]["fallback_from"] == [PRIMARY, SECOND]
    # max_tokens: 6 came from the chain's model (the fallback set only temperature).
    assert len(body["output"].split()) == 6
    assert body["metadata"]["stop_reason"] == "max_tokens"
    assert calls(bedrock) == [(PRIMARY, "failed"), (SECOND, "failed"), (THIRD, "completed")]


@pytest.mark.parametrize(
    ("kind", "status"), [("access_denied", 502), ("unknown_model", 502), ("quota_exceeded", 429)]
)
def test_a_failure_another_model_would_share_is_not_retried_elsewhere(
    http: httpx.Client, bedrock: Emulator, kind: str, status: int
) -> None:
    fail(bedrock, kind)
    response = http.post("/chains/answer/invoke", json=BODY)
    assert response.status_code == status
    assert calls(bedrock) == [(PRIMARY, "failed")]


def test_when_every_model_fails_the_first_failure_is_the_answer(
    http: httpx.Client, bedrock: Emulator
) -> None:
    for model in (PRIMARY, SECOND, THIRD):
        fail(bedrock, "throttle", model)
    response = http.post("/chains/answer/invoke", json=BODY)
    assert response.status_code == 429
    assert PRIMARY in response.json()["message"]
    assert [status for _, status in calls(bedrock)] == ["failed"] * 3


@pytest.mark.parametrize("accept", ["text/plain", "text/event-stream"])
def test_a_stream_falls_back_before_its_first_byte(
    http: httpx.Client, bedrock: Emulator, accept: str
) -> None:
    fail(bedrock, "throttle")
    response = http.post("/chains/answer/stream", json=BODY, headers={"Accept": accept})
    assert response.status_code == 200
    if accept == "text/plain":
        assert response.text.startswith(f"[emulator] {SECOND} received:")
    else:
        events = parse_sse(response.text)
        metadata = [data for name, data in events if name == "metadata"][-1]
        assert metadata["model"] == SECOND
        assert metadata["fallback_from"] == [PRIMARY]
    assert calls(bedrock) == [(PRIMARY, "failed"), (SECOND, "completed")]


def test_no_fallback_starts_after_output_was_sent(http: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.pace = Pace(reply_tokens=6)
    bedrock.state.add_faults([Fault(kind="stream_throttle", after_chunks=2, model=PRIMARY)])
    response = http.post("/chains/answer/stream", json=BODY)
    assert response.status_code == 200
    assert response.text.startswith(f"[emulator] {PRIMARY}")  # the model's own first words
    assert "\n[error] 429:" in response.text
    assert calls(bedrock) == [(PRIMARY, "failed")]  # no second model was asked


def test_the_log_line_says_which_model_answered(
    http: httpx.Client, bedrock: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="chainserve")
    fail(bedrock, "throttle")
    run_id = http.post("/chains/answer/invoke", json=BODY).json()["metadata"]["run_id"]

    def line() -> str:
        return next((r.getMessage() for r in caplog.records if run_id in r.getMessage()), "")

    wait_for(lambda: bool(line()))
    assert f" model={SECOND} " in line()
    assert line().endswith(f" fallback_from={PRIMARY}")


def test_batch_metadata_names_each_runs_model(http: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="throttle", model=PRIMARY, times=1)])
    body = {"inputs": [{"question": "one"}, {"question": "two"}], "config": {"max_concurrency": 1}}
    runs = http.post("/chains/answer/batch", json=body).json()["metadata"]["runs"]
    assert [run["model"] for run in runs] == [SECOND, PRIMARY]
    assert runs[0]["fallback_from"] == [PRIMARY] and "fallback_from" not in runs[1]


def test_invoke_model_falls_back_to_converse(http: httpx.Client, bedrock: Emulator) -> None:
    fail(bedrock, "throttle")
    body = http.post("/chains/mixed/invoke", json=BODY).json()
    assert body["metadata"]["model"] == THIRD
    assert [(call.operation, call.status) for call in bedrock.state.calls] == [
        ("invoke", "failed"),
        ("converse", "completed"),
    ]


def test_openai_clients_get_the_fallbacks_answer_with_their_own_params(
    fallback_server: BackgroundServer, bedrock: Emulator
) -> None:
    fail(bedrock, "throttle")
    client = openai.OpenAI(base_url=f"{fallback_server.url}/v1", api_key="-", max_retries=0)
    completion = client.chat.completions.create(
        model="answer", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    content = completion.choices[0].message.content or ""
    assert content.startswith(f"[emulator] {SECOND}")
    assert len(content.split()) == 3
    assert completion.choices[0].finish_reason == "length"


def test_remote_runnable_streams_the_fallbacks_answer(
    fallback_server: BackgroundServer, bedrock: Emulator
) -> None:
    fail(bedrock, "throttle")
    remote: RemoteRunnable[dict[str, str], str] = RemoteRunnable(
        f"{fallback_server.url}/chains/answer"
    )
    text = "".join(remote.stream({"question": "Hi"}))
    assert text.startswith(f"[emulator] {SECOND}")


# -- chain files ------------------------------------------------------------------------------


def load(tmp_path: Path, model: str) -> list[str]:
    path = tmp_path / "x.yaml"
    path.write_text(f"model:\n{model}prompt:\n  messages:\n    - user: hi\n")
    try:
        load_file(path)
    except ChainFileErrors as exc:
        return [str(error).partition(":")[2] for error in exc.errors]
    return []


def test_a_fallback_is_checked_like_the_model_at_its_own_line(tmp_path: Path) -> None:
    errors = load(
        tmp_path,
        f"  id: {PRIMARY}\n  fallbacks:\n    - acme.rocket-v1\n    - id: {SECOND}\n"
        "      region: mars-east-1\n",
    )
    assert errors[0].startswith("4: model.fallbacks[0]: langchain-aws does not know")
    assert errors[1].startswith("6: model.fallbacks[1].region: 'mars-east-1' is not an AWS")


def test_a_model_listed_twice_or_nested_fallbacks_are_refused(tmp_path: Path) -> None:
    [twice] = load(tmp_path, f"  id: {PRIMARY}\n  fallbacks: [{PRIMARY}]\n")
    assert "fallbacks lists 'anthropic.claude-3-haiku-20240307-v1:0' again" in twice
    other_region = load(
        tmp_path, f"  id: {PRIMARY}\n  fallbacks:\n    - id: {PRIMARY}\n      region: eu-west-1\n"
    )
    assert other_region == []
    [nested] = load(
        tmp_path, f"  id: {PRIMARY}\n  fallbacks:\n    - id: {SECOND}\n      fallbacks: [x]\n"
    )
    assert nested.startswith("4: model.fallbacks[0]: a fallback has no fallbacks of its own")


def test_iam_resources_cover_every_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.cli import main

    (tmp_path / "answer.yaml").write_text(CHAIN)
    assert main(["models", "--arns", str(tmp_path)]) == 0
    arns = capsys.readouterr().out.strip().split(",")
    assert f"arn:aws:bedrock:*::foundation-model/{PRIMARY}" in arns
    assert f"arn:aws:bedrock:*:*:inference-profile/{SECOND}" in arns
    assert f"arn:aws:bedrock:*::foundation-model/{THIRD}" in arns


def test_a_stream_that_fails_before_its_first_token_falls_back(
    http: httpx.Client, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="stream_throttle", after_chunks=0, model=PRIMARY)])
    response = http.post("/chains/answer/stream", json=BODY)
    assert response.status_code == 200
    assert response.text.startswith(f"[emulator] {SECOND}")


def test_stream_events_fall_back_too(fallback_server: BackgroundServer, bedrock: Emulator) -> None:
    import asyncio

    bedrock.state.add_faults([Fault(kind="stream_throttle", after_chunks=0, model=PRIMARY)])
    remote: RemoteRunnable[dict[str, str], str] = RemoteRunnable(
        f"{fallback_server.url}/chains/answer"
    )

    async def events() -> list[StreamEvent]:
        return [event async for event in remote.astream_events({"question": "Hi"}, version="v2")]

    seen = asyncio.run(events())
    text = "".join(e["data"]["chunk"] for e in seen if e["event"] == "on_parser_stream")
    assert text.startswith(f"[emulator] {SECOND}")
    assert calls(bedrock) == [(PRIMARY, "failed"), (SECOND, "completed")]


def test_the_chain_lists_its_fallbacks(http: httpx.Client) -> None:
    model = http.get("/chains/answer").json()["model"]
    assert model == {"provider": "bedrock-converse", "id": PRIMARY, "fallbacks": [SECOND, THIRD]}


def test_the_playground_shows_which_model_answered(
    tab: Callable[[BackgroundServer], Tab], fallback_server: BackgroundServer, bedrock: Emulator
) -> None:
    fail(bedrock, "throttle")
    page = tab(fallback_server).open("/playground?chain=answer")
    page.fill("#input-question", "Who answers?")
    page.click("#run")
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#output")).to_contain_text(f"[emulator] {SECOND}")
    expect(page.locator("#stat-model")).to_have_text(f"{SECOND} (after {PRIMARY})")


def test_a_fallbacks_own_failure_names_the_fallback(http: httpx.Client, bedrock: Emulator) -> None:
    fail(bedrock, "throttle")
    fail(bedrock, "access_denied", SECOND)  # not a failure another model answers
    response = http.post("/chains/answer/invoke", json=BODY)
    assert response.status_code == 502
    message = response.json()["message"]
    assert SECOND in message and PRIMARY not in message


def test_a_fallbacks_failure_mid_stream_names_the_fallback(
    http: httpx.Client, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(reply_tokens=6)
    fail(bedrock, "throttle")
    bedrock.state.add_faults([Fault(kind="stream_internal", after_chunks=2, model=SECOND)])
    response = http.post("/chains/answer/stream", json=BODY)
    assert response.text.startswith(f"[emulator] {SECOND}")
    [error_line] = [line for line in response.text.splitlines() if line.startswith("[error]")]
    assert SECOND in error_line and PRIMARY not in error_line


def test_a_stream_that_times_out_before_its_first_token_falls_back(
    make_server: ServerFactory, tmp_path: Path, bedrock: Emulator
) -> None:
    (tmp_path / "answer.yaml").write_text(CHAIN)
    server = make_server(chains_dir=tmp_path, bedrock_read_timeout=0.5)
    bedrock.state.add_faults([Fault(kind="stall", after_chunks=0, delay_ms=3000, model=PRIMARY)])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post("/chains/answer/stream", json=BODY)
    assert response.status_code == 200
    assert response.text.startswith(f"[emulator] {SECOND}")


def test_stream_events_of_a_fallback_chain_arrive_as_they_come(
    fallback_server: BackgroundServer, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(tokens_per_second=20, reply_tokens=20)  # a second
    with (
        httpx.Client(base_url=fallback_server.url, timeout=30) as client,
        client.stream(
            "POST", "/chains/answer/stream_events", json={"input": BODY["input"]}
        ) as response,
    ):
        assert response.status_code == 200
        for _ in response.iter_bytes():
            break
        [call] = bedrock.state.calls
        assert call.status == "running"  # events while the model is still generating
