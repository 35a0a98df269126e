"""What the SMDG container messages over UN/EDIFACT (BAPLIE bay plans, COPRAR orders, COARRI
reports) share: the adapter skeleton (`SmdgAdapter`: each message of an interchange a
document of its own, its version in UNH S010, the business rules' refusals, a render held to
parse), and the readers and writers of the segments they have in common (TDT with the ship,
LOC places and stowage cells, EQD, MEA masses, DGS dangerous goods, dates).
docs/adapters.md, "SMDG container messages"."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any, ClassVar

from message_formats import CodedError
from message_formats.edifact import (
    InterchangeHeader,
    Level,
    Message,
    MessageId,
    OutgoingMessage,
    Segment,
    Where,
    decimal_value,
    read_interchange,
    render_interchange,
    whole_number,
)
from message_formats.edifact import segment as make_segment

from .base import ParseResult, RenderError, RuleViolationError
from .edi_text import several_messages_read
from .fal1 import IMO_CHECK_DIGIT_RULE, is_valid_imo_number
from .fal2 import CONTAINER_CHECK_DIGIT_RULE
from .fal7 import DANGEROUS_GOODS_LIST, UN_NUMBER_CLASS_RULE, unknown_un_number_warning
from .iso6346 import is_valid_container_number

STOWAGE_CELL_RULE = "is not a stowage cell BBBRRTT (bay, row, tier: seven digits, ISO 9711-1)"
UNLOCODE_RULE = "is not a UN/LOCODE ([A-Z]{2}[A-Z2-9]{3})"
STOWAGE_CELL = re.compile(r"[0-9]{7}")
MASS = Decimal("0.001")
FULL, EMPTY = "5", "4"

_UNLOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_UN_NUMBER = re.compile(r"[0-9]{4}")
_IMDG_CLASS = re.compile(r"[1-9](?:\.[1-6])?[A-S]?")
_COUNTRY = re.compile(r"[A-Z]{2}")
_TENTH = Decimal("0.1")
_MAX_MASS = Decimal("1e12")
_POUND_KG = Decimal("0.45359237")
_IMO_QUALIFIER, _CALL_SIGN_QUALIFIER = "146", "103"
_FULL_OR_EMPTY = {"": None, FULL: "Full", EMPTY: "Empty"}
_FULL_OR_EMPTY_CODES = {value: code for code, value in _FULL_OR_EMPTY.items()}
_PACKING_GROUPS = {"1": "I", "2": "II", "3": "III"}
_PACKING_GROUP_CODES = {group: code for code, group in _PACKING_GROUPS.items()}
# MEA qualifiers (6311 measurement purpose, C502 6313 property) of the gross mass and the
# verified gross mass, as SMDG 2.x and 3.x and the COPRAR/COARRI manuals write them.
_GROSS_MASS = frozenset({("WT", ""), ("WT", "G"), ("AAE", "G"), ("AAE", "")})
_VGM = "VGM"
# UNOA, ISO 9735 level A: upper case, digits, space and . , - ( ) / = (and the service
# characters ' + : ?, released when they occur in data).
_LEVEL_A = re.compile(r"[A-Z0-9 .,\-()/='+:?]*")
# What a writer raises on a record that lacks the shape its schema promises.
_RENDER_ERRORS = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, IndexError,
                  UnicodeError)


# ---------------------------------------------------------------- refusals


def _where(segment: Segment, element: str = "") -> str:
    """How a refusal names a field: the segment tag (with its qualifier), its position in
    the message, and the data element, e.g. "LOC+147 (segment 12) C517 3225"."""
    qualifier = segment.value(0)
    tag = f"{segment.tag}+{qualifier}" if qualifier else segment.tag
    return f"{tag} (segment {segment.number}){' ' + element if element else ''}"


class MessageRuleViolation(RuleViolationError):
    """A business rule broken inside an EDIFACT message. `where` (set by `SmdgAdapter.parse`,
    which knows the message) is how the gateway's CONTRL reports it: the message rejected,
    and the segment at `line` with ISO 9735 syntax error 12 (invalid value) or 13 (missing)."""

    where: Where | None = None


# ISO 9735-4 syntax errors (0085) a business rule is reported with.
_INVALID_VALUE, _MISSING = 12, 13


def refusal(code: str, rule: str, segment: Segment, element: str = "") -> MessageRuleViolation:
    """A business-rule refusal naming the segment and data element, never a value; `line` is
    the segment's position in its message, as CONTRL's UCS 0096 counts it."""
    return MessageRuleViolation(f"{_where(segment, element)}: {rule}", code=code,
                                line=segment.number)


def missing(what: str, segment: Segment) -> MessageRuleViolation:
    return refusal("RULE_REQUIRED", f"{what} is required", segment)


def reported_at(message: Message, refused: MessageRuleViolation) -> Where:
    """Where a CONTRL reports a rule broken in `message`: at the refused segment."""
    syntax_error = _MISSING if refused.code == "RULE_REQUIRED" else _INVALID_VALUE
    number = refused.line or 1
    return Where(Level.SEGMENT, syntax_error, message_reference=message.reference,
                 message_type=message.segments[0].components(1), segment_number=number,
                 segment_tag=message.segments[number - 1].tag)


# ---------------------------------------------------------------- the adapter skeleton


class SmdgAdapter:
    """An adapter of one SMDG message type over UN/EDIFACT. `parse` reads the interchange
    with the EDIFACT layer (whose EDI_* refusals pass unchanged), takes each message (of
    `message_type` in one of `releases`: another is refused alone), then calls the hooks
    `read` (message -> record), `business_key` and `check` (rules across the message ->
    warnings). `render` calls `write` and holds the bytes to `parse`: what parse would
    refuse, or what would not read back as the record, is a RenderError."""

    format_id: ClassVar[str]
    document_type: ClassVar[str]
    schema_name: ClassVar[str]
    schema_version: ClassVar[int] = 1
    media_type: ClassVar[str] = "application/EDIFACT"
    message_type: ClassVar[str]
    releases: ClassVar[frozenset[str]]  # UNH S009 0054 of the directories read

    __slots__ = ()

    @property
    def edifact_message_types(self) -> frozenset[str]:
        return frozenset({self.message_type})

    def parse(self, data: bytes) -> ParseResult:
        """The interchange's message read, or of an interchange of several, each one as a
        document of its own (`parts`, as the EDIFACT adapters read them: adapters.edi_text
        several_messages_read, at most MAX_MESSAGES)."""
        interchange = read_interchange(data)
        if len(interchange.messages) == 1:
            return self._message_read(interchange.messages[0])
        return several_messages_read(interchange, self._message_read)

    def _message_read(self, message: Message) -> ParseResult:
        try:
            self._check_identifier(message)
            return self._parsed(message)
        except MessageRuleViolation as exc:
            exc.where = reported_at(message, exc)
            raise

    def _parsed(self, message: Message) -> ParseResult:
        version = document_version(message)
        record = self.read(message)
        key = self.business_key(record)
        try:
            warnings = self.check(record, message)
        except RuleViolationError as exc:
            exc.business_key, exc.document_version = key, version
            raise
        return ParseResult(record=record, business_key=key, document_version=version,
                           warnings=warnings)

    def render(self, record: Mapping[str, Any]) -> bytes:
        header = record.get("header")
        version = 1 if header is None else int(header["document_version"])
        body = {k: v for k, v in record.items() if k != "header"}
        try:
            data = self.write(body, version)
            again = self.parse(data)
        except _RENDER_ERRORS as exc:
            raise RenderError(f"cannot render {self.message_type} record: "
                              f"{type(exc).__name__}: {exc}") from None
        except CodedError as exc:
            raise RenderError(f"rendered {self.message_type} is not valid: {exc.code}: "
                              f"{exc.message}") from None
        if again.record != body:
            raise RenderError(f"the record holds what a {self.message_type} of its version "
                              "does not carry")
        return data

    def _check_identifier(self, message: Message) -> None:
        identifier, unh = message.identifier, message.segments[0]
        if identifier.type != self.message_type:
            raise refusal("RULE_MESSAGE_TYPE", f"is not {self.message_type}", unh, "S009 0065")
        if (identifier.version, identifier.agency) != ("D", "UN") or (
                identifier.release not in self.releases):
            directories = ", ".join(f"D:{release}" for release in sorted(self.releases))
            raise refusal("RULE_MESSAGE_VERSION", f"is not a directory read ({directories})",
                          unh, "S009")

    # ------------------------------------------------------------ the hooks

    def read(self, message: Message) -> dict[str, Any]:
        raise NotImplementedError

    def business_key(self, record: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def check(self, record: Mapping[str, Any], message: Message) -> tuple[str, ...]:
        return ()

    def write(self, record: Mapping[str, Any], version: int) -> bytes:
        raise NotImplementedError


def document_version(message: Message) -> int:
    """UNH S010 0070, the sequence of transfers: how often the sender has sent this document.
    1 when absent (a first transfer)."""
    unh = message.segments[0]
    text = unh.value(3)
    if not text:
        return 1
    if not whole_number(text) or int(text) < 1:
        raise refusal("RULE_DOCUMENT_VERSION", "is not a positive sequence number", unh,
                      "S010 0070")
    return int(text)


def ship_key(record: Mapping[str, Any]) -> str:
    """The ship in a business key: its IMO number, else its call sign."""
    vessel = record["vessel"]
    return str(vessel["imo_number"] or vessel["call_sign"])


# ---------------------------------------------------------------- reading segments


def groups_from(body: Sequence[Segment], starts_group: Callable[[Segment], bool]
                ) -> tuple[tuple[Segment, ...], list[tuple[Segment, ...]]]:
    """The segments before the first that `starts_group`, and one group from each such
    segment to the next."""
    starts = [i for i, s in enumerate(body) if starts_group(s)]
    bounds = [*starts, len(body)]
    return (tuple(body[: starts[0] if starts else len(body)]),
            [tuple(body[a:b]) for a, b in pairwise(bounds)])


def first(segments: Iterable[Segment], tag: str, qualifier: str | None = None
          ) -> Segment | None:
    for segment in segments:
        if segment.tag == tag and (qualifier is None or segment.value(0) == qualifier):
            return segment
    return None


def optional(value: str) -> str | None:
    return value or None


def header_segments(head: Sequence[Segment], unh: Segment) -> tuple[Segment, Segment]:
    """BGM with a document number and TDT+20 with a voyage number, which every SMDG
    container message has."""
    bgm = first(head, "BGM")
    if bgm is None or not bgm.value(1):
        raise missing("BGM with a document number (1004)", bgm or unh)
    tdt = first(head, "TDT", "20")
    if tdt is None or not tdt.value(1):
        raise missing("TDT+20 with a voyage number (8028)", tdt or bgm)
    return bgm, tdt


def local_time(segment: Segment) -> str:
    """A DTM value as CCYYMMDDHHMM (local time: EDIFACT carries no zone). Format 201 has a
    two-digit year, which a document of a current voyage puts in 20YY."""
    text, date_format = segment.value(0, 1), segment.value(0, 2)
    if date_format == "203" and re.fullmatch(r"[0-9]{12}", text):
        value = text
    elif date_format == "201" and re.fullmatch(r"[0-9]{10}", text):
        value = f"20{text}"
    else:
        raise refusal("RULE_DATE", "is not a date and time of format 201 or 203", segment,
                      "C507 2380")
    try:
        datetime.strptime(value, "%Y%m%d%H%M")
    except ValueError:
        raise refusal("RULE_DATE", "is not a date and time that exists", segment,
                      "C507 2380") from None
    return value


def optional_time(segments: Iterable[Segment], qualifier: str) -> str | None:
    segment = first(segments, "DTM", qualifier)
    return None if segment is None else local_time(segment)


def location(segments: Iterable[Segment], qualifier: str) -> str | None:
    """The UN/LOCODE of the first LOC with `qualifier`, None without one."""
    segment = first(segments, "LOC", qualifier)
    if segment is None:
        return None
    code = segment.value(1)
    if _UNLOCODE.fullmatch(code) is None:
        raise refusal("RULE_UNLOCODE", UNLOCODE_RULE, segment, "C517 3225")
    return code


def stowage_cell(cell: Segment) -> str:
    if STOWAGE_CELL.fullmatch(cell.value(1)) is None:
        raise refusal("RULE_STOWAGE_CELL", STOWAGE_CELL_RULE, cell, "C517 3225")
    return cell.value(1)


def reference(segments: Iterable[Segment], qualifier: str) -> str | None:
    for segment in segments:
        if segment.tag == "RFF" and segment.value(0, 0) == qualifier:
            return optional(segment.value(0, 1))
    return None


def party(segments: Iterable[Segment], qualifiers: Iterable[str]) -> str | None:
    """The code (C082 3039) of the first NAD with one of `qualifiers`."""
    wanted = frozenset(qualifiers)
    for segment in segments:
        if segment.tag == "NAD" and segment.value(0) in wanted:
            return optional(segment.value(1, 0))
    return None


def read_vessel(tdt: Segment) -> dict[str, Any]:
    """The ship of TDT C222: one identifier, the IMO number (qualifier 146, its check digit
    verified) or the call sign (103), its name and nationality."""
    identifier, qualifier = tdt.value(7, 0), tdt.value(7, 1)
    if not identifier:
        raise refusal("RULE_REQUIRED", "the ship's identifier is required", tdt, "C222 8213")
    if qualifier not in (_IMO_QUALIFIER, _CALL_SIGN_QUALIFIER):
        raise refusal("RULE_VESSEL_ID", "is neither 146 (IMO number) nor 103 (call sign)",
                      tdt, "C222 1131")
    if qualifier == _IMO_QUALIFIER and not is_valid_imo_number(identifier):
        raise refusal("RULE_IMO_CHECK_DIGIT", IMO_CHECK_DIGIT_RULE, tdt, "C222 8213")
    flag = tdt.value(7, 4)
    if flag and _COUNTRY.fullmatch(flag) is None:
        raise refusal("RULE_FLAG_STATE", "is not an ISO 3166-1 alpha-2 country code", tdt,
                      "C222 8453")
    return {
        "name": optional(tdt.value(7, 3)),
        "imo_number": identifier if qualifier == _IMO_QUALIFIER else None,
        "call_sign": identifier if qualifier == _CALL_SIGN_QUALIFIER else None,
        "flag_state": optional(flag),
    }


def container_number(eqd: Segment) -> str:
    if not eqd.value(1):
        raise missing("EQD with a container number (C237 8260)", eqd)
    if not is_valid_container_number(eqd.value(1)):
        raise refusal("RULE_CONTAINER_CHECK_DIGIT", CONTAINER_CHECK_DIGIT_RULE, eqd,
                      "C237 8260")
    return eqd.value(1)


def full_or_empty(eqd: Segment) -> str | None:
    code = eqd.value(5)
    if code not in _FULL_OR_EMPTY:
        raise refusal("RULE_FULL_OR_EMPTY", "is neither 5 (full) nor 4 (empty)", eqd, "8169")
    return _FULL_OR_EMPTY[code]


def masses(group: Iterable[Segment]) -> tuple[Decimal | None, Decimal | None]:
    """The gross mass and the verified gross mass, by any of the SMDG qualifiers."""
    gross = verified = None
    for segment in group:
        if segment.tag != "MEA":
            continue
        qualifiers = (segment.value(0), segment.value(1))
        if _VGM in qualifiers:
            verified = _mass(segment)
        elif qualifiers in _GROSS_MASS:
            gross = _mass(segment)
    return gross, verified


def _mass(segment: Segment) -> Decimal:
    unit, value = segment.value(2, 0), decimal_value(segment.value(2, 1))
    if unit not in ("KGM", "LBR"):
        raise refusal("RULE_MASS", "unit is neither KGM nor LBR", segment, "C174 6411")
    if value is None or not 0 < value < _MAX_MASS:
        raise refusal("RULE_MASS", "is not a positive number", segment, "C174 6314")
    kilograms = value if unit == "KGM" else value * _POUND_KG
    return kilograms.quantize(MASS)


def read_dangerous_goods(dgs: Segment) -> dict[str, Any]:
    """DGS under the IMDG Code: class, UN number, flash point, packing group, EmS; the class
    and packing group held to the Dangerous Goods List excerpt (adapters/fal7.py)."""
    imdg_class, un_number = dgs.value(1, 0), dgs.value(2, 0)
    if _IMDG_CLASS.fullmatch(imdg_class) is None:
        raise refusal("RULE_IMDG_CLASS", "is not an IMDG class or division", dgs, "C205 8351")
    if _UN_NUMBER.fullmatch(un_number) is None:
        raise refusal("RULE_UN_NUMBER", "is not a UN number (four digits)", dgs, "C234 7124")
    group_code = dgs.value(4)
    if group_code and group_code not in _PACKING_GROUPS:
        raise refusal("RULE_PACKING_GROUP", "is not 1, 2 or 3", dgs, "8339")
    packing_group = _PACKING_GROUPS.get(group_code)
    entry = DANGEROUS_GOODS_LIST.get(un_number)
    if entry is not None and not entry.allows_class(imdg_class):
        raise refusal("RULE_UN_NUMBER_CLASS", UN_NUMBER_CLASS_RULE, dgs, "C205 8351")
    if entry is not None and packing_group is not None and packing_group not in (
            entry.packing_groups):
        raise refusal("RULE_UN_NUMBER_CLASS", "is not a packing group the Dangerous Goods "
                      "List assigns to the UN number", dgs, "8339")
    return {
        "imdg_class": imdg_class,
        "un_number": un_number,
        "packing_group": packing_group,
        "flash_point_celsius": _flash_point(dgs),
        "ems": optional(dgs.value(5)),
    }


def _flash_point(dgs: Segment) -> Decimal | None:
    return _celsius(dgs, 3, "RULE_FLASH_POINT", "C223")


def temperature_setting(group: Iterable[Segment]) -> Decimal | None:
    """The transport temperature a reefer is set to (TMP+2), in degrees Celsius."""
    tmp = first(group, "TMP", "2")
    return None if tmp is None else _celsius(tmp, 1, "RULE_TEMPERATURE", "C239")


def _celsius(segment: Segment, element: int, code: str, name: str) -> Decimal | None:
    """A temperature (value and unit CEL or FAH, components of `element`) in degrees
    Celsius with one decimal place; None when the value is empty."""
    text, unit = segment.value(element, 0), segment.value(element, 1)
    if not text:
        return None
    value = decimal_value(text)
    if value is None or unit not in ("CEL", "FAH") or abs(value) >= 1000:
        raise refusal(code, "is not a temperature in CEL or FAH", segment, name)
    celsius = value if unit == "CEL" else (value - 32) * 5 / 9
    return celsius.quantize(_TENTH)


def dangerous_goods_of(group: Iterable[Segment]) -> list[dict[str, Any]]:
    return [read_dangerous_goods(s) for s in group if s.tag == "DGS"]


@dataclass(frozen=True, slots=True)
class _Field:
    """A container field and where a message holds it: the segment and its data element."""

    name: str
    tag: str
    qualifier: str | None
    element: str


_CELL_FIELD = _Field("stowage_position", "LOC", "147", "C517 3225")
_CONTAINER_FIELD = _Field("container_number", "EQD", None, "C237 8260")


def _check_each_once(containers: Sequence[Mapping[str, Any]], groups: Sequence[Sequence[Segment]],
                    field: _Field, code: str, rule: str) -> None:
    """Each container's `field` occurs once: the second occurrence is refused."""
    seen: set[Any] = set()
    for container, group in zip(containers, groups, strict=True):
        value = container[field.name]
        if value is not None and value in seen:
            segment = first(group, field.tag, field.qualifier)
            assert segment is not None  # the field was read from it
            raise refusal(code, rule, segment, field.element)
        seen.add(value)


def check_cells_and_containers_once(containers: Sequence[Mapping[str, Any]],
                                    groups: Sequence[Sequence[Segment]]) -> None:
    """No cell is occupied twice, no container listed twice."""
    _check_each_once(containers, groups, _CONTAINER_FIELD, "RULE_CONTAINER_TWICE",
                    "names a container already in the message")
    _check_each_once(containers, groups, _CELL_FIELD, "RULE_STOWAGE_CELL_TWICE",
                    "names a cell already occupied")


def check_equipment_count(body: Sequence[Segment], count: int) -> None:
    """CNT+16, the total number of equipment, when sent, is the number of containers."""
    cnt = first(body, "CNT")
    if cnt is not None and cnt.value(0, 0) == "16" and cnt.value(0, 1) != str(count):
        raise refusal("RULE_EQUIPMENT_COUNT", "is not the number of containers in the message",
                      cnt, "C270 6066")


def unknown_un_numbers(containers: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """A warning for each dangerous goods entry whose UN number the list excerpt lacks."""
    return tuple(
        unknown_un_number_warning(f"container {i + 1} DGS {j + 1} C234 7124")
        for i, container in enumerate(containers)
        for j, goods in enumerate(container["dangerous_goods"])
        if goods["un_number"] not in DANGEROUS_GOODS_LIST)


# ---------------------------------------------------------------- writing segments


def formatted_decimal(value: Decimal, places: Decimal) -> str:
    if not isinstance(value, Decimal):
        raise TypeError(f"expected a Decimal, not {type(value).__name__}")
    return format(value.quantize(places).normalize(), "f")


def write_time(value: str, date_format: str) -> str:
    if date_format == "203":
        return value
    if not value.startswith("20"):
        raise ValueError("dates of format 201 hold only the years 2000 to 2099")
    return value[2:]


def vessel_segment(record: Mapping[str, Any], mode: str = "") -> Segment:
    """TDT+20: voyage, carrier and the ship by one identifier."""
    vessel, carrier = record["vessel"], record["carrier"]
    if vessel["imo_number"] is not None and vessel["call_sign"] is not None:
        raise ValueError("a TDT names the ship by one identifier, IMO number or call sign")
    if vessel["imo_number"] is not None:
        identifier, qualifier = vessel["imo_number"], _IMO_QUALIFIER
    else:
        identifier, qualifier = vessel["call_sign"], _CALL_SIGN_QUALIFIER
    return make_segment("TDT", "20", record["voyage_number"], mode, "",
                        [carrier, "172", "20"] if carrier else "", "", "",
                        [identifier, qualifier, "", vessel["name"] or "",
                         vessel["flag_state"] or ""])


def location_segment(qualifier: str, code: str | None) -> Iterator[Segment]:
    if code is not None:
        yield make_segment("LOC", qualifier, [code, "139", "6"])


def cell_segment(cell: str | None) -> Iterator[Segment]:
    if cell is not None:
        yield make_segment("LOC", "147", [cell, "", "5"])


def time_segment(qualifier: str, value: str | None, date_format: str) -> Iterator[Segment]:
    if value is not None:
        yield make_segment("DTM", [qualifier, write_time(value, date_format), date_format])


def temperature_segment(celsius: Decimal | None) -> Iterator[Segment]:
    if celsius is not None:
        yield make_segment("TMP", "2", [formatted_decimal(celsius, _TENTH), "CEL"])


def mass_segment(qualifiers: tuple[str, str], value: Decimal | None) -> Iterator[Segment]:
    if value is not None:
        yield make_segment("MEA", *qualifiers, ["KGM", formatted_decimal(value, MASS)])


def reference_segments(container: Mapping[str, Any]) -> Iterator[Segment]:
    for qualifier, field in (("BN", "booking_reference"), ("BM", "bill_of_lading_number")):
        if container[field] is not None:
            yield make_segment("RFF", [qualifier, container[field]])


def party_segment(qualifier: str, code: str | None) -> Iterator[Segment]:
    if code is not None:
        yield make_segment("NAD", qualifier, [code, "172", "20"])


def equipment_segment(container: Mapping[str, Any], status: str = "") -> Segment:
    """EQD+CN: number, ISO size-type, equipment status (8249) and full or empty (8169)."""
    size_type = container["size_type"]
    return make_segment("EQD", "CN", container["container_number"],
                        [size_type, "102", "5"] if size_type else "", "", status,
                        _FULL_OR_EMPTY_CODES[container["full_or_empty"]])


def dangerous_goods_segments(container: Mapping[str, Any]) -> Iterator[Segment]:
    for goods in container["dangerous_goods"]:
        flash_point = goods["flash_point_celsius"]
        yield make_segment(
            "DGS", "IMD", goods["imdg_class"], goods["un_number"],
            [] if flash_point is None else [formatted_decimal(flash_point, _TENTH), "CEL"],
            _PACKING_GROUP_CODES[goods["packing_group"]] if goods["packing_group"] else "",
            goods["ems"] or "")


def one_message_interchange(message_type: str, message_version: str, body: Sequence[Segment],
                            *, prepared_at: str | None, version: int, unoa_syntax: str) -> bytes:
    """An interchange of one message, one segment a line, in the smallest repertoire that
    holds the values: UNOA (in syntax version `unoa_syntax`), else UNOC (3), else UNOY (4).
    Its references are a checksum of the content (a render is deterministic), UNB's date the
    document's preparation time (or 2000-01-01). UNB names PXGATEWAY and the placeholder
    recipient PXRECIPIENT: a record does not know who receives it."""
    directory, release, association = message_version.split(":")
    values = "".join(value for s in body for element in s.elements for value in element)
    syntax_id, syntax_version = _syntax_for(values, unoa_syntax)
    reference = f"{zlib.crc32(values.encode('utf-8')):08X}"
    prepared = prepared_at or "200001010000"
    date = prepared[:8] if syntax_version == "4" else prepared[2:8]
    header = InterchangeHeader(syntax_id, syntax_version, "PXGATEWAY", "", "PXRECIPIENT", "",
                               f"{date}:{prepared[8:]}", reference, False, False)
    message = OutgoingMessage(reference, MessageId(message_type, directory, release, "UN",
                                                   association), body,
                              (str(version),) if version > 1 else ())
    return render_interchange(header, [message], line_breaks=True)


def _syntax_for(values: str, unoa_syntax: str) -> tuple[str, str]:
    if _LEVEL_A.fullmatch(values):
        return "UNOA", unoa_syntax
    try:
        values.encode("latin-1")
    except UnicodeEncodeError:
        return "UNOY", "4"
    return "UNOC", "3"
