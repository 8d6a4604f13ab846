"""Images in chain files and around them: what ``validate`` refuses (file:line and the fix),
what the installed langchain-aws does with an image (pinning the refusals), the emulator's
image checks (Bedrock's own ValidationException texts), chain tests that name image files,
and ``chainserve render``/``run`` with ``-i photo=@file``.
"""

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from langchain_core.messages import HumanMessage

from service.chains.compat import image_problem
from service.chains.loader import ChainFileErrors, parse
from service.chains.model_spec import ModelSpec
from tests.conftest import EXAMPLE_CHAINS, REPO
from tests.helpers import ANTHROPIC_BODY
from tests.helpers import EMULATED_MODEL as MODEL
from tests.image_files import b64, data_url, jpeg, png

CHAINSERVE = [sys.executable, "-m", "service"]
CHAIN = f"""\
model:
  id: {MODEL}
prompt:
  messages:
    - user: "Look: {{text}}"
    - image: photo
inputs:
  text: {{}}
  photo:
    type: image
"""


def refusals(text: str) -> list[str]:
    with pytest.raises(ChainFileErrors) as caught:
        parse(text, Path("c.yaml"))
    return [str(error) for error in caught.value.errors]


# --- validate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("    type: image\n", "    type: string\n"),
            "c.yaml:6: prompt.messages[1]: image 'photo' needs an input of type image, but "
            "inputs.photo is string; declare it with type: image, or place text with a user "
            "message",
        ),
        (
            ("    - image: photo\n", ""),
            "c.yaml:8: inputs.photo: input 'photo' is declared but the prompt never uses it; "
            "place it with '- image: photo' in the prompt's messages or remove the input",
        ),
        (
            ("    - image: photo\n", "    - user: and {photo}\n"),
            "c.yaml:6: prompt.messages[1]: input 'photo' is an image; place it with '- image: "
            "photo' (an item of its own, next to the user text) instead of {photo} in a user "
            "message",
        ),
        (
            ("    type: image\n", "    type: image\n    default: cat.png\n"),
            "c.yaml:9: inputs.photo: an image input has no default; to let callers leave it "
            "out, write required: false (its image item is then left out of the prompt)",
        ),
        (
            ("    type: image\n", "    type: image\n    max_length: 9\n"),
            "c.yaml:9: inputs.photo: max_length applies to string and messages inputs, not image",
        ),
        (
            ("    type: image\n", "    type: image\n    enum: [a]\n"),
            "c.yaml:9: inputs.photo: enum applies to string, integer and number inputs, not image",
        ),
        (
            ("    - image: photo\n", "    - image: photo\n      cache: true\n"),
            "c.yaml:6: prompt.messages[1]: cache applies to system, user and assistant "
            "messages, not image",
        ),
        (
            (f"  id: {MODEL}\n", "  provider: bedrock\n  id: meta.llama3-8b-instruct-v1:0\n"),
            "c.yaml:2: model.provider: langchain-aws's ChatBedrock (provider: bedrock, "
            "InvokeModel) cannot send images to 'meta' models: it writes the chat as one text "
            "prompt; use provider: bedrock-converse",
        ),
    ],
)
def test_validate_refuses_images_that_cannot_work(change: tuple[str, str], expected: str) -> None:
    assert expected in refusals(CHAIN.replace(*change))


def test_an_image_item_naming_no_input() -> None:
    errors = refusals(CHAIN.replace("- image: photo", "- image: phot"))
    assert errors[0] == (
        "c.yaml:6: prompt.messages[1]: '- image: phot' names no declared input (did you mean "
        "'photo'?); declare phot under inputs with type: image, or fix the name"
    )


@pytest.mark.parametrize(
    "model",
    [
        {"id": MODEL},
        {"id": "meta.llama3-2-11b-instruct-v1:0"},  # Converse sends any vendor's images
        {"provider": "bedrock", "id": MODEL},  # ChatBedrock: Anthropic's Messages body
        {
            "provider": "bedrock",
            "id": "amazon.nova-lite-v1:0",
        },  # ChatBedrock hands Nova to Converse
    ],
)
def test_models_langchain_aws_sends_images_to(model: dict[str, Any]) -> None:
    assert image_problem(ModelSpec.model_validate(model)) is None


@pytest.mark.parametrize(
    ("vendor", "model_id"),
    [
        ("meta", "meta.llama3-8b-instruct-v1:0"),
        ("mistral", "mistral.mistral-7b-instruct-v0:2"),
        ("amazon", "amazon.titan-text-express-v1"),
    ],
)
def test_chatbedrock_writes_other_vendors_images_into_text(vendor: str, model_id: str) -> None:
    """What the refusal prevents: the installed ChatBedrock turns the chat into one text prompt
    with the image block's repr — its base64 — inside, no image sent. If an upgrade sends
    images to one of these vendors, this fails and the refusal can go."""
    from langchain_aws.chat_models.bedrock import ChatPromptAdapter

    probe = b64(png(1, 1))
    block = {"type": "image", "base64": probe, "mime_type": "image/png"}
    prompt = ChatPromptAdapter.convert_messages_to_prompt(
        vendor, [HumanMessage([{"type": "text", "text": "t"}, block])], model_id
    )
    assert isinstance(prompt, str) and probe in prompt
    assert image_problem(ModelSpec.model_validate({"provider": "bedrock", "id": model_id}))


# --- the emulator checks images as Bedrock does ------------------------------------------


def converse_error(runtime: Any, image: dict[str, Any]) -> str:
    content = [{"text": "what?"}, {"image": image}]
    with pytest.raises(ClientError) as caught:
        runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": content}])
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return str(caught.value.response["Error"]["Message"])


def test_emulator_refuses_converse_images_as_bedrock_does(runtime: Any) -> None:
    assert converse_error(runtime, {"format": "bmp", "source": {"bytes": png()}}) == (
        "1 validation error detected: Value 'bmp' at 'messages.1.member.content.2.member."
        "image.format' failed to satisfy constraint: Member must satisfy enum value set: "
        "[png, jpeg, gif, webp]"
    )
    assert converse_error(runtime, {"format": "jpeg", "source": {"bytes": png()}}) == (
        "The model returned the following errors: messages.0.content.1.image.source.base64: "
        "The image was specified using the image/jpeg media type, but the image appears to "
        "be a image/png image"
    )
    assert converse_error(runtime, {"format": "png", "source": {"bytes": b"not an image"}}) == (
        "The model returned the following errors: messages.0.content.1.image.source.base64: "
        "Could not process image"
    )


def test_emulator_refuses_anthropic_images_as_bedrock_does(runtime: Any) -> None:
    def error(source: dict[str, Any]) -> str:
        content = [{"type": "text", "text": "what?"}, {"type": "image", "source": source}]
        body = {**ANTHROPIC_BODY, "messages": [{"role": "user", "content": content}]}
        with pytest.raises(ClientError) as caught:
            runtime.invoke_model(modelId=MODEL, body=json.dumps(body))
        return str(caught.value.response["Error"]["Message"])

    base = {"type": "base64", "media_type": "image/png", "data": b64(png())}
    assert error({**base, "media_type": "image/bmp"}) == (
        "messages.0.content.1.image.source.base64.media_type: Input should be 'image/jpeg', "
        "'image/png', 'image/gif' or 'image/webp'"
    )
    assert error({**base, "data": b64(jpeg())}) == (
        "messages.0.content.1.image.source.base64: The image was specified using the image/png "
        "media type, but the image appears to be a image/jpeg image"
    )
    reply = runtime.invoke_model(
        modelId=MODEL,
        body=json.dumps(
            {
                **ANTHROPIC_BODY,
                "messages": [{"role": "user", "content": [{"type": "image", "source": base}]}],
            }
        ),
    )
    assert "[image png 64×64]" in json.loads(reply["body"].read())["content"][0]["text"]


# --- chain tests and the command line ------------------------------------------------------

TESTED = (
    CHAIN
    + """\
tests:
  - name: from a file
    inputs:
      text: this
      photo: cat.png
    prompt:
      contains: "[image png 12×7, {size} bytes]"
    output:
      contains: "Look: this [image png 12×7]"
"""
)


def test_a_chain_test_names_an_image_file_beside_the_chain(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(png(12, 7))
    (tmp_path / "look.yaml").write_text(TESTED.replace("{size}", str(len(png(12, 7)))))
    done = subprocess.run(
        [*CHAINSERVE, "test", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 0 failed" in done.stdout + done.stderr


def test_a_chain_test_image_file_must_be_an_image_beside_the_chain(tmp_path: Path) -> None:
    folder = tmp_path / "chains"
    folder.mkdir()
    (tmp_path / "outside.png").write_bytes(png())
    (folder / "notes.png").write_text("not an image")
    text = TESTED.replace("{size}", "1")
    for name, problem in [
        ("missing.png", "cannot read image file 'missing.png': No such file or directory"),
        (
            "../outside.png",
            f"'../outside.png' is outside {folder}; put the image beside the chain file",
        ),
        ("notes.png", "'notes.png' is not a PNG, JPEG, GIF or WebP image"),
    ]:
        errors = refusals_at(folder / "look.yaml", text.replace("photo: cat.png", f"photo: {name}"))
        assert errors == [
            f"{folder / 'look.yaml'}:15: tests[0].inputs.photo: {problem}; give a data URL, or "
            "the name of an image file beside the chain file"
        ]


def refusals_at(path: Path, text: str) -> list[str]:
    with pytest.raises(ChainFileErrors) as caught:
        parse(text, path)
    return [str(error) for error in caught.value.errors]


def test_render_and_run_take_an_image_file(tmp_path: Path) -> None:
    (tmp_path / "look.yaml").write_text(CHAIN)
    (tmp_path / "cat.jpg").write_bytes(jpeg(30, 40))
    common = ["--chains", str(tmp_path), "-i", "text=this", "-i", f"photo=@{tmp_path}/cat.jpg"]
    rendered = subprocess.run(
        [*CHAINSERVE, "render", "look", *common], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    assert f"Look: this\n[image jpeg 30×40, {len(jpeg(30, 40))} bytes]" in rendered.stdout
    ran = subprocess.run(
        [*CHAINSERVE, "run", "look", *common], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.rstrip().endswith("user: Look: this [image jpeg 30×40]")
    inline = ["--chains", str(tmp_path), "-i", "text=x", "-i", f"photo={data_url(png(2, 2))}"]
    as_url = subprocess.run(
        [*CHAINSERVE, "render", "look", *inline], capture_output=True, text=True, timeout=60
    )
    assert "[image png 2×2," in as_url.stdout
    (tmp_path / "notes.txt").write_text("hello")
    bad = subprocess.run(
        [
            *CHAINSERVE,
            "render",
            "look",
            "--chains",
            str(tmp_path),
            "-i",
            "text=x",
            "-i",
            f"photo=@{tmp_path}/notes.txt",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"chainserve render: -i photo: '{tmp_path}/notes.txt' is not a PNG, JPEG, GIF or WebP image"
    )


def test_tiny_png_is_a_real_png() -> None:
    """The example image in the schema and README decodes to a PNG."""
    from service.chains.images import TINY_PNG_DATA_URL

    raw = base64.b64decode(TINY_PNG_DATA_URL.partition(",")[2])
    assert raw.startswith(b"\x89PNG") and raw == png(1, 1)


def test_devs_try_line_works_for_an_image_chain(make_server: Any, tmp_path: Path) -> None:
    """``chainserve dev`` prints a curl for the first chain: a required image gets a 1×1 PNG."""
    from urllib.parse import urlsplit

    from service.chains.catalog import Catalog
    from service.settings import Settings
    from service.terminal import try_lines

    (tmp_path / "look.yaml").write_text(CHAIN)
    served = urlsplit(make_server(chains_dir=tmp_path).url)
    catalog = Catalog(Settings(chains_dir=tmp_path))
    catalog.load()
    lines = try_lines(catalog, tmp_path, served.hostname or "", served.port or 0).splitlines()
    command = lines[1].removeprefix("Try: ")
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("user: Look: Streams are fun. [image png 1×1]")


def test_the_readme_curl_describes_its_image(make_server: Any) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Images") :]
    body = section[section.index("-d '") + 4 : section.index("}}'") + 2]
    examples = make_server(chains_dir=EXAMPLE_CHAINS)
    response = httpx.post(
        f"{examples.url}/chains/describe_image/invoke",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["output"].endswith("user: What colour is this? [image png 1×1]")
