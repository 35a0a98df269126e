"""The early warnings as the console shows them: each warning's state folded from the steps
the gateway's warning book holds (gateway/warnings/book.py, in this process's memory), and who
received each warning and who acknowledged it, from the trail.

Reach: the console follows px.trail.v1 (`follow.Follower`) and files the DELIVERED,
REDELIVERED and TAKEN records of warning documents, by the event of each step. A trail message
is decoded only when its bytes hold the document type's name (a cheap search): every other
document's records cost the follower a byte search, not a decoding."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from gateway.console.table import Page, page_of
from gateway.kafka.names import H_RECORD, StoredMessage
from gateway.trail.taken import TAKEN
from gateway.trail.writer import RECORD_KIND, RECORD_SCHEMA
from gateway.warnings.lifecycle import (
    DOCUMENT_TYPE,
    FILED,
    RELEASED,
    RecordedStep,
    WarningState,
    fold,
)
from message_formats import AvroSchemas, FormatError

log = structlog.get_logger(__name__)

LEVELS = ("I", "II", "III", "IV")
RECEIVED_KINDS = frozenset({"DELIVERED", "REDELIVERED"})
_MARK = DOCUMENT_TYPE.encode()
# Warnings that are over: released, then filed. Every other status is active.
ENDED = frozenset({RELEASED, FILED})


@dataclass(frozen=True, slots=True)
class WarningRow:
    """One warning as the page lists it: its state, its last step, and per agency whether it
    received a step and acknowledged one. Never who acted (a person's name)."""

    state: WarningState
    last_action: str
    steps: int
    received: tuple[str, ...]
    acknowledged: tuple[str, ...]

    @property
    def ports(self) -> tuple[str, ...]:
        return tuple(self.state.current["affected_area"].get("port_codes") or ())

    @property
    def active(self) -> bool:
        return self.state.status not in ENDED


@dataclass(frozen=True, slots=True)
class StepRow:
    """One step of a warning as its own page shows it: what was done, when, at which level,
    by which agency (never the person), and which agencies received and acknowledged the
    event that carried it."""

    number: int
    action: str
    at: datetime
    level: str
    sender: str
    received: tuple[str, ...]
    acknowledged: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WarningFilter:
    level: str | None = None
    port: str | None = None
    active_only: bool = True


class WarningReach:
    """Who received and acknowledged the events of warning steps, as the trail says."""

    __slots__ = ("_received", "_schemas", "_taken")

    def __init__(self, schemas: AvroSchemas) -> None:
        self._schemas = schemas
        self._received: dict[str, set[str]] = {}  # event id -> recipients
        self._taken: dict[str, set[str]] = {}

    def file(self, message: StoredMessage) -> None:
        if _MARK not in message.value or message.header(H_RECORD) != RECORD_KIND:
            return
        try:
            name, record = self._schemas.decode(message.value)
        except FormatError as exc:
            log.warning("console.not_a_trail_record", code=exc.code,
                        partition=message.partition, offset=message.offset)
            return
        if name != RECORD_SCHEMA:
            return
        entry = record["entry"]
        if entry["document_type"] != DOCUMENT_TYPE or entry["recipient"] is None:
            return
        kind = entry["kind"]
        if kind in RECEIVED_KINDS:
            self._received.setdefault(entry["event_id"], set()).add(entry["recipient"])
        elif kind == TAKEN:
            self._taken.setdefault(entry["event_id"], set()).add(entry["recipient"])

    def of(self, steps: Iterable[RecordedStep]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The agencies that received a step of these, and those that acknowledged one."""
        received: set[str] = set()
        taken: set[str] = set()
        for step in steps:
            received |= self._received.get(step.event_id, set())
            taken |= self._taken.get(step.event_id, set())
        return tuple(sorted(received)), tuple(sorted(taken))


def step_rows(steps: Sequence[RecordedStep], reach: WarningReach) -> list[StepRow]:
    """A warning's steps in the order they were taken, each with its reach."""
    rows = []
    for number, step in enumerate(steps, start=1):
        received, acknowledged = reach.of((step,))
        rows.append(StepRow(number, step.action, step.step["at"], str(step.record["level"]),
                            step.sender, received, acknowledged))
    return rows


def warning_row(steps: Sequence[RecordedStep], reach: WarningReach) -> WarningRow | None:
    """The warning these steps make, with its reach; None for no steps."""
    state = fold(steps)
    if state is None:
        return None
    received, acknowledged = reach.of(steps)
    return WarningRow(state, steps[-1].action, len(steps), received, acknowledged)


def warning_rows(book: Mapping[str, Sequence[RecordedStep]], reach: WarningReach,
                 chosen: WarningFilter, number: int, size: int) -> Page[WarningRow]:
    """Page `number` of the warnings `chosen` selects: the gravest level first, then the
    latest step first."""
    rows = [row for steps in book.values()
            if (row := warning_row(steps, reach)) is not None and _chosen(row.state, chosen)]
    rows.sort(key=lambda row: (_rank(row.state.level), -_stamp(row.state.last_at)))
    return page_of(rows, number, size)


def ports_of(book: Mapping[str, Sequence[RecordedStep]]) -> list[str]:
    """The port codes the warnings' areas name, for the filter."""
    found: set[str] = set()
    for steps in book.values():
        found.update(steps[-1].record["affected_area"].get("port_codes") or ())
    return sorted(found)


def _chosen(state: WarningState, chosen: WarningFilter) -> bool:
    area: Mapping[str, Any] = state.current["affected_area"]
    return ((not chosen.active_only or state.status not in ENDED)
            and (chosen.level is None or state.level == chosen.level)
            and (chosen.port is None or chosen.port in (area.get("port_codes") or ())))


def _rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def _stamp(at: datetime) -> float:
    return at.timestamp()
