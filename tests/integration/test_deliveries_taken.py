"""A recipient's signed acknowledgement on the trail, on the real broker: kept in its wire
form, one TAKEN record per delivery it names, sealed; `replay verify` holds the trail sound,
and the auditor verifies the recipient's signature again from the message a TAKEN record
names (and refuses it altered)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer

from crypto import DEFAULT_SM2_ID, sm3_hex
from gateway.clock import utc_now
from gateway.deliveries.acknowledgements import (
    ACK_SIGNATURE_INVALID,
    Acknowledgement,
    AcknowledgementRefused,
    Taken,
    sign_acknowledgement,
)
from gateway.deliveries.proof import Delivery, DeliveryVerifier
from gateway.home.config import GatewayConfig
from gateway.home.create import Home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.wire import new_producer, read_at, read_topics
from gateway.parts import GatewayParts
from gateway.trail.taken import (
    TAKEN,
    TakenReceipt,
    TakenRecorder,
    taken_chain,
    verify_taken_message,
)
from gateway.trail.writer import TrailCodec
from replay.verify import verify_kafka
from tests.integration.service_support import (
    PROVIDER,
    RECIPIENTS,
    numbered_arrival,
)
from tests.integration.support import Sent, gateway_parts, submit_all, trail_entries

CUSTOMS = RECIPIENTS[0]


def test_taken_deliveries_are_on_the_trail_and_verify(home: Home, broker: LocalBroker) -> None:
    bootstrap = broker.bootstrap_servers
    asyncio.run(submit_all(home, bootstrap, [Sent(PROVIDER, numbered_arrival(n))
                                             for n in range(3)]))
    config, parts = gateway_parts(home)
    verifier = DeliveryVerifier(parts.keyring, CUSTOMS)
    messages = asyncio.run(read_topics(bootstrap, [parts.topics.delivery(CUSTOMS)]))
    deliveries = [verifier.check(m) for m in messages]
    assert len(deliveries) == 3
    ack = sign_acknowledgement(CUSTOMS, [Taken.of(d.delivery_id, d.payload) for d in deliveries],
                               utc_now(), home.agency_keys[CUSTOMS])

    async def record() -> TakenReceipt:
        producer = new_producer(bootstrap)
        await producer.start()
        recorder = TakenRecorder(producer, TrailCodec(parts.schemas), config.trail,
                                 parts.topics, bootstrap, key=parts.key, partitions=[0])
        try:
            return await recorder.record(ack, home.agency_keys[CUSTOMS].public_key().key_id,
                                         deliveries)
        finally:
            await recorder.close()
            await producer.stop()

    receipt = asyncio.run(record())
    taken = [e for e in trail_entries(parts, bootstrap) if e["kind"] == TAKEN]
    assert [(e["chain"], e["submission_id"], e["digest_sm3"], e["recipient"]) for e in taken] \
        == [(taken_chain(0), d.delivery_id, sm3_hex(d.payload), CUSTOMS) for d in deliveries]
    assert {e["event_id"] for e in taken} == {d.event_id for d in deliveries}
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=parts.topics.trail))
    assert report.breaks == ()
    assert report.sealed_records == report.records
    place = (taken[0]["ref_topic"], taken[0]["ref_partition"], taken[0]["ref_offset"])
    kept = asyncio.run(read_at(bootstrap, [place]))[place]
    assert kept.value == ack.to_json() and sm3_hex(kept.value) == taken[0]["ref_digest"]
    again, entry = verify_taken_message(parts.keyring, kept.value)
    assert again == ack and entry.agency_id == CUSTOMS
    other_digest = kept.value.replace(ack.taken[0].digest.encode(), b"0" * 64)
    with pytest.raises(AcknowledgementRefused) as refused:
        verify_taken_message(parts.keyring, other_digest)
    assert refused.value.code == ACK_SIGNATURE_INVALID
    assert [(r.delivery_id, r.chain) for r in receipt.records] \
        == [(d.delivery_id, taken_chain(0)) for d in deliveries]
    assert receipt.digest == taken[0]["ref_digest"]


def delivered_to_customs(home: Home, bootstrap: str, count: int
                         ) -> tuple[GatewayConfig, GatewayParts, list[Delivery]]:
    """`count` documents submitted and decided; their deliveries to customs, verified."""
    asyncio.run(submit_all(home, bootstrap, [Sent(PROVIDER, numbered_arrival(n))
                                             for n in range(count)]))
    config, parts = gateway_parts(home)
    verifier = DeliveryVerifier(parts.keyring, CUSTOMS)
    return config, parts, [verifier.check(m) for m in asyncio.run(
        read_topics(bootstrap, [parts.topics.delivery(CUSTOMS)]))]


def test_a_repeated_acknowledgement_is_recorded_once_also_after_a_restart(
    home: Home, broker: LocalBroker
) -> None:
    """The same signed statement posted again, to the recorder that took it and to one
    started afterwards (its memory rebuilt from px.taken.v1), gets the first receipt and no
    TAKEN record more; it is recorded again in neither."""
    bootstrap = broker.bootstrap_servers
    config, parts, deliveries = delivered_to_customs(home, bootstrap, 2)
    key = home.agency_keys[CUSTOMS]
    ack = sign_acknowledgement(CUSTOMS, [Taken.of(d.delivery_id, d.payload) for d in deliveries],
                               utc_now(), key)
    resigned = dataclasses.replace(ack, signature=key.sign(ack.signed_bytes(),
                                                           user_id=DEFAULT_SM2_ID))
    assert resigned.signature != ack.signature  # the same statement, signed again

    async def record(*acks: Acknowledgement, partition: int) -> list[TakenReceipt]:
        producer = new_producer(bootstrap)
        await producer.start()
        recorder = TakenRecorder(producer, TrailCodec(parts.schemas), config.trail,
                                 parts.topics, bootstrap, key=parts.key,
                                 partitions=[partition])
        try:
            return [await recorder.record(a, key.public_key().key_id, deliveries)
                    for a in acks]
        finally:
            await recorder.close()
            await producer.stop()

    first, again = asyncio.run(record(ack, resigned, partition=0))
    (restarted,) = asyncio.run(record(ack, partition=1))
    assert (first.repeated, again.repeated, restarted.repeated) == (False, True, True)
    assert {dataclasses.replace(r, repeated=False) for r in (again, restarted)} == {first}
    taken = [e for e in trail_entries(parts, bootstrap) if e["kind"] == TAKEN]
    assert sorted(e["submission_id"] for e in taken) == sorted(d.delivery_id
                                                               for d in deliveries)


class HeldProducer:
    """A started producer whose sends to `topic` wait until `release` is set: what shows
    whether the broker round trips of acknowledgements recorded at once overlap."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self.waiting = 0
        self.release = asyncio.Event()

    async def send_and_wait(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        if topic == self._topic:
            self.waiting += 1
            await self.release.wait()
        return await self._producer.send_and_wait(topic, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


def test_acknowledgements_recorded_at_once_wait_for_the_broker_together(
    home: Home, broker: LocalBroker
) -> None:
    """Two acknowledgements recorded at once are both handed to the broker before either is
    answered (nothing held across a round trip); each one's records stay together on the
    chain, and the trail verifies."""
    bootstrap = broker.bootstrap_servers
    config, parts, deliveries = delivered_to_customs(home, bootstrap, 2)
    key = home.agency_keys[CUSTOMS]
    acks = [sign_acknowledgement(CUSTOMS, [Taken.of(d.delivery_id, d.payload)], utc_now(), key)
            for d in deliveries]

    async def record() -> list[TakenReceipt]:
        producer = new_producer(bootstrap)
        await producer.start()
        held = HeldProducer(producer, parts.topics.taken)
        recorder = TakenRecorder(cast(AIOKafkaProducer, held), TrailCodec(parts.schemas),
                                 config.trail, parts.topics, bootstrap, key=parts.key,
                                 partitions=[0])
        try:
            recording = [asyncio.create_task(recorder.record(ack, key.public_key().key_id, [d]))
                         for ack, d in zip(acks, deliveries, strict=True)]
            deadline = time.monotonic() + 60
            while held.waiting < len(acks):
                assert time.monotonic() < deadline, f"{held.waiting} of {len(acks)} under way"
                await asyncio.sleep(0.01)
            held.release.set()
            return await asyncio.gather(*recording)
        finally:
            await recorder.close()
            await producer.stop()

    receipts = asyncio.run(record())
    assert sorted(r.records[0].seq for r in receipts) == [0, 1]
    assert [r.records[0].delivery_id for r in receipts] == [d.delivery_id for d in deliveries]
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=parts.topics.trail))
    assert report.breaks == ()
