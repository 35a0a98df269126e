"""The auditor's tools against a real broker: verify (on the broker, on a mirrored copy, on the
archive), tampering caught with a precise message, re-delivery, trace and evidence bundles.

One gateway run per module writes the trail; each tamper case then copies the topics to a
prefix of its own (as MirrorMaker 2 would, offsets kept), changing one thing on the way."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from crypto import KeyEntry, Keyring, SM2PrivateKey, sm3_hex
from gateway.cli.main import main as portgw
from gateway.clock import utc_now
from gateway.home.create import Home, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import StoredMessage, Topics
from gateway.kafka.wire import new_producer, read_topics
from gateway.trail.archive import HEADER_SCHEMA, MAGIC, split_frames
from gateway.trail.writer import GENESIS_HASH, RECORD_SCHEMA, SEAL_SCHEMA, TrailCodec, seal_root
from replay.archive import verify_archive
from replay.bundle import check_bundle, export_bundle_kafka
from replay.bundle_cli import run_check_bundle
from replay.checkpoint import decode_checkpoint, load_checkpoints, save_checkpoints
from replay.history import trace_kafka
from replay.redeliver import H_REPLAY_OF, redeliver
from replay.verify import VerifyReport, verify_kafka
from tests.built_in_schemas import built_in_schemas
from tests.integration.support import FAL1_SAMPLES, Sent, gateway_parts, submit_all

pytestmark = pytest.mark.integration
SCHEMAS = built_in_schemas()
CODEC = TrailCodec(SCHEMAS)
ARRIVAL = (FAL1_SAMPLES / "valid_arrival.xml").read_bytes()
KEY = "9074729:V2611:A:CNSHA"
# The module's gateway runs on a broker of its own, under the production names.
TOPICS = Topics()


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
                                    trail_topic=TOPICS.trail, mirror_prefix=prefix))


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


INGEST_CHAIN = re.compile(r"p\d+")


def records_of(stored: list[StoredMessage]) -> list[int]:
    """Positions of the ingest chains' records (p0, p1, …) in one trail partition. Other
    chains (`replay`, written by the redelivery test, and `taken`) may share the topic, in a
    partition of their own or in this one, depending on which tests ran first."""
    positions = []
    for i, m in enumerate(stored):
        name, value = SCHEMAS.decode(m.value)
        if name == RECORD_SCHEMA and INGEST_CHAIN.fullmatch(value["entry"]["chain"]):
            positions.append(i)
    return positions


def _ingest_chain_only(alter: Alter) -> Alter:
    """Leaves a trail partition without ingest-chain records as it is."""
    def only_if_ingest(stored: list[StoredMessage]) -> list[bytes]:
        return alter(stored) if records_of(stored) else [m.value for m in stored]

    return only_if_ingest


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

    return _ingest_chain_only(alter)


def _remove_record(index: int) -> Alter:
    def alter(stored: list[StoredMessage]) -> list[bytes]:
        values = [m.value for m in stored]
        del values[records_of(stored)[index]]
        return values

    return _ingest_chain_only(alter)


def _insert_forged_after(index: int) -> Alter:
    def alter(stored: list[StoredMessage]) -> list[bytes]:
        values = [m.value for m in stored]
        i = records_of(stored)[index]

        def change(value: dict[str, Any]) -> None:
            value["entry"]["recipient"] = "cn.border.sh"

        values.insert(i + 1, rewritten(stored[i], change))
        return values

    return _ingest_chain_only(alter)


def _swap_records(a: int, b: int) -> Alter:
    def alter(stored: list[StoredMessage]) -> list[bytes]:
        values = [m.value for m in stored]
        i, j = records_of(stored)[a], records_of(stored)[b]
        values[i], values[j] = values[j], values[i]
        return values

    return _ingest_chain_only(alter)


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


TAMPERING: dict[str, tuple[dict[str, Alter], str]] = {
    "record altered": ({TOPICS.trail: _alter_record(1, lambda v: v["entry"].update(
        reason="nothing happened"))}, "seq 1: record altered"),
    "record removed": ({TOPICS.trail: _remove_record(2)},
                       "seq 3: records seq 2..2 are missing"),
    "chain start lost": ({TOPICS.trail: _remove_record(0)},
                         "seq 1: TRAIL_START_MISSING: records seq 0..0 are missing"),
    "record inserted": ({TOPICS.trail: _insert_forged_after(2)},
                        "seq 2: seq 2 appears again after seq 2"),
    "records reordered": ({TOPICS.trail: _swap_records(1, 2)},
                          "seq 2: records seq 1..1 are missing"),
    "seal forged": ({TOPICS.trail: _forge_first_seal},
                    ": SEAL_SIGNATURE_INVALID: seal 0 (seq 0..3): the SM2 signature does not "
                    "verify with sealing key"),
    "delivered event changed": ({TOPICS.delivery("cn.customs.sh"): _change_first_delivery},
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


def test_a_trail_topic_without_its_start_points_the_auditor_to_the_archive(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a restart of a broker that keeps nothing (the local one, in memory) looks like:
    verify says so, and where the whole trail is."""
    mirror(run, "start-lost.", {TOPICS.trail: _remove_record(0)})
    assert portgw(["replay", "verify", "--config", str(run.home.config_file),
                   "--bootstrap-servers", run.bootstrap, "--mirror-prefix", "start-lost."]) == 1
    out = capsys.readouterr().out
    assert "hint: the trail topic no longer holds its chains from their start" in out
    assert "portgw replay verify --source archive" in out


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
    before = asyncio.run(read_topics(run.bootstrap, [TOPICS.delivery("cn.msa.sh")]))
    outcomes = asyncio.run(redeliver(config, parts, run.bootstrap, recipient="cn.msa.sh",
                                     since=utc_now() - timedelta(hours=1)))
    assert [o.refused for o in outcomes] == [None, None]
    after = asyncio.run(read_topics(run.bootstrap, [TOPICS.delivery("cn.msa.sh")]))
    replays = after[len(before):]
    assert len(replays) == 2
    assert all(dict(m.headers)[H_REPLAY_OF].startswith(b"p") for m in replays)
    report = verify(run)
    assert report.ok, report.breaks
    trail = asyncio.run(read_topics(run.bootstrap, [TOPICS.trail]))
    redelivered = [v["entry"] for n, v in (SCHEMAS.decode(m.value) for m in trail)
                   if n == RECORD_SCHEMA and v["entry"]["kind"] == "REDELIVERED"]
    assert [(e["chain"], e["recipient"]) for e in redelivered] == [("replay", "cn.msa.sh")] * 2


def test_trace_and_bundle_of_one_document(run: Run, tmp_path: Path) -> None:
    history = asyncio.run(trace_kafka(run.bootstrap, SCHEMAS, KEY, trail_topic=TOPICS.trail))
    kinds = [r.entry["kind"] for r in history.records]
    assert kinds.count("RECEIVED") >= 2 and kinds.count("ACCEPTED") == 2
    bundle = tmp_path / "bundle.zip"
    asyncio.run(export_bundle_kafka(run.bootstrap, SCHEMAS, keyring_of(run), KEY, bundle,
                                    trail_topic=TOPICS.trail))
    report = check_bundle(bundle, keyring=keyring_of(run))
    assert report.ok, report.describe()


# -- a trail rewritten and resealed with an agency's own key ------------------------------------

FORGER = "cn.port.sh"
SEAL_RULE = "only the gateway's sealing keys (role seal) seal; an agency's key never does"


def _deliver_to_border(entry: dict[str, Any]) -> bool:
    """The first delivery of the document now names a recipient the contract does not."""
    if entry["kind"] != "DELIVERED" or entry["business_key"] != KEY:
        return False
    entry["recipient"] = "cn.border.sh"
    return True


@dataclass(slots=True)
class Resealer:
    """Rewrites trail messages, chain by chain in order, as a forger holding `key` would: one
    record changed, every hash and link after it recomputed, every seal signed again by `key`
    over the new roots, segment headers linked to the new hashes."""

    key: SM2PrivateKey
    change: Callable[[dict[str, Any]], bool]
    changed: int = 0
    hashes: dict[tuple[str, int], str] = field(default_factory=dict)
    last_seals: dict[str, str] = field(default_factory=dict)

    def __call__(self, value: bytes) -> bytes:
        name, decoded = SCHEMAS.decode(value)
        if name == RECORD_SCHEMA:
            return self._record(decoded)
        if name == SEAL_SCHEMA:
            return self._seal(decoded["body"])
        if name == HEADER_SCHEMA and decoded["first_seq"] > 0:
            decoded["prev_hash"] = self.hashes[(decoded["chain"], decoded["first_seq"] - 1)]
            return SCHEMAS.encode(name, decoded)
        return value

    def _record(self, value: dict[str, Any]) -> bytes:
        entry = value["entry"]
        chain, seq = entry["chain"], entry["seq"]
        if seq > 0:
            entry["prev_hash"] = self.hashes[(chain, seq - 1)]
        if not self.changed and self.change(entry):
            self.changed += 1
        value["hash"] = self.hashes[(chain, seq)] = CODEC.entry_hash(entry)
        return SCHEMAS.encode(RECORD_SCHEMA, value)

    def _seal(self, body: dict[str, Any]) -> bytes:
        body["root"] = seal_root([self.hashes[(body["chain"], seq)]
                                  for seq in range(body["first_seq"], body["last_seq"] + 1)])
        body["key_id"] = self.key.public_key().key_id
        body["previous_seal"] = self.last_seals.get(body["chain"], GENESIS_HASH)
        self.last_seals[body["chain"]] = sm3_hex(CODEC.seal_message(body))
        return CODEC.encode_seal(body, self.key.sign(CODEC.seal_message(body)))


def resealed_by(key: SM2PrivateKey) -> Alter:
    resealer = Resealer(key, _deliver_to_border)

    def alter(stored: list[StoredMessage]) -> list[bytes]:
        return [resealer(m.value) for m in stored]

    return alter


def assert_refused_as_agency_seals(breaks: tuple[Any, ...], key: SM2PrivateKey) -> None:
    """Every break is a seal refused because an agency's key made it, naming key and rule;
    nothing else is found (the forgery is otherwise consistent)."""
    assert breaks
    key_id = key.public_key().key_id
    for b in breaks:
        assert (b.code, b.seq) == ("SEAL_KEY_NOT_SEALING", None), str(b)
        assert b.problem.startswith("seal "), str(b)
        assert f"key {key_id} is a key of '{FORGER}' with role(s) ack, document, not seal: " \
               f"{SEAL_RULE}" in b.problem, str(b)


@pytest.fixture(scope="module")
def agency_resealed(run: Run) -> str:
    """A mirrored copy whose trail was rewritten and resealed with the agency's own key."""
    prefix = "agency-resealed."
    mirror(run, prefix, {TOPICS.trail: resealed_by(run.home.agency_keys[FORGER])})
    return prefix


def test_a_trail_resealed_with_an_agency_key_fails_verify_on_the_broker(
    run: Run, agency_resealed: str
) -> None:
    history = asyncio.run(trace_kafka(run.bootstrap, SCHEMAS, KEY,
                                      trail_topic=agency_resealed + TOPICS.trail))
    assert "cn.border.sh" in {r.entry["recipient"] for r in history.records}  # the forgery
    report = verify(run, agency_resealed)
    assert report.seals >= 1 and report.sealed_records == 0
    assert_refused_as_agency_seals(report.breaks, run.home.agency_keys[FORGER])
    assert len(report.breaks) == report.seals


def test_an_archive_resealed_with_an_agency_key_fails_verify_offline(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "archive"
    shutil.copytree(run.home.path / "trail-archive", copy)
    reseal = Resealer(run.home.agency_keys[FORGER], _deliver_to_border)
    for segment in sorted(copy.glob("trail-*.seg")):
        data = segment.read_bytes()
        payloads = [reseal(data[start + 4 : end]) for start, end in split_frames(data).frames]
        segment.write_bytes(MAGIC + b"".join(len(p).to_bytes(4, "big") + p for p in payloads))
    assert reseal.changed == 1
    report = verify_archive(copy, SCHEMAS, keyring_of(run))
    assert report.records > 0 and report.sealed_records == 0
    assert_refused_as_agency_seals(report.breaks, run.home.agency_keys[FORGER])
    assert portgw(["replay", "verify", "--config", str(run.home.config_file),
                   "--source", "archive", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "SEAL_KEY_NOT_SEALING: seal 0 (seq 0.." in out, out


def test_a_bundle_of_a_trail_resealed_with_an_agency_key_fails_check_bundle(
    run: Run, agency_resealed: str, tmp_path: Path
) -> None:
    bundle = tmp_path / "forged.zip"
    asyncio.run(export_bundle_kafka(run.bootstrap, SCHEMAS, keyring_of(run), KEY, bundle,
                                    trail_topic=agency_resealed + TOPICS.trail))
    assert check_bundle(bundle).ok  # consistent in itself: only a keyring tells whose key
    report = check_bundle(bundle, keyring=keyring_of(run))
    refused = [f for f in report.failures if f.code == "SEAL_KEY_NOT_SEALING"]
    assert refused and len(refused) == report.seals, report.describe()
    key_id = run.home.agency_keys[FORGER].public_key().key_id
    assert all(f.file.startswith("seals/") and f"key {key_id} is a key of '{FORGER}'"
               in f.problem and SEAL_RULE in f.problem for f in refused), report.describe()
    out = io.StringIO()  # what `portgw replay check-bundle FILE --keyring keyring.toml` runs
    keyring = Keyring.from_toml(run.home.path / "keyring.toml")
    assert run_check_bundle(bundle, keyring=keyring, out=out) == 1
    assert ": SEAL_KEY_NOT_SEALING: seal " in out.getvalue()


# -- the trail's end: chained seals and the checkpoint an auditor holds --------------------------


def cli(run: Run, *args: str) -> list[str]:
    return ["replay", *args, "--config", str(run.home.config_file),
            "--bootstrap-servers", run.bootstrap]


def held_checkpoint(run: Run, out: Path, *source: str) -> Path:
    """The checkpoint file an auditor fetched (`portgw replay checkpoint`) before the cut."""
    assert portgw([*cli(run, "checkpoint", "--out", str(out)), *source]) == 0
    return out


def _seal_positions(stored: list[StoredMessage]) -> list[int]:
    return [i for i, m in enumerate(stored) if SCHEMAS.decode(m.value)[0] == SEAL_SCHEMA]


def _without_batch(stored: list[StoredMessage], seal_index: int) -> list[bytes]:
    """The partition's messages without one seal and the records it covers."""
    body = SCHEMAS.decode(stored[seal_index].value)[1]["body"]
    covered = {i for i in records_of(stored) if body["first_seq"] <= SCHEMAS.decode(
        stored[i].value)[1]["entry"]["seq"] <= body["last_seq"]}
    return [m.value for i, m in enumerate(stored) if i != seal_index and i not in covered]


def _cut_last_batch(stored: list[StoredMessage]) -> list[bytes]:
    seals = _seal_positions(stored)
    return _without_batch(stored, seals[-1]) if seals else [m.value for m in stored]


def test_a_trail_cut_at_its_end_on_the_broker_fails_against_the_held_checkpoint(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held = held_checkpoint(run, tmp_path / "checkpoint.json")
    assert portgw([*cli(run, "verify", "--checkpoint", str(held))]) == 0
    assert "checked against" in capsys.readouterr().out
    mirror(run, "cut.", {TOPICS.trail: _cut_last_batch})
    # Without the checkpoint the cut trail is consistent in itself, and verify says so.
    assert portgw(cli(run, "verify", "--mirror-prefix", "cut.")) == 0
    assert "a trail cut at its end (its last batches and seals removed) cannot be told" in \
        capsys.readouterr().out
    assert portgw(cli(run, "verify", "--mirror-prefix", "cut.", "--checkpoint", str(held))) == 1
    out = capsys.readouterr().out
    assert ": TRAIL_CUT: the trail is cut: the chain ends at seal" in out, out


def test_a_trail_cut_at_its_end_in_the_archive_fails_against_the_held_checkpoint(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(run.home.path / "trail-archive", archive)
    held = held_checkpoint(run, tmp_path / "checkpoint.json", "--source", "archive",
                           str(archive))
    segment = sorted(archive.glob("trail-p*-*.seg"))[-1]
    data = segment.read_bytes()
    frames = split_frames(data).frames
    seals = [n for n, (start, end) in enumerate(frames)
             if SCHEMAS.decode(data[start + 4 : end])[0] == SEAL_SCHEMA]
    cut_from = frames[seals[-2] + 1][0] if len(seals) > 1 else frames[1][0]
    segment.write_bytes(data[:cut_from])  # the last batch and its seal gone, framing whole
    source = ["--source", "archive", str(archive)]
    assert portgw([*cli(run, "verify"), *source]) == 0
    capsys.readouterr()
    assert portgw([*cli(run, "verify", "--checkpoint", str(held)), *source]) == 1
    out = capsys.readouterr().out
    assert ": TRAIL_CUT: the trail is cut: the chain " in out, out


def _remove_first_seal(stored: list[StoredMessage]) -> list[bytes]:
    seals = _seal_positions(stored)
    return [m.value for i, m in enumerate(stored) if not seals or i != seals[0]]


def test_a_seal_removed_from_the_chain_of_seals_breaks_it(run: Run) -> None:
    mirror(run, "unchained.", {TOPICS.trail: _remove_first_seal})
    report = verify(run, "unchained.")
    broken = [b for b in report.breaks if b.code == "TRAIL_SEAL_CHAIN_BROKEN"]
    assert broken and all("names previous seal" in b.problem and "not the chain's start"
                          in b.problem for b in broken), [str(b) for b in report.breaks]


def test_a_checkpoint_signed_by_an_agency_key_is_refused(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held = held_checkpoint(run, tmp_path / "checkpoint.json")
    real = load_checkpoints(held, SCHEMAS)[0]
    forger = run.home.agency_keys[FORGER]
    body = {**real.body, "key_id": forger.public_key().key_id}
    forged = CODEC.encode_checkpoint(body, forger.sign(CODEC.checkpoint_message(body)))
    forged_file = tmp_path / "forged.json"
    save_checkpoints(forged_file, [decode_checkpoint(SCHEMAS, forged)])
    assert portgw(cli(run, "verify", "--checkpoint", str(forged_file))) == 1
    out = capsys.readouterr().out
    assert f"checkpoint {real.chain}: SEAL_KEY_NOT_SEALING: checkpoint of chain" in out, out
    # Published on the checkpoint topic, it is refused and never kept.
    asyncio.run(_publish(run.bootstrap, TOPICS.checkpoint, forged))
    assert portgw(cli(run, "checkpoint", "--out", str(tmp_path / "again.json"))) == 1
    out = capsys.readouterr().out
    assert "refused: checkpoint of chain" in out and "SEAL_KEY_NOT_SEALING" in out, out
    kept = load_checkpoints(tmp_path / "again.json", SCHEMAS)
    assert forged not in {c.value for c in kept} and kept


async def _publish(bootstrap: str, topic: str, value: bytes) -> None:
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def _append_forged_record(stored: list[StoredMessage]) -> list[bytes]:
    """A record appended after the chain's last one, linked and hashed right, unsealed."""
    values = [m.value for m in stored]
    records = records_of(stored)
    if records:
        value = SCHEMAS.decode(stored[records[-1]].value)[1]
        entry = {**value["entry"], "seq": value["entry"]["seq"] + 1,
                 "prev_hash": value["hash"], "recipient": "cn.border.sh"}
        values.append(CODEC.encode_record(entry, CODEC.entry_hash(entry)))
    return values


def test_a_record_appended_unsealed_is_an_error_once_it_should_have_been_sealed(
    run: Run,
) -> None:
    mirror(run, "appended.", {TOPICS.trail: _append_forged_record})
    lenient = verify(run, "appended.")
    assert lenient.ok and lenient.unsealed >= 1, lenient.breaks
    report = asyncio.run(verify_kafka(run.bootstrap, SCHEMAS, keyring_of(run),
                                      trail_topic=TOPICS.trail, mirror_prefix="appended.",
                                      unsealed_before=utc_now()))
    tails = [b for b in report.breaks if b.code == "TRAIL_UNSEALED_TAIL"]
    assert tails and all("still not sealed" in b.problem for b in tails), report.breaks
