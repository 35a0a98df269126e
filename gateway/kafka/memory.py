"""An in-memory broker, for unit tests of what publishes (as httpx ships `MockTransport`).

`MemoryBroker` takes messages through a producer's interface, `send` one at a time as
`gateway.kafka.wire.Producer` and `create_batch` / `send_batch` as the trail writer does,
and keeps them per topic and partition, with offsets from 0. It acknowledges each message at
once, or, while `holding`, only when `release` is called, so that a test can see what is
done before and after the broker has a message; `refuse` makes the next sends to a topic
fail as a broker would. Not for running the gateway: integration tests use the local
broker (gateway.kafka.local_broker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError

from gateway.kafka.names import Headers, StoredMessage
from gateway.kafka.wire import KeyPartitioner


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """Where the broker put a message (what aiokafka's RecordMetadata says of it)."""

    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class MemoryBatch:
    """A record batch being built (aiokafka's `BatchBuilder`): all or nothing on the broker."""

    max_messages: int
    messages: list[tuple[bytes | None, bytes, Headers]] = field(default_factory=list)

    def append(self, *, key: bytes | None, value: bytes, timestamp: int | None,
               headers: Iterable[tuple[str, bytes]]) -> int | None:
        """The message's place in the batch; None when the batch is full."""
        if len(self.messages) >= self.max_messages:
            return None
        self.messages.append((key, value, tuple(headers)))
        return len(self.messages) - 1


class MemoryBroker:
    """Topics of `partitions` partitions each, created when first written to."""

    def __init__(self, partitions: int = 1, *, batch_messages: int = 1000) -> None:
        self.partitions = partitions
        self.holding = False
        self.requests = 0  # produce calls taken: one per `send`, one per `send_batch`
        self._batch_messages = batch_messages
        self._logs: dict[tuple[str, int], list[StoredMessage]] = {}
        self._held: list[tuple[asyncio.Future[Acknowledged], Acknowledged]] = []
        self._refused: dict[str, KafkaError] = {}
        self._partitioner = KeyPartitioner()

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None
                   ) -> asyncio.Future[Acknowledged]:
        """Takes one message; the future is done once the broker has it."""
        return self._take(topic, partition, key, [(key, value, tuple(headers or ()))])

    async def flush(self) -> None:
        """Waits until every message taken so far is acknowledged (held ones: released)."""
        if self._held:
            await asyncio.wait([future for future, _ in self._held])

    def create_batch(self) -> MemoryBatch:
        return MemoryBatch(self._batch_messages)

    async def send_batch(self, batch: MemoryBatch, topic: str, *, partition: int
                         ) -> asyncio.Future[Acknowledged]:
        """Takes a batch whole; the future names its first message."""
        return self._take(topic, partition, None, batch.messages)

    def refuse(self, topic: str, error: KafkaError) -> None:
        """The next sends to `topic` fail with `error`, as the broker's answer."""
        self._refused[topic] = error

    def release(self) -> None:
        """Acknowledges every message taken while `holding`, in the order taken."""
        held, self._held = self._held, []
        for future, at in held:
            if not future.done():
                future.set_result(at)

    def messages(self, topic: str, partition: int | None = None) -> list[StoredMessage]:
        """What a topic (or one partition of it) holds, partition by partition."""
        return [message for (name, number), log in sorted(self._logs.items())
                if name == topic and partition in (None, number) for message in log]

    def topics(self) -> set[str]:
        return {name for name, _ in self._logs}

    def _take(self, topic: str, partition: int | None, key: bytes | None,
              messages: list[tuple[bytes | None, bytes, Headers]]
              ) -> asyncio.Future[Acknowledged]:
        self.requests += 1
        future: asyncio.Future[Acknowledged] = asyncio.get_running_loop().create_future()
        refused = self._refused.pop(topic, None)
        if refused is not None:
            future.set_exception(refused)
            return future
        if partition is None:
            every = list(range(self.partitions))
            partition = self._partitioner(key, every, every)
        log = self._logs.setdefault((topic, partition), [])
        at = Acknowledged(topic, partition, len(log))
        log.extend(StoredMessage(topic, partition, len(log) + n, message_key, value, headers, 0)
                   for n, (message_key, value, headers) in enumerate(messages))
        if self.holding:
            self._held.append((future, at))
        else:
            future.set_result(at)
        return future
