"""The evidence bundle: what it holds, that it is reproducible, and that check_bundle catches
every kind of tampering, offline, with real SM2/SM3.

The trail is written by the real TrailWriter to an in-memory topic; the messages its records
name (ingress originals with their signature header, canonical events, deliveries) are held
in a dict keyed by (topic, partition, offset), as read_at would return them.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crypto import KeyEntry, Keyring, KeyRole, SM2PrivateKey, sm3_hex
from gateway.home.config import TrailSettings
from gateway.kafka.names import H_SIGNATURE, StoredMessage, Topics
from gateway.trail.writer import SEAL_SCHEMA, TrailCodec, TrailWriter
from replay import bundle as bundle_module
from replay.bundle import (
    Bundle,
    BundleError,
    BundleReport,
    build_bundle,
    check_bundle,
    document_path,
    export_bundle_kafka,
    referenced_locations,
)
from replay.bundle_cli import run_check_bundle, run_export
from replay.history import document_history
from tests.built_in_schemas import built_in_schemas
from tests.unit.trail_support import BatchSending, Metadata

TOPICS = Topics()  # the production names, no prefix
SCHEMAS = built_in_schemas()
CODEC = TrailCodec(SCHEMAS)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
GATEWAY_KEY = SM2PrivateKey.generate()
SENDER_KEY = SM2PrivateKey.generate()
OTHER_SENDER_KEY = SM2PrivateKey.generate()
SENDER, OTHER_SENDER = "cn.port.sh", "cn.port.nb"
KEY = "BL-2026-0001"
EVENT_TOPIC = "px.canonical.CustomsCargoManifest.v1"


def keyring(*, gateway_revoked_at: datetime | None = None) -> Keyring:
    return Keyring([
        KeyEntry("px.gateway", GATEWAY_KEY.public_key(), valid_from=EPOCH,
                 revoked_at=gateway_revoked_at),
        KeyEntry(SENDER, SENDER_KEY.public_key(), valid_from=EPOCH),
        KeyEntry(OTHER_SENDER, OTHER_SENDER_KEY.public_key(), valid_from=EPOCH),
    ])


@dataclass(slots=True)
class Broker(BatchSending):
    """The trail topic (as the producer TrailWriter writes to) and every other topic."""

    trail: list[StoredMessage] = field(default_factory=list)
    referenced: dict[tuple[str, int, int], StoredMessage] = field(default_factory=dict)

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes, partition: int,
                            headers: list[tuple[str, bytes]]) -> Metadata:
        offset = sum(1 for m in self.trail if m.partition == partition)
        self.trail.append(StoredMessage(topic, partition, offset, key, value, tuple(headers), 0))
        return Metadata(partition, offset)

    def publish(self, topic: str, value: bytes,
                headers: tuple[tuple[str, bytes], ...] = ()) -> dict[str, Any]:
        offset = sum(1 for (t, _, _) in self.referenced if t == topic)
        self.referenced[(topic, 0, offset)] = StoredMessage(topic, 0, offset, None, value,
                                                            headers, 0)
        return {"ref_topic": topic, "ref_partition": 0, "ref_offset": offset,
                "ref_digest": sm3_hex(value)}


@dataclass(frozen=True, slots=True)
class Submitted:
    event_id: str
    document: bytes
    signature: bytes
    event: bytes | None


class Gateway:
    """Writes the records the gateway writes for a submission, in its order."""

    def __init__(self, broker: Broker, seal_every: int = 4) -> None:
        self.broker = broker
        self.writer = TrailWriter(topics=TOPICS, producer=broker, codec=CODEC, key=GATEWAY_KEY,
                                  partition=0, settings=TrailSettings(seal_every=seal_every))
        self.count = 0

    async def submit(self, business_key: str | None, version: int, *,
                     sender: str = SENDER, key: SM2PrivateKey = SENDER_KEY,
                     delivered: Iterable[str] = ("cn.customs",),
                     denied: Iterable[str] = ("cn.msa",)) -> Submitted:
        self.count += 1
        event_id = f"0190a000-0000-7000-8000-{self.count:012d}"
        document = f"<Manifest key='{business_key}' version='{version}'/>".encode()
        signature = key.sign(document)
        ingress = self.broker.publish(TOPICS.ingress, document, ((H_SIGNATURE, signature),))
        base = {"submission_id": f"s{self.count}", "event_id": event_id, "sender": sender,
                "format_id": "manifest-xml", "digest_sm3": sm3_hex(document)}
        await self.writer.append(**base, kind="RECEIVED", reason="received", **ingress)
        if business_key is None:
            await self.writer.append(**base, kind="REJECTED", error_code="XML_MALFORMED",
                                     reason="not well-formed")
            return Submitted(event_id, document, signature, None)
        parsed = {**base, "document_type": "CustomsCargoManifest", "business_key": business_key,
                  "document_version": version, "signature_key_id": key.public_key().key_id}
        event = f"event of {business_key} v{version}".encode()
        await self.writer.append(**parsed, kind="ACCEPTED", reason="routed",
                                 **self.broker.publish(EVENT_TOPIC, event))
        for recipient in delivered:
            await self.writer.append(
                **parsed, kind="DELIVERED", recipient=recipient, contract_id="C-CUSTOMS",
                contract_version=2, reason="full sharing",
                **self.broker.publish(f"px.deliver.{recipient}.v1", b"delivery " + event))
        for recipient in denied:
            await self.writer.append(**parsed, kind="DENIED", recipient=recipient,
                                     error_code="ROUTE_NO_CONTRACT", contract_id="C-MSA",
                                     contract_version=1, reason="no contract for this type")
        return Submitted(event_id, document, signature, event)


@dataclass(frozen=True, slots=True)
class Scenario:
    trail: list[StoredMessage]
    referenced: dict[tuple[str, int, int], StoredMessage]
    versions: tuple[Submitted, ...]
    other_sender: Submitted


def scenario(*, seal_at_end: bool = True, seal_every: int = 4) -> Scenario:
    broker = Broker()
    gateway = Gateway(broker, seal_every)

    async def run() -> Scenario:
        await gateway.submit("BL-OTHER", 1)
        first = await gateway.submit(KEY, 1)
        await gateway.submit(None, 0)
        other = await gateway.submit(KEY, 1, sender=OTHER_SENDER, key=OTHER_SENDER_KEY,
                                     denied=())
        second = await gateway.submit(KEY, 2, denied=())
        if seal_at_end:
            await gateway.writer.seal()
        return Scenario(broker.trail, broker.referenced, (first, second), other)

    return asyncio.run(run())


SCENARIO = scenario()


def export(s: Scenario = SCENARIO, **kwargs: Any) -> Bundle:
    return build_bundle(s.trail, s.referenced, SCHEMAS, keyring(), KEY, sender=SENDER, **kwargs)


def manifest(bundle: Bundle) -> dict[str, Any]:
    return json.loads(bundle.file("manifest.json"))


def check_files(tmp_path: Path, files: dict[str, bytes], ring: Keyring | None = None
                ) -> BundleReport:
    path = tmp_path / "tampered.zip"
    Bundle(KEY, tuple(files.items())).write(path)
    return check_bundle(path, keyring=ring)


def problems(report: BundleReport) -> list[str]:
    return [str(f) for f in report.failures]


def tampered(change: dict[str, bytes]) -> dict[str, bytes]:
    files = dict(export().files)
    assert set(change) <= set(files), sorted(set(change) - set(files))
    return {**files, **change}


def flip(data: bytes, at: int = -1) -> bytes:
    buffer = bytearray(data)
    buffer[at] ^= 0x01
    return bytes(buffer)


def first_record(kind: str, event_id: str) -> dict[str, Any]:
    return next(r for r in manifest(export())["records"]
                if r["kind"] == kind and r["event_id"] == event_id)


# -- what the bundle holds -----------------------------------------------------------------------


def test_the_bundle_holds_every_record_of_both_versions_and_their_evidence() -> None:
    bundle = export()
    m = manifest(bundle)
    first, second = SCENARIO.versions
    assert [d["event_id"] for d in m["documents"]] == [first.event_id, second.event_id]
    assert [d["document_version"] for d in m["documents"]] == [1, 2]
    kinds = [(r["event_id"], r["kind"]) for r in m["records"]]
    assert kinds == [
        (first.event_id, "RECEIVED"), (first.event_id, "ACCEPTED"),
        (first.event_id, "DELIVERED"), (first.event_id, "DENIED"),
        (second.event_id, "RECEIVED"), (second.event_id, "ACCEPTED"),
        (second.event_id, "DELIVERED"),
    ]
    for version in (first, second):
        assert bundle.file(document_path(version.event_id, "original")) == version.document
        assert bundle.file(document_path(version.event_id, "signature.der")) == version.signature
        assert bundle.file(document_path(version.event_id, "event.avro")) == version.event
    assert SCENARIO.other_sender.event_id not in {r["event_id"] for r in m["records"]}
    assert bundle.warnings == ()
    assert bundle.names[:2] == ("README.md", "manifest.json")
    assert list(bundle.names[2:]) == sorted(bundle.names[2:])


def test_record_files_are_the_trail_bytes_and_the_entry_whose_sm3_is_the_hash() -> None:
    bundle = export()
    by_value = {m.value for m in SCENARIO.trail}
    for record in manifest(bundle)["records"]:
        assert bundle.file(record["record"]) in by_value
        assert sm3_hex(bundle.file(record["entry"])) == record["hash"]
        _, value = SCHEMAS.decode(bundle.file(record["record"]))
        assert value["hash"] == record["hash"]


def test_seals_and_keys_are_bundled_with_proofs_for_each_record() -> None:
    bundle = export()
    m = manifest(bundle)
    assert {r["seal"] for r in m["records"]} == {s["name"] for s in m["seals"]}
    for seal in m["seals"]:
        GATEWAY_KEY.public_key().verify(bundle.file(seal["signature"]), bundle.file(seal["body"]))
        name, value = SCHEMAS.decode(bundle.file(seal["seal"]))
        assert name == SEAL_SCHEMA
        assert CODEC.seal_message(value["body"]) == bundle.file(seal["body"])
    for record in m["records"]:
        proof = record["proof"]
        seal = next(s for s in m["seals"] if s["name"] == record["seal"])
        assert proof["leaf_index"] == record["seq"] - seal["first_seq"]
        assert proof["leaf_count"] == seal["last_seq"] - seal["first_seq"] + 1
    key_ids = {k["key_id"] for k in m["keys"]}
    assert key_ids == {GATEWAY_KEY.public_key().key_id, SENDER_KEY.public_key().key_id}
    assert bundle.file(f"keys/{SENDER_KEY.public_key().key_id}.pem") == (
        SENDER_KEY.public_key().to_pem())


def test_the_readme_gives_an_openssl_command_for_every_seal_and_signature() -> None:
    bundle = export()
    readme = bundle.file("README.md").decode()
    for seal in manifest(bundle)["seals"]:
        assert f"-in {seal['body']} -sigfile {seal['signature']}" in readme
    for version in SCENARIO.versions:
        assert f"-in {document_path(version.event_id, 'original')}" in readme
    assert "openssl dgst -sm3 -r records/p0-" in readme


def test_two_exports_of_the_same_trail_are_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    export().write(a)
    export().write(b)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_without_a_sender_every_sender_of_the_business_key_is_included() -> None:
    bundle = build_bundle(SCENARIO.trail, SCENARIO.referenced, SCHEMAS, keyring(), KEY)
    events = [d["event_id"] for d in manifest(bundle)["documents"]]
    assert SCENARIO.other_sender.event_id in events and len(events) == 3


def test_the_bundle_describes_itself_briefly() -> None:
    bundle = export(replace(SCENARIO, referenced={}))
    text = str(bundle)
    assert text.startswith(f"evidence bundle of document {KEY}: ")
    assert "0 original document(s)" in text and "\nwarning: record p0-4: " in text
    assert "files" not in repr(bundle)


def test_an_unknown_document_is_an_error() -> None:
    with pytest.raises(BundleError) as caught:
        build_bundle(SCENARIO.trail, SCENARIO.referenced, SCHEMAS, keyring(), "BL-NOPE")
    assert caught.value.code == "BUNDLE_DOCUMENT_NOT_FOUND"


def test_export_reads_the_trail_then_only_the_messages_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[tuple[str, int, int]]] = []

    async def read_topics(servers: str, topics: list[str], **_: Any) -> list[StoredMessage]:
        assert topics == [TOPICS.trail]
        return SCENARIO.trail

    async def read_at(servers: str, locations: list[tuple[str, int, int]], **_: Any
                      ) -> dict[tuple[str, int, int], StoredMessage]:
        asked.append(list(locations))
        return {loc: SCENARIO.referenced[loc] for loc in locations}

    monkeypatch.setattr(bundle_module, "read_topics", read_topics)
    monkeypatch.setattr(bundle_module, "read_at", read_at)
    out = tmp_path / "bundle.zip"
    written = asyncio.run(export_bundle_kafka("broker:9092", SCHEMAS, keyring(), KEY, out,
                                              sender=SENDER, trail_topic=TOPICS.trail))
    assert out.read_bytes() == export().to_zip() == written.to_zip()
    history = document_history(SCENARIO.trail, SCHEMAS, KEY, sender=SENDER)
    assert asked == [referenced_locations(history)]
    assert {topic for topic, _, _ in asked[0]} == {TOPICS.ingress, EVENT_TOPIC}
    assert check_bundle(out, keyring=keyring()).ok


# -- checking ----------------------------------------------------------------------------------


def test_an_untouched_bundle_verifies_with_and_without_a_keyring(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    export().write(path)
    with_keyring = check_bundle(path, keyring=keyring())
    assert with_keyring.ok, with_keyring.describe()
    assert (with_keyring.records, with_keyring.seals, with_keyring.documents,
            with_keyring.sender_signatures, with_keyring.keys) == (7, 2, 2, 2, 2)
    assert "OK:" in with_keyring.describe() and "checked against the keyring" in (
        with_keyring.describe())
    alone = check_bundle(path)
    assert alone.ok and "NOT checked against a keyring" in alone.describe()


def test_an_altered_original_is_caught(tmp_path: Path) -> None:
    event_id = SCENARIO.versions[0].event_id
    original = document_path(event_id, "original")
    report = check_files(tmp_path, tampered({original: flip(export().file(original))}))
    found = problems(report)
    assert not report.ok
    assert any(p.startswith(f"{original}: SM3 is ") and "give digest_sm3" in p for p in found)
    assert any("the RECEIVED record's ref_digest" in p for p in found), found
    assert any(p.startswith(document_path(event_id, "signature.der")) and "does not verify"
               in p for p in found), found


def test_an_altered_canonical_event_is_caught(tmp_path: Path) -> None:
    event = document_path(SCENARIO.versions[1].event_id, "event.avro")
    report = check_files(tmp_path, tampered({event: event.encode() + b" changed"}))
    assert [str(f) for f in report.failures if f.file == event] == [
        f"{event}: SM3 is {sm3_hex(event.encode() + b' changed')}, the ACCEPTED record's "
        f"ref_digest is {sm3_hex(SCENARIO.versions[1].event or b'')}"
    ]
    assert not any(f.file != event and f.file != "manifest.json" for f in report.failures)


def test_an_altered_entry_is_caught(tmp_path: Path) -> None:
    record = first_record("DELIVERED", SCENARIO.versions[0].event_id)
    entry = export().file(record["entry"])
    altered = entry.replace(b"cn.customs", b"cn.custom2")
    report = check_files(tmp_path, tampered({record["entry"]: altered}))
    found = problems(report)
    assert f"{record['entry']}: differs from the entry in {record['record']}" in found
    assert (f"{record['entry']}: SM3 is {sm3_hex(altered)}, the record's hash is "
            f"{record['hash']}") in found
    assert any(p.startswith(record["entry"]) and "inclusion proof" in p for p in found), found


def test_a_rewritten_record_with_a_recomputed_hash_fails_its_inclusion_proof(
    tmp_path: Path,
) -> None:
    record = first_record("DENIED", SCENARIO.versions[0].event_id)
    _, value = SCHEMAS.decode(export().file(record["record"]))
    value["entry"]["reason"] = "it was shared after all"
    value["hash"] = CODEC.entry_hash(value["entry"])
    files = tampered({
        record["record"]: SCHEMAS.encode("px.trail.TrailRecord", value),
        record["entry"]: SCHEMAS.encode_body("px.trail.TrailEntry", value["entry"]),
    })
    found = problems(check_files(tmp_path, files))
    assert any(p.startswith(f"{record['entry']}: inclusion proof (leaf ") and
               f"does not lead to the root of seal {record['seal']}" in p for p in found), found


def test_an_altered_proof_is_caught(tmp_path: Path) -> None:
    files = dict(export().files)
    m = json.loads(files["manifest.json"])
    record = m["records"][2]
    record["proof"]["path"][0] = "00" * 32
    files["manifest.json"] = json.dumps(m).encode()
    found = problems(check_files(tmp_path, files))
    assert found == [f"{record['entry']}: inclusion proof (leaf {record['proof']['leaf_index']} "
                     f"of {record['proof']['leaf_count']}) does not lead to the root of seal "
                     f"{record['seal']}"]


def test_a_proof_claimed_for_another_leaf_is_caught(tmp_path: Path) -> None:
    files = dict(export().files)
    m = json.loads(files["manifest.json"])
    record = m["records"][1]
    record["proof"]["leaf_index"] += 1
    files["manifest.json"] = json.dumps(m).encode()
    found = problems(check_files(tmp_path, files))
    assert len(found) == 1 and "the record is leaf" in found[0], found


def test_a_forged_seal_signature_is_caught(tmp_path: Path) -> None:
    seal = manifest(export())["seals"][0]
    forged = SM2PrivateKey.generate().sign(export().file(seal["body"]))
    found = problems(check_files(tmp_path, tampered({seal["signature"]: forged})))
    assert (f"{seal['signature']}: SEAL_SIGNATURE_INVALID: SM2 signature over {seal['body']} "
            f"does not verify with key {seal['key_id']}") in found
    assert f"{seal['signature']}: differs from the signature in {seal['seal']}" in found
    sealed = [r for r in manifest(export())["records"] if r["seal"] == seal["name"]]
    assert all(f"{r['entry']}: its seal {seal['name']} does not verify, so neither does it"
               in found for r in sealed), found


def test_an_altered_seal_body_is_caught(tmp_path: Path) -> None:
    seal = manifest(export())["seals"][1]
    found = problems(check_files(tmp_path, tampered(
        {seal["body"]: flip(export().file(seal["body"]))})))
    assert f"{seal['body']}: differs from the body of the seal in {seal['seal']}" in found
    assert any(p.startswith(seal["signature"]) and "does not verify" in p for p in found)


def test_a_key_swapped_for_another_is_caught(tmp_path: Path) -> None:
    gateway_id = GATEWAY_KEY.public_key().key_id
    impostor = SM2PrivateKey.generate().public_key()
    found = problems(check_files(tmp_path, tampered(
        {f"keys/{gateway_id}.pem": impostor.to_pem()})))
    assert (f"keys/{gateway_id}.pem: holds key {impostor.key_id} (SM3 of its SPKI DER), not "
            f"{gateway_id}") in found


def test_a_self_consistent_forgery_passes_alone_but_not_against_the_keyring(
    tmp_path: Path,
) -> None:
    """Re-sealing everything with one's own key fools a check without a keyring: that is
    what the keyring is for."""
    forger = SM2PrivateKey.generate()
    files = dict(export().files)
    m = json.loads(files["manifest.json"])
    for seal in m["seals"]:
        _, value = SCHEMAS.decode(files[seal["seal"]])
        value["body"]["key_id"] = forger.public_key().key_id
        body = CODEC.seal_message(value["body"])
        value["signature"] = forger.sign(body)
        files[seal["seal"]] = CODEC.encode_seal(value["body"], value["signature"])
        files[seal["body"]], files[seal["signature"]] = body, value["signature"]
    files[f"keys/{forger.public_key().key_id}.pem"] = forger.public_key().to_pem()
    m["files"] = []
    files["manifest.json"] = json.dumps(m).encode()
    assert check_files(tmp_path, files).ok
    found = problems(check_files(tmp_path, files, keyring()))
    seal = m["seals"][0]
    assert (f"{seal['seal']}: SEAL_KEY_UNKNOWN: seal {seal['name']}: key "
            f"{forger.public_key().key_id} is not in the keyring: only the gateway's sealing "
            "keys (role seal) seal; an agency's key never does") in found


def resealed(key: SM2PrivateKey) -> dict[str, bytes]:
    """The bundle with every seal re-signed by `key`, its public key bundled: what a forger
    holding that key makes of it (self-consistent, so only a keyring can tell)."""
    files = dict(export().files)
    m = json.loads(files["manifest.json"])
    for seal in m["seals"]:
        _, value = SCHEMAS.decode(files[seal["seal"]])
        value["body"]["key_id"] = key.public_key().key_id
        body = CODEC.seal_message(value["body"])
        value["signature"] = key.sign(body)
        files[seal["seal"]] = CODEC.encode_seal(value["body"], value["signature"])
        files[seal["body"]], files[seal["signature"]] = body, value["signature"]
    files[f"keys/{key.public_key().key_id}.pem"] = key.public_key().to_pem()
    m["files"] = []
    files["manifest.json"] = json.dumps(m).encode()
    return files


def test_a_bundle_resealed_with_an_agency_key_fails_against_the_keyring(tmp_path: Path) -> None:
    """The sender's own key is in the keyring and valid: it signs documents, never seals."""
    files = resealed(SENDER_KEY)
    assert check_files(tmp_path, files).ok
    report = check_files(tmp_path, files, keyring())
    seals = manifest(export())["seals"]
    key_id = SENDER_KEY.public_key().key_id
    refused = [f for f in report.failures if f.code == "SEAL_KEY_NOT_SEALING"]
    assert [(f.file, f.problem) for f in refused] == [
        (seal["seal"], f"seal {seal['name']}: key {key_id} is a key of '{SENDER}' with role(s) "
                       "ack, document, not seal: only the gateway's sealing keys (role seal) "
                       "seal; an agency's key never does") for seal in seals]
    assert not report.ok


def test_a_sender_key_without_the_document_role_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    export().write(path)
    ack_only = Keyring([
        KeyEntry("px.gateway", GATEWAY_KEY.public_key(), valid_from=EPOCH),
        KeyEntry(SENDER, SENDER_KEY.public_key(), valid_from=EPOCH,
                 roles=frozenset({KeyRole.ACK})),
    ])
    report = check_bundle(path, keyring=ack_only)
    assert [f.code for f in report.failures] == ["AUTH_KEY_ROLE"], report.describe()
    assert "may not sign documents" in report.failures[0].problem


def test_a_seal_key_revoked_before_the_seal_is_refused_with_the_keyring(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    export().write(path)
    revoked = keyring(gateway_revoked_at=datetime.now(UTC) - timedelta(days=1))
    report = check_bundle(path, keyring=revoked)
    assert any("was revoked" in p for p in problems(report)), report.describe()


def test_a_sender_key_listed_for_another_agency_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    export().write(path)
    swapped = Keyring([
        KeyEntry("px.gateway", GATEWAY_KEY.public_key(), valid_from=EPOCH),
        KeyEntry(OTHER_SENDER, SENDER_KEY.public_key(), valid_from=EPOCH),
    ])
    found = problems(check_bundle(path, keyring=swapped))
    assert any(f"for {OTHER_SENDER}, not {SENDER}" in p for p in found), found


def test_a_missing_original_is_caught(tmp_path: Path) -> None:
    original = document_path(SCENARIO.versions[0].event_id, "original")
    files = {k: v for k, v in export().files if k != original}
    found = problems(check_files(tmp_path, files))
    assert f"{original}: missing (the original named by the RECEIVED record)" in found


def test_an_unsealed_record_is_exported_with_a_warning_and_fails_the_check(
    tmp_path: Path,
) -> None:
    unsealed = scenario(seal_at_end=False, seal_every=100)
    bundle = export(unsealed)
    assert any("is not sealed yet" in w for w in bundle.warnings)
    found = problems(check_files(tmp_path, dict(bundle.files)))
    assert found and all("not covered by any seal" in p for p in found)


def test_an_unreadable_referenced_message_is_a_warning_then_a_failure(tmp_path: Path) -> None:
    first = SCENARIO.versions[0]
    kept = {loc: m for loc, m in SCENARIO.referenced.items() if m.value != first.document}
    bundle = export(replace(SCENARIO, referenced=kept))
    assert any("the original document it names" in w and "could not be read" in w
               for w in bundle.warnings), bundle.warnings
    found = problems(check_files(tmp_path, dict(bundle.files)))
    assert found == [f"{document_path(first.event_id, 'original')}: missing (the original "
                     "named by the RECEIVED record)"]


# -- reading zips safely -------------------------------------------------------------------------


def write_zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def bundle_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(BundleError) as caught:
        check_bundle(path, **kwargs)
    return caught.value.code


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"PK but not really")
    assert bundle_error(tmp_path / "x.zip") == "BUNDLE_NOT_ZIP"
    assert bundle_error(tmp_path / "absent.zip") == "BUNDLE_UNREADABLE"


def test_a_zip_without_a_manifest_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "b.zip", [("README.md", b"hello")])
    assert bundle_error(path) == "BUNDLE_NO_MANIFEST"


@pytest.mark.parametrize("manifest_bytes", [b"{not json", b"[]", b'{"format": "other"}',
                                            b'{"format": "px.evidence-bundle.v1"}'])
def test_a_manifest_that_is_not_one_is_refused(tmp_path: Path, manifest_bytes: bytes) -> None:
    path = write_zip(tmp_path / "b.zip", [("manifest.json", manifest_bytes)])
    assert bundle_error(path) == "BUNDLE_MANIFEST_INVALID"


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "records/../../x", "C:/x",
                                  "a\\..\\b", "./manifest.json"])
def test_unsafe_entry_names_are_refused(tmp_path: Path, name: str) -> None:
    files = [*export().files, (name, b"x")]
    path = write_zip(tmp_path / "b.zip", files)
    assert bundle_error(path) == "BUNDLE_UNSAFE_PATH"


def test_a_duplicate_entry_is_refused(tmp_path: Path) -> None:
    files = list(export().files)
    path = tmp_path / "b.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(path, [*files, ("manifest.json", b"{}")])
    assert bundle_error(path) == "BUNDLE_DUPLICATE_ENTRY"


def test_the_uncompressed_size_is_bounded(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "bomb.zip", [("manifest.json", b"{}"),
                                             ("zeros", bytes(4 * 1024 * 1024))])
    assert path.stat().st_size < 64 * 1024
    assert bundle_error(path, max_bytes=1024 * 1024) == "BUNDLE_TOO_LARGE"


def test_a_lying_size_header_does_not_get_past_the_bound(tmp_path: Path) -> None:
    """An entry that declares a small size but inflates to more is cut off while reading."""
    path = write_zip(tmp_path / "liar.zip", [("manifest.json", bytes(2 * 1024 * 1024))])
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
    small = (100).to_bytes(4, "little")
    data[info.header_offset + 22:info.header_offset + 26] = small  # local header size
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = small  # central directory size
    path.write_bytes(bytes(data))
    assert bundle_error(path) in ("BUNDLE_TOO_LARGE", "BUNDLE_NOT_ZIP")


def test_a_bundle_without_records_proves_nothing(tmp_path: Path) -> None:
    empty = {"format": "px.evidence-bundle.v1", "business_key": KEY, "records": [],
             "seals": [], "documents": [], "files": []}
    path = write_zip(tmp_path / "b.zip", [("manifest.json", json.dumps(empty).encode())])
    report = check_bundle(path)
    assert not report.ok
    assert problems(report) == ["manifest.json: the bundle holds no trail record: it proves "
                                "nothing"]


# -- the command-line helpers ------------------------------------------------------------------


def test_run_export_writes_checks_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def read_topics(servers: str, topics: list[str], **_: Any) -> list[StoredMessage]:
        return SCENARIO.trail

    async def read_at(servers: str, locations: list[tuple[str, int, int]], **_: Any
                      ) -> dict[tuple[str, int, int], StoredMessage]:
        return {loc: SCENARIO.referenced[loc] for loc in locations}

    monkeypatch.setattr(bundle_module, "read_topics", read_topics)
    monkeypatch.setattr(bundle_module, "read_at", read_at)
    out = io.StringIO()
    path = tmp_path / "bundle.zip"
    assert run_export("broker:9092", keyring(), KEY, path, trail_topic=TOPICS.trail,
                      sender=SENDER, out=out) == 0
    assert out.getvalue().startswith(
        f"wrote {path}\nevidence bundle of document {KEY}: 30 files: 7 trail record(s), "
        "2 seal(s), 2 original document(s), 2 key(s)\n")
    assert "OK: record hashes" in out.getvalue()


def test_run_check_bundle_exits_1_on_a_tampered_bundle(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    export().write(path)
    out = io.StringIO()
    assert run_check_bundle(path, keyring=keyring(), out=out) == 0
    event = document_path(SCENARIO.versions[0].event_id, "event.avro")
    Bundle(KEY, tuple(tampered({event: b"other"}).items())).write(path)
    out = io.StringIO()
    assert run_check_bundle(path, out=out) == 1
    assert f"BROKEN: 1 problem(s):\n  {event}: SM3 is " in out.getvalue()


def test_an_acknowledged_delivery_is_evidence_beside_the_original(tmp_path: Path) -> None:
    """A TAKEN record names the delivered payload's SM3 (what its recipient signed), not the
    original's: the bundle holds it and still verifies the original."""
    broker = Broker()
    gateway = Gateway(broker)

    async def run() -> None:
        sent = await gateway.submit(KEY, 1, denied=())
        payload = b"delivery " + (sent.event or b"")
        await gateway.writer.append(
            kind="TAKEN", submission_id="delivery-1", event_id=sent.event_id, sender=SENDER,
            format_id="avro", document_type="CustomsCargoManifest", business_key=KEY,
            document_version=1, digest_sm3=sm3_hex(payload), recipient="cn.customs",
            contract_id="C-CUSTOMS", contract_version=2, reason="taken by cn.customs",
            **broker.publish("px.taken.v1", b'{"ack": 1}'))
        await gateway.writer.seal()

    asyncio.run(run())
    path = tmp_path / "bundle.zip"
    build_bundle(broker.trail, broker.referenced, SCHEMAS, keyring(), KEY,
                 sender=SENDER).write(path)
    report = check_bundle(path, keyring=keyring())
    assert report.ok, report.describe()
    assert "TAKEN" in [r["kind"] for r in json.loads(
        zipfile.ZipFile(path).read("manifest.json"))["records"]]
