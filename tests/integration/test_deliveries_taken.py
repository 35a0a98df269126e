"""A recipient's signed acknowledgement on the trail, on the real broker: kept in its wire
form, one TAKEN record per delivery it names, sealed; `replay verify` holds the trail sound,
and the auditor verifies the recipient's signature again from the message a TAKEN record
names (and refuses it altered)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from crypto import DEFAULT_SM2_ID, sm3_hex
from gateway.clock import utc_now
from gateway.deliveries.acknowledgements import (
    ACK_SIGNATURE_INVALID,
    Acknowledgement,
    AcknowledgementRefused,
    Taken,
    sign_acknowledgement,
)
from gateway.deliveries.proof import DeliveryVerifier
from gateway.home.create import Home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.wire import new_producer, read_at, read_topics
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


def test_a_repeated_acknowledgement_is_recorded_once_also_after_a_restart(
    home: Home, broker: LocalBroker
) -> None:
    """The same signed statement posted again, to the recorder that took it and to one
    started afterwards (its memory rebuilt from px.taken.v1), gets the first receipt and no
    TAKEN record more; it is recorded again in neither."""
    bootstrap = broker.bootstrap_servers
    asyncio.run(submit_all(home, bootstrap, [Sent(PROVIDER, numbered_arrival(n))
                                             for n in range(2)]))
    config, parts = gateway_parts(home)
    verifier = DeliveryVerifier(parts.keyring, CUSTOMS)
    deliveries = [verifier.check(m) for m in asyncio.run(
        read_topics(bootstrap, [parts.topics.delivery(CUSTOMS)]))]
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
