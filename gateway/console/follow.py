"""Following a topic in the background for the console's indexes: from its start, then as
messages come, each handed to a filing function; a broker gone is tried again from where it
got, after a pause that grows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from gateway.errors import BrokerUnavailable
from gateway.kafka.names import StoredMessage
from gateway.kafka.wire import Broker, new_reader, partitions_of, stop_consumer, stored_message

log = structlog.get_logger(__name__)

# Between attempts to read the topic again (broker gone, topic not made yet): doubled after
# each failed one, up to the last.
_FIRST_PAUSE_S = 1.0
_LAST_PAUSE_S = 30.0
# Messages filed between two turns of the event loop: filing one into an index costs ~30 us
# (SQLite, a few B-trees) besides its decoding, so a start reading a long topic holds the
# loop for ~20 ms at a time, not for the whole topic.
_BATCH = 500


class Follower:
    def __init__(self, broker: Broker, topic: str, file: Callable[[StoredMessage], None]
                 ) -> None:
        self._broker = broker
        self._topic = topic
        self._file = file
        self._next: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name=f"console-follows-{self._topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        pause_s = _FIRST_PAUSE_S
        while True:
            consumer = new_reader(self._broker)
            try:
                await consumer.start()
                await self._read(consumer)
            except (KafkaError, BrokerUnavailable) as exc:
                log.warning("console.topic_unread", topic=self._topic, error=str(exc),
                            retry_in_s=pause_s)
            finally:
                await stop_consumer(consumer)
            await asyncio.sleep(pause_s)
            pause_s = min(2 * pause_s, _LAST_PAUSE_S)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        """Reads on for as long as the broker answers; returns at once (to be asked again
        after a pause) while the topic is not made yet."""
        partitions = await partitions_of(self._broker, [self._topic])
        if not partitions:
            return
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, self._next.get(tp.partition, 0))
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=_BATCH)
            for records in batches.values():
                for record in records:
                    message = stored_message(record)
                    self._file(message)
                    self._next[message.partition] = message.offset + 1
