"""Image inputs through a real server and the emulator: what reaches Bedrock, every 422, the
size limit at its boundary, and where images travel (batch, streams, render, schemas, logs).

The emulator echoes each image block it received as ``[image png 64×64]`` and counts it in
usage (width × height / 750 tokens), so an assertion on the echo is an assertion on the
Converse image block (or Anthropic image source) that langchain-aws sent.
"""

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from langserve import RemoteRunnable

from service.background import BackgroundServer
from service.chains.images import dimensions, parse_image, sniff
from tests.conftest import ServerFactory
from tests.helpers import parse_sse
from tests.image_files import MAKERS, b64, data_url, gif, jpeg, png, webp

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
LOOK = f"""
model:
  id: {CLAUDE}
prompt:
  messages:
    - system: You look at images.
    - user: Before the image.
    - image: photo
    - user: "After it: {{question}}"
inputs:
  photo:
    type: image
  question:
    type: string
    default: what is it?
"""
# ChatBedrock on InvokeModel: Anthropic's Messages body with its base64 image source.
LOOK_INVOKE = LOOK.replace(f"  id: {CLAUDE}", f"  provider: bedrock\n  id: {CLAUDE}")
MAYBE = f"""
model:
  id: {CLAUDE}
prompt:
  messages:
    - user: Describe this.
    - image: photo
inputs:
  photo:
    type: image
    required: false
"""
LIMIT = 2000  # decoded bytes, on the small-limit server


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("image-chains")
    for name, text in {"look": LOOK, "look-invoke": LOOK_INVOKE, "maybe": MAYBE}.items():
        (path / f"{name}.yaml").write_text(text)
    return path


@pytest.fixture(scope="module")
def server(make_server: ServerFactory, folder: Path) -> BackgroundServer:
    return make_server(chains_dir=folder)


@pytest.fixture(scope="module")
def small(make_server: ServerFactory, folder: Path) -> BackgroundServer:
    return make_server(chains_dir=folder, max_image_bytes=LIMIT)


def invoke(server: BackgroundServer, chain: str, inputs: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/chains/{chain}/invoke", json={"input": inputs}, timeout=30)


def refusal(server: BackgroundServer, photo: Any, chain: str = "look") -> dict[str, str]:
    response = invoke(server, chain, {"photo": photo})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    return dict(error)


# --- the image reaches Bedrock -----------------------------------------------------------


@pytest.mark.parametrize("chain", ["look", "look-invoke"])
def test_the_image_is_sent_between_its_texts_in_one_user_message(
    server: BackgroundServer, chain: str
) -> None:
    response = invoke(server, chain, {"photo": data_url(png(64, 64))})
    assert response.status_code == 200, response.text
    output = response.json()["output"]
    # One user turn: text, image, text in file order (the emulator echoes each turn as a line).
    assert output.endswith("user: Before the image. [image png 64×64] After it: what is it?"), (
        output
    )
    usage = response.json()["metadata"]["usage"]
    words = len(output.split("\n", 1)[1].replace("system: ", "").replace("user: ", "").split())
    # the echoed words (the emulator counts its description too), plus 64×64/750 → 6
    assert usage["input_tokens"] == words + 6


@pytest.mark.parametrize("kind", ["png", "jpeg", "gif", "webp"])
@pytest.mark.parametrize("form", ["data URL", "object", "object without media_type"])
def test_the_four_formats_in_both_forms(server: BackgroundServer, kind: str, form: str) -> None:
    raw = MAKERS[kind](37, 23)
    photo: Any = {
        "data URL": data_url(raw, f"image/{kind}"),
        "object": {"data": b64(raw), "media_type": f"image/{kind}"},
        "object without media_type": {"data": b64(raw)},
    }[form]
    response = invoke(server, "look", {"photo": photo})
    assert response.status_code == 200, response.text
    assert f"[image {kind} 37×23]" in response.json()["output"]


def test_webp_sizes_from_each_header() -> None:
    for header in ("VP8", "VP8L", "VP8X"):
        assert dimensions(webp(300, 17, header)) == (300, 17)
        assert sniff(webp(300, 17, header)) == "image/webp"


def test_an_optional_image_not_sent_leaves_its_item_out(server: BackgroundServer) -> None:
    without = invoke(server, "maybe", {})
    assert without.status_code == 200, without.text
    assert without.json()["output"].endswith("user: Describe this.")
    sent = invoke(server, "maybe", {"photo": data_url(gif(2, 3), "image/gif")})
    assert sent.json()["output"].endswith("user: Describe this. [image gif 2×3]")
    # null is "not sent" for an optional image (the schema says so); events routes too
    assert invoke(server, "maybe", {"photo": None}).json()["output"] == without.json()["output"]
    events = httpx.post(f"{server.url}/chains/maybe/stream_events", json={"input": {}})
    assert events.status_code == 200 and parse_sse(events.text)[-1][0] == "end"
    schema = httpx.get(f"{server.url}/chains/maybe/input_schema").json()
    assert schema["properties"]["photo"]["anyOf"][-1] == {"type": "null"}


# --- every wire format ---------------------------------------------------------------------


def test_batch_and_both_streams_carry_images(server: BackgroundServer) -> None:
    photo = data_url(jpeg(10, 20), "image/jpeg")
    batch = httpx.post(
        f"{server.url}/chains/look/batch",
        json={"inputs": [{"photo": photo}, {"photo": data_url(png(1, 1))}]},
    )
    assert batch.status_code == 200, batch.text
    first, second = batch.json()["output"]
    assert "[image jpeg 10×20]" in first and "[image png 1×1]" in second

    url = f"{server.url}/chains/look/stream"
    text = httpx.post(url, json={"input": {"photo": photo}}, headers={"accept": "text/plain"})
    assert text.status_code == 200 and "[image jpeg 10×20]" in text.text
    sse = httpx.post(url, json={"input": {"photo": photo}}, headers={"accept": "text/event-stream"})
    events = parse_sse(sse.text)
    assert "[image jpeg 10×20]" in "".join(data for name, data in events if name == "data")
    assert events[-1][0] == "end"


def test_langserve_remote_runnable_sends_an_image(server: BackgroundServer) -> None:
    remote: RemoteRunnable[Any, Any] = RemoteRunnable(f"{server.url}/chains/look")
    assert "[image webp 5×6]" in remote.invoke({"photo": data_url(webp(5, 6), "image/webp")})


@pytest.mark.parametrize("route", ["stream_events", "stream_log"])
def test_langserve_event_streams_carry_images(server: BackgroundServer, route: str) -> None:
    response = httpx.post(
        f"{server.url}/chains/look/{route}", json={"input": {"photo": data_url(png(4, 4))}}
    )
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    assert events[-1][0] == "end" and all(name != "error" for name, _ in events)
    assert "[image png 4×4]" in json.dumps(events, ensure_ascii=False)


def test_openai_takes_the_image_from_inputs(server: BackgroundServer) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="none")
    reply = client.chat.completions.create(
        model="look",
        messages=[{"role": "user", "content": "what colour?"}],
        extra_body={"inputs": {"photo": data_url(png(8, 8))}},
    )
    assert "[image png 8×8] After it: what colour?" in (reply.choices[0].message.content or "")


def test_a_url_cannot_carry_an_image(server: BackgroundServer) -> None:
    response = httpx.get(f"{server.url}/chains/look/stream", params={"photo": data_url(png(1, 1))})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "input.photo",
            "message": "an image cannot be sent in a URL; POST the inputs as JSON to /invoke "
            "or /stream instead",
        }
    ]
    minted = httpx.post(
        f"{server.url}/chains/look/stream-url", json={"input": {"photo": data_url(png(1, 1))}}
    )
    assert minted.status_code == 422 and "cannot be sent in a URL" in minted.text


# --- 422s ----------------------------------------------------------------------------------

BMP = b"BM" + b"\0" * 60


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        (
            data_url(BMP, "image/bmp"),
            "'image/bmp' is not an image type chains take: send "
            "image/png, image/jpeg, image/gif or image/webp",
        ),
        (
            {"data": b64(BMP)},
            "the bytes are not a PNG, JPEG, GIF or WebP image; send one of "
            "those (convert other formats first)",
        ),
        (
            data_url(png(), "image/jpeg"),
            "the image is declared image/jpeg but its bytes are "
            "image/png; declare image/png, or send the right file",
        ),
        (
            data_url(png(), "image/jpg"),
            "'image/jpg' is not an image type chains take; JPEG's "
            "media type is image/jpeg: send image/png, image/jpeg, image/gif or image/webp",
        ),
        (
            "data:image/png;base64,iVBOR w0K",
            "the image is not valid base64 (standard alphabet "
            "A-Z a-z 0-9 + /, padded with =, no line breaks); encode the file's bytes with base64",
        ),
        (
            "data:image/png,rawtext",
            "the data URL is not base64; write it as data:image/png;base64,…",
        ),
        (
            "https://example.com/cat.png",
            "image URLs are not fetched; send the image itself as "
            'a data URL ("data:image/png;base64,…")',
        ),
        (
            "cat.png",
            'the image is not a data URL; send a data URL ("data:image/png;base64,…") '
            'or {"data": "<base64>", "media_type": "image/png"}',
        ),
        (
            42,
            "an image is text or an object, not a number; send a data URL "
            '("data:image/png;base64,…") or {"data": "<base64>", "media_type": "image/png"}',
        ),
        (
            [],
            "an image is text or an object, not a list; send a data URL "
            '("data:image/png;base64,…") or {"data": "<base64>", "media_type": "image/png"}',
        ),
        (
            {"data": b64(png()), "url": "x"},
            "unknown key 'url' in an image; send a data URL "
            '("data:image/png;base64,…") or {"data": "<base64>", "media_type": "image/png"}',
        ),
        (
            {"media_type": "image/png"},
            'an image object needs "data", the image as base64; '
            'send a data URL ("data:image/png;base64,…") or {"data": "<base64>", "media_type": '
            '"image/png"}',
        ),
        (
            data_url(png(8001, 2)),
            "the image is 8001×2 pixels; Bedrock takes at most 8000 a side: scale it down",
        ),
    ],
)
def test_bad_images_are_422_naming_the_field(
    server: BackgroundServer, photo: Any, message: str
) -> None:
    assert refusal(server, photo) == {"field": "input.photo", "message": message}


def test_a_required_image_missing_and_null(server: BackgroundServer) -> None:
    assert refusal(server, None)["message"].startswith("an image is text or an object, not null")
    response = invoke(server, "look", {})
    assert response.json()["errors"] == [{"field": "input.photo", "message": "required; add it"}]


def test_the_size_limit_at_its_boundary(small: BackgroundServer) -> None:
    header = png(1, 1)
    exact = header + b"\0" * (LIMIT - len(header))  # trailing bytes: still a PNG to sniff
    response = invoke(small, "maybe", {"photo": data_url(exact)})
    assert response.status_code == 200, response.text
    assert (
        f"[image png 1×1, {LIMIT} bytes]"
        in httpx.post(
            f"{small.url}/chains/maybe/render", json={"input": {"photo": data_url(exact)}}
        ).text
    )
    over = refusal(small, data_url(exact + b"\0"), chain="maybe")
    assert over["message"] == (
        f"the image is larger than {LIMIT} bytes (decoded), the most this server takes per "
        "image (CHAINSERVE_MAX_IMAGE_BYTES); send a smaller image"
    )


def test_the_default_body_limit_carries_the_largest_image(server: BackgroundServer) -> None:
    from service.settings import Settings

    settings = Settings()
    largest = settings.max_image_bytes
    header = png(1, 1)
    raw = header + b"\0" * (largest - len(header))
    body = json.dumps({"input": {"photo": data_url(raw)}}).encode()
    assert len(body) <= settings.max_body_bytes
    render = httpx.post(
        f"{server.url}/chains/maybe/render",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert render.status_code == 200, render.text
    assert f"[image png 1×1, {largest} bytes]" in render.text


# --- render, schemas, logs --------------------------------------------------------------


def test_render_describes_the_image_and_never_shows_its_base64(server: BackgroundServer) -> None:
    photo = data_url(png(64, 32))
    response = httpx.post(f"{server.url}/chains/look/render", json={"input": {"photo": photo}})
    assert response.status_code == 200, response.text
    assert response.json()["messages"][1] == {
        "role": "user",
        "content": f"Before the image.\n[image png 64×32, {len(png(64, 32))} bytes]\n"
        "After it: what is it?",
    }
    assert b64(png(64, 32))[:40] not in response.text


def test_input_schema_and_openapi_describe_both_forms(server: BackgroundServer) -> None:
    schema = httpx.get(f"{server.url}/chains/look/input_schema").json()
    photo = schema["properties"]["photo"]
    data_url_form, object_form = photo["anyOf"]
    assert data_url_form["type"] == "string" and data_url_form["contentMediaType"] == "image/*"
    assert data_url_form["pattern"].startswith("^data:image/(png|jpeg|gif|webp);base64,")
    assert object_form["properties"]["media_type"]["enum"] == [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
    ]
    assert object_form["properties"]["data"]["contentEncoding"] == "base64"
    assert schema["required"] == ["photo"]
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert "look_Input" in document["components"]["schemas"]
    # GET …/stream does not offer it as a query parameter: a URL cannot carry an image.
    query = document["paths"]["/chains/look/stream"]["get"]["parameters"]
    assert [p["name"] for p in query if p["in"] == "query"] == ["question"]
    # …nor does POST …/stream-url, which mints such a URL.
    assert list(document["components"]["schemas"]["look_UrlInput"]["properties"]) == ["question"]
    published = document["components"]["schemas"]["look_Input"]["properties"]["photo"]
    assert published["anyOf"] == photo["anyOf"]


def test_logs_never_hold_the_base64(
    server: BackgroundServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The service's own log lines (the ``chainserve`` logger, at its most talkative); the
    libraries' debug logs (botocore, langchain-aws) print whole requests, prompts and all,
    and are never switched on by chainserve."""
    raw = png(16, 16)
    with caplog.at_level(logging.DEBUG, logger="chainserve"):
        assert invoke(server, "look", {"photo": data_url(raw)}).status_code == 200
        invoke(server, "look", {"photo": data_url(raw, "image/gif")})  # a 422
    ours = [r for r in caplog.records if r.name.startswith(("chainserve", "uvicorn"))]
    assert ours
    assert all(b64(raw)[10:50] not in r.getMessage() for r in ours)


def test_an_image_value_shows_as_its_description() -> None:
    image = parse_image(data_url(png(3, 2)), 10_000)
    assert repr(image) == f"ImageInput('[image png 3×2, {len(png(3, 2))} bytes]')"
    assert image.describe() == f"[image png 3×2, {len(png(3, 2))} bytes]"
    assert image == data_url(png(3, 2))  # as JSON, it is the data URL sent
