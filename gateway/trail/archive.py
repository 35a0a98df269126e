"""The trail archive: the trail's records and seals in local files, so that the trail outlives a
broker that keeps nothing on disk. Its verification is the auditor's: replay.archive.

Format v1
---------
A directory holds, per chain, the files ``trail-<chain>-<NNNNNNNN>.seg``: the chain's segments,
numbered from 00000000 without gaps. A file is the 8-byte magic ``PXTRAIL1`` followed by
frames, each a 4-byte big-endian unsigned length and that many payload bytes:

1. a ``px.trail.SegmentHeader`` (Avro single-object encoding): chain, segment number,
   ``first_seq`` (seq of the segment's first record), ``prev_hash`` (hash of the record before
   it, 64 zeros when ``first_seq`` is 0) and ``created``; it links the segment to the end of
   the previous one;
2. then sealed batches, one after another: the batch's ``px.trail.TrailRecord`` frames in seq
   order, then its ``px.trail.Seal`` frame, each the exact bytes published on the trail topic.

A batch is written with one write and fsync, so a complete segment always ends with a seal;
a crash can only leave a partial frame or records without their seal at the end of the last
segment, which `ArchiveWriter` cuts off when it opens the chain again. A new segment is
started, before a batch, once the current one holds `max_segment_bytes` or more.

Verification (`verify_archive`) reads the files back and checks what `TrailVerifier` checks
on the broker (sequence, SM3 hashes, links, seal keys, signatures and Merkle roots) plus the
files themselves: segment numbering and header links, framing, and that every record is
covered by the seal that follows it. It does not decode records: a TrailRecord value is
``C3 01``, the schema fingerprint, the entry's Avro binary encoding, then the hash string
(``80 01``, the zig-zag length 64, and 64 ASCII hex digits); the entry's SM3 is computed over
those bytes as they are, and only chain, seq and prev_hash are read from the entry's start.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog

from crypto import sm3
from gateway.clock import utc_now
from gateway.errors import (
    TRAIL_ARCHIVE_BATCH_INVALID,
    TRAIL_ARCHIVE_CLOSED,
    TRAIL_ARCHIVE_CORRUPT,
    TRAIL_ARCHIVE_GAP,
    TRAIL_ARCHIVE_LINK,
    ArchiveError,
    ArchiveIOError,
)
from gateway.trail.writer import (
    GENESIS_HASH,
    PREFIX_SIZE,
    RECORD_SCHEMA,
    SEAL_SCHEMA,
    ChainRecord,
    seal_hash,
)
from message_formats import SINGLE_OBJECT_MAGIC, AvroSchemas, FormatError

log = structlog.get_logger(__name__)

MAGIC = b"PXTRAIL1"
HEADER_SCHEMA = "px.trail.SegmentHeader"
DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024

_LENGTH = struct.Struct(">I")
HASH_MARK = b"\x80\x01"  # Avro string length 64, zig-zag varint
HASH_TAIL = len(HASH_MARK) + 64  # how a TrailRecord value ends: its hash string
GENESIS_TAIL = HASH_MARK + GENESIS_HASH.encode()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_CHAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SEGMENT_NAME = re.compile(r"trail-(?P<chain>[A-Za-z0-9][A-Za-z0-9_.-]*)-(?P<number>\d{8})\.seg")


# -- files --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentFile:
    path: Path
    chain: str
    number: int


def segment_name(chain: str, number: int) -> str:
    return f"trail-{chain}-{number:08d}.seg"


def checkpoint_name(chain: str) -> str:
    """The file holding the chain's latest signed checkpoint (a px.trail.Checkpoint message)."""
    return f"checkpoint-{chain}.avro"


def list_segments(directory: Path) -> dict[str, tuple[SegmentFile, ...]]:
    """The archive's segment files by chain, each chain's in segment order; other files are
    ignored."""
    found: dict[str, list[SegmentFile]] = {}
    for path in directory.iterdir():
        match = _SEGMENT_NAME.fullmatch(path.name)
        if match and path.is_file():
            chain = match["chain"]
            found.setdefault(chain, []).append(SegmentFile(path, chain, int(match["number"])))
    return {chain: tuple(sorted(files, key=lambda s: s.number))
            for chain, files in sorted(found.items())}


def _check_chain_name(chain: str) -> None:
    if not _CHAIN_NAME.fullmatch(chain):
        raise ValueError(f"chain id {chain!r} cannot name an archive file")


# -- framing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a segment; `offset` is where its length prefix starts in the file."""

    segment: SegmentFile
    offset: int
    payload: bytes

    @property
    def where(self) -> str:
        return f"{self.segment.path.name}@{self.offset}"


@dataclass(frozen=True, slots=True)
class FramingProblem:
    """Bytes of a segment that are not frames: a bad magic, or a truncated last frame."""

    segment: SegmentFile
    offset: int
    problem: str

    @property
    def where(self) -> str:
        return f"{self.segment.path.name}@{self.offset}"


@dataclass(frozen=True, slots=True)
class _Framing:
    frames: list[tuple[int, int]]  # (offset of the frame, end of its payload)
    problem: tuple[int, str] | None


def split_frames(data: bytes) -> _Framing:
    if not data.startswith(MAGIC):
        return _Framing([], (0, _magic_problem(data)))
    frames: list[tuple[int, int]] = []
    append, unpack, size, pos = frames.append, _LENGTH.unpack_from, len(data), len(MAGIC)
    while pos < size:
        if pos + 4 > size:
            return _Framing(frames, (pos, f"file truncated: the last {size - pos} byte(s) are "
                                          "not a whole frame length"))
        end = pos + 4 + unpack(data, pos)[0]
        if end > size:
            return _Framing(frames, (pos, f"file truncated: the frame declares {end - pos - 4} "
                                          f"byte(s), the file ends {size - pos - 4} byte(s) on"))
        append((pos, end))
        pos = end
    return _Framing(frames, None)


def _magic_problem(data: bytes) -> str:
    if len(data) < len(MAGIC) and MAGIC.startswith(data):
        return f"file truncated: {len(data)} byte(s), not even the {MAGIC.decode()} magic"
    return f"not a trail archive segment: it starts with {data[:8]!r}, not {MAGIC.decode()}"


def read_archive(directory: Path, chains: Iterable[str] | None = None
                 ) -> Iterator[Frame | FramingProblem]:
    """Every frame of the archive, chain by chain (sorted), each chain's segments in order; a
    FramingProblem where a file's bytes stop being frames (nothing of that file follows)."""
    wanted = None if chains is None else set(chains)
    for chain, segments in list_segments(directory).items():
        if wanted is not None and chain not in wanted:
            continue
        for segment in segments:
            data = segment.path.read_bytes()
            framing = split_frames(data)
            for offset, end in framing.frames:
                yield Frame(segment, offset, data[offset + 4 : end])
            if framing.problem is not None:
                yield FramingProblem(segment, *framing.problem)


def _frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


# -- what the frames are ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordPrefixes:
    """The first 10 bytes each kind of frame may start with: C3 01 and the fingerprint of the
    current schema (first) or of a released version of it (frames written before an
    upgrade), ready for `bytes.startswith`."""

    record: tuple[bytes, ...]
    seal: tuple[bytes, ...]
    header: tuple[bytes, ...]

    @classmethod
    def of(cls, schemas: AvroSchemas) -> Self:
        record, seal, header = (
            tuple(SINGLE_OBJECT_MAGIC + fp for fp in schemas.fingerprints(name))
            for name in (RECORD_SCHEMA, SEAL_SCHEMA, HEADER_SCHEMA))
        return cls(record, seal, header)


@dataclass(frozen=True, slots=True)
class _Head:
    """The fields a TrailEntry starts with."""

    chain: str
    seq: int
    prev_hash: str
    time_ms: int


def _read_long(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    z = shift = 0
    while shift < 70:
        if pos >= limit:
            raise ValueError("the value runs past the entry")
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            return (z >> 1) ^ -(z & 1), pos
        shift += 7
    raise ValueError("a long of more than 10 bytes")


def _read_string(data: bytes, pos: int, limit: int) -> tuple[str, int]:
    size, pos = _read_long(data, pos, limit)
    if not 0 <= size <= limit - pos:
        raise ValueError("a string runs past the entry")
    return data[pos : pos + size].decode(), pos + size


def entry_head(data: bytes, start: int, end: int) -> _Head:
    """chain, seq, prev_hash and time of the TrailRecord value at data[start:end], read by
    hand; ValueError when they are not there."""
    limit = end - HASH_TAIL
    if end - start < PREFIX_SIZE + HASH_TAIL or not data.startswith(HASH_MARK, limit):
        raise ValueError("not a TrailRecord value")
    chain, pos = _read_string(data, start + PREFIX_SIZE, limit)
    seq, pos = _read_long(data, pos, limit)
    prev_hash, pos = _read_string(data, pos, limit)
    time_ms, _ = _read_long(data, pos, limit)
    return _Head(chain, seq, prev_hash, time_ms)


def epoch_ms(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"{at.isoformat()} is naive: the window must be in aware UTC times")
    return (at - _EPOCH) // _MS


def leaf_of(stored_hash: str) -> bytes:
    """The Merkle leaf of a stored hash, as `seal_root` makes it; a stored value that is not a
    hash still gets a leaf (one that matches no root)."""
    try:
        raw = bytes.fromhex(stored_hash) if len(stored_hash) == 64 else stored_hash.encode()
    except ValueError:
        raw = stored_hash.encode()
    return sm3(b"\x00" + raw)


# -- writing ------------------------------------------------------------------------------------




@dataclass(frozen=True, slots=True)
class _End:
    """Where a chain's archive ends: its last segment and the last sealed batch."""

    segment: SegmentFile | None
    size: int
    last_seq: int
    last_hash: str
    last_seal_seq: int
    last_seal_hash: str | None


@dataclass(frozen=True, slots=True)
class _Tail:
    """What the scan of a last segment found: where its last complete batch ends."""

    good_end: int
    last_seq: int
    last_hash: str
    last_seal: tuple[int, str] | None  # seal_seq and seal_hash of the segment's last seal


class ArchiveWriter:
    """Appends one chain's sealed batches to its segment files (the `TrailArchive` a
    `TrailWriter` hands its batches to).

    Blocking file I/O: the gateway calls it from a worker thread, one writer per chain, never
    two at once for a chain. Opening finds where the chain ends and repairs what a crash left
    at the end of the last segment. A failed write leaves nothing of the batch behind and
    raises ArchiveIOError (an OSError), so the same batch can be appended again."""

    def __init__(
        self,
        directory: Path,
        chain: str,
        *,
        max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES,
        schemas: AvroSchemas | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        _check_chain_name(chain)
        if max_segment_bytes <= 0:
            raise ValueError("max_segment_bytes must be positive")
        self.directory = Path(directory)
        self.chain = chain
        self.max_segment_bytes = max_segment_bytes
        self._schemas = schemas or AvroSchemas()
        self._prefixes = RecordPrefixes.of(self._schemas)
        self._clock = clock
        self.directory.mkdir(parents=True, exist_ok=True)
        end = _open_end(self.directory, chain, self._schemas, self._prefixes)
        self._segment = end.segment
        self._size = end.size
        self._last_seq = end.last_seq
        self._last_hash = end.last_hash
        self._last_seal_seq = end.last_seal_seq
        self._last_seal_hash = end.last_seal_hash
        self._fd: int | None = None
        self._closed = False
        if self._segment is not None:
            self._fd = os.open(self._segment.path, os.O_WRONLY | os.O_APPEND)

    @property
    def last_seq(self) -> int:
        """seq of the last archived record; -1 when the chain's archive is empty."""
        return self._last_seq

    @property
    def last_hash(self) -> str:
        return self._last_hash

    @property
    def last_seal_seq(self) -> int:
        return self._last_seal_seq

    @property
    def last_seal_hash(self) -> str | None:
        return self._last_seal_hash

    def keep_checkpoint(self, value: bytes) -> None:
        """Replaces the chain's checkpoint file with `value`, atomically and durably."""
        target = self.directory / checkpoint_name(self.chain)
        temporary = target.with_suffix(".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, value)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, target)
            _fsync_directory(self.directory)
        except OSError as exc:
            raise ArchiveIOError(f"cannot write {target}: {exc}") from exc

    @property
    def segment(self) -> SegmentFile | None:
        """The segment being written; None before the first batch."""
        return self._segment

    def append_batch(self, records: Sequence[ChainRecord], seal_value: bytes) -> None:
        """Appends a sealed batch (its records in seq order, then the seal) durably: one
        write, then fsync."""
        if self._closed:
            raise ArchiveError(f"the archive writer of chain {self.chain} is closed",
                               code=TRAIL_ARCHIVE_CLOSED)
        seal_seq, sealed_hash = self._check_batch(records, seal_value)
        parts: list[bytes] = []
        for record in records:
            parts += (_LENGTH.pack(len(record.value)), record.value)
        parts += (_LENGTH.pack(len(seal_value)), seal_value)
        frames = b"".join(parts)
        if self._fd is None or self._size >= self.max_segment_bytes:
            self._start_segment(records[0].seq, frames)
        else:
            self._append(frames)
        self._last_seq = records[-1].seq
        self._last_hash = records[-1].hash
        self._last_seal_seq, self._last_seal_hash = seal_seq, sealed_hash

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _check_batch(self, records: Sequence[ChainRecord], seal_value: bytes
                     ) -> tuple[int, str]:
        """What is wrong with the batch, raised; else the seal's seal_seq and seal_hash."""
        if not records:
            raise ArchiveError("a batch needs at least one record",
                               code=TRAIL_ARCHIVE_BATCH_INVALID)
        expected, previous = self._last_seq + 1, self._last_hash
        for record in records:
            if record.seq != expected:
                raise ArchiveError(
                    f"chain {self.chain}: record seq {record.seq} where seq {expected} must come "
                    f"next (the archive ends at seq {self._last_seq})", code=TRAIL_ARCHIVE_GAP)
            head = self._record_head(record)
            if head.prev_hash != previous:
                raise ArchiveError(
                    f"chain {self.chain}: record seq {record.seq} has prev_hash "
                    f"{head.prev_hash[:16]}…, not the hash of seq {expected - 1} "
                    f"({previous[:16]}…)", code=TRAIL_ARCHIVE_LINK)
            expected, previous = expected + 1, record.hash
        return self._check_seal(records[0].seq, records[-1].seq, seal_value)

    def _record_head(self, record: ChainRecord) -> _Head:
        value = record.value
        problem = None
        if not value.startswith(self._prefixes.record):
            problem = "its value is not a px.trail.TrailRecord"
        elif not value.endswith(HASH_MARK + record.hash.encode()) or len(record.hash) != 64:
            problem = f"its value does not end with its hash {record.hash[:16]}…"
        else:
            try:
                head = entry_head(value, 0, len(value))
            except (ValueError, IndexError) as exc:
                problem = f"its entry cannot be read: {exc}"
            else:
                if (head.chain, head.seq) == (self.chain, record.seq):
                    return head
                problem = f"its entry is chain {head.chain} seq {head.seq}"
        raise ArchiveError(f"chain {self.chain}: record seq {record.seq}: {problem}",
                           code=TRAIL_ARCHIVE_BATCH_INVALID)

    def _check_seal(self, first: int, last: int, seal_value: bytes) -> tuple[int, str]:
        try:
            name, seal = self._schemas.decode(seal_value)
        except FormatError as exc:
            raise ArchiveError(f"chain {self.chain}: the seal cannot be decoded: {exc.message}",
                               code=TRAIL_ARCHIVE_BATCH_INVALID) from None
        if name != SEAL_SCHEMA:
            raise ArchiveError(f"chain {self.chain}: a {name} where the seal must be",
                               code=TRAIL_ARCHIVE_BATCH_INVALID)
        body = seal["body"]
        if (body["chain"], body["first_seq"], body["last_seq"]) != (self.chain, first, last):
            raise ArchiveError(
                f"chain {self.chain}: the seal covers chain {body['chain']} seq "
                f"{body['first_seq']}..{body['last_seq']}, the batch is seq {first}..{last}",
                code=TRAIL_ARCHIVE_BATCH_INVALID)
        if body["seal_seq"] != self._last_seal_seq + 1:
            raise ArchiveError(
                f"chain {self.chain}: seal {body['seal_seq']} where seal "
                f"{self._last_seal_seq + 1} must come next", code=TRAIL_ARCHIVE_GAP)
        return int(body["seal_seq"]), seal_hash(seal_value, seal["signature"])

    def _start_segment(self, first_seq: int, frames: bytes) -> None:
        number = 0 if self._segment is None else self._segment.number + 1
        segment = SegmentFile(self.directory / segment_name(self.chain, number), self.chain,
                              number)
        header = self._schemas.encode(HEADER_SCHEMA, {
            "chain": self.chain, "segment": number, "first_seq": first_seq,
            "prev_hash": self._last_hash, "created": self._clock(),
        })
        content = MAGIC + _frame(header) + frames
        try:
            fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise ArchiveIOError(f"cannot create {segment.path}: {exc}") from exc
        try:
            _write_all(fd, content)
            os.fsync(fd)
            _fsync_directory(self.directory)
        except OSError as exc:
            os.close(fd)
            segment.path.unlink(missing_ok=True)
            raise ArchiveIOError(f"cannot write {segment.path}: {exc}") from exc
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._segment, self._size = fd, segment, len(content)
        log.info("trail.archive_segment_started", chain=self.chain, file=segment.path.name,
                 first_seq=first_seq)

    def _append(self, frames: bytes) -> None:
        assert self._fd is not None and self._segment is not None
        try:
            _write_all(self._fd, frames)
            os.fsync(self._fd)
        except OSError as exc:
            # Leave no partial batch behind: the next append must follow a complete one.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise ArchiveIOError(f"cannot write {self._segment.path}: {exc}") from exc
        self._size += len(frames)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_directory(directory: Path) -> None:
    """Makes a new file's directory entry durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_end(directory: Path, chain: str, schemas: AvroSchemas, prefixes: RecordPrefixes) -> _End:
    """Where the chain's archive ends, after cutting off what a crash left at its end."""
    segments = list(list_segments(directory).get(chain, ()))
    while segments:
        segment = segments[-1]
        data = segment.path.read_bytes()
        tail = _scan_last_segment(segment, data, schemas, prefixes)
        if tail is None:  # the crash came while the segment was being created
            segment.path.unlink()
            _fsync_directory(directory)
            log.warning("trail.archive_repaired", chain=chain, file=segment.path.name,
                        bytes_cut=len(data), removed=True)
            segments.pop()
            continue
        if tail.good_end < len(data):
            with segment.path.open("r+b") as file:
                file.truncate(tail.good_end)
                os.fsync(file.fileno())
            log.warning("trail.archive_repaired", chain=chain, file=segment.path.name,
                        bytes_cut=len(data) - tail.good_end)
        last_seal = tail.last_seal or _last_seal(segments[:-1], schemas, prefixes)
        seal_seq, sealed_hash = last_seal or (-1, None)
        return _End(segment, tail.good_end, tail.last_seq, tail.last_hash, seal_seq, sealed_hash)
    return _End(None, 0, -1, GENESIS_HASH, -1, None)


def _scan_last_segment(
    segment: SegmentFile, data: bytes, schemas: AvroSchemas, prefixes: RecordPrefixes
) -> _Tail | None:
    """The end of the segment's last complete batch; None when not even its header is whole.
    Anything but a partial frame or unsealed records at the end is not a crash's doing, and
    is left for the auditor: ArchiveError."""
    framing = split_frames(data)
    if framing.problem is not None and framing.problem[0] == 0:
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            return None
        raise _corrupt(segment, 0, framing.problem[1])
    if not framing.frames:
        return None
    offset, end = framing.frames[0]
    header = _decode_as(schemas, data[offset + 4 : end], HEADER_SCHEMA)
    if header is None or (header["chain"], header["segment"]) != (segment.chain, segment.number):
        raise _corrupt(segment, offset, "the segment does not start with its own header")
    good_end, last_seq, last_hash = end, header["first_seq"] - 1, header["prev_hash"]
    last_seal: tuple[int, str] | None = None
    last_record: tuple[int, int] | None = None
    for offset, end in framing.frames[1:]:
        if data.startswith(prefixes.record, offset + 4):
            last_record = (offset, end)
            continue
        seal = _decode_as(schemas, data[offset + 4 : end], SEAL_SCHEMA)
        if seal is None or last_record is None:
            raise _corrupt(segment, offset, "neither a trail record nor the seal of a batch")
        try:
            last_seq = entry_head(data, last_record[0] + 4, last_record[1]).seq
        except (ValueError, IndexError):
            raise _corrupt(segment, last_record[0], "an unreadable trail record") from None
        last_hash = data[last_record[1] - 64 : last_record[1]].decode("ascii", "replace")
        last_seal = (seal["body"]["seal_seq"], seal_hash(data[offset + 4 : end],
                                                         seal["signature"]))
        good_end, last_record = end, None
    return _Tail(good_end, last_seq, last_hash, last_seal)


def _last_seal(segments: Sequence[SegmentFile], schemas: AvroSchemas,
               prefixes: RecordPrefixes) -> tuple[int, str] | None:
    for segment in reversed(segments):
        data = segment.path.read_bytes()
        for offset, end in reversed(split_frames(data).frames):
            if data.startswith(prefixes.seal, offset + 4):
                seal = _decode_as(schemas, data[offset + 4 : end], SEAL_SCHEMA)
                if seal is not None:
                    return int(seal["body"]["seal_seq"]), seal_hash(data[offset + 4 : end],
                                                                    seal["signature"])
    return None


def _decode_as(schemas: AvroSchemas, payload: bytes, expected: str) -> Any:
    try:
        name, value = schemas.decode(payload)
    except FormatError:
        return None
    return value if name == expected else None


def _corrupt(segment: SegmentFile, offset: int, problem: str) -> ArchiveError:
    return ArchiveError(f"{segment.path.name}@{offset}: {problem}; not repaired, run the "
                        "archive verification", code=TRAIL_ARCHIVE_CORRUPT)


# -- verification -------------------------------------------------------------------------------
