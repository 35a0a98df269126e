"""IMO FAL Form 6, Passenger List, as XML in namespace urn:px:fal:6 ("fal6-xml").

The voyage block, the rules on persons' dates and the layout of a person, one empty element
with attributes, identity document included, are those of the crew list (see adapters.fal5)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from lxml import etree

from .base import RuleViolationError
from .fal1 import business_key
from .fal5 import (
    DATE_OF_BIRTH,
    FAMILY_NAME,
    GIVEN_NAMES,
    IDENTITY_DOCUMENT_ATTRIBUTES,
    NATIONALITY,
    PLACE_OF_BIRTH,
    SharedElements,
    add_person,
    attribute_rows,
    identity_document_attributes,
)
from .toolkit import (
    Children,
    ItemLines,
    XmlAdapter,
    add_text,
    field_path,
    format_date,
    format_int,
    line_of,
    new_root,
)

NAMESPACE = "urn:px:fal:6"
XSD_NAME = "fal6"


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("PassengerList")
PASSENGER_COUNT = _tag("PassengerCount")
PASSENGER = _tag("Passenger")
SHARED = SharedElements.in_namespace(NAMESPACE)
# Attributes of a passenger besides those of every person.
PORT_OF_EMBARKATION = "portOfEmbarkation"
PORT_OF_DISEMBARKATION = "portOfDisembarkation"
TRANSIT_PASSENGER = "transitPassenger"
# A passenger's attributes in the order the XSD declares them and render writes them.
_PASSENGER_ATTRIBUTES = [
    FAMILY_NAME,
    GIVEN_NAMES,
    NATIONALITY,
    DATE_OF_BIRTH,
    PLACE_OF_BIRTH,
    *IDENTITY_DOCUMENT_ATTRIBUTES,
    PORT_OF_EMBARKATION,
    PORT_OF_DISEMBARKATION,
    TRANSIT_PASSENGER,
]


class Fal6Adapter(XmlAdapter):
    format_id = "fal6-xml"
    document_type = "fal6"
    schema_name = "px.canonical.Fal6PassengerList"
    xsd_name = XSD_NAME
    root_elements = (ROOT,)
    label = "FAL 6"
    __slots__ = ()

    business_key = staticmethod(business_key)

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        return _build_passenger_list(record, version)

    @staticmethod
    def read(root: etree._Element) -> dict[str, Any]:
        return _read_passenger_list(root)

    @staticmethod
    def check(record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        where = ItemLines(root, PASSENGER)
        _check_rules(record, root, where)
        return SHARED.expired_documents(record, record["passengers"], where)


# ---------------------------------------------------------------- XML -> canonical record


def _read_passenger_list(root: etree._Element) -> dict[str, Any]:
    children = Children(root)
    return {
        **SHARED.read_voyage(children),
        "local_date_time_of_arrival_departure": None,  # XML gives the instant with its offset
        "passenger_count": int(children.text()),
        "passengers": _read_passengers(children.rest()),
    }


def _read_passengers(elements: list[etree._Element]) -> list[dict[str, Any]]:
    """The passengers from the attributes of their elements, whitespace collapsed, as fal5
    reads crew members. The XSD has checked every value and that only givenNames may be
    absent; the transit flag is true or false."""
    return [
        {
            "family_name": family,
            "given_names": given,
            "nationality": nationality,
            "date_of_birth": date.fromisoformat(birth),  # type: ignore[arg-type]  # the XSD requires it
            "place_of_birth": place,
            "identity_document": {
                "document_type": kind,
                "number": number,
                "issuing_state": issuing_state,
                "expiry_date": date.fromisoformat(expiry),  # type: ignore[arg-type]  # the XSD requires it
            },
            "port_of_embarkation": embarked,
            "port_of_disembarkation": leaves,
            "transit": transit == "true",
        }
        for (
            family,
            given,
            nationality,
            birth,
            place,
            kind,
            number,
            issuing_state,
            expiry,
            embarked,
            leaves,
            transit,
        ) in attribute_rows(elements, _PASSENGER_ATTRIBUTES)
    ]


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element, where: ItemLines) -> None:
    SHARED.check_imo_number(record, root)
    listed = len(record["passengers"])
    if record["passenger_count"] != listed:
        raise RuleViolationError(
            f"{field_path(PASSENGER_COUNT)}: differs from the number of "
            f"{field_path(PASSENGER)} elements",
            code="RULE_PASSENGER_COUNT",
            line=line_of(root, PASSENGER_COUNT),
        )
    SHARED.check_births(record, record["passengers"], where)


# ---------------------------------------------------------------- canonical record -> XML


def _build_passenger_list(record: Mapping[str, Any], version: int) -> etree._Element:
    root = new_root(ROOT, NAMESPACE, version)
    SHARED.build_voyage(root, record)
    add_text(root, PASSENGER_COUNT, format_int(record["passenger_count"]))
    for passenger in record["passengers"]:
        _build_passenger(root, passenger)
    return root


def _build_passenger(root: etree._Element, passenger: Mapping[str, Any]) -> None:
    add_person(
        root,
        PASSENGER,
        {
            FAMILY_NAME: passenger["family_name"],
            GIVEN_NAMES: passenger.get("given_names"),
            NATIONALITY: passenger["nationality"],
            DATE_OF_BIRTH: format_date(passenger["date_of_birth"]),
            PLACE_OF_BIRTH: passenger["place_of_birth"],
            **identity_document_attributes(passenger["identity_document"]),
            PORT_OF_EMBARKATION: passenger["port_of_embarkation"],
            PORT_OF_DISEMBARKATION: passenger["port_of_disembarkation"],
            TRANSIT_PASSENGER: _format_flag(passenger["transit"]),
        },
    )


def _format_flag(value: bool) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"transit must be a bool, not {type(value).__name__}")
    return "true" if value else "false"
