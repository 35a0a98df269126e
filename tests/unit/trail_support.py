"""A stand-in for the producer a TrailWriter writes to, shared by the trail's unit tests. The
same flows against the real broker are in tests/integration."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.kafka import StoredMessage


@dataclass(frozen=True, slots=True)
class Metadata:
    """What the producer's send_and_wait answers, as far as TrailWriter reads it."""

    partition: int
    offset: int


class MemoryTopic:
    """Keeps what was sent, in order, with the offset each partition would have given."""

    def __init__(self) -> None:
        self.messages: list[StoredMessage] = []

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes, partition: int,
                            headers: list[tuple[str, bytes]]) -> Metadata:
        offset = sum(1 for m in self.messages if m.partition == partition)
        self.messages.append(StoredMessage(topic, partition, offset, key, value, tuple(headers), 0))
        return Metadata(partition, offset)
