"""Topic names, header names and the few Kafka operations the gateway and auditors need.

Designed around the local broker's limits (see README): no idempotent producer, no
transactions, and end offsets read from fetch responses (`highwater()`) rather than trusted
from list-offsets requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from gateway.errors import BrokerUnavailable

INGRESS_TOPIC = "px.ingress.v1"
TRAIL_TOPIC = "px.trail.v1"
DLQ_TOPIC = "px.dlq.v1"
RECEIPT_TOPIC = "px.receipt.v1"

H_SUBMISSION_ID = "px-submission-id"
H_SENDER = "px-sender"
H_FORMAT = "px-format"
H_SIGNATURE = "px-signature"
H_EVENT_ID = "px-event-id"
H_DOCUMENT_TYPE = "px-document-type"
H_FINGERPRINT = "px-schema-fingerprint"
H_RECORD = "px-record"
H_DIGEST = "px-digest-sm3"
H_STATUS = "px-status"
H_DUPLICATE_OF = "px-duplicate-of"
H_RETRY_OF = "px-retry-of"
# Set by the HTTP door, which applied the sender's rate limit already.
H_VIA = "px-via"

Headers = tuple[tuple[str, bytes], ...]


def submission_headers(submission_id: str, sender: str, format_id: str, signature: bytes
                       ) -> list[tuple[str, bytes]]:
    """The headers of a submission on the ingress topic, however it got there."""
    return [(H_SUBMISSION_ID, submission_id.encode()), (H_SENDER, sender.encode()),
            (H_FORMAT, format_id.encode()), (H_SIGNATURE, signature)]


def canonical_topic(document_type: str) -> str:
    return f"px.canonical.{document_type}.v1"


def delivery_topic(agency_id: str) -> str:
    return f"px.deliver.{agency_id}.v1"


def status_topic(agency_id: str) -> str:
    """Status events of the documents an agency is party to, for its subscriptions."""
    return f"px.status.{agency_id}.v1"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class OffsetProgress:
    """One partition's messages handed on and not yet done. `safe` is the offset to commit
    or store: the lowest not done, or past everything handed on when all are done."""

    __slots__ = ("_open", "next_offset")

    def __init__(self, start: int) -> None:
        self.next_offset = start
        self._open: set[int] = set()

    def started(self, offset: int) -> None:
        self._open.add(offset)
        self.passed(offset)

    def passed(self, offset: int) -> None:
        """`offset` needs no work (e.g. a duplicate): the position may move past it."""
        self.next_offset = max(self.next_offset, offset + 1)

    def finished(self, offset: int) -> None:
        self._open.discard(offset)

    @property
    def safe(self) -> int:
        return min(self._open) if self._open else self.next_offset


@dataclass(frozen=True, slots=True)
class Published:
    topic: str
    partition: int
    offset: int


class KeyPartitioner:
    """aiokafka's default partitioner (the Java client's murmur2 of the key), remembering the
    last key's hash: a document's event and its deliveries are sent one after another under
    one key, and aiokafka's murmur2 is pure Python."""

    __slots__ = ("_hash", "_key")

    def __init__(self) -> None:
        self._key: bytes | None = None
        self._hash = 0

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]
                 ) -> int:
        if key is None:  # as aiokafka's DefaultPartitioner
            return random.choice(available or all_partitions)
        if key != self._key:
            self._key, self._hash = key, murmur2(key) & 0x7FFFFFFF
        return all_partitions[self._hash % len(all_partitions)]


def new_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        partitioner=KeyPartitioner(),
        acks="all",
        enable_idempotence=False,
        linger_ms=1,
        max_batch_size=1024 * 1024,
        max_request_size=16 * 1024 * 1024,
        request_timeout_ms=15_000,
    )


async def acked(sent: asyncio.Future[Any]) -> Published:
    """Where the broker put a message handed to the producer, once it has it."""
    try:
        md = await sent
    except KafkaError as exc:
        raise BrokerUnavailable(f"the broker did not take a message: {exc}") from exc
    return Published(md.topic, md.partition, md.offset)


async def ensure_topics(bootstrap_servers: str, partitions: dict[str, int]) -> None:
    """Creates the topics that need a known partition count (Apache Kafka auto-creates
    with one); existing topics are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=count, replication_factor=1)
            for name, count in partitions.items()
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot create topics on {bootstrap_servers}: {exc}") from exc
    finally:
        await admin.close()


def new_reader(
    bootstrap_servers: str,
    group_id: str | None = None,
    *,
    fetch_max_wait_ms: int = 500,
    session_timeout_ms: int = 10_000,
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 5, 100),
    )


async def partitions_of(bootstrap_servers: str, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of each existing topic, fresh from the broker; absent topics have none.

    (A consumer's own metadata view only learns topics it already uses, so ask the broker.)
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    try:
        await admin.start()
        described = await admin.describe_topics(list(topics))
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot read metadata from {bootstrap_servers}: {exc}") from exc
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if topic["error_code"] == 0
        for partition in sorted(topic["partitions"], key=lambda p: p["partition"])
    ]


def stored_message(record: object) -> StoredMessage:
    """An aiokafka ConsumerRecord as the gateway keeps messages."""
    return StoredMessage(
        topic=record.topic,  # type: ignore[attr-defined]
        partition=record.partition,  # type: ignore[attr-defined]
        offset=record.offset,  # type: ignore[attr-defined]
        key=record.key,  # type: ignore[attr-defined]
        value=record.value or b"",  # type: ignore[attr-defined]
        headers=tuple(record.headers),  # type: ignore[attr-defined]
        timestamp_ms=record.timestamp,  # type: ignore[attr-defined]
    )


async def partition_end(consumer: AIOKafkaConsumer, tp: TopicPartition, *,
                        timeout_s: float = 30.0) -> int:
    """The partition's end (its high-water mark) as a fetch response gives it: one fetch
    from the beginning, its records dropped. Leaves `consumer` assigned to `tp` alone."""
    consumer.assign([tp])
    consumer.seek(tp, 0)
    deadline = time.monotonic() + timeout_s
    while (end := consumer.highwater(tp)) is None:
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"the end of {tp.topic} [{tp.partition}] is not known")
        await consumer.getmany(tp, timeout_ms=200, max_records=1)
    return end


async def read_until_end(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    *,
    timeout_s: float = 30.0,
) -> list[StoredMessage]:
    """Everything from each partition's start offset up to its high-water mark as first seen.

    The end is what the broker reports in fetch responses, so records appended while reading
    may or may not be included; nothing before the end is skipped.
    """
    if not starts:
        return []
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    ends: dict[TopicPartition, int] = {}
    out: list[StoredMessage] = []
    deadline = time.monotonic() + timeout_s
    while True:
        batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
        for tp, records in batches.items():
            end = ends.get(tp)
            out.extend(stored_message(r) for r in records if end is None or r.offset < end)
        for tp in starts:
            if tp not in ends and consumer.highwater(tp) is not None:
                ends[tp] = consumer.highwater(tp)  # type: ignore[assignment]
        if len(ends) == len(starts) and await _all_reached(consumer, ends):
            break
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"reading {sorted({tp.topic for tp in starts})} timed out")
    out.sort(key=lambda m: (m.topic, m.partition, m.offset))
    return [m for m in out if m.offset < ends[TopicPartition(m.topic, m.partition)]]


async def _all_reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def read_topics(
    bootstrap_servers: str, topics: Iterable[str], *, timeout_s: float = 30.0
) -> list[StoredMessage]:
    """Every message of the given topics, from the beginning to their current end."""
    consumer = new_reader(bootstrap_servers)
    try:
        await consumer.start()
        starts = {tp: 0 for tp in await partitions_of(bootstrap_servers, topics)}
        return await read_until_end(consumer, starts, timeout_s=timeout_s)
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot read from {bootstrap_servers}: {exc}") from exc
    finally:
        await consumer.stop()


async def read_at(
    bootstrap_servers: str, locations: Sequence[tuple[str, int, int]], *, timeout_s: float = 30.0
) -> dict[tuple[str, int, int], StoredMessage]:
    """The messages at the given (topic, partition, offset) places; missing ones are absent."""
    wanted = set(locations)
    starts: dict[TopicPartition, int] = {}
    for topic, partition, offset in wanted:
        tp = TopicPartition(topic, partition)
        starts[tp] = min(offset, starts.get(tp, offset))
    consumer = new_reader(bootstrap_servers)
    try:
        await consumer.start()
        found = await read_until_end(consumer, starts, timeout_s=timeout_s)
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot read from {bootstrap_servers}: {exc}") from exc
    finally:
        await consumer.stop()
    return {
        (m.topic, m.partition, m.offset): m
        for m in found
        if (m.topic, m.partition, m.offset) in wanted
    }
