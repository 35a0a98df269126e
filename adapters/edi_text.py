"""What the UN/EDIFACT adapters share: reading the values of their segments (dates, numbers,
locations) with refusals that name the segment and data element, and writing an interchange
back (UNA, UNB, UNH … UNT, UNZ) with the release character where the data needs it.

The interchange itself (envelopes, separators, control counts) is message_formats.edifact's;
this module only reads and writes the data of one message."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from message_formats import CodedError, FormatError, edifact
from message_formats.edifact import (
    EdifactError,
    Group,
    Interchange,
    InterchangeHeader,
    Level,
    Message,
    MessageId,
    Segment,
    Separators,
    Where,
    decimal_value,
    segment,
)

from .base import AdapterError, DocumentPart, ParseResult, RenderError, RuleViolationError
from .toolkit import RENDER_ERRORS
from .toolkit import document_version as record_version

# What render writes: syntax 4 with the UNA defaults and the repetition separator *, in
# ISO 8859-1 when every character fits, else UTF-8.
SEPARATORS = Separators(repetition="*")
LATIN_1, UTF_8 = "UNOC", "UNOY"
# A canonical record that keeps no interchange envelope is rendered undated (UNB S004 is
# mandatory); the delivery that sends it knows its time.
UNDATED = datetime(2000, 1, 1)
UNLOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
UNLOCODE_LIST, UNECE_AGENCY = "139", "6"

REQUIRED = "RULE_EDIFACT_REQUIRED"
DATE_TIME = "RULE_DATE_TIME"
NUMBER = "RULE_NUMBER"
UNLOCODE_RULE = "RULE_UNLOCODE"
MESSAGE_TYPE = "RULE_EDIFACT_MESSAGE_TYPE"
MESSAGE_LIMIT = "RULE_EDIFACT_TOO_MANY_MESSAGES"
# The most messages one interchange may hold, each decided as a document of its own (its own
# event, routing, deliveries and trail records): one submission's work stays bounded.
MAX_MESSAGES = 100
VERSION_INVALID = "RULE_DOCUMENT_VERSION"

# DTM 2379 formats read: code -> (strftime pattern render writes, digits of the canonical
# time). Reading is by hand: strptime costs more than the rest of a segment's mapping.
_DATE_FORMATS = {
    "102": ("%Y%m%d", 8),
    "201": ("%y%m%d%H%M", 12),
    "203": ("%Y%m%d%H%M", 12),
    "204": ("%Y%m%d%H%M%S", 14),
}
_TWO_DIGIT_YEAR = frozenset({"201"})
_FORMAT_BY_LENGTH = {8: "102", 10: "201", 12: "203", 14: "204"}
_LENGTHS = {code: length for length, code in _FORMAT_BY_LENGTH.items()}
_FORMAT_BY_DIGITS = {8: "102", 12: "203", 14: "204"}
_DIGITS = frozenset(_FORMAT_BY_DIGITS)
_TIMESPEC = {12: "minutes", 14: "seconds"}
_DIGITS_BY_LENGTH = {10: 8, 16: 12, 19: 14}  # 2026-12-03, 2026-12-03T18:00, …T18:00:30
_DECIMAL_PLACES = 6


class EdifactAdapter:
    """What the EDIFACT adapters share: their media type, and a render that reads its output
    back, so that what the format cannot carry is refused (RenderError), never dropped."""

    media_type: ClassVar[str] = "application/EDIFACT"
    schema_version: ClassVar[int] = 1
    label: ClassVar[str]  # the message type, e.g. "CUSCAR"
    cannot_carry: ClassVar[str]  # what a record may hold that the message does not
    edifact_message_types: ClassVar[frozenset[str]]
    max_messages: ClassVar[int] = MAX_MESSAGES
    __slots__ = ()

    def parse(self, data: bytes) -> ParseResult:
        """The interchange's message read, or of an interchange of several, each one
        (`parts`); a business rule's refusal says where its CONTRL reports it: the segment
        (UCS), or the message (UCM), with 0085 = 12."""
        interchange = edifact.read_interchange(data)
        messages = interchange.messages
        if len(messages) == 1:
            return self._message_read(interchange, messages[0])
        return self._messages_read(interchange, messages)

    def _message_read(self, interchange: Interchange, message: Message) -> ParseResult:
        check_message_type(message, self.edifact_message_types)
        try:
            return self.read(interchange, message)
        except SegmentRuleError as exc:
            exc.where = rule_refused_at(message, exc)
            raise

    def _messages_read(self, interchange: Interchange, messages: Sequence[Message]
                       ) -> ParseResult:
        return several_messages_read(
            interchange, lambda message: self._message_read(interchange, message),
            self.max_messages)

    @staticmethod
    def read(interchange: Interchange, message: Message) -> ParseResult:
        raise NotImplementedError

    @staticmethod
    def write(record: Mapping[str, Any], version: int) -> bytes:
        """The record as an interchange; KeyError, ValueError … for one it cannot write."""
        raise NotImplementedError

    def render(self, record: Mapping[str, Any]) -> bytes:
        version = record_version(record)
        try:
            rendered = self.write(record, version)
        except (*RENDER_ERRORS, FormatError) as exc:
            raise RenderError(f"cannot render {self.label}: {type(exc).__name__}: {exc}"
                              ) from None
        try:
            again = self.parse(rendered)
        except (RuleViolationError, FormatError) as exc:
            raise RenderError(f"rendered {self.label} is not valid: {exc.code}: "
                              f"{exc.message}") from None
        body = {name: value for name, value in record.items() if name != "header"}
        if again.record != body or again.document_version != version:
            raise RenderError(f"the record does not read back from {self.label}: it holds "
                              f"{self.cannot_carry}, or a text that does not read back")
        return rendered


class SegmentRuleError(RuleViolationError):
    """A business rule broken in one segment of a message: `line` is the segment's position
    (UNH = 1), `where` (set by EdifactAdapter.parse) places it for the CONTRL."""

    where: Where | None = None


def rule_refused_at(message: Message, exc: SegmentRuleError) -> Where:
    """The segment (UCS) of the message (UCM), with 0085 13 "missing" for what is missing,
    else 12 "invalid value"."""
    where = edifact.message_rejected(message, 13 if exc.code == REQUIRED else 12)
    number = exc.line
    if number is None or not 0 < number <= len(message.segments):
        return where
    return replace(where, level=Level.SEGMENT, segment_number=number,
                   segment_tag=message.segments[number - 1].tag)


def refused(code: str, segment: Segment, element: str, rule: str) -> SegmentRuleError:
    """A refusal naming the segment (tag and position in the message, UNH = 1, as CONTRL's
    UCS reports it; also given as `line`) and the data element, never a value."""
    return SegmentRuleError(f"{segment.tag} {element} (segment {segment.number}): {rule}",
                            code=code, line=segment.number)


def several_messages_read(interchange: Interchange,
                          read_one: Callable[[Message], ParseResult],
                          limit: int = MAX_MESSAGES) -> ParseResult:
    """Each message as a document of its own (docs/adapters.md, "Several messages per
    interchange"), read by `read_one`: the result is the first one read, with every
    message's outcome in `parts`; when none reads, the first one's refusal refuses the
    interchange. The EDIFACT adapters and the SMDG ones (adapters.smdg) share it."""
    messages = interchange.messages
    if len(messages) > limit:
        raise message_limit_refused(limit)
    groups = {group.reference: group for group in interchange.groups}
    parts = [message_part(number, message, read_one, groups.get(message.group_reference))
             for number, message in enumerate(messages, start=1)]
    own = next((part for part in parts if part.parsed is not None), None)
    if own is None:
        assert parts[0].refusal is not None
        raise parts[0].refusal
    assert own.parsed is not None
    marked = tuple(replace(part, parsed=None, own=True) if part is own else part
                   for part in parts)
    return replace(own.parsed, parts=marked)


def message_part(number: int, message: Message, read_one: Callable[[Message], ParseResult],
                 group: Group | None) -> DocumentPart:
    """The `number`-th message of an interchange as read, or its refusal placed in it; with
    the functional group (UNG) it is in, which a CONTRL's UCF names."""
    named = (number, message.reference, message.identifier.components())
    try:
        return DocumentPart(*named, parsed=read_one(message), group=group)
    except CodedError as exc:
        return DocumentPart(*named, refusal=placed_in(message, exc), group=group)


def check_message_type(message: Message, message_types: frozenset[str]) -> None:
    if message.identifier.type not in message_types:
        raise RuleViolationError(f"UNH S009 0065 (segment 1): the message type is not one "
                                 f"of {', '.join(sorted(message_types))}", code=MESSAGE_TYPE,
                                 line=1)


def message_limit_refused(limit: int) -> SegmentRuleError:
    """More messages than one interchange may hold: the interchange refused (UCI, 0085 18
    "unspecified error", as the layer's own bounds are)."""
    refusal = SegmentRuleError(f"UNZ 0036: an interchange holds at most {limit} messages",
                               code=MESSAGE_LIMIT)
    refusal.where = Where(Level.INTERCHANGE, 18, service_segment="UNZ", element=1)
    return refusal


def placed_in(message: Message, exc: CodedError) -> CodedError:
    """A message's refusal as one of several: placed at its message (UCM) for the CONTRL,
    unless it already says where (a segment's rule, the layer's own refusals)."""
    if isinstance(getattr(exc, "where", None), Where):
        return exc
    placed = SegmentRuleError(exc.message, code=exc.code, line=exc.line)
    placed.where = edifact.message_rejected(message, 13 if exc.code == REQUIRED else 12)
    if isinstance(exc, AdapterError):
        placed.business_key, placed.document_version = exc.business_key, exc.document_version
    return placed


def text_or_none(value: str) -> str | None:
    return value or None


def joined(segment: Segment, element: int) -> str | None:
    """The non-empty components of a data element (lines of a name, address or text)
    joined by one space; None when all are empty."""
    parts = [part for part in _components(segment, element) if part]
    return " ".join(parts) or None


def _components(segment: Segment, element: int) -> tuple[str, ...]:
    return segment.elements[element] if element < len(segment.elements) else ()


def lines(text: str | None, width: int, count: int) -> tuple[str, ...]:
    """`text` cut at spaces into at most `count` lines of at most `width` characters, the
    inverse of `joined`; ValueError when it does not fit or would not read back."""
    if text is None:
        return ()
    words = text.split(" ")
    if "" in words:
        raise ValueError("a text with leading, trailing or double spaces does not read back")
    out: list[str] = []
    for word in words:
        if out and len(out[-1]) + 1 + len(word) <= width:
            out[-1] = f"{out[-1]} {word}"
        else:
            out.append(word)
    if len(out) > count or any(len(line) > width for line in out):
        raise ValueError(f"a text does not fit {count} components of {width} characters")
    return tuple(out)


# ---------------------------------------------------------------- segment groups


def split_groups(segments: Sequence[Segment], *triggers: str
           ) -> tuple[tuple[Segment, ...], list[tuple[Segment, ...]]]:
    """The segments before the first trigger, and one group per trigger segment."""
    starts = [i for i, s in enumerate(segments) if s.tag in triggers]
    if not starts:
        return tuple(segments), []
    ends = [*starts[1:], len(segments)]
    return tuple(segments[:starts[0]]), [tuple(segments[a:b]) for a, b in zip(starts, ends,
                                                                              strict=True)]


def first(segments: Sequence[Segment], tag: str) -> Segment | None:
    return next((s for s in segments if s.tag == tag), None)


def qualified(segments: Sequence[Segment], tag: str, qualifier: str) -> Segment | None:
    return next((s for s in segments if s.tag == tag and s.value(0) == qualifier), None)


def places(segments: Sequence[Segment]) -> Iterator[tuple[Segment, tuple[Segment, ...]]]:
    """Each LOC with the DTMs that follow it, up to the next segment of another kind."""
    for index, place in enumerate(segments):
        if place.tag != "LOC":
            continue
        times = []
        for following in segments[index + 1:]:
            if following.tag != "DTM":
                break
            times.append(following)
        yield place, tuple(times)


def time_of(times: Sequence[Segment], qualifier: str) -> dict[str, Any] | None:
    dtm = next((t for t in times if t.value(0) == qualifier), None)
    return None if dtm is None else local_time(dtm)


# ---------------------------------------------------------------- values


def local_time(segment: Segment) -> dict[str, Any]:
    """A DTM C507 (qualifier:value:format) as a canonical local time: EDIFACT times carry no
    zone, so the record keeps the wall clock (local_date_time) and no instant."""
    text, code = segment.value(0, 1), segment.value(0, 2)
    code = code or _FORMAT_BY_LENGTH.get(len(text), "")
    pattern = _DATE_FORMATS.get(code)
    moment = None if pattern is None or len(text) != _LENGTHS[code] else _moment(
        text, code in _TWO_DIGIT_YEAR)
    if pattern is None or moment is None:
        raise refused(DATE_TIME, segment, "C507 2380", "must be a date or date and time in "
                      "format 102, 201, 203 or 204 (the format named by 2379)")
    return time_value(moment, pattern[1])


def interchange_time(interchange: Interchange, unb: Segment) -> dict[str, Any]:
    """UNB S004 (YYMMDD or CCYYMMDD, then HHMM) as a canonical local time of 12 digits."""
    date, _, clock = interchange.prepared.partition(":")
    moment = None if len(date) not in (6, 8) or len(clock) != 4 else _moment(
        date + clock, len(date) == 6)
    if moment is None:
        raise refused(DATE_TIME, unb, "S004", "must be a date (YYMMDD or CCYYMMDD) and a time "
                      "(HHMM)")
    return time_value(moment, 12)


def time_value(moment: datetime, digits: int) -> dict[str, Any]:
    return {"instant": None, "digits": digits, "local_date_time": iso_local(moment, digits)}


def iso_local(moment: datetime, digits: int) -> str:
    """ISO 8601 without a zone, to the day (8 digits), minute (12) or second (14)."""
    if digits == 8:
        return moment.date().isoformat()
    return moment.isoformat(timespec=_TIMESPEC[digits])


def local_value(text: str) -> dict[str, Any]:
    """The canonical local time of an ISO text written by iso_local (its length gives its
    digits); local_moment checks it."""
    return {"instant": None, "digits": _DIGITS_BY_LENGTH.get(len(text), 0),
            "local_date_time": text}


def local_moment(value: Mapping[str, Any]) -> datetime:
    """The wall-clock time of a canonical local time; ValueError for one given as an instant
    (EDIFACT writes no zone) or not written as iso_local writes it."""
    text, digits = value["local_date_time"], value["digits"]
    if value["instant"] is not None or not isinstance(text, str) or digits not in _DIGITS:
        raise ValueError("an EDIFACT time is a local date and time of 8, 12 or 14 digits")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None or iso_local(moment, digits) != text:
        raise ValueError("a local time is not ISO 8601 to the precision of its digits")
    return moment


def _moment(text: str, two_digit_year: bool) -> datetime | None:
    """CCYYMMDD[HHMM[SS]] (YYMMDD… with `two_digit_year`, 69-99 read as 19xx as strptime's
    %y does) as a datetime; None when the digits are no date and time."""
    if not (text.isascii() and text.isdigit()):
        return None
    if two_digit_year:
        year = int(text[:2])
        text = f"{1900 + year if year >= 69 else 2000 + year}{text[2:]}"
    if len(text) not in (8, 12, 14):
        return None
    try:
        return datetime(int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[8:10] or 0),
                        int(text[10:12] or 0), int(text[12:14] or 0))
    except ValueError:
        return None


def decimal(segment: Segment, element: int, component: int, name: str) -> Decimal | None:
    """A numeric value (either decimal mark, ISO 9735 §10) with at most six places; None
    when absent."""
    text = segment.value(element, component)
    if not text:
        return None
    value = decimal_value(text)
    if value is None or -int(value.as_tuple().exponent) > _DECIMAL_PLACES:
        raise refused(NUMBER, segment, name, "must be a number with at most six decimal "
                      "places")
    return value


def required_decimal(segment: Segment, element: int, component: int, name: str) -> Decimal:
    value = decimal(segment, element, component, name)
    if value is None:
        raise refused(REQUIRED, segment, name, "the value is required")
    return value


def location(segment: Segment, name: str = "C517 3225") -> str:
    """LOC C517 3225, which must be a UN/LOCODE when the code list (1131) is UN/LOCODE (139)
    or not named, and the agency (3055) is UN/ECE (6) or not named."""
    code = segment.value(1, 0)
    if not code:
        raise refused(REQUIRED, segment, name, "the location is required")
    listed = segment.value(1, 1) in ("", UNLOCODE_LIST) and segment.value(1, 2) in (
        "", UNECE_AGENCY)
    if listed and UNLOCODE.fullmatch(code) is None:
        raise refused(UNLOCODE_RULE, segment, name, "is not a UN/LOCODE ([A-Z]{2}[A-Z2-9]{3})")
    return code


def bgm_version(segment: Segment) -> int:
    """The document version: BGM C106 1056 (version identifier, in directories since D.01B;
    the gateway's own addition in earlier ones, as the XML forms' version attribute); 1
    when absent."""
    text = segment.value(1, 1)
    if not text:
        return 1
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and int(text) >= 1):
        raise refused(VERSION_INVALID, segment, "C106 1056", "the version must be a positive "
                      "whole number")
    return int(text)


# ---------------------------------------------------------------- writing


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the UNB and UNH of a rendered interchange say."""

    sender: str
    recipient: str
    prepared: datetime
    reference: str
    message_type: str
    version: str  # the S009 components after the type, e.g. "D:95B:UN:LOT10"


def date_time_segment(qualifier: str, value: Any) -> Segment:
    """DTM+qualifier:value:format of a canonical local time (ValueError: see local_moment)."""
    code = _FORMAT_BY_DIGITS[value["digits"]]
    text = local_moment(value).strftime(_DATE_FORMATS[code][0])
    return segment("DTM", (qualifier, text, code))


def format_number(value: Decimal) -> str:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError("a number is not a finite decimal")
    return format(value.normalize(), "f")


def interchange_bytes(envelope: Envelope, body: Iterable[Segment]) -> bytes:
    """A syntax-4 interchange of one message: UNOC (ISO 8859-1) when every character fits,
    else UNOY (UTF-8)."""
    prepared = envelope.prepared
    if not isinstance(prepared, datetime) or prepared.second or prepared.microsecond:
        raise ValueError("the interchange time is a date and time to the minute")
    identifier = MessageId(envelope.message_type, *envelope.version.split(":"))
    message = edifact.OutgoingMessage(envelope.reference, identifier, tuple(body))

    def in_repertoire(repertoire: str) -> bytes:
        header = InterchangeHeader(
            syntax_id=repertoire, syntax_version="4", sender=envelope.sender,
            sender_qualifier="", recipient=envelope.recipient, recipient_qualifier="",
            prepared=prepared.strftime("%Y%m%d:%H%M"), control_reference=envelope.reference,
            acknowledgement_requested=False, test=False)
        return edifact.render_interchange(header, (message,), SEPARATORS)

    try:
        return in_repertoire(LATIN_1)
    except EdifactError:  # a character beyond ISO 8859-1
        return in_repertoire(UTF_8)
