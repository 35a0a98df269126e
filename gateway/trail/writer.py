"""The gateway's trail: every decision as a record, SM3-chained per chain, sealed in batches
by an SM2 signature over the batch's Merkle root.

One chain per ingress partition, written to the trail partition of the same number, so no
lock spans gateway instances.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from crypto import SM2PrivateKey, merkle_leaf_hash, merkle_root, sm3_hex
from gateway.clock import utc_now
from gateway.errors import BrokerUnavailable
from gateway.home.config import TrailSettings
from gateway.kafka.names import H_RECORD, StoredMessage, Topics
from gateway.kafka.wire import Broker, Published, own_reader, partition_end, read_until_end
from message_formats import FINGERPRINT_SIZE, SINGLE_OBJECT_MAGIC, AvroSchemas

log = structlog.get_logger(__name__)

T = TypeVar("T")

GENESIS_HASH = "0" * 64
ENTRY_SCHEMA = "px.trail.TrailEntry"
RECORD_SCHEMA = "px.trail.TrailRecord"
SEAL_BODY_SCHEMA = "px.trail.SealBody"
SEAL_SCHEMA = "px.trail.Seal"
CHECKPOINT_BODY_SCHEMA = "px.trail.CheckpointBody"
CHECKPOINT_SCHEMA = "px.trail.Checkpoint"
PREFIX_SIZE = len(SINGLE_OBJECT_MAGIC) + FINGERPRINT_SIZE
RECORD_KIND = b"trail-record"
SEAL_KIND = b"seal"

ENTRY_DEFAULTS: dict[str, Any] = {
    "document_type": None,
    "business_key": None,
    "document_version": None,
    "signature_key_id": None,
    "error_code": None,
    "recipient": None,
    "contract_id": None,
    "contract_version": None,
    "ref_topic": None,
    "ref_partition": None,
    "ref_offset": None,
    "ref_digest": None,
}


def chain_id(partition: int) -> str:
    return f"p{partition}"


class TrailCodec:
    """How records are hashed and seals signed: one definition for writer and verifier."""

    __slots__ = ("_record_prefix", "schemas")

    def __init__(self, schemas: AvroSchemas) -> None:
        self.schemas = schemas
        self._record_prefix = SINGLE_OBJECT_MAGIC + schemas.fingerprint(RECORD_SCHEMA)

    def entry_hash(self, entry: Mapping[str, Any]) -> str:
        """SM3 over the entry's Avro binary encoding; the entry holds the previous hash."""
        return sm3_hex(self.schemas.encode_body(ENTRY_SCHEMA, entry))

    def hashed_record(self, entry: Mapping[str, Any]) -> tuple[str, bytes]:
        """The entry's hash and its record's message (what `entry_hash` and `encode_record`
        give), from one encoding of the entry: a record's Avro encoding is its fields'
        encodings in order, so the message is the single-object prefix, then the very bytes
        hashed, then the hash as an Avro string."""
        body = self.schemas.encode_body(ENTRY_SCHEMA, entry)
        record_hash = sm3_hex(body)
        return record_hash, self._record_prefix + body + avro_string(record_hash)

    def seal_message(self, body: Mapping[str, Any]) -> bytes:
        """The bytes a new seal's SM2 signature covers (a seal read back is checked over the
        bytes it was written with: `signed_body`)."""
        return self.schemas.encode_body(SEAL_BODY_SCHEMA, body)

    def checkpoint_message(self, body: Mapping[str, Any]) -> bytes:
        return self.schemas.encode_body(CHECKPOINT_BODY_SCHEMA, body)

    def encode_checkpoint(self, body: Mapping[str, Any], signature: bytes) -> bytes:
        return self.schemas.encode(CHECKPOINT_SCHEMA, {"body": body, "signature": signature})

    def encode_record(self, entry: Mapping[str, Any], record_hash: str) -> bytes:
        return self.schemas.encode(RECORD_SCHEMA, {"entry": entry, "hash": record_hash})

    def encode_seal(self, body: Mapping[str, Any], signature: bytes) -> bytes:
        return self.schemas.encode(SEAL_SCHEMA, {"body": body, "signature": signature})


def entry_bytes(message: bytes, record_hash: str) -> bytes:
    """A TrailRecord's entry exactly as it was written, whatever schema version wrote it: what
    its hash covers. The message is the single-object prefix, the entry, then the hash as an
    Avro string; never re-encoded, as another schema version would give other bytes."""
    return message[PREFIX_SIZE : len(message) - len(avro_string(record_hash))]


def signed_body(message: bytes, signature: bytes) -> bytes:
    """The body of a Seal or Checkpoint message exactly as written: the bytes its signature
    covers (the prefix, the body, then the signature as Avro bytes)."""
    return message[PREFIX_SIZE : len(message) - len(avro_bytes(signature))]


def seal_hash(message: bytes, signature: bytes) -> str:
    """What the next seal's `previous_seal` and a checkpoint name a seal by: SM3 of its signed
    body bytes."""
    return sm3_hex(signed_body(message, signature))


def avro_string(text: str) -> bytes:
    """Avro's binary encoding of a string: the UTF-8 length as a zig-zag varint, the bytes."""
    return avro_bytes(text.encode())


def avro_bytes(data: bytes) -> bytes:
    """Avro's binary encoding of bytes: the length as a zig-zag varint, the bytes."""
    length = len(data) << 1  # zig-zag of a length, which is never negative
    head = bytearray()
    while length > 0x7F:
        head.append(length & 0x7F | 0x80)
        length >>= 7
    head.append(length)
    return bytes(head) + data


async def written(records: Iterable[asyncio.Future[T]]) -> list[T]:
    """The offsets of records added to one chain (by `add`, or lists of them by `add_all`),
    once the broker has them all: what `asyncio.gather` gives, without its callbacks, as a
    chain's records are acknowledged in order (waiting for the first is mostly all the
    waiting). A failure is raised, and the other records' failures are taken too, so that
    none is reported as never retrieved."""
    records = list(records)
    try:
        return [await record for record in records]
    except BaseException:
        for record in records:
            if record.done() and not record.cancelled():
                record.exception()
        raise


def seal_root(record_hashes: list[str]) -> str:
    return merkle_root([merkle_leaf_hash(bytes.fromhex(h)) for h in record_hashes]).hex()


@dataclass(frozen=True, slots=True)
class TrailPosition:
    chain: str
    seq: int
    hash: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Recovered:
    """Where a recovered chain goes on, and how many trail messages it took to know."""

    next_seq: int
    unsealed: int
    messages_read: int


@dataclass(frozen=True, slots=True)
class ChainRecord:
    """A record of the chain as published: its seq, its hash and its exact message bytes."""

    seq: int
    hash: str
    value: bytes


class TrailArchive(Protocol):
    """Where sealed batches are also kept (gateway.trail.archive.ArchiveWriter): blocking calls,
    made from a worker thread, one batch at a time."""

    @property
    def last_seq(self) -> int: ...

    @property
    def last_hash(self) -> str: ...

    @property
    def last_seal_seq(self) -> int: ...

    @property
    def last_seal_hash(self) -> str | None:
        """`seal_hash` of the archive's last seal; None when it holds none."""

    def append_batch(self, records: Sequence[ChainRecord], seal_value: bytes) -> None: ...

    def keep_checkpoint(self, value: bytes) -> None:
        """Keeps the chain's latest signed checkpoint next to its segments."""


class _Batch:
    """Records cut from the chain for one seal, and how far sealing them has got: signed
    once (a retried send re-sends the same seal), sent to the broker, then archived."""

    __slots__ = ("archived", "records", "seal_value", "sent")

    def __init__(self, records: list[ChainRecord]) -> None:
        self.records = records
        self.seal_value: bytes | None = None
        self.sent = False
        self.archived = False


@dataclass(frozen=True, slots=True)
class SealedHead:
    """The chain's last seal on the broker: what a checkpoint names."""

    seal_seq: int
    last_seq: int
    seal_hash: str
    offset: int


@dataclass(frozen=True, slots=True)
class _Waiter:
    """Who waits for queued messages: for one message (`many` 0) its offset; for the
    `many` messages queued together and ending with this one, their offsets."""

    sent: asyncio.Future[Any]
    many: int

    def settle(self, offsets: Sequence[int], at: int) -> None:
        """`offsets` of a written group, in which this waiter's last message is at `at`."""
        if not self.sent.done():
            self.sent.set_result(offsets[at] if self.many == 0
                                 else list(offsets[at + 1 - self.many : at + 1]))


_Queued = tuple[bytes, bytes, _Waiter | None]


class TrailWriter:
    """Appends records to one chain; seals them every `seal_every` records or
    `seal_interval_ms`, whichever comes first.

    Sealing never holds up `append`: a full batch is handed to a background task that signs
    its Merkle root (in a worker thread), publishes the seal and writes the batch to the
    archive, one batch after another in chain order. A batch whose seal or archive write
    fails stays at the head of the queue and is retried; `seal()` waits until every record
    appended so far is sealed."""

    def __init__(
        self,
        *,
        producer: AIOKafkaProducer,
        codec: TrailCodec,
        key: SM2PrivateKey,
        partition: int,
        settings: TrailSettings,
        topics: Topics,
        chain: str | None = None,
        archive: TrailArchive | None = None,
    ) -> None:
        self._producer = producer
        self._codec = codec
        self._key = key
        self._key_id = key.public_key().key_id
        self.partition = partition
        self.chain = chain if chain is not None else chain_id(partition)
        self._settings = settings
        self._topic = topics.trail
        self._checkpoint_topic = topics.checkpoint
        self._archive = archive
        self._lock = asyncio.Lock()
        self._next_seq = 0
        self._last_hash = GENESIS_HASH
        self._next_seal_seq = 0
        self._previous_seal = GENESIS_HASH  # what the next seal names as its predecessor
        self._head: SealedHead | None = None
        self._checkpointed: tuple[SealedHead | None, float] = (None, time.monotonic())
        self._checkpointing: asyncio.Task[bytes | None] | None = None
        self._pending: list[ChainRecord] = []
        self._pending_since = 0.0
        self._batches: deque[_Batch] = deque()
        self._sealing: asyncio.Task[None] | None = None
        self._key_bytes = self.chain.encode()
        self._queue: list[_Queued] = []
        self._writing: asyncio.Task[None] | None = None
        self._failed: BrokerUnavailable | None = None

    @property
    def next_seq(self) -> int:
        """The seq the next record appended gets."""
        return self._next_seq

    @property
    def pending(self) -> int:
        """Records appended and not yet sealed."""
        return len(self._pending) + sum(len(batch.records) for batch in self._batches)

    async def recover(self, bootstrap_servers: Broker, *, fetch_wait_ms: int = 500) -> Recovered:
        """Continues the chain where it ends (after a restart): on the broker, or in the
        archive when the broker kept less (a broker that keeps nothing on disk). Batches
        sealed on the broker but missing from the archive are archived now."""
        async with own_reader(bootstrap_servers, "the trail to recover",
                              fetch_max_wait_ms=fetch_wait_ms) as consumer:
            records, seals, read = await self._read_tail(consumer)
        archive = self._archive
        if archive is not None and archive.last_seq >= (records[-1].seq if records else -1):
            self._continue_from_archive(archive)
        else:
            await self._continue_from_broker(records, seals)
        recovered = Recovered(self._next_seq, len(self._pending), read)
        log.info("trail.recovered", chain=self.chain, next_seq=recovered.next_seq,
                 unsealed=recovered.unsealed, messages_read=read)
        return recovered

    async def _read_tail(
        self, consumer: AIOKafkaConsumer
    ) -> tuple[list[ChainRecord], list[tuple[dict[str, Any], bytes]], int]:
        """The chain's records and seals from far enough back to recover: the last seal,
        every record after the batch it seals, and every record the archive lacks; and how
        many messages were read for them. Read back from the end in spans that grow, so
        that a restart costs the trail's tail, not the whole trail."""
        tp = TopicPartition(self._topic, self.partition)
        end = await partition_end(consumer, tp)
        span = 4 * self._settings.seal_every + 64
        while True:
            start = max(end - span, 0)
            stored = await read_until_end(consumer, {tp: start})
            records, seals = self._chain_messages(stored)
            if start == 0 or self._reaches_back_enough(records, seals):
                return records, seals, len(stored)
            span *= 4

    def _reaches_back_enough(self, records: Sequence[ChainRecord],
                             seals: Sequence[tuple[dict[str, Any], bytes]]) -> bool:
        """Records are on the broker in seq order, so a tail whose first record comes at or
        before the first one needed holds all of them."""
        if not records or not seals:
            return False
        needed: int = seals[-1][0]["last_seq"] + 1
        if self._archive is not None:
            needed = min(needed, self._archive.last_seq + 1)
        return records[0].seq <= needed

    def _chain_messages(
        self, stored: Sequence[StoredMessage]
    ) -> tuple[list[ChainRecord], list[tuple[dict[str, Any], bytes]]]:
        records: list[ChainRecord] = []
        seals: list[tuple[dict[str, Any], bytes]] = []
        for message in stored:
            name, value = self._codec.schemas.decode(message.value)
            if name == RECORD_SCHEMA and value["entry"]["chain"] == self.chain:
                records.append(ChainRecord(value["entry"]["seq"], value["hash"], message.value))
            elif name == SEAL_SCHEMA and value["body"]["chain"] == self.chain:
                seals.append((value["body"], message.value))
                self._head = SealedHead(value["body"]["seal_seq"], value["body"]["last_seq"],
                                        seal_hash(message.value, value["signature"]),
                                        message.offset)
        return records, seals

    def _continue_from_archive(self, archive: TrailArchive) -> None:
        self._next_seq = archive.last_seq + 1
        self._last_hash = archive.last_hash
        self._next_seal_seq = archive.last_seal_seq + 1
        self._previous_seal = archive.last_seal_hash or GENESIS_HASH
        self._pending = []

    async def _continue_from_broker(
        self, records: list[ChainRecord], seals: list[tuple[dict[str, Any], bytes]]
    ) -> None:
        sealed_through = -1
        for body, _ in seals:
            sealed_through = body["last_seq"]
            self._next_seal_seq = body["seal_seq"] + 1
        if self._head is not None:
            self._previous_seal = self._head.seal_hash
        if records:
            self._next_seq = records[-1].seq + 1
            self._last_hash = records[-1].hash
        self._pending = [r for r in records if r.seq > sealed_through]
        self._pending_since = time.monotonic()
        if self._archive is not None:
            await self._archive_missing(records, seals)

    async def _archive_missing(
        self, records: list[ChainRecord], seals: list[tuple[dict[str, Any], bytes]]
    ) -> None:
        archive = self._archive
        assert archive is not None
        by_seq = {r.seq: r for r in records}
        for body, seal_value in seals:
            if body["last_seq"] <= archive.last_seq:
                continue
            batch = [by_seq[seq] for seq in range(body["first_seq"], body["last_seq"] + 1)
                     if seq in by_seq]
            await asyncio.to_thread(archive.append_batch, batch, seal_value)
            log.info("trail.archived_from_broker", chain=self.chain,
                     first_seq=body["first_seq"], last_seq=body["last_seq"])

    async def append(self, **fields: Any) -> TrailPosition:
        """Appends a record and waits until the broker has it."""
        record, sent = self._add(fields)
        return TrailPosition(self.chain, record.seq, record.hash, self.partition, await sent)

    def add(self, **fields: Any) -> asyncio.Future[int]:
        """Appends a record to the chain now; the future gets its offset once the broker
        has it.

        Records are written in groups: whatever was added while the previous group was on
        its way goes out next, as one record batch (all or nothing on the broker). A group
        is only sent after the one before it was acknowledged, so the broker never holds a
        record whose predecessor it lacks."""
        return self._add(fields)[1]

    def add_all(self, entries: Sequence[Mapping[str, Any]]) -> asyncio.Future[list[int]]:
        """Appends a record for each entry now, in order (as `add` each, timed alike unless
        an entry names its time); one future gets their offsets once the broker has them
        all. A decided document's entries go this way: one waiter, not one per record."""
        now, values = utc_now(), []
        try:
            for fields in entries:
                values.append(self._record(fields, now).value)
        finally:  # the records made are the chain's now: the broker must have them too
            sent = self._enqueue_all(values, RECORD_KIND)
        return sent

    def _add(self, fields: Mapping[str, Any]) -> tuple[ChainRecord, asyncio.Future[int]]:
        record = self._record(fields, utc_now())
        return record, self._enqueue(record.value, RECORD_KIND)

    def _record(self, fields: Mapping[str, Any], now: datetime) -> ChainRecord:
        """The next record of the chain, pending its seal (its message not yet queued)."""
        self._check_sound()
        entry = {**ENTRY_DEFAULTS, "time": now, **fields, "chain": self.chain,
                 "seq": self._next_seq, "prev_hash": self._last_hash}
        record_hash, value = self._codec.hashed_record(entry)
        record = ChainRecord(self._next_seq, record_hash, value)
        self._next_seq += 1
        self._last_hash = record_hash
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(record)
        if len(self._pending) >= self._settings.seal_every:
            self._cut_batch()
        return record

    def _check_sound(self) -> None:
        if self._failed is not None:
            raise BrokerUnavailable(f"trail chain {self.chain} must be recovered first: "
                                    f"{self._failed}")

    def close(self) -> None:
        """Stops writing and sealing (a writer given up for a recovered one)."""
        for task in (self._writing, self._sealing, self._checkpointing):
            if task is not None:
                task.cancel()

    @property
    def failed(self) -> bool:
        """A group could not be written: the chain must be recovered from the broker."""
        return self._failed is not None

    def seal_if_due(self) -> None:
        """Hands the pending records to the sealer when the oldest has waited long enough,
        and publishes a checkpoint when one is due."""
        age_ms = (time.monotonic() - self._pending_since) * 1000
        if self._pending and age_ms >= self._settings.seal_interval_ms:
            self._cut_batch()
        self._checkpoint_if_due()

    def _checkpoint_if_due(self) -> None:
        """A checkpoint every `checkpoint_every_seals` seals, and every
        `checkpoint_interval_s` while the chain has a seal (a fresh time says the head had
        not moved on), one at a time."""
        head, (checkpointed, since) = self._head, self._checkpointed
        if head is None or (self._checkpointing is not None
                            and not self._checkpointing.done()):
            return
        seals = head.seal_seq - (checkpointed.seal_seq if checkpointed else -1)
        waited = time.monotonic() - since
        if seals >= self._settings.checkpoint_every_seals or (
                waited >= self._settings.checkpoint_interval_s):
            self._checkpointing = asyncio.create_task(self._checkpoint(head),
                                                      name=f"trail-checkpoint-{self.chain}")

    async def checkpoint(self) -> bytes | None:
        """Publishes a checkpoint of the chain's last seal now; its message, or None when
        the chain has no seal yet."""
        head = self._head
        return None if head is None else await self._checkpoint(head)

    async def _checkpoint(self, head: SealedHead) -> bytes | None:
        body = {"chain": self.chain, "seal_seq": head.seal_seq, "last_seq": head.last_seq,
                "seal_hash": head.seal_hash, "partition": self.partition,
                "offset": head.offset, "time": utc_now(), "key_id": self._key_id}
        try:
            value = await asyncio.to_thread(self._signed_checkpoint, body)
            await self._producer.send_and_wait(self._checkpoint_topic, value, key=self._key_bytes)
            if self._archive is not None:
                await asyncio.to_thread(self._archive.keep_checkpoint, value)
        except (KafkaError, OSError) as exc:
            log.warning("trail.checkpoint_failed", chain=self.chain, error=str(exc))
            return None
        self._checkpointed = (head, time.monotonic())
        log.debug("trail.checkpointed", chain=self.chain, seal_seq=head.seal_seq)
        return value

    def _signed_checkpoint(self, body: dict[str, Any]) -> bytes:
        return self._codec.encode_checkpoint(
            body, self._key.sign(self._codec.checkpoint_message(body)))

    async def seal(self) -> None:
        """Seals every record appended so far and waits until that is done."""
        async with self._lock:
            self._cut_batch()
        while self._batches:
            task = self._sealing
            if task is None or task.done():
                task = self._start_sealing()
            await asyncio.shield(task)

    def _cut_batch(self) -> None:
        if not self._pending:
            return
        self._batches.append(_Batch(self._pending))
        self._pending = []
        if self._sealing is None or self._sealing.done():
            self._start_sealing()

    def _start_sealing(self) -> asyncio.Task[None]:
        self._sealing = asyncio.create_task(self._seal_batches(), name=f"trail-seal-{self.chain}")
        return self._sealing

    async def _seal_batches(self) -> None:
        """Seals the queued batches in order. A failure is retried with a growing pause for
        up to `seal_retry_s`; after that the task ends with the error and the batch stays
        queued for the next attempt."""
        delay, deadline = 0.1, time.monotonic() + self._settings.seal_retry_s
        while self._batches:
            try:
                await self._seal_batch(self._batches[0])
            except (BrokerUnavailable, OSError) as exc:
                log.warning("trail.seal_failed", chain=self.chain, error=str(exc))
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._batches.popleft()
            delay, deadline = 0.1, time.monotonic() + self._settings.seal_retry_s

    async def _seal_batch(self, batch: _Batch) -> None:
        if batch.seal_value is None:
            body = {
                "chain": self.chain,
                "seal_seq": self._next_seal_seq,
                "first_seq": batch.records[0].seq,
                "last_seq": batch.records[-1].seq,
                "root": "",
                "time": utc_now(),
                "key_id": self._key_id,
                "previous_seal": self._previous_seal,
            }
            batch.seal_value = await asyncio.to_thread(self._signed_seal, body, batch.records)
            self._previous_seal = sm3_hex(self._codec.seal_message(body))
        if not batch.sent:
            offset = await self._send(batch.seal_value, SEAL_KIND)
            batch.sent = True
            self._head = SealedHead(self._next_seal_seq, batch.records[-1].seq,
                                    self._previous_seal, offset)
            self._next_seal_seq += 1
        if self._archive is not None and not batch.archived:
            await asyncio.to_thread(self._archive.append_batch, batch.records, batch.seal_value)
        batch.archived = True
        log.debug("trail.sealed", chain=self.chain, first_seq=batch.records[0].seq,
                  last_seq=batch.records[-1].seq)

    def _signed_seal(self, body: dict[str, Any], records: Sequence[ChainRecord]) -> bytes:
        """The seal's bytes: the Merkle root over the records, signed. CPU work, so it runs
        in a worker thread (OpenSSL's SM2 releases the GIL)."""
        body["root"] = seal_root([r.hash for r in records])
        signature = self._key.sign(self._codec.seal_message(body))
        return self._codec.encode_seal(body, signature)

    def _enqueue(self, value: bytes, kind: bytes) -> asyncio.Future[int]:
        """Queues a message for the next group; the future gets its offset."""
        sent: asyncio.Future[int] = self._new_waiter()
        self._queue.append((value, kind, _Waiter(sent, 0)))
        return sent

    def _enqueue_all(self, values: Sequence[bytes], kind: bytes) -> asyncio.Future[list[int]]:
        """Queues messages for the next group, one waiter for all: the future gets their
        offsets."""
        if not values:
            nothing: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
            nothing.set_result([])
            return nothing
        sent: asyncio.Future[list[int]] = self._new_waiter()
        last = len(values) - 1
        self._queue.extend((value, kind, _Waiter(sent, len(values)) if n == last else None)
                           for n, value in enumerate(values))
        return sent

    def _new_waiter(self) -> asyncio.Future[Any]:
        self._check_sound()
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_groups(),
                                                name=f"trail-write-{self.chain}")
        return asyncio.get_running_loop().create_future()

    async def _send(self, value: bytes, kind: bytes) -> int:
        return await self._enqueue(value, kind)

    async def _write_groups(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            try:
                offsets = await self._write_group([(value, kind) for value, kind, _ in group])
            except BrokerUnavailable as exc:
                self._fail(exc, group)
                return
            for n, (_, _, waiter) in enumerate(group):
                if waiter is not None:
                    waiter.settle(offsets, n)

    async def _write_group(self, group: list[tuple[bytes, bytes]]) -> list[int]:
        """Writes the group as record batches, in order, each retried until the broker
        takes it or `write_retry_s` has passed."""
        offsets: list[int] = []
        while len(offsets) < len(group):
            offsets.extend(await self._write_batch(group[len(offsets):]))
        return offsets

    async def _write_batch(self, messages: list[tuple[bytes, bytes]]) -> range:
        """Writes as many of `messages` as fit in one record batch; their offsets."""
        delay, deadline = 0.1, time.monotonic() + self._settings.write_retry_s
        while True:
            batch = self._producer.create_batch()
            count = 0
            for value, kind in messages:
                if batch.append(key=self._key_bytes, value=value, timestamp=None,
                                headers=[(H_RECORD, kind)]) is None:
                    break
                count += 1
            if count == 0:
                raise BrokerUnavailable(f"a trail message of {len(messages[0][0])} bytes "
                                        "does not fit in a record batch")
            try:
                sent = await self._producer.send_batch(batch, self._topic,
                                                       partition=self.partition)
                base = int((await sent).offset)
                return range(base, base + count)
            except KafkaError as exc:
                if time.monotonic() + delay > deadline:
                    raise BrokerUnavailable(f"trail write failed: {exc}") from exc
                log.warning("trail.write_retry", chain=self.chain, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _fail(self, exc: BrokerUnavailable, group: list[_Queued]) -> None:
        """Nothing more is written on this chain: what is in memory may no longer match the
        broker. Everything waiting fails; the owner recovers the chain before going on."""
        self._failed = exc
        waiting, self._queue = [*group, *self._queue], []
        for _, _, waiter in waiting:
            if waiter is not None and not waiter.sent.done():
                waiter.sent.set_exception(exc)
        log.error("trail.write_failed", chain=self.chain, error=str(exc))


def reference(at: Published, value: bytes, *, digest: str | None = None) -> dict[str, Any]:
    """Trail fields naming the published message a decision produced, with its digest (the
    value's SM3, computed unless the caller already has it)."""
    return {
        "ref_topic": at.topic,
        "ref_partition": at.partition,
        "ref_offset": at.offset,
        "ref_digest": digest if digest is not None else sm3_hex(value),
    }

