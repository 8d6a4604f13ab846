"""Images from chat clients: OpenAI's ``image_url`` content parts and the AI SDK's image
``file`` parts fill a chain's image inputs (``chains/conversation.py``: one rule for both).
Through the official ``openai`` SDK and ``useChat``'s body, on ``chains/describe_image.yaml``."""

import json

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletionContentPartImageParam,
    ChatCompletionContentPartParam,
)

from service.background import BackgroundServer
from service.emulator.server import Emulator
from tests.image_files import data_url, gif, png


@pytest.fixture
def sdk(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="-", max_retries=0)


def image_part(url: str) -> ChatCompletionContentPartImageParam:
    return {"type": "image_url", "image_url": {"url": url, "detail": "auto"}}


def test_an_openai_image_part_fills_the_chains_image_input(
    sdk: openai.OpenAI, bedrock: Emulator
) -> None:
    completion = sdk.chat.completions.create(
        model="describe_image",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What colour is this?"},
                    image_part(data_url(png(3, 2))),
                ],
            }
        ],
    )
    reply = completion.choices[0].message.content or ""
    assert "[image png 3×2]" in reply and "What colour is this?" in reply
    assert completion.usage is not None and completion.usage.prompt_tokens > 4


def test_an_openai_stream_with_an_image(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="describe_image",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "And this?"},
                    image_part(data_url(gif(5, 5), "image/gif")),
                ],
            }
        ],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "[image gif 5×5]" in text


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ([image_part("https://example.com/cat.png")], "not fetched"),
        ([image_part("data:image/png;base64,not base64!")], "base64"),
        ([image_part(data_url(png())), image_part(data_url(png()))], "takes 1 image"),
    ],
)
def test_openai_image_parts_are_checked(
    sdk: openai.OpenAI, content: list[ChatCompletionContentPartParam], words: str
) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        text: list[ChatCompletionContentPartParam] = (
            [{"type": "text", "text": "What is it?"}] if len(content) == 1 else []
        )
        sdk.chat.completions.create(
            model="describe_image",
            messages=[{"role": "user", "content": [*text, *content]}],
        )
    assert words in refused.value.message
    body = refused.value.body
    assert isinstance(body, dict)
    assert body["param"].startswith("messages")


def test_an_image_for_a_chain_without_image_inputs_is_refused(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        sdk.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": [image_part(data_url(png()))]}],
        )
    assert "chain 'chat' takes no images" in refused.value.message


def ui_message(role: str, *parts: dict[str, object]) -> dict[str, object]:
    return {"id": f"m-{role}", "role": role, "parts": list(parts)}


def file_part(raw: bytes, media_type: str = "image/png") -> dict[str, object]:
    return {"type": "file", "mediaType": media_type, "url": data_url(raw, media_type)}


def stream_text(response: httpx.Response) -> str:
    chunks = [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")
    ]
    return "".join(c.get("delta", "") for c in chunks if c.get("type") == "text-delta")


def test_an_ai_sdk_image_file_part_fills_the_chains_image_input(client: httpx.Client) -> None:
    body = {
        "messages": [
            ui_message("user", {"type": "text", "text": "Describe it."}, file_part(png(4, 4)))
        ]
    }
    response = client.post("/chains/describe_image/chat", json=body)
    assert response.status_code == 200
    assert "[image png 4×4]" in stream_text(response)


def test_an_image_in_an_earlier_message_is_refused(client: httpx.Client) -> None:
    body = {
        "messages": [
            ui_message("user", file_part(png())),
            ui_message("assistant", {"type": "text", "text": "A red square."}),
            ui_message("user", {"type": "text", "text": "And now?"}),
        ]
    }
    response = client.post("/chains/describe_image/chat", json=body)
    assert response.status_code == 422
    assert "images are taken from the last user message only" in response.json()["message"]


def test_an_image_sent_twice_is_refused(client: httpx.Client) -> None:
    body = {
        "messages": [ui_message("user", {"type": "text", "text": "Hi"}, file_part(png()))],
        "inputs": {"photo": data_url(png())},
    }
    response = client.post("/chains/describe_image/chat", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "inputs.photo"


def test_an_image_without_the_text_the_chain_needs_is_refused(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        sdk.chat.completions.create(
            model="describe_image",
            messages=[{"role": "user", "content": [image_part(data_url(png()))]}],
        )
    assert "has an image but no text" in refused.value.message
