"""A trail writer started again on the real broker: it reads the trail's tail, not the whole
trail, and continues the chain, sealed records and unsealed ones alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from crypto import KeyEntry, Keyring, SM2PrivateKey
from gateway.broker import LocalBroker
from gateway.config import TrailSettings
from gateway.kafka import ensure_topics, new_producer, read_topics
from gateway.trail import Recovered, TrailCodec, TrailWriter, written
from message_formats import AvroSchemas
from replay import TrailVerifier

TOPIC = "px.trail.recovery-test.v1"
SCHEMAS = AvroSchemas()
KEY = SM2PrivateKey.generate()
SETTINGS = TrailSettings(seal_every=16)
FIELDS = {"kind": "RECEIVED", "submission_id": "s1", "event_id": "e1", "sender": "cn.port.sh",
          "format_id": "fal1-xml", "digest_sm3": "ab" * 32, "reason": "recovery test"}


def test_a_restarted_writer_reads_the_tail_and_continues_the_chain(broker: LocalBroker) -> None:
    asyncio.run(_restarts(broker.bootstrap_servers))


async def _restarts(bootstrap: str) -> None:
    await ensure_topics(bootstrap, {TOPIC: 1})
    first = await run_writer(bootstrap, add=2000)
    # Stopped before sealing more records than a first look back from the end covers.
    second = await run_writer(bootstrap, add=300, seal=False,
                              settings=TrailSettings(seal_every=1000))
    third = await run_writer(bootstrap, add=5)

    assert first == Recovered(next_seq=0, unsealed=0, messages_read=0)
    assert (second.next_seq, second.unsealed) == (2000, 0)
    assert (third.next_seq, third.unsealed) == (2300, 300)
    # The trail holds 2,000 records and their 125 seals, then 300 unsealed records: the
    # restart read a tail of it, going further back once to take all the unsealed ones.
    assert third.messages_read < 2425 // 4

    ring = Keyring([KeyEntry("px.gateway", KEY.public_key(),
                             valid_from=datetime(2026, 1, 1, tzinfo=UTC))])
    report, _ = TrailVerifier(SCHEMAS, ring).check_trail(await read_topics(bootstrap, [TOPIC]))
    assert report.breaks == ()
    assert (report.records, report.sealed_records) == (2305, 2305)


async def run_writer(bootstrap: str, *, add: int, seal: bool = True,
                     settings: TrailSettings = SETTINGS) -> Recovered:
    """Starts a writer as a gateway process does, adds records, seals them (or stops without
    sealing, as a killed process would); what its recovery found."""
    producer = new_producer(bootstrap)
    await producer.start()
    writer = TrailWriter(producer=producer, codec=TrailCodec(SCHEMAS), key=KEY, partition=0,
                         settings=settings, topic=TOPIC, chain="p0")
    try:
        recovered = await writer.recover(bootstrap, fetch_wait_ms=5)
        await written([writer.add(**FIELDS) for _ in range(add)])
        if seal:
            await writer.seal()
    finally:
        writer.close()
        await producer.stop()
    return recovered
