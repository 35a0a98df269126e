"""SMDG BAPLIE bay plans (UN/EDIFACT) to px.canonical.StowagePlan and back ("baplie-edifact").

Two layouts, chosen by the message identifier (UNH S009), docs/edifact-research.md §6:

- SMDG 2.x on directory D.95B (association codes SMDG20 ... SMDG22): the operator is NAD+CA,
  weights are MEA+WT (gross) and MEA+VGM, dates format 201 (YYMMDDHHMM);
- SMDG 3.x on directory D.13B (SMDG31, SMDG311): the operator is NAD+CF, weights are MEA+AAE+G
  and MEA+AAE+VGM, dates format 203 (CCYYMMDDHHMM).

Each occupied cell is the group of segments from one LOC+147 to the next. Inside a group the
reader goes by tag and qualifier, not by position, so the two layouts' different segment orders
read alike and either qualifier set is understood in either version; `render` writes each
layout's own. What the record has no field for (reefer temperatures TMP, over-dimensions DIM,
handling instructions HAN, free text FTX) is not kept: a render writes a bay plan without it.

Where dangerous goods are on board, `fal7_manifest` turns the record into what a FAL 7
dangerous goods manifest can honestly take from a bay plan (docs/adapters.md)."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any, ClassVar

from message_formats import CodedError
from message_formats.edifact import (
    InterchangeHeader,
    Message,
    MessageId,
    OutgoingMessage,
    Segment,
    decimal_value,
    read_interchange,
    render_interchange,
)
from message_formats.edifact import segment as make_segment

from .base import ParseResult, RenderError, RuleViolationError
from .fal1 import IMO_CHECK_DIGIT_RULE, is_valid_imo_number
from .fal2 import CONTAINER_CHECK_DIGIT_RULE
from .fal7 import (
    DANGEROUS_GOODS_LIST,
    UN_NUMBER_CLASS_RULE,
    unknown_un_number_warning,
)
from .iso6346 import is_valid_container_number

MESSAGE_TYPE = "BAPLIE"
STOWAGE_CELL_RULE = "is not a stowage cell BBBRRTT (bay, row, tier: seven digits, ISO 9711-1)"
UNLOCODE_RULE = "is not a UN/LOCODE ([A-Z]{2}[A-Z2-9]{3})"

_STOWAGE_CELL = re.compile(r"[0-9]{7}")
_UNLOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_UN_NUMBER = re.compile(r"[0-9]{4}")
_IMDG_CLASS = re.compile(r"[1-9](?:\.[1-6])?[A-S]?")
_COUNTRY = re.compile(r"[A-Z]{2}")
_DIGITS = re.compile(r"[0-9]+")
_MASS = Decimal("0.001")
_TENTH = Decimal("0.1")
_MAX_MASS = Decimal("1e12")
_POUND_KG = Decimal("0.45359237")
_IMO_QUALIFIER, _CALL_SIGN_QUALIFIER = "146", "103"
_FULL, _EMPTY = "5", "4"
_PACKING_GROUPS = {"1": "I", "2": "II", "3": "III"}
_PACKING_GROUP_CODES = {group: code for code, group in _PACKING_GROUPS.items()}
# UNOA, ISO 9735 level A: upper case, digits, space and . , - ( ) / = (and the service
# characters ' + : ?, released when they occur in data).
_LEVEL_A = re.compile(r"[A-Z0-9 .,\-()/='+:?]*")


# ---------------------------------------------------------------- the two SMDG layouts


@dataclass(frozen=True, slots=True)
class Layout:
    """What differs between the SMDG 2.x and 3.x bay plans, as far as the record goes."""

    smdg: str  # "2" or "3"
    release: str  # UN/EDIFACT directory release of the message
    operator_party: str  # NAD 3035 of the container operator
    gross_mass: tuple[str, str]  # MEA 6311 and C502 6313 of the gross mass
    verified_gross_mass: tuple[str, str]  # the same of the VGM
    date_format: str  # DTM 2379


SMDG2 = Layout("2", "95B", "CA", ("WT", ""), ("VGM", ""), "201")
SMDG3 = Layout("3", "13B", "CF", ("AAE", "G"), ("AAE", "VGM"), "203")
LAYOUTS = {layout.release: layout for layout in (SMDG2, SMDG3)}
_OPERATOR_PARTIES = frozenset(layout.operator_party for layout in LAYOUTS.values())


def layout_of(message_version: str) -> Layout:
    """The layout of a record's `message_version` ("D:95B:SMDG22"), by its directory."""
    release = message_version.split(":")[1] if message_version.count(":") == 2 else ""
    layout = LAYOUTS.get(release)
    if layout is None:
        raise ValueError("message_version names no SMDG BAPLIE directory (D:95B, D:13B)")
    return layout


# ---------------------------------------------------------------- refusals


def _where(segment: Segment, element: str = "") -> str:
    """How a refusal names a field: the segment tag (with its qualifier), its position in
    the message, and the data element, e.g. "LOC+147 (segment 12) C517 3225"."""
    qualifier = segment.value(0)
    tag = f"{segment.tag}+{qualifier}" if qualifier else segment.tag
    return f"{tag} (segment {segment.number}){' ' + element if element else ''}"


def refusal(code: str, rule: str, segment: Segment, element: str = "") -> RuleViolationError:
    """A business-rule refusal naming the segment and data element, never a value; `line` is
    the segment's position in its message, as CONTRL's UCS 0096 counts it."""
    return RuleViolationError(f"{_where(segment, element)}: {rule}", code=code,
                              line=segment.number)


def _missing(what: str, segment: Segment) -> RuleViolationError:
    return refusal("RULE_REQUIRED", f"{what} is required", segment)


# ---------------------------------------------------------------- EDIFACT -> record


def _groups(body: Sequence[Segment]) -> tuple[tuple[Segment, ...], list[tuple[Segment, ...]]]:
    """The segments before the first LOC+147, and one group per LOC+147 up to the next."""
    starts = [i for i, s in enumerate(body) if s.tag == "LOC" and s.value(0) == "147"]
    bounds = [*starts, len(body)]
    groups = [tuple(body[a:b]) for a, b in pairwise(bounds)]
    return tuple(body[: starts[0] if starts else len(body)]), groups


def _first(segments: Sequence[Segment], tag: str, qualifier: str | None = None
           ) -> Segment | None:
    for segment in segments:
        if segment.tag == tag and (qualifier is None or segment.value(0) == qualifier):
            return segment
    return None


def _optional(value: str) -> str | None:
    return value or None


def _layout_of_message(message: Message) -> Layout:
    identifier, unh = message.identifier, message.segments[0]
    if identifier.type != MESSAGE_TYPE:
        raise refusal("RULE_MESSAGE_TYPE", "is not a BAPLIE message", unh, "S009 0065")
    layout = LAYOUTS.get(identifier.release)
    if identifier.version != "D" or identifier.agency != "UN" or layout is None:
        raise refusal("RULE_MESSAGE_VERSION",
                      "is not an SMDG bay plan directory (D:95B for SMDG 2.x, D:13B for 3.x)",
                      unh, "S009")
    return layout


def _document_version(message: Message) -> int:
    """UNH S010 0070, the sequence of transfers: how often the sender has sent this plan. 1
    when absent (a first transfer)."""
    unh = message.segments[0]
    text = unh.value(3)
    if not text:
        return 1
    if _DIGITS.fullmatch(text) is None or int(text) < 1:
        raise refusal("RULE_DOCUMENT_VERSION", "is not a positive sequence number", unh,
                      "S010 0070")
    return int(text)


def _local_time(segment: Segment) -> str:
    """A DTM value as CCYYMMDDHHMM (local time: EDIFACT carries no zone). Format 201 has a
    two-digit year, which a bay plan, a document of the current voyage, puts in 20YY."""
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


def _location(segments: Sequence[Segment], qualifier: str) -> str | None:
    segment = _first(segments, "LOC", qualifier)
    if segment is None:
        return None
    code = segment.value(1)
    if _UNLOCODE.fullmatch(code) is None:
        raise refusal("RULE_UNLOCODE", UNLOCODE_RULE, segment, "C517 3225")
    return code


def _reference(segments: Sequence[Segment], qualifier: str) -> str | None:
    for segment in segments:
        if segment.tag == "RFF" and segment.value(0, 0) == qualifier:
            return _optional(segment.value(0, 1))
    return None


def _read_vessel(tdt: Segment) -> dict[str, Any]:
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
        "name": _optional(tdt.value(7, 3)),
        "imo_number": identifier if qualifier == _IMO_QUALIFIER else None,
        "call_sign": identifier if qualifier == _CALL_SIGN_QUALIFIER else None,
        "flag_state": _optional(flag),
    }


def _read_plan(message: Message, layout: Layout) -> dict[str, Any]:
    unh = message.segments[0]
    head, groups = _groups(message.body())
    bgm = _first(head, "BGM")
    if bgm is None or not bgm.value(1):
        raise _missing("BGM with a document number (1004)", bgm or unh)
    tdt = _first(head, "TDT", "20")
    if tdt is None or not tdt.value(1):
        raise _missing("TDT+20 with a voyage number (8028)", tdt or bgm)
    prepared = _first(head, "DTM", "137")
    identifier = message.identifier
    return {
        "document_number": bgm.value(1),
        "message_function": bgm.value(2) or "9",
        "message_version": f"{identifier.version}:{identifier.release}:{identifier.association}",
        "prepared_at": None if prepared is None else _local_time(prepared),
        "vessel": _read_vessel(tdt),
        "voyage_number": tdt.value(1),
        "carrier": _optional(tdt.value(4, 0)),
        "port_of_departure": _location(head, "5"),
        "next_port_of_call": _location(head, "61"),
        "containers": [_read_container(group, layout) for group in groups],
    }


def _read_container(group: Sequence[Segment], layout: Layout) -> dict[str, Any]:
    cell = group[0]
    if _STOWAGE_CELL.fullmatch(cell.value(1)) is None:
        raise refusal("RULE_STOWAGE_CELL", STOWAGE_CELL_RULE, cell, "C517 3225")
    eqd = _first(group, "EQD")
    if eqd is None or not eqd.value(1):
        raise _missing("EQD with a container number (C237 8260)", eqd or cell)
    if not is_valid_container_number(eqd.value(1)):
        raise refusal("RULE_CONTAINER_CHECK_DIGIT", CONTAINER_CHECK_DIGIT_RULE, eqd, "C237 8260")
    gross, verified = _masses(group)
    return {
        "stowage_position": cell.value(1),
        "container_number": eqd.value(1),
        "size_type": _optional(eqd.value(2)),
        "full_or_empty": _full_or_empty(eqd),
        "gross_mass_kg": gross,
        "verified_gross_mass_kg": verified,
        "operator": _operator(group),
        "port_of_loading": _location(group, "9"),
        "port_of_discharge": _location(group, "11"),
        "place_of_delivery": _location(group, "83"),
        "booking_reference": _reference(group, "BN"),
        "bill_of_lading_number": _reference(group, "BM"),
        "dangerous_goods": [_read_dangerous_goods(s) for s in group if s.tag == "DGS"],
    }


def _full_or_empty(eqd: Segment) -> str | None:
    code = eqd.value(5)
    if code in ("", _FULL, _EMPTY):
        return {"": None, _FULL: "Full", _EMPTY: "Empty"}[code]
    raise refusal("RULE_FULL_OR_EMPTY", "is neither 5 (full) nor 4 (empty)", eqd, "8169")


def _operator(group: Sequence[Segment]) -> str | None:
    for segment in group:
        if segment.tag == "NAD" and segment.value(0) in _OPERATOR_PARTIES:
            return _optional(segment.value(1, 0))
    return None


def _masses(group: Sequence[Segment]) -> tuple[Decimal | None, Decimal | None]:
    """The gross mass and the verified gross mass, by either layout's qualifiers."""
    gross = verified = None
    for segment in group:
        if segment.tag != "MEA":
            continue
        qualifiers = (segment.value(0), segment.value(1))
        if "VGM" in qualifiers:
            verified = _mass(segment)
        elif qualifiers in (SMDG2.gross_mass, SMDG3.gross_mass, ("WT", "G"), ("AAE", "")):
            gross = _mass(segment)
    return gross, verified


def _mass(segment: Segment) -> Decimal:
    unit, value = segment.value(2, 0), decimal_value(segment.value(2, 1))
    if unit not in ("KGM", "LBR"):
        raise refusal("RULE_MASS", "unit is neither KGM nor LBR", segment, "C174 6411")
    if value is None or not 0 < value < _MAX_MASS:
        raise refusal("RULE_MASS", "is not a positive number", segment, "C174 6314")
    kilograms = value if unit == "KGM" else value * _POUND_KG
    return kilograms.quantize(_MASS)


def _read_dangerous_goods(dgs: Segment) -> dict[str, Any]:
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
        "ems": _optional(dgs.value(5)),
    }


def _flash_point(dgs: Segment) -> Decimal | None:
    text, unit = dgs.value(3, 0), dgs.value(3, 1)
    if not text:
        return None
    value = decimal_value(text)
    if value is None or unit not in ("CEL", "FAH") or abs(value) >= 1000:
        raise refusal("RULE_FLASH_POINT", "is not a temperature in CEL or FAH", dgs, "C223")
    celsius = value if unit == "CEL" else (value - 32) * 5 / 9
    return celsius.quantize(_TENTH)


def _check_plan(record: Mapping[str, Any], message: Message) -> tuple[str, ...]:
    """The rules across containers: each cell and container once, CNT+16 (when sent) the
    number of containers; and the warnings."""
    _, groups = _groups(message.body())
    cells: set[str] = set()
    containers: set[str] = set()
    for group, container in zip(groups, record["containers"], strict=True):
        if container["stowage_position"] in cells:
            raise refusal("RULE_STOWAGE_CELL_TWICE", "names a cell already occupied",
                          group[0], "C517 3225")
        if container["container_number"] in containers:
            eqd = _first(group, "EQD")
            assert eqd is not None  # _read_container required it
            raise refusal("RULE_CONTAINER_TWICE", "names a container already stowed", eqd,
                          "C237 8260")
        cells.add(container["stowage_position"])
        containers.add(container["container_number"])
    count = _first(message.body(), "CNT")
    if count is not None and count.value(0, 0) == "16" and count.value(0, 1) != str(
            len(record["containers"])):
        raise refusal("RULE_EQUIPMENT_COUNT", "is not the number of containers in the plan",
                      count, "C270 6066")
    return tuple(
        unknown_un_number_warning(f"container {i + 1} DGS {j + 1} C234 7124")
        for i, container in enumerate(record["containers"])
        for j, goods in enumerate(container["dangerous_goods"])
        if goods["un_number"] not in DANGEROUS_GOODS_LIST)


def business_key(record: Mapping[str, Any]) -> str:
    """The ship (IMO number, else call sign), the voyage and the port the ship leaves: the
    versions of one port call's bay plan share it."""
    vessel = record["vessel"]
    ship = vessel["imo_number"] or vessel["call_sign"]
    return f"{ship}:{record['voyage_number']}:{record['port_of_departure'] or ''}"


# ---------------------------------------------------------------- record -> EDIFACT


def _syntax_for(values: str, layout: Layout) -> tuple[str, str]:
    """UNB S001: the smallest repertoire that holds every value, and its syntax version."""
    if _LEVEL_A.fullmatch(values):
        return "UNOA", "2" if layout is SMDG2 else "3"
    try:
        values.encode("latin-1")
    except UnicodeEncodeError:
        return "UNOY", "4"
    return "UNOC", "3"


def _formatted_decimal(value: Decimal, places: Decimal) -> str:
    if not isinstance(value, Decimal):
        raise TypeError(f"expected a Decimal, not {type(value).__name__}")
    return format(value.quantize(places).normalize(), "f")


def _write_time(value: str, layout: Layout) -> str:
    if layout.date_format == "203":
        return value
    if not value.startswith("20"):
        raise ValueError("SMDG 2.x dates (format 201) hold only the years 2000 to 2099")
    return value[2:]


def _write_vessel(vessel: Mapping[str, Any]) -> list[str]:
    if vessel["imo_number"] is not None and vessel["call_sign"] is not None:
        raise ValueError("a bay plan names the ship by one identifier, IMO number or call sign")
    if vessel["imo_number"] is not None:
        identifier, qualifier = vessel["imo_number"], _IMO_QUALIFIER
    else:
        identifier, qualifier = vessel["call_sign"], _CALL_SIGN_QUALIFIER
    return [identifier, qualifier, "", vessel["name"] or "", vessel["flag_state"] or ""]


def _location_segment(qualifier: str, code: str | None) -> Iterator[Segment]:
    if code is not None:
        yield make_segment("LOC", qualifier, [code, "139", "6"])


def _header_segments(record: Mapping[str, Any], layout: Layout) -> Iterator[Segment]:
    yield make_segment("BGM", "", record["document_number"], record["message_function"])
    if record["prepared_at"] is not None:
        yield make_segment("DTM", ["137", _write_time(record["prepared_at"], layout),
                              layout.date_format])
    carrier = record["carrier"]
    yield make_segment("TDT", "20", record["voyage_number"], "", "",
                  [carrier, "172", "20"] if carrier else "", "", "",
                  _write_vessel(record["vessel"]))
    yield from _location_segment("5", record["port_of_departure"])
    yield from _location_segment("61", record["next_port_of_call"])


def _mass_segment(qualifiers: tuple[str, str], value: Decimal | None) -> Iterator[Segment]:
    if value is not None:
        yield make_segment("MEA", *qualifiers, ["KGM", _formatted_decimal(value, _MASS)])


def _container_segments(container: Mapping[str, Any], layout: Layout) -> Iterator[Segment]:
    """A cell's group in the layout's order: SMDG 2.x puts weights, places and references
    before EQD and the operator after it; 3.x puts EQD and the operator first."""
    yield make_segment("LOC", "147", [container["stowage_position"], "", "5"])
    if layout is SMDG3:
        yield _equipment_segment(container)
        yield from _operator_segment(container, layout)
    yield from _mass_segment(layout.gross_mass, container["gross_mass_kg"])
    yield from _mass_segment(layout.verified_gross_mass, container["verified_gross_mass_kg"])
    yield from _location_segment("9", container["port_of_loading"])
    yield from _location_segment("11", container["port_of_discharge"])
    yield from _location_segment("83", container["place_of_delivery"])
    for qualifier, field in (("BN", "booking_reference"), ("BM", "bill_of_lading_number")):
        if container[field] is not None:
            yield make_segment("RFF", [qualifier, container[field]])
    if layout is SMDG2:
        yield _equipment_segment(container)
        yield from _operator_segment(container, layout)
    for goods in container["dangerous_goods"]:
        yield _dangerous_goods_segment(goods)


def _operator_segment(container: Mapping[str, Any], layout: Layout) -> Iterator[Segment]:
    if container["operator"] is not None:
        yield make_segment("NAD", layout.operator_party, [container["operator"], "172", "20"])


def _equipment_segment(container: Mapping[str, Any]) -> Segment:
    size_type = container["size_type"]
    status = {None: "", "Full": _FULL, "Empty": _EMPTY}[container["full_or_empty"]]
    return make_segment("EQD", "CN", container["container_number"],
                   [size_type, "102", "5"] if size_type else "", "", "", status)


def _dangerous_goods_segment(goods: Mapping[str, Any]) -> Segment:
    flash_point = goods["flash_point_celsius"]
    return make_segment(
        "DGS", "IMD", goods["imdg_class"], goods["un_number"],
        [] if flash_point is None else [_formatted_decimal(flash_point, _TENTH), "CEL"],
        _PACKING_GROUP_CODES[goods["packing_group"]] if goods["packing_group"] else "",
        goods["ems"] or "")


def _interchange(record: Mapping[str, Any], version: int) -> bytes:
    """The record as an interchange of one message. The message and interchange reference
    is a checksum of the content, so that a render is deterministic and two different plans
    differ; UNB's date is the plan's preparation time (or, without one, 2000-01-01)."""
    layout = layout_of(record["message_version"])
    body = [*_header_segments(record, layout)]
    for container in record["containers"]:
        body += _container_segments(container, layout)
    values = "".join(value for s in body for element in s.elements for value in element)
    syntax_id, syntax_version = _syntax_for(values, layout)
    reference = f"{zlib.crc32(values.encode('utf-8')):08X}"
    directory, release, association = record["message_version"].split(":")
    prepared = record["prepared_at"] or "200001010000"
    date = prepared[:8] if syntax_version == "4" else prepared[2:8]
    header = InterchangeHeader(syntax_id, syntax_version, "PXGATEWAY", "", "PXRECIPIENT", "",
                               f"{date}:{prepared[8:]}", reference, False, False)
    message = OutgoingMessage(reference, MessageId(MESSAGE_TYPE, directory, release, "UN",
                                                   association), body,
                              (str(version),) if version > 1 else ())
    return render_interchange(header, [message], line_breaks=True)


# ---------------------------------------------------------------- the adapter


class BayPlanAdapter:
    """SMDG BAPLIE 2.x and 3.x <-> px.canonical.StowagePlan."""

    format_id: ClassVar[str] = "baplie-edifact"
    document_type: ClassVar[str] = "stowage-plan"
    schema_name: ClassVar[str] = "px.canonical.StowagePlan"
    schema_version: ClassVar[int] = 1
    media_type: ClassVar[str] = "application/EDIFACT"
    edifact_message_types: ClassVar[frozenset[str]] = frozenset({MESSAGE_TYPE})

    __slots__ = ()

    def __init__(self, **_stores: object) -> None:
        """Takes (and needs none of) the XML stores the registry hands every built-in."""

    def parse(self, data: bytes) -> ParseResult:
        interchange = read_interchange(data)
        if len(interchange.messages) != 1:
            raise RuleViolationError("the interchange must hold exactly one BAPLIE message",
                                     code="RULE_MESSAGE_COUNT")
        message = interchange.messages[0]
        layout = _layout_of_message(message)
        version = _document_version(message)
        record = _read_plan(message, layout)
        key = business_key(record)
        try:
            warnings = _check_plan(record, message)
        except RuleViolationError as exc:
            exc.business_key, exc.document_version = key, version
            raise
        return ParseResult(record=record, business_key=key, document_version=version,
                           warnings=warnings)

    def render(self, record: Mapping[str, Any]) -> bytes:
        """The record as a BAPLIE interchange of its own SMDG version. UNB names the gateway
        (PXGATEWAY) and a placeholder recipient (PXRECIPIENT): a record does not know who
        will receive it. Held to parse: a record that parse would refuse, or that would not
        read back as itself, is refused."""
        header = record.get("header")
        version = 1 if header is None else int(header["document_version"])
        body = {k: v for k, v in record.items() if k != "header"}
        try:
            data = _interchange(body, version)
            again = self.parse(data)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError,
                IndexError, UnicodeError) as exc:
            raise RenderError(f"cannot render BAPLIE record: {type(exc).__name__}: {exc}"
                              ) from None
        except CodedError as exc:
            raise RenderError(f"rendered BAPLIE is not valid: {exc.code}: {exc.message}"
                              ) from None
        if again.record != body:
            raise RenderError("the record holds what a BAPLIE of its version does not carry")
        return data


# ---------------------------------------------------------------- FAL 7 from a bay plan


def fal7_manifest(plan: Mapping[str, Any]) -> dict[str, Any] | None:
    """The px.canonical.Fal7DangerousGoodsManifest body (without "header") a bay plan holds:
    one line per dangerous goods entry of each container, None when there is none, or when the
    plan lacks what FAL 7 cannot do without (the ship's IMO number and name, and the next port
    of call, whose authorities the plan is sent ahead to: the port of report).

    Only what the plan states is filled in. A bay plan describes containers, not
    consignments: marks, packages, proper shipping name, the goods' masses, marine pollutant,
    master and agent are null, and subsidiary risks are empty (none stated)."""
    vessel = plan["vessel"]
    if vessel["imo_number"] is None or vessel["name"] is None or plan["next_port_of_call"] is None:
        return None
    goods = [_fal7_item(container, entry)
             for container in plan["containers"] for entry in container["dangerous_goods"]]
    if not goods:
        return None
    return {
        "document_number": plan["document_number"],
        "ship": {**vessel, "gross_tonnage": None, "net_tonnage": None},
        "voyage_number": plan["voyage_number"],
        "port_of_report": plan["next_port_of_call"],
        "port_of_loading": None,
        "port_of_discharge": None,
        "master_name": None,
        "shipping_agent": None,
        "dangerous_goods": goods,
        "additional_information": None,
    }


def _fal7_item(container: Mapping[str, Any], goods: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "booking_reference": container["booking_reference"],
        "marks_and_numbers": None,
        "container_number": container["container_number"],
        "vehicle_registration_number": None,
        "stowage_position": container["stowage_position"],
        "number_of_packages": None,
        "kind_of_packages": None,
        "proper_shipping_name": None,
        "imdg_class": goods["imdg_class"],
        "un_number": goods["un_number"],
        "packing_group": goods["packing_group"],
        "subsidiary_risks": [],
        "flash_point_celsius": goods["flash_point_celsius"],
        "marine_pollutant": None,
        "gross_mass_kg": None,
        "net_mass_kg": None,
        "ems": goods["ems"],
    }
