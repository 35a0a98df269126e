"""The evidence bundle of one document: a zip an auditor checks offline, with our tools or
with stock OpenSSL 3.

What it proves: each trail record in it is covered by a seal the gateway's key signed (SM3
hash of the record's entry → Merkle inclusion proof → seal root → SM2 signature), and the
original bytes, the sender's signature and the canonical event are the ones those records
name by digest. What it cannot prove: that nothing was left out, and that the bundled keys
are the gateway's and the sender's; the latter is what checking against a keyring adds (a
seal key must be one of the gateway's sealing keys, role seal, valid at the seal's time; a
sender key that agency's own document key).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import stat
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from crypto import (
    DEFAULT_SM2_ID,
    SEAL_SIGNATURE_INVALID,
    CryptoError,
    KeyEntry,
    Keyring,
    KeyRole,
    KeyRoleRefused,
    MerkleTree,
    SM2PublicKey,
    merkle_leaf_hash,
    merkle_tree,
    sm3_hex,
    verify_merkle_proof,
)
from gateway.errors import GatewayError
from gateway.kafka.names import H_SIGNATURE, StoredMessage
from gateway.kafka.wire import Broker, read_at, read_topics
from gateway.trail.writer import RECORD_SCHEMA, SEAL_SCHEMA, TrailCodec, entry_bytes, signed_body
from message_formats import AvroSchemas, FormatError
from replay.history import (
    ACCEPTED,
    RECEIVED,
    TAKEN,
    DecodedTrail,
    DocumentHistory,
    DocumentVersion,
    SealItem,
    TrailItem,
    decode_trail,
    format_time,
    history_of,
)
from replay.verify import key_valid_at

BUNDLE_FORMAT = "px.evidence-bundle.v1"
MANIFEST = "manifest.json"
README = "README.md"
SM2_USER_ID = DEFAULT_SM2_ID.decode()
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
MAX_BUNDLE_FILES = 100_000
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_READ_CHUNK = 1024 * 1024

Location = tuple[str, int, int]


class BundleError(GatewayError):
    """A bundle that cannot be made or read at all (as opposed to one whose content does not
    verify, which check_bundle reports)."""

    code = "BUNDLE_ERROR"


# -- where things go in the zip -----------------------------------------------------------------

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def safe_component(text: str) -> str:
    """`text` when it can be a file name as it is, else a name derived from its SM3, so that
    trail values (event ids, chains) never steer paths."""
    if _SAFE_NAME.fullmatch(text) and ".." not in text:
        return text
    return "x-" + sm3_hex(text.encode("utf-8"))[:32]


def record_paths(chain: str, seq: int) -> tuple[str, str]:
    stem = f"records/{safe_component(chain)}-{seq}"
    return f"{stem}.avro", f"{stem}.entry"


def seal_paths(chain: str, seal_seq: int) -> tuple[str, str, str]:
    stem = f"seals/{safe_component(chain)}-{seal_seq}"
    return f"{stem}.avro", f"{stem}.body", f"{stem}.sig"


def key_path(key_id: str) -> str:
    return f"keys/{safe_component(key_id)}.pem"


def document_path(event_id: str, name: str) -> str:
    return f"documents/{safe_component(event_id)}/{name}"


ORIGINAL, SIGNATURE, EVENT = "original", "signature.der", "event.avro"


def verify_command(key: str, data: str, signature: str) -> str:
    """The stock OpenSSL 3 command that checks a DER SM2 signature (SM3, default user id)."""
    return shlex.join([
        "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", key, "-rawin", "-in", data,
        "-sigfile", signature, "-digest", "sm3", "-pkeyopt", f"distid:{SM2_USER_ID}",
    ])


def digest_command(path: str) -> str:
    return shlex.join(["openssl", "dgst", "-sm3", "-r", path])


def key_id_command(path: str) -> str:
    return (f"{shlex.join(['openssl', 'pkey', '-pubin', '-in', path, '-outform', 'DER'])}"
            " | openssl dgst -sm3 -r")


# -- the bundle ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bundle:
    business_key: str
    files: tuple[tuple[str, bytes], ...] = field(repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.files)

    def describe(self) -> str:
        def count(prefix: str, suffix: str) -> int:
            return sum(1 for n in self.names if n.startswith(prefix) and n.endswith(suffix))

        lines = [
            f"evidence bundle of document {self.business_key}: {len(self.files)} files: "
            f"{count('records/', '.entry')} trail record(s), {count('seals/', '.body')} "
            f"seal(s), {count('documents/', '/' + ORIGINAL)} original document(s), "
            f"{count('keys/', '.pem')} key(s)"
        ]
        lines.extend(f"warning: {warning}" for warning in self.warnings)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()

    def file(self, name: str) -> bytes:
        for candidate, data in self.files:
            if candidate == name:
                return data
        raise KeyError(name)

    def to_zip(self) -> bytes:
        """Same files, same bytes: fixed order, timestamps, permissions and compression."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in self.files:
                info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                archive.writestr(info, data, compresslevel=9)
        return buffer.getvalue()

    def write(self, path: Path) -> None:
        """Writes the zip whole or not at all."""
        temporary = path.with_name(f".{path.name}.partial")
        try:
            temporary.write_bytes(self.to_zip())
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise BundleError(f"cannot write {path}: {exc.strerror or exc}",
                              code="BUNDLE_WRITE_FAILED") from exc


def referenced_locations(history: DocumentHistory) -> list[Location]:
    """The messages a bundle carries: the ingress original each RECEIVED record names and the
    canonical event each ACCEPTED record names."""
    wanted = {
        location
        for record in history.records
        if record.kind in (RECEIVED, ACCEPTED) and (location := record.reference) is not None
    }
    return sorted(wanted)


def build_bundle(
    trail: Iterable[StoredMessage],
    referenced: Mapping[Location, StoredMessage],
    schemas: AvroSchemas,
    keyring: Keyring,
    business_key: str,
    *,
    sender: str | None = None,
) -> Bundle:
    """The bundle from the trail's messages and the messages its records name (at least
    those of `referenced_locations`); absent ones become warnings, not errors."""
    decoded = decode_trail(trail, schemas)
    return assemble_bundle(decoded, history_of(decoded, business_key, sender=sender),
                           referenced, schemas, keyring)


async def export_bundle_kafka(
    bootstrap_servers: Broker,
    schemas: AvroSchemas,
    keyring: Keyring,
    business_key: str,
    out: Path,
    *,
    sender: str | None = None,
    trail_topic: str,
) -> Bundle:
    messages = await read_topics(bootstrap_servers, [trail_topic])
    decoded = decode_trail(messages, schemas)
    history = history_of(decoded, business_key, sender=sender)
    locations = referenced_locations(history)
    found = await read_at(bootstrap_servers, locations) if locations else {}
    bundle = assemble_bundle(decoded, history, found, schemas, keyring)
    bundle.write(out)
    return bundle


def assemble_bundle(
    decoded: DecodedTrail,
    history: DocumentHistory,
    referenced: Mapping[Location, StoredMessage],
    schemas: AvroSchemas,
    keyring: Keyring,
) -> Bundle:
    if not history.found:
        who = f" from {history.sender}" if history.sender else ""
        raise BundleError(f"no trail record names document {history.business_key!r}{who}",
                          code="BUNDLE_DOCUMENT_NOT_FOUND")
    return _Builder(decoded, history, referenced, TrailCodec(schemas), keyring).build()


@dataclass(frozen=True, slots=True)
class _Proof:
    seal: SealItem
    leaf_index: int
    leaf_count: int
    path: tuple[bytes, ...]


@dataclass(slots=True)
class _Builder:
    decoded: DecodedTrail
    history: DocumentHistory
    referenced: Mapping[Location, StoredMessage]
    codec: TrailCodec
    keyring: Keyring
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    trees: dict[str, MerkleTree | None] = field(default_factory=dict)
    chain_hashes: dict[str, dict[int, str]] | None = None
    key_roles: dict[str, set[str]] = field(default_factory=dict)

    def add(self, path: str, data: bytes, what: str) -> str:
        self.files[path] = (data, what)
        return path

    def build(self) -> Bundle:
        records = [self.record(r) for r in self.history.records]
        seals = [self.seal(s) for s in self.used_seals()]
        documents = [self.document(v) for v in self.history.versions]
        keys = self.keys()
        readme = render_readme(self.history, seals, documents, keys)
        self.add(README, readme.encode("utf-8"), "how to read and check this bundle")
        manifest = {
            "format": BUNDLE_FORMAT,
            "business_key": self.history.business_key,
            "sender": self.history.sender,
            "sm2_user_id": SM2_USER_ID,
            "documents": documents,
            "records": records,
            "seals": seals,
            "keys": keys,
            "files": [
                {"path": path, "bytes": len(data), "sm3": sm3_hex(data), "what": what}
                for path, (data, what) in sorted(self.files.items())
            ],
            "warnings": self.warnings,
        }
        manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        ordered = [(README, self.files.pop(README)[0]), (MANIFEST, manifest_bytes)]
        ordered.extend((path, data) for path, (data, _) in sorted(self.files.items()))
        return Bundle(self.history.business_key, tuple(ordered), tuple(self.warnings))

    # records and their proofs

    def record(self, record: TrailItem) -> dict[str, Any]:
        avro_path, entry_path = record_paths(record.chain, record.seq)
        entry = entry_bytes(record.message.value, record.hash)
        if sm3_hex(entry) != record.hash:
            self.warnings.append(f"record {record.name}: its entry does not hash to its stored "
                                 "hash (the trail is broken; run replay verify)")
        self.add(avro_path, record.message.value, f"trail record {record.name} as on the trail")
        self.add(entry_path, entry,
                 f"entry of record {record.name}: Avro binary whose SM3 is the record hash")
        proof = self.proof(record)
        return {
            "name": record.name,
            "chain": record.chain,
            "seq": record.seq,
            "kind": record.kind,
            "event_id": record.event_id,
            "time": format_time(record.time),
            "hash": record.hash,
            "record": avro_path,
            "entry": entry_path,
            "seal": proof.seal.name if proof else None,
            "proof": None if proof is None else {
                "leaf_index": proof.leaf_index,
                "leaf_count": proof.leaf_count,
                "path": [node.hex() for node in proof.path],
            },
        }

    def covering_seal(self, record: TrailItem) -> SealItem | None:
        covering = [s for s in self.decoded.seals if s.covers(record.chain, record.seq)]
        return min(covering, key=lambda s: s.seal_seq, default=None)

    def used_seals(self) -> list[SealItem]:
        used = {s.name: s for r in self.history.records if (s := self.covering_seal(r))}
        return sorted(used.values(), key=lambda s: (s.chain, s.seal_seq))

    def proof(self, record: TrailItem) -> _Proof | None:
        seal = self.covering_seal(record)
        if seal is None:
            self.warnings.append(f"record {record.name} is not sealed yet: export again once "
                                 "the gateway has sealed it")
            return None
        if seal.name not in self.trees:
            self.trees[seal.name] = self.seal_tree(seal)
        tree = self.trees[seal.name]
        if tree is None:
            return None
        index = record.seq - seal.body["first_seq"]
        return _Proof(seal, index, tree.count, tree.proof(index))

    def seal_tree(self, seal: SealItem) -> MerkleTree | None:
        """The Merkle tree over every record the seal covers, as read from the trail."""
        if self.chain_hashes is None:
            self.chain_hashes = {}
            for r in self.decoded.records:
                self.chain_hashes.setdefault(r.chain, {}).setdefault(r.seq, r.hash)
        hashes = self.chain_hashes.get(seal.chain, {})
        first, last = seal.body["first_seq"], seal.body["last_seq"]
        missing = [seq for seq in range(first, last + 1) if seq not in hashes]
        if missing:
            self.warnings.append(f"seal {seal.name} covers records missing from the trail "
                                 f"(seq {missing[:5]}): no inclusion proofs under it")
            return None
        try:
            tree = merkle_tree([merkle_leaf_hash(bytes.fromhex(hashes[seq]))
                                for seq in range(first, last + 1)])
        except ValueError:
            self.warnings.append(f"seal {seal.name} covers a record whose hash is not hex")
            return None
        if tree.root.hex() != seal.body["root"]:
            self.warnings.append(f"seal {seal.name}: the records on the trail do not give its "
                                 "root (the trail is broken; run replay verify)")
        return tree

    # seals, keys, documents

    def seal(self, seal: SealItem) -> dict[str, Any]:
        avro_path, body_path, sig_path = seal_paths(seal.chain, seal.seal_seq)
        body = seal.body
        self.add(avro_path, seal.message.value, f"seal {seal.name} as on the trail")
        self.add(body_path, signed_body(seal.message.value, seal.signature),
                 f"body of seal {seal.name}: the bytes its signature covers")
        self.add(sig_path, seal.signature, f"DER SM2 signature of seal {seal.name}")
        self.key_roles.setdefault(body["key_id"], set()).add("seal")
        return {
            "name": seal.name,
            "chain": seal.chain,
            "seal_seq": seal.seal_seq,
            "first_seq": body["first_seq"],
            "last_seq": body["last_seq"],
            "root": body["root"],
            "time": format_time(body["time"]),
            "key_id": body["key_id"],
            "seal": avro_path,
            "body": body_path,
            "signature": sig_path,
            "key": key_path(body["key_id"]),
        }

    def keys(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = []
        for key_id, roles in sorted(self.key_roles.items()):
            try:
                entry = self.keyring.by_key_id(key_id)
            except CryptoError as exc:  # not in the keyring, or an RSA key (not SM2)
                self.warnings.append(f"key {key_id} not bundled: {exc.message}")
                continue
            path = self.add(key_path(key_id), entry.public_key.to_pem(),
                            f"SM2 public key of {entry.agency_id} ({', '.join(sorted(roles))})")
            listed.append(_key_listing(entry, path, roles))
        return listed

    def document(self, version: DocumentVersion) -> dict[str, Any]:
        eid = version.event_id
        original = signature = event = None
        received = version.first_of(RECEIVED)
        if received is None:
            self.warnings.append(f"event {eid}: no RECEIVED record, so no original document")
        elif (message := self.message_of(received, "original document")) is not None:
            original = self.add(document_path(eid, ORIGINAL), message.value,
                                f"the exact bytes {version.sender} submitted (event {eid})")
            sender_signature = message.header(H_SIGNATURE) or b""
            if sender_signature:
                signature = self.add(document_path(eid, SIGNATURE), sender_signature,
                                     f"{version.sender}'s detached DER SM2 signature over it")
        accepted = version.first_of(ACCEPTED)
        if accepted is not None:
            message = self.message_of(accepted, "canonical event")
            if message is not None:
                event = self.add(document_path(eid, EVENT), message.value,
                                 f"canonical event of event {eid} (Avro single-object)")
        if version.signature_key_id:
            self.key_roles.setdefault(version.signature_key_id, set()).add(
                f"sender {version.sender}")
        return {
            "event_id": eid,
            "submission_id": version.submission_id,
            "sender": version.sender,
            "format_id": version.format_id,
            "document_type": version.document_type,
            "document_version": version.document_version,
            "digest_sm3": version.digest_sm3,
            "signature_key_id": version.signature_key_id,
            "records": [r.name for r in version.records],
            "original": original,
            "signature": signature,
            "event": event,
            "event_sm3": accepted.entry["ref_digest"] if accepted else None,
        }

    def message_of(self, record: TrailItem, what: str) -> StoredMessage | None:
        location = record.reference
        message = self.referenced.get(location) if location else None
        if message is None:
            self.warnings.append(f"record {record.name}: the {what} it names "
                                 f"({_where(location)}) could not be read")
            return None
        if sm3_hex(message.value) != record.entry["ref_digest"]:
            self.warnings.append(f"record {record.name}: the {what} at {_where(location)} does "
                                 "not have the digest the trail recorded")
        return message


def _where(location: Location | None) -> str:
    if location is None:
        return "no reference"
    topic, partition, offset = location
    return f"{topic}[{partition}]@{offset}"


def _key_listing(entry: KeyEntry, path: str, roles: set[str]) -> dict[str, Any]:
    def when(at: datetime | None) -> str | None:
        return None if at is None or at.year == 1 else at.isoformat()

    return {
        "key_id": entry.key_id,
        "agency_id": entry.agency_id,
        "file": path,
        "roles": sorted(roles),
        "valid_from": when(entry.valid_from),
        "valid_to": when(entry.valid_to),
        "revoked_at": when(entry.revoked_at),
    }


# -- README ---------------------------------------------------------------------------------------


def render_readme(
    history: DocumentHistory,
    seals: list[dict[str, Any]],
    documents: list[dict[str, Any]],
    keys: list[dict[str, Any]],
) -> str:
    who = f" from {history.sender}" if history.sender else ""
    lines = [
        f"# Evidence bundle: document {history.business_key}{who}",
        "",
        "Exported from the trail of the port exchange gateway: every trail record of every "
        f"submission of this document ({len(documents)} submission(s), "
        f"{len(history.records)} record(s)), with what is needed to check each offline.",
        "",
        "## What is inside",
        "",
        "- `manifest.json`: the index: each document version, record (hash, seal, Merkle "
        "inclusion proof as hex: leaf index, leaf count, path), seal, key and file (size, SM3).",
        "- `documents/<event_id>/original`: the exact bytes the sender submitted; "
        "`signature.der`: the sender's detached DER SM2 signature over them (when signed); "
        "`event.avro`: the canonical event the gateway published (Avro single-object).",
        "- `records/<chain>-<seq>.avro`: a trail record as on the trail; "
        "`records/<chain>-<seq>.entry`: its entry in Avro binary, whose SM3 is the record hash.",
        "- `seals/<chain>-<seal_seq>.avro`: a seal as on the trail; `.body`: the bytes its "
        "signature covers (Avro binary of the seal body); `.sig`: the DER SM2 signature.",
        "- `keys/<key_id>.pem`: SM2 public keys (SPKI PEM) of the seal signers and of the "
        "senders; the key id is the SM3 of the key's SPKI DER.",
        "",
        "## Checking it",
        "",
        "With the gateway's tools (checks everything below, plus the keys against your keyring):",
        "",
        "```sh",
        "portgw replay check-bundle bundle.zip --keyring keyring.toml",
        "```",
        "",
        "With stock OpenSSL 3, in the directory where the bundle was unzipped. SM2 signatures "
        f"use SM3 and the user id {SM2_USER_ID}. A signature check prints "
        "`Signature Verified Successfully`.",
        "",
        "### Seal signatures",
        "",
    ]
    for seal in seals:
        lines += [
            f"Seal {seal['name']}: chain {seal['chain']}, records {seal['first_seq']}.."
            f"{seal['last_seq']}, Merkle root {seal['root']}, sealed {seal['time']} by key "
            f"{seal['key_id']}:",
            "",
            "```sh",
            verify_command(seal["key"], seal["body"], seal["signature"]),
            "```",
            "",
        ]
    if not seals:
        lines += ["(no seal: the records are not sealed yet)", ""]
    lines += ["### Sender signatures", ""]
    signed = [d for d in documents if d["original"] and d["signature"]]
    for document in signed:
        lines += [
            f"Event {document['event_id']} (version {document['document_version']}, sender "
            f"{document['sender']}, key {document['signature_key_id']}):",
            "",
            "```sh",
            verify_command(key_path(document["signature_key_id"] or ""), document["original"],
                           document["signature"]),
            "```",
            "",
        ]
    if not signed:
        lines += ["(no signed original in this bundle)", ""]
    lines += [
        "### Digests",
        "",
        "Each command prints an SM3 digest to compare:",
        "",
        "```sh",
    ]
    for document in documents:
        if document["original"]:
            lines.append(f"{digest_command(document['original'])}"
                         f"   # = digest_sm3 {document['digest_sm3']}")
        if document["event"]:
            lines.append(f"{digest_command(document['event'])}"
                         f"   # = ref_digest of the ACCEPTED record {document['event_sm3']}")
    for record in history.records:
        _, entry_path = record_paths(record.chain, record.seq)
        lines.append(f"{digest_command(entry_path)}   # = record hash {record.hash}")
    for key in keys:
        lines.append(f"{key_id_command(key['file'])}   # = key id {key['key_id']}")
    lines += [
        "```",
        "",
        "### Merkle inclusion",
        "",
        "For each record, `manifest.json` gives the seal covering it and the audit path "
        "(RFC 9162 §2.1.3, with SM3): leaf = SM3(0x00 ‖ record hash bytes), node = "
        "SM3(0x01 ‖ left ‖ right); starting from the leaf at `leaf_index` of `leaf_count` "
        "and folding in the path must give the seal's root.",
        "",
        "## What this bundle does not prove",
        "",
        "- That nothing was left out: it shows what the records in it say, not that there are "
        "no others.",
        "- That the keys are the gateway's and the sender's: compare their key ids with a "
        "keyring you trust (`--keyring`): each seal key must be one of the gateway's sealing "
        "keys (role seal; an agency's key never seals), each sender key that agency's own "
        "document key, and each valid and not revoked at the seal's time (or the "
        "submission's, for a sender key).",
        "",
    ]
    return "\n".join(lines)


# -- checking -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing in the bundle that does not verify: the file, and what differs."""

    file: str
    problem: str
    code: str | None = None  # the rule broken, for those that have a stable code

    def __str__(self) -> str:
        if self.code is not None:
            return f"{self.file}: {self.code}: {self.problem}"
        return f"{self.file}: {self.problem}"


@dataclass(frozen=True, slots=True)
class BundleReport:
    source: str
    business_key: str
    records: int
    seals: int
    documents: int
    sender_signatures: int
    keys: int
    keyring_checked: bool
    failures: tuple[Finding, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        lines = [
            f"bundle {self.source}: document {self.business_key}: {self.records} record(s), "
            f"{self.seals} seal(s), {self.documents} document version(s), "
            f"{self.sender_signatures} sender signature(s), {self.keys} key(s)"
        ]
        if self.keyring_checked:
            lines.append("keys checked against the keyring (known, valid, not revoked)")
        else:
            lines.append("keys NOT checked against a keyring: they are only checked against "
                         "their ids; pass a keyring to know whose keys they are")
        lines.extend(f"note: {note}" for note in self.notes)
        if self.ok:
            lines.append("OK: record hashes, inclusion proofs, seal signatures, digests and "
                         "sender signatures verify")
        else:
            lines.append(f"BROKEN: {len(self.failures)} problem(s):")
            lines.extend(f"  {finding}" for finding in self.failures)
        return "\n".join(lines)


def read_bundle_files(path: Path, *, max_bytes: int = MAX_BUNDLE_BYTES) -> dict[str, bytes]:
    """Every file of the zip, in memory, nothing written to disk. Refuses unsafe names,
    duplicates, encryption and more than `max_bytes` uncompressed in all."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise BundleError(f"{path} is not a zip file", code="BUNDLE_NOT_ZIP") from exc
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror or exc}",
                          code="BUNDLE_UNREADABLE") from exc
    files: dict[str, bytes] = {}
    budget = max_bytes
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_BUNDLE_FILES:
            raise BundleError(f"{path} holds {len(infos)} entries, more than "
                              f"{MAX_BUNDLE_FILES}", code="BUNDLE_TOO_LARGE")
        if sum(info.file_size for info in infos) > max_bytes:
            raise BundleError(f"{path} would unpack to more than {max_bytes} bytes",
                              code="BUNDLE_TOO_LARGE")
        for info in infos:
            _check_entry_name(info.filename)
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise BundleError(f"{info.filename} is encrypted", code="BUNDLE_UNSUPPORTED")
            if info.filename in files:
                raise BundleError(f"{info.filename} appears twice in {path}",
                                  code="BUNDLE_DUPLICATE_ENTRY")
            data = _read_entry(archive, info, budget)
            budget -= len(data)
            files[info.filename] = data
    return files


def _check_entry_name(name: str) -> None:
    parts = name.rstrip("/").split("/")
    unsafe = (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or re.match(r"[A-Za-z]:", name) is not None
        or any(part in ("", ".", "..") for part in parts)
    )
    if unsafe:
        raise BundleError(f"unsafe entry name {name!r} in the bundle", code="BUNDLE_UNSAFE_PATH")


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(_READ_CHUNK):
                size += len(chunk)
                if size > budget or size > info.file_size:
                    raise BundleError(f"{info.filename} unpacks to more than declared or "
                                      "allowed", code="BUNDLE_TOO_LARGE")
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            OSError) as exc:
        raise BundleError(f"cannot unpack {info.filename}: {exc}", code="BUNDLE_NOT_ZIP") from exc
    return b"".join(chunks)


def check_bundle(
    path: Path,
    *,
    keyring: Keyring | None = None,
    schemas: AvroSchemas | None = None,
    max_bytes: int = MAX_BUNDLE_BYTES,
) -> BundleReport:
    files = read_bundle_files(path, max_bytes=max_bytes)
    return check_bundle_files(files, keyring=keyring, schemas=schemas, source=str(path))


def check_bundle_files(
    files: Mapping[str, bytes],
    *,
    keyring: Keyring | None = None,
    schemas: AvroSchemas | None = None,
    source: str = "bundle",
) -> BundleReport:
    manifest = _load_manifest(files)
    checker = _Checker(files, TrailCodec(schemas or AvroSchemas()), keyring)
    return checker.check(manifest, source)


def _load_manifest(files: Mapping[str, bytes]) -> dict[str, Any]:
    data = files.get(MANIFEST)
    if data is None:
        raise BundleError(f"the bundle has no {MANIFEST}", code="BUNDLE_NO_MANIFEST")
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{MANIFEST} is not JSON: {exc}", code="BUNDLE_MANIFEST_INVALID") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{MANIFEST} is not a {BUNDLE_FORMAT} manifest",
                          code="BUNDLE_MANIFEST_INVALID")
    _require(manifest, "business_key", str, MANIFEST)
    for name, item_fields in _ITEM_FIELDS.items():
        items = _require(manifest, name, list, MANIFEST)
        for number, item in enumerate(items):
            where = f"{MANIFEST} {name}[{number}]"
            if not isinstance(item, dict):
                raise BundleError(f"{where} is not an object", code="BUNDLE_MANIFEST_INVALID")
            for key, kind in item_fields.items():
                _require(item, key, kind, where)
    for number, record in enumerate(manifest["records"]):
        if record["proof"] is not None:
            where = f"{MANIFEST} records[{number}].proof"
            for key, kind in (("leaf_index", int), ("leaf_count", int), ("path", list)):
                _require(record["proof"], key, kind, where)
    return manifest


_ITEM_FIELDS: dict[str, dict[str, Any]] = {
    "records": {"name": str, "hash": str, "record": str, "entry": str,
                "seal": (str, type(None)), "proof": (dict, type(None))},
    "seals": {"name": str, "seal": str, "body": str, "signature": str},
    "documents": {"event_id": str},
    "files": {"path": str, "sm3": str},
}


def _require(item: Mapping[str, Any], key: str, kind: Any, where: str) -> Any:
    value = item.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"{where}: '{key}' is missing or of the wrong type",
                          code="BUNDLE_MANIFEST_INVALID")
    return value


@dataclass(frozen=True, slots=True, eq=False)
class _CheckedSeal:
    body: dict[str, Any]
    verified: bool


@dataclass(slots=True)
class _Checker:
    files: Mapping[str, bytes]
    codec: TrailCodec
    keyring: Keyring | None
    failures: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keys: dict[str, SM2PublicKey | None] = field(default_factory=dict)
    sender_signatures: int = 0

    def fail(self, file: str, problem: str, code: str | None = None) -> None:
        finding = Finding(file, problem, code)
        if finding not in self.failures:  # a bad key is found once per seal using it
            self.failures.append(finding)

    def file(self, path: str, what: str) -> bytes | None:
        data = self.files.get(path)
        if data is None:
            self.fail(path, f"missing ({what})")
        return data

    def check(self, manifest: dict[str, Any], source: str) -> BundleReport:
        if not manifest["records"]:
            self.fail(MANIFEST, "the bundle holds no trail record: it proves nothing")
        self.check_listed_files(manifest["files"])
        seals = {item["name"]: self.check_seal(item) for item in manifest["seals"]}
        entries: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for item in manifest["records"]:
            entry = self.check_record(item, seals)
            if entry is not None:
                entries.setdefault(entry["event_id"], []).append((item["name"], entry))
        listed_events = [d["event_id"] for d in manifest["documents"]]
        for event_id in dict.fromkeys([*listed_events, *entries]):
            self.check_document(event_id, entries.get(event_id, []))
        return BundleReport(
            source=source,
            business_key=manifest["business_key"],
            records=len(manifest["records"]),
            seals=len(manifest["seals"]),
            documents=len(dict.fromkeys([*listed_events, *entries])),
            sender_signatures=self.sender_signatures,
            keys=sum(1 for key in self.keys.values() if key is not None),
            keyring_checked=self.keyring is not None,
            failures=tuple(self.failures),
            notes=tuple(self.notes),
        )

    def check_listed_files(self, listed: list[dict[str, Any]]) -> None:
        """Only that they are there: the manifest is not signed, so its SM3s prove nothing
        and every file that matters is checked against what the records and seals say."""
        for item in listed:
            self.file(item["path"], f"listed in {MANIFEST}")

    # keys

    def bundled_key(self, key_id: str) -> SM2PublicKey | None:
        """The bundled key with that id, loaded once; None with the failure recorded."""
        if key_id not in self.keys:
            self.keys[key_id] = self.load_key(key_id, key_path(key_id))
        return self.keys[key_id]

    def seal_key(self, seal_file: str, name: str, key_id: str, at: datetime
                 ) -> SM2PublicKey | None:
        """The bundled key of a seal; with a keyring, also one of the gateway's sealing keys
        valid at `at`, else None with the refusal recorded against the seal."""
        key = self.bundled_key(key_id)
        if key is None or self.keyring is None:
            return key
        try:
            self.keyring.sealing_key(key_id, at)
        except CryptoError as exc:
            self.fail(seal_file, f"seal {name}: {exc.message}", exc.code)
            return None
        return key

    def sender_key(self, key_id: str, at: datetime, agency: str) -> SM2PublicKey | None:
        """The bundled key of a sender; with a keyring, also the sender's own key for
        documents, valid at `at`, else None with the failure recorded."""
        path = key_path(key_id)
        key = self.bundled_key(key_id)
        if key is None or self.keyring is None:
            return key
        try:
            entry = self.keyring.by_key_id(key_id)
        except CryptoError:
            self.fail(path, f"key {key_id} is not in the keyring")
            return None
        if entry.agency_id != agency:
            self.fail(path, f"the keyring has key {key_id} for {entry.agency_id}, not {agency}")
            return None
        if not entry.may(KeyRole.DOCUMENT):
            self.fail(path, f"key {key_id} of {agency} may not sign documents: only an "
                            "agency's document keys (role document) do", KeyRoleRefused.code)
            return None
        invalid = key_valid_at(entry, at)
        if invalid:
            self.fail(path, invalid)
            return None
        return key

    def load_key(self, key_id: str, path: str) -> SM2PublicKey | None:
        pem = self.file(path, f"public key {key_id}")
        if pem is None:
            return None
        try:
            key = SM2PublicKey.from_pem(pem)
        except CryptoError as exc:
            self.fail(path, f"not an SM2 public key: {exc.message}")
            return None
        if key.key_id != key_id:
            self.fail(path, f"holds key {key.key_id} (SM3 of its SPKI DER), not {key_id}")
            return None
        return key

    # seals

    def check_seal(self, item: dict[str, Any]) -> _CheckedSeal | None:
        decoded = self.decode(item["seal"], SEAL_SCHEMA)
        sealed = self.files.get(item["seal"])
        if decoded is None or sealed is None:
            return None
        body = decoded["body"]
        name = f"{body['chain']}-{body['seal_seq']}"
        expected = seal_paths(body["chain"], body["seal_seq"])
        if (item["seal"], item["body"], item["signature"]) != expected or item["name"] != name:
            self.fail(item["seal"], f"holds seal {name}, but {MANIFEST} files it as "
                                    f"{item['name']}")
        body_bytes = self.file(item["body"], f"signed body of seal {name}")
        signature = self.file(item["signature"], f"signature of seal {name}")
        if body_bytes is None or signature is None:
            return _CheckedSeal(body, verified=False)
        consistent = True
        if body_bytes != signed_body(sealed, decoded["signature"]):
            self.fail(item["body"], f"differs from the body of the seal in {item['seal']}")
            consistent = False
        if signature != decoded["signature"]:
            self.fail(item["signature"], f"differs from the signature in {item['seal']}")
            consistent = False
        key = self.seal_key(item["seal"], name, body["key_id"], body["time"])
        if key is None:
            return _CheckedSeal(body, verified=False)
        try:
            key.verify(signature, body_bytes)
        except CryptoError:
            self.fail(item["signature"], f"SM2 signature over {item['body']} does not verify "
                                         f"with key {body['key_id']}", SEAL_SIGNATURE_INVALID)
            return _CheckedSeal(body, verified=False)
        return _CheckedSeal(body, verified=consistent)

    # records

    def check_record(
        self, item: dict[str, Any], seals: Mapping[str, _CheckedSeal | None]
    ) -> dict[str, Any] | None:
        decoded = self.decode(item["record"], RECORD_SCHEMA)
        written = self.files.get(item["record"])
        entry_file = self.file(item["entry"], "the record's entry")
        if decoded is None or written is None or entry_file is None:
            return None
        entry: dict[str, Any] = decoded["entry"]
        name = f"{entry['chain']}-{entry['seq']}"
        if (item["record"], item["entry"]) != record_paths(entry["chain"], entry["seq"]):
            self.fail(item["record"], f"holds record {name}, but {MANIFEST} files it as "
                                      f"{item['name']}")
        digest = sm3_hex(entry_file)
        if entry_file != entry_bytes(written, decoded["hash"]):
            self.fail(item["entry"], f"differs from the entry in {item['record']}")
        if digest != decoded["hash"]:
            self.fail(item["entry"], f"SM3 is {digest}, the record's hash is {decoded['hash']}")
        if item["hash"] != decoded["hash"]:
            self.fail(item["record"], f"hash is {decoded['hash']}, {MANIFEST} lists "
                                      f"{item['hash']}")
        self.check_inclusion(item, entry, digest, seals)
        return entry

    def check_inclusion(
        self,
        item: dict[str, Any],
        entry: dict[str, Any],
        digest: str,
        seals: Mapping[str, _CheckedSeal | None],
    ) -> None:
        where, seal_name, proof = item["entry"], item["seal"], item["proof"]
        if seal_name is None or proof is None:
            self.fail(where, "not covered by any seal in the bundle: its content is not "
                             "authenticated")
            return
        seal = seals.get(seal_name)
        if seal is None:
            self.fail(where, f"its seal {seal_name} is not in the bundle")
            return
        body = seal.body
        first, last = body["first_seq"], body["last_seq"]
        if body["chain"] != entry["chain"] or not first <= entry["seq"] <= last:
            self.fail(where, f"seal {seal_name} covers chain {body['chain']} seq {first}.."
                             f"{last}, not chain {entry['chain']} seq {entry['seq']}")
            return
        index, count = entry["seq"] - first, last - first + 1
        if (proof["leaf_index"], proof["leaf_count"]) != (index, count):
            self.fail(where, f"proof is for leaf {proof['leaf_index']} of "
                             f"{proof['leaf_count']}, the record is leaf {index} of {count}")
            return
        try:
            path = [bytes.fromhex(node) for node in proof["path"]]
            root = bytes.fromhex(body["root"])
        except (TypeError, ValueError):
            self.fail(MANIFEST, f"proof of {item['name']} is not hex")
            return
        leaf = merkle_leaf_hash(bytes.fromhex(digest))
        if not verify_merkle_proof(leaf, index, count, path, root):
            self.fail(where, f"inclusion proof (leaf {index} of {count}) does not lead to the "
                             f"root of seal {seal_name}")
        elif not seal.verified:
            self.fail(where, f"its seal {seal_name} does not verify, so neither does it")

    # documents

    def check_document(self, event_id: str, entries: list[tuple[str, dict[str, Any]]]) -> None:
        if not entries:
            self.fail(document_path(event_id, ""), f"no record in the bundle names event "
                                                   f"{event_id}")
            return
        received = next((e for _, e in entries if e["kind"] == RECEIVED), None)
        accepted = next((e for _, e in entries if e["kind"] == ACCEPTED), None)
        original_path = document_path(event_id, ORIGINAL)
        if received is None:
            self.notes.append(f"event {event_id}: no RECEIVED record, so the original is "
                              "not part of the evidence")
            original = self.files.get(original_path)
        else:
            original = self.file(original_path, "the original named by the RECEIVED record")
        if original is not None:
            self.check_original(original_path, original, entries, received)
        if accepted is not None:
            event_path = document_path(event_id, EVENT)
            event = self.file(event_path, "the canonical event named by the ACCEPTED record")
            if event is not None and sm3_hex(event) != accepted["ref_digest"]:
                self.fail(event_path, f"SM3 is {sm3_hex(event)}, the ACCEPTED record's "
                                      f"ref_digest is {accepted['ref_digest']}")

    def check_original(
        self,
        path: str,
        original: bytes,
        entries: list[tuple[str, dict[str, Any]]],
        received: dict[str, Any] | None,
    ) -> None:
        digest = sm3_hex(original)
        differing: dict[str, list[str]] = {}
        # A TAKEN record's digest_sm3 is the delivered payload's, which its recipient signed.
        entries = [(name, entry) for name, entry in entries if entry["kind"] != TAKEN]
        for name, entry in entries:
            if entry["digest_sm3"] != digest:
                differing.setdefault(entry["digest_sm3"], []).append(name)
        for recorded, names in differing.items():
            self.fail(path, f"SM3 is {digest}, record(s) {', '.join(names)} give digest_sm3 "
                            f"{recorded}")
        if received is not None and received["ref_digest"] != digest:
            self.fail(path, f"SM3 is {digest}, the RECEIVED record's ref_digest is "
                            f"{received['ref_digest']}")
        key_id = next((e["signature_key_id"] for _, e in entries if e["signature_key_id"]), None)
        if key_id is None:
            return
        first = min((e for _, e in entries), key=lambda e: e["time"])
        signature_path = path.rsplit("/", 1)[0] + "/" + SIGNATURE
        signature = self.file(signature_path, f"the signature key {key_id} verified")
        key = self.sender_key(key_id, first["time"], first["sender"])
        if signature is None or key is None:
            return
        try:
            key.verify(signature, original)
        except CryptoError:
            self.fail(signature_path, f"SM2 signature over {path} does not verify with the "
                                      f"sender's key {key_id}")
            return
        self.sender_signatures += 1

    def decode(self, path: str, schema: str) -> dict[str, Any] | None:
        data = self.file(path, schema)
        if data is None:
            return None
        try:
            name, value = self.codec.schemas.decode(data)
        except FormatError as exc:
            self.fail(path, f"cannot be decoded: {exc.message}")
            return None
        if name != schema:
            self.fail(path, f"holds a {name}, not a {schema}")
            return None
        record: dict[str, Any] = value  # a record schema decodes to a dict
        return record


__all__ = [
    "BUNDLE_FORMAT",
    "MAX_BUNDLE_BYTES",
    "Bundle",
    "BundleError",
    "BundleReport",
    "Finding",
    "assemble_bundle",
    "build_bundle",
    "check_bundle",
    "check_bundle_files",
    "digest_command",
    "document_path",
    "export_bundle_kafka",
    "key_path",
    "read_bundle_files",
    "record_paths",
    "referenced_locations",
    "seal_paths",
    "verify_command",
]
