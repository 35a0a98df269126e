"""IMO FAL Form 1, General Declaration, as XML in namespace urn:px:fal:1 ("fal1-xml")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from lxml import etree

from ._xml import XmlAdapter, field_path
from .base import RuleViolationError

NAMESPACE = "urn:px:fal:1"
XSD_NAME = "fal1"

_XML_WHITESPACE = " \t\n\r"
_XML_WHITESPACE_RUN = re.compile(r"[ \t\n\r]+")
_ONE_MINUTE = timedelta(minutes=1)


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("GeneralDeclaration")
DOCUMENT_NUMBER = _tag("DocumentNumber")
ARRIVAL_OR_DEPARTURE = _tag("ArrivalOrDeparture")
SHIP = _tag("Ship")
NAME = _tag("Name")
IMO_NUMBER = _tag("ImoNumber")
CALL_SIGN = _tag("CallSign")
FLAG_STATE = _tag("FlagState")
GROSS_TONNAGE = _tag("GrossTonnage")
NET_TONNAGE = _tag("NetTonnage")
VOYAGE_NUMBER = _tag("VoyageNumber")
PORT = _tag("PortOfArrivalDeparture")
DATE_TIME = _tag("DateTimeOfArrivalDeparture")
LAST_PORT = _tag("LastPortOfCall")
NEXT_PORT = _tag("NextPortOfCall")
MASTER_NAME = _tag("MasterName")
SHIP_AGENT = _tag("ShipAgent")
CONTACT = _tag("Contact")
CARGO = _tag("BriefCargoDescription")
CREW_COUNT = _tag("CrewCount")
PASSENGER_COUNT = _tag("PassengerCount")
REMARKS = _tag("Remarks")

IMO_CHECK_DIGIT_RULE = (
    "the IMO number fails its check digit (the seventh digit is the sum of the first six "
    "weighted 7, 6, 5, 4, 3 and 2, modulo 10)"
)


def is_valid_imo_number(imo: str) -> bool:
    """Seven ASCII digits whose last one is the check digit: the sum of the first six
    weighted 7..2, modulo 10."""
    if len(imo) != 7 or not imo.isascii() or not imo.isdigit():
        return False
    a, b, c, d, e, f, check = map(int, imo)
    return (7 * a + 6 * b + 5 * c + 4 * d + 3 * e + 2 * f) % 10 == check


def business_key(record: Mapping[str, Any]) -> str:
    """IMO number, voyage, A/D and port: stable across versions of one declaration."""
    return ":".join(
        (
            record["ship"]["imo_number"],
            record["voyage_number"],
            record["arrival_or_departure"][0],
            record["port_of_arrival_departure"],
        )
    )


class Fal1Adapter(XmlAdapter):
    format_id = "fal1-xml"
    document_type = "fal1"
    schema_name = "px.canonical.Fal1GeneralDeclaration"
    xsd_name = XSD_NAME
    label = "FAL 1"
    __slots__ = ()

    business_key = staticmethod(business_key)

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        return _build_declaration(record, version)

    @staticmethod
    def read(root: etree._Element) -> tuple[dict[str, Any], tuple[str, ...]]:
        record = _read_declaration(root)
        _check_rules(record, root)
        return record, _warnings(record)


# ---------------------------------------------------------------- XML -> canonical record


class _Children:
    """An element's children, read front to back in the order the XSD sequence fixes (the
    document has been validated), so only optional elements need their tag checked."""

    __slots__ = ("_elements", "_position")

    def __init__(self, parent: etree._Element) -> None:
        self._elements = list(parent)
        self._position = 0

    def next(self) -> etree._Element:
        element = self._elements[self._position]
        self._position += 1
        return element

    def text(self) -> str:
        element = self._elements[self._position]
        self._position += 1
        return element.text or ""

    def optional_text(self, tag: str) -> str | None:
        if self._position < len(self._elements) and self._elements[self._position].tag == tag:
            return self.text()
        return None

    def take(self, count: int) -> list[etree._Element]:
        """The next `count` children, which the XSD makes required."""
        start = self._position
        self._position = start + count
        taken = self._elements[start : start + count]
        if len(taken) != count:
            raise IndexError("fewer children than the XSD requires")
        return taken


# The readers below rely on dict displays being evaluated left to right, as the language
# guarantees: each value is read from the children in document order.


def _read_declaration(root: etree._Element) -> dict[str, Any]:
    children = _Children(root)
    return {
        "document_number": _token(children.text()),
        "arrival_or_departure": children.text(),
        "ship": _read_ship(children.next()),
        "voyage_number": children.text(),
        "port_of_arrival_departure": children.text(),
        **_read_instant(children.text()),
        "last_port_of_call": children.optional_text(LAST_PORT),
        "next_port_of_call": children.optional_text(NEXT_PORT),
        "master_name": _token(children.text()),
        "ship_agent": _read_agent(children.next()),
        "brief_cargo_description": _token(children.text()),
        "crew_count": int(children.text()),
        "passenger_count": int(children.text()),
        "remarks": _optional_token(children.optional_text(REMARKS)),
    }


def _read_ship(ship: etree._Element) -> dict[str, Any]:
    children = _Children(ship)
    return {
        "name": _token(children.text()),
        "imo_number": children.text(),
        "call_sign": children.text(),
        "flag_state": children.text(),
        "gross_tonnage": _optional_int(children.optional_text(GROSS_TONNAGE)),
        "net_tonnage": _optional_int(children.optional_text(NET_TONNAGE)),
    }


def _read_agent(agent: etree._Element) -> dict[str, Any]:
    children = _Children(agent)
    return {
        "name": _token(children.text()),
        "contact": _optional_token(children.optional_text(CONTACT)),
    }


def _token(text: str) -> str:
    """The value of an xs:token: XML whitespace runs collapsed to one space, ends trimmed."""
    if (
        "\n" in text
        or "\t" in text
        or "\r" in text
        or "  " in text
        or text[:1] == " "
        or text[-1:] == " "
    ):
        return _XML_WHITESPACE_RUN.sub(" ", text).strip(" ")
    return text


def _optional_token(text: str | None) -> str | None:
    return None if text is None else _token(text)


def _optional_int(text: str | None) -> int | None:
    return None if text is None else int(text)


def _read_instant(text: str) -> dict[str, Any]:
    """The UTC instant and the sender's UTC offset in minutes. The XSD guarantees an offset
    and at most millisecond precision."""
    local = datetime.fromisoformat(text.strip(_XML_WHITESPACE))
    offset = local.utcoffset()
    assert offset is not None  # the XSD pattern requires Z or ±hh:mm
    return {
        "date_time_of_arrival_departure": local.astimezone(UTC),
        "utc_offset_minutes": offset // _ONE_MINUTE,
    }


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    if not is_valid_imo_number(record["ship"]["imo_number"]):
        raise RuleViolationError(
            f"{field_path(SHIP, IMO_NUMBER)}: {IMO_CHECK_DIGIT_RULE}",
            code="RULE_IMO_CHECK_DIGIT",
            line=_line_of(root, SHIP, IMO_NUMBER),
        )
    if record["crew_count"] < 1:
        raise RuleViolationError(
            f"{field_path(CREW_COUNT)}: a ship declares at least one crew member (the master)",
            code="RULE_CREW_COUNT",
            line=_line_of(root, CREW_COUNT),
        )


def _warnings(record: Mapping[str, Any]) -> tuple[str, ...]:
    gross, net = record["ship"]["gross_tonnage"], record["ship"]["net_tonnage"]
    if gross is not None and net is not None and net > gross:
        return (
            f"WARN_NET_TONNAGE_ABOVE_GROSS: {field_path(SHIP, NET_TONNAGE)} is greater than "
            f"{field_path(SHIP, GROSS_TONNAGE)}",
        )
    return ()


def _line_of(root: etree._Element, *path: str) -> int | None:
    element = root.find("/".join(path))
    return None if element is None else element.sourceline


# ---------------------------------------------------------------- canonical record -> XML


def _build_declaration(record: Mapping[str, Any], version: int) -> etree._Element:
    root = etree.Element(ROOT, nsmap={None: NAMESPACE})
    root.set("version", str(version))
    _add(root, DOCUMENT_NUMBER, record["document_number"])
    _add(root, ARRIVAL_OR_DEPARTURE, record["arrival_or_departure"])
    _build_ship(etree.SubElement(root, SHIP), record["ship"])
    _add(root, VOYAGE_NUMBER, record["voyage_number"])
    _add(root, PORT, record["port_of_arrival_departure"])
    _add(
        root,
        DATE_TIME,
        _format_instant(record["date_time_of_arrival_departure"], record["utc_offset_minutes"]),
    )
    _add_optional(root, LAST_PORT, record.get("last_port_of_call"))
    _add_optional(root, NEXT_PORT, record.get("next_port_of_call"))
    _add(root, MASTER_NAME, record["master_name"])
    _build_agent(etree.SubElement(root, SHIP_AGENT), record["ship_agent"])
    _add(root, CARGO, record["brief_cargo_description"])
    _add(root, CREW_COUNT, _format_int(record["crew_count"]))
    _add(root, PASSENGER_COUNT, _format_int(record["passenger_count"]))
    _add_optional(root, REMARKS, record.get("remarks"))
    return root


def _build_ship(ship_element: etree._Element, ship: Mapping[str, Any]) -> None:
    _add(ship_element, NAME, ship["name"])
    _add(ship_element, IMO_NUMBER, ship["imo_number"])
    _add(ship_element, CALL_SIGN, ship["call_sign"])
    _add(ship_element, FLAG_STATE, ship["flag_state"])
    _add_optional(ship_element, GROSS_TONNAGE, _format_optional_int(ship.get("gross_tonnage")))
    _add_optional(ship_element, NET_TONNAGE, _format_optional_int(ship.get("net_tonnage")))


def _build_agent(agent_element: etree._Element, agent: Mapping[str, Any]) -> None:
    _add(agent_element, NAME, agent["name"])
    _add_optional(agent_element, CONTACT, agent.get("contact"))


def _add(parent: etree._Element, tag: str, text: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{etree.QName(tag).localname} must be a string, not {type(text).__name__}")
    etree.SubElement(parent, tag).text = text


def _add_optional(parent: etree._Element, tag: str, text: str | None) -> None:
    if text is not None:
        _add(parent, tag, text)


def _require_int(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an int, not {type(value).__name__}")
    return value


def _format_int(value: int) -> str:
    return str(_require_int(value))


def _format_optional_int(value: int | None) -> str | None:
    return None if value is None else _format_int(value)


def _format_instant(instant: datetime, offset_minutes: int) -> str:
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise ValueError("date_time_of_arrival_departure must be a timezone-aware datetime")
    local = instant.astimezone(timezone(timedelta(minutes=_require_int(offset_minutes))))
    return local.isoformat(timespec="milliseconds" if local.microsecond else "seconds")
