"""``POST /chains/{name}/render``: the messages the model would receive, with no model call."""

import httpx

from service.emulator.server import Emulator

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def test_render_shows_the_prompt_and_calls_no_model(
    client: httpx.Client, bedrock: Emulator
) -> None:
    response = client.post("/chains/summarize/render", json={"input": {"text": "Cats sleep."}})
    assert response.status_code == 200
    assert response.json() == {
        "messages": [
            {
                "role": "system",
                "content": "You are a precise editor. Summarize faithfully, without adding facts.",
            },
            {
                "role": "user",
                "content": "Summarize the following text in 3 sentences:\n\nCats sleep.",
            },
        ],
        "model": MODEL,
        "provider": "bedrock-converse",
        "params": {"temperature": 0.2, "max_tokens": 400},
    }
    assert bedrock.state.calls == []


def test_render_splices_history_in_place(client: httpx.Client) -> None:
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"type": "ai", "content": "Hello Ada!"},  # LangServe's spelling
    ]
    body = client.post(
        "/chains/chat/render", json={"input": {"history": history, "question": "Who am I?"}}
    ).json()
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("system", "You are a helpful, concise assistant."),
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada!"),
        ("user", "Who am I?"),
    ]


def test_render_of_mustache_keeps_inputs_as_sent(client: httpx.Client) -> None:
    body = client.post(
        "/chains/translate/render", json={"input": {"text": "<b>Fish & chips</b>"}}
    ).json()
    assert body["messages"][-1] == {"role": "user", "content": "<b>Fish & chips</b>"}
    assert "Translate into French." in body["messages"][0]["content"]  # the enum's default
    assert body["provider"] == "bedrock" and body["params"]["stop"] == ["</translation>"]


def test_render_validates_input_as_invoke_does(client: httpx.Client) -> None:
    response = client.post(
        "/chains/summarize/render", json={"input": {"sentences": "3", "extra": 1}}
    )
    assert response.status_code == 422
    fields = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert fields == {
        "input.text": "required; add it",
        "input.sentences": "input should be a valid integer",
        "input.extra": "unknown field; remove it",
    }
    assert client.post("/chains/nope/render", json={"input": {}}).status_code == 404


def test_render_is_in_the_openapi_document(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operation = paths["/chains/summarize/render"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/summarize_Request"
    }
