"""A stand-in for the producer a TrailWriter writes to, shared by the trail's unit tests. The
same flows against the real broker are in tests/integration."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gateway.kafka.names import StoredMessage


@dataclass(frozen=True, slots=True)
class Metadata:
    """What the producer answers, as far as TrailWriter reads it."""

    partition: int
    offset: int


@dataclass(slots=True)
class Batch:
    """What TrailWriter fills through the producer's create_batch()."""

    messages: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)

    def append(self, *, key: bytes, value: bytes, timestamp: None,
               headers: list[tuple[str, bytes]]) -> object:
        self.messages.append((key, value, headers))
        return self


class BatchSending:
    """create_batch/send_batch on top of a fake's send_and_wait: a batch is stored whole,
    its future answering the first message's offset."""

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Batch, topic: str, *,
                         partition: int) -> asyncio.Future[Metadata]:
        first = None
        for key, value, headers in batch.messages:
            stored = await self.send_and_wait(topic, value, key=key, partition=partition,
                                              headers=headers)
            first = first or stored
        done: asyncio.Future[Metadata] = asyncio.get_running_loop().create_future()
        done.set_result(first)  # type: ignore[arg-type]  # a StoredMessage stands in for aiokafka's metadata
        return done

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes, partition: int,
                            headers: list[tuple[str, bytes]]) -> Metadata:
        raise NotImplementedError


class MemoryTopic(BatchSending):
    """Keeps what was sent, in order, with the offset each partition would have given."""

    def __init__(self) -> None:
        self.messages: list[StoredMessage] = []

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes, partition: int,
                            headers: list[tuple[str, bytes]]) -> Metadata:
        offset = sum(1 for m in self.messages if m.partition == partition)
        self.messages.append(StoredMessage(topic, partition, offset, key, value, tuple(headers), 0))
        return Metadata(partition, offset)
