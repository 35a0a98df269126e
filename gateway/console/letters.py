"""The dead letters as the console pages through them: an index of what each says (code,
rule, sender, type, business key; never the document), filled by following px.dlq.v1 in the
background, so that a page is one indexed query, never a read of the topic.

The index is SQLite in this process's memory: a start reads the dead-letter topic once, then
follows it. What the console re-submits is noted against each dead letter (by whom, when, as
which submission) as it is done; the ingress record carries the same (`px-retry-of`,
`px-retried-by`)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from gateway.errors import BrokerUnavailable
from gateway.kafka.names import StoredMessage
from gateway.kafka.wire import Broker, new_reader, partitions_of, stop_consumer, stored_message
from gateway.publish.dead_letters import DeadLetter, DlqError, Location, iso_instant
from message_formats import AvroSchemas

log = structlog.get_logger(__name__)

# Between attempts to read the topic again (broker gone, topic not made yet): doubled after
# each failed one, up to the last.
_FIRST_PAUSE_S = 1.0
_LAST_PAUSE_S = 30.0
# Dead letters filed between two turns of the event loop: filing one costs ~30 us (SQLite,
# four B-trees) besides its decoding, so a start reading a long topic holds the loop for
# ~20 ms at a time, not for the whole topic.
_BATCH = 500
_SCHEMA = """
CREATE TABLE letter (
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    sender TEXT NOT NULL,
    format_id TEXT NOT NULL,
    document_type TEXT,
    business_key TEXT,
    code TEXT NOT NULL,
    rule TEXT NOT NULL,
    line INTEGER,
    cut INTEGER NOT NULL,
    retried_as TEXT,
    retried_by TEXT,
    retried_at TEXT,
    PRIMARY KEY (partition, offset)
) WITHOUT ROWID;
CREATE INDEX letter_by_time ON letter (received_at DESC, partition, offset);
CREATE INDEX letter_by_code ON letter (code, received_at DESC);
CREATE INDEX letter_by_sender ON letter (sender, received_at DESC);
"""
_COLUMNS = ("partition, offset, received_at, sender, format_id, document_type, business_key, "
            "code, rule, line, cut, retried_as, retried_by, retried_at")


@dataclass(frozen=True, slots=True)
class Listed:
    """One dead letter as the console lists it: what was refused and why, never its bytes."""

    location: Location
    received_at: str
    sender: str
    format_id: str
    document_type: str | None
    business_key: str | None
    code: str
    rule: str
    line: int | None
    cut: bool
    retried_as: str | None = None
    retried_by: str | None = None
    retried_at: str | None = None

    @classmethod
    def of(cls, letter: DeadLetter) -> Listed:
        return cls(letter.location, iso_instant(letter.received_at), letter.sender,
                   letter.format_id, letter.document_type, letter.business_key,
                   letter.error_code, letter.error_message, letter.error_line, letter.cut)


@dataclass(frozen=True, slots=True)
class Filter:
    code: str | None = None
    sender: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    rows: tuple[Listed, ...]
    total: int
    number: int  # from 1
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


class LetterIndex:
    __slots__ = ("_db",)

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=True)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, listed: Listed) -> None:
        self._db.execute(
            f"INSERT OR IGNORE INTO letter ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (listed.location.partition, listed.location.offset, listed.received_at,
             listed.sender, listed.format_id, listed.document_type, listed.business_key,
             listed.code, listed.rule, listed.line, int(listed.cut), None, None, None))

    def page(self, chosen: Filter, number: int, size: int) -> Page:
        """Page `number` (from 1; past the last: the last) of the dead letters `chosen`
        selects, newest first."""
        where, args = _where(chosen)
        total = self._db.execute(f"SELECT COUNT(*) FROM letter{where}", args).fetchone()[0]
        number = max(1, min(number, max(1, -(-total // size))))
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM letter{where} ORDER BY received_at DESC, partition, "
            "offset LIMIT ? OFFSET ?", (*args, size, (number - 1) * size))
        return Page(tuple(_listed(row) for row in rows), total, number, size)

    def at(self, locations: Iterable[Location]) -> list[Listed]:
        """The dead letters at `locations` the index holds, in that order."""
        found = []
        for location in locations:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM letter WHERE partition = ? AND "
                                   "offset = ?", (location.partition, location.offset)
                                   ).fetchone()
            if row is not None:
                found.append(_listed(row))
        return found

    def counts(self, column: str) -> list[tuple[str, int]]:
        """How many dead letters each value of `column` (code or sender) has, by value."""
        if column not in ("code", "sender"):
            raise ValueError("dead letters are counted by code or sender")
        return list(self._db.execute(
            f"SELECT {column}, COUNT(*) FROM letter GROUP BY {column} ORDER BY {column}"))

    def retried(self, location: Location, submission_id: str, by: str, at: datetime) -> None:
        self._db.execute("UPDATE letter SET retried_as = ?, retried_by = ?, retried_at = ? "
                         "WHERE partition = ? AND offset = ?",
                         (submission_id, by, iso_instant(at), location.partition,
                          location.offset))


def _where(chosen: Filter) -> tuple[str, tuple[str, ...]]:
    terms = [(column, value) for column, value in (("code", chosen.code),
                                                   ("sender", chosen.sender)) if value]
    if not terms:
        return "", ()
    return (" WHERE " + " AND ".join(f"{column} = ?" for column, _ in terms),
            tuple(value for _, value in terms))


def _listed(row: tuple[Any, ...]) -> Listed:
    (partition, offset, received_at, sender, format_id, document_type, business_key, code,
     rule, line, cut, retried_as, retried_by, retried_at) = row
    return Listed(Location(partition, offset), received_at, sender, format_id, document_type,
                  business_key, code, rule, line, bool(cut), retried_as, retried_by,
                  retried_at)


class LetterFollower:
    """Files every dead letter of the topic into `index`, from its start, then as they come;
    a broker gone is tried again, from where it got."""

    def __init__(self, broker: Broker, topic: str, schemas: AvroSchemas,
                 index: LetterIndex) -> None:
        self._broker = broker
        self._topic = topic
        self._schemas = schemas
        self.index = index
        self._next: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="console-dead-letters")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.index.close()

    async def _follow(self) -> None:
        pause_s = _FIRST_PAUSE_S
        while True:
            consumer = new_reader(self._broker)
            try:
                await consumer.start()
                await self._read(consumer)
            except (KafkaError, BrokerUnavailable) as exc:
                log.warning("console.dead_letters_unread", error=str(exc), retry_in_s=pause_s)
            finally:
                await stop_consumer(consumer)
            await asyncio.sleep(pause_s)
            pause_s = min(2 * pause_s, _LAST_PAUSE_S)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        """Reads on for as long as the broker answers; returns at once (to be asked again
        after a pause) while the topic is not made yet."""
        partitions = await partitions_of(self._broker, [self._topic])
        if not partitions:
            return
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, self._next.get(tp.partition, 0))
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=_BATCH)
            for records in batches.values():
                for record in records:
                    self._file(stored_message(record))

    def _file(self, message: StoredMessage) -> None:
        try:
            self.index.add(Listed.of(DeadLetter.from_message(message, self._schemas)))
        except DlqError as exc:
            log.warning("console.not_a_dead_letter", code=exc.code, partition=message.partition,
                        offset=message.offset)
        self._next[message.partition] = message.offset + 1
