"""IMO FAL Form 2, Cargo Declaration, as XML in namespace urn:px:fal:2 ("fal2-xml").

Also home of what the cargo documents share: the HS code rule (with the customs manifest),
the container check digit rule, the scale of a weight in kilograms, and the ship of the forms
without tonnage boxes (with FAL 7)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from lxml import etree

from .fal1 import IMO_CHECK_DIGIT_RULE, is_valid_imo_number
from .iso6346 import is_valid_container_number
from .toolkit import (
    Children,
    XmlAdapter,
    add_optional_text,
    add_text,
    add_texts,
    field_path,
    format_decimal,
    format_int,
    format_optional_decimal,
    format_optional_int,
    list_field,
    new_root,
    nth,
    optional_decimal,
    optional_int,
    optional_token,
    read_decimal,
    token,
    violation,
)

NAMESPACE = "urn:px:fal:2"
XSD_NAME = "fal2"

_HS_CODE = re.compile(r"[0-9]{6}([0-9]{2}([0-9]{2})?)?")
# HS chapters 01-97; chapter 77 is reserved for possible future use. 98 and 99 are left to
# national use and are not chapters of the Harmonized System itself.
_HS_CHAPTERS = frozenset(f"{chapter:02d}" for chapter in range(1, 98) if chapter != 77)

KILOGRAMS = Decimal("0.001")
CUBIC_METRES = Decimal("0.001")


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("CargoDeclaration")
DOCUMENT_NUMBER = _tag("DocumentNumber")
ARRIVAL_OR_DEPARTURE = _tag("ArrivalOrDeparture")
SHIP = _tag("Ship")
NAME = _tag("Name")
IMO_NUMBER = _tag("ImoNumber")
CALL_SIGN = _tag("CallSign")
FLAG_STATE = _tag("FlagState")
VOYAGE_NUMBER = _tag("VoyageNumber")
PORT_OF_REPORT = _tag("PortOfReport")
MASTER_NAME = _tag("MasterName")
PORT_OF_LOADING = _tag("PortOfLoading")
PORT_OF_DISCHARGE = _tag("PortOfDischarge")
CONSIGNMENT = _tag("Consignment")
BILL_OF_LADING_NUMBER = _tag("BillOfLadingNumber")
MARKS_AND_NUMBERS = _tag("MarksAndNumbers")
NUMBER_OF_PACKAGES = _tag("NumberOfPackages")
KIND_OF_PACKAGES = _tag("KindOfPackages")
DESCRIPTION_OF_GOODS = _tag("DescriptionOfGoods")
HS_CODE = _tag("HsCode")
GROSS_WEIGHT = _tag("GrossWeight")
MEASUREMENT = _tag("Measurement")
CONTAINER_NUMBER = _tag("ContainerNumber")
TOTAL_NUMBER_OF_PACKAGES = _tag("TotalNumberOfPackages")
TOTAL_GROSS_WEIGHT = _tag("TotalGrossWeight")
REMARKS = _tag("Remarks")


CONTAINER_CHECK_DIGIT_RULE = "the container number fails its ISO 6346 check digit"
HS_CODE_RULE = (
    "the HS code names no Harmonized System chapter (its first two digits must be 01 to 97, "
    "not 77)"
)


def is_valid_hs_code(code: str) -> bool:
    """Six, eight or ten ASCII digits whose first two name a chapter of the Harmonized
    System (01-97 without the reserved 77)."""
    return _HS_CODE.fullmatch(code) is not None and code[:2] in _HS_CHAPTERS


def business_key(record: Mapping[str, Any]) -> str:
    """IMO number, voyage and port of report: stable across versions of one declaration."""
    return f"{record['ship']['imo_number']}:{record['voyage_number']}:{record['port_of_report']}"


class Fal2Adapter(XmlAdapter):
    format_id = "fal2-xml"
    document_type = "fal2"
    schema_name = "px.canonical.Fal2CargoDeclaration"
    xsd_name = XSD_NAME
    root_elements = (ROOT,)
    label = "FAL 2"
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
        "ship": read_ship(children.next()),
        "voyage_number": children.text(),
        "port_of_report": children.text(),
        "master_name": token(children.text()),
        "port_of_loading": children.text(),
        "port_of_discharge": children.text(),
        "consignments": [_read_consignment(e) for e in children.repeated(CONSIGNMENT)],
        "total_number_of_packages": optional_int(children.optional_text(TOTAL_NUMBER_OF_PACKAGES)),
        "total_gross_weight_kg": optional_decimal(
            children.optional_text(TOTAL_GROSS_WEIGHT), KILOGRAMS
        ),
        "remarks": optional_token(children.optional_text(REMARKS)),
    }


def read_ship(ship: etree._Element) -> dict[str, Any]:
    """The shared Ship record of a form without tonnage boxes (FAL 2, FAL 7)."""
    children = Children(ship)
    return {
        "name": token(children.text()),
        "imo_number": children.text(),
        "call_sign": children.text(),
        "flag_state": children.text(),
        "gross_tonnage": None,
        "net_tonnage": None,
    }


def _read_consignment(consignment: etree._Element) -> dict[str, Any]:
    children = Children(consignment)
    return {
        "bill_of_lading_number": children.text(),
        "marks_and_numbers": token(children.text()),
        "number_of_packages": int(children.text()),
        "kind_of_packages": children.text(),
        "description_of_goods": token(children.text()),
        "hs_code": children.optional_text(HS_CODE),
        "gross_weight_kg": read_decimal(children.text(), KILOGRAMS),
        "measurement_m3": optional_decimal(children.optional_text(MEASUREMENT), CUBIC_METRES),
        "container_numbers": children.repeated_text(CONTAINER_NUMBER),
    }


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    if not is_valid_imo_number(record["ship"]["imo_number"]):
        raise violation("RULE_IMO_CHECK_DIGIT", IMO_CHECK_DIGIT_RULE, root, SHIP, IMO_NUMBER)
    _check_containers(record, root)
    _check_hs_codes(record, root)
    _check_totals(record, root)


def _check_containers(record: Mapping[str, Any], root: etree._Element) -> None:
    for i, consignment in enumerate(record["consignments"]):
        for j, number in enumerate(consignment["container_numbers"]):
            if not is_valid_container_number(number):
                raise violation(
                    "RULE_CONTAINER_CHECK_DIGIT",
                    CONTAINER_CHECK_DIGIT_RULE,
                    root,
                    nth(CONSIGNMENT, i),
                    nth(CONTAINER_NUMBER, j),
                )


def _check_hs_codes(record: Mapping[str, Any], root: etree._Element) -> None:
    for i, consignment in enumerate(record["consignments"]):
        code = consignment["hs_code"]
        if code is not None and not is_valid_hs_code(code):
            raise violation("RULE_HS_CODE", HS_CODE_RULE, root, nth(CONSIGNMENT, i), HS_CODE)


def _check_totals(record: Mapping[str, Any], root: etree._Element) -> None:
    consignments = record["consignments"]
    total_packages = record["total_number_of_packages"]
    packages = sum(c["number_of_packages"] for c in consignments)
    if total_packages is not None and total_packages != packages:
        raise violation(
            "RULE_TOTALS",
            f"is not the sum of the consignments' {field_path(NUMBER_OF_PACKAGES)}",
            root,
            TOTAL_NUMBER_OF_PACKAGES,
        )
    total_weight = record["total_gross_weight_kg"]
    weight = sum((c["gross_weight_kg"] for c in consignments), Decimal(0))
    if total_weight is not None and total_weight != weight:
        raise violation(
            "RULE_TOTALS",
            f"is not the sum of the consignments' {field_path(GROSS_WEIGHT)}",
            root,
            TOTAL_GROSS_WEIGHT,
        )


def _warnings(record: Mapping[str, Any]) -> tuple[str, ...]:
    """One warning per bill of lading number given to more than one consignment, naming
    those consignments by position."""
    positions: dict[str, list[int]] = {}
    for index, consignment in enumerate(record["consignments"]):
        positions.setdefault(consignment["bill_of_lading_number"], []).append(index + 1)
    return tuple(
        f"WARN_DUPLICATE_BILL_OF_LADING: consignments {', '.join(map(str, found))} have the "
        f"same {field_path(BILL_OF_LADING_NUMBER)}"
        for found in positions.values()
        if len(found) > 1
    )


# ---------------------------------------------------------------- canonical record -> XML


def _build_declaration(record: Mapping[str, Any], version: int) -> etree._Element:
    root = new_root(ROOT, NAMESPACE, version)
    add_text(root, DOCUMENT_NUMBER, record["document_number"])
    add_text(root, ARRIVAL_OR_DEPARTURE, record["arrival_or_departure"])
    _build_ship(etree.SubElement(root, SHIP), record["ship"])
    add_text(root, VOYAGE_NUMBER, record["voyage_number"])
    add_text(root, PORT_OF_REPORT, record["port_of_report"])
    add_text(root, MASTER_NAME, record["master_name"])
    add_text(root, PORT_OF_LOADING, record["port_of_loading"])
    add_text(root, PORT_OF_DISCHARGE, record["port_of_discharge"])
    for consignment in list_field(record["consignments"]):
        _build_consignment(etree.SubElement(root, CONSIGNMENT), consignment)
    add_optional_text(
        root,
        TOTAL_NUMBER_OF_PACKAGES,
        format_optional_int(record.get("total_number_of_packages")),
    )
    add_optional_text(
        root,
        TOTAL_GROSS_WEIGHT,
        format_optional_decimal(record.get("total_gross_weight_kg"), KILOGRAMS),
    )
    add_optional_text(root, REMARKS, record.get("remarks"))
    return root


def _build_ship(ship_element: etree._Element, ship: Mapping[str, Any]) -> None:
    refuse_tonnage(ship)
    add_text(ship_element, NAME, ship["name"])
    add_text(ship_element, IMO_NUMBER, ship["imo_number"])
    add_text(ship_element, CALL_SIGN, ship["call_sign"])
    add_text(ship_element, FLAG_STATE, ship["flag_state"])


def refuse_tonnage(ship: Mapping[str, Any]) -> None:
    """The shared Ship record has tonnages; FAL 2 and FAL 7 have no box for them, and
    dropping them silently would break parse(render(record)) == record."""
    if ship.get("gross_tonnage") is not None or ship.get("net_tonnage") is not None:
        raise ValueError("the form has no tonnage boxes: gross and net tonnage must be null")


def _build_consignment(element: etree._Element, consignment: Mapping[str, Any]) -> None:
    add_text(element, BILL_OF_LADING_NUMBER, consignment["bill_of_lading_number"])
    add_text(element, MARKS_AND_NUMBERS, consignment["marks_and_numbers"])
    add_text(element, NUMBER_OF_PACKAGES, format_int(consignment["number_of_packages"]))
    add_text(element, KIND_OF_PACKAGES, consignment["kind_of_packages"])
    add_text(element, DESCRIPTION_OF_GOODS, consignment["description_of_goods"])
    add_optional_text(element, HS_CODE, consignment.get("hs_code"))
    add_text(element, GROSS_WEIGHT, format_decimal(consignment["gross_weight_kg"], KILOGRAMS))
    add_optional_text(
        element,
        MEASUREMENT,
        format_optional_decimal(consignment.get("measurement_m3"), CUBIC_METRES),
    )
    add_texts(element, CONTAINER_NUMBER, consignment["container_numbers"])
