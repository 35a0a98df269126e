"""CONTRL (ISO 9735-4), the syntax and service report: rendered in answer to an interchange,
and read back (docs/edifact.md, "CONTRL").

An interchange refused whole gets a negative CONTRL that says "rejected" (0083 = 4) at the
interchange level (UCI), and points at the defect at the level it concerns: UCI itself, the
group (UCF), the message (UCM), its segment (UCS) or data element (UCD), with the ISO 9735-4
syntax error code (0085). A positive CONTRL says "acknowledged" (7) for the interchange and
each message; one of an interchange accepted message by message (per_message_contrl) says 7
for the interchange and, per message, 7 or 4 with where it was refused (and of functional
groups, each group's UCF before its messages' UCMs). It is sent for an accepted interchange
when UNB 0031 asked for it, for a refused one always, and never in answer to an interchange of
CONTRL messages (which would start an endless exchange)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum
from itertools import groupby

from .errors import EdifactError, InterchangeHeader, Level, Where
from .model import DEFAULT_SEPARATORS, Group, Interchange, Message, MessageId, Segment, Separators
from .writer import OutgoingMessage, render_interchange, segment

CONTRL = "CONTRL"
# S009 of a CONTRL: below syntax 4 the "version" is the syntax version and the release "3"
# (CONTRL:D:3:UN, the form partners send); syntax 4 writes version 4 release 1.
_IDENTIFIERS = {"4": MessageId(CONTRL, "4", "1", "UN")}
_IDENTIFIER_BELOW_4 = MessageId(CONTRL, "D", "3", "UN")
# What a CONTRL echoes of the sender's writing is cut to the lengths the syntax allows:
# 0048 and 0062 an..14; S009 0065 an..6, 0052 an..3, 0054 an..3, 0051 an..3, 0057 an..6.
_REFERENCE_LENGTH = 14
_PARTY_LENGTH = 35  # UNG/UCF S006 0040, S007 0044: an..35
_S009_LENGTHS = (6, 3, 3, 3, 6)


class Action(IntEnum):
    """0083 action, coded."""

    REJECTED = 4  # this level and all lower levels rejected
    ACKNOWLEDGED = 7  # this level acknowledged, lower levels unless explicitly rejected
    RECEIVED = 8  # interchange received (receipt only)


def contrl_identifier(syntax_version: str) -> MessageId:
    return _IDENTIFIERS.get(syntax_version, _IDENTIFIER_BELOW_4)


def only_contrl(interchange: Interchange) -> bool:
    """An interchange of CONTRL messages only: no CONTRL is sent in answer to it."""
    return interchange.message_types() == {CONTRL}


def positive_contrl(interchange: Interchange, *, reference: str, prepared: datetime,
                    separators: Separators = DEFAULT_SEPARATORS) -> bytes:
    """The CONTRL acknowledging an accepted interchange and each of its messages."""
    body = [uci(interchange.header, Action.ACKNOWLEDGED)]
    groups = {group.reference: group for group in interchange.groups}
    reported_group = ""
    for message in interchange.messages:
        if message.group_reference and message.group_reference != reported_group:
            reported_group = message.group_reference
            body.append(ucf(groups[reported_group], Action.ACKNOWLEDGED))
        body.append(segment("UCM", message.reference, message.identifier.components(),
                            str(int(Action.ACKNOWLEDGED))))
    return contrl_interchange(interchange.header, body, reference, prepared, separators)


def acknowledged_contrl(subject: InterchangeHeader, *, reference: str, prepared: datetime,
                        separators: Separators = DEFAULT_SEPARATORS) -> bytes:
    """The CONTRL acknowledging an interchange from its UNB alone: UCI with action 7, which
    acknowledges every lower level not explicitly rejected (no UCM is needed)."""
    return contrl_interchange(subject, [uci(subject, Action.ACKNOWLEDGED)], reference,
                              prepared, separators)


def negative_contrl(error: EdifactError, *, reference: str, prepared: datetime,
                    separators: Separators = DEFAULT_SEPARATORS) -> bytes | None:
    """The CONTRL rejecting a refused interchange, None when its UNB could not be read (so
    there is no one to address it to)."""
    if error.header is None:
        return None
    return rejection_contrl(error.header, error.where, reference=reference, prepared=prepared,
                            separators=separators)


def message_rejected(message: Message, syntax_error: int = 12) -> Where:
    """Where a message refused for a business rule is reported: the message (UCM) with
    0085 = 12 "invalid value" unless told otherwise."""
    return Where(Level.MESSAGE, syntax_error, message_reference=message.reference,
                 message_type=message.identifier.components())


def rejection_contrl(subject: InterchangeHeader, where: Where, *, reference: str,
                     prepared: datetime,
                     separators: Separators = DEFAULT_SEPARATORS) -> bytes:
    """The CONTRL rejecting an interchange for the defect at `where`."""
    where = echoed(where)
    at_interchange = where.level is Level.INTERCHANGE
    body = [uci(subject, Action.REJECTED, where if at_interchange else None)]
    if where.level is Level.GROUP:
        body.append(segment("UCF", where.group_reference, "", "", str(int(Action.REJECTED)),
                            *error_elements(where)))
    elif not at_interchange:
        body += message_rejection(where)
    return contrl_interchange(subject, body, reference, prepared, separators)


def message_rejection(where: Where) -> list[Segment]:
    """UCM rejecting the message `where` names, with UCS (and UCD) when the defect is in a
    segment (or data element) of it; `where` is echoed already."""
    at_message = where.level is Level.MESSAGE
    found = [segment("UCM", where.message_reference, where.message_type,
                     str(int(Action.REJECTED)), *(error_elements(where) if at_message else ()))]
    if where.level is Level.SEGMENT:
        found.append(segment("UCS", str(where.segment_number), str(where.syntax_error)))
    elif where.level is Level.ELEMENT:
        found.append(segment("UCS", str(where.segment_number)))
        found.append(segment("UCD", str(where.syntax_error), position(where)))
    return found


@dataclass(frozen=True, slots=True)
class MessageReport:
    """One message of an interchange decided message by message, as its CONTRL reports it:
    acknowledged, or rejected where `refused` says (a message-, segment- or element-level
    place; 0085 = 0 when the refusal is no syntax matter, such as no contract sharing it);
    and the functional group (UNG) it is in, None outside one."""

    reference: str
    message_type: tuple[str, ...]
    refused: Where | None = None
    group: Group | None = None


def per_message_contrl(subject: InterchangeHeader, reports: Sequence[MessageReport], *,
                       reference: str, prepared: datetime,
                       separators: Separators = DEFAULT_SEPARATORS) -> bytes:
    """The CONTRL of an interchange of several messages, accepted message by message: UCI
    acknowledged (7: the lower levels too, unless explicitly rejected), then each message's
    UCM, acknowledged (7) or rejected (4) with where it was refused. Of an interchange of
    functional groups, each group's UCF comes before the UCMs of its messages (the CONTRL
    segment group 3 of ISO 9735-4, UCF and its UCMs): acknowledged (7), or rejected (4)
    when every message of it is."""
    body = [uci(subject, Action.ACKNOWLEDGED)]
    for group, grouped in groupby(reports, key=lambda report: report.group):
        of_group = tuple(grouped)
        if group is not None:
            every_one_refused = all(report.refused is not None for report in of_group)
            body.append(ucf(group, Action.REJECTED if every_one_refused
                            else Action.ACKNOWLEDGED))
        for report in of_group:
            body += message_report(report)
    return contrl_interchange(subject, body, reference, prepared, separators)


def message_report(report: MessageReport) -> list[Segment]:
    """A message's UCM: acknowledged, or rejected with its UCS (and UCD)."""
    if report.refused is not None:
        return message_rejection(echoed(replace(
            report.refused, message_reference=report.reference,
            message_type=report.message_type)))
    acknowledged = echoed(Where(Level.MESSAGE, 0, message_reference=report.reference,
                                message_type=report.message_type))
    return [segment("UCM", acknowledged.message_reference, acknowledged.message_type,
                    str(int(Action.ACKNOWLEDGED)))]


def ucf(group: Group, action: Action) -> Segment:
    """UCF naming a functional group (0048, S006 and S007 ids, cut to the lengths the
    syntax allows, as `echoed` cuts a message's) with `action`."""
    return segment("UCF", group.reference[:_REFERENCE_LENGTH],
                   group.sender[:_PARTY_LENGTH], group.recipient[:_PARTY_LENGTH],
                   str(int(action)))


def echoed(where: Where) -> Where:
    """`where` with the sender's references and message type no longer than the syntax
    allows: a hostile interchange cannot make its CONTRL (rendered on the gateway's event
    loop, kept in the sender's topic) as large as itself."""
    return replace(where, group_reference=where.group_reference[:_REFERENCE_LENGTH],
                   message_reference=where.message_reference[:_REFERENCE_LENGTH],
                   message_type=tuple(component[:length] for component, length
                                      in zip(where.message_type, _S009_LENGTHS, strict=False)))


def uci(subject: InterchangeHeader, action: Action, where: Where | None = None) -> Segment:
    return segment("UCI", subject.control_reference,
                   (subject.sender, subject.sender_qualifier),
                   (subject.recipient, subject.recipient_qualifier), str(int(action)),
                   *(error_elements(where) if where is not None else ()))


def error_elements(where: Where) -> tuple[str, str, tuple[str, ...]]:
    """0085, 0013 and S011 of UCI, UCF or UCM."""
    return (str(where.syntax_error) if where.syntax_error else "", where.service_segment,
            position(where))


def position(where: Where) -> tuple[str, ...]:
    if not where.element:
        return ()
    return (str(where.element), str(where.component) if where.component else "")


def contrl_interchange(subject: InterchangeHeader, body: Sequence[Segment], reference: str,
                       prepared: datetime, separators: Separators) -> bytes:
    version = subject.syntax_version
    date = prepared.strftime("%Y%m%d" if version == "4" else "%y%m%d")
    header = InterchangeHeader(
        syntax_id=subject.syntax_id, syntax_version=version,
        sender=subject.recipient, sender_qualifier=subject.recipient_qualifier,
        recipient=subject.sender, recipient_qualifier=subject.sender_qualifier,
        prepared=f"{date}:{prepared.strftime('%H%M')}", control_reference=reference,
        acknowledgement_requested=False, test=subject.test)
    message = OutgoingMessage("1", contrl_identifier(version), body)
    return render_interchange(header, [message], separators)


# -- reading a CONTRL back ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """One UCI, UCF, UCM, UCS or UCD: the action (0 where the segment has none), the
    syntax error (0 when none), the service segment and the element position."""

    reference: str  # 0020 (UCI), 0048 (UCF), 0062 (UCM), 0096 (UCS), "" (UCD)
    action: int
    syntax_error: int = 0
    service_segment: str = ""
    element: int = 0
    component: int = 0
    message_type: tuple[str, ...] = ()  # UCM S009


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A CONTRL message as read: the interchange report, then, in order, the group, message,
    segment and data element reports (``details``)."""

    interchange: Report
    subject_sender: str
    subject_recipient: str
    details: tuple[tuple[str, Report], ...]  # (tag, report): UCF/UCM/UCS/UCD

    def reports(self, tag: str) -> tuple[Report, ...]:
        return tuple(report for found, report in self.details if found == tag)

    def groups(self) -> tuple[GroupReport, ...]:
        """Each UCF with the UCMs that follow it (before the next UCF): a group's report
        and its messages' reports."""
        found: list[GroupReport] = []
        for tag, report in self.details:
            if tag == "UCF":
                found.append(GroupReport(report))
            elif tag == "UCM" and found:
                found[-1] = replace(found[-1], messages=(*found[-1].messages, report))
        return tuple(found)


@dataclass(frozen=True, slots=True)
class GroupReport:
    """A functional group's UCF as read, and the UCMs of its messages."""

    group: Report
    messages: tuple[Report, ...] = ()


def read_contrl(message: Message) -> Acknowledgement:
    """The acknowledgement a CONTRL message carries; EdifactError if it is not one."""
    body = message.body()
    if message.identifier.type != CONTRL or not body or body[0].tag != "UCI":
        raise EdifactError("a CONTRL message begins with UCI", code="EDI_CONTRL_INVALID",
                           where=Where(Level.MESSAGE, 13, message_reference=message.reference,
                                       message_type=message.identifier.components()))
    uci_segment = body[0]
    details = tuple((s.tag, report_of(s)) for s in body[1:]
                    if s.tag in {"UCF", "UCM", "UCS", "UCD"})
    return Acknowledgement(interchange=report_of(uci_segment),
                           subject_sender=uci_segment.value(1),
                           subject_recipient=uci_segment.value(2), details=details)


def report_of(found: Segment) -> Report:
    if found.tag == "UCS":
        return Report(found.value(0), 0, number(found.value(1)))
    if found.tag == "UCD":
        return Report("", 0, number(found.value(0)), "", number(found.value(1)),
                      number(found.value(1, 1)))
    first = 2 if found.tag == "UCM" else 3  # 0083 after S009 (UCM), after S002 S003 (UCI, UCF)
    return Report(found.value(0), number(found.value(first)), number(found.value(first + 1)),
                  found.value(first + 2), number(found.value(first + 3)),
                  number(found.value(first + 3, 1)),
                  found.components(1) if found.tag == "UCM" else ())


def number(text: str) -> int:
    return int(text) if text.isdigit() else 0
