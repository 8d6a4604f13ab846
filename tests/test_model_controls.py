"""Model controls end to end: chain file → langchain-aws → the emulator (asserting on what it
received) → every wire format. Reasoning stays out of the output unless the file includes it;
a guardrail's intervention is a stop reason; prompt-cache tokens reach every protocol's usage.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langserve import RemoteRunnable

from service.background import BackgroundServer
from service.emulator.server import Emulator
from tests.conftest import ServerFactory
from tests.helpers import parse_sse

SONNET_4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
SONNET_37 = "anthropic.claude-3-7-sonnet-20250219-v1:0"
REASONING = "[emulator] reasoning about: What is two and two?"
QUESTION = "What is two and two?"
BLOCKED = "Sorry, the model cannot answer this question."

PROMPT = """
prompt:
  messages:
    - system: You answer arithmetic questions in one short sentence.
      cache: true
    - user: "{question}"
inputs:
  question: {}
"""

PROMPT_NO_CACHE = PROMPT.replace("      cache: true\n", "")


def _thinker(provider: str, model_id: str, include: bool) -> str:
    return f"""model:
  provider: {provider}
  id: {model_id}
  params: {{max_tokens: 3000}}
  reasoning: {{budget_tokens: 2000, include: {str(include).lower()}}}
  guardrail: {{id: gr1abc, version: "3", trace: enabled}}
  service_tier: flex
  request_metadata: {{team: search, "cost:center": "42"}}
{PROMPT}"""


CHAINS = {
    "think": _thinker("bedrock-converse", SONNET_4, include=True),
    "think-quiet": _thinker("bedrock-converse", SONNET_4, include=False),
    "think-invoke": _thinker("bedrock", SONNET_37, include=True),
    "think-invoke-quiet": _thinker("bedrock", SONNET_37, include=False),
    "nova-fast": f"""model:
  id: us.amazon.nova-pro-v1:0
  params: {{top_k: 20, max_tokens: 200}}
  latency: optimized
  service_tier: priority
{PROMPT_NO_CACHE}""",
}


@pytest.fixture(scope="module")
def server(
    make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> BackgroundServer:
    folder = tmp_path_factory.mktemp("controls")
    for name, text in CHAINS.items():
        (folder / f"{name}.yaml").write_text(text)
    return make_server(chains_dir=folder)


@pytest.fixture
def client(server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def invoke(client: httpx.Client, chain: str, question: str = QUESTION) -> dict[str, Any]:
    response = client.post(f"/chains/{chain}/invoke", json={"input": {"question": question}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sse(client: httpx.Client, chain: str, question: str = QUESTION) -> tuple[str, dict[str, Any]]:
    """The streamed text of an SSE stream, and its final metadata event."""
    response = client.post(
        f"/chains/{chain}/stream",
        json={"input": {"question": question}},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    text = "".join(data for name, data in events if name == "data")
    metadata = [data for name, data in events if name == "metadata"][-1]  # the run's end
    return text, metadata


def ai_sdk(client: httpx.Client, chain: str, question: str = QUESTION) -> list[dict[str, Any]]:
    body = {
        "id": "chat-1",
        "trigger": "submit-message",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": question}]}],
    }
    response = client.post(f"/chains/{chain}/chat", json=body)
    assert response.status_code == 200, response.text
    events = [event.removeprefix("data: ") for event in response.text.split("\n\n") if event]
    return [json.loads(event) for event in events if event != "[DONE]"]


def sdk(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


# -- each key reaches Bedrock as Bedrock expects -----------------------------------------------


def test_converse_gets_every_control(client: httpx.Client, bedrock: Emulator) -> None:
    invoke(client, "think")
    [call] = bedrock.state.calls
    assert call.operation.startswith("converse")
    request = call.request
    assert request["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2000}
    }
    assert request["inferenceConfig"] == {"maxTokens": 3000}
    assert request["guardrailConfig"] == {
        "guardrailIdentifier": "gr1abc",
        "guardrailVersion": "3",
        "trace": "enabled",
    }
    assert request["serviceTier"] == {"type": "flex"}
    assert request["requestMetadata"] == {"team": "search", "cost:center": "42"}

    invoke(client, "nova-fast")
    request = bedrock.state.calls[-1].request
    assert request["additionalModelRequestFields"] == {"inferenceConfig": {"topK": 20}}
    assert request["performanceConfig"] == {"latency": "optimized"}
    assert request["serviceTier"] == {"type": "priority"}


def test_invoke_model_gets_every_control_it_takes(client: httpx.Client, bedrock: Emulator) -> None:
    invoke(client, "think-invoke")
    [call] = bedrock.state.calls
    assert call.operation.startswith("invoke")
    assert call.request["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert call.request["headers"] == {
        "guardrailIdentifier": "gr1abc",
        "guardrailVersion": "3",
        "trace": "ENABLED",
        "serviceTier": "flex",
        "requestMetadata": json.dumps({"team": "search", "cost:center": "42"}),
    }


def test_a_cache_point_follows_the_cached_message_as_each_api_spells_it(
    server: BackgroundServer,
) -> None:
    from langchain_aws.chat_models.bedrock import ChatPromptAdapter
    from langchain_aws.chat_models.bedrock_converse import _messages_to_bedrock

    from service.chains.loader import parse
    from service.chains.runnable import build_prompt

    def rendered(name: str) -> Any:
        prompt = build_prompt(parse(CHAINS[name], Path(f"{name}.yaml")))
        return prompt.invoke({"question": QUESTION}).to_messages()

    messages, system = _messages_to_bedrock(rendered("think"))
    assert system[-1] == {"cachePoint": {"type": "default"}}
    assert messages == [{"role": "user", "content": [{"text": QUESTION}]}]
    system_blocks: Any
    system_blocks, _ = ChatPromptAdapter.format_messages("anthropic", rendered("think-invoke"))
    assert system_blocks[-1]["cache_control"] == {"type": "ephemeral"}


# -- reasoning: out of the output, in the metadata when included --------------------------------


@pytest.mark.parametrize("chain", ["think-quiet", "think-invoke-quiet"])
def test_reasoning_stays_out_of_every_output(
    client: httpx.Client, server: BackgroundServer, chain: str
) -> None:
    body = invoke(client, chain)
    assert "reasoning" not in body["output"]
    assert body["output"].startswith("[emulator]")
    assert "reasoning" not in body["metadata"]
    plain = client.post(f"/chains/{chain}/stream", json={"input": {"question": QUESTION}}).text
    assert plain == body["output"]
    text, metadata = sse(client, chain)
    assert text == body["output"] and "reasoning" not in metadata
    reply = sdk(server).chat.completions.create(model=chain, messages=[ask(QUESTION)])
    assert reply.choices[0].message.content == body["output"]
    chunks = ai_sdk(client, chain)
    assert "".join(c["delta"] for c in chunks if c["type"] == "text-delta") == body["output"]
    assert not [c for c in chunks if c["type"].startswith("reasoning")]


@pytest.mark.parametrize("chain", ["think", "think-invoke"])
def test_included_reasoning_is_in_the_metadata(
    client: httpx.Client, server: BackgroundServer, chain: str
) -> None:
    body = invoke(client, chain)
    assert body["metadata"]["reasoning"] == REASONING
    assert "reasoning about" not in body["output"]
    batch = client.post(f"/chains/{chain}/batch", json={"inputs": [{"question": QUESTION}]})
    assert batch.json()["metadata"]["runs"][0]["reasoning"] == REASONING
    text, metadata = sse(client, chain)
    assert text == body["output"] and metadata["reasoning"] == REASONING
    chunks = ai_sdk(client, chain)
    assert [c["type"] for c in chunks if c["type"].startswith("reasoning")] == [
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
    ]
    [delta] = [c for c in chunks if c["type"] == "reasoning-delta"]
    assert delta["delta"] == REASONING
    assert "reasoning about" not in "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    remote: RemoteRunnable[Any, Any] = RemoteRunnable(f"{server.url}/chains/{chain}")
    assert remote.invoke({"question": QUESTION}) == body["output"]


def ask(text: str) -> Any:
    return {"role": "user", "content": text}


# -- guardrail ---------------------------------------------------------------------------------


def test_a_guardrail_intervention_is_a_stop_reason(
    client: httpx.Client, server: BackgroundServer
) -> None:
    question = "Is this BLOCKED?"
    body = invoke(client, "think", question)
    assert body["output"] == BLOCKED
    assert body["metadata"]["stop_reason"] == "guardrail_intervened"
    assessment = body["metadata"]["guardrail"]["inputAssessment"]["gr1abc"]
    assert assessment["topicPolicy"]["topics"][0]["action"] == "BLOCKED"
    text, metadata = sse(client, "think", question)
    assert text == BLOCKED and metadata["stop_reason"] == "guardrail_intervened"
    assert metadata["guardrail"] == body["metadata"]["guardrail"]
    client_sdk = sdk(server)
    reply = client_sdk.chat.completions.create(model="think", messages=[ask(question)])
    assert reply.choices[0].finish_reason == "content_filter"
    stream = client_sdk.chat.completions.create(
        model="think", messages=[ask(question)], stream=True
    )
    reasons = [chunk.choices[0].finish_reason for chunk in stream if chunk.choices]
    assert reasons[-1] == "content_filter"
    finish = next(c for c in ai_sdk(client, "think", question) if c["type"] == "finish")
    assert finish["finishReason"] == "content-filter"
    assert finish["messageMetadata"]["guardrail"] == body["metadata"]["guardrail"]


def test_a_prompt_the_guardrail_lets_through_has_no_trace(client: httpx.Client) -> None:
    body = invoke(client, "think")
    assert body["metadata"]["stop_reason"] == "end_turn"
    assert "guardrail" not in body["metadata"]


# -- cache tokens in every protocol's usage ----------------------------------------------------


@pytest.mark.parametrize("chain", ["think", "think-invoke"])
def test_cache_tokens_reach_every_usage(
    client: httpx.Client, server: BackgroundServer, chain: str
) -> None:
    first = invoke(client, chain)["metadata"]["usage"]
    assert (first["cache_read_tokens"], first["cache_write_tokens"]) == (0, 8)
    assert first["input_tokens"] >= 8  # the cached tokens are part of the input
    usage = invoke(client, chain)["metadata"]["usage"]
    assert (usage["cache_read_tokens"], usage["cache_write_tokens"]) == (8, 0)
    batch = client.post(
        f"/chains/{chain}/batch", json={"inputs": [{"question": "a?"}, {"question": "b?"}]}
    ).json()["metadata"]
    assert batch["usage"]["cache_read_tokens"] == 16
    assert [run["usage"]["cache_read_tokens"] for run in batch["runs"]] == [8, 8]
    assert sse(client, chain)[1]["usage"]["cache_read_tokens"] == 8
    client_sdk = sdk(server)
    reply = client_sdk.chat.completions.create(model=chain, messages=[ask(QUESTION)])
    assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 8
    stream = client_sdk.chat.completions.create(
        model=chain, messages=[ask(QUESTION)], stream=True, stream_options={"include_usage": True}
    )
    [last] = [chunk for chunk in stream if chunk.usage is not None]
    assert last.usage is not None and last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 8
    finish = next(c for c in ai_sdk(client, chain) if c["type"] == "finish")
    assert finish["messageMetadata"]["usage"]["cache_read_tokens"] == 8


def test_a_chain_without_cache_points_reports_no_cache_tokens(client: httpx.Client) -> None:
    usage = invoke(client, "nova-fast")["metadata"]["usage"]
    assert set(usage) == {"input_tokens", "output_tokens", "total_tokens"}


def test_the_run_log_line_counts_cache_tokens(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    invoke(client, "think")
    with caplog.at_level("INFO", logger="chainserve"):
        run_id = invoke(client, "think")["metadata"]["run_id"]
    [line] = [r.getMessage() for r in caplog.records if run_id in r.getMessage()]
    assert line.endswith("cache_read_tokens=8 cache_write_tokens=0")


def test_a_request_temperature_on_a_thinking_chain_gets_bedrocks_refusal(
    server: BackgroundServer,
) -> None:
    # The chain file cannot set temperature with a budget (refused at load); a request can,
    # and Bedrock refuses it: 422 with its reason, never a 500.
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        sdk(server).chat.completions.create(
            model="think", messages=[ask(QUESTION)], temperature=0.5
        )
    assert "`temperature` may only be set to 1 when thinking is enabled" in str(caught.value)


def test_the_playground_shows_the_tokens_the_cache_served(
    tab: Any, server: BackgroundServer, client: httpx.Client
) -> None:
    from playwright.sync_api import expect

    invoke(client, "think")  # writes the system prompt to the cache
    page = tab(server).open("/playground?chain=think")
    page.fill("#input-question", QUESTION)
    page.click("#run")
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#stat-tokens")).to_contain_text(", 8 cached)")
    expect(page.locator("#output")).not_to_contain_text("reasoning about")


def test_the_rendered_prompt_shows_where_the_cache_point_is(client: httpx.Client) -> None:
    rendered = client.post("/chains/think/render", json={"input": {"question": QUESTION}}).json()
    system = rendered["messages"][0]
    assert system["role"] == "system" and system["content"].endswith("\n[cache point]")
    assert rendered["messages"][1] == {"role": "user", "content": QUESTION}
