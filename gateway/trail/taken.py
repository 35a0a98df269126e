"""Recipients' acknowledgements on the trail: a delivery recorded as TAKEN (non-repudiation of
receipt).

A verified acknowledgement (gateway.deliveries.acknowledgements) is kept in its canonical
wire form (`Acknowledgement.to_json`: the signed fields and the signature) on the
`px.taken.v1` topic (keyed by the agency); then one TAKEN record per delivery it names goes on
the trail chain `taken`, naming that message by place and SM3 (`ref_*`) like every record
that names what the gateway published. So `replay verify` finds an acknowledgement altered or
missing as it finds a delivery altered, and an auditor verifies the recipient's signature
again from the message the record names (`verify_taken_message`).

A TAKEN record: `event_id`, `sender`, `document_type`, `business_key`, `document_version`,
`contract_*` and `recipient` are the delivery's; `submission_id` is the delivery id;
`format_id` the payload's encoding; `digest_sm3` is the payload's SM3 the recipient signed;
`signature_key_id` its ack key.

The chain `taken` has one writer: the gateway process serving the HTTP door (one chain per
writer, as every chain; several gateway processes serving deliveries would each need a chain
of their own, `chain=`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaProducer

from crypto import KeyEntry, Keyring, SM2PrivateKey, sm3_hex
from gateway.deliveries.acknowledgements import (
    Acknowledgement,
    AcknowledgementVerifier,
    check_taken,
    format_taken_at,
)
from gateway.deliveries.proof import Delivery
from gateway.home.config import TrailSettings
from gateway.kafka.names import Outbound, Topics
from gateway.kafka.wire import Broker, Published, publish
from gateway.trail.writer import TrailArchive, TrailCodec, TrailWriter, reference

log = structlog.get_logger(__name__)

TAKEN: Final = "TAKEN"
TAKEN_CHAIN: Final = "taken"
TAKEN_PARTITION: Final = 0


@dataclass(frozen=True, slots=True)
class TakenPlace:
    """Where one TAKEN record is: its chain, seq and hash, and the trail offset."""

    delivery_id: str
    chain: str
    seq: int
    offset: int


@dataclass(frozen=True, slots=True)
class TakenReceipt:
    """What the gateway recorded for one acknowledgement: where its message is, its SM3, and
    each delivery's TAKEN record."""

    acknowledgement: Published
    digest: str
    records: tuple[TakenPlace, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "acknowledgement": {"topic": self.acknowledgement.topic,
                                "partition": self.acknowledgement.partition,
                                "offset": self.acknowledgement.offset,
                                "digest": self.digest},
            "taken": [{"delivery_id": r.delivery_id, "chain": r.chain, "seq": r.seq,
                       "trail_offset": r.offset} for r in self.records],
        }


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


class TakenRecorder:
    """Records verified acknowledgements: the message on `Topics.taken`, then the TAKEN
    records on the chain `chain`, sealed within the trail's seal interval. For one event
    loop. The chain is recovered when the first acknowledgement comes (it shares its trail
    partition with a chain of the ingress, so recovering it may read much of that
    partition: a cost for the gateways that take acknowledgements only), and again after
    a write failed; `close` seals what is left."""

    def __init__(self, producer: AIOKafkaProducer, codec: TrailCodec, settings: TrailSettings,
                 topics: Topics, bootstrap_servers: Broker, *, key: SM2PrivateKey,
                 chain: str = TAKEN_CHAIN, partition: int = TAKEN_PARTITION,
                 archive: TrailArchive | None = None, fetch_wait_ms: int = 500) -> None:
        self._producer = producer
        self._topic = topics.taken
        self._bootstrap_servers = bootstrap_servers
        self._fetch_wait_ms = fetch_wait_ms
        self._interval_s = settings.seal_interval_ms / 1000
        self._make_writer = partial(TrailWriter, producer=producer, codec=codec, key=key,
                                    partition=partition, settings=settings, topics=topics,
                                    chain=chain, archive=archive)
        self._writer: TrailWriter | None = None
        self._lock = asyncio.Lock()
        self._ticking: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self._ticking is not None:
            self._ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticking
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            if not writer.failed:
                await writer.seal()
                await writer.checkpoint()
        finally:
            writer.close()

    async def _ready_writer(self) -> TrailWriter:
        """The chain's writer, recovered (called under the lock)."""
        writer = self._writer
        if writer is not None and not writer.failed:
            return writer
        if writer is not None:
            writer.close()
            self._writer = None
        writer = self._make_writer()
        try:
            await writer.recover(self._bootstrap_servers, fetch_wait_ms=self._fetch_wait_ms)
        except BaseException:
            writer.close()
            raise
        self._writer = writer
        if self._ticking is None:
            self._ticking = asyncio.create_task(self._tick(), name="taken-sealer")
        return writer

    async def record(self, ack: Acknowledgement, ack_key_id: str,
                     deliveries: Sequence[Delivery]) -> TakenReceipt:
        """Keeps `ack` (verified, with the key `ack_key_id`) and records each of
        `deliveries` as TAKEN; `deliveries` are the ones it names, in its order, each
        checked against what it names (`check_taken`). BrokerUnavailable when the broker
        does not take them."""
        check_taken(ack, deliveries)
        value = ack.to_json()
        ack_digest = sm3_hex(value)
        async with self._lock:  # one acknowledgement's records together on the chain
            writer = await self._ready_writer()
            at = await publish(self._producer, Outbound(self._topic, ack.agency.encode(),
                                                        value, ()))
            entries = [taken_entry(ack, ack_key_id, delivery, taken.digest, at, ack_digest)
                       for taken, delivery in zip(ack.taken, deliveries, strict=True)]
            first_seq = writer.next_seq
            offsets = await writer.add_all(entries)
        log.info("deliveries.taken", agency=ack.agency, deliveries=len(entries),
                 chain=writer.chain)
        return TakenReceipt(at, ack_digest, tuple(
            TakenPlace(delivery.delivery_id, writer.chain, first_seq + n, offset)
            for n, (delivery, offset) in enumerate(zip(deliveries, offsets, strict=True))))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            writer = self._writer
            if writer is not None and not writer.failed:
                writer.seal_if_due()


def verify_taken_message(keyring: Keyring, value: bytes) -> tuple[Acknowledgement, KeyEntry]:
    """An auditor's check of the message a TAKEN record names: the acknowledgement and the
    key that signed it, valid when it was signed (AcknowledgementRefused otherwise)."""
    ack = Acknowledgement.from_json(value)
    entry = AcknowledgementVerifier(keyring).verify(ack, expected_agency=ack.agency,
                                                    at=ack.taken_at)
    return ack, entry
