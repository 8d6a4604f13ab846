"""Image inputs: what a request sends, checked, and what the prompt and transcripts show.

A caller sends an image as a data URL (``data:image/png;base64,…``) or as ``{"data":
"<base64>", "media_type": "image/png"}``. Its bytes decide its type (magic bytes): PNG, JPEG,
GIF and WebP are what Bedrock's Converse image block takes (its ``format`` enum), so anything
else — or a declared type the bytes contradict — is refused here, naming the field, instead of
as a Bedrock ValidationException after a round trip. The size limit counts decoded bytes, as
Bedrock's does (3.75 MB per image; 8000 px a side).

A checked image is an :class:`ImageInput`: a ``str`` (its canonical data URL) so that every
place inputs travel as JSON (LangServe events, chain-test reports) carries it unchanged, with a
short ``repr`` so that a log line that shows a value never shows megabytes of base64.
"""

import base64
import binascii
import os
import re
import struct
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from service.chains.reading import UnreadableFile, read_file_bytes

# Media type → Converse's image format (botocore's ImageFormat enum).
FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
# Bedrock's limits per image (API reference, Message.content): 3.75 MB and 8000 px a side.
BEDROCK_MAX_IMAGE_BYTES = 3_750_000
BEDROCK_MAX_SIDE = 8000
# A real 1×1 red PNG: the example in schemas and docs.
TINY_PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mP4z8AAAAMBAQD3A0FDAAAAAElFTkSuQmCC"
_DATA_URL = re.compile(r"data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.DOTALL)
_SHAPE = (
    'send a data URL ("data:image/png;base64,…") or {"data": "<base64>", "media_type": "image/png"}'
)


class ImageInput(str):
    """A checked image: the ``str`` is its data URL; the rest is read from its bytes."""

    media_type: str
    size: int
    """Decoded bytes."""
    width: int | None
    height: int | None

    def __new__(
        cls, media_type: str, data: str, size: int, dims: tuple[int, int] | None
    ) -> "ImageInput":
        made = super().__new__(cls, f"data:{media_type};base64,{data}")
        made.media_type, made.size = media_type, size
        made.width, made.height = dims if dims else (None, None)
        return made

    @property
    def converse_format(self) -> str:
        """``png``, ``jpeg``, ``gif`` or ``webp`` (not ``format``: that is ``str.format``)."""
        return FORMATS[self.media_type]

    @property
    def base64(self) -> str:
        return self.partition(",")[2]

    @classmethod
    def from_block(cls, block: dict[str, Any]) -> "ImageInput":
        """The image in a :meth:`content_block` (as a rendered prompt holds it)."""
        raw = base64.b64decode(block["base64"])
        return cls(str(block.get("mime_type")), block["base64"], len(raw), dimensions(raw))

    def describe(self) -> str:
        """``[image png 64×64, 1234 bytes]``: what transcripts and logs show instead of bytes."""
        dims = f" {self.width}×{self.height}" if self.width is not None else ""
        kind = FORMATS.get(self.media_type, "?")
        return f"[image {kind}{dims}, {self.size} bytes]"

    def content_block(self) -> dict[str, Any]:
        """LangChain's standard image block, which langchain-aws turns into a Converse image
        block (``{"image": {"format", "source": {"bytes"}}}``) and, for Anthropic models on
        InvokeModel, into Anthropic's base64 image source."""
        return {"type": "image", "base64": self.base64, "mime_type": self.media_type}

    def __repr__(self) -> str:
        return f"ImageInput({self.describe()!r})"

    def __reduce__(self) -> Any:  # copies and pickles keep the type (deepcopy uses this)
        return (ImageInput, (self.media_type, self.base64, self.size, self._dims()))

    def _dims(self) -> tuple[int, int] | None:
        return None if self.width is None or self.height is None else (self.width, self.height)


def parse_image(value: Any, max_bytes: int) -> ImageInput:
    """A request's image value → :class:`ImageInput`; ``ValueError`` saying what to send."""
    if isinstance(value, ImageInput):
        return value
    declared: str | None
    data: Any
    if isinstance(value, str):
        declared, data = _data_url(value)
    elif isinstance(value, dict):
        unknown = sorted(set(value) - {"data", "media_type"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} in an image; {_SHAPE}")
        data, declared = value.get("data"), value.get("media_type")
        if not isinstance(data, str):
            raise ValueError(f'an image object needs "data", the image as base64; {_SHAPE}')
        if declared is not None and not isinstance(declared, str):
            raise ValueError('"media_type" is text, such as "image/png"')
    else:
        raise ValueError(f"an image is text or an object, not {_kind(value)}; {_SHAPE}")
    if declared is not None:
        declared = _known_type(declared)
    # The decoded size is known from the text's length: refuse before decoding megabytes.
    if len(data) // 4 * 3 - 2 > max_bytes:
        raise ValueError(_too_large(max_bytes))
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "the image is not valid base64 (standard alphabet A-Z a-z 0-9 + /, padded with =, "
            "no line breaks); encode the file's bytes with base64"
        ) from None
    if not raw:
        raise ValueError(f"the image is empty; {_SHAPE}")
    if len(raw) > max_bytes:
        raise ValueError(_too_large(max_bytes))
    sniffed = sniff(raw)
    if sniffed is None:
        shown = f" (declared {declared})" if declared else ""
        raise ValueError(
            f"the bytes are not a PNG, JPEG, GIF or WebP image{shown}; send one of those "
            "(convert other formats first)"
        )
    if declared is not None and declared != sniffed:
        raise ValueError(
            f"the image is declared {declared} but its bytes are {sniffed}; "
            f"declare {sniffed}, or send the right file"
        )
    dims = dimensions(raw)
    if dims is not None and max(dims) > BEDROCK_MAX_SIDE:
        raise ValueError(
            f"the image is {dims[0]}×{dims[1]} pixels; Bedrock takes at most "
            f"{BEDROCK_MAX_SIDE} a side: scale it down"
        )
    return ImageInput(sniffed, data, len(raw), dims)


def image_field(max_bytes: int, optional: bool) -> Any:
    """A request model's type for an image input: checked by :func:`parse_image` into an
    :class:`ImageInput`, published as :func:`image_schema`."""

    def image(value: Any) -> Any:
        # null: an optional image not sent (as a re-validated model dump writes it)
        return None if value is None and optional else parse_image(value, max_bytes)

    return Annotated[Any, BeforeValidator(image), WithJsonSchema(image_schema(max_bytes, optional))]


def image_schema(max_bytes: int, optional: bool = False) -> dict[str, Any]:
    """An image input's JSON Schema: a base64 data URL, or the object form (or, for an
    optional one, null: not sent)."""
    types = "|".join(kind.removeprefix("image/") for kind in FORMATS)
    # What JSON Schema can state: standard base64, whole and non-empty. The bytes' own rules
    # (their format, decoded size and pixel size) are checked when a request comes in.
    base64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"
    return {
        "anyOf": [
            {
                "type": "string",
                "title": "Data URL",
                "pattern": rf"^data:image/({types});base64,{base64}$",
                "contentMediaType": "image/*",
                "examples": [TINY_PNG_DATA_URL],
            },
            {
                "type": "object",
                "title": "Base64 with a media type",
                "properties": {
                    "data": {
                        "type": "string",
                        "contentEncoding": "base64",
                        "pattern": f"^{base64}$",
                    },
                    "media_type": {"type": "string", "enum": list(FORMATS)},
                },
                "required": ["data"],
                "additionalProperties": False,
            },
            *([{"type": "null"}] if optional else []),
        ],
        "description": f"An image (PNG, JPEG, GIF or WebP), at most {max_bytes} bytes decoded.",
    }


def read_image_file(folder: Path, name: str, max_bytes: int, *, confine: bool = True) -> str:
    """An image file in ``folder`` (a chain test's, beside its chain file) as a data URL, for
    :func:`parse_image` to check like any request's image; ``ValueError`` if it cannot be read.

    A chain test's file is read by chain files' own rules (:mod:`service.chains.reading`): a
    regular file (a FIFO named ``cat.png`` must not hang ``chainserve test``), inside the
    folder, of at most ``max_bytes`` by its size before any byte is read. The command line's
    ``-i photo=@cat.png`` (``confine=False``) reads any file its user names, a pipe such as
    ``@<(curl …)`` too, up to ``max_bytes`` + 1 bytes."""
    try:
        if confine:
            raw = read_file_bytes(folder / name, folder, max_bytes, _FileWords(folder, name))
        else:
            with (folder / name).open("rb") as file:
                raw = file.read(max_bytes + 1)
    except UnreadableFile as exc:
        raise ValueError(exc.message) from None
    except OSError as exc:
        raise ValueError(_FileWords(folder, name).cannot_read(exc)) from None
    if len(raw) > max_bytes:
        raise ValueError(f"{name!r}: {_too_large(max_bytes)}")
    media_type = sniff(raw)
    if media_type is None:
        raise ValueError(f"{name!r} is not a PNG, JPEG, GIF or WebP image")
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


class _FileWords:
    """:class:`service.chains.reading.Wording` for a chain test's image file."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name

    def outside_folder(self, target: Any) -> str:
        # "../cat.png" says where it is; a symlink (or a linked folder) is named with its target.
        named = os.path.normpath(os.path.join(os.path.realpath(self.folder), self.name))
        via = "" if Path(named) == Path(target) else f" (it leads to {target})"
        return f"{self.name!r} is outside {self.folder}{via}; put the image beside the chain file"

    def not_regular(self, kind: str) -> str:
        return f"{self.name!r} is not a regular file ({kind})"

    def too_big(self, size: int, limit: int, grew: bool = False) -> str:
        return (
            f"{self.name!r} is {'more than ' if grew else ''}{size:,} bytes; an image is at most "
            f"{limit:,} bytes: use a smaller image"
        )

    def symlink_loop(self) -> str:
        return f"{self.name!r} is a symlink loop (it never reaches a file)"

    def dangling_symlink(self, target: str) -> str:
        return f"{self.name!r} is a symlink to {target}, which does not exist"

    def cannot_read(self, exc: OSError) -> str:
        return f"cannot read image file {self.name!r}: {exc.strerror or exc}"


def shown_part(part: Any) -> str:
    """A content block as a transcript or a log shows it: text as it is, an image as its description
    (``[image png 64×64, 1234 bytes]``), never its base64; a cache point as ``[cache point]``."""
    if isinstance(part, str):
        return part
    if part.get("type") == "image" and isinstance(part.get("base64"), str):
        return ImageInput.from_block(part).describe()
    url = (part.get("image_url") or {}).get("url") if part.get("type") == "image_url" else None
    if isinstance(url, str) and url.startswith("data:"):  # the block as a model's callbacks see it
        media_type, _, data = url[5:].partition(";base64,")
        try:
            return ImageInput.from_block({"base64": data, "mime_type": media_type}).describe()
        except (ValueError, binascii.Error):
            return "[image]"
    if "cachePoint" in part:  # `cache: true` on the message before (Converse)
        return "[cache point]"
    return str(part.get("text", f"[{part.get('type', 'block')}]"))


def sniff(raw: bytes) -> str | None:
    """The media type the bytes' signature says, among the four Bedrock takes; else None."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def dimensions(raw: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, JPEG or WebP header; None if it cannot be read."""
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) >= 24:
        width, height = struct.unpack(">II", raw[16:24])
        return int(width), int(height)
    if raw[:6] in (b"GIF87a", b"GIF89a") and len(raw) >= 10:
        width, height = struct.unpack("<HH", raw[6:10])
        return int(width), int(height)
    if raw[:2] == b"\xff\xd8":
        return _jpeg_dimensions(raw)
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return _webp_dimensions(raw)
    return None


def _jpeg_dimensions(raw: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 9 <= len(raw) and raw[at] == 0xFF:
        marker, length = raw[at + 1], struct.unpack(">H", raw[at + 2 : at + 4])[0]
        # SOFn frames (not DHT C4, JPG C8, DAC CC) carry the size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", raw[at + 5 : at + 9])
            return int(width), int(height)
        at += 2 + length
    return None


def _webp_dimensions(raw: bytes) -> tuple[int, int] | None:
    """The first chunk's header: VP8 (lossy), VP8L (lossless) or VP8X (extended)."""
    chunk, body = raw[12:16], raw[20:]
    if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(body) >= 10:
        width = int.from_bytes(body[4:7], "little") + 1
        height = int.from_bytes(body[7:10], "little") + 1
        return width, height
    return None


def _data_url(text: str) -> tuple[str, str]:
    if text.startswith(("http://", "https://")):
        raise ValueError(
            "image URLs are not fetched; send the image itself as a data URL "
            '("data:image/png;base64,…")'
        )
    match = _DATA_URL.fullmatch(text)
    if match is None:
        raise ValueError(f"the image is not a data URL; {_SHAPE}")
    if not match["params"].lower().endswith(";base64"):
        raise ValueError("the data URL is not base64; write it as data:image/png;base64,…")
    if not match["type"]:
        raise ValueError("the data URL names no media type; write data:image/png;base64,…")
    return match["type"], match["data"]


def _known_type(declared: str) -> str:
    media_type = declared.strip().lower()
    if media_type in FORMATS:
        return media_type
    hint = "; JPEG's media type is image/jpeg" if media_type in ("image/jpg", "jpg", "jpeg") else ""
    raise ValueError(
        f"{_short(declared)} is not an image type chains take{hint}: send image/png, image/jpeg, "
        "image/gif or image/webp"
    )


def _too_large(max_bytes: int) -> str:
    return (
        f"the image is larger than {max_bytes} bytes (decoded), the most this server takes "
        "per image (CHAINSERVE_MAX_IMAGE_BYTES); send a smaller image"
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:39] + "…")
