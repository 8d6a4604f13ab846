"""Images in a real browser: the playground's file picker (read as a data URL, a thumbnail,
the prompt preview, a run), and Chromium's own PNG, JPEG and WebP encoders as a cross-check
of the size reader that the service and the emulator share.
"""

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from service.background import BackgroundServer
from service.emulator.server import Emulator
from tests.browser import Tab, expect, skip_unless_available
from tests.conftest import ServerFactory
from tests.image_files import png

skip_unless_available()

CHAIN = """\
model:
  id: anthropic.claude-3-haiku-20240307-v1:0
prompt:
  messages:
    - user: "Look:"
    - image: photo
    - user: "{question}"
inputs:
  photo:
    type: image
    description: The picture.
  question:
    type: string
    default: What is it?
"""


@pytest.fixture(scope="module")
def server(
    make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> BackgroundServer:
    folder: Path = tmp_path_factory.mktemp("browser-images")
    (folder / "look.yaml").write_text(CHAIN)
    return make_server(chains_dir=folder)


def test_the_playground_picks_previews_and_sends_an_image(
    tab: Callable[[BackgroundServer], Tab], server: BackgroundServer, bedrock: Emulator
) -> None:
    session = tab(server)
    page = session.open("/playground?chain=look")
    expect(page.locator("#chain-name")).to_have_text("look")
    picker = page.locator("input#input-photo")
    expect(picker).to_have_attribute("type", "file")
    expect(picker).to_have_attribute("accept", "image/png,image/jpeg,image/gif,image/webp")
    # Before a file is chosen the preview stands a 1×1 image in, and says what to fill in.
    expect(page.locator("#prompt-status")).to_contain_text("‹photo›: fill in to run")

    picker.set_input_files(
        files=[{"name": "red.png", "mimeType": "image/png", "buffer": png(20, 10)}]
    )
    thumb = page.locator('.field[data-field="photo"] img.thumb')
    expect(thumb).to_be_visible()
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"))
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 20
    size = len(png(20, 10))
    expect(page.locator("#prompt .msg").nth(0)).to_contain_text(
        f"Look:\n[image png 20×10, {size} bytes]\nWhat is it?"
    )
    page.click("#run")
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#output")).to_contain_text("user: Look: [image png 20×10] What is it?")
    [call] = bedrock.state.calls
    assert call.status == "completed"
    # What the page sent is the data URL a FileReader made of the file.
    [run] = [r for r in session.sent if r.url.endswith("/chains/look/stream")]
    assert '"photo":"data:image/png;base64,iVBORw0KGgo' in (run.post_data or "")


def test_chromium_encoded_images_are_read_as_made(
    tab: Callable[[BackgroundServer], Tab], server: BackgroundServer
) -> None:
    """PNG, JPEG and WebP (lossy and lossless) from the browser's own encoders: the size
    read from each header is the canvas's."""
    page = tab(server).open("/playground")
    made = page.evaluate(
        """() => {
          const canvas = document.createElement("canvas");
          canvas.width = 37; canvas.height = 23;
          const paint = canvas.getContext("2d");
          paint.fillStyle = "#c33"; paint.fillRect(0, 0, 37, 23);
          return {
            png: canvas.toDataURL("image/png"),
            jpeg: canvas.toDataURL("image/jpeg", 0.9),
            webp: canvas.toDataURL("image/webp", 0.8),
            webp_lossless: canvas.toDataURL("image/webp", 1),
          };
        }"""
    )
    for kind, url in made.items():
        assert url.startswith(f"data:image/{kind.split('_')[0]};base64,"), kind
        response = httpx.post(
            f"{server.url}/chains/look/render", json={"input": {"photo": url}}, timeout=30
        )
        assert response.status_code == 200, (kind, response.text)
        shown = response.json()["messages"][0]["content"]
        assert f"[image {kind.split('_')[0]} 37×23, " in shown, (kind, shown)
