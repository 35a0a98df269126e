"""The history of one document (单证追溯): every trail record of every submission of it.

Records written before the document was parsed (RECEIVED, a rejection for a bad signature)
carry no business key; they are found through the event id they share with the records that
do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.kafka.names import StoredMessage
from gateway.kafka.wire import Broker, read_topics
from gateway.trail.writer import RECORD_SCHEMA, SEAL_SCHEMA
from message_formats import AvroSchemas, FormatError

RECEIVED = "RECEIVED"
ACCEPTED = "ACCEPTED"
DELIVERED = "DELIVERED"
REDELIVERED = "REDELIVERED"
DENIED = "DENIED"
TAKEN = "TAKEN"  # a recipient's acknowledgement (gateway/trail/taken.py)


@dataclass(frozen=True, slots=True, eq=False)
class TrailItem:
    """One trail record as read: the decoded entry, its stored hash and where it was."""

    entry: dict[str, Any]
    hash: str
    message: StoredMessage

    @property
    def chain(self) -> str:
        return str(self.entry["chain"])

    @property
    def seq(self) -> int:
        return int(self.entry["seq"])

    @property
    def kind(self) -> str:
        return str(self.entry["kind"])

    @property
    def event_id(self) -> str:
        return str(self.entry["event_id"])

    @property
    def time(self) -> datetime:
        at: datetime = self.entry["time"]
        return at

    @property
    def name(self) -> str:
        """`<chain>-<seq>`: unique on the trail, used for file names."""
        return f"{self.chain}-{self.seq}"

    @property
    def reference(self) -> tuple[str, int, int] | None:
        """(topic, partition, offset) of the message this decision names, if any."""
        e = self.entry
        if e["ref_topic"] is None or e["ref_partition"] is None or e["ref_offset"] is None:
            return None
        return (e["ref_topic"], e["ref_partition"], e["ref_offset"])


@dataclass(frozen=True, slots=True, eq=False)
class SealItem:
    body: dict[str, Any]
    signature: bytes
    message: StoredMessage

    @property
    def chain(self) -> str:
        return str(self.body["chain"])

    @property
    def seal_seq(self) -> int:
        return int(self.body["seal_seq"])

    @property
    def name(self) -> str:
        return f"{self.chain}-{self.seal_seq}"

    def covers(self, chain: str, seq: int) -> bool:
        return chain == self.chain and self.body["first_seq"] <= seq <= self.body["last_seq"]


@dataclass(frozen=True, slots=True)
class DecodedTrail:
    """The trail topic decoded once; `unreadable` counts messages that are neither."""

    records: tuple[TrailItem, ...]
    seals: tuple[SealItem, ...]
    unreadable: int = 0


def decode_trail(trail: Iterable[StoredMessage], schemas: AvroSchemas) -> DecodedTrail:
    """Decodes records and seals. Not a verification: that is replay.verify's job; what
    cannot be decoded is only counted."""
    records: list[TrailItem] = []
    seals: list[SealItem] = []
    unreadable = 0
    for message in trail:
        try:
            name, value = schemas.decode(message.value)
        except FormatError:
            unreadable += 1
            continue
        if name == RECORD_SCHEMA:
            records.append(TrailItem(value["entry"], value["hash"], message))
        elif name == SEAL_SCHEMA:
            seals.append(SealItem(value["body"], value["signature"], message))
        else:
            unreadable += 1
    return DecodedTrail(tuple(records), tuple(seals), unreadable)


@dataclass(frozen=True, slots=True)
class DocumentVersion:
    """One submission of the document, i.e. one event id, with all its records in order."""

    event_id: str
    records: tuple[TrailItem, ...]

    def _first(self, field: str) -> Any:
        return next((r.entry[field] for r in self.records if r.entry[field] is not None), None)

    @property
    def document_version(self) -> int | None:
        version: int | None = self._first("document_version")
        return version

    @property
    def sender(self) -> str:
        return str(self.records[0].entry["sender"])

    @property
    def submission_id(self) -> str:
        return str(self.records[0].entry["submission_id"])

    @property
    def format_id(self) -> str:
        return str(self.records[0].entry["format_id"])

    @property
    def document_type(self) -> str | None:
        document_type: str | None = self._first("document_type")
        return document_type

    @property
    def digest_sm3(self) -> str:
        return str(self.records[0].entry["digest_sm3"])

    @property
    def signature_key_id(self) -> str | None:
        key_id: str | None = self._first("signature_key_id")
        return key_id

    def first_of(self, kind: str) -> TrailItem | None:
        return next((r for r in self.records if r.kind == kind), None)


@dataclass(frozen=True, slots=True)
class DocumentHistory:
    business_key: str
    sender: str | None
    records: tuple[TrailItem, ...]
    unreadable: int = 0

    @property
    def found(self) -> bool:
        return bool(self.records)

    @property
    def versions(self) -> tuple[DocumentVersion, ...]:
        """One per event id, in the order of their first record."""
        by_event: dict[str, list[TrailItem]] = {}
        for record in self.records:
            by_event.setdefault(record.event_id, []).append(record)
        return tuple(DocumentVersion(event_id, tuple(rs)) for event_id, rs in by_event.items())


def history_of(
    decoded: DecodedTrail, business_key: str, *, sender: str | None = None
) -> DocumentHistory:
    event_ids = {
        r.event_id
        for r in decoded.records
        if r.entry["business_key"] == business_key
        and (sender is None or r.entry["sender"] == sender)
    }
    selected = sorted(
        (r for r in decoded.records if r.event_id in event_ids),
        key=lambda r: (r.time, r.chain, r.seq),
    )
    return DocumentHistory(business_key, sender, tuple(selected), decoded.unreadable)


def document_history(
    trail: Iterable[StoredMessage],
    schemas: AvroSchemas,
    business_key: str,
    *,
    sender: str | None = None,
) -> DocumentHistory:
    return history_of(decode_trail(trail, schemas), business_key, sender=sender)


async def trace_kafka(
    bootstrap_servers: Broker,
    schemas: AvroSchemas,
    business_key: str,
    *,
    sender: str | None = None,
    trail_topic: str,
) -> DocumentHistory:
    messages = await read_topics(bootstrap_servers, [trail_topic])
    return document_history(messages, schemas, business_key, sender=sender)


# -- for a terminal ---------------------------------------------------------------------------


def format_time(at: datetime) -> str:
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


def _version_label(version: int | None) -> str:
    return "version ?" if version is None else f"version {version}"


def _contract(entry: dict[str, Any]) -> str:
    if entry["contract_id"] is None:
        return ""
    if entry["contract_version"] is None:
        return str(entry["contract_id"])
    return f"{entry['contract_id']} v{entry['contract_version']}"


def _record_line(record: TrailItem) -> str:
    e = record.entry
    parts = [format_time(record.time), record.kind]
    parts.extend(p for p in (e["recipient"], _contract(e), e["error_code"]) if p)
    parts.append(e["reason"])
    return "  " + " · ".join(parts) + f"  [{record.name}]"


def _version_header(version: DocumentVersion) -> str:
    parts = [
        _version_label(version.document_version),
        f"event {version.event_id}",
        f"sender {version.sender}",
        f"format {version.format_id}",
    ]
    if version.document_type:
        parts.append(version.document_type)
    parts.append(f"sm3 {version.digest_sm3}")
    return " · ".join(parts)


def _shared_summary(history: DocumentHistory) -> list[str]:
    """Per recipient: which version it received (or was denied) under which contract."""
    by_recipient: dict[str, list[str]] = {}
    several_senders = len({v.sender for v in history.versions}) > 1
    for version in history.versions:
        label = _version_label(version.document_version)
        if several_senders:
            label += f" from {version.sender}"
        for record in version.records:
            e = record.entry
            if record.kind in (DELIVERED, REDELIVERED):
                verb = "received" if record.kind == DELIVERED else "received again"
                what = f"{verb} {label} under {_contract(e) or 'no contract'}"
            elif record.kind == DENIED:
                what = f"denied {label} ({e['error_code'] or 'no code'})"
                if e["contract_id"]:
                    what += f" under {_contract(e)}"
            else:
                continue
            by_recipient.setdefault(e["recipient"] or "?", []).append(
                f"{what} at {format_time(record.time)}"
            )
    if not by_recipient:
        return ["  nobody received it"]
    width = max(len(r) for r in by_recipient)
    return [
        f"  {recipient if n == 0 else '':<{width}}  {event}"
        for recipient, events in sorted(by_recipient.items())
        for n, event in enumerate(events)
    ]


def describe_history(history: DocumentHistory) -> str:
    who = f" from {history.sender}" if history.sender else ""
    if not history.found:
        return f"document {history.business_key}{who}: no trail record names it"
    versions = history.versions
    lines = [
        f"document {history.business_key}{who}: {len(versions)} submission(s), "
        f"{len(history.records)} trail record(s)"
    ]
    for version in versions:
        lines.append("")
        lines.append(_version_header(version))
        lines.extend(_record_line(r) for r in version.records)
    lines.append("")
    lines.append("shared with:")
    lines.extend(_shared_summary(history))
    if history.unreadable:
        lines.append(f"({history.unreadable} message(s) on the trail could not be decoded; "
                     "run `portgw replay verify`)")
    return "\n".join(lines)


__all__ = [
    "DecodedTrail",
    "DocumentHistory",
    "DocumentVersion",
    "SealItem",
    "TrailItem",
    "decode_trail",
    "describe_history",
    "document_history",
    "format_time",
    "history_of",
    "trace_kafka",
]
