"""A pull cursor is opaque to the recipient, read back only for the topic it was made for,
and refused with its code when it is anything else; a page's delivery item gives back the
record exactly."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.deliveries.pull import (
    CURSOR_INVALID,
    MAX_CURSOR_CHARS,
    Cursor,
    PullRefused,
    delivery_from_json,
    delivery_json,
)
from gateway.kafka.names import StoredMessage

TOPIC = "px.deliver.cn.customs.sh.v1"


def test_a_cursor_reads_back_for_its_topic_only() -> None:
    cursor = Cursor(TOPIC, {0: 17, 3: 2})
    text = cursor.encode()
    assert "=" not in text and TOPIC not in text  # opaque, URL-safe
    again = Cursor.decode(text, topic=TOPIC)
    assert again == cursor and again.offset(1) == 0
    with pytest.raises(PullRefused) as info:
        Cursor.decode(text, topic="px.deliver.cn.port.sh.v1")
    assert info.value.code == CURSOR_INVALID
    assert "another delivery topic" in info.value.message


def _encoded(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


@pytest.mark.parametrize("text", [
    "not base64 at all!",
    _encoded([1, 2]),
    _encoded({"v": 2, "t": TOPIC, "o": {}}),
    _encoded({"v": 1, "t": TOPIC, "o": {"0": -1}}),
    _encoded({"v": 1, "t": TOPIC, "o": {"0": True}}),
    _encoded({"v": 1, "t": TOPIC, "o": {"x": 1}}),
    _encoded({"v": 1, "t": TOPIC, "o": {"\u00b2": 1}}),  # a digit to isdigit(), not to int()
    _encoded({"v": 1, "t": TOPIC, "o": {"9" * 5000: 1}}),
    _encoded({"v": 1, "t": TOPIC, "o": {"0": 2**63}}),  # beyond Kafka's int64 offsets
    _encoded({"v": 1, "t": TOPIC, "o": {str(2**31): 0}}),  # beyond its int32 partitions
    _encoded({"v": 1, "t": TOPIC, "o": {str(n): 0 for n in range(2000)}}),
    "A" * (MAX_CURSOR_CHARS + 1),
])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(PullRefused) as info:
        Cursor.decode(text, topic=TOPIC)
    assert info.value.code == CURSOR_INVALID


def test_a_delivery_item_holds_the_record_exactly() -> None:
    message = StoredMessage(TOPIC, 2, 41, b"key", b"\xc3\x01value",
                            (("px-event-id", b"e1"), ("px-seal", b"\x00\xff")), 1_700_000_000_000)
    item = json.loads(json.dumps(delivery_json(message)))
    assert delivery_from_json(TOPIC, item) == message
    keyless = StoredMessage(TOPIC, 0, 0, None, b"v", (), 0)
    assert delivery_from_json(TOPIC, delivery_json(keyless)) == keyless
