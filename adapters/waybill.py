"""Domestic container multimodal e-waybill (JT/T 1245, 国内集装箱多式联运电子运单), as XML in
namespace urn:px:multimodal:waybill:1 ("waybill-xml")."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from lxml import etree

from .base import RuleViolationError
from .fal2 import CONTAINER_CHECK_DIGIT_RULE, CUBIC_METRES, KILOGRAMS
from .iso6346 import is_valid_container_number
from .toolkit import (
    Children,
    XmlAdapter,
    add_optional_text,
    add_text,
    add_texts,
    field_path,
    format_decimal,
    format_instant_field,
    format_int,
    format_optional_decimal,
    format_optional_instant_field,
    instant_fields,
    list_field,
    new_root,
    nth,
    optional_decimal,
    optional_instant_fields,
    optional_token,
    read_decimal,
    token,
    violation,
)

NAMESPACE = "urn:px:multimodal:waybill:1"
XSD_NAME = "waybill"

MONEY = Decimal("0.01")

# XML spells these with hyphens, which Avro enum symbols cannot contain.
_MODE_FROM_XML = MappingProxyType(
    {"sea": "sea", "rail": "rail", "road": "road", "inland-water": "inland_water", "air": "air"}
)
_MODE_TO_XML = MappingProxyType({symbol: text for text, symbol in _MODE_FROM_XML.items()})
_STATUS_FROM_XML = MappingProxyType(
    {
        "booked": "booked",
        "in-transit": "in_transit",
        "delivered": "delivered",
        "cancelled": "cancelled",
    }
)
_STATUS_TO_XML = MappingProxyType({symbol: text for text, symbol in _STATUS_FROM_XML.items()})

# GB 32100-2015: the 31 characters of a unified social credit code, valued 0-30 in this
# order, and the weights of its first 17 characters.
_USCC_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = MappingProxyType({char: value for value, char in enumerate(_USCC_CHARACTERS)})
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def is_valid_unified_social_credit_code(code: str) -> bool:
    """18 characters from the GB 32100 alphabet whose last one is the check character:
    31 minus the weighted sum of the first 17 modulo 31 (31 itself written as 0)."""
    if len(code) != 18 or any(char not in _USCC_VALUES for char in code):
        return False
    total = sum(
        _USCC_VALUES[char] * weight for char, weight in zip(code, _USCC_WEIGHTS, strict=False)
    )
    return _USCC_CHARACTERS[(31 - total % 31) % 31] == code[17]


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("MultimodalWaybill")
WAYBILL_NUMBER = _tag("WaybillNumber")
STATUS = _tag("Status")
OPERATOR = _tag("Operator")
NAME = _tag("Name")
UNIFIED_SOCIAL_CREDIT_CODE = _tag("UnifiedSocialCreditCode")
CONSIGNOR = _tag("Consignor")
CONSIGNEE = _tag("Consignee")
CONTACT = _tag("Contact")
LEG = _tag("Leg")
SEQUENCE_NUMBER = _tag("SequenceNumber")
MODE = _tag("Mode")
CARRIER = _tag("Carrier")
ORIGIN = _tag("Origin")
DESTINATION = _tag("Destination")
UN_LOCODE = _tag("UnLocode")
STATION_CODE = _tag("StationCode")
PLANNED_DEPARTURE = _tag("PlannedDeparture")
PLANNED_ARRIVAL = _tag("PlannedArrival")
ACTUAL_DEPARTURE = _tag("ActualDeparture")
ACTUAL_ARRIVAL = _tag("ActualArrival")
CONTAINER = _tag("Container")
CONTAINER_NUMBER = _tag("ContainerNumber")
SIZE_TYPE = _tag("SizeType")
SEAL_NUMBER = _tag("SealNumber")
CARGO = _tag("Cargo")
DESCRIPTION = _tag("Description")
NUMBER_OF_PACKAGES = _tag("NumberOfPackages")
KIND_OF_PACKAGES = _tag("KindOfPackages")
GROSS_WEIGHT = _tag("GrossWeight")
VOLUME = _tag("Volume")
CHARGE = _tag("Charge")
ITEM = _tag("Item")
AMOUNT = _tag("Amount")
CURRENCY = _tag("Currency")
REMARKS = _tag("Remarks")


# The canonical fields the XML format has no element for (they come from DCSA eBL and
# Cargo-XML), at their defaults, so that a record reads back from Avro as it was parsed.
_WAYBILL_NOT_IN_XML = MappingProxyType({
    "transport_document": None, "notify_parties": (), "master_waybill_number": None,
    "origin": None, "destination": None, "total_number_of_pieces": None,
    "total_gross_weight_kg": None})
_OPERATOR_NOT_IN_XML = MappingProxyType({"address": None})
_PARTY_NOT_IN_XML = MappingProxyType({"address": None, "identifying_codes": ()})
_LEG_NOT_IN_XML = MappingProxyType({
    "planned_departure_date": None, "planned_arrival_date": None, "vessel_name": None,
    "conveyance_reference": None, "planned_departure_local_time": None,
    "planned_arrival_local_time": None})
_CONTAINER_NOT_IN_XML = MappingProxyType({"shipper_owned": None})
_CARGO_NOT_IN_XML = MappingProxyType({"package_description": None, "booking_reference": None,
                                      "hs_codes": (), "equipment_reference": None})
_CHARGE_NOT_IN_XML = MappingProxyType({"payment_term": None, "calculation_basis": None,
                                       "unit_price": None, "quantity": None})


def _not_in_xml(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults as fresh values (a new list for each list field)."""
    return {name: [] if value == () else value for name, value in defaults.items()}


def with_defaults(record: Mapping[str, Any]) -> dict[str, Any]:
    """A waybill record with every field its source format has no place for added at its
    default, level by level (the waybill, its operator and parties, legs, containers, cargo
    items and charges): what another waybill format (UN/EDIFACT IFTMIN) reads, completed so
    that it reads back from Avro as it was parsed."""
    def each(items: Any, defaults: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [_not_in_xml(defaults) | dict(item) for item in items]

    def party(value: Any) -> Any:
        return None if value is None else _not_in_xml(_PARTY_NOT_IN_XML) | dict(value)

    completed = _not_in_xml(_WAYBILL_NOT_IN_XML) | dict(record)
    operator = completed["operator"]
    completed["operator"] = (None if operator is None
                             else _not_in_xml(_OPERATOR_NOT_IN_XML) | dict(operator))
    completed["consignor"], completed["consignee"] = (party(completed["consignor"]),
                                                      party(completed["consignee"]))
    completed["legs"] = each(completed["legs"], _LEG_NOT_IN_XML)
    completed["containers"] = each(completed["containers"], _CONTAINER_NOT_IN_XML)
    completed["cargo_items"] = each(completed["cargo_items"], _CARGO_NOT_IN_XML)
    completed["charges"] = each(completed["charges"], _CHARGE_NOT_IN_XML)
    return completed


def business_key(record: Mapping[str, Any]) -> str:
    """The waybill number: every status update of a waybill is a new version of it."""
    return str(record["waybill_number"])


class MultimodalWaybillAdapter(XmlAdapter):
    format_id = "waybill-xml"
    document_type = "waybill"
    schema_name = "px.canonical.MultimodalWaybill"
    xsd_name = XSD_NAME
    root_elements = (ROOT,)
    label = "waybill"
    __slots__ = ()

    business_key = staticmethod(business_key)

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        return _build_waybill(record, version)

    @staticmethod
    def read(root: etree._Element) -> dict[str, Any]:
        return _read_waybill(root)

    @staticmethod
    def check(record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        _check_rules(record, root)
        return ()


# ---------------------------------------------------------------- XML -> canonical record

def _read_waybill(root: etree._Element) -> dict[str, Any]:
    children = Children(root)
    return {
        "waybill_number": children.text(),
        "status": _STATUS_FROM_XML[children.text()],
        "operator": _read_operator(children.next()),
        "consignor": _read_party(children.next()),
        "consignee": _read_party(children.next()),
        "legs": [_read_leg(e) for e in children.repeated(LEG)],
        "containers": [_read_container(e) for e in children.repeated(CONTAINER)],
        "cargo_items": [_read_cargo(e) for e in children.repeated(CARGO)],
        "charges": [_read_charge(e) for e in children.repeated(CHARGE)],
        "remarks": optional_token(children.optional_text(REMARKS)),
        **_not_in_xml(_WAYBILL_NOT_IN_XML),
    }


def _read_operator(operator: etree._Element) -> dict[str, Any]:
    children = Children(operator)
    return {
        "name": token(children.text()),
        "unified_social_credit_code": children.text(),
        **_not_in_xml(_OPERATOR_NOT_IN_XML),
    }


def _read_party(party: etree._Element) -> dict[str, Any]:
    children = Children(party)
    return {
        "name": token(children.text()),
        "contact": token(children.text()),
        **_not_in_xml(_PARTY_NOT_IN_XML),
    }


def _read_leg(leg: etree._Element) -> dict[str, Any]:
    children = Children(leg)
    return {
        "sequence_number": int(children.text()),
        "mode": _MODE_FROM_XML[children.text()],
        "carrier": token(children.text()),
        "origin": _read_place(children.next()),
        "destination": _read_place(children.next()),
        **instant_fields(children.text(), "planned_departure"),
        **instant_fields(children.text(), "planned_arrival"),
        **optional_instant_fields(children.optional_text(ACTUAL_DEPARTURE), "actual_departure"),
        **optional_instant_fields(children.optional_text(ACTUAL_ARRIVAL), "actual_arrival"),
        **_not_in_xml(_LEG_NOT_IN_XML),
    }


def _read_place(place: etree._Element) -> dict[str, Any]:
    children = Children(place)
    return {
        "un_locode": children.optional_text(UN_LOCODE),
        "station_code": children.optional_text(STATION_CODE),
        "name": optional_token(children.optional_text(NAME)),
    }


def _read_container(container: etree._Element) -> dict[str, Any]:
    children = Children(container)
    return {
        "container_number": children.text(),
        "size_type": children.text(),
        "seal_numbers": children.repeated_text(SEAL_NUMBER),
        **_not_in_xml(_CONTAINER_NOT_IN_XML),
    }


def _read_cargo(cargo: etree._Element) -> dict[str, Any]:
    children = Children(cargo)
    return {
        "description": token(children.text()),
        "number_of_packages": int(children.text()),
        "kind_of_packages": children.text(),
        "gross_weight_kg": read_decimal(children.text(), KILOGRAMS),
        "volume_m3": optional_decimal(children.optional_text(VOLUME), CUBIC_METRES),
        **_not_in_xml(_CARGO_NOT_IN_XML),
    }


def _read_charge(charge: etree._Element) -> dict[str, Any]:
    children = Children(charge)
    return {
        "item": token(children.text()),
        "amount": read_decimal(children.text(), MONEY),
        "currency": children.text(),
        **_not_in_xml(_CHARGE_NOT_IN_XML),
    }


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    if not is_valid_unified_social_credit_code(record["operator"]["unified_social_credit_code"]):
        raise violation(
            "RULE_USCC_CHECK_DIGIT",
            "the unified social credit code fails its check character (GB 32100)",
            root,
            OPERATOR,
            UNIFIED_SOCIAL_CREDIT_CODE,
        )
    _check_containers(record["containers"], root)
    legs = record["legs"]
    _check_sequence_numbers(legs, root)
    _check_leg_times(legs, root)
    _check_progress(legs, root)
    _check_status(record["status"], legs, root)


def _check_containers(containers: list[dict[str, Any]], root: etree._Element) -> None:
    for j, container in enumerate(containers):
        number = container["container_number"]
        if not is_valid_container_number(number):
            raise violation(
                "RULE_CONTAINER_CHECK_DIGIT",
                CONTAINER_CHECK_DIGIT_RULE,
                root,
                nth(CONTAINER, j),
                CONTAINER_NUMBER,
            )


def _check_sequence_numbers(legs: list[dict[str, Any]], root: etree._Element) -> None:
    for i, leg in enumerate(legs):
        if leg["sequence_number"] != i + 1:
            raise violation(
                "RULE_SEQUENCE",
                f"must be {i + 1}: legs are numbered 1, 2, 3 and on, in document order",
                root,
                nth(LEG, i),
                SEQUENCE_NUMBER,
            )


def _check_leg_times(legs: list[dict[str, Any]], root: etree._Element) -> None:
    """Each leg arrives after it departs, and departs no earlier than the previous leg
    arrived: for the plan, and for what actually happened where both times are known."""
    for i, leg in enumerate(legs):
        if leg["planned_arrival"] <= leg["planned_departure"]:
            raise _dates_violation(
                f"is not after the leg's {field_path(PLANNED_DEPARTURE)}",
                root,
                i,
                PLANNED_ARRIVAL,
            )
        departed, arrived = leg["actual_departure"], leg["actual_arrival"]
        if departed is not None and arrived is not None and arrived <= departed:
            raise _dates_violation(
                f"is not after the leg's {field_path(ACTUAL_DEPARTURE)}",
                root,
                i,
                ACTUAL_ARRIVAL,
            )
        if i == 0:
            continue
        previous = legs[i - 1]
        if leg["planned_departure"] < previous["planned_arrival"]:
            raise _dates_violation(
                f"is before {field_path(nth(LEG, i - 1), PLANNED_ARRIVAL)}",
                root,
                i,
                PLANNED_DEPARTURE,
            )
        previous_arrived = previous["actual_arrival"]
        if departed is not None and previous_arrived is not None and departed < previous_arrived:
            raise _dates_violation(
                f"is before {field_path(nth(LEG, i - 1), ACTUAL_ARRIVAL)}",
                root,
                i,
                ACTUAL_DEPARTURE,
            )


def _dates_violation(message: str, root: etree._Element, leg: int, tag: str) -> RuleViolationError:
    return violation("RULE_DATES_ORDER", message, root, nth(LEG, leg), tag)


def _check_progress(legs: list[dict[str, Any]], root: etree._Element) -> None:
    """Actual times fill in from the first leg on: a leg arrives only once it has departed,
    and departs only once the previous leg has arrived."""
    for i, leg in enumerate(legs):
        if leg["actual_arrival"] is not None and leg["actual_departure"] is None:
            raise violation(
                "RULE_CONDITIONAL",
                f"is given, but the leg's {field_path(ACTUAL_DEPARTURE)} is not",
                root,
                nth(LEG, i),
                ACTUAL_ARRIVAL,
            )
        if i > 0 and leg["actual_departure"] is not None and legs[i - 1]["actual_arrival"] is None:
            raise violation(
                "RULE_CONDITIONAL",
                f"is given, but {field_path(nth(LEG, i - 1), ACTUAL_ARRIVAL)} is not",
                root,
                nth(LEG, i),
                ACTUAL_DEPARTURE,
            )


def _check_status(status: str, legs: list[dict[str, Any]], root: etree._Element) -> None:
    """The status agrees with the actual times: nothing has moved while booked, the first
    leg has departed once in transit, the last leg has arrived once delivered."""
    moved = any(leg["actual_departure"] is not None for leg in legs)
    problem = None
    if status == "booked" and moved:
        problem = "a booked waybill cannot have an actual departure yet"
    elif status == "in_transit" and legs[0]["actual_departure"] is None:
        problem = "an in-transit waybill needs the actual departure of its first leg"
    elif status == "delivered" and legs[-1]["actual_arrival"] is None:
        problem = "a delivered waybill needs the actual arrival of its last leg"
    if problem is not None:
        raise violation("RULE_CONDITIONAL", problem, root, STATUS)


# ---------------------------------------------------------------- canonical record -> XML


def _build_waybill(record: Mapping[str, Any], version: int) -> etree._Element:
    _refuse_what_xml_cannot_state(record)
    root = new_root(ROOT, NAMESPACE, version)
    add_text(root, WAYBILL_NUMBER, record["waybill_number"])
    add_text(root, STATUS, _STATUS_TO_XML[record["status"]])
    operator = record["operator"]
    operator_element = etree.SubElement(root, OPERATOR)
    add_text(operator_element, NAME, operator["name"])
    add_text(operator_element, UNIFIED_SOCIAL_CREDIT_CODE, operator["unified_social_credit_code"])
    _build_party(etree.SubElement(root, CONSIGNOR), record["consignor"])
    _build_party(etree.SubElement(root, CONSIGNEE), record["consignee"])
    for leg in list_field(record["legs"]):
        _build_leg(etree.SubElement(root, LEG), leg)
    for container in list_field(record["containers"]):
        _build_container(etree.SubElement(root, CONTAINER), container)
    for cargo in list_field(record["cargo_items"]):
        _build_cargo(etree.SubElement(root, CARGO), cargo)
    for charge in list_field(record["charges"]):
        _build_charge(etree.SubElement(root, CHARGE), charge)
    add_optional_text(root, REMARKS, record.get("remarks"))
    return root


def _refuse_what_xml_cannot_state(record: Mapping[str, Any]) -> None:
    """A record that fills a field the XML format has no element for (one read from DCSA eBL
    or Cargo-XML) is refused rather than written without it."""
    parts: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = [
        (record, _WAYBILL_NOT_IN_XML), (record["operator"], _OPERATOR_NOT_IN_XML),
        (record["consignor"], _PARTY_NOT_IN_XML), (record["consignee"], _PARTY_NOT_IN_XML)]
    parts += [(leg, _LEG_NOT_IN_XML) for leg in list_field(record["legs"])]
    parts += [(c, _CONTAINER_NOT_IN_XML) for c in list_field(record["containers"])]
    parts += [(c, _CARGO_NOT_IN_XML) for c in list_field(record["cargo_items"])]
    parts += [(c, _CHARGE_NOT_IN_XML) for c in list_field(record["charges"])]
    for part, defaults in parts:
        if part is None:
            raise ValueError("the waybill XML needs an operator, consignor and consignee")
        for name, default in defaults.items():
            value = part.get(name, default)
            if value != default and not (default == () and value == []):
                raise ValueError(f"the waybill XML has no element for {name}")


def _build_party(element: etree._Element, party: Mapping[str, Any]) -> None:
    add_text(element, NAME, party["name"])
    add_text(element, CONTACT, party["contact"])


def _build_leg(element: etree._Element, leg: Mapping[str, Any]) -> None:
    add_text(element, SEQUENCE_NUMBER, format_int(leg["sequence_number"]))
    add_text(element, MODE, _MODE_TO_XML[leg["mode"]])
    add_text(element, CARRIER, leg["carrier"])
    _build_place(etree.SubElement(element, ORIGIN), leg["origin"])
    _build_place(etree.SubElement(element, DESTINATION), leg["destination"])
    add_text(element, PLANNED_DEPARTURE, format_instant_field(leg, "planned_departure"))
    add_text(element, PLANNED_ARRIVAL, format_instant_field(leg, "planned_arrival"))
    add_optional_text(
        element, ACTUAL_DEPARTURE, format_optional_instant_field(leg, "actual_departure")
    )
    add_optional_text(element, ACTUAL_ARRIVAL, format_optional_instant_field(leg, "actual_arrival"))


def _build_place(element: etree._Element, place: Mapping[str, Any]) -> None:
    """Exactly one of the codes must be set; the XSD's choice refuses none or both."""
    add_optional_text(element, UN_LOCODE, place.get("un_locode"))
    add_optional_text(element, STATION_CODE, place.get("station_code"))
    add_optional_text(element, NAME, place.get("name"))


def _build_container(element: etree._Element, container: Mapping[str, Any]) -> None:
    add_text(element, CONTAINER_NUMBER, container["container_number"])
    add_text(element, SIZE_TYPE, container["size_type"])
    add_texts(element, SEAL_NUMBER, container["seal_numbers"])


def _build_cargo(element: etree._Element, cargo: Mapping[str, Any]) -> None:
    add_text(element, DESCRIPTION, cargo["description"])
    add_text(element, NUMBER_OF_PACKAGES, format_int(cargo["number_of_packages"]))
    add_text(element, KIND_OF_PACKAGES, cargo["kind_of_packages"])
    add_text(element, GROSS_WEIGHT, format_decimal(cargo["gross_weight_kg"], KILOGRAMS))
    add_optional_text(
        element, VOLUME, format_optional_decimal(cargo.get("volume_m3"), CUBIC_METRES)
    )


def _build_charge(element: etree._Element, charge: Mapping[str, Any]) -> None:
    add_text(element, ITEM, charge["item"])
    add_text(element, AMOUNT, format_decimal(charge["amount"], MONEY))
    add_text(element, CURRENCY, charge["currency"])
