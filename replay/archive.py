"""Verification of the trail archive (gateway.trail.archive writes it; its docstring gives the
format): what `TrailVerifier` checks on the broker (sequence, SM3 hashes, links, seal keys,
signatures and Merkle roots) plus the files themselves: segment numbering and header links,
framing, and that every record is covered by the seal that follows it.

It does not decode records: a TrailRecord value is ``C3 01``, the schema fingerprint, the
entry's Avro binary encoding, then the hash string (``80 01``, the zig-zag length 64, and 64
ASCII hex digits); the entry's SM3 is computed over those bytes as they are, and only chain,
seq, prev_hash and time are read from the entry's start.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from crypto import Keyring, merkle_root, sm3, sm3_hex
from crypto.sm3 import new_sm3  # an SM3 already fed a prefix, to copy: not exported by crypto
from gateway.errors import TRAIL_ARCHIVE_NOT_FOUND, TRAIL_SEAL_CHAIN_BROKEN, ArchiveError
from gateway.trail.archive import (
    GENESIS_TAIL,
    HASH_MARK,
    HASH_TAIL,
    MAGIC,
    RecordPrefixes,
    SegmentFile,
    entry_head,
    epoch_ms,
    leaf_of,
    list_segments,
    segment_name,
    split_frames,
)
from gateway.trail.writer import PREFIX_SIZE, avro_string, entry_bytes, seal_hash, signed_body
from message_formats import AvroSchemas, FormatError
from replay.verify import Break, SealChain, VerifyReport, seal_signature_problem

log = structlog.get_logger(__name__)



@dataclass(frozen=True, slots=True)
class _Context:
    schemas: AvroSchemas
    keyring: Keyring
    prefixes: RecordPrefixes
    since_ms: int | None
    until_ms: int | None

    @property
    def windowed(self) -> bool:
        return self.since_ms is not None or self.until_ms is not None


@dataclass(frozen=True, slots=True)
class _Record:
    """A record read the slow way: when something about it is not as the writer makes it."""

    chain: str
    seq: int
    prev_hash: str
    stored_hash: str
    content_hash: str


@dataclass(slots=True)
class _Gap:
    """Records missing where a later seq came; reported at the chain's end unless they turn
    up further on (then they were reordered, not removed)."""

    first: int
    last: int
    key: tuple[int, int]
    where: str
    seq: int


@dataclass(slots=True)
class _Run:
    """The checked records of one batch: leaf hashes in seq order from `first` while the
    records came as written, then by seq with their offsets once one did not."""

    batch: list[tuple[int, int]]
    first: int
    leaves: list[bytes] = field(default_factory=list)
    by_seq: dict[int, tuple[bytes, int]] | None = None

    def located(self) -> dict[int, tuple[bytes, int]]:
        if self.by_seq is None:
            self.by_seq = {self.first + i: (leaf, self.batch[i][0])
                           for i, leaf in enumerate(self.leaves)}
        return self.by_seq

    def regular_for(self, first: int, last: int) -> bool:
        return self.by_seq is None and self.first == first and len(self.leaves) == last - first + 1


class _ChainCheck:
    """Checks one chain's segments, in order, batch by batch."""

    def __init__(self, chain: str, ctx: _Context) -> None:
        self.chain = chain
        self.ctx = ctx
        self.records = self.seals = self.sealed = 0
        self._found: list[tuple[tuple[int, int], Break]] = []
        self._gaps: list[_Gap] = []
        self._next_seq = 0
        self._prev_tail = GENESIS_TAIL  # how the previous hash ends a record, and starts prev_hash
        self._next_seal_seq: int | None = 0
        self._next_first: int | None = 0
        self._resync = False  # the chain's position is unknown: take it from what comes next
        self._record_lead = ctx.prefixes.record[0] + avro_string(chain)
        self._entry_sm3 = new_sm3()
        self._leaf_sm3 = new_sm3(b"\x00")
        self._segment = SegmentFile(Path(), chain, -1)
        self._index = 0
        self.seal_chain = SealChain()

    def breaks(self) -> list[Break]:
        for gap in self._gaps:
            self._found.append((gap.key, Break(gap.where, f"records seq {gap.first}..{gap.last} "
                                                          "are missing", self.chain, gap.seq)))
        self._gaps = []
        return [b for _, b in sorted(self._found, key=lambda found: found[0])]

    def segment(self, index: int, segment: SegmentFile, data: bytes, expected_number: int) -> None:
        self._index, self._segment = index, segment
        framing = split_frames(data)
        frames = framing.frames
        if frames and data.startswith(self.ctx.prefixes.header, frames[0][0] + 4):
            self._header(frames[0], data, expected_number)
            frames = frames[1:]
        else:
            self._missing_segments(expected_number, None)
            if frames:
                self._add(frames[0][0], "the segment does not start with a segment header")
            elif framing.problem is None:
                self._add(len(MAGIC), "the segment is empty: not even a segment header")
        self._batches(data, frames)
        if framing.problem is not None:
            self._add(*framing.problem)
            self._resync = True

    # -- segments --

    def _header(self, frame: tuple[int, int], data: bytes, expected_number: int) -> None:
        offset, end = frame
        try:
            _, header = self.ctx.schemas.decode(data[offset + 4 : end])
        except FormatError as exc:
            self._missing_segments(expected_number, None)
            self._add(offset, f"the segment header cannot be decoded: {exc.message}")
            return
        first, prev_hash = header["first_seq"], header["prev_hash"]
        if (header["chain"], header["segment"]) != (self.chain, self._segment.number):
            self._add(offset, f"the segment header names chain {header['chain']} segment "
                              f"{header['segment']}, not the file's", seq=first)
        self._missing_segments(expected_number, header["created"])
        if self._resync:
            self._restart(first, prev_hash)
        elif (first, prev_hash) != (self._next_seq, self._prev_hash):
            self._add(offset, f"the segment header does not link to the previous segment: it "
                              f"starts at seq {first} after hash {prev_hash[:16]}…, the chain "
                              f"so far ends at seq {self._next_seq - 1} with hash "
                              f"{self._prev_hash[:16]}…", seq=first)

    def _missing_segments(self, expected_number: int, created: datetime | None) -> None:
        number = self._segment.number
        if number == expected_number:
            return
        self._resync = True
        if expected_number == 0 and self._pruned_before(created):
            return
        missing = [segment_name(self.chain, n) for n in (expected_number, number - 1)]
        what = (f"segment file {missing[0]} is missing" if missing[0] == missing[1]
                else f"segment files {missing[0]}..{missing[1]} are missing")
        self._add(0, what)

    def _pruned_before(self, created: datetime | None) -> bool:
        """Leading segments may be gone (retention) when the window starts after the first
        segment left was begun: every record of the earlier ones is older."""
        since = self.ctx.since_ms
        return since is not None and created is not None and epoch_ms(created) <= since

    def _restart(self, first: int, prev_hash: str) -> None:
        self._next_seq, self._prev_tail = first, HASH_MARK + prev_hash.encode()
        self._next_first, self._next_seal_seq = first, None
        self._resync = False
        self.seal_chain.forget()

    @property
    def _prev_hash(self) -> str:
        return self._prev_tail[len(HASH_MARK):].decode("ascii", "replace")

    # -- batches --

    def _batches(self, data: bytes, frames: list[tuple[int, int]]) -> None:
        prefixes, lead = self.ctx.prefixes, self._record_lead
        batch: list[tuple[int, int]] = []
        for frame in frames:
            start = frame[0] + 4
            if data.startswith(lead, start) or data.startswith(prefixes.record, start):
                batch.append(frame)
            elif data.startswith(prefixes.seal, start):
                self._batch(data, batch, frame)
                batch = []
            else:
                self._foreign(data, frame)
        if batch:
            self._batch(data, batch, None)

    def _batch(self, data: bytes, batch: list[tuple[int, int]], seal: tuple[int, int] | None
               ) -> None:
        body, signature = self._seal_value(data, seal) if seal is not None else (None, b"")
        if self.ctx.windowed and not self._in_window(data, batch):
            self._skip(data, batch, body)
            if body is not None and seal is not None:
                self.seal_chain.follow(body, seal_hash(data[seal[0] + 4 : seal[1]], signature))
            return
        if self._resync and batch:
            self._restart_at(data, batch[0])
        run = self._records(data, batch)
        if seal is None:
            self._unsealed(run, "the segment ends without one (truncated, or the seal removed)")
        elif body is None:
            self._next_seal_seq = None
            self._next_first = self._next_seq
            self.seal_chain.forget()
        else:
            self._seal(data[seal[0] + 4 : seal[1]], seal[0], body, signature, run)

    def _seal_value(self, data: bytes, seal: tuple[int, int]) -> tuple[Any, bytes]:
        offset, end = seal
        try:
            _, value = self.ctx.schemas.decode(data[offset + 4 : end])
        except FormatError as exc:
            self._add(offset, f"a seal that cannot be decoded: {exc.message}")
            return None, b""
        body = value["body"]
        if body["chain"] != self.chain:
            self._add(offset, f"seal {body['seal_seq']} of chain {body['chain']} among the "
                              f"records of chain {self.chain}")
            return None, b""
        return body, value["signature"]

    def _in_window(self, data: bytes, batch: list[tuple[int, int]]) -> bool:
        since, until = self.ctx.since_ms, self.ctx.until_ms
        for offset, end in batch:
            try:
                time_ms = entry_head(data, offset + 4, end).time_ms
            except (ValueError, IndexError):
                return True  # cannot tell: check it
            if (since is None or time_ms >= since) and (until is None or time_ms <= until):
                return True
        return False

    def _skip(self, data: bytes, batch: list[tuple[int, int]], body: Any) -> None:
        """A batch outside the window: only where the chain stands after it."""
        if batch:
            offset, end = batch[-1]
            try:
                head = entry_head(data, offset + 4, end)
            except (ValueError, IndexError):
                self._resync = True
            else:
                self._next_seq, self._prev_tail = head.seq + 1, data[end - HASH_TAIL : end]
                self._resync = False
        if body is not None:
            self._next_seal_seq, self._next_first = body["seal_seq"] + 1, body["last_seq"] + 1

    def _restart_at(self, data: bytes, frame: tuple[int, int]) -> None:
        try:
            head = entry_head(data, frame[0] + 4, frame[1])
        except (ValueError, IndexError):
            return
        self._restart(head.seq, head.prev_hash)

    # -- records --

    def _records(self, data: bytes, batch: list[tuple[int, int]]) -> _Run:
        self.records += len(batch)
        run = _Run(batch, self._next_seq)
        done = self._regular_records(data, run)
        if done < len(batch):
            located = run.located()
            for frame in batch[done:]:
                self._irregular_record(data, frame, located)
        return run

    def _regular_records(self, data: bytes, run: _Run) -> int:
        """The hot path: checks records while they are exactly as the writer makes them and
        returns how many were; the first that is not goes to the slow path with the rest."""
        lead, skip = self._record_lead, len(self._record_lead)
        shortest = skip + 10 + HASH_TAIL + 10 + HASH_TAIL  # seq, prev_hash, time, hash
        entry_sm3, leaf_sm3 = self._entry_sm3.copy, self._leaf_sm3.copy
        append = run.leaves.append
        mark, tail_size = HASH_MARK, HASH_TAIL
        expected, prev_tail = self._next_seq, self._prev_tail
        zigzag = expected << 1  # how Avro writes a seq, never negative here, before the varint
        view = memoryview(data)
        done = 0
        for offset, end in run.batch:
            start = offset + 4
            if end - start < shortest or not data.startswith(lead, start):
                break
            pos = start + skip
            b = data[pos]
            z, shift = b & 0x7F, 7
            pos += 1
            while b >= 0x80 and shift < 70:
                b = data[pos]
                z |= (b & 0x7F) << shift
                shift += 7
                pos += 1
            tail = end - tail_size
            if (z != zigzag or not data.startswith(prev_tail, pos)
                    or not data.startswith(mark, tail)):
                break
            hasher = entry_sm3()
            hasher.update(view[start + PREFIX_SIZE : tail])
            digest = hasher.digest()
            if data[tail + 2 : end] != digest.hex().encode():
                break
            hasher = leaf_sm3()
            hasher.update(digest)
            append(hasher.digest())
            prev_tail = data[tail:end]
            zigzag += 2
            done += 1
        view.release()
        self._next_seq, self._prev_tail = expected + done, prev_tail
        return done

    def _irregular_record(self, data: bytes, frame: tuple[int, int],
                          located: dict[int, tuple[bytes, int]]) -> None:
        offset = frame[0]
        record = self._read_record(data, frame)
        if record is None:
            return
        seq = record.seq
        if record.chain != self.chain:
            self._add(offset, f"a record of chain {record.chain} among the records of chain "
                              f"{self.chain}", seq=seq)
            return
        expected = self._next_seq
        if seq < expected:
            if not self._turns_up(seq):
                self._add(offset, f"seq {seq} appears again after seq {expected - 1}: a record "
                                  "was inserted or replayed", seq=seq)
                return
            self._add(offset, f"seq {seq} is out of order: it comes after seq {expected - 1} "
                              "(records were reordered)", seq=seq)
        else:
            if seq > expected:
                self._gaps.append(_Gap(expected, seq - 1, (self._index, offset),
                                       self._where(offset), seq))
            elif record.prev_hash != self._prev_hash:
                self._add(offset, f"prev_hash {record.prev_hash[:16]}… does not link to the hash "
                                  f"of seq {seq - 1} ({self._prev_hash[:16]}…)", seq=seq)
            self._next_seq, self._prev_tail = seq + 1, HASH_MARK + record.stored_hash.encode()
        if record.content_hash != record.stored_hash:
            self._add(offset, f"record altered: stored hash {record.stored_hash[:16]}…, its "
                              f"content hashes to {record.content_hash[:16]}…", seq=seq)
        located.setdefault(seq, (leaf_of(record.stored_hash), offset))

    def _read_record(self, data: bytes, frame: tuple[int, int]) -> _Record | None:
        offset, end = frame
        start = offset + 4
        try:
            head = entry_head(data, start, end)
        except (ValueError, IndexError):
            return self._decode_record(data[start:end], offset)
        content = sm3(data[start + PREFIX_SIZE : end - HASH_TAIL]).hex()
        stored = data[end - 64 : end].decode("ascii", "replace")
        return _Record(head.chain, head.seq, head.prev_hash, stored, content)

    def _decode_record(self, payload: bytes, offset: int) -> _Record | None:
        """A record whose start or end is not where the hand reading expects it: decoded in
        full, for what its fields say, or for why it is no record."""
        try:
            _, value = self.ctx.schemas.decode(payload)
        except FormatError as exc:
            self._add(offset, f"a trail record that cannot be decoded: {exc.message}")
            return None
        entry = value["entry"]
        return _Record(entry["chain"], entry["seq"], entry["prev_hash"], value["hash"],
                       sm3_hex(entry_bytes(payload, value["hash"])))

    def _turns_up(self, seq: int) -> bool:
        """Whether `seq` was reported missing: it is then no longer."""
        for i, gap in enumerate(self._gaps):
            if gap.first <= seq <= gap.last:
                parts = [_Gap(a, b, gap.key, gap.where, gap.seq)
                         for a, b in ((gap.first, seq - 1), (seq + 1, gap.last)) if a <= b]
                self._gaps[i : i + 1] = parts
                return True
        return False

    def _unsealed(self, run: _Run, why: str, seqs: Iterable[int] | None = None) -> None:
        located = run.located()
        chosen = sorted(located if seqs is None else seqs)
        for first, last in _runs(chosen):
            self._add(located[first][1], f"records seq {first}..{last} are not covered by a "
                                         f"seal: {why}", seq=first)

    # -- seals --

    def _seal(self, payload: bytes, offset: int, body: Mapping[str, Any], signature: bytes,
              run: _Run) -> None:
        self.seals += 1
        seal_seq, first, last = body["seal_seq"], body["first_seq"], body["last_seq"]
        name = f"seal {seal_seq} (seq {first}..{last})"
        if self._next_seal_seq is not None and seal_seq != self._next_seal_seq:
            self._add(offset, f"{name} does not follow seal {self._next_seal_seq - 1}: its "
                              f"seal_seq should be {self._next_seal_seq}")
        if self._next_first is not None and first != self._next_first:
            self._add(offset, f"{name} does not follow the previous seal, which ended at seq "
                              f"{self._next_first - 1}")
        self._next_seal_seq, self._next_first = seal_seq + 1, last + 1
        regular = run.regular_for(first, last)
        if not regular:
            outside = [s for s in run.located() if not first <= s <= last]
            self._unsealed(run, f"{name} follows them", outside)
        broken = self.seal_chain.follow(body, seal_hash(payload, signature))
        if broken:
            self._add(offset, f"{name} {broken}", code=TRAIL_SEAL_CHAIN_BROKEN)
        refusal = seal_signature_problem(self.ctx.keyring, body,
                                         signed_body(payload, signature), signature)
        if refusal:
            self._add(offset, f"{name}: {refusal.message}", code=refusal.code)
            return
        if last < first:
            self._add(offset, f"{name} covers no records")
            return
        if regular:
            leaves = run.leaves
        else:
            located = run.located()
            missing = list(itertools.islice(
                (s for s in range(first, last + 1) if s not in located), 5))
            if missing:
                self._add(offset, f"{name} covers records that are missing: seq {missing}")
                return
            leaves = [located[s][0] for s in range(first, last + 1)]
        root = merkle_root(leaves).hex()
        if root != body["root"]:
            self._add(offset, f"{name}: Merkle root {body['root'][:16]}… does not match the "
                              f"records, which give {root[:16]}…")
            return
        self.sealed += last - first + 1

    # -- other frames --

    def _foreign(self, data: bytes, frame: tuple[int, int]) -> None:
        offset, end = frame
        if data.startswith(self.ctx.prefixes.header, offset + 4):
            self._add(offset, "a segment header in the middle of a segment")
            return
        try:
            name, _ = self.ctx.schemas.decode(data[offset + 4 : end])
        except FormatError as exc:
            self._add(offset, f"cannot be decoded: {exc.message}")
            return
        self._add(offset, f"a {name} record does not belong in the archive")

    def _where(self, offset: int) -> str:
        return f"{self._segment.path.name}@{offset}"

    def _add(self, offset: int, problem: str, *, seq: int | None = None,
             code: str | None = None) -> None:
        self._found.append(((self._index, offset),
                            Break(self._where(offset), problem, self.chain, seq, code)))


def _runs(seqs: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Consecutive stretches of sorted seqs, as (first, last)."""
    for _, group in itertools.groupby(enumerate(seqs), key=lambda pair: pair[1] - pair[0]):
        stretch = [seq for _, seq in group]
        yield stretch[0], stretch[-1]


def verify_archive(
    directory: Path,
    schemas: AvroSchemas,
    keyring: Keyring,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> VerifyReport:
    """Checks every chain of the archive; with `since`/`until` (inclusive, aware UTC), only the
    sealed batches with a record whose time falls in the window, the first of them linked to
    the stored hash of the record before it. What is wrong with the files themselves (missing
    segments, framing, frames that are not trail records) is reported whatever the window,
    except segments missing before the first one left when `since` is after that one was
    begun (older segments pruned). The report counts the records checked; `references` is 0:
    the archive holds no delivered message."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ArchiveError(f"no trail archive at {directory}", code=TRAIL_ARCHIVE_NOT_FOUND)
    ctx = _Context(schemas, keyring, RecordPrefixes.of(schemas),
                   None if since is None else epoch_ms(since),
                   None if until is None else epoch_ms(until))
    breaks: list[Break] = []
    checks: list[_ChainCheck] = []
    for chain, segments in list_segments(directory).items():
        check = _ChainCheck(chain, ctx)
        expected_number = 0
        for index, segment in enumerate(segments):
            check.segment(index, segment, segment.path.read_bytes(), expected_number)
            expected_number = segment.number + 1
        breaks += check.breaks()
        checks.append(check)
    return VerifyReport(
        records=sum(c.records for c in checks),
        seals=sum(c.seals for c in checks),
        chains=len(checks),
        sealed_records=sum(c.sealed for c in checks),
        references=0,
        breaks=tuple(breaks),
        seal_hashes={c.chain: c.seal_chain.hashes for c in checks},
    )


__all__ = ["verify_archive"]
