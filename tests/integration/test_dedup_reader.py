"""A recipient reading its delivery topic through a DedupReader on a real broker: every event
id is handed over once, across the reader's restarts, and nothing is skipped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from gateway.deliveries.dedup import DedupReader, SeenStore
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_EVENT_ID, StoredMessage
from gateway.kafka.wire import ensure_topics, new_producer, partitions_of

# A topic of the tests' own: de-duplication, not delivery proofs (a delivery topic is read
# only with a verifier: see test_delivery_proof.py).
TOPIC = "px.test.dedup.v1"


@pytest.fixture
def broker(own_broker: LocalBroker) -> LocalBroker:
    """TOPIC is one name for every test here (and a test stops the broker): each test has a
    broker of its own."""
    return own_broker


@dataclass(frozen=True, slots=True)
class Sent:
    event_id: str | None
    partition: int
    offset: int


async def publish(bootstrap: str, event_ids: Sequence[str | None]) -> list[Sent]:
    """Deliveries as the gateway publishes them, keyed by business key, so that a document
    published again lands in the same partition as before."""
    await ensure_topics(bootstrap, {TOPIC: 3})
    producer = new_producer(bootstrap)
    await producer.start()
    sent = []
    try:
        for number, event_id in enumerate(event_ids):
            headers = [(H_EVENT_ID, event_id.encode())] if event_id else []
            key = f"doc-{event_id or number}".encode()
            md = await producer.send_and_wait(TOPIC, f"delivery of {event_id}".encode(), key=key,
                                              headers=headers)
            sent.append(Sent(event_id, md.partition, md.offset))
    finally:
        await producer.stop()
    return sent


def ends_of(sent: Sequence[Sent]) -> dict[TopicPartition, int]:
    ends: dict[TopicPartition, int] = {}
    for item in sent:
        tp = TopicPartition(TOPIC, item.partition)
        ends[tp] = max(ends.get(tp, 0), item.offset + 1)
    return ends


async def read_until(
    reader: DedupReader, wanted: dict[TopicPartition, int], *, hold_back: str | None = None
) -> list[StoredMessage]:
    """Polls until the reader's positions are `wanted`, marking everything done but the
    message with the event id `hold_back` (as if handling it had crashed)."""
    handed: list[StoredMessage] = []
    deadline = time.monotonic() + 10
    while {tp: reader.positions.get(tp, 0) for tp in wanted} != wanted:
        assert time.monotonic() < deadline, (reader.positions, wanted)
        batch = await reader.poll()
        handed += batch
        if batch:
            reader.mark_done(m for m in batch
                             if m.header(H_EVENT_ID) != (hold_back or "").encode())
    return handed


def ids_of(messages: Sequence[StoredMessage]) -> list[str | None]:
    return [h.decode() if (h := m.header(H_EVENT_ID)) else None for m in messages]


def test_each_event_id_is_handed_over_once_across_restarts(
    broker: LocalBroker, tmp_path: Path
) -> None:
    asyncio.run(_each_event_id_once(broker.bootstrap_servers, tmp_path / "seen.sqlite"))


async def _each_event_id_once(bootstrap: str, store: Path) -> None:
    first_ids = [f"e{n:02}" for n in range(12)]
    first = await publish(bootstrap, [*first_ids[:8], "e03", *first_ids[8:], "e07"])
    held = next(s for s in first if s.event_id == "e05")
    wanted = ends_of(first) | {TopicPartition(TOPIC, held.partition): held.offset}

    async with DedupReader(bootstrap, [TOPIC], store) as reader:
        session_one = await read_until(reader, wanted, hold_back="e05")
        assert reader.fetch_wait_ms == 5  # the memory broker never leaves a fetch empty
    assert sorted(ids_of(session_one)) == first_ids  # type: ignore[type-var]  # all have ids

    # The gateway publishes some again after a crash (e05, e10, e11, and e15 twice), and
    # new ones, two of them without an event id.
    again = ["e10", "e05", *[f"e{n}" for n in range(12, 16)], "e11", "e15", None,
             *[f"e{n}" for n in range(16, 20)], None]
    second = await publish(bootstrap, again)
    everything = ends_of(first + second)
    async with DedupReader(bootstrap, [TOPIC], store) as reader:
        session_two = await read_until(reader, everything)
    handed_again = ids_of(session_two)
    assert sorted(i for i in handed_again if i) == ["e05", *[f"e{n}" for n in range(12, 20)]]
    assert handed_again.count(None) == 2
    [e05] = [m for m in session_two if m.header(H_EVENT_ID) == b"e05"]
    assert (e05.partition, e05.offset) == (held.partition, held.offset)  # the first copy

    with SeenStore(store) as seen:
        assert seen.positions() == everything
        assert len(seen) == 20

    async with DedupReader(bootstrap, [TOPIC], store) as reader:
        assert [await reader.poll() for _ in range(3)] == [[], [], []]
        assert dict(reader.positions) == everything


def test_a_partition_of_only_duplicates_still_moves_on(broker: LocalBroker, tmp_path: Path) -> None:
    asyncio.run(_only_duplicates_move_on(broker.bootstrap_servers, tmp_path / "seen.sqlite"))


async def _only_duplicates_move_on(bootstrap: str, store: Path) -> None:
    first = await publish(bootstrap, ["e1", "e2"])
    async with DedupReader(bootstrap, [TOPIC], store) as reader:
        await read_until(reader, ends_of(first))
    second = await publish(bootstrap, ["e2", "e1", "e2"])
    everything = ends_of(first + second)
    async with DedupReader(bootstrap, [TOPIC], store) as reader:
        # Nothing new is handed over and nothing is marked done, yet the positions move past
        # the duplicates and are kept at once: after a crash they are not read again.
        assert await read_until(reader, everything) == []
        with SeenStore(store) as seen:
            assert seen.positions() == everything

    await publish(bootstrap, ["e1", "e3"])
    async with DedupReader(bootstrap, [TOPIC], store) as reader:
        async for batch in reader.batches():
            assert ids_of(batch) == ["e3"]
            reader.mark_done(batch)
            break


def test_partitions_that_appear_later_are_read_from_their_start(
    broker: LocalBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A topic that grows (or is created) after the reader started: the reader picks up its
    new partitions and keeps its place in the others."""
    bootstrap = broker.bootstrap_servers
    sent = asyncio.run(publish(bootstrap, [None] * 12))  # no ids: a re-read would show
    seen_partitions = 1

    async def growing(servers: str, topics: Sequence[str]) -> list[TopicPartition]:
        return (await partitions_of(servers, topics))[:seen_partitions]

    monkeypatch.setattr("gateway.deliveries.dedup.partitions_of", growing)

    async def read() -> list[StoredMessage]:
        nonlocal seen_partitions
        ends = ends_of(sent)
        first = TopicPartition(TOPIC, 0)
        async with DedupReader(bootstrap, [TOPIC], tmp_path / "seen.sqlite",
                               discover_every_s=0.05) as reader:
            handed = await read_until(reader, {first: ends[first]})
            seen_partitions = 3
            return handed + await read_until(reader, ends)

    handed = asyncio.run(read())
    assert sorted((m.partition, m.offset) for m in handed) == sorted(
        (s.partition, s.offset) for s in sent)



def test_a_reader_whose_fetches_come_back_empty_waits_longer_and_reads_on_after_a_restart(
    s3_broker: LocalBroker, tmp_path: Path
) -> None:
    """tansu on S3 storage answers a fetch with what it read of the bucket within the fetch's
    wait: 1 ms never brings a record (5 ms, the default, brings none either once the bucket
    holds a few thousand batches). The reader must notice and wait longer, in its first
    session and in the next one, after the broker was restarted."""
    asyncio.run(_starved_reader_reads_on(s3_broker, tmp_path / "seen.sqlite"))


async def _starved_reader_reads_on(broker: LocalBroker, store: Path) -> None:
    bootstrap = broker.bootstrap_servers
    first = await publish(bootstrap, [f"e{n:02}" for n in range(9)])
    async with DedupReader(bootstrap, [TOPIC], store, fetch_max_wait_ms=1) as reader:
        session_one = await read_until(reader, ends_of(first))
        assert reader.fetch_wait_ms > 1
    assert sorted(ids_of(session_one)) == [f"e{n:02}" for n in range(9)]  # type: ignore[type-var]  # all have ids

    broker.kill()
    await asyncio.to_thread(broker.start)  # same port, same bucket
    second = await publish(bootstrap, ["e04", *[f"e{n:02}" for n in range(9, 15)], "e10"])
    async with DedupReader(bootstrap, [TOPIC], store, fetch_max_wait_ms=1) as reader:
        session_two = await read_until(reader, ends_of(first + second))
    assert sorted(ids_of(session_two)) == [f"e{n:02}" for n in range(9, 15)]  # type: ignore[type-var]  # all have ids
