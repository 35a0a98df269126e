"""The auditor's tools against a real broker: verify (on the broker, on a mirrored copy, on the
archive), tampering caught with a precise message, re-delivery, trace and evidence bundles.

One gateway run per module writes the trail; each tamper case then copies the topics to a
prefix of its own (as MirrorMaker 2 would, offsets kept), changing one thing on the way."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from crypto import KeyEntry, Keyring
from gateway.broker import LocalBroker
from gateway.clock import utc_now
from gateway.home import Home, create_home
from gateway.kafka import (
    TRAIL_TOPIC,
    StoredMessage,
    delivery_topic,
    new_producer,
    read_topics,
)
from gateway.trail import RECORD_SCHEMA, SEAL_SCHEMA
from message_formats import AvroSchemas
from replay.archive import verify_archive
from replay.bundle import check_bundle, export_bundle_kafka
from replay.history import trace_kafka
from replay.redeliver import H_REPLAY_OF, redeliver
from replay.verify import VerifyReport, verify_kafka
from tests.integration.support import FAL1_SAMPLES, Sent, gateway_parts, submit_all

pytestmark = pytest.mark.integration
SCHEMAS = AvroSchemas()
ARRIVAL = (FAL1_SAMPLES / "valid_arrival.xml").read_bytes()
KEY = "9074729:V2611:A:CNSHA"


@dataclass(frozen=True, slots=True)
class Run:
    broker: LocalBroker
    home: Home

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap_servers


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Two versions of one FAL 1 and a refused document, through a gateway on the ingress."""
    base = tmp_path_factory.mktemp("replay")
    home = create_home(base / "home", seal_every=4, seal_interval_ms=100)
    amended = ARRIVAL.replace(b'version="1"', b'version="2"', 1)
    with LocalBroker(log_path=base / "broker.log") as broker:
        receipts = asyncio.run(submit_all(home, broker.bootstrap_servers, [
            Sent("cn.port.sh", ARRIVAL), Sent("cn.port.sh", amended),
            Sent("cn.port.sh", ARRIVAL.replace(b"PX HARMONY", b"PX HARM0NY"),  # altered after
                 signature=home.agency_keys["cn.port.sh"].sign(ARRIVAL)),  # it was signed
        ]))
        assert [r.accepted for r in receipts] == [True, True, False]
        yield Run(broker, home)


def keyring_of(run: Run) -> Keyring:
    return gateway_parts(run.home)[1].keyring


def verify(run: Run, prefix: str = "", keyring: Keyring | None = None) -> VerifyReport:
    return asyncio.run(verify_kafka(run.bootstrap, SCHEMAS, keyring or keyring_of(run),
                                    mirror_prefix=prefix))


Alter = Callable[[list[StoredMessage]], list[bytes]]


async def _all_topics(bootstrap: str) -> list[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return sorted(t for t in await consumer.topics() if t.startswith("px."))
    finally:
        await consumer.stop()


async def _mirror(bootstrap: str, prefix: str, alter: dict[str, Alter]) -> None:
    """Copies every px.* topic to prefix + name, partition by partition in offset order,
    passing each topic's partition through `alter` (default: unchanged)."""
    messages = await read_topics(bootstrap, await _all_topics(bootstrap))
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        by_place: dict[tuple[str, int], list[StoredMessage]] = {}
        for m in messages:
            by_place.setdefault((m.topic, m.partition), []).append(m)
        for (topic, partition), stored in sorted(by_place.items()):
            values = alter.get(topic, lambda ms: [m.value for m in ms])(stored)
            for value in values:
                await producer.send_and_wait(prefix + topic, value, partition=partition)
    finally:
        await producer.stop()


def mirror(run: Run, prefix: str, alter: dict[str, Alter] | None = None) -> None:
    asyncio.run(_mirror(run.bootstrap, prefix, alter or {}))


def records_of(stored: list[StoredMessage]) -> list[int]:
    return [i for i, m in enumerate(stored) if SCHEMAS.decode(m.value)[0] == RECORD_SCHEMA]


def rewritten(message: StoredMessage, change: Callable[[dict[str, Any]], None]) -> bytes:
    name, value = SCHEMAS.decode(message.value)
    change(value)
    return SCHEMAS.encode(name, value)


def test_the_untouched_trail_and_its_faithful_mirror_verify(run: Run) -> None:
    report = verify(run)
    assert report.ok, report.breaks
    # RECEIVED, ACCEPTED and two DELIVERED per accepted version; RECEIVED and REJECTED for
    # the refused one; every record names a message (ingress, event, delivery, dead letter).
    assert (report.records, report.references) == (10, 10)
    assert report.sealed_records == report.records
    mirror(run, "copy.")
    assert verify(run, "copy.").ok


def _alter_record(index: int, change: Callable[[dict[str, Any]], None]) -> Alter:
    def alter(stored: list[StoredMessage]) -> list[bytes]:
        values = [m.value for m in stored]
        i = records_of(stored)[index]
        values[i] = rewritten(stored[i], change)
        return values

    return alter


def _remove_record(index: int) -> Alter:
    def alter(stored: list[StoredMessage]) -> list[bytes]:
        values = [m.value for m in stored]
        del values[records_of(stored)[index]]
        return values

    return alter


def _insert_forged_after(index: int) -> Alter:
    def alter(stored: list[StoredMessage]) -> list[bytes]:
        values = [m.value for m in stored]
        i = records_of(stored)[index]

        def change(value: dict[str, Any]) -> None:
            value["entry"]["recipient"] = "cn.border.sh"

        values.insert(i + 1, rewritten(stored[i], change))
        return values

    return alter


def _swap_records(a: int, b: int) -> Alter:
    def alter(stored: list[StoredMessage]) -> list[bytes]:
        values = [m.value for m in stored]
        i, j = records_of(stored)[a], records_of(stored)[b]
        values[i], values[j] = values[j], values[i]
        return values

    return alter


def _forge_first_seal(stored: list[StoredMessage]) -> list[bytes]:
    values = [m.value for m in stored]
    i = next(i for i, m in enumerate(stored) if SCHEMAS.decode(m.value)[0] == SEAL_SCHEMA)

    def change(value: dict[str, Any]) -> None:
        value["body"]["root"] = "00" * 32

    values[i] = rewritten(stored[i], change)
    return values


def _change_first_delivery(stored: list[StoredMessage]) -> list[bytes]:
    values = [m.value for m in stored]

    def change(value: dict[str, Any]) -> None:
        value["contract_id"] = "something-else"

    values[0] = rewritten(stored[0], change)
    return values


TAMPERING = {
    "record altered": ({TRAIL_TOPIC: _alter_record(1, lambda v: v["entry"].update(
        reason="nothing happened"))}, "seq 1: record altered"),
    "record removed": ({TRAIL_TOPIC: _remove_record(2)},
                       "seq 3: records seq 2..2 are missing"),
    "record inserted": ({TRAIL_TOPIC: _insert_forged_after(2)},
                        "seq 2: seq 2 appears again after seq 2"),
    "records reordered": ({TRAIL_TOPIC: _swap_records(1, 2)},
                          "seq 2: records seq 1..1 are missing"),
    "seal forged": ({TRAIL_TOPIC: _forge_first_seal},
                    ": seal 0 (seq 0..3): SM2 signature does not verify"),
    "delivered event changed": ({delivery_topic("cn.customs.sh"): _change_first_delivery},
                                "was changed: its SM3 is"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_with_a_mirrored_copy_is_named_precisely(run: Run, case: str) -> None:
    alter, expected = TAMPERING[case]
    prefix = case.replace(" ", "-") + "."
    mirror(run, prefix, alter)
    report = verify(run, prefix)
    assert not report.ok
    assert any(expected in str(b) for b in report.breaks), [str(b) for b in report.breaks]


def test_seals_by_a_revoked_gateway_key_are_refused(run: Run) -> None:
    ring = keyring_of(run)
    gateway = ring.keys_for("px.gateway")[0]
    revoked = Keyring([
        *(e for e in ring.entries if e.key_id != gateway.key_id),
        KeyEntry("px.gateway", gateway.public_key, valid_from=gateway.valid_from,
                 revoked_at=utc_now() - timedelta(days=1)),
    ])
    report = verify(run, keyring=revoked)
    assert any("was revoked" in str(b) for b in report.breaks), report.breaks


def test_the_archive_verifies_offline_and_a_truncated_one_is_named(
    run: Run, tmp_path: Path
) -> None:
    archive = run.home.path / "trail-archive"
    report = verify_archive(archive, SCHEMAS, keyring_of(run))
    assert report.ok, report.breaks
    assert report.records == verify(run).records
    copy = tmp_path / "archive"
    shutil.copytree(archive, copy)
    segment = sorted(copy.glob("trail-p*-*.seg"))[-1]
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])
    broken = verify_archive(copy, SCHEMAS, keyring_of(run))
    assert any(segment.name in str(b) and "truncated" in str(b) for b in broken.breaks), \
        broken.breaks


def test_redelivery_replays_under_todays_contracts_and_is_recorded(run: Run) -> None:
    config, parts = gateway_parts(run.home)
    before = asyncio.run(read_topics(run.bootstrap, [delivery_topic("cn.msa.sh")]))
    outcomes = asyncio.run(redeliver(config, parts, run.bootstrap, recipient="cn.msa.sh",
                                     since=utc_now() - timedelta(hours=1)))
    assert [o.refused for o in outcomes] == [None, None]
    after = asyncio.run(read_topics(run.bootstrap, [delivery_topic("cn.msa.sh")]))
    replays = after[len(before):]
    assert len(replays) == 2
    assert all(dict(m.headers)[H_REPLAY_OF].startswith(b"p") for m in replays)
    report = verify(run)
    assert report.ok, report.breaks
    trail = asyncio.run(read_topics(run.bootstrap, [TRAIL_TOPIC]))
    redelivered = [v["entry"] for n, v in (SCHEMAS.decode(m.value) for m in trail)
                   if n == RECORD_SCHEMA and v["entry"]["kind"] == "REDELIVERED"]
    assert [(e["chain"], e["recipient"]) for e in redelivered] == [("replay", "cn.msa.sh")] * 2


def test_trace_and_bundle_of_one_document(run: Run, tmp_path: Path) -> None:
    history = asyncio.run(trace_kafka(run.bootstrap, SCHEMAS, KEY))
    kinds = [r.entry["kind"] for r in history.records]
    assert kinds.count("RECEIVED") >= 2 and kinds.count("ACCEPTED") == 2
    bundle = tmp_path / "bundle.zip"
    asyncio.run(export_bundle_kafka(run.bootstrap, SCHEMAS, keyring_of(run), KEY, bundle))
    report = check_bundle(bundle, keyring=keyring_of(run))
    assert report.ok, report.describe()
