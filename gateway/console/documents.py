"""The documents as the console searches them: an index of every receipt the gateway gave
(who sent which type of document, its business key, when, accepted or refused and why),
filled by following px.receipt.v1 in the background (`follow.Follower`), so that a search is
one indexed query, never a read of the topic. What a receipt says, never the document.

SQLite in this process's memory, as the dead letters' (letters.py): a start reads the receipt
topic once, then follows it. The receipt book keeps its own index on disk for other needs
(gateway/receipts/index.py: where each receipt is, by submission id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from gateway.console.table import MemoryTable, Page
from gateway.kafka.names import H_DUPLICATE_OF, StoredMessage
from gateway.publish.dead_letters import iso_instant
from gateway.receipts.receipt import Receipt, SignedReceipt
from message_formats import AvroSchemas, FormatError

log = structlog.get_logger(__name__)

_SCHEMA = """
CREATE TABLE document (
    submission_id TEXT PRIMARY KEY,
    time TEXT NOT NULL,
    sender TEXT NOT NULL,
    document_type TEXT,
    business_key TEXT,
    status TEXT NOT NULL,
    code TEXT,
    recipients INTEGER NOT NULL,
    duplicate_of TEXT,
    parts INTEGER NOT NULL,
    parts_accepted INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX document_by_time ON document (time DESC);
CREATE INDEX document_by_key ON document (business_key, time DESC);
CREATE INDEX document_by_sender ON document (sender, time DESC);
CREATE INDEX document_by_type ON document (document_type, time DESC);
"""
_COLUMNS = ("submission_id, time, sender, document_type, business_key, status, code, "
            "recipients, duplicate_of, parts, parts_accepted")
_INSERT_NEW = f"INSERT OR IGNORE INTO document ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_REPLACE = f"INSERT OR REPLACE INTO document ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
# Above every character a business key holds: the end of a prefix's range.
_LAST = "\U0010ffff"


@dataclass(frozen=True, slots=True)
class Found:
    """One submission as its receipt tells it."""

    submission_id: str
    time: str
    sender: str
    document_type: str | None
    business_key: str | None
    status: str
    code: str | None
    recipients: int
    duplicate_of: str | None
    # Of an interchange of several messages (Receipt.parts): how many, how many accepted.
    parts: int = 0
    parts_accepted: int = 0


@dataclass(frozen=True, slots=True)
class Search:
    """A business key's start (a whole key finds it and any longer one), a sender, a type,
    decided from `since` (included) until `until` (not included); None: any."""

    key: str | None = None
    sender: str | None = None
    document_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def minute_of(text: str) -> datetime:
    """The minute a form's time names (`YYYY-MM-DDTHH:MM`, seconds and an offset allowed;
    no offset: UTC), at its start; ValueError for anything else."""
    value = datetime.fromisoformat(text.strip())
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(second=0, microsecond=0)


def until_end_of(minute: datetime) -> datetime:
    """A search's `until` for a range that takes in the whole of `minute`."""
    return minute + timedelta(minutes=1)


class DocumentIndex:
    __slots__ = ("_schemas", "_table")

    def __init__(self, schemas: AvroSchemas) -> None:
        self._schemas = schemas
        self._table = MemoryTable(_SCHEMA, "document", _COLUMNS, "time DESC, submission_id")

    def close(self) -> None:
        self._table.close()

    def file(self, message: StoredMessage) -> Receipt | None:
        """One message of the receipt topic, under the submission id it is keyed by (a
        duplicate's receipt is its first submission's, named in px-duplicate-of). The
        receipt of a decision filed now for the first time (the overview's series counts
        it then): None for a duplicate's, one filed before, or anything else."""
        if message.key is None:
            return None
        try:
            receipt = SignedReceipt.decode(self._schemas, message.value).receipt
        except FormatError as exc:
            log.warning("console.not_a_receipt", code=exc.code, partition=message.partition,
                        offset=message.offset)
            return None
        duplicate_of = message.header(H_DUPLICATE_OF)
        parts = len(receipt.parts or ())
        found = Found(message.key.decode(), iso_instant(receipt.time), receipt.sender,
                      receipt.document_type, receipt.business_key, receipt.status,
                      receipt.error_code, len(receipt.recipients),
                      duplicate_of.decode() if duplicate_of is not None else None,
                      parts, parts - len(receipt.parts_not_accepted))
        return receipt if self.add(found) and found.duplicate_of is None else None

    def add(self, found: Found) -> bool:
        """Files one submission (a later receipt of the same submission replaces the
        earlier); whether it was not filed before."""
        values = (found.submission_id, found.time, found.sender, found.document_type,
                  found.business_key, found.status, found.code, found.recipients,
                  found.duplicate_of, found.parts, found.parts_accepted)
        if self._table.db.execute(_INSERT_NEW, values).rowcount:
            return True
        self._table.db.execute(_REPLACE, values)
        return False

    def page(self, search: Search, number: int, size: int) -> Page[Found]:
        """Page `number` (from 1; past the last: the last) of what `search` finds, newest
        first."""
        return self._table.page(*_where(search), number, size, _found)

    def values(self, column: str) -> list[str]:
        """The senders or document types there are, in order."""
        if column not in ("sender", "document_type"):
            raise ValueError("documents are listed by sender or document type")
        return [value for (value,) in self._table.db.execute(
            f"SELECT DISTINCT {column} FROM document WHERE {column} IS NOT NULL "
            f"ORDER BY {column}")]


def _where(search: Search) -> tuple[str, tuple[str, ...]]:
    terms: list[tuple[str, tuple[str, ...]]] = []
    if search.key:
        terms.append(("business_key >= ? AND business_key < ?", (search.key,
                                                                  search.key + _LAST)))
    if search.sender:
        terms.append(("sender = ?", (search.sender,)))
    if search.document_type:
        terms.append(("document_type = ?", (search.document_type,)))
    if search.since is not None:
        terms.append(("time >= ?", (iso_instant(search.since),)))
    if search.until is not None:
        terms.append(("time < ?", (iso_instant(search.until),)))
    return (" AND ".join(term for term, _ in terms),
            tuple(arg for _, args in terms for arg in args))


def _found(row: tuple[Any, ...]) -> Found:
    return Found(*row)
