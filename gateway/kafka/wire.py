"""Topic names, header names and the few Kafka operations the gateway and auditors need.

Designed around the local broker's limits (see README): no idempotent producer, no
transactions, and end offsets read from fetch responses (`highwater()`) rather than trusted
from list-offsets requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from gateway.errors import BrokerUnavailable, ConfigError
from gateway.home.config import KafkaSettings
from gateway.kafka.names import Outbound, StoredMessage

# The broker's certificate was not accepted, or the broker refused ours: a TLS handshake
# with the first bootstrap server failed.
BROKER_TLS_FAILED = "BROKER_TLS_FAILED"


class Producer(Protocol):
    """What publishing needs of a producer, as `AIOKafkaProducer` has it and
    `gateway.kafka.memory.MemoryBroker` for unit tests: `send` (the future it returns is
    done, with the message's topic, partition and offset, once the broker has it) and
    `flush`."""

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]: ...

    async def flush(self) -> None:
        """Waits until the broker answered for every message handed over."""


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


@dataclass(frozen=True, slots=True)
class KafkaLink:
    """The broker and how to reach it, given to every Kafka client the gateway and its tools
    make. Its TLS context is built once (`secured_link`) and shared by them all."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return self.bootstrap_servers

    def client_options(self) -> dict[str, Any]:
        """aiokafka's keyword arguments for a producer, consumer or admin client."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                                   "security_protocol": self.security_protocol,
                                   "ssl_context": self.ssl_context}
        if self.sasl_mechanism:
            options.update(sasl_mechanism=self.sasl_mechanism,
                           sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password)
        return options


# A broker as the functions here take it: a plain `host:port[,...]` string is a broker
# reached without TLS or SASL (the local one).
Broker = str | KafkaLink


def kafka_link(broker: Broker) -> KafkaLink:
    return broker if isinstance(broker, KafkaLink) else KafkaLink(broker)


def secured_link(bootstrap_servers: str, settings: KafkaSettings,
                 env: Mapping[str, str] | None = None) -> KafkaLink:
    """The link `[kafka]` describes: its TLS context built, its SASL password read from its
    file or environment variable (ConfigError CONFIG_KAFKA_TLS_FILE_INVALID or
    CONFIG_KAFKA_PASSWORD_MISSING when they cannot be)."""
    return KafkaLink(
        bootstrap_servers,
        security_protocol=settings.security_protocol,
        ssl_context=tls_context(settings) if settings.uses_tls else None,
        sasl_mechanism=settings.sasl_mechanism or None,
        sasl_username=settings.sasl_username or None,
        sasl_password=sasl_password(settings, os.environ if env is None else env)
        if settings.uses_sasl else None,
    )


def tls_context(settings: KafkaSettings) -> ssl.SSLContext:
    """A client context verifying the broker against `ssl_ca_file` (else the system's CAs),
    with the client's certificate when one is configured."""
    setting = "ssl_ca_file"
    try:
        context = ssl.create_default_context(cafile=settings.ssl_ca_file or None)
        context.check_hostname = settings.ssl_check_hostname
        if settings.ssl_cert_file:
            setting = "ssl_cert_file and ssl_key_file"
            context.load_cert_chain(settings.ssl_cert_file, settings.ssl_key_file)
    except (OSError, ssl.SSLError) as exc:
        why = exc.reason if isinstance(exc, ssl.SSLError) else exc.strerror
        raise ConfigError(f"[kafka] {setting}: cannot be loaded: {why or type(exc).__name__}",
                          code="CONFIG_KAFKA_TLS_FILE_INVALID") from None
    return context


def sasl_password(settings: KafkaSettings, env: Mapping[str, str]) -> str:
    if settings.sasl_password_env:
        password = env.get(settings.sasl_password_env, "")
        where = f"the environment variable {settings.sasl_password_env}"
    else:
        where = f"sasl_password_file {settings.sasl_password_file}"
        try:
            password = Path(settings.sasl_password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"[kafka] {where} cannot be read: "
                              f"{getattr(exc, 'strerror', None) or type(exc).__name__}",
                              code="CONFIG_KAFKA_PASSWORD_MISSING") from None
    password = password.rstrip("\r\n")
    if not password:
        raise ConfigError(f"[kafka] {where} holds no SASL password",
                          code="CONFIG_KAFKA_PASSWORD_MISSING")
    return password


async def tls_refusal(link: KafkaLink, *, timeout_s: float = 10.0) -> str | None:
    """Why a TLS handshake with the link's first bootstrap server fails; None when it does
    not (or the link has no TLS, or the server cannot be reached at all).

    aiokafka logs a failed handshake and reports only "Unable to bootstrap": this names the
    cause (e.g. CERTIFICATE_VERIFY_FAILED) for the error the caller raises."""
    if link.ssl_context is None:
        return None
    host, _, port = link.bootstrap_servers.split(",")[0].strip().rpartition(":")
    host = host.strip("[]")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port), ssl=link.ssl_context), timeout_s)
    except ssl.SSLError as exc:
        detail = getattr(exc, "verify_message", None)
        return f"{exc.reason or type(exc).__name__}{f' ({detail})' if detail else ''}"
    except (OSError, ValueError, TimeoutError):
        return None
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return None


async def unavailable(broker: Broker, doing: str, exc: KafkaError) -> BrokerUnavailable:
    """BrokerUnavailable for `exc`; BROKER_TLS_FAILED, with the reason, when the broker's
    TLS handshake fails."""
    link = kafka_link(broker)
    why = await tls_refusal(link)
    if why is not None:
        return BrokerUnavailable(f"{doing}: TLS handshake with {link} failed: {why}",
                                 code=BROKER_TLS_FAILED)
    return BrokerUnavailable(f"{doing}: {exc}")


def new_admin(broker: Broker) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**kafka_link(broker).client_options(), request_timeout_ms=15_000)


def new_producer(broker: Broker, *, linger_ms: int = 1) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **kafka_link(broker).client_options(),
        partitioner=KeyPartitioner(),
        acks="all",
        enable_idempotence=False,
        linger_ms=linger_ms,
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


async def publish(producer: AIOKafkaProducer, out: Outbound) -> Published:
    """Sends one message and waits for the broker's acknowledgement."""
    try:
        md = await producer.send_and_wait(out.topic, out.value, key=out.key,
                                          headers=list(out.headers))
    except KafkaError as exc:
        raise BrokerUnavailable(f"publishing to {out.topic} failed: {exc}") from exc
    return Published(md.topic, md.partition, md.offset)


async def ensure_topics(broker: Broker, partitions: dict[str, int], *,
                        configs: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """Creates the topics that need a known partition count (Apache Kafka auto-creates
    with one), each with its `configs` (e.g. cleanup.policy); existing topics are left as
    they are."""
    admin = new_admin(broker)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=count, replication_factor=1,
                     topic_configs=dict((configs or {}).get(name, {})))
            for name, count in partitions.items()
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    except KafkaError as exc:
        raise await unavailable(broker, f"cannot create topics on {broker}", exc) from exc
    finally:
        await admin.close()


def new_reader(
    broker: Broker,
    group_id: str | None = None,
    *,
    fetch_max_wait_ms: int = 500,
    session_timeout_ms: int = 10_000,
    partition_fetch_bytes: int = 16 * 1024 * 1024,
) -> AIOKafkaConsumer:
    """A consumer outside any group unless `group_id` is given. A fetch brings up to
    `partition_fetch_bytes` of each partition and four times that in all (the local broker
    heeds only the latter), and always at least one record batch."""
    return AIOKafkaConsumer(
        **kafka_link(broker).client_options(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=partition_fetch_bytes,
        fetch_max_bytes=4 * partition_fetch_bytes,
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 5, 100),
    )


# The longest a reader lengthens its fetch wait to (see `longer_fetch_wait`): far above the
# 200-500 ms that tansu on S3 storage (moto) needed to bring whole partitions, and no longer
# than a new record may then wait on the broker before it answers.
FETCH_WAIT_LIMIT_MS = 2_000


def longer_fetch_wait(wait_ms: int) -> int | None:
    """The wait to fetch with instead of `wait_ms` when fetches come back short; None at the
    limit.

    tansu on S3 storage stops reading a partition for a fetch once the fetch's max wait has
    passed and answers with what it has read by then, the end (high-water mark) included:
    with a wait shorter than its LIST and GET requests to the bucket take, a fetch from below
    a partition's end brings nothing (measured: at 1 ms never a record; at 5 ms one batch in
    a few fetches, then none at all once the bucket held 2,000 batches). Apache Kafka and
    tansu's memory storage answer such a fetch at once with at least one batch, whatever the
    wait, so there a reader never needs this."""
    if wait_ms >= FETCH_WAIT_LIMIT_MS:
        return None
    return min(max(wait_ms * 4, 1), FETCH_WAIT_LIMIT_MS)


def below_end(consumer: AIOKafkaConsumer, positions: Mapping[TopicPartition, int]
              ) -> list[TopicPartition]:
    """The partitions whose end, as the broker's last fetch answer gave it, lies past the
    reader's position: records are there that the reader has not had."""
    return [tp for tp, position in positions.items()
            if (end := consumer.highwater(tp)) is not None and position < end]


def answered_since(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition],
                   since_ms: int) -> bool:
    """Whether the broker answered a fetch of any of `partitions` at or after `since_ms`
    (wall clock, as aiokafka stamps answers): a poll that brought nothing after such an
    answer was not merely waiting for a fetch still under way."""
    return any((at := consumer.last_poll_timestamp(tp)) is not None and at >= since_ms
               for tp in partitions)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


async def partitions_of(broker: Broker, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of each existing topic, fresh from the broker; absent topics have none.

    (A consumer's own metadata view only learns topics it already uses, so ask the broker.)
    """
    admin = new_admin(broker)
    try:
        await admin.start()
        described = await admin.describe_topics(list(topics))
    except KafkaError as exc:
        raise await unavailable(broker, f"cannot read metadata from {broker}", exc) from exc
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if topic["error_code"] == 0
        for partition in sorted(topic["partitions"], key=lambda p: p["partition"])
    ]


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """`consumer.stop()`, less a known aiokafka flaw (aio-libs/aiokafka#647): stopped while a
    fetch waits to retry (the broker gone), it raises CancelledError in a caller nobody
    cancelled, and leaves its client's connections open. Those are closed here; a real
    cancellation of the caller goes on."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        await consumer._client.close()  # what stop() had left to do


@contextlib.asynccontextmanager
async def own_reader(broker: Broker, what: str, *, fetch_max_wait_ms: int = 500
                     ) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer outside any group, for one read, stopped after it; the broker's
    errors as BrokerUnavailable ("cannot read {what}: ...")."""
    consumer = new_reader(broker, fetch_max_wait_ms=fetch_max_wait_ms)
    try:
        await consumer.start()
        yield consumer
    except KafkaError as exc:
        raise await unavailable(broker, f"cannot read {what}", exc) from exc
    finally:
        await stop_consumer(consumer)


class ConsumerRecord(Protocol):
    """What the gateway reads of an aiokafka ConsumerRecord (aiokafka ships no types)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Iterable[tuple[str, bytes]]: ...
    @property
    def timestamp(self) -> int: ...


def stored_message(record: ConsumerRecord) -> StoredMessage:
    """An aiokafka ConsumerRecord as the gateway keeps messages."""
    return StoredMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        headers=tuple(record.headers),
        timestamp_ms=record.timestamp,
    )


async def partition_end(consumer: AIOKafkaConsumer, tp: TopicPartition, *,
                        timeout_s: float = 30.0) -> int:
    """The partition's end (its high-water mark) as a fetch response gives it: one fetch
    from the beginning, its records dropped. Leaves `consumer` assigned to `tp` alone."""
    return (await partition_ends(consumer, [tp], timeout_s=timeout_s))[tp]


async def partition_ends(consumer: AIOKafkaConsumer, tps: Iterable[TopicPartition], *,
                         timeout_s: float = 30.0) -> dict[TopicPartition, int]:
    """Each partition's end as `partition_end` finds it, all in the same fetches (an empty
    partition costs a whole fetch wait on the local broker: one wait for all, not one
    each). Leaves `consumer` assigned to `tps` alone."""
    tps = list(tps)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    deadline = time.monotonic() + timeout_s
    while unknown := [tp for tp in tps if consumer.highwater(tp) is None]:
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"the end of {unknown[0].topic} [{unknown[0].partition}] "
                                    "is not known")
        await consumer.getmany(*unknown, timeout_ms=200, max_records=1)
    return {tp: cast(int, consumer.highwater(tp)) for tp in tps}  # aiokafka has no types


async def read_until_end(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    *,
    timeout_s: float = 30.0,
) -> list[StoredMessage]:
    """Everything from each partition's start offset up to its high-water mark as first seen,
    sorted by topic, partition and offset (see `pages_until_end`)."""
    out = [m async for page in pages_until_end(consumer, starts, timeout_s=timeout_s)
           for m in page]
    out.sort(key=lambda m: (m.topic, m.partition, m.offset))
    return out


async def pages_until_end(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    *,
    timeout_s: float = 30.0,
) -> AsyncGenerator[list[StoredMessage], None]:
    """What each fetch brings from each partition's start offset up to its high-water mark
    as first seen, one page at a time, in offset order within a partition: a reader that
    files each page before taking the next holds one page, not the whole topic.

    The end is what the broker reports in fetch responses, so records appended while reading
    may or may not be included; nothing before the end is skipped. BrokerUnavailable when
    the broker brings nothing for `timeout_s`. Once read to the end, the consumer is left at
    each partition's end: one that goes on reading gets what was appended after it.
    """
    if not starts:
        return
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    ends: dict[TopicPartition, int] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
        page: list[StoredMessage] = []
        for tp, records in batches.items():
            end = ends.get(tp)  # None: the first fetch, all below the end it reports
            page.extend(stored_message(r) for r in records if end is None or r.offset < end)
        for tp in starts:
            if tp not in ends and consumer.highwater(tp) is not None:
                ends[tp] = consumer.highwater(tp)
        if page:
            yield page
            deadline = time.monotonic() + timeout_s  # the time the page took its reader
        if len(ends) == len(starts) and await _all_reached(consumer, ends):
            break
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"reading {sorted({tp.topic for tp in starts})} timed out")
    for tp, end in ends.items():
        consumer.seek(tp, end)  # it may have fetched past the end, records dropped above


async def _all_reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def read_topics(
    broker: Broker, topics: Iterable[str], *, timeout_s: float = 30.0
) -> list[StoredMessage]:
    """Every message of the given topics, from the beginning to their current end."""
    async with own_reader(broker, f"from {broker}") as consumer:
        starts = {tp: 0 for tp in await partitions_of(broker, topics)}
        return await read_until_end(consumer, starts, timeout_s=timeout_s)


Place = tuple[str, int, int]  # topic, partition, offset


async def read_at(
    broker: Broker, locations: Iterable[Place], *, timeout_s: float = 30.0
) -> dict[Place, StoredMessage]:
    """The messages at the given (topic, partition, offset) places; missing ones are absent."""
    async with own_reader(broker, f"from {broker}") as consumer:
        return await read_places(consumer, locations, timeout_s=timeout_s)


async def read_places(
    consumer: AIOKafkaConsumer, places: Iterable[Place], *, timeout_s: float = 30.0
) -> dict[Place, StoredMessage]:
    """The messages at `places`, read with a started consumer outside any group, which is
    left assigned to their partitions. A place past its partition's end, or no longer held
    by the broker (retention, compaction), is absent.

    Each partition is read from its first wanted offset to its last one only, seeking over
    what lies between two wanted offsets unless a fetch has brought it already: a receipt of
    last year costs a fetch or two, not a read of every receipt given since."""
    wanted: dict[TopicPartition, list[int]] = {}
    for topic, partition, offset in set(places):
        wanted.setdefault(TopicPartition(topic, partition), []).append(offset)
    for offsets in wanted.values():
        offsets.sort(reverse=True)  # the next one wanted is last
    consumer.assign(list(wanted))
    for tp, offsets in wanted.items():
        consumer.seek(tp, offsets[-1])
    found: dict[Place, StoredMessage] = {}
    deadline = time.monotonic() + timeout_s
    while wanted:
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"reading {sorted({tp.topic for tp in wanted})} timed out")
        batches = await consumer.getmany(*wanted, timeout_ms=200)
        for tp, records in batches.items():
            offsets = wanted[tp]
            for record in records:
                while offsets and offsets[-1] < record.offset:
                    offsets.pop()  # not held any more
                if offsets and offsets[-1] == record.offset:
                    found[(tp.topic, tp.partition, record.offset)] = stored_message(record)
                    offsets.pop()
                if not offsets:
                    break
            if offsets and records and records[-1].offset + 1 < offsets[-1]:
                consumer.seek(tp, offsets[-1])
        for tp in list(wanted):
            offsets, end = wanted[tp], consumer.highwater(tp)
            while offsets and end is not None and offsets[0] >= end:
                offsets.pop(0)  # past the end
            if not offsets:
                del wanted[tp]
    return found


_Waiting = dict[Place, list[asyncio.Future[StoredMessage | None]]]


class PlaceReader:
    """Reads messages by place for a long-running process, with one consumer kept open:
    requests that arrive while a read is under way are read together in the next one, so a
    burst of them costs a few reads, not a consumer each.

    Its fetches are small (`fetch_bytes` a partition), made for messages wanted one by one:
    on a 60 MB partition of the local broker, reading one 600-byte message measured 5-7 ms
    with 64 KiB fetches, 30 ms with `new_reader`'s default of 16 MiB."""

    def __init__(self, broker: Broker, *, timeout_s: float = 30.0,
                 fetch_bytes: int = 64 * 1024) -> None:
        self._broker = broker
        self._timeout_s = timeout_s
        self._fetch_bytes = fetch_bytes
        self._consumer: AIOKafkaConsumer | None = None
        self._waiting: _Waiting = {}
        self._reading: asyncio.Task[None] | None = None

    async def read(self, place: Place) -> StoredMessage | None:
        """The message at `place`, None when the broker does not hold it; BrokerUnavailable
        when it cannot be read."""
        future: asyncio.Future[StoredMessage | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(place, []).append(future)
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_waiting(), name="place-reader")
        return await future

    async def _read_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                found = await self._read(batch)
            except asyncio.CancelledError:
                _cancel(batch)
                raise
            except Exception as exc:  # BrokerUnavailable, or a bug: each caller hears of it
                _answer(batch, error=exc)
            else:
                _answer(batch, found=found)

    async def _read(self, places: Iterable[Place]) -> dict[Place, StoredMessage]:
        try:
            consumer = await self._started()
            found = await read_places(consumer, places, timeout_s=self._timeout_s)
        except BaseException as exc:
            await self._drop_consumer()  # the next read starts afresh
            if isinstance(exc, KafkaError):
                raise BrokerUnavailable(f"cannot read from {self._broker}: {exc}") from exc
            raise
        consumer.pause(*consumer.assignment())  # no fetching in the background till then
        return found

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = new_reader(self._broker, partition_fetch_bytes=self._fetch_bytes)
            try:
                await consumer.start()
            except BaseException:
                await stop_consumer(consumer)
                raise
            self._consumer = consumer
        return self._consumer

    async def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_consumer(consumer)

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
            self._reading = None
        _cancel(self._waiting)
        self._waiting = {}
        await self._drop_consumer()


def _answer(waiting: _Waiting, *, found: dict[Place, StoredMessage] | None = None,
            error: Exception | None = None) -> None:
    for place, futures in waiting.items():
        for future in futures:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(found.get(place) if found is not None else None)


def _cancel(waiting: _Waiting) -> None:
    for futures in waiting.values():
        for future in futures:
            future.cancel()
