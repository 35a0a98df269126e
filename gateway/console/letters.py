"""The dead letters as the console pages through them: an index of what each says (code,
rule, sender, type, business key; never the document), filled by following px.dlq.v1 in the
background (`follow.Follower`), so that a page is one indexed query, never a read of the
topic.

The index is SQLite in this process's memory: a start reads the dead-letter topic once, then
follows it. What the console re-submits is noted against each dead letter (by whom, when, as
which submission) as it is done; the ingress record carries the same (`px-retry-of`,
`px-retried-by`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from gateway.console.table import MemoryTable, Page
from gateway.kafka.names import StoredMessage
from gateway.publish.dead_letters import DeadLetter, DlqError, Location, iso_instant
from message_formats import AvroSchemas

log = structlog.get_logger(__name__)

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


class LetterIndex:
    __slots__ = ("_schemas", "_table")

    def __init__(self, schemas: AvroSchemas) -> None:
        self._schemas = schemas
        self._table = MemoryTable(_SCHEMA, "letter", _COLUMNS,
                                  "received_at DESC, partition, offset")

    def close(self) -> None:
        self._table.close()

    def file(self, message: StoredMessage) -> None:
        """One message of the dead-letter topic (one that is not a dead letter is logged
        and passed by)."""
        try:
            self.add(Listed.of(DeadLetter.from_message(message, self._schemas)))
        except DlqError as exc:
            log.warning("console.not_a_dead_letter", code=exc.code, partition=message.partition,
                        offset=message.offset)

    def add(self, listed: Listed) -> None:
        self._table.db.execute(
            f"INSERT OR IGNORE INTO letter ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (listed.location.partition, listed.location.offset, listed.received_at,
             listed.sender, listed.format_id, listed.document_type, listed.business_key,
             listed.code, listed.rule, listed.line, int(listed.cut), None, None, None))

    def page(self, chosen: Filter, number: int, size: int) -> Page[Listed]:
        """Page `number` (from 1; past the last: the last) of the dead letters `chosen`
        selects, newest first."""
        return self._table.page(*_where(chosen), number, size, _listed)

    def at(self, locations: Iterable[Location]) -> list[Listed]:
        """The dead letters at `locations` the index holds, in that order."""
        found = []
        for location in locations:
            row = self._table.db.execute(
                f"SELECT {_COLUMNS} FROM letter WHERE partition = ? AND offset = ?",
                (location.partition, location.offset)).fetchone()
            if row is not None:
                found.append(_listed(row))
        return found

    def counts(self, column: str) -> list[tuple[str, int]]:
        """How many dead letters each value of `column` (code or sender) has, by value."""
        if column not in ("code", "sender"):
            raise ValueError("dead letters are counted by code or sender")
        return list(self._table.db.execute(
            f"SELECT {column}, COUNT(*) FROM letter GROUP BY {column} ORDER BY {column}"))

    def retried(self, location: Location, submission_id: str, by: str, at: datetime) -> None:
        self._table.db.execute(
            "UPDATE letter SET retried_as = ?, retried_by = ?, retried_at = ? "
            "WHERE partition = ? AND offset = ?",
            (submission_id, by, iso_instant(at), location.partition, location.offset))


def _where(chosen: Filter) -> tuple[str, tuple[str, ...]]:
    terms = [(column, value) for column, value in (("code", chosen.code),
                                                   ("sender", chosen.sender)) if value]
    return (" AND ".join(f"{column} = ?" for column, _ in terms),
            tuple(value for _, value in terms))


def _listed(row: tuple[Any, ...]) -> Listed:
    (partition, offset, received_at, sender, format_id, document_type, business_key, code,
     rule, line, cut, retried_as, retried_by, retried_at) = row
    return Listed(Location(partition, offset), received_at, sender, format_id, document_type,
                  business_key, code, rule, line, bool(cut), retried_as, retried_by,
                  retried_at)
