"""Encoder for the AWS event-stream binary framing (``application/vnd.amazon.eventstream``).

A message is: a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes), the
headers, the payload, and a CRC32 of everything before it. botocore decodes it; nothing
public encodes it, so this module does.
"""

import json
import struct
import zlib
from typing import Any

_STRING = 7  # header value type: UTF-8 string with a 2-byte length


def encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    raw_headers = encode_headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """An ``event`` message, as Bedrock sends ``contentBlockDelta`` or ``chunk``."""
    return encode_message(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        json.dumps(payload, separators=(",", ":")).encode(),
    )


def exception(exception_type: str, message: str, **fields: Any) -> bytes:
    """An in-stream ``exception`` message, e.g. ``modelStreamErrorException``.

    ``fields``: members beside ``message`` (``originalStatusCode``, ``originalMessage``).
    """
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": message, **fields}).encode(),
    )
