"""The Vercel AI SDK's chat protocol (``POST /chains/{name}/chat``) on the wire: the raw UI
message stream, read with httpx. tests/test_ai_sdk_js.py runs the ``ai`` package's own client.
"""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.emulator.server import Emulator
from service.emulator.state import Fault, Pace
from tests.conftest import ServerFactory

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

# The keys each chunk type may carry. The ai package's schema for them is strict (an unknown
# key fails the stream) in ai 6.0.0 and the 5.0 releases; 6.0.322, which the client tests run,
# is lenient, so this list is what guards those readers.
ALLOWED_KEYS = {
    "start": {"type", "messageId", "messageMetadata"},
    "start-step": {"type"},
    "text-start": {"type", "id"},
    "text-delta": {"type", "id", "delta"},
    "text-end": {"type", "id"},
    "finish-step": {"type"},
    "finish": {"type", "finishReason", "messageMetadata"},
    "error": {"type", "errorText"},
}


def user(text: str, id: str = "u1") -> dict[str, Any]:
    return {"id": id, "role": "user", "parts": [{"type": "text", "text": text}]}


def chat_body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A body as DefaultChatTransport sends it."""
    return {"id": "chat-1", "messages": list(messages), "trigger": "submit-message", **extra}


def chunks_of(response: httpx.Response) -> list[Any]:
    """The ``data:`` payloads of a UI message stream: JSON chunks, and ``[DONE]`` as a string."""
    assert response.text.endswith("\n\n")
    found = []
    for event in response.text.split("\n\n")[:-1]:
        assert event.startswith("data: ") and "\n" not in event, event
        data = event.removeprefix("data: ")
        found.append(data if data == "[DONE]" else json.loads(data))
    return found


def invoke(client: httpx.Client, chain: str, **inputs: Any) -> dict[str, Any]:
    response = client.post(f"/chains/{chain}/invoke", json={"input": inputs})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- the wire ---------------------------------------------------------------------------------


def test_the_stream_is_the_ui_message_stream_protocol(client: httpx.Client) -> None:
    response = client.post("/chains/chat/chat", json=chat_body(user("Hello there")))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["cache-control"] == "no-cache"
    chunks = chunks_of(response)
    assert chunks[-1] == "[DONE]"
    parts = chunks[:-1]
    kinds = [chunk["type"] for chunk in parts]
    deltas = kinds.count("text-delta")
    assert deltas >= 1
    assert kinds == [
        "start",
        "start-step",
        "text-start",
        *["text-delta"] * deltas,
        "text-end",
        "finish-step",
        "finish",
    ]
    for chunk in parts:
        assert set(chunk) <= ALLOWED_KEYS[chunk["type"]], chunk
    start, finish = parts[0], parts[-1]
    run_id = response.headers["x-run-id"]
    assert start == {
        "type": "start",
        "messageId": run_id,
        "messageMetadata": {"run_id": run_id, "model": MODEL},
    }
    assert {chunk["id"] for chunk in parts if "id" in chunk} == {parts[2]["id"]}

    expected = invoke(client, "chat", question="Hello there")
    assert "".join(c["delta"] for c in parts if c["type"] == "text-delta") == expected["output"]
    assert finish["finishReason"] == "stop"
    metadata = finish["messageMetadata"]
    assert metadata["usage"] == expected["metadata"]["usage"]
    assert metadata["stop_reason"] == "end_turn"
    assert isinstance(metadata["latency_ms"], int)
    # start's and finish's metadata, merged as the reader does: /invoke's metadata, same keys.
    assert {**start["messageMetadata"], **metadata}.keys() == expected["metadata"].keys()


def test_a_reply_cut_by_max_tokens_finishes_with_length(
    client: httpx.Client, bedrock: Emulator
) -> None:
    bedrock.state.pace = Pace(reply_tokens=500)  # summarize allows 400
    finish = chunks_of(client.post("/chains/summarize/chat", json=chat_body(user("Long."))))[-2]
    assert finish["type"] == "finish" and finish["finishReason"] == "length"
    assert finish["messageMetadata"]["stop_reason"] == "max_tokens"


def test_a_failure_mid_stream_is_an_error_chunk(client: httpx.Client, bedrock: Emulator) -> None:
    bedrock.state.add_faults([Fault(kind="stream_error", after_chunks=3)])
    response = client.post("/chains/chat/chat", json=chat_body(user("one two three four five")))
    assert response.status_code == 200  # sent before the failure: it cannot change any more
    chunks = chunks_of(response)
    assert [c if c == "[DONE]" else c["type"] for c in chunks][:3] == [
        "start",
        "start-step",
        "text-start",
    ]
    error, done = chunks[-2:]
    assert done == "[DONE]"
    assert set(error) == {"type", "errorText"} and error["type"] == "error"
    assert "finish" not in [c["type"] for c in chunks[:-1]]  # never reported as finished
    assert any(c["type"] == "text-delta" for c in chunks[:-1])
    body = json.loads(error["errorText"])
    assert body["status_code"] == 502 and body["code"] == "bedrock_error"
    assert body["request_id"] == response.headers["x-request-id"]


def test_a_failure_before_the_first_chunk_gets_its_status(
    client: httpx.Client, bedrock: Emulator
) -> None:
    bedrock.state.add_faults([Fault(kind="throttle", times=2)])  # the model and its fallback
    response = client.post("/chains/chat/chat", json=chat_body(user("Hi")))
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"
    assert "retry-after" in response.headers
    assert response.json()["code"] == "throttled"


def test_history_is_the_text_of_earlier_messages(client: httpx.Client) -> None:
    """Text parts are joined by a blank line; reasoning, step, source, tool and data parts are
    the assistant's workings, not what it said: the model never sees them."""
    assistant = {
        "id": "a1",
        "role": "assistant",
        "metadata": {"run_id": "earlier"},
        "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "text": "SECRET REASONING", "state": "done"},
            {"type": "text", "text": "Hello Ada!", "state": "done"},
            {"type": "source-url", "sourceId": "s1", "url": "https://example.com/"},
            {"type": "tool-lookup", "toolCallId": "t1", "state": "output-available", "input": {}},
            {"type": "data-weather", "data": {"city": "Paris"}},
            {"type": "text", "text": "How can I help?"},
        ],
    }
    only_tools = {"id": "a0", "role": "assistant", "parts": [{"type": "dynamic-tool"}]}
    body = chat_body(user("My name is Ada."), only_tools, assistant, user("What is my name?", "u2"))
    response = client.post("/chains/chat/chat", json=body)
    text = "".join(c["delta"] for c in chunks_of(response)[:-1] if c["type"] == "text-delta")
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada!\n\nHow can I help?"},
    ]
    assert text == invoke(client, "chat", history=history, question="What is my name?")["output"]
    assert "SECRET" not in text and "Paris" not in text


def test_inputs_come_from_the_inputs_field(client: httpx.Client) -> None:
    body = chat_body(user("Good morning"), inputs={"language": "German"}, appField="ignored")
    response = client.post("/chains/translate/chat", json=body)
    text = "".join(c["delta"] for c in chunks_of(response)[:-1] if c["type"] == "text-delta")
    assert text == invoke(client, "translate", text="Good morning", language="German")["output"]
    assert "German" in text


FILE_PART = {
    "type": "file",
    "mediaType": "application/pdf",
    "url": "data:application/pdf;base64,AAAA",
}


@pytest.mark.parametrize(
    ("chain", "body", "field", "says"),
    [
        ("chat", chat_body(), "messages", "at least 1 item"),
        ("chat", {"id": "x"}, "messages", "required"),
        ("chat", chat_body({"id": "a", "role": "assistant", "parts": []}), "messages", "user"),
        ("chat", chat_body({"role": "tool", "parts": []}), "messages.0.role", "must be one of"),
        ("chat", chat_body({"role": "user", "content": "Hi"}), "messages.0", "no parts"),
        (
            "chat",
            chat_body({"role": "user", "parts": [{"type": "text", "text": "Hi"}, FILE_PART]}),
            "messages.0.parts.1",
            "file parts (application/pdf) are not supported",
        ),
        (
            "chat",
            chat_body({"role": "user", "parts": [{"type": "text"}]}),
            "messages.0.parts.0.text",
            "string",
        ),
        (
            "chat",
            chat_body({"role": "user", "parts": [{"text": "Hi"}]}),
            "messages.0.parts.0.type",
            "type",
        ),
        (
            "chat",
            chat_body({"role": "user", "parts": [{"type": "reasoning", "text": "hm"}]}),
            "messages.0",
            "no text part",
        ),
        ("chat", chat_body(user("Hi"), inputs=["x"]), "inputs", "should be an object"),
        (
            "chat",
            chat_body(user("Hi"), inputs={"question": "x"}),
            "inputs.question",
            "comes from messages",
        ),
        ("chat", chat_body(user("Hi"), inputs={"colour": "red"}), "inputs.colour", "unknown field"),
        ("chat", chat_body(user("x" * 4001)), "messages", "at most 4000"),
        ("translate", chat_body(user("Hi"), language="German"), "language", 'inside "inputs"'),
        (
            "translate",
            chat_body(user("Hi"), inputs={"language": "Klingon"}),
            "inputs.language",
            "one of",
        ),
        (
            "translate",
            chat_body(user("Hi"), user("again", "u2")),
            "messages",
            "no conversation history",
        ),
    ],
)
def test_bad_requests_name_the_field(
    client: httpx.Client, chain: str, body: dict[str, Any], field: str, says: str
) -> None:
    response = client.post(f"/chains/{chain}/chat", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "invalid_input"
    assert error["errors"][0]["field"] == field, error
    assert says in error["errors"][0]["message"], error


def test_a_key_given_twice_is_refused(client: httpx.Client) -> None:
    raw = b'{"messages": [{"role": "user", "role": "assistant", "parts": []}]}'
    response = client.post(
        "/chains/chat/chat", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "messages.0.role"


def test_other_statuses(client: httpx.Client) -> None:
    body = chat_body(user("Hi"))
    assert client.post("/chains/nope/chat", json=body).status_code == 404
    plain = client.post(
        "/chains/chat/chat", content=json.dumps(body), headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 415
    assert client.get("/chains/chat/chat").status_code == 405


def test_a_chain_that_cannot_take_a_conversation(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    (tmp_path / "pair.yaml").write_text(
        "model: {id: anthropic.claude-3-haiku-20240307-v1:0}\n"
        'prompt: {messages: [{user: "{first} and {second}"}]}\n'
        "inputs: {first: {type: string}, second: {type: string}}\n"
    )
    server = make_server(chains_dir=tmp_path)
    response = httpx.post(f"{server.url}/chains/pair/chat", json=chat_body(user("Hi")))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"
    assert "cannot take a conversation" in response.json()["message"]
