"""IMO FAL Form 1, General Declaration, as XML in namespace urn:px:fal:1 ("fal1-xml")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from .base import RuleViolationError
from .toolkit import (
    Children,
    XmlAdapter,
    add_optional_text,
    add_text,
    field_path,
    format_instant,
    format_int,
    format_optional_int,
    line_of,
    new_root,
    optional_int,
    optional_token,
    read_instant,
    token,
)

NAMESPACE = "urn:px:fal:1"
XSD_NAME = "fal1"


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
    root_elements = (ROOT,)
    label = "FAL 1"
    __slots__ = ()

    business_key = staticmethod(business_key)

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        return _build_declaration(record, version)

    @staticmethod
    def read(root: etree._Element) -> dict[str, Any]:
        return _read_declaration(root)

    @staticmethod
    def check(record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        _check_rules(record, root)
        return _warnings(record)


# ---------------------------------------------------------------- XML -> canonical record


def _read_declaration(root: etree._Element) -> dict[str, Any]:
    children = Children(root)
    return {
        "document_number": token(children.text()),
        "arrival_or_departure": children.text(),
        "ship": _read_ship(children.next()),
        "voyage_number": children.text(),
        "port_of_arrival_departure": children.text(),
        **voyage_instant(children.text()),
        "last_port_of_call": children.optional_text(LAST_PORT),
        "next_port_of_call": children.optional_text(NEXT_PORT),
        "master_name": token(children.text()),
        "ship_agent": _read_agent(children.next()),
        "brief_cargo_description": token(children.text()),
        "crew_count": int(children.text()),
        "passenger_count": int(children.text()),
        "remarks": optional_token(children.optional_text(REMARKS)),
    }


def _read_ship(ship: etree._Element) -> dict[str, Any]:
    children = Children(ship)
    return {
        "name": token(children.text()),
        "imo_number": children.text(),
        "call_sign": children.text(),
        "flag_state": children.text(),
        "gross_tonnage": optional_int(children.optional_text(GROSS_TONNAGE)),
        "net_tonnage": optional_int(children.optional_text(NET_TONNAGE)),
    }


def _read_agent(agent: etree._Element) -> dict[str, Any]:
    children = Children(agent)
    return {
        "name": token(children.text()),
        "contact": optional_token(children.optional_text(CONTACT)),
    }


def voyage_instant(text: str) -> dict[str, Any]:
    """The instant of arrival or departure as the FAL forms' records carry it: the UTC
    instant and the sender's UTC offset in minutes."""
    instant, offset = read_instant(text)
    return {"date_time_of_arrival_departure": instant, "utc_offset_minutes": offset}


def format_voyage_instant(record: Mapping[str, Any]) -> str:
    return format_instant(record["date_time_of_arrival_departure"], record["utc_offset_minutes"],
                          "date_time_of_arrival_departure")


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    if not is_valid_imo_number(record["ship"]["imo_number"]):
        raise RuleViolationError(
            f"{field_path(SHIP, IMO_NUMBER)}: {IMO_CHECK_DIGIT_RULE}",
            code="RULE_IMO_CHECK_DIGIT",
            line=line_of(root, SHIP, IMO_NUMBER),
        )
    if record["crew_count"] < 1:
        raise RuleViolationError(
            f"{field_path(CREW_COUNT)}: a ship declares at least one crew member (the master)",
            code="RULE_CREW_COUNT",
            line=line_of(root, CREW_COUNT),
        )


def _warnings(record: Mapping[str, Any]) -> tuple[str, ...]:
    gross, net = record["ship"]["gross_tonnage"], record["ship"]["net_tonnage"]
    if gross is not None and net is not None and net > gross:
        return (
            f"WARN_NET_TONNAGE_ABOVE_GROSS: {field_path(SHIP, NET_TONNAGE)} is greater than "
            f"{field_path(SHIP, GROSS_TONNAGE)}",
        )
    return ()


# ---------------------------------------------------------------- canonical record -> XML


def _build_declaration(record: Mapping[str, Any], version: int) -> etree._Element:
    root = new_root(ROOT, NAMESPACE, version)
    add_text(root, DOCUMENT_NUMBER, record["document_number"])
    add_text(root, ARRIVAL_OR_DEPARTURE, record["arrival_or_departure"])
    _build_ship(etree.SubElement(root, SHIP), record["ship"])
    add_text(root, VOYAGE_NUMBER, record["voyage_number"])
    add_text(root, PORT, record["port_of_arrival_departure"])
    add_text(root, DATE_TIME, format_voyage_instant(record))
    add_optional_text(root, LAST_PORT, record.get("last_port_of_call"))
    add_optional_text(root, NEXT_PORT, record.get("next_port_of_call"))
    add_text(root, MASTER_NAME, record["master_name"])
    _build_agent(etree.SubElement(root, SHIP_AGENT), record["ship_agent"])
    add_text(root, CARGO, record["brief_cargo_description"])
    add_text(root, CREW_COUNT, format_int(record["crew_count"]))
    add_text(root, PASSENGER_COUNT, format_int(record["passenger_count"]))
    add_optional_text(root, REMARKS, record.get("remarks"))
    return root


def _build_ship(ship_element: etree._Element, ship: Mapping[str, Any]) -> None:
    add_text(ship_element, NAME, ship["name"])
    add_text(ship_element, IMO_NUMBER, ship["imo_number"])
    add_text(ship_element, CALL_SIGN, ship["call_sign"])
    add_text(ship_element, FLAG_STATE, ship["flag_state"])
    add_optional_text(ship_element, GROSS_TONNAGE, format_optional_int(ship.get("gross_tonnage")))
    add_optional_text(ship_element, NET_TONNAGE, format_optional_int(ship.get("net_tonnage")))


def _build_agent(agent_element: etree._Element, agent: Mapping[str, Any]) -> None:
    add_text(agent_element, NAME, agent["name"])
    add_optional_text(agent_element, CONTACT, agent.get("contact"))
