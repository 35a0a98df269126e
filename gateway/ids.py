"""Time-ordered unique ids (UUIDv7, RFC 9562)."""

from __future__ import annotations

import os
import time
import uuid


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
