"""Recipients' acknowledgements on the trail: a delivery recorded as TAKEN (non-repudiation of
receipt).

A verified acknowledgement (gateway.deliveries.acknowledgements) is kept in its canonical
wire form (`Acknowledgement.to_json`: the signed fields and the signature) on the
`px.taken.v1` topic (keyed by the agency); then one TAKEN record per delivery it names goes on
a trail chain `taken-p<N>`, naming that message by place and SM3 (`ref_*`) like every record
that names what the gateway published. So `replay verify` finds an acknowledgement altered or
missing as it finds a delivery altered, and an auditor verifies the recipient's signature
again from the message the record names (`verify_taken_message`).

A TAKEN record: `event_id`, `sender`, `document_type`, `business_key`, `document_version`,
`contract_*` and `recipient` are the delivery's; `submission_id` is the delivery id;
`format_id` the payload's encoding; `digest_sm3` is the payload's SM3 the recipient signed;
`signature_key_id` its ack key.

**One writer per chain.** Every gateway process with a door takes acknowledgements, and a
chain written from two processes would fork. The chain `taken-p<N>` (on trail partition N)
belongs to the process that owns ingress partition N, as the chain `p<N>` does: the consumer
group gives each partition to one process at a time. A recorder writes on the chain of the
lowest partition its process owns (`own`), seals it and lets it go before the partition
moves (`give_up`); a process that owns none answers TAKEN_UNAVAILABLE (503) until it does.

**Once each.** A repeat of an acknowledgement already recorded (the same signed statement)
is answered with the first one's receipt and records nothing; an acknowledgement signed
outside the window of `check_fresh` is refused (ACK_STALE), so only a window's worth is
remembered. After each is recorded its outcome (the receipt) is put on `px.taken.v1` too,
marked `px-record: taken`; a recorder reads the window's outcomes back before its first
acknowledgement, so the repeats it knows survive a restart, and those another process
recorded before it started. A crash between the TAKEN records and the outcome leaves a
repeat unrecognised (recorded again); so does a repeat sent meanwhile to another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition

from crypto import KeyEntry, Keyring, SM2PrivateKey, sm3_hex
from gateway.clock import utc_now
from gateway.deliveries.acknowledgements import (
    ACK_MAX_AGE,
    ACK_MAX_AHEAD,
    Acknowledgement,
    AcknowledgementVerifier,
    canonical_json,
    check_fresh,
    check_taken,
    format_taken_at,
    parse_taken_at,
)
from gateway.deliveries.proof import Delivery
from gateway.errors import GatewayError
from gateway.home.config import TrailSettings
from gateway.kafka.names import H_RECORD, Outbound, StoredMessage, Topics
from gateway.kafka.wire import (
    Broker,
    Published,
    acked,
    own_reader,
    partition_end,
    publish,
    read_until_end,
)
from gateway.trail.writer import TrailArchive, TrailCodec, TrailWriter, chain_id, reference

log = structlog.get_logger(__name__)

TAKEN: Final = "TAKEN"
TAKEN_UNAVAILABLE: Final = "TAKEN_UNAVAILABLE"
OUTCOME_KIND: Final = b"taken"
# How long an acknowledgement waits for its process to own an ingress partition (a process
# just started has none until the consumer group gives it some).
OWNER_WAIT_S: Final = 15.0


def taken_chain(partition: int) -> str:
    """The chain of TAKEN records kept by the owner of ingress partition `partition`."""
    return f"taken-{chain_id(partition)}"


class TakenUnavailable(GatewayError):
    """This process keeps no chain for TAKEN records now: it owns no ingress partition."""

    code = TAKEN_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class TakenPlace:
    """Where one TAKEN record is: its chain, seq and hash, and the trail offset."""

    delivery_id: str
    chain: str
    seq: int
    offset: int


@dataclass(frozen=True, slots=True)
class TakenReceipt:
    """What the gateway recorded for one acknowledgement: where its message is, its SM3,
    each delivery's TAKEN record and when; `repeated` when the acknowledgement had been
    recorded before (this is that first receipt)."""

    acknowledgement: Published
    digest: str
    records: tuple[TakenPlace, ...]
    recorded_at: datetime
    repeated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "acknowledgement": {"topic": self.acknowledgement.topic,
                                "partition": self.acknowledgement.partition,
                                "offset": self.acknowledgement.offset,
                                "digest": self.digest},
            "taken": [{"delivery_id": r.delivery_id, "chain": r.chain, "seq": r.seq,
                       "trail_offset": r.offset} for r in self.records],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any], recorded_at: datetime) -> TakenReceipt:
        ack = value["acknowledgement"]
        return cls(Published(ack["topic"], ack["partition"], ack["offset"]), ack["digest"],
                   tuple(TakenPlace(r["delivery_id"], r["chain"], r["seq"], r["trail_offset"])
                         for r in value["taken"]), recorded_at)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A recorded acknowledgement as `px.taken.v1` keeps it for recognising its repeats."""

    statement: str
    taken_at: datetime
    receipt: TakenReceipt

    def to_json(self) -> bytes:
        return canonical_json({"statement": self.statement,
                               "taken_at": format_taken_at(self.taken_at),
                               "recorded_at": format_taken_at(self.receipt.recorded_at),
                               "receipt": self.receipt.to_json()})

    @classmethod
    def from_json(cls, data: bytes) -> Outcome:
        value = json.loads(data)
        return cls(value["statement"], parse_taken_at(value["taken_at"]),
                   TakenReceipt.from_json(value["receipt"],
                                          parse_taken_at(value["recorded_at"])))


def taken_entry(ack: Acknowledgement, ack_key_id: str, delivery: Delivery, digest: str,
                at: Published, ack_digest: str) -> dict[str, Any]:
    """The TAKEN trail entry of one delivery the acknowledgement names (see the module)."""
    return {
        "kind": TAKEN,
        "submission_id": delivery.delivery_id,
        "event_id": delivery.event_id,
        "sender": delivery.sender,
        "format_id": delivery.payload_encoding,
        "document_type": delivery.document_type,
        "business_key": delivery.business_key,
        "document_version": delivery.document_version,
        "digest_sm3": digest,
        "signature_key_id": ack_key_id,
        "reason": f"taken by {ack.agency} at {format_taken_at(ack.taken_at)} (its signed "
                  "acknowledgement is the message this record names)",
        "recipient": ack.agency,
        "contract_id": delivery.contract_id,
        "contract_version": delivery.contract_version,
        **reference(at, b"", digest=ack_digest),
    }


class Remembered:
    """The outcomes of the acknowledgements recorded within the freshness window, by
    statement; one under way is a future its repeats wait on. Older ones are forgotten: an
    acknowledgement that old is refused as stale before it is looked up."""

    __slots__ = ("_order", "_outcomes")

    def __init__(self) -> None:
        self._outcomes: dict[str, asyncio.Future[TakenReceipt]] = {}
        self._order: deque[tuple[datetime, str]] = deque()

    def get(self, statement: str) -> asyncio.Future[TakenReceipt] | None:
        return self._outcomes.get(statement)

    def begin(self, statement: str, taken_at: datetime) -> asyncio.Future[TakenReceipt]:
        underway: asyncio.Future[TakenReceipt] = asyncio.get_running_loop().create_future()
        self._outcomes[statement] = underway
        self._order.append((taken_at, statement))
        return underway

    def failed(self, statement: str, underway: asyncio.Future[TakenReceipt]) -> None:
        """Recording it failed: forgotten, and its waiting repeats try again."""
        if self._outcomes.get(statement) is underway:
            del self._outcomes[statement]
        underway.cancel()

    def keep(self, outcome: Outcome) -> None:
        if outcome.statement not in self._outcomes:
            self.begin(outcome.statement, outcome.taken_at).set_result(outcome.receipt)

    def forget_before(self, cutoff: datetime) -> None:
        order = self._order
        while order and order[0][0] < cutoff:
            self._outcomes.pop(order.popleft()[1], None)

    def __len__(self) -> int:
        return len(self._outcomes)


class TakenRecorder:
    """Records verified acknowledgements: the message on `Topics.taken`, then the TAKEN
    records on the chain of an ingress partition this process owns (see the module), sealed
    within the trail's seal interval. For one event loop. A chain is recovered when it is
    first needed (it shares its trail partition with a chain of the ingress, so recovering
    it may read much of that partition), and again after a write failed; `give_up` and
    `close` seal what is left.

    Nothing is held across a round trip to the broker: one acknowledgement's records are
    added to the chain together (`TrailWriter.add_all`, with no wait between), so
    acknowledgements recorded at once overlap their writes and the chain stays in order."""

    def __init__(self, producer: AIOKafkaProducer, codec: TrailCodec, settings: TrailSettings,
                 topics: Topics, bootstrap_servers: Broker, *, key: SM2PrivateKey,
                 partitions: Iterable[int] = (),
                 archive: Callable[[str], TrailArchive | None] | None = None,
                 fetch_wait_ms: int = 500) -> None:
        self._producer = producer
        self._topic = topics.taken
        self._bootstrap_servers = bootstrap_servers
        self._fetch_wait_ms = fetch_wait_ms
        self._interval_s = settings.seal_interval_ms / 1000
        self._make_writer = partial(TrailWriter, producer=producer, codec=codec, key=key,
                                    settings=settings, topics=topics)
        self._archive = archive
        self._owned: set[int] = set()
        self._owning = asyncio.Event()
        self.own(partitions)
        self._writer: TrailWriter | None = None
        self._lock = asyncio.Lock()  # one chain recovered at a time
        self._ticking: asyncio.Task[None] | None = None
        self._remembered = Remembered()
        self._recalled = False
        self._recalling = asyncio.Lock()
        self._keeping: set[asyncio.Task[None]] = set()

    @property
    def chain(self) -> str | None:
        """The chain the next TAKEN records go on, when one is recovered."""
        return None if self._writer is None else self._writer.chain

    def own(self, partitions: Iterable[int]) -> None:
        """This process now owns these ingress partitions (and so their chains of TAKEN)."""
        self._owned.update(partitions)
        if self._owned:
            self._owning.set()

    async def give_up(self, partitions: Iterable[int]) -> None:
        """These partitions go to another process: their chain, if in use, is sealed,
        checkpointed and let go before this returns (no record is added to it after)."""
        gone = set(partitions)
        self._owned -= gone
        if not self._owned:
            self._owning.clear()
        writer = self._writer
        if writer is not None and writer.partition in gone:
            self._writer = None
            await self._retire(writer)

    async def close(self) -> None:
        if self._ticking is not None:
            self._ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticking
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                await self._retire(writer)
        finally:
            if self._keeping:
                await asyncio.gather(*self._keeping, return_exceptions=True)

    @staticmethod
    async def _retire(writer: TrailWriter) -> None:
        try:
            if not writer.failed:
                await writer.seal()
                await writer.checkpoint()
        finally:
            writer.close()

    async def record(self, ack: Acknowledgement, ack_key_id: str,
                     deliveries: Sequence[Delivery]) -> TakenReceipt:
        """Keeps `ack` (verified, with the key `ack_key_id`) and records each of
        `deliveries` as TAKEN; `deliveries` are the ones it names, in its order, each
        checked against what it names (`check_taken`), and it must be fresh
        (`check_fresh`: ACK_STALE). A repeat of one recorded is answered with its receipt
        (`repeated`). BrokerUnavailable when the broker does not take them,
        TakenUnavailable when this process owns no ingress partition."""
        check_taken(ack, deliveries)
        now = utc_now()
        check_fresh(ack, now)
        await self._recall(now)
        statement = ack.statement_digest()
        while True:
            self._remembered.forget_before(now - ACK_MAX_AGE - ACK_MAX_AHEAD)
            known = self._remembered.get(statement)
            if known is None:
                break
            await asyncio.wait([known])
            if not known.cancelled():
                return replace(known.result(), repeated=True)
        underway = self._remembered.begin(statement, ack.taken_at)
        try:
            receipt = await self._record(ack, ack_key_id, deliveries)
        except BaseException:
            self._remembered.failed(statement, underway)
            raise
        underway.set_result(receipt)
        self._keep(Outcome(statement, ack.taken_at, receipt), ack.agency)
        return receipt

    async def _record(self, ack: Acknowledgement, ack_key_id: str,
                      deliveries: Sequence[Delivery]) -> TakenReceipt:
        value = ack.to_json()
        ack_digest = sm3_hex(value)
        at = await publish(self._producer, Outbound(self._topic, ack.agency.encode(),
                                                    value, ()))
        entries = [taken_entry(ack, ack_key_id, delivery, taken.digest, at, ack_digest)
                   for taken, delivery in zip(ack.taken, deliveries, strict=True)]
        writer = await self._owned_writer()
        # No wait between choosing the writer and adding: `give_up` seals what was added.
        first_seq = writer.next_seq
        offsets = await writer.add_all(entries)
        log.info("deliveries.taken", agency=ack.agency, deliveries=len(entries),
                 chain=writer.chain)
        return TakenReceipt(at, ack_digest, tuple(
            TakenPlace(delivery.delivery_id, writer.chain, first_seq + n, offset)
            for n, (delivery, offset) in enumerate(zip(deliveries, offsets, strict=True))),
            utc_now())

    async def _owned_writer(self) -> TrailWriter:
        """The writer of the chain of an ingress partition this process owns, recovered."""
        while True:
            writer = self._writer
            if writer is not None and not writer.failed and writer.partition in self._owned:
                return writer
            async with self._lock:
                if self._writer is not writer:
                    continue  # replaced meanwhile
                if writer is not None:
                    self._writer = None
                    writer.close()  # failed: recovered from the broker again
                await self._recover(await self._first_owned())

    async def _first_owned(self) -> int:
        if not self._owned:
            try:
                await asyncio.wait_for(self._owning.wait(), OWNER_WAIT_S)
            except TimeoutError:
                raise TakenUnavailable("this gateway process owns no ingress partition now, "
                                       "so it keeps no chain of TAKEN records; try again "
                                       "later or at another process") from None
        return min(self._owned)

    async def _recover(self, partition: int) -> None:
        chain = taken_chain(partition)
        archive = (None if self._archive is None
                   else await asyncio.to_thread(self._archive, chain))
        writer = self._make_writer(partition=partition, chain=chain, archive=archive)
        try:
            await writer.recover(self._bootstrap_servers, fetch_wait_ms=self._fetch_wait_ms)
        except BaseException:
            writer.close()
            raise
        if partition not in self._owned:  # given up meanwhile: nothing written on it
            writer.close()
            return
        self._writer = writer
        if self._ticking is None:
            self._ticking = asyncio.create_task(self._tick(), name="taken-sealer")

    async def _recall(self, now: datetime) -> None:
        """Before the first acknowledgement: the outcomes `px.taken.v1` holds from within
        the window, remembered."""
        if self._recalled:
            return
        async with self._recalling:
            if self._recalled:
                return
            since = now - ACK_MAX_AGE - ACK_MAX_AHEAD
            outcomes = await read_outcomes(self._bootstrap_servers, self._topic, since,
                                           fetch_wait_ms=self._fetch_wait_ms)
            for outcome in outcomes:
                self._remembered.keep(outcome)
            self._recalled = True
            log.info("deliveries.taken_recalled", outcomes=len(outcomes))

    def _keep(self, outcome: Outcome, agency: str) -> None:
        """Puts the outcome on `px.taken.v1`, not waited for: the answer does not wait on
        what only a later restart needs."""
        task = asyncio.create_task(self._send_outcome(outcome, agency), name="taken-outcome")
        self._keeping.add(task)
        task.add_done_callback(self._keeping.discard)

    async def _send_outcome(self, outcome: Outcome, agency: str) -> None:
        try:
            await acked(await self._producer.send(
                self._topic, outcome.to_json(), key=agency.encode(),
                headers=[(H_RECORD, OUTCOME_KIND)]))
        except Exception as exc:  # a repeat after a restart is then recorded again
            log.warning("deliveries.taken_outcome_not_kept", error=type(exc).__name__)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            writer = self._writer
            if writer is not None and not writer.failed:
                writer.seal_if_due()


async def read_outcomes(broker: Broker, topic: str, since: datetime, *,
                        fetch_wait_ms: int = 500) -> list[Outcome]:
    """The outcomes on `topic` (px.taken.v1, one partition) put there since `since`: read
    back from its end in spans that grow until one starts before then."""
    cutoff_ms = int(since.timestamp() * 1000)
    tp = TopicPartition(topic, 0)
    async with own_reader(broker, "the acknowledgements recorded",
                          fetch_max_wait_ms=fetch_wait_ms) as consumer:
        end = await partition_end(consumer, tp)
        span = 256
        while True:
            start = max(end - span, 0)
            stored = await read_until_end(consumer, {tp: start})
            if start == 0 or (stored and stored[0].timestamp_ms < cutoff_ms):
                break
            span *= 4
    return [outcome for m in stored if m.timestamp_ms >= cutoff_ms and is_outcome(m)
            for outcome in _readable(m)]


def _readable(message: StoredMessage) -> tuple[Outcome, ...]:
    """The outcome `message` holds; none (and a warning) when it cannot be read, so that one
    unreadable message costs only the recognition of one repeat."""
    try:
        return (Outcome.from_json(message.value),)
    except (ValueError, KeyError, TypeError, GatewayError):
        log.warning("deliveries.taken_outcome_unreadable", offset=message.offset)
        return ()


def is_outcome(message: StoredMessage) -> bool:
    """Whether a message of `px.taken.v1` is an outcome (else an acknowledgement)."""
    return message.header(H_RECORD) == OUTCOME_KIND


def verify_taken_message(keyring: Keyring, value: bytes) -> tuple[Acknowledgement, KeyEntry]:
    """An auditor's check of the message a TAKEN record names: the acknowledgement and the
    key that signed it, valid when it was signed (AcknowledgementRefused otherwise)."""
    ack = Acknowledgement.from_json(value)
    entry = AcknowledgementVerifier(keyring).verify(ack, expected_agency=ack.agency,
                                                    at=ack.taken_at)
    return ack, entry
