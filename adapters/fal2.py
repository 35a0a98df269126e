"""IMO FAL Form 2, Cargo Declaration, as XML in namespace urn:px:fal:2 ("fal2-xml").

Besides the FAL 2 adapter this module holds, until they move to a shared module, the helpers
the cargo-document adapters (fal7, manifest, waybill) need beyond those of fal1: reading
repeated elements, decimals, instants under any field name, booleans, positional paths for
the line of a rule violation, and the checked render."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from lxml import etree

from ._xml import XmlAdapter, field_path
from .base import RuleViolationError
from .fal1 import (
    IMO_CHECK_DIGIT_RULE,
    _add,
    _add_optional,
    _Children,
    _format_int,
    _format_optional_int,
    _line_of,
    _optional_int,
    _optional_token,
    _require_int,
    _token,
    is_valid_imo_number,
)
from .iso6346 import is_valid_container_number

NAMESPACE = "urn:px:fal:2"
XSD_NAME = "fal2"

_XML_WHITESPACE = " \t\n\r"
_ONE_MINUTE = timedelta(minutes=1)
_HS_CODE = re.compile(r"[0-9]{6}([0-9]{2}([0-9]{2})?)?")
# HS chapters 01-97; chapter 77 is reserved for possible future use. 98 and 99 are left to
# national use and are not chapters of the Harmonized System itself.
_HS_CHAPTERS = frozenset(f"{chapter:02d}" for chapter in range(1, 98) if chapter != 77)

KILOGRAMS = Decimal("0.001")
CUBIC_METRES = Decimal("0.001")

# What building a document from a malformed record raises (lxml refuses control characters
# with ValueError; Decimal.quantize raises InvalidOperation, an ArithmeticError).
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
    label = "FAL 2"
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


# ---------------------------------------------------------------- helpers shared by the
# cargo-document adapters (fal2, fal7, manifest, waybill)


class _Elements(_Children):
    """fal1's reader of children in XSD order, plus runs of a repeated element."""

    __slots__ = ()

    def repeated(self, tag: str) -> list[etree._Element]:
        """The run of consecutive `tag` children from the current position (possibly
        empty); the XSD has already enforced the minimum and maximum count."""
        start = self._position
        elements = self._elements
        end = start
        while end < len(elements) and elements[end].tag == tag:
            end += 1
        self._position = end
        return elements[start:end]

    def repeated_text(self, tag: str) -> list[str]:
        return [element.text or "" for element in self.repeated(tag)]

    def optional(self, tag: str) -> etree._Element | None:
        if self._position < len(self._elements) and self._elements[self._position].tag == tag:
            return self.next()
        return None


def _nth(tag: str, index: int) -> str:
    """An ElementPath step to the index-th (from 0) child named `tag`, for _line_of."""
    return f"{tag}[{index + 1}]"


def _violation(code: str, rule: str, root: etree._Element, *path: str) -> RuleViolationError:
    """A refusal naming the field at `path` (ElementPath steps from the root, which also
    give the line) and the rule it breaks, never a value of the document."""
    message = f"{field_path(*path)}: {rule}" if path else rule
    return RuleViolationError(message, code=code, line=_line_of(root, *path))


def _read_decimal(text: str, quantum: Decimal) -> Decimal:
    """An xs:decimal at the canonical scale. The XSD bounds the fraction digits by value,
    so "1.5000" may arrive for a three-place field; quantizing is exact and gives the
    canonical record (and the Avro decimal) one scale per field."""
    return Decimal(text.strip(_XML_WHITESPACE)).quantize(quantum)


def _optional_decimal(text: str | None, quantum: Decimal) -> Decimal | None:
    return None if text is None else _read_decimal(text, quantum)


def _format_decimal(value: Decimal, quantum: Decimal) -> str:
    if not isinstance(value, Decimal):
        raise TypeError(f"expected a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError("a decimal is not a finite number")
    exact = value.quantize(quantum)
    if exact != value:
        raise ValueError(f"a decimal has more decimal places than {quantum}")
    return format(exact, "f")


def _format_optional_decimal(value: Decimal | None, quantum: Decimal) -> str | None:
    return None if value is None else _format_decimal(value, quantum)


def _read_instant(text: str) -> tuple[datetime, int]:
    """The UTC instant and the sender's UTC offset in minutes. The XSD guarantees an offset
    and at most millisecond precision."""
    local = datetime.fromisoformat(text.strip(_XML_WHITESPACE))
    offset = local.utcoffset()
    assert offset is not None  # the XSD pattern requires Z or ±hh:mm
    return local.astimezone(UTC), offset // _ONE_MINUTE


def _instant_fields(text: str, field: str) -> dict[str, Any]:
    """`field` (the UTC instant) and `field`_utc_offset_minutes, as the canonical records
    carry every instant."""
    instant, offset = _read_instant(text)
    return {field: instant, f"{field}_utc_offset_minutes": offset}


def _optional_instant_fields(text: str | None, field: str) -> dict[str, Any]:
    if text is None:
        return {field: None, f"{field}_utc_offset_minutes": None}
    return _instant_fields(text, field)


def _format_instant(instant: datetime, offset_minutes: int, field: str) -> str:
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise ValueError(f"{field} must be a timezone-aware datetime")
    local = instant.astimezone(timezone(timedelta(minutes=_require_int(offset_minutes))))
    return local.isoformat(timespec="milliseconds" if local.microsecond else "seconds")


def _format_instant_field(record: Mapping[str, Any], field: str) -> str:
    """The instant `field` of the record in the sender's local time, from the pair that
    _instant_fields produced."""
    return _format_instant(record[field], record[f"{field}_utc_offset_minutes"], field)


def _format_optional_instant_field(record: Mapping[str, Any], field: str) -> str | None:
    instant, offset = record.get(field), record.get(f"{field}_utc_offset_minutes")
    if instant is None and offset is None:
        return None
    if instant is None or offset is None:
        raise ValueError(f"{field} and {field}_utc_offset_minutes must both be null or neither")
    return _format_instant(instant, offset, field)


def _read_bool(text: str) -> bool:
    return text.strip(_XML_WHITESPACE) in ("true", "1")


def _format_bool(value: bool) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"expected a bool, not {type(value).__name__}")
    return "true" if value else "false"


def _items(value: Sequence[Any]) -> Sequence[Any]:
    """A list field of the record; a string or a mapping here is a caller's mistake that
    would otherwise be iterated silently."""
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, not {type(value).__name__}")
    return value


def _add_all(parent: etree._Element, tag: str, texts: Sequence[str]) -> None:
    for text in _items(texts):
        _add(parent, tag, text)


def _new_root(tag: str, namespace: str, version: int) -> etree._Element:
    root = etree.Element(tag, nsmap={None: namespace})
    root.set("version", _format_int(version))
    return root


# ---------------------------------------------------------------- XML -> canonical record

# The readers below rely on dict displays being evaluated left to right, as the language
# guarantees: each value is read from the children in document order.


def _read_declaration(root: etree._Element) -> dict[str, Any]:
    children = _Elements(root)
    return {
        "document_number": _token(children.text()),
        "arrival_or_departure": children.text(),
        "ship": _read_ship(children.next()),
        "voyage_number": children.text(),
        "port_of_report": children.text(),
        "master_name": _token(children.text()),
        "port_of_loading": children.text(),
        "port_of_discharge": children.text(),
        "consignments": [_read_consignment(e) for e in children.repeated(CONSIGNMENT)],
        "total_number_of_packages": _optional_int(children.optional_text(TOTAL_NUMBER_OF_PACKAGES)),
        "total_gross_weight_kg": _optional_decimal(
            children.optional_text(TOTAL_GROSS_WEIGHT), KILOGRAMS
        ),
        "remarks": _optional_token(children.optional_text(REMARKS)),
    }


def _read_ship(ship: etree._Element) -> dict[str, Any]:
    """The shared Ship record; FAL 2 has no tonnage boxes."""
    children = _Elements(ship)
    return {
        "name": _token(children.text()),
        "imo_number": children.text(),
        "call_sign": children.text(),
        "flag_state": children.text(),
        "gross_tonnage": None,
        "net_tonnage": None,
    }


def _read_consignment(consignment: etree._Element) -> dict[str, Any]:
    children = _Elements(consignment)
    return {
        "bill_of_lading_number": children.text(),
        "marks_and_numbers": _token(children.text()),
        "number_of_packages": int(children.text()),
        "kind_of_packages": children.text(),
        "description_of_goods": _token(children.text()),
        "hs_code": children.optional_text(HS_CODE),
        "gross_weight_kg": _read_decimal(children.text(), KILOGRAMS),
        "measurement_m3": _optional_decimal(children.optional_text(MEASUREMENT), CUBIC_METRES),
        "container_numbers": children.repeated_text(CONTAINER_NUMBER),
    }


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    if not is_valid_imo_number(record["ship"]["imo_number"]):
        raise _violation("RULE_IMO_CHECK_DIGIT", IMO_CHECK_DIGIT_RULE, root, SHIP, IMO_NUMBER)
    _check_containers(record, root)
    _check_hs_codes(record, root)
    _check_totals(record, root)


def _check_containers(record: Mapping[str, Any], root: etree._Element) -> None:
    for i, consignment in enumerate(record["consignments"]):
        for j, number in enumerate(consignment["container_numbers"]):
            if not is_valid_container_number(number):
                raise _violation(
                    "RULE_CONTAINER_CHECK_DIGIT",
                    CONTAINER_CHECK_DIGIT_RULE,
                    root,
                    _nth(CONSIGNMENT, i),
                    _nth(CONTAINER_NUMBER, j),
                )


def _check_hs_codes(record: Mapping[str, Any], root: etree._Element) -> None:
    for i, consignment in enumerate(record["consignments"]):
        code = consignment["hs_code"]
        if code is not None and not is_valid_hs_code(code):
            raise _violation("RULE_HS_CODE", HS_CODE_RULE, root, _nth(CONSIGNMENT, i), HS_CODE)


def _check_totals(record: Mapping[str, Any], root: etree._Element) -> None:
    consignments = record["consignments"]
    total_packages = record["total_number_of_packages"]
    packages = sum(c["number_of_packages"] for c in consignments)
    if total_packages is not None and total_packages != packages:
        raise _violation(
            "RULE_TOTALS",
            f"is not the sum of the consignments' {field_path(NUMBER_OF_PACKAGES)}",
            root,
            TOTAL_NUMBER_OF_PACKAGES,
        )
    total_weight = record["total_gross_weight_kg"]
    weight = sum((c["gross_weight_kg"] for c in consignments), Decimal(0))
    if total_weight is not None and total_weight != weight:
        raise _violation(
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
    root = _new_root(ROOT, NAMESPACE, version)
    _add(root, DOCUMENT_NUMBER, record["document_number"])
    _add(root, ARRIVAL_OR_DEPARTURE, record["arrival_or_departure"])
    _build_ship(etree.SubElement(root, SHIP), record["ship"])
    _add(root, VOYAGE_NUMBER, record["voyage_number"])
    _add(root, PORT_OF_REPORT, record["port_of_report"])
    _add(root, MASTER_NAME, record["master_name"])
    _add(root, PORT_OF_LOADING, record["port_of_loading"])
    _add(root, PORT_OF_DISCHARGE, record["port_of_discharge"])
    for consignment in _items(record["consignments"]):
        _build_consignment(etree.SubElement(root, CONSIGNMENT), consignment)
    _add_optional(
        root,
        TOTAL_NUMBER_OF_PACKAGES,
        _format_optional_int(record.get("total_number_of_packages")),
    )
    _add_optional(
        root,
        TOTAL_GROSS_WEIGHT,
        _format_optional_decimal(record.get("total_gross_weight_kg"), KILOGRAMS),
    )
    _add_optional(root, REMARKS, record.get("remarks"))
    return root


def _build_ship(ship_element: etree._Element, ship: Mapping[str, Any]) -> None:
    _refuse_tonnage(ship)
    _add(ship_element, NAME, ship["name"])
    _add(ship_element, IMO_NUMBER, ship["imo_number"])
    _add(ship_element, CALL_SIGN, ship["call_sign"])
    _add(ship_element, FLAG_STATE, ship["flag_state"])


def _refuse_tonnage(ship: Mapping[str, Any]) -> None:
    """The shared Ship record has tonnages; FAL 2 and FAL 7 have no box for them, and
    dropping them silently would break parse(render(record)) == record."""
    if ship.get("gross_tonnage") is not None or ship.get("net_tonnage") is not None:
        raise ValueError("the form has no tonnage boxes: gross and net tonnage must be null")


def _build_consignment(element: etree._Element, consignment: Mapping[str, Any]) -> None:
    _add(element, BILL_OF_LADING_NUMBER, consignment["bill_of_lading_number"])
    _add(element, MARKS_AND_NUMBERS, consignment["marks_and_numbers"])
    _add(element, NUMBER_OF_PACKAGES, _format_int(consignment["number_of_packages"]))
    _add(element, KIND_OF_PACKAGES, consignment["kind_of_packages"])
    _add(element, DESCRIPTION_OF_GOODS, consignment["description_of_goods"])
    _add_optional(element, HS_CODE, consignment.get("hs_code"))
    _add(element, GROSS_WEIGHT, _format_decimal(consignment["gross_weight_kg"], KILOGRAMS))
    _add_optional(
        element,
        MEASUREMENT,
        _format_optional_decimal(consignment.get("measurement_m3"), CUBIC_METRES),
    )
    _add_all(element, CONTAINER_NUMBER, consignment["container_numbers"])
