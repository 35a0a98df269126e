"""The trail archive: segment files written by ArchiveWriter, and the verification that must
name every kind of tampering precisely (file, byte offset, chain, seq, what).

Trails are made by the real TrailWriter (the broker replaced by a stand-in, the sealed batches
taken from its archive hook, as the gateway hands them to ArchiveWriter),
with real SM3 hashes and SM2 seals; archives are real files in tmp_path.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from crypto import KeyEntry, Keyring, SM2PrivateKey, sm3_hex
from gateway.cli.main import main
from gateway.errors import (
    TRAIL_ARCHIVE_BATCH_INVALID,
    TRAIL_ARCHIVE_CLOSED,
    TRAIL_ARCHIVE_CORRUPT,
    TRAIL_ARCHIVE_GAP,
    TRAIL_ARCHIVE_LINK,
    ArchiveError,
)
from gateway.home.config import TrailSettings
from gateway.kafka.names import Topics
from gateway.trail.archive import (
    HEADER_SCHEMA,
    MAGIC,
    ArchiveWriter,
    Frame,
    FramingProblem,
    list_segments,
    read_archive,
    segment_name,
)
from gateway.trail.writer import (
    GENESIS_HASH,
    ChainRecord,
    TrailArchive,
    TrailCodec,
    TrailWriter,
    seal_hash,
    seal_root,
)
from replay.archive import verify_archive
from replay.container import write_archive_container
from replay.verify import Break, VerifyReport
from tests.built_in_schemas import built_in_schemas
from tests.unit.trail_support import MemoryTopic

TOPICS = Topics()  # the production names, no prefix
SCHEMAS = built_in_schemas()
CODEC = TrailCodec(SCHEMAS)
GATEWAY_KEY = SM2PrivateKey.generate()
KEY_ID = GATEWAY_KEY.public_key().key_id
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 3, 21, 8, 0, tzinfo=UTC)
SEG0 = segment_name("p0", 0)

Batch = tuple[list[ChainRecord], bytes]


class Collected:
    """The TrailWriter's archive kept in memory: the sealed batches it was handed."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.checkpoint: bytes | None = None

    @property
    def last_seq(self) -> int:
        return self.batches[-1][0][-1].seq if self.batches else -1

    @property
    def last_hash(self) -> str:
        return self.batches[-1][0][-1].hash if self.batches else GENESIS_HASH

    @property
    def last_seal_seq(self) -> int:
        return len(self.batches) - 1

    @property
    def last_seal_hash(self) -> str | None:
        if not self.batches:
            return None
        value = self.batches[-1][1]
        return seal_hash(value, SCHEMAS.decode(value)[1]["signature"])

    def append_batch(self, records: Sequence[ChainRecord], seal_value: bytes) -> None:
        self.batches.append((list(records), seal_value))

    def keep_checkpoint(self, value: bytes) -> None:
        self.checkpoint = value


def run_trail(records: int, archive: TrailArchive, *, seal_every: int = 4,
              key: SM2PrivateKey = GATEWAY_KEY, partition: int = 0,
              sender: str = "cn.port.sh") -> None:
    """A chain as the gateway writes it, record n made at T0 + n minutes."""
    writer = TrailWriter(topics=TOPICS, producer=MemoryTopic(), codec=CODEC, key=key,
                         partition=partition, settings=TrailSettings(seal_every=seal_every),
                         archive=archive)

    async def run() -> None:
        for n in range(records):
            await writer.append(kind="ACCEPTED", submission_id=f"s{n}", event_id=f"e{n}",
                                sender=sender, format_id="fal1-xml",
                                digest_sm3="ab" * 32, reason="test",
                                time=T0 + timedelta(minutes=n))
        await writer.seal()

    asyncio.run(run())


def trail(records: int, **kwargs: Any) -> list[Batch]:
    """The chain's sealed batches, as the TrailWriter hands them to its archive."""
    collected = Collected()
    run_trail(records, collected, **kwargs)
    return collected.batches


def write(directory: Path, batches: list[Batch], *, chain: str = "p0",
          max_segment_bytes: int = 1 << 20) -> None:
    """Writes the batches; a segment's `created` is 30 s before the first record it holds."""
    def clock() -> datetime:
        return T0 + timedelta(minutes=writer.last_seq + 1, seconds=-30)

    with ArchiveWriter(directory, chain, max_segment_bytes=max_segment_bytes,
                       schemas=SCHEMAS, clock=clock) as writer:
        for records, seal in batches:
            writer.append_batch(records, seal)


def archive(directory: Path, records: int = 12, **kwargs: Any) -> list[Batch]:
    batches = trail(records)
    write(directory, batches, **kwargs)
    return batches


def keyring(*extra: KeyEntry) -> Keyring:
    return Keyring([KeyEntry("px.gateway", GATEWAY_KEY.public_key(), valid_from=EPOCH), *extra])


def verify(directory: Path, ring: Keyring | None = None, **window: datetime) -> VerifyReport:
    return verify_archive(directory, SCHEMAS, ring or keyring(), **window)


def payloads(path: Path) -> list[bytes]:
    """The frames of a segment file, header first."""
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    out, pos = [], len(MAGIC)
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        out.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out


def store(path: Path, frames: list[bytes]) -> None:
    path.write_bytes(MAGIC + b"".join(len(p).to_bytes(4, "big") + p for p in frames))


def at(frames: list[bytes], index: int, file: str = SEG0) -> str:
    """Where frame `index` of a segment file holding `frames` is: `file@offset`."""
    return f"{file}@{len(MAGIC) + sum(4 + len(p) for p in frames[:index])}"


def rewrite(value: bytes, change: Any) -> bytes:
    name, decoded = SCHEMAS.decode(value)
    change(decoded)
    return SCHEMAS.encode(name, decoded)


def hash_of(value: bytes) -> str:
    return str(SCHEMAS.decode(value)[1]["hash"])


def body_of(value: bytes) -> dict[str, Any]:
    return dict(SCHEMAS.decode(value)[1]["body"])


def resign(seal: bytes, change: Any, key: SM2PrivateKey = GATEWAY_KEY) -> bytes:
    body = body_of(seal)
    change(body)
    return CODEC.encode_seal(body, key.sign(CODEC.seal_message(body)))


# Frames of the one segment of `archive(tmp_path)`: the header, then per batch of four
# records the records and the seal.
HEADER, R4, R5, R6, R7, S1, R8, S2 = 0, 6, 7, 8, 9, 10, 11, 15


# -- writing and reading back ---------------------------------------------------------------


def test_a_written_archive_verifies_with_every_record_checked_and_sealed(tmp_path: Path) -> None:
    archive(tmp_path, 10)
    report = verify(tmp_path)
    assert report.breaks == ()
    assert (report.records, report.seals, report.chains, report.sealed_records,
            report.references, report.unsealed) == (10, 3, 1, 10, 0, 0)
    assert [p.name for p in tmp_path.iterdir()] == [SEG0]


def test_the_trail_writer_archives_through_the_archive_writer(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, "p0", schemas=SCHEMAS) as writer:
        run_trail(9, writer)
        assert (writer.last_seq, writer.last_seal_seq) == (8, 2)
    report = verify(tmp_path)
    assert report.ok, report.breaks
    assert (report.records, report.seals, report.sealed_records) == (9, 3, 9)


def test_each_chain_has_its_own_segments(tmp_path: Path) -> None:
    write(tmp_path, trail(5), chain="p0")
    write(tmp_path, trail(7, partition=1), chain="p1")
    assert sorted(list_segments(tmp_path)) == ["p0", "p1"]
    report = verify(tmp_path)
    assert report.ok, report.breaks
    assert (report.records, report.seals, report.chains) == (12, 4, 2)


def test_the_file_holds_a_header_then_the_published_bytes_batch_by_batch(tmp_path: Path) -> None:
    batches = archive(tmp_path, 6)
    frames = payloads(tmp_path / SEG0)
    published = [v for records, seal in batches for v in [*(r.value for r in records), seal]]
    assert frames[1:] == published
    name, header = SCHEMAS.decode(frames[0])
    assert name == HEADER_SCHEMA
    assert (header["chain"], header["segment"], header["first_seq"], header["prev_hash"]) == (
        "p0", 0, 0, GENESIS_HASH)


def test_read_archive_locates_every_frame_and_reports_a_truncated_one(tmp_path: Path) -> None:
    archive(tmp_path, 4)
    path = tmp_path / SEG0
    frames = payloads(path)
    path.write_bytes(path.read_bytes()[:-5])
    read = list(read_archive(tmp_path))
    assert [f.payload for f in read if isinstance(f, Frame)] == frames[:-1]
    assert [f"{path.name}@{f.offset}" for f in read if isinstance(f, Frame)] == [
        at(frames, i) for i in range(len(frames) - 1)]
    problem = read[-1]
    assert isinstance(problem, FramingProblem)
    assert problem.where == at(frames, len(frames) - 1)
    assert problem.problem.startswith("file truncated: the frame declares")


def test_segments_rotate_and_link_to_each_other(tmp_path: Path) -> None:
    batches = archive(tmp_path, 12, max_segment_bytes=1)  # every batch starts a segment
    segments = list_segments(tmp_path)["p0"]
    assert [s.number for s in segments] == [0, 1, 2]
    headers = [SCHEMAS.decode(payloads(s.path)[0])[1] for s in segments]
    assert [(h["segment"], h["first_seq"]) for h in headers] == [(0, 0), (1, 4), (2, 8)]
    assert [h["prev_hash"] for h in headers] == [
        GENESIS_HASH, batches[0][0][-1].hash, batches[1][0][-1].hash]
    report = verify(tmp_path)
    assert report.ok, report.breaks
    assert (report.records, report.seals, report.sealed_records) == (12, 3, 12)


def test_a_reopened_writer_continues_where_the_chain_ends(tmp_path: Path) -> None:
    batches = trail(12)
    write(tmp_path, batches[:2], max_segment_bytes=1)
    with ArchiveWriter(tmp_path, "p0", max_segment_bytes=1, schemas=SCHEMAS) as writer:
        assert (writer.last_seq, writer.last_hash, writer.last_seal_seq) == (
            7, batches[1][0][-1].hash, 1)
        writer.append_batch(*batches[2])
    assert verify(tmp_path).ok


def test_an_empty_archive_starts_at_the_genesis(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path / "new", "p0", schemas=SCHEMAS) as writer:
        assert (writer.last_seq, writer.last_hash, writer.last_seal_seq) == (-1, GENESIS_HASH, -1)
        assert writer.segment is None


# -- crash repair -------------------------------------------------------------------------


def test_a_partial_frame_left_by_a_crash_is_cut_off_on_open(tmp_path: Path) -> None:
    batches = trail(12)
    write(tmp_path, batches[:2])
    path = tmp_path / SEG0
    size = path.stat().st_size
    with path.open("ab") as file:  # the crash: half of the next batch's first frame
        file.write(len(batches[2][0][0].value).to_bytes(4, "big") + batches[2][0][0].value[:50])
    with capture_logs() as logs, ArchiveWriter(tmp_path, "p0", schemas=SCHEMAS) as writer:
        assert writer.last_seq == 7
        writer.append_batch(*batches[2])
    assert {"event": "trail.archive_repaired", "chain": "p0", "file": SEG0, "bytes_cut": 54,
            "log_level": "warning"}.items() <= logs[0].items()
    assert path.stat().st_size > size
    assert verify(tmp_path).ok


def test_records_written_without_their_seal_are_cut_off_on_open(tmp_path: Path) -> None:
    batches = trail(12)
    write(tmp_path, batches[:2])
    path = tmp_path / SEG0
    size = path.stat().st_size
    unsealed = b"".join(len(r.value).to_bytes(4, "big") + r.value for r in batches[2][0][:3])
    with path.open("ab") as file:
        file.write(unsealed)
    with capture_logs() as logs, ArchiveWriter(tmp_path, "p0", schemas=SCHEMAS) as writer:
        assert (writer.last_seq, writer.last_hash, writer.last_seal_seq) == (
            7, batches[1][0][-1].hash, 1)
    assert path.stat().st_size == size
    assert [(e["event"], e["file"], e["bytes_cut"]) for e in logs] == [
        ("trail.archive_repaired", SEG0, len(unsealed))]
    assert verify(tmp_path).ok


def test_a_segment_whose_header_was_not_written_whole_is_removed(tmp_path: Path) -> None:
    batches = trail(12)
    write(tmp_path, batches[:2], max_segment_bytes=1)
    half = tmp_path / segment_name("p0", 2)
    half.write_bytes(MAGIC + b"\x00\x00\x00\x40\xc3\x01")
    with capture_logs() as logs, ArchiveWriter(tmp_path, "p0", max_segment_bytes=1,
                                               schemas=SCHEMAS) as writer:
        assert (writer.last_seq, writer.last_seal_seq) == (7, 1)
        assert writer.segment is not None and writer.segment.number == 1
        writer.append_batch(*batches[2])
    assert logs[0]["event"] == "trail.archive_repaired" and logs[0]["bytes_cut"] == 14
    assert verify(tmp_path).ok


def test_a_segment_holding_only_its_header_continues_from_the_header(tmp_path: Path) -> None:
    batches = trail(12)
    write(tmp_path, batches[:2], max_segment_bytes=1)
    second = tmp_path / segment_name("p0", 1)
    store(second, payloads(second)[:1])  # the crash came after the header of segment 1
    with ArchiveWriter(tmp_path, "p0", max_segment_bytes=1 << 20, schemas=SCHEMAS) as writer:
        assert (writer.last_seq, writer.last_hash, writer.last_seal_seq) == (
            3, batches[0][0][-1].hash, 0)
        writer.append_batch(*batches[1])
        writer.append_batch(*batches[2])
    assert [s.number for s in list_segments(tmp_path)["p0"]] == [0, 1]
    assert verify(tmp_path).ok


def test_damage_that_is_not_a_crash_is_left_for_the_auditor(tmp_path: Path) -> None:
    archive(tmp_path, 8)
    path = tmp_path / SEG0
    frames = payloads(path)
    store(path, [*frames[:3], b"not a frame of the trail", *frames[3:]])
    with pytest.raises(ArchiveError) as raised:
        ArchiveWriter(tmp_path, "p0", schemas=SCHEMAS)
    assert raised.value.code == TRAIL_ARCHIVE_CORRUPT
    assert f"{at(frames, 3)}: neither a trail record nor the seal" in raised.value.message


# -- what the writer refuses --------------------------------------------------------------


def test_a_batch_that_leaves_a_gap_is_refused(tmp_path: Path) -> None:
    batches = trail(12)
    write(tmp_path, batches[:1])
    with ArchiveWriter(tmp_path, "p0", schemas=SCHEMAS) as writer, \
            pytest.raises(ArchiveError) as raised:
        writer.append_batch(*batches[2])
    assert raised.value.code == TRAIL_ARCHIVE_GAP
    assert raised.value.message == ("chain p0: record seq 8 where seq 4 must come next "
                                    "(the archive ends at seq 3)")


def test_a_batch_with_a_hole_is_refused(tmp_path: Path) -> None:
    records, seal = trail(4)[0]
    with ArchiveWriter(tmp_path, "p0", schemas=SCHEMAS) as writer, \
            pytest.raises(ArchiveError) as raised:
        writer.append_batch([records[0], records[2], records[3]], seal)
    assert raised.value.code == TRAIL_ARCHIVE_GAP
    assert raised.value.message.startswith("chain p0: record seq 2 where seq 1 must come next")


def test_a_batch_that_does_not_link_is_refused(tmp_path: Path) -> None:
    first = trail(4)
    other = trail(8, sender="cn.port.sz")  # another chain of the same name
    write(tmp_path, first)
    with ArchiveWriter(tmp_path, "p0", schemas=SCHEMAS) as writer, \
            pytest.raises(ArchiveError) as raised:
        writer.append_batch(*other[1])
    assert raised.value.code == TRAIL_ARCHIVE_LINK


def test_a_seal_that_does_not_cover_the_batch_is_refused(tmp_path: Path) -> None:
    batches = trail(8)
    with ArchiveWriter(tmp_path, "p0", schemas=SCHEMAS) as writer, \
            pytest.raises(ArchiveError) as raised:
        writer.append_batch(batches[0][0], batches[1][1])
    assert raised.value.code == TRAIL_ARCHIVE_BATCH_INVALID
    assert "the seal covers chain p0 seq 4..7, the batch is seq 0..3" in raised.value.message


def test_a_closed_writer_writes_nothing(tmp_path: Path) -> None:
    batches = trail(4)
    writer = ArchiveWriter(tmp_path, "p0", schemas=SCHEMAS)
    writer.close()
    with pytest.raises(ArchiveError) as raised:
        writer.append_batch(*batches[0])
    assert raised.value.code == TRAIL_ARCHIVE_CLOSED


# -- tampering: each kind named precisely -------------------------------------------------


def tamper(directory: Path, change: Any, file: str = SEG0) -> list[bytes]:
    """Applies `change` to the frames of a segment file and stores them; returns them."""
    path = directory / file
    frames = payloads(path)
    change(frames)
    store(path, frames)
    return frames


def test_an_altered_record_is_named(tmp_path: Path) -> None:
    batches = archive(tmp_path)
    frames = tamper(tmp_path, lambda f: f.__setitem__(R5, rewrite(
        f[R5], lambda v: v["entry"].__setitem__("sender", "cn.someone.else"))))
    altered = SCHEMAS.decode(frames[R5])[1]
    content = CODEC.entry_hash(altered["entry"])
    stored = batches[1][0][1].hash
    assert verify(tmp_path).breaks == (
        Break(at(frames, R5), f"record altered: stored hash {stored[:16]}…, its content hashes "
                              f"to {content[:16]}…", "p0", 5),
    )


def test_an_altered_record_with_a_recomputed_hash_breaks_the_link_and_the_root(
    tmp_path: Path,
) -> None:
    batches = archive(tmp_path)

    def change(value: dict[str, Any]) -> None:
        value["entry"]["reason"] = "nothing to see"
        value["hash"] = CODEC.entry_hash(value["entry"])

    frames = tamper(tmp_path, lambda f: f.__setitem__(R5, rewrite(f[R5], change)))
    new_hash = hash_of(frames[R5])
    hashes = [r.hash for r in batches[1][0]]
    old_root, new_root = seal_root(hashes), seal_root([hashes[0], new_hash, *hashes[2:]])
    assert verify(tmp_path).breaks == (
        Break(at(frames, R6), f"prev_hash {hashes[1][:16]}… does not link to the hash of seq 5 "
                              f"({new_hash[:16]}…)", "p0", 6),
        Break(at(frames, S1), f"seal 1 (seq 4..7): Merkle root {old_root[:16]}… does not match "
                              f"the records, which give {new_root[:16]}…", "p0"),
    )


def test_a_removed_record_is_reported_missing(tmp_path: Path) -> None:
    archive(tmp_path)
    frames = tamper(tmp_path, lambda f: f.__delitem__(R5))
    assert verify(tmp_path).breaks == (
        Break(at(frames, R5), "records seq 5..5 are missing", "p0", 6),  # where seq 6 now is
        Break(at(frames, S1 - 1), "seal 1 (seq 4..7) covers records that are missing: seq [5]",
              "p0"),
    )


def test_a_duplicated_record_is_reported(tmp_path: Path) -> None:
    archive(tmp_path)
    frames = tamper(tmp_path, lambda f: f.insert(R6, f[R5]))
    assert verify(tmp_path).breaks == (
        Break(at(frames, R6), "seq 5 appears again after seq 5: a record was inserted or "
                              "replayed", "p0", 5),
    )


def test_an_inserted_record_is_reported_with_the_links_and_root_it_breaks(
    tmp_path: Path,
) -> None:
    batches = archive(tmp_path)
    original = batches[1][0][2]  # seq 6

    def forge(value: dict[str, Any]) -> None:
        value["entry"]["reason"] = "forged"
        value["hash"] = CODEC.entry_hash(value["entry"])

    forged = rewrite(original.value, forge)
    frames = tamper(tmp_path, lambda f: f.insert(R6, forged))  # a seq 6 that links to seq 5
    hashes = [r.hash for r in batches[1][0]]
    forged_root = seal_root([*hashes[:2], hash_of(forged), hashes[3]])
    assert verify(tmp_path).breaks == (
        Break(at(frames, R6 + 1), "seq 6 appears again after seq 6: a record was inserted or "
                                  "replayed", "p0", 6),
        Break(at(frames, R7 + 1), f"prev_hash {hashes[2][:16]}… does not link to the hash of "
                                  f"seq 6 ({hash_of(forged)[:16]}…)", "p0", 7),
        Break(at(frames, S1 + 1), f"seal 1 (seq 4..7): Merkle root {seal_root(hashes)[:16]}… "
                                  f"does not match the records, which give "
                                  f"{forged_root[:16]}…", "p0"),
    )


def test_reordered_records_are_reported_as_such(tmp_path: Path) -> None:
    archive(tmp_path)

    def swap(frames: list[bytes]) -> None:
        frames[R5], frames[R6] = frames[R6], frames[R5]

    frames = tamper(tmp_path, swap)
    assert verify(tmp_path).breaks == (
        Break(at(frames, R6), "seq 5 is out of order: it comes after seq 6 (records were "
                              "reordered)", "p0", 5),
    )


def test_a_prev_hash_that_does_not_link_is_named(tmp_path: Path) -> None:
    batches = archive(tmp_path)
    bogus = "12" * 32

    def relink(value: dict[str, Any]) -> None:
        value["entry"]["prev_hash"] = bogus
        value["hash"] = CODEC.entry_hash(value["entry"])

    frames = tamper(tmp_path, lambda f: f.__setitem__(R5, rewrite(f[R5], relink)))
    hashes = [r.hash for r in batches[1][0]]
    new_hash = hash_of(frames[R5])
    breaks = verify(tmp_path).breaks
    assert breaks[:2] == (
        Break(at(frames, R5), f"prev_hash {bogus[:16]}… does not link to the hash of seq 4 "
                              f"({hashes[0][:16]}…)", "p0", 5),
        Break(at(frames, R6), f"prev_hash {hashes[1][:16]}… does not link to the hash of seq 5 "
                              f"({new_hash[:16]}…)", "p0", 6),
    )
    assert [b.where for b in breaks[2:]] == [at(frames, S1)]
    assert "Merkle root" in breaks[2].problem


def test_a_forged_seal_signature_is_named(tmp_path: Path) -> None:
    archive(tmp_path)

    def forge(frames: list[bytes]) -> None:
        frames[S1] = CODEC.encode_seal(body_of(frames[S1]), GATEWAY_KEY.sign(b"something else"))

    frames = tamper(tmp_path, forge)
    assert verify(tmp_path).breaks == (
        Break(at(frames, S1), f"seal 1 (seq 4..7): the SM2 signature does not verify with "
                              f"sealing key {KEY_ID} (px.gateway): a seal's signature must "
                              "cover exactly its body", "p0", code="SEAL_SIGNATURE_INVALID"),
    )


def chain_broken_at(found: Break, where: str, seal: str) -> bool:
    """The break the next seal shows when the one before it was removed or replaced: it
    names another previous seal."""
    return (found.where, found.code) == (where, "TRAIL_SEAL_CHAIN_BROKEN") and \
        found.problem.startswith(f"{seal} names previous seal ") and \
        found.problem.endswith("a seal was removed, reordered or replaced")


def test_a_seal_whose_root_was_changed_no_longer_verifies(tmp_path: Path) -> None:
    archive(tmp_path)
    frames = tamper(tmp_path, lambda f: f.__setitem__(S1, rewrite(
        f[S1], lambda v: v["body"].__setitem__("root", "00" * 32))))
    *breaks, last = verify(tmp_path).breaks
    assert [str(b) for b in breaks] == [
        f"{at(frames, S1)} p0: SEAL_SIGNATURE_INVALID: seal 1 (seq 4..7): the SM2 signature "
        f"does not verify with sealing key {KEY_ID} (px.gateway): a seal's signature must "
        "cover exactly its body"]
    assert chain_broken_at(last, at(frames, S2), "seal 2 (seq 8..11)"), last


def test_a_seal_signed_by_an_unknown_key_is_refused(tmp_path: Path) -> None:
    stranger = SM2PrivateKey.generate()
    write(tmp_path, trail(4, key=stranger))
    frames = payloads(tmp_path / SEG0)
    assert verify(tmp_path).breaks == (
        Break(at(frames, 5), f"seal 0 (seq 0..3): key {stranger.public_key().key_id} is not "
                             "in the keyring: only the gateway's sealing keys (role seal) "
                             "seal; an agency's key never does", "p0", code="SEAL_KEY_UNKNOWN"),
    )


def test_a_seal_signed_by_an_agency_key_is_refused_naming_the_rule(tmp_path: Path) -> None:
    """The agency's key is in the keyring and valid, but it signs documents, never seals."""
    agency = SM2PrivateKey.generate()
    write(tmp_path, trail(8, key=agency))
    ring = keyring(KeyEntry("cn.port.sh", agency.public_key(), valid_from=EPOCH))
    frames = payloads(tmp_path / SEG0)
    rule = (f"key {agency.public_key().key_id} is a key of 'cn.port.sh' with role(s) ack, "
            "document, not seal: only the gateway's sealing keys (role seal) seal; an "
            "agency's key never does")
    report = verify(tmp_path, ring)
    assert report.breaks == (
        Break(at(frames, 5), f"seal 0 (seq 0..3): {rule}", "p0", code="SEAL_KEY_NOT_SEALING"),
        Break(at(frames, 10), f"seal 1 (seq 4..7): {rule}", "p0", code="SEAL_KEY_NOT_SEALING"),
    )
    assert report.sealed_records == 0
    assert str(report.breaks[0]).startswith(f"{at(frames, 5)} p0: SEAL_KEY_NOT_SEALING: seal 0")


def test_a_seal_signed_by_a_revoked_key_is_refused(tmp_path: Path) -> None:
    other = SM2PrivateKey.generate()
    revoked_at = datetime.now(UTC) - timedelta(days=1)
    write(tmp_path, trail(4, key=other))
    ring = keyring(KeyEntry("px.gateway", other.public_key(), valid_from=EPOCH,
                            revoked_at=revoked_at))
    frames = payloads(tmp_path / SEG0)
    sealed_at = body_of(frames[5])["time"]
    assert verify(tmp_path, ring).breaks == (
        Break(at(frames, 5), f"seal 0 (seq 0..3): sealing key {other.public_key().key_id} was "
                             f"revoked at {revoked_at.isoformat()}, not later than the seal's "
                             f"time {sealed_at.isoformat()}: a seal made once its key is "
                             "revoked does not count", "p0", code="SEAL_KEY_REVOKED"),
    )


def test_a_seal_made_outside_the_key_validity_is_refused(tmp_path: Path) -> None:
    other = SM2PrivateKey.generate()
    write(tmp_path, trail(4, key=other))
    ring = keyring(KeyEntry("px.gateway", other.public_key(), valid_from=EPOCH,
                            valid_to=EPOCH + timedelta(days=1)))
    frames = payloads(tmp_path / SEG0)
    sealed_at = body_of(frames[5])["time"]
    assert verify(tmp_path, ring).breaks == (
        Break(at(frames, 5), f"seal 0 (seq 0..3): sealing key {other.public_key().key_id} was "
                             f"not valid at {sealed_at.isoformat()}, the seal's time (valid "
                             f"[{EPOCH.isoformat()}, {(EPOCH + timedelta(days=1)).isoformat()})):"
                             " a seal counts only when made inside its key's validity window",
              "p0", code="SEAL_KEY_NOT_VALID"),
    )


def test_a_signed_root_that_does_not_match_the_records_is_named(tmp_path: Path) -> None:
    batches = archive(tmp_path)
    frames = tamper(tmp_path, lambda f: f.__setitem__(S1, resign(
        f[S1], lambda body: body.__setitem__("root", "00" * 32))))
    root = seal_root([r.hash for r in batches[1][0]])
    *breaks, last = verify(tmp_path).breaks
    assert breaks == [
        Break(at(frames, S1), f"seal 1 (seq 4..7): Merkle root {'0' * 16}… does not match the "
                              f"records, which give {root[:16]}…", "p0"),
    ]
    assert chain_broken_at(last, at(frames, S2), "seal 2 (seq 8..11)"), last


def test_a_removed_seal_leaves_its_records_uncovered_and_the_next_seal_out_of_step(
    tmp_path: Path,
) -> None:
    archive(tmp_path)
    frames = tamper(tmp_path, lambda f: f.__delitem__(S1))
    *breaks, last = verify(tmp_path).breaks
    assert breaks == [
        Break(at(frames, R4), "records seq 4..7 are not covered by a seal: seal 2 (seq 8..11) "
                              "follows them", "p0", 4),
        Break(at(frames, S2 - 1), "seal 2 (seq 8..11) does not follow seal 0: its seal_seq "
                                  "should be 1", "p0"),
        Break(at(frames, S2 - 1), "seal 2 (seq 8..11) does not follow the previous seal, which "
                                  "ended at seq 3", "p0"),
    ]
    assert chain_broken_at(last, at(frames, S2 - 1), "seal 2 (seq 8..11)"), last


def test_a_removed_batch_is_reported_missing_and_the_seals_out_of_step(tmp_path: Path) -> None:
    archive(tmp_path)
    frames = tamper(tmp_path, lambda f: f.__delitem__(slice(R4, S1 + 1)))
    *breaks, last = verify(tmp_path).breaks
    assert breaks == [
        Break(at(frames, R4), "records seq 4..7 are missing", "p0", 8),
        Break(at(frames, R4 + 4), "seal 2 (seq 8..11) does not follow seal 0: its seal_seq "
                                  "should be 1", "p0"),
        Break(at(frames, R4 + 4), "seal 2 (seq 8..11) does not follow the previous seal, which "
                                  "ended at seq 3", "p0"),
    ]
    assert chain_broken_at(last, at(frames, R4 + 4), "seal 2 (seq 8..11)"), last


def test_records_at_the_end_without_their_seal_are_reported(tmp_path: Path) -> None:
    archive(tmp_path)
    frames = tamper(tmp_path, lambda f: f.__delitem__(S2))
    report = verify(tmp_path)
    assert report.breaks == (
        Break(at(frames, R8), "records seq 8..11 are not covered by a seal: the segment ends "
                              "without one (truncated, or the seal removed)", "p0", 8),
    )
    assert (report.records, report.sealed_records) == (12, 8)


def test_a_truncated_file_is_reported_where_it_breaks_off(tmp_path: Path) -> None:
    archive(tmp_path)
    path = tmp_path / SEG0
    frames = payloads(path)
    path.write_bytes(path.read_bytes()[:-10])
    declared, left = len(frames[S2]), len(frames[S2]) - 10
    assert verify(tmp_path).breaks == (
        Break(at(frames, R8), "records seq 8..11 are not covered by a seal: the segment ends "
                              "without one (truncated, or the seal removed)", "p0", 8),
        Break(at(frames, S2), f"file truncated: the frame declares {declared} byte(s), the file "
                              f"ends {left} byte(s) on", "p0"),
    )


def test_frames_that_are_not_trail_records_are_named(tmp_path: Path) -> None:
    archive(tmp_path)
    header = payloads(tmp_path / SEG0)[HEADER]
    body = SCHEMAS.encode("px.trail.SealBody", body_of(payloads(tmp_path / SEG0)[S1]))

    def insert(frames: list[bytes]) -> None:
        frames[R4:R4] = [b"not avro at all", body, header]

    frames = tamper(tmp_path, insert)
    assert verify(tmp_path).breaks == (
        Break(at(frames, R4), "cannot be decoded: not an Avro single-object encoding (no C3 01 "
                              "header)", "p0"),
        Break(at(frames, R4 + 1), "a px.trail.SealBody record does not belong in the archive",
              "p0"),
        Break(at(frames, R4 + 2), "a segment header in the middle of a segment", "p0"),
    )


def test_a_record_of_another_chain_is_named(tmp_path: Path) -> None:
    archive(tmp_path)
    stranger = trail(4, partition=1)[0][0][2].value  # chain p1, seq 2
    frames = tamper(tmp_path, lambda f: f.insert(R4, stranger))
    assert verify(tmp_path).breaks == (
        Break(at(frames, R4), "a record of chain p1 among the records of chain p0", "p0", 2),
    )


def test_a_missing_segment_file_is_named(tmp_path: Path) -> None:
    archive(tmp_path, max_segment_bytes=1)
    (tmp_path / segment_name("p0", 1)).unlink()
    report = verify(tmp_path)
    assert report.breaks == (
        Break(f"{segment_name('p0', 2)}@0", f"segment file {segment_name('p0', 1)} is missing",
              "p0"),
    )
    assert report.records == 8


def test_missing_first_segments_are_named(tmp_path: Path) -> None:
    archive(tmp_path, 16, max_segment_bytes=1)
    for n in (0, 1):
        (tmp_path / segment_name("p0", n)).unlink()
    assert verify(tmp_path).breaks == (
        Break(f"{segment_name('p0', 2)}@0", f"segment files {segment_name('p0', 0)}.."
                                            f"{segment_name('p0', 1)} are missing", "p0"),
    )


def test_a_segment_header_that_does_not_link_is_named(tmp_path: Path) -> None:
    batches = archive(tmp_path, max_segment_bytes=1)
    second = segment_name("p0", 1)
    frames = tamper(tmp_path, lambda f: f.__setitem__(HEADER, rewrite(
        f[HEADER], lambda h: h.__setitem__("prev_hash", "34" * 32))), file=second)
    end = batches[0][0][-1].hash
    assert verify(tmp_path).breaks == (
        Break(at(frames, HEADER, second), f"the segment header does not link to the previous "
                                          f"segment: it starts at seq 4 after hash {'34' * 8}…, "
                                          f"the chain so far ends at seq 3 with hash "
                                          f"{end[:16]}…", "p0", 4),
    )


def test_a_segment_with_a_bad_magic_is_named(tmp_path: Path) -> None:
    archive(tmp_path, max_segment_bytes=1)
    path = tmp_path / segment_name("p0", 1)
    path.write_bytes(b"XX" + path.read_bytes()[2:])
    report = verify(tmp_path)
    assert report.breaks == (
        Break(f"{path.name}@0", "not a trail archive segment: it starts with b'XXTRAIL1', not "
                                "PXTRAIL1", "p0"),
    )
    assert report.records == 8


# -- a time window ------------------------------------------------------------------------


def test_a_window_checks_only_the_batches_it_overlaps(tmp_path: Path) -> None:
    archive(tmp_path)
    report = verify(tmp_path, since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=6))
    assert report.ok, report.breaks
    assert (report.records, report.seals, report.sealed_records) == (4, 1, 4)
    assert verify(tmp_path, since=T0 + timedelta(minutes=7)).records == 8
    assert verify(tmp_path, until=T0 + timedelta(minutes=3)).records == 4
    assert verify(tmp_path, since=T0 + timedelta(days=1)).records == 0


def test_a_window_reports_tampering_inside_it_not_outside(tmp_path: Path) -> None:
    archive(tmp_path)
    frames = tamper(tmp_path, lambda f: f.__setitem__(R8, rewrite(
        f[R8], lambda v: v["entry"].__setitem__("sender", "cn.someone.else"))))
    outside = verify(tmp_path, until=T0 + timedelta(minutes=7))
    assert outside.ok and outside.records == 8
    inside = verify(tmp_path, since=T0 + timedelta(minutes=8))
    assert [(b.where, b.seq) for b in inside.breaks] == [(at(frames, R8), 8)]


def test_a_window_links_its_first_record_to_the_stored_hash_before_it(tmp_path: Path) -> None:
    archive(tmp_path)
    bogus = "56" * 32
    frames = tamper(tmp_path, lambda f: f.__setitem__(R7, rewrite(
        f[R7], lambda v: v.__setitem__("hash", bogus))))
    report = verify(tmp_path, since=T0 + timedelta(minutes=8))
    first = SCHEMAS.decode(frames[R8])[1]["entry"]["prev_hash"]
    assert report.breaks == (
        Break(at(frames, R8), f"prev_hash {first[:16]}… does not link to the hash of seq 7 "
                              f"({bogus[:16]}…)", "p0", 8),
    )


def test_a_window_after_pruned_segments_needs_no_earlier_ones(tmp_path: Path) -> None:
    archive(tmp_path, max_segment_bytes=1)
    (tmp_path / segment_name("p0", 0)).unlink()
    created = SCHEMAS.decode(payloads(tmp_path / segment_name("p0", 1))[HEADER])[1]["created"]
    report = verify(tmp_path, since=created)
    assert report.ok, report.breaks
    assert not verify(tmp_path).ok
    assert not verify(tmp_path, since=created - timedelta(seconds=1)).ok


def test_a_window_must_be_in_aware_times(tmp_path: Path) -> None:
    archive(tmp_path, 4)
    with pytest.raises(ValueError, match="naive"):
        verify(tmp_path, since=datetime(2026, 3, 21))


# -- any byte changed anywhere is found ---------------------------------------------------


def _pristine() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as directory:
        write(Path(directory), trail(10, seal_every=4), max_segment_bytes=1500)
        return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir())}


PRISTINE = _pristine()


def _created_bytes(name: str) -> range:
    """Where a segment header's `created` time is (its last field): the one value nothing
    seals, so a change there is not tampering with the trail."""
    data = PRISTINE[name]
    end = 12 + int.from_bytes(data[8:12], "big")
    header = SCHEMAS.decode(data[12:end])[1]
    at_zero = dict(header, created=datetime(1970, 1, 1, tzinfo=UTC))  # a one-byte long
    size = len(SCHEMAS.encode(HEADER_SCHEMA, header)) - len(SCHEMAS.encode(HEADER_SCHEMA, at_zero))
    return range(end - size - 1, end)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_byte_changed_anywhere_is_found(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(PRISTINE)))
    content = PRISTINE[name]
    position = data.draw(st.integers(0, len(content) - 1).filter(
        lambda p: p not in _created_bytes(name)))
    flip = data.draw(st.integers(1, 255))
    directory = Path(tempfile.mkdtemp())
    try:
        for other, raw in PRISTINE.items():
            if other == name:
                raw = raw[:position] + bytes([raw[position] ^ flip]) + raw[position + 1 :]
            (directory / other).write_bytes(raw)
        assert not verify(directory).ok
    finally:
        shutil.rmtree(directory)


def test_the_pristine_archive_of_the_property_verifies() -> None:
    assert len(PRISTINE) > 1
    directory = Path(tempfile.mkdtemp())
    try:
        for name, raw in PRISTINE.items():
            (directory / name).write_bytes(raw)
        assert verify(directory).ok
    finally:
        shutil.rmtree(directory)


def test_the_archive_as_an_avro_container_file(tmp_path: Path) -> None:
    """`replay archive-avro`: every frame in one .avro file a plain fastavro reader reads,
    each record's entry, encoded again, the bytes its SM3 hash covers."""
    batches = archive(tmp_path / "archive", max_segment_bytes=1500)
    assert len(list_segments(tmp_path / "archive")["p0"]) > 1
    with (tmp_path / "trail.avro").open("wb") as out:
        written = write_archive_container(tmp_path / "archive", SCHEMAS, out)
    with (tmp_path / "trail.avro").open("rb") as file:
        reader = fastavro.reader(file, return_record_name=True)
        assert reader.codec == "deflate"
        # With return_record_name, each union value comes as (branch name, record).
        frames = cast(list[tuple[str, dict[str, Any]]], list(reader))
        union = cast(list[dict[str, Any]], fastavro.parse_schema(reader.writer_schema))
        entry_schema = union[1]["fields"][0]["type"]
    assert written == len(frames)
    records = [value for name, value in frames if name == "px.trail.TrailRecord"]
    seals = [value for name, value in frames if name == "px.trail.Seal"]
    headers = [value for name, value in frames if name == HEADER_SCHEMA]
    assert len(headers) == len(list_segments(tmp_path / "archive")["p0"])
    assert [r["entry"]["seq"] for r in records] == [r.seq for rs, _ in batches for r in rs]
    assert [s["body"]["root"] for s in seals] == [
        SCHEMAS.decode(seal)[1]["body"]["root"] for _, seal in batches]
    for record in records:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, entry_schema, record["entry"])
        assert sm3_hex(buffer.getvalue()) == record["hash"]


def test_an_archive_that_does_not_read_makes_no_container(tmp_path: Path) -> None:
    archive(tmp_path)
    (tmp_path / SEG0).write_bytes((tmp_path / SEG0).read_bytes()[:-3])
    with pytest.raises(ArchiveError) as caught:
        write_archive_container(tmp_path, SCHEMAS, io.BytesIO())
    assert caught.value.code == TRAIL_ARCHIVE_CORRUPT and SEG0 in caught.value.message


def test_replay_archive_avro_writes_the_file_or_nothing(tmp_path: Path) -> None:
    archive(tmp_path / "archive")
    out = tmp_path / "trail.avro"
    assert main(["replay", "archive-avro", str(tmp_path / "archive"), "--out", str(out)]) == 0
    with out.open("rb") as file:
        assert len(list(fastavro.reader(file))) == 1 + 12 + 3  # header, records, seals
    (tmp_path / "archive" / SEG0).write_bytes(b"junk")
    assert main(["replay", "archive-avro", str(tmp_path / "archive"), "--out",
                 str(tmp_path / "other.avro")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive", "trail.avro"]
