"""Time-ordered unique ids (UUIDv7, RFC 9562)."""

from __future__ import annotations

import os
import time
import uuid

from crypto import sm3


class Uuid7Generator:
    """Makes UUIDv7 ids that sort in the order they were made, within one generator.

    Within one millisecond the 12-bit `rand_a` field is used as a counter started at a
    random value (RFC 9562 §6.2, method 1); when it overflows, the timestamp is advanced.
    """

    __slots__ = ("_counter", "_last_ms")

    def __init__(self) -> None:
        self._last_ms = 0
        self._counter = 0

    def new(self) -> str:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > self._last_ms:
            self._last_ms = now_ms
            self._counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            self._counter += 1
            if self._counter > 0xFFF:
                self._last_ms += 1
                self._counter = 0
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (self._last_ms << 80) | (0x7 << 76) | (self._counter << 64) | (0b10 << 62) | rand_b
        return str(uuid.UUID(int=value))


def derived_uuid7(timestamp_ms: int, seed: bytes) -> str:
    """A UUIDv7 fixed by its inputs: the same time and seed always give the same id.

    The gateway names an event after its ingress record (the record's timestamp, and its
    partition and offset as seed), so a document processed again after a crash gets the
    event id it got the first time, and recipients can drop the second delivery.
    """
    digest = sm3(seed)
    rand_a = int.from_bytes(digest[:2], "big") & 0xFFF
    rand_b = int.from_bytes(digest[2:10], "big") & ((1 << 62) - 1)
    value = ((timestamp_ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (rand_a << 64) \
        | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def uuid7_time_ms(value: str) -> int:
    """The Unix time in milliseconds a UUIDv7 carries (0 for an id that is not one)."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return 0
    return parsed.int >> 80 if parsed.version == 7 else 0
