"""The receipt book against the real broker, apart from the gateway around it."""

from __future__ import annotations

import asyncio
import gc
import warnings
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import ensure_topics, new_producer
from gateway.receipts.book import ReceiptBook
from gateway.receipts.index import IndexEntry, ReceiptIndex
from message_formats import AvroSchemas


async def _give(producer: AIOKafkaProducer, topics: Topics, keys: list[str]
                ) -> list[asyncio.Future[object]]:
    """Receipt-topic records under these submission ids (the book files any record, whatever
    it holds); their acknowledgements."""
    return [await producer.send(topics.receipt, b"r" * 300, key=key.encode(), partition=0)
            for key in keys]


def test_a_book_started_while_other_processes_give_receipts_knows_every_receipt(
    broker: LocalBroker, topics: Topics
) -> None:
    """The book reads the topic to its end at start, then follows it. Receipts given while
    it reads (by other gateway processes) come after the end it first saw: none is missed."""

    async def scenario() -> None:
        bootstrap = broker.bootstrap_servers
        await ensure_topics(bootstrap, {topics.receipt: 1})
        producer = new_producer(bootstrap)
        await producer.start()
        given = [f"before-{n}" for n in range(30_000)]
        stop = asyncio.Event()

        async def other_processes() -> None:
            while not stop.is_set():
                keys = [f"during-{len(given) + n}" for n in range(20)]
                await _give(producer, topics, keys)
                given.extend(keys)
                await asyncio.sleep(0.001)

        book = ReceiptBook(bootstrap, AvroSchemas(), topics=topics, cache_size=10)
        try:
            await asyncio.gather(*await _give(producer, topics, given))
            giving = asyncio.create_task(other_processes())
            await asyncio.sleep(0.05)
            await book.start()
            await asyncio.sleep(0.2)
            stop.set()
            await giving
            await producer.flush()
            deadline = asyncio.get_running_loop().time() + 10
            while (missing := [key for key in given if key not in book]) and \
                    asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.2)
        finally:
            await book.stop()
            await producer.stop()
        assert len(given) > 30_000
        assert missing == []

    asyncio.run(scenario())


@pytest.mark.usefixtures("info_logs")
@pytest.mark.parametrize("partition_1", ["holds another receipt there", "is empty"])
def test_an_index_that_stops_matching_the_topic_part_way_through_is_made_again(
    broker: LocalBroker, tmp_path: Path, partition_1: str, topics: Topics
) -> None:
    """The book files receipts page by page as it reads them, so it may have filed some when
    it finds that one partition's last indexed receipt is not on the topic. It then starts
    the index afresh, and knows exactly the topic's receipts, none the old index held."""

    async def scenario() -> tuple[list[str], bool]:
        bootstrap = broker.bootstrap_servers
        await ensure_topics(bootstrap, {topics.receipt: 2})
        partitions = 2 if partition_1 == "holds another receipt there" else 1
        given = [f"p{n % partitions}-{n}" for n in range(4_000)]
        producer = new_producer(bootstrap)
        await producer.start()
        try:
            await asyncio.gather(*[await producer.send(
                topics.receipt, b"r" * 300, key=key.encode(), partition=int(key[1]))
                for key in given])
        finally:
            await producer.stop()
        index = ReceiptIndex.open(tmp_path)
        index.advance(0, 99, given[99 * partitions].encode())  # still there: read on from it
        index.advance(1, 99, b"not-on-this-topic")
        index.file("ghost", IndexEntry(1, 99, None), None)
        index.commit()
        index.close()
        book = ReceiptBook(bootstrap, AvroSchemas(), topics=topics, index_dir=tmp_path,
                           cache_size=10)
        await book.start()
        try:
            return [key for key in given if key not in book], "ghost" in book
        finally:
            await book.stop()

    with capture_logs() as logs:
        missing, ghost_known = asyncio.run(scenario())
    assert missing == []
    assert not ghost_known
    assert [e["event"] for e in logs].count("receipts.index_not_of_this_topic") == 1


def test_a_book_stopped_as_soon_as_it_started_leaves_no_connection_open(
    broker: LocalBroker, topics: Topics
) -> None:
    """A gateway whose start fails just after its receipt book started stops the book at
    once, before the book's follower has run."""

    async def scenario() -> None:
        await ensure_topics(broker.bootstrap_servers, {topics.receipt: 1})
        book = ReceiptBook(broker.bootstrap_servers, AvroSchemas(), topics=topics)
        await book.start()
        await book.stop()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(scenario())
        gc.collect()
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message)] == []
