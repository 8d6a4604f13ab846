"""Tiny images made in the tests, byte by byte, with known sizes: no fixture files needed.

PNG is a whole valid image (zlib-compressed rows); GIF, JPEG and WebP carry a real header
(what Bedrock's format check and every size reader look at) around a stand-in body. The
browser test makes real PNG, JPEG and WebP files with Chromium's canvas as a cross-check.
"""

import base64
import struct
import zlib


def png(width: int = 64, height: int = 64) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def gif(width: int = 64, height: int = 64) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\xff\x00\x00\x00\x00\x00"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + image + b"\x3b"


def jpeg(width: int = 64, height: int = 64) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def webp(width: int = 64, height: int = 64, kind: str = "VP8X") -> bytes:
    if kind == "VP8X":
        body = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
        body += (height - 1).to_bytes(3, "little")
    elif kind == "VP8L":
        bits = (width - 1) | ((height - 1) << 14)
        body = b"\x2f" + bits.to_bytes(4, "little") + b"\x00"
    else:  # VP8: a key frame's tag, start code, then the sizes
        body = b"\x9d\x01\x00\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00\x00"
    chunk = kind.encode().ljust(4) + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


MAKERS = {"png": png, "gif": gif, "jpeg": jpeg, "webp": webp}


def data_url(raw: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
