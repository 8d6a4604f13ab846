"""The event-stream encoder, checked against botocore's own decoder."""

import json

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, EventStreamMessage

from service.emulator import eventstream


def decode(data: bytes, piece: int | None = None) -> list[EventStreamMessage]:
    buffer = EventStreamBuffer()
    messages: list[EventStreamMessage] = []
    pieces = [data] if piece is None else [data[i : i + piece] for i in range(0, len(data), piece)]
    for part in pieces:
        buffer.add_data(part)
        messages.extend(buffer)
    return messages


def test_event_round_trips_through_botocore() -> None:
    raw = eventstream.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hé"}})
    [message] = decode(raw)
    assert message.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(message.payload) == {"contentBlockIndex": 0, "delta": {"text": "hé"}}
    assert message.prelude.total_length == len(raw)


def test_exception_message_headers() -> None:
    [message] = decode(eventstream.exception("modelStreamErrorException", "boom"))
    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "modelStreamErrorException"
    assert json.loads(message.payload) == {"message": "boom"}


@pytest.mark.parametrize("piece", [1, 7, 64])
def test_messages_split_across_reads(piece: int) -> None:
    raw = b"".join(eventstream.event("e", {"i": i}) for i in range(5))
    assert [json.loads(m.payload)["i"] for m in decode(raw, piece)] == [0, 1, 2, 3, 4]


def test_corrupt_message_crc_is_detected() -> None:
    raw = bytearray(eventstream.event("e", {"i": 1}))
    raw[-6] ^= 0xFF  # a payload byte
    with pytest.raises(ChecksumMismatch):
        decode(bytes(raw))


def test_corrupt_prelude_crc_is_detected() -> None:
    raw = bytearray(eventstream.event("e", {"i": 1}))
    raw[9] ^= 0xFF  # inside the prelude CRC
    with pytest.raises(ChecksumMismatch):
        decode(bytes(raw))


def test_empty_payload_and_no_headers() -> None:
    [message] = decode(eventstream.encode_message({}, b""))
    assert message.headers == {} and message.payload == b""


def test_exception_message_with_more_members() -> None:
    raw = eventstream.exception("modelStreamErrorException", "boom", originalStatusCode=500)
    [message] = decode(raw)
    assert json.loads(message.payload) == {"message": "boom", "originalStatusCode": 500}
