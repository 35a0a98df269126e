"""IMO FAL Form 6, Passenger List, as XML in namespace urn:px:fal:6 ("fal6-xml").

The voyage block, identity documents and the rules on persons' dates are those of the crew
list (see adapters.fal5.SharedElements)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from message_formats import SafeXmlParser, XsdStore

from ._xml import render_checked
from .base import ParseResult, RuleViolationError
from .fal1 import (
    _add,
    _add_optional,
    _format_int,
    _line_of,
    _token,
    business_key,
)
from .fal5 import (
    Cursor,
    ItemLines,
    SharedElements,
    format_date,
    read_date,
)

NAMESPACE = "urn:px:fal:6"
XSD_NAME = "fal6"


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("PassengerList")
PASSENGER_COUNT = _tag("PassengerCount")
PASSENGER = _tag("Passenger")
PORT_OF_EMBARKATION = _tag("PortOfEmbarkation")
PORT_OF_DISEMBARKATION = _tag("PortOfDisembarkation")
TRANSIT_PASSENGER = _tag("TransitPassenger")
SHARED = SharedElements.in_namespace(NAMESPACE)
_PASSENGER_FIELDS = 9  # with GivenNames
_XML_WHITESPACE = " \t\n\r"


class Fal6Adapter:
    format_id = "fal6-xml"
    document_type = "fal6"
    schema_name = "px.canonical.Fal6PassengerList"
    schema_version = 1
    media_type = "application/xml"

    __slots__ = ("_parser", "_xsd")

    def __init__(
        self, *, xsd_store: XsdStore | None = None, xml_parser: SafeXmlParser | None = None
    ) -> None:
        self._xsd = xsd_store if xsd_store is not None else XsdStore()
        self._parser = xml_parser if xml_parser is not None else SafeXmlParser()
        self._xsd.schema(XSD_NAME)  # compile now rather than on the first document

    def parse(self, data: bytes) -> ParseResult:
        root = self._parser.parse(data)
        self._xsd.validate(XSD_NAME, root)
        record = _read_passenger_list(root)
        where = ItemLines(root, PASSENGER, "passenger")
        _check_rules(record, root, where)
        return ParseResult(
            record=record,
            business_key=business_key(record),
            document_version=int(root.get("version", "")),
            warnings=SHARED.expired_documents(record, record["passengers"], where),
        )

    def render(self, record: Mapping[str, Any]) -> bytes:
        return render_checked(self._xsd, XSD_NAME, "FAL 6", _build_passenger_list, record)


# ---------------------------------------------------------------- XML -> canonical record


def _read_passenger_list(root: etree._Element) -> dict[str, Any]:
    children = Cursor(root)
    return {
        **SHARED.read_voyage(children),
        "passenger_count": int(children.text()),
        "passengers": [_read_passenger(passenger) for passenger in children.rest()],
    }


def _read_passenger(passenger: etree._Element) -> dict[str, Any]:
    """Unpacks the children as fal5 does for crew members: the XSD has fixed the order and
    only GivenNames may be missing."""
    fields = list(passenger)
    if len(fields) == _PASSENGER_FIELDS:
        family, given, nationality, birth, place, document, embarked, leaves, transit = fields
        given_names: str | None = _token(given.text or "")
    else:
        family, nationality, birth, place, document, embarked, leaves, transit = fields
        given_names = None
    return {
        "family_name": _token(family.text or ""),
        "given_names": given_names,
        "nationality": nationality.text,
        "date_of_birth": read_date(birth.text or ""),
        "place_of_birth": _token(place.text or ""),
        "identity_document": SHARED.read_identity_document(document),
        "port_of_embarkation": embarked.text,
        "port_of_disembarkation": leaves.text,
        "transit": _read_flag(transit.text or ""),
    }


def _read_flag(text: str) -> bool:
    """An xs:boolean the XSD has restricted to true or false (whitespace around allowed)."""
    return text.strip(_XML_WHITESPACE) == "true"


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element, where: ItemLines) -> None:
    SHARED.check_imo_number(record, root)
    listed = len(record["passengers"])
    if record["passenger_count"] != listed:
        raise RuleViolationError(
            f"passenger count {record['passenger_count']} differs from the {listed} "
            "passengers listed",
            code="RULE_PASSENGER_COUNT",
            line=_line_of(root, PASSENGER_COUNT),
        )
    SHARED.check_births(record, record["passengers"], where)


# ---------------------------------------------------------------- canonical record -> XML


def _build_passenger_list(record: Mapping[str, Any], version: int) -> etree._Element:
    root = etree.Element(ROOT, nsmap={None: NAMESPACE})
    root.set("version", str(version))
    SHARED.build_voyage(root, record)
    _add(root, PASSENGER_COUNT, _format_int(record["passenger_count"]))
    for passenger in record["passengers"]:
        _build_passenger(etree.SubElement(root, PASSENGER), passenger)
    return root


def _build_passenger(element: etree._Element, passenger: Mapping[str, Any]) -> None:
    _add(element, SHARED.family_name, passenger["family_name"])
    _add_optional(element, SHARED.given_names, passenger.get("given_names"))
    _add(element, SHARED.nationality, passenger["nationality"])
    _add(element, SHARED.date_of_birth, format_date(passenger["date_of_birth"]))
    _add(element, SHARED.place_of_birth, passenger["place_of_birth"])
    SHARED.build_identity_document(
        etree.SubElement(element, SHARED.identity_document), passenger["identity_document"]
    )
    _add(element, PORT_OF_EMBARKATION, passenger["port_of_embarkation"])
    _add(element, PORT_OF_DISEMBARKATION, passenger["port_of_disembarkation"])
    _add(element, TRANSIT_PASSENGER, _format_flag(passenger["transit"]))


def _format_flag(value: bool) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"transit must be a bool, not {type(value).__name__}")
    return "true" if value else "false"
