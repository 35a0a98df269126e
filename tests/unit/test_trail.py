"""The trail's chain and seals, and the verifier that must catch every kind of tampering.

The broker is replaced by an in-memory list here: what is tested is the chain/seal logic and
the checks. The same flow against the real broker is in tests/integration.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from crypto import KeyEntry, Keyring, SM2PrivateKey, SM2PublicKey
from gateway.home.config import TrailSettings
from gateway.kafka.names import StoredMessage, Topics
from gateway.trail.writer import ENTRY_DEFAULTS, RECORD_SCHEMA, SEAL_SCHEMA, TrailCodec, TrailWriter
from message_formats import AvroSchemas
from replay import TrailVerifier
from tests.unit.trail_support import Batch, MemoryTopic, Metadata

TOPICS = Topics()  # the production names, no prefix
SCHEMAS = AvroSchemas()
GATEWAY_KEY = SM2PrivateKey.generate()
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def keyring(*extra: KeyEntry) -> Keyring:
    return Keyring([KeyEntry("px.gateway", GATEWAY_KEY.public_key(), valid_from=EPOCH), *extra])


def write_trail(records: int, seal_every: int = 4, key: SM2PrivateKey = GATEWAY_KEY
                ) -> list[StoredMessage]:
    topic = MemoryTopic()
    writer = TrailWriter(topics=TOPICS, producer=topic, codec=TrailCodec(SCHEMAS), key=key,
                         partition=0, settings=TrailSettings(seal_every=seal_every))

    async def run() -> None:
        for n in range(records):
            await writer.append(kind="ACCEPTED", submission_id=f"s{n}", event_id=f"e{n}",
                                sender="cn.port.sh", format_id="fal1-xml",
                                digest_sm3="ab" * 32, reason="test")
        await writer.seal()

    asyncio.run(run())
    return topic.messages


def check(messages: list[StoredMessage], ring: Keyring | None = None) -> list[str]:
    report, _ = TrailVerifier(SCHEMAS, ring or keyring()).check_trail(messages)
    return [str(b) for b in report.breaks]


def record_positions(messages: list[StoredMessage]) -> list[int]:
    return [i for i, m in enumerate(messages) if SCHEMAS.decode(m.value)[0] == RECORD_SCHEMA]


def rewrite(message: StoredMessage, change: Any) -> StoredMessage:
    name, value = SCHEMAS.decode(message.value)
    return replace(message, value=SCHEMAS.encode(name, change(value)))


def test_an_untouched_trail_verifies_and_every_record_is_sealed() -> None:
    messages = write_trail(10, seal_every=4)
    report, _ = TrailVerifier(SCHEMAS, keyring()).check_trail(messages)
    assert report.breaks == ()
    assert (report.records, report.seals, report.sealed_records) == (10, 3, 10)


@pytest.mark.parametrize("reason", ["", "test", "原因" * 40, "x" * 70_000])
def test_a_record_encoded_once_is_the_record_hashed_and_encoded_apart(reason: str) -> None:
    codec = TrailCodec(SCHEMAS)
    entry = {**ENTRY_DEFAULTS, "chain": "p0", "seq": 7, "prev_hash": "cd" * 32,
             "time": EPOCH, "kind": "DELIVERED", "submission_id": "s1", "event_id": "e1",
             "sender": "cn.port.sh", "format_id": "fal1-xml", "digest_sm3": "ab" * 32,
             "reason": reason, "recipient": "cn.customs.sh", "ref_offset": 2**40}
    record_hash, value = codec.hashed_record(entry)
    assert record_hash == codec.entry_hash(entry)
    assert value == codec.encode_record(entry, record_hash)
    assert SCHEMAS.decode(value) == (RECORD_SCHEMA, {"entry": entry, "hash": record_hash})


def test_an_altered_record_is_named() -> None:
    messages = write_trail(6)
    i = record_positions(messages)[2]

    def change(value: dict[str, Any]) -> dict[str, Any]:
        value["entry"]["sender"] = "cn.someone.else"
        return value

    messages[i] = rewrite(messages[i], change)
    breaks = check(messages)
    assert any("seq 2: record altered" in b for b in breaks), breaks


def test_an_altered_record_with_a_recomputed_hash_breaks_the_link_and_the_seal() -> None:
    messages = write_trail(6)
    i = record_positions(messages)[1]
    codec = TrailCodec(SCHEMAS)

    def change(value: dict[str, Any]) -> dict[str, Any]:
        value["entry"]["reason"] = "nothing to see"
        value["hash"] = codec.entry_hash(value["entry"])
        return value

    messages[i] = rewrite(messages[i], change)
    breaks = check(messages)
    assert any("seq 2: prev_hash" in b for b in breaks), breaks
    assert any("Merkle root" in b for b in breaks), breaks


def test_a_removed_record_is_reported_missing() -> None:
    messages = write_trail(6)
    del messages[record_positions(messages)[3]]
    breaks = check(messages)
    assert any("seq 4: records seq 3..3 are missing" in b for b in breaks), breaks


def test_an_inserted_record_is_reported() -> None:
    messages = write_trail(6)
    i = record_positions(messages)[2]

    def change(value: dict[str, Any]) -> dict[str, Any]:
        value["entry"]["recipient"] = "cn.someone.else"
        return value

    messages.insert(i + 1, rewrite(messages[i], change))
    breaks = check(messages)
    assert any("seq 2 appears again" in b for b in breaks), breaks


def test_a_message_sent_twice_is_counted_not_a_break() -> None:
    """Without an idempotent producer a retried send can store a record or seal twice."""
    messages = write_trail(6, seal_every=3)
    record, seal = record_positions(messages)[2], len(messages) - 1
    messages.insert(record + 1, messages[record])
    messages.append(messages[seal])
    report, _ = TrailVerifier(SCHEMAS, keyring()).check_trail(messages)
    assert report.breaks == ()
    assert report.duplicates == 2


def test_reordered_records_are_reported() -> None:
    messages = write_trail(6)
    a, b = record_positions(messages)[1:3]
    messages[a], messages[b] = messages[b], messages[a]
    assert check(messages)


def test_a_seal_signed_by_a_key_the_keyring_does_not_know_is_refused() -> None:
    forged = write_trail(3, key=SM2PrivateKey.generate())
    breaks = check(forged)
    assert any("SEAL_KEY_UNKNOWN: seal 0 (seq 0..2): key " in b and "is not in the keyring"
               in b for b in breaks), breaks


def test_a_seal_signed_by_a_revoked_key_is_refused() -> None:
    other = SM2PrivateKey.generate()
    revoked = KeyEntry("px.gateway", other.public_key(), valid_from=EPOCH,
                       revoked_at=datetime.now(UTC) - timedelta(days=1))
    breaks = check(write_trail(3, key=other), keyring(revoked))
    assert any("was revoked" in b for b in breaks), breaks


def test_a_trail_sealed_with_an_agency_key_is_refused_naming_the_rule() -> None:
    """The agency's key is in the keyring and valid, but it signs documents, never seals."""
    agency = SM2PrivateKey.generate()
    ring = keyring(KeyEntry("cn.port.sh", agency.public_key(), valid_from=EPOCH))
    report, _ = TrailVerifier(SCHEMAS, ring).check_trail(write_trail(6, key=agency))
    key_id = agency.public_key().key_id
    assert [(b.code, b.problem) for b in report.breaks] == [
        ("SEAL_KEY_NOT_SEALING", f"seal {n} (seq {seqs}): key {key_id} is a key of "
         "'cn.port.sh' with role(s) ack, document, not seal: only the gateway's sealing keys "
         "(role seal) seal; an agency's key never does")
        for n, seqs in ((0, "0..3"), (1, "4..5"))]
    assert report.sealed_records == 0


def test_a_seal_made_outside_its_sealing_keys_window_is_refused() -> None:
    other = SM2PrivateKey.generate()
    expired = KeyEntry("px.gateway", other.public_key(), valid_from=EPOCH,
                       valid_to=EPOCH + timedelta(days=1))
    report, _ = TrailVerifier(SCHEMAS, keyring(expired)).check_trail(write_trail(3, key=other))
    assert [b.code for b in report.breaks] == ["SEAL_KEY_NOT_VALID"]
    assert "validity window" in report.breaks[0].problem


def test_a_seal_whose_root_was_changed_no_longer_verifies() -> None:
    messages = write_trail(4)
    i = next(i for i, m in enumerate(messages) if SCHEMAS.decode(m.value)[0] == SEAL_SCHEMA)

    def change(value: dict[str, Any]) -> dict[str, Any]:
        value["body"]["root"] = "00" * 32
        return value

    messages[i] = rewrite(messages[i], change)
    breaks = check(messages)
    assert any("SM2 signature does not verify" in b for b in breaks), breaks


def test_garbage_on_the_trail_is_reported_not_fatal() -> None:
    messages = write_trail(2)
    messages.append(StoredMessage(TOPICS.trail, 0, 99, None, b"not avro", (), 0))
    breaks = check(messages)
    assert any("@99: cannot be decoded" in b for b in breaks), breaks


@pytest.mark.parametrize("seal_every", [1, 3, 256])
def test_seals_tile_the_chain_without_gaps(seal_every: int) -> None:
    messages = write_trail(7, seal_every=seal_every)
    seals = [SCHEMAS.decode(m.value)[1]["body"] for m in messages
             if SCHEMAS.decode(m.value)[0] == SEAL_SCHEMA]
    covered = [seq for body in seals for seq in range(body["first_seq"], body["last_seq"] + 1)]
    assert covered == list(range(7))


class SlowSigner:
    """The gateway key, signing only when released: a seal still being signed."""

    def __init__(self, key: SM2PrivateKey) -> None:
        self.key = key
        self.release = threading.Event()

    def public_key(self) -> SM2PublicKey:
        return self.key.public_key()

    def sign(self, message: bytes) -> bytes:
        self.release.wait(10)
        return self.key.sign(message)


class RefusesFirstSeal(MemoryTopic):
    """A broker that refuses the first batch holding a seal."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def send_batch(self, batch: Batch, topic: str, *,
                         partition: int) -> asyncio.Future[Metadata]:
        if not self.refused and any(dict(h)["px-record"] == b"seal" for _, _, h in batch.messages):
            self.refused += 1
            raise KafkaTimeoutError("no acknowledgement")
        return await super().send_batch(batch, topic, partition=partition)


def test_appends_go_on_while_a_seal_is_signed_and_a_refused_seal_is_retried() -> None:
    topic = RefusesFirstSeal()
    signer = SlowSigner(GATEWAY_KEY)
    writer = TrailWriter(topics=TOPICS, producer=topic, codec=TrailCodec(SCHEMAS), key=signer,  # type: ignore[arg-type]  # fakes of the producer and the key
                         partition=0, settings=TrailSettings(seal_every=2))

    async def run() -> int:
        for n in range(6):  # three batches are cut; none can be sealed yet
            await writer.append(kind="ACCEPTED", submission_id=f"s{n}", event_id=f"e{n}",
                                sender="cn.port.sh", format_id="fal1-xml",
                                digest_sm3="ab" * 32, reason="test")
        waiting = writer.pending
        signer.release.set()
        await writer.seal()
        return waiting

    assert asyncio.run(run()) == 6
    assert topic.refused == 1 and writer.pending == 0
    report, _ = TrailVerifier(SCHEMAS, keyring()).check_trail(topic.messages)
    assert (report.breaks, report.seals, report.sealed_records) == ((), 3, 6)


def test_a_window_checks_the_batches_it_touches_and_links_to_the_record_before() -> None:
    topic = MemoryTopic()
    writer = TrailWriter(topics=TOPICS, producer=topic, codec=TrailCodec(SCHEMAS), key=GATEWAY_KEY,
                         partition=0, settings=TrailSettings(seal_every=4))

    async def run() -> None:
        for n in range(10):
            await writer.append(kind="ACCEPTED", submission_id=f"s{n}", event_id=f"e{n}",
                                sender="cn.port.sh", format_id="fal1-xml", reason="test",
                                digest_sm3="ab" * 32, time=EPOCH + timedelta(minutes=n))
        await writer.seal()

    asyncio.run(run())
    messages = topic.messages
    verifier = TrailVerifier(SCHEMAS, keyring())
    window = {"since": EPOCH + timedelta(minutes=5), "until": EPOCH + timedelta(minutes=6)}
    report, _ = verifier.check_trail(messages, **window)
    # seq 5 is in the batch 4..7, whose seal needs all four records.
    assert (report.breaks, report.records, report.seals) == ((), 4, 1)
    i = record_positions(messages)[3]

    def change(value: dict[str, Any]) -> dict[str, Any]:
        value["hash"] = "00" * 32
        return value

    messages[i] = rewrite(messages[i], change)
    report, _ = verifier.check_trail(messages, **window)
    assert any("seq 4: prev_hash" in str(b) for b in report.breaks), report.breaks
