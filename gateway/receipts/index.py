"""The receipt book's index on disk: where each receipt is on the receipt topic, which
submission first brought each accepted document, and how far each partition has been read.

The topic is the record; this file is what a process has learnt from it, kept so that memory
stays bounded however many receipts the gateway has given, and so that a restarted process
reads only the receipts given since it last wrote here, not the whole topic. Losing the file
costs one full read of the topic at the next start, nothing else.

Processes that share a home directory each take a slot of their own (`receipts-N.sqlite`,
held by an advisory lock on `receipts-N.lock` while the process runs): SQLite lets one writer
in at a time, and each process files every receipt, so one shared file would have them wait
for each other on every write.

Writes go into one open transaction, committed at most every `COMMIT_EVERY_S` by the book's
follower (and on stop); lookups on the same connection see them at once. A process killed
between commits loses the uncommitted rows and positions together, so the next start reads
those receipts again from the topic. A running process whose index fails does the same
without a restart: `reopen`, read the topic again from the committed positions, `recovered`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import structlog

from gateway.errors import ReceiptIndexError

log = structlog.get_logger(__name__)

COMMIT_EVERY_S = 0.5
MAX_SLOTS = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipt (
    submission_id TEXT PRIMARY KEY,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    duplicate_of TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accepted (
    sender TEXT NOT NULL,
    digest TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    PRIMARY KEY (sender, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS position (
    partition INTEGER PRIMARY KEY,
    next_offset INTEGER NOT NULL,
    last_key BLOB
);
"""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """Where a submission's receipt is, and the first submission's id for a duplicate."""

    partition: int
    offset: int
    duplicate_of: str | None


@dataclass(frozen=True, slots=True)
class Position:
    """How far a receipt partition has been read: the next offset, and the key of the record
    just before it (to tell, at the next start, that the topic is still the one indexed)."""

    next_offset: int
    last_key: bytes | None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(method: Callable[Concatenate[ReceiptIndex, _P], _R]
             ) -> Callable[Concatenate[ReceiptIndex, _P], _R]:
    """SQLite's errors as ReceiptIndexError; the first one marks the index failed."""

    @functools.wraps(method)
    def guarded(index: ReceiptIndex, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(index, *args, **kwargs)
        except sqlite3.Error as exc:
            if not index.failed:
                log.error("receipts.index_failed", index=index.where, error=str(exc))
            index.failed = True
            raise ReceiptIndexError(f"receipt index {index.where}: {exc}") from exc

    return guarded


class ReceiptIndex:
    def __init__(self, db: sqlite3.Connection, *, path: Path | None = None,
                 lock_fd: int | None = None) -> None:
        self._db = db
        self._lock_fd = lock_fd
        self.path = path
        self._positions = self._read_positions()
        self._moved: set[int] = set()
        self._committed_at = time.monotonic()
        self._dirty = False
        self.failed = False

    @classmethod
    def open(cls, directory: Path | None) -> ReceiptIndex:
        """The first free slot in `directory`; in memory when `directory` is None, or when
        every slot is taken (then the whole topic is read at each start, as without one)."""
        if directory is None:
            return cls(_connect(":memory:"))
        directory.mkdir(parents=True, exist_ok=True)
        for slot in range(1, MAX_SLOTS + 1):
            lock_fd = _try_lock(directory / f"receipts-{slot}.lock")
            if lock_fd is None:
                continue
            path = directory / f"receipts-{slot}.sqlite"
            try:
                return cls(_connect(str(path)), path=path, lock_fd=lock_fd)
            except BaseException:
                os.close(lock_fd)
                raise
        log.warning("receipts.index_slots_taken", directory=str(directory), slots=MAX_SLOTS)
        return cls(_connect(":memory:"))

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "memory"

    def close(self) -> None:
        """Commits what is pending and releases the slot. Never raises: a commit that fails
        is logged, and the next start reads what it held from the topic again."""
        try:
            if not self.failed:
                self.commit()
        except ReceiptIndexError:
            pass
        finally:
            self._db.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the slot's lock
                self._lock_fd = None

    # -- reading

    @_guarded
    def entry(self, submission_id: str) -> IndexEntry | None:
        row = self._db.execute(
            "SELECT partition, offset, duplicate_of FROM receipt WHERE submission_id = ?",
            (submission_id,)).fetchone()
        return None if row is None else IndexEntry(*row)

    @_guarded
    def first_accepted(self, sender: str, digest: str) -> str | None:
        row = self._db.execute(
            "SELECT submission_id FROM accepted WHERE sender = ? AND digest = ?",
            (sender, digest)).fetchone()
        return None if row is None else row[0]

    def positions(self) -> dict[int, Position]:
        return dict(self._positions)

    # -- writing

    @_guarded
    def file(self, submission_id: str, entry: IndexEntry,
             accepted: tuple[str, str] | None) -> None:
        """One receipt; `accepted` is its (sender, digest) when it accepted a document."""
        self._db.execute("INSERT OR REPLACE INTO receipt VALUES (?, ?, ?, ?)",
                         (submission_id, entry.partition, entry.offset, entry.duplicate_of))
        if accepted is not None:
            self._db.execute("INSERT OR IGNORE INTO accepted VALUES (?, ?, ?)",
                             (*accepted, submission_id))
        self._dirty = True

    def advance(self, partition: int, offset: int, key: bytes | None) -> None:
        """Notes that `partition` has been read up to and including `offset`."""
        known = self._positions.get(partition)
        if known is None or offset >= known.next_offset:
            self._positions[partition] = Position(offset + 1, key)
            self._moved.add(partition)
            self._dirty = True

    def commit_if_due(self) -> None:
        if self._dirty and time.monotonic() - self._committed_at >= COMMIT_EVERY_S:
            self.commit()

    @_guarded
    def commit(self) -> None:
        if self._moved:
            self._db.executemany(
                "INSERT OR REPLACE INTO position VALUES (?, ?, ?)",
                [(p, self._positions[p].next_offset, self._positions[p].last_key)
                 for p in self._moved])
            self._moved.clear()
        self._db.commit()
        self._committed_at = time.monotonic()
        self._dirty = False

    @_guarded
    def clear(self) -> None:
        """Forgets everything: the topic is not the one this index was made from."""
        self._db.execute("DELETE FROM receipt")
        self._db.execute("DELETE FROM accepted")
        self._db.execute("DELETE FROM position")
        self._db.commit()
        self._positions.clear()
        self._moved.clear()
        self._dirty = False

    @_guarded
    def reopen(self) -> None:
        """A new connection to the same file (the slot is kept), knowing only what was
        committed: after a failure, what the old connection held uncommitted may be gone.
        The index stays failed until `recovered`, once the book has read the topic again
        from the positions the file holds."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._db = _connect(str(self.path) if self.path is not None else ":memory:")
        self._positions = self._read_positions()
        self._moved.clear()
        self._dirty = False

    def recovered(self) -> None:
        self.failed = False

    def _read_positions(self) -> dict[int, Position]:
        rows = self._db.execute("SELECT partition, next_offset, last_key FROM position")
        return {partition: Position(next_offset, last_key)
                for partition, next_offset, last_key in rows}


def _connect(target: str) -> sqlite3.Connection:
    db = sqlite3.connect(target, isolation_level="DEFERRED", check_same_thread=True)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")  # a cache of the topic: no fsync per commit
    db.executescript(_SCHEMA)
    return db


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
