"""A trail writer started again on the real broker: it reads the trail's tail, not the whole
trail, and continues the chain, sealed records and unsealed ones alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from crypto import KeyEntry, Keyring, SM2PrivateKey, sm3_hex
from gateway.home.config import TrailSettings
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import ensure_topics, new_producer, read_topics
from gateway.trail.archive import ArchiveWriter
from gateway.trail.writer import (
    ENTRY_DEFAULTS,
    GENESIS_HASH,
    SEAL_SCHEMA,
    Recovered,
    TrailArchive,
    TrailCodec,
    TrailWriter,
    seal_root,
    written,
)
from message_formats import SINGLE_OBJECT_MAGIC, AvroSchemas
from replay import TrailVerifier
from replay.archive import verify_archive
from tests.built_in_schemas import built_in_schemas

SCHEMAS = built_in_schemas()
KEY = SM2PrivateKey.generate()
SETTINGS = TrailSettings(seal_every=16)
FIELDS = {"kind": "RECEIVED", "submission_id": "s1", "event_id": "e1", "sender": "cn.port.sh",
          "format_id": "fal1-xml", "digest_sm3": "ab" * 32, "reason": "recovery test"}
RING = Keyring([KeyEntry("px.gateway", KEY.public_key(),
                         valid_from=datetime(2026, 1, 1, tzinfo=UTC))])


def test_a_restarted_writer_reads_the_tail_and_continues_the_chain(broker: LocalBroker,
                                                                   topics: Topics) -> None:
    asyncio.run(_restarts(broker.bootstrap_servers, topics))


async def _restarts(bootstrap: str, topics: Topics) -> None:
    await ensure_topics(bootstrap, {topics.trail: 1})
    first = await run_writer(bootstrap, topics, add=2000)
    # Stopped before sealing more records than a first look back from the end covers.
    second = await run_writer(bootstrap, topics, add=300, seal=False,
                              settings=TrailSettings(seal_every=1000))
    third = await run_writer(bootstrap, topics, add=5)

    assert first == Recovered(next_seq=0, unsealed=0, messages_read=0)
    assert (second.next_seq, second.unsealed) == (2000, 0)
    assert (third.next_seq, third.unsealed) == (2300, 300)
    # The trail holds 2,000 records and their 125 seals, then 300 unsealed records: the
    # restart read a tail of it, going further back once to take all the unsealed ones.
    assert third.messages_read < 2425 // 4

    trail = await read_topics(bootstrap, [topics.trail])
    report, _ = TrailVerifier(SCHEMAS, RING).check_trail(trail)
    assert report.breaks == ()
    assert (report.records, report.sealed_records) == (2305, 2305)
    # Each restart went on with the chain of seals: every seal names the one before it.
    seals = [v["body"] for n, v in (SCHEMAS.decode(m.value) for m in trail) if n == SEAL_SCHEMA]
    assert [s["seal_seq"] for s in seals] == list(range(len(seals)))
    assert seals[0]["previous_seal"] == GENESIS_HASH
    assert all(s["previous_seal"] == report.seal_hashes["p0"][s["seal_seq"] - 1]
               for s in seals[1:])


async def run_writer(bootstrap: str, topics: Topics, *, add: int, seal: bool = True,
                     settings: TrailSettings = SETTINGS, archive: TrailArchive | None = None
                     ) -> Recovered:
    """Starts a writer as a gateway process does, adds records, seals them (or stops without
    sealing, as a killed process would); what its recovery found."""
    producer = new_producer(bootstrap)
    await producer.start()
    writer = TrailWriter(producer=producer, codec=TrailCodec(SCHEMAS), key=KEY, partition=0,
                         settings=settings, topics=topics, chain="p0", archive=archive)
    try:
        recovered = await writer.recover(bootstrap, fetch_wait_ms=5)
        await written([writer.add(**FIELDS) for _ in range(add)])
        if seal:
            await writer.seal()
    finally:
        writer.close()
        await producer.stop()
    return recovered


RELEASED_0_1_0 = Path(__file__).parents[2] / "message_formats" / "released" / "0.1.0"


def test_a_trail_written_by_the_released_schemas_is_continued_and_verifies(
    broker: LocalBroker, topics: Topics, tmp_path: Path
) -> None:
    """A chain written by 0.1.0 (seals without previous_seal), then continued by this
    version after a restart: its first seal names the last 0.1.0 seal; the trail verifies on
    the broker and in the archive recovery wrote from it, hashes and signatures over the bytes
    as the old schema wrote them."""
    asyncio.run(_upgrades(broker.bootstrap_servers, topics, tmp_path / "archive"))


async def _upgrades(bootstrap: str, topics: Topics, archive_dir: Path) -> None:
    await ensure_topics(bootstrap, {topics.trail: 1})
    old = TrailCodec(AvroSchemas.from_dirs(RELEASED_0_1_0, builtin=False))
    messages, last_old_seal = old_trail(old, records=6, seal_every=3)
    assert not messages[-1].startswith(SINGLE_OBJECT_MAGIC + SCHEMAS.fingerprint(SEAL_SCHEMA))
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for value in messages:
            await producer.send_and_wait(topics.trail, value, partition=0)
    finally:
        await producer.stop()

    with ArchiveWriter(archive_dir, "p0", schemas=SCHEMAS) as archive:
        recovered = await run_writer(bootstrap, topics, add=4, archive=archive)
    assert (recovered.next_seq, recovered.unsealed) == (6, 0)

    trail = await read_topics(bootstrap, [topics.trail])
    seals = [v["body"] for n, v in (SCHEMAS.decode(m.value) for m in trail) if n == SEAL_SCHEMA]
    assert [s["previous_seal"] for s in seals] == [None, None, last_old_seal]
    report, _ = TrailVerifier(SCHEMAS, RING).check_trail(trail)
    assert report.breaks == ()
    assert (report.records, report.sealed_records, report.seals) == (10, 10, 3)
    offline = verify_archive(archive_dir, SCHEMAS, RING)
    assert offline.breaks == ()
    assert (offline.records, offline.sealed_records) == (10, 10)


def old_trail(codec: TrailCodec, *, records: int, seal_every: int) -> tuple[list[bytes], str]:
    """Messages of chain p0 as the 0.1.0 gateway wrote them, and its last seal's hash."""
    messages: list[bytes] = []
    hashes: list[str] = []
    previous, last_seal = GENESIS_HASH, ""
    for seq in range(records):
        entry = {**ENTRY_DEFAULTS, **FIELDS, "chain": "p0", "seq": seq, "prev_hash": previous,
                 "time": datetime.now(UTC)}
        previous, value = codec.hashed_record(entry)
        hashes.append(previous)
        messages.append(value)
        if (seq + 1) % seal_every == 0:
            first = seq + 1 - seal_every
            body = {"chain": "p0", "seal_seq": seq // seal_every, "first_seq": first,
                    "last_seq": seq, "root": seal_root(hashes[first:]), "time": datetime.now(UTC),
                    "key_id": KEY.public_key().key_id}
            signed = codec.seal_message(body)
            messages.append(codec.encode_seal(body, KEY.sign(signed)))
            last_seal = sm3_hex(signed)
    return messages, last_seal
