"""Trail archive verification on one core: 1,000,000 trail records from archive files.

Run: .venv/bin/python bench/replay.py [--records N] [--rebuild] [--tiny]

`--tiny` builds 2,000 records in a directory of its own, removed at the end (no cache):
a check that the bench still runs, not a measurement.

The archive is built first (not timed) and kept in the temp directory, keyed by the record
count, for the next run: four chains as the gateway writes them (one per ingress partition),
each submission an ACCEPTED record and DELIVERED / DENIED / NOTIFIED ones for its recipients,
a few REJECTED, with the fields and message references `gateway.service` puts in them; real
SM3 hashes and links, a real SM2 seal every 256 records of a chain by a freshly generated
gateway key, all written through `ArchiveWriter` into 64 MiB segments.

Timed, pinned to CPU 0, after the files were read once (so the page cache holds them):
`verify_archive` over all of it, in wall-clock and CPU time. References from the same run:
the general `TrailVerifier.check_trail` over the first 20,000 records of a chain (with their
seals) as broker messages, and SM3 alone over the entry bytes of the first 200,000 records,
already in memory (the hashing every record needs, without anything else).
Prints the figures, then one JSON line.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# This file shares its name with the replay package: import the packages, not bench/.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import structlog  # noqa: E402

from crypto import KeyEntry, Keyring, SM2PrivateKey, SM2PublicKey, sm3_hex  # noqa: E402
from crypto.sm3 import new_sm3  # noqa: E402
from gateway.kafka.names import StoredMessage, Topics  # noqa: E402
from gateway.trail.archive import ArchiveWriter, Frame, read_archive  # noqa: E402
from gateway.trail.writer import (  # noqa: E402
    ENTRY_DEFAULTS,
    ENTRY_SCHEMA,
    GENESIS_HASH,
    RECORD_SCHEMA,
    SEAL_SCHEMA,
    ChainRecord,
    TrailCodec,
    seal_root,
)
from message_formats import SINGLE_OBJECT_MAGIC, AvroSchemas  # noqa: E402
from replay import TrailVerifier  # noqa: E402
from replay.archive import verify_archive  # noqa: E402

# The production topic names: the bench runs its own broker.
TOPICS = Topics()
SEED = 20260321
RECORDS = 1_000_000
TINY_RECORDS = 2_000
CHAINS = 4
SEAL_EVERY = 256
REFERENCE_RECORDS = 20_000
SM3_RECORDS = 200_000
START = datetime(2026, 3, 21, 8, 0, tzinfo=UTC)
CACHE_VERSION = 1
CORE = 0

SENDERS = ("cn.port.sh.customs", "cn.port.sz.maritime", "cn.port.nb.agent-07",
           "cn.port.qd.carrier-12", "hk.port.foreign-authority-2", "cn.port.tj.border")
RECIPIENTS = ("cn.port.sh.border", "cn.port.sh.maritime", "cn.port.sz.customs",
              "cn.port.nb.port-operator-3", "cn.port.gz.emergency-1", "cn.port.xm.transport",
              "hk.port.customs-1", "cn.port.dl.public-security-4")
DOCUMENTS = (("fal1", "fal1-xml"), ("fal5", "fal5-xml"), ("fal6", "fal6-json"),
             ("fal7", "fal7-xml"), ("manifest", "manifest-xml"), ("waybill", "waybill-json"))
PURPOSES = ("pre-arrival risk assessment", "berth planning", "crew health screening",
            "dangerous goods supervision", "border clearance", "cargo release")
DENIALS = (("CONTRACT_EXPIRED", "contract expired on 2026-03-01"),
           ("CONTRACT_CONDITION_FALSE", "condition `cargo.dangerous == true` does not hold"),
           ("CROSS_BORDER_NOT_ASSESSED", "no export assessment for personal data abroad"))


@dataclass(frozen=True, slots=True)
class Archive:
    directory: Path
    keyring: Keyring
    records: int
    seals: int
    bytes: int


def entries(rng: random.Random, count: int, chain: str) -> Iterator[dict[str, Any]]:
    """`count` trail entries of one chain, as the gateway fills them, without chain/seq/prev."""
    made, n, at = 0, 0, START
    partition = int(chain[1:])
    while made < count:
        n += 1
        at += timedelta(milliseconds=rng.randint(5, 120))
        document_type, format_id = rng.choice(DOCUMENTS)
        sender = rng.choice(SENDERS)
        base = {
            "submission_id": f"{sender}-2026-{partition}-{n:08d}",
            "event_id": f"0195b3c{rng.getrandbits(36):09x}-7{rng.getrandbits(12):03x}-"
                        f"{rng.getrandbits(16) | 0x8000:04x}-{rng.getrandbits(48):012x}",
            "sender": sender,
            "format_id": format_id,
            "document_type": document_type,
            "business_key": f"IMO9{rng.randrange(100000, 999999)}/2026-03-21/"
                            f"{rng.choice(('ARR', 'DEP'))}",
            "document_version": rng.randint(1, 3),
            "digest_sm3": f"{rng.getrandbits(256):064x}",
            "signature_key_id": f"{rng.getrandbits(256):064x}",
            "time": at,
        }
        for entry in submission(rng, base, document_type, partition):
            yield entry
            made += 1
            if made == count:
                return


def submission(rng: random.Random, base: dict[str, Any], document_type: str, partition: int
               ) -> list[dict[str, Any]]:
    """The trail entries of one submission: rejected now and then, else accepted, delivered
    to some recipients, denied to others, and a status event or two."""
    def ref(topic: str) -> dict[str, Any]:
        return {"ref_topic": topic, "ref_partition": partition,
                "ref_offset": rng.randrange(10_000_000),
                "ref_digest": f"{rng.getrandbits(256):064x}"}

    if rng.random() < 0.03:
        return [{**base, "kind": "REJECTED", "error_code": "SIGNATURE_INVALID",
                 "reason": "SM2 signature does not verify with the sender's key",
                 "document_type": None, "business_key": None, "document_version": None,
                 **ref(TOPICS.dlq)}]
    recipients = rng.sample(RECIPIENTS, rng.randint(1, 4))
    denied = recipients[: rng.randint(0, 1)]
    granted = recipients[len(denied):]
    provider = base["sender"].split(".")[2]
    contracts = {r: (f"c-{provider}-{r.split('.')[-1]}-{rng.randrange(100):04d}",
                     rng.randint(1, 5)) for r in recipients}
    explanation = "; ".join([f"{r} under {contracts[r][0]} v{contracts[r][1]}" for r in granted]
                            + [f"not {r}: {DENIALS[0][1]}" for r in denied]) or "no contract"
    out = [{**base, "kind": "ACCEPTED", "reason": explanation,
            **ref(TOPICS.canonical(document_type))}]
    for recipient in granted:
        contract_id, version = contracts[recipient]
        out.append({**base, "kind": "DELIVERED", "recipient": recipient,
                    "contract_id": contract_id, "contract_version": version,
                    "reason": f"domestic sharing under {contract_id} v{version}: "
                              f"{rng.choice(PURPOSES)}",
                    **ref(TOPICS.delivery(recipient))})
    for recipient in denied:
        code, reason = rng.choice(DENIALS)
        contract_id, version = contracts[recipient]
        out.append({**base, "kind": "DENIED", "recipient": recipient, "error_code": code,
                    "contract_id": contract_id, "contract_version": version, "reason": reason})
    if rng.random() < 0.2:
        out.append({**base, "kind": "NOTIFIED", "recipient": base["sender"],
                    "contract_id": "s-status-accepted", "contract_version": 1,
                    "reason": "status accepted under subscription status updates",
                    **ref(TOPICS.status(base["sender"]))})
    return out


def build(directory: Path, count: int) -> Archive:
    """Writes the archive: real records, links and seals, through ArchiveWriter."""
    schemas = AvroSchemas()
    codec = TrailCodec(schemas)
    key = SM2PrivateKey.generate()
    key_id = key.public_key().key_id
    rng = random.Random(SEED)
    record_prefix = SINGLE_OBJECT_MAGIC + schemas.fingerprint(RECORD_SCHEMA)
    seals = 0
    per_chain = [count // CHAINS + (1 if i < count % CHAINS else 0) for i in range(CHAINS)]
    for partition, chain_records in enumerate(per_chain):
        chain = f"p{partition}"
        previous, batch = GENESIS_HASH, []
        with ArchiveWriter(directory, chain, schemas=schemas) as writer:
            for seq, fields in enumerate(entries(rng, chain_records, chain)):
                entry = {**ENTRY_DEFAULTS, **fields, "chain": chain, "seq": seq,
                         "prev_hash": previous}
                body = schemas.encode_body(ENTRY_SCHEMA, entry)
                record_hash = sm3_hex(body)
                value = record_prefix + body + b"\x80\x01" + record_hash.encode()
                if seq < 3:  # the hand-made value is the codec's, byte for byte
                    assert value == codec.encode_record(entry, record_hash)
                batch.append(ChainRecord(seq, record_hash, value))
                previous = record_hash
                if len(batch) == SEAL_EVERY or seq == chain_records - 1:
                    seal_body = {
                        "chain": chain, "seal_seq": writer.last_seal_seq + 1,
                        "first_seq": batch[0].seq, "last_seq": seq,
                        "root": seal_root([r.hash for r in batch]),
                        "time": fields["time"] + timedelta(milliseconds=3), "key_id": key_id,
                    }
                    signature = key.sign(codec.seal_message(seal_body))
                    writer.append_batch(batch, codec.encode_seal(seal_body, signature))
                    seals += 1
                    batch = []
    (directory / "gateway.pub.pem").write_bytes(key.public_key().to_pem())
    (directory / "complete.json").write_text(json.dumps(
        {"version": CACHE_VERSION, "records": count, "seals": seals}))
    return load(directory)


def load(directory: Path) -> Archive:
    meta = json.loads((directory / "complete.json").read_text())
    public = SM2PublicKey.from_pem((directory / "gateway.pub.pem").read_bytes())
    keyring = Keyring([KeyEntry("px.gateway", public, valid_from=START - timedelta(days=1))])
    size = sum(p.stat().st_size for p in directory.glob("*.seg"))
    return Archive(directory, keyring, meta["records"], meta["seals"], size)


def archive(count: int, rebuild: bool, directory: Path | None = None) -> tuple[Archive, float]:
    """The cached archive of `count` records (built when missing), or a new one in
    `directory`."""
    if directory is None:
        directory = Path(tempfile.gettempdir()) / f"px-bench-replay-{count}"
    else:
        rebuild = True
    marker = directory / "complete.json"
    if not rebuild and marker.exists():
        meta = json.loads(marker.read_text())
        if meta.get("version") == CACHE_VERSION and meta.get("records") == count:
            return load(directory), 0.0
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    started = time.perf_counter()
    built = build(directory, count)
    return built, time.perf_counter() - started


def trail_messages(directory: Path, schemas: AvroSchemas, limit: int) -> list[StoredMessage]:
    """Chain p0's records and seals, as the broker would hold them, up to the first seal after
    `limit` records."""
    record, seal = (SINGLE_OBJECT_MAGIC + schemas.fingerprint(n) for n in (RECORD_SCHEMA,
                                                                           SEAL_SCHEMA))
    messages: list[StoredMessage] = []
    records = 0
    for frame in read_archive(directory, ["p0"]):
        if not isinstance(frame, Frame):
            continue
        is_seal = frame.payload.startswith(seal)
        if not is_seal and not frame.payload.startswith(record):
            continue  # a segment header
        messages.append(StoredMessage(TOPICS.trail, 0, len(messages), b"p0", frame.payload, (), 0))
        records += not is_seal
        if is_seal and records >= limit:
            break
    return messages


def entry_bytes(directory: Path, schemas: AvroSchemas, limit: int) -> list[bytes]:
    """The entry bytes (what a record's hash is over) of the first `limit` records."""
    record = SINGLE_OBJECT_MAGIC + schemas.fingerprint(RECORD_SCHEMA)
    out: list[bytes] = []
    for frame in read_archive(directory):
        if isinstance(frame, Frame) and frame.payload.startswith(record):
            out.append(frame.payload[10:-66])
            if len(out) == limit:
                break
    return out


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    count = int(args[args.index("--records") + 1]) if "--records" in args else RECORDS
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    os.sched_setaffinity(0, {CORE})
    if "--tiny" not in args:
        return measure(*archive(count, "--rebuild" in args))
    scratch = Path(tempfile.mkdtemp(prefix="px-bench-replay-tiny-"))
    try:
        return measure(*archive(TINY_RECORDS, True, scratch / "archive"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(built: Archive, build_s: float) -> int:
    """Times the verification of `built`, and the references, and prints the figures."""
    schemas = AvroSchemas()
    for path in sorted(built.directory.glob("*.seg")):  # into the page cache, not timed
        path.read_bytes()

    started, cpu = time.perf_counter(), time.process_time()
    report = verify_archive(built.directory, schemas, built.keyring)
    verify_s, verify_cpu = time.perf_counter() - started, time.process_time() - cpu
    if not report.ok or report.records != built.records or report.unsealed:
        raise SystemExit(f"bench/replay.py: the archive does not verify: {report}")

    messages = trail_messages(built.directory, schemas, REFERENCE_RECORDS)
    started = time.perf_counter()
    reference, _ = TrailVerifier(schemas, built.keyring).check_trail(messages)
    reference_s = time.perf_counter() - started
    assert reference.ok, reference.breaks[:3]

    bodies = entry_bytes(built.directory, schemas, SM3_RECORDS)
    base = new_sm3()
    started = time.perf_counter()
    for body in bodies:
        hasher = base.copy()
        hasher.update(body)
        hasher.digest()
    sm3_s = time.perf_counter() - started

    rate = report.records / verify_s
    reference_rate = reference.records / reference_s
    sm3_rate = len(bodies) / sm3_s
    print(f"archive              {built.records:,} records, {built.seals:,} seals, "
          f"{CHAINS} chains, {built.bytes / 2**20:,.0f} MiB"
          + (f" (built in {build_s:.1f} s)" if build_s else " (cached)"))
    print(f"pinned to CPU {CORE}")
    print(f"verify_archive       {rate:12,.0f} records/s  ({verify_s:.2f} s wall, "
          f"{verify_cpu:.2f} s CPU)")
    print(f"TrailVerifier        {reference_rate:12,.0f} records/s  "
          f"(check_trail, {reference.records:,} records, {reference.seals} seals)")
    print(f"SM3 alone            {sm3_rate:12,.0f} records/s  "
          f"(entry bytes in memory, {len(bodies):,} records)")
    print(json.dumps({
        "records_per_s": round(rate),
        "records": report.records,
        "seals": report.seals,
        "chains": report.chains,
        "verify_s": round(verify_s, 3),
        "verify_cpu_s": round(verify_cpu, 3),
        "reference_trailverifier_records_per_s": round(reference_rate),
        "sm3_only_records_per_s": round(sm3_rate),
        "archive_mib": round(built.bytes / 2**20, 1),
        "cpu": CORE,
    }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
