"""The trail as the console reads it: an index of every trail record (what was decided about
which document, for whom, under which contract; never a document's values), of the seals
and of the checkpoints, filled by following px.trail.v1 and px.checkpoint.v1 in the
background (`follow.Follower`), so that a document's history (单证追溯) is two indexed
queries, never a read of the topic.

Records written before a document was parsed (RECEIVED, a refused signature) carry no
business key: a history takes every record of the event ids that records of the key name,
as `portgw replay trace` does. Not a verification: `portgw replay verify` does that (the
trail page starts it as a job, `jobs.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.console.table import MemoryTable
from gateway.kafka.names import StoredMessage
from gateway.publish.dead_letters import iso_instant
from gateway.trail.writer import CHECKPOINT_SCHEMA, RECORD_SCHEMA, SEAL_SCHEMA
from message_formats import AvroSchemas, FormatError

log = structlog.get_logger(__name__)

_SCHEMA = """
CREATE TABLE record (
    chain TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_id TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    format_id TEXT NOT NULL,
    document_type TEXT,
    business_key TEXT,
    document_version INTEGER,
    error_code TEXT,
    reason TEXT NOT NULL,
    recipient TEXT,
    contract_id TEXT,
    contract_version INTEGER,
    PRIMARY KEY (chain, seq)
) WITHOUT ROWID;
CREATE INDEX record_by_key ON record (business_key, event_id);
CREATE INDEX record_by_event ON record (event_id, time);
CREATE TABLE seal (
    chain TEXT NOT NULL,
    seal_seq INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    time TEXT NOT NULL,
    key_id TEXT NOT NULL,
    PRIMARY KEY (chain, seal_seq)
) WITHOUT ROWID;
CREATE TABLE checkpoint (
    chain TEXT PRIMARY KEY,
    seal_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    time TEXT NOT NULL,
    key_id TEXT NOT NULL
) WITHOUT ROWID;
"""
_COLUMNS = ("chain, seq, time, kind, event_id, submission_id, sender, format_id, "
            "document_type, business_key, document_version, error_code, reason, recipient, "
            "contract_id, contract_version")
# The most records one history shows: a document resubmitted without end stays one page.
HISTORY_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Decision:
    """One trail record as the console shows it: what was decided, never the document."""

    chain: str
    seq: int
    time: str
    kind: str
    event_id: str
    submission_id: str
    sender: str
    format_id: str
    document_type: str | None
    business_key: str | None
    document_version: int | None
    error_code: str | None
    reason: str
    recipient: str | None
    contract_id: str | None
    contract_version: int | None

    @property
    def name(self) -> str:
        return f"{self.chain}-{self.seq}"


@dataclass(frozen=True, slots=True)
class ChainState:
    """What the index has seen of one chain: its records, its last seal, its checkpoint."""

    chain: str
    records: int
    last_seq: int
    seals: int
    sealed_to: int | None
    last_seal_at: str | None
    checkpoint_seal: int | None
    checkpoint_to: int | None
    checkpoint_at: str | None


class TrailIndex:
    __slots__ = ("_counts", "_schemas", "_table")

    def __init__(self, schemas: AvroSchemas) -> None:
        self._schemas = schemas
        self._table = MemoryTable(_SCHEMA, "record", _COLUMNS, "time, chain, seq")
        # chain: [records, last seq], counted as filed (a GROUP BY over the records would
        # read them all: ~0.7 s at 500,000)
        self._counts: dict[str, list[int]] = {}

    def close(self) -> None:
        self._table.close()

    def file(self, message: StoredMessage) -> Mapping[str, Any] | None:
        """One message of the trail topic: a record or a seal (anything else is logged).
        A record's entry, when it is filed now for the first time (the overview's series
        counts it then); None for anything else."""
        decoded = self._decoded(message)
        if decoded is None:
            return None
        name, value = decoded
        if name == RECORD_SCHEMA:
            entry: Mapping[str, Any] = value["entry"]
            return entry if self._add_record(entry) else None
        if name == SEAL_SCHEMA:
            body = value["body"]
            self._table.db.execute(
                "INSERT OR REPLACE INTO seal VALUES (?,?,?,?,?,?)",
                (body["chain"], body["seal_seq"], body["first_seq"], body["last_seq"],
                 iso_instant(body["time"]), body["key_id"]))
        else:
            log.warning("console.not_on_trail", schema=name, partition=message.partition,
                        offset=message.offset)
        return None

    def file_checkpoint(self, message: StoredMessage) -> None:
        """One message of the checkpoint topic: the newest per chain is kept."""
        decoded = self._decoded(message)
        if decoded is None or decoded[0] != CHECKPOINT_SCHEMA:
            return
        body = decoded[1]["body"]
        self._table.db.execute(
            "INSERT INTO checkpoint VALUES (?,?,?,?,?) ON CONFLICT (chain) DO UPDATE SET "
            "seal_seq = excluded.seal_seq, last_seq = excluded.last_seq, time = excluded.time, "
            "key_id = excluded.key_id WHERE excluded.seal_seq >= checkpoint.seal_seq",
            (body["chain"], body["seal_seq"], body["last_seq"], iso_instant(body["time"]),
             body["key_id"]))

    def history(self, business_key: str) -> list[Decision]:
        """Every record of every event id a record of `business_key` names, in time order
        (at most HISTORY_LIMIT)."""
        rows = self._table.db.execute(
            f"SELECT {_COLUMNS} FROM record WHERE event_id IN (SELECT DISTINCT event_id FROM "
            "record WHERE business_key = ?) ORDER BY time, chain, seq LIMIT ?",
            (business_key, HISTORY_LIMIT))
        return [Decision(*row) for row in rows]

    def chains(self) -> list[ChainState]:
        """Each chain seen, by name, with its seals and newest checkpoint."""
        seals = {chain: rest for chain, *rest in self._table.db.execute(
            "SELECT chain, COUNT(*), MAX(last_seq), MAX(time) FROM seal GROUP BY chain")}
        checkpoints = {chain: rest for chain, *rest in self._table.db.execute(
            "SELECT chain, seal_seq, last_seq, time FROM checkpoint")}
        return [ChainState(chain, *self._counts.get(chain, (0, -1)),
                           *seals.get(chain, (0, None, None)),
                           *checkpoints.get(chain, (None, None, None)))
                for chain in sorted({*self._counts, *seals, *checkpoints})]

    def _decoded(self, message: StoredMessage) -> tuple[str, Any] | None:
        try:
            return self._schemas.decode(message.value)
        except FormatError as exc:
            log.warning("console.trail_unread", code=exc.code, partition=message.partition,
                        offset=message.offset)
            return None

    def _add_record(self, entry: Mapping[str, Any]) -> bool:
        added = self._table.db.execute(
            f"INSERT OR IGNORE INTO record ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (entry["chain"], entry["seq"], iso_instant(entry["time"]), entry["kind"],
             entry["event_id"], entry["submission_id"], entry["sender"], entry["format_id"],
             entry["document_type"], entry["business_key"], entry["document_version"],
             entry["error_code"], entry["reason"], entry["recipient"], entry["contract_id"],
             entry["contract_version"])).rowcount
        if added:
            counts = self._counts.setdefault(entry["chain"], [0, -1])
            counts[0] += 1
            counts[1] = max(counts[1], entry["seq"])
        return bool(added)
