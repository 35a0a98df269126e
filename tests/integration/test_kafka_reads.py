"""Reading messages by place (topic, partition, offset) from the real broker: what receipt
lookups, `portgw dlq show` and the auditors' tools rest on."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from gateway.errors import BrokerUnavailable
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.wire import (
    PlaceReader,
    ensure_topics,
    new_producer,
    pages_until_end,
    read_at,
    read_places,
)

TOPIC = "px.test.places.v1"


@pytest.fixture
def broker(own_broker: LocalBroker) -> LocalBroker:
    """TOPIC is one name for every test here (and a test stops the broker): each test has a
    broker of its own."""
    return own_broker


async def _fill(bootstrap: str, counts: dict[int, int], value_bytes: int = 16,
                *, batch_each: bool = False) -> None:
    """`counts[p]` messages on partition p, keyed and valued by their place; with
    `batch_each`, each in a record batch of its own (sent after the one before is stored)."""
    await ensure_topics(bootstrap, {TOPIC: len(counts)})
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        sent = []
        for partition, count in counts.items():
            for offset in range(count):
                sent.append(await producer.send(
                    TOPIC, _value(partition, offset, value_bytes),
                    key=f"{partition}:{offset}".encode(), partition=partition))
                if batch_each:
                    await sent[-1]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _value(partition: int, offset: int, size: int) -> bytes:
    return f"{partition}:{offset}:".encode().ljust(size, b".")


def test_read_at_finds_scattered_places_and_leaves_out_those_past_the_end(
    broker: LocalBroker,
) -> None:
    async def scenario() -> None:
        await _fill(broker.bootstrap_servers, {0: 300, 1: 40})
        wanted = [(TOPIC, 0, 0), (TOPIC, 0, 151), (TOPIC, 0, 299), (TOPIC, 1, 39),
                  (TOPIC, 1, 7), (TOPIC, 1, 7)]
        past_end = [(TOPIC, 0, 300), (TOPIC, 1, 1000)]
        found = await read_at(broker.bootstrap_servers, wanted + past_end)
        assert sorted(found) == sorted(set(wanted))
        for (_, partition, offset), message in found.items():
            assert (message.partition, message.offset) == (partition, offset)
            assert message.key == f"{partition}:{offset}".encode()
            assert message.value == _value(partition, offset, 16)

    asyncio.run(scenario())


def test_reading_an_early_place_does_not_read_the_partition_to_its_end(
    broker: LocalBroker,
) -> None:
    """With fetches of about one message, what the consumer got through shows how far it
    read: to the last place wanted, skipping the stretch between two places."""

    async def scenario() -> None:
        await _fill(broker.bootstrap_servers, {0: 400}, value_bytes=1024, batch_each=True)
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    max_partition_fetch_bytes=1024, fetch_max_bytes=1024)
        await consumer.start()
        try:
            found = await read_places(consumer, [(TOPIC, 0, 5), (TOPIC, 0, 300)])
            got_to = await consumer.position(TopicPartition(TOPIC, 0))
        finally:
            await consumer.stop()
        assert sorted(found) == [(TOPIC, 0, 5), (TOPIC, 0, 300)]
        assert got_to < 320

    asyncio.run(scenario())


def test_reading_to_the_end_gives_page_after_page_and_times_out_only_when_stalled(
    broker: LocalBroker,
) -> None:
    """A receipt book started afresh reads the whole receipt topic this way, filing each
    page before it takes the next: it holds a fetch's worth at a time, not the topic, and
    a read that keeps making progress does not time out, however long it takes in all.
    Here each fetch brings about one message and the reader takes 25 ms over each page."""

    async def scenario() -> None:
        await _fill(broker.bootstrap_servers, {0: 60}, value_bytes=1024, batch_each=True)
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers,
                                    enable_auto_commit=False, fetch_max_wait_ms=5,
                                    max_partition_fetch_bytes=1024, fetch_max_bytes=1024)
        await consumer.start()
        pages = []
        try:
            async for page in pages_until_end(consumer, {TopicPartition(TOPIC, 0): 0},
                                              timeout_s=0.5):
                pages.append(page)
                await asyncio.sleep(0.025)
        finally:
            await consumer.stop()
        assert [m.offset for page in pages for m in page] == list(range(60))
        assert len(pages) >= 30

    asyncio.run(scenario())


def test_a_place_reader_answers_many_callers_at_once_and_says_when_the_broker_is_gone(
    broker: LocalBroker,
) -> None:
    async def scenario() -> None:
        await _fill(broker.bootstrap_servers, {0: 50, 1: 50})
        reader = PlaceReader(broker.bootstrap_servers, timeout_s=5.0)
        try:
            places = [(TOPIC, p, o) for p in (0, 1) for o in range(0, 50, 3)]
            messages = await asyncio.gather(*(reader.read(place) for place in places))
            assert [(m.partition, m.offset) for m in messages if m is not None] == [
                (p, o) for _, p, o in places]
            assert await reader.read((TOPIC, 0, 50)) is None  # past the end
            assert (await reader.read((TOPIC, 1, 2)) or pytest.fail()).key == b"1:2"

            broker.kill()  # gone at once: a stop would wait 5 s for the reader's connection
            with pytest.raises(BrokerUnavailable):
                await reader.read((TOPIC, 0, 1))
        finally:
            await reader.close()

    asyncio.run(scenario())
