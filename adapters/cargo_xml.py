"""IATA Cargo-XML air waybills to the canonical waybill and back ("cargo-xml"): the XFWB
(air waybill, root `Waybill` in `iata:waybill:1`) and the XFZB (house waybill, root
`HouseWaybill` in `iata:housewaybill:1`), their content in `iata:datamodel:3`, message
version 3.00 as public samples show it (docs/edifact-research.md §9.2).

IATA's schemas are sold with its Cargo-XML Toolkit and cannot be kept here, so the
structure is checked from the element table below with adapters.xml_tree, as the China
manifests are: every element the samples use has its place, elements the canonical record
does not carry (handling instructions, customs notes, rating and charges, insurance,
signatories) are allowed where they belong and not read (SKIPPED), anything else is refused
with a code naming it. What is read:

- the air waybill number (BusinessHeaderDocument/ID; of a house waybill, the master's is
  MasterConsignment/TransportContractDocument/ID), 3-digit airline prefix and 8-digit serial
  whose last digit is the first seven modulo 7;
- consignor and consignee (name, postal address, telephone), the document's origin and
  final destination airports, total pieces and gross weight;
- the flights (SpecifiedLogisticsTransportMovement) as air legs, ordered by
  SequenceNumeric, airports as IATA codes (WaybillPlace.station_code), the flight number as
  the conveyance reference; scheduled times without an offset stay local
  (planned_departure_local_time), with one they become instants;
- the goods items as cargo items (pieces, gross weight, volume, nature of goods, the item's
  commodity code).

Not carried, and not written back: the message header beyond its type, the issuing
carrier (the AWB prefix names it; WaybillOperator stays null), rates and charges (their
codes are IATA's), customs and handling notes, ULDs (UtilizedUnitLoadTransportEquipment: no
ISO 6346 containers). Cargo-XML carries no document version: each is version 1."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar, cast

from lxml import etree

from .base import RenderError, RuleViolationError
from .fal2 import CUBIC_METRES, KILOGRAMS
from .toolkit import RENDER_ERRORS, XmlAdapter, document_version, format_int, list_field
from .xml_tree import (
    ALWAYS,
    DECIMAL,
    SKIPPED,
    Attr,
    Node,
    Plan,
    TreeReader,
    build_children,
    group,
    leaf,
    refusal,
)

DATA_NS = "iata:datamodel:3"
WAYBILL_NS = "iata:waybill:1"
HOUSE_NS = "iata:housewaybill:1"
XFWB, XFZB = "XFWB", "XFZB"
ROOTS = {f"{{{WAYBILL_NS}}}Waybill": XFWB, f"{{{HOUSE_NS}}}HouseWaybill": XFZB}
# UNCL 1001 document name codes: 740 air waybill, 741 master air waybill, 703 house waybill.
TYPE_CODES = {XFWB: ("740", "741"), XFZB: ("703",)}
VERSION_ID = "3.00"
AIR_MODE_CODE = "4"  # UN/ECE Recommendation 19: air transport

AWB_CHECK_DIGIT = "RULE_AWB_CHECK_DIGIT"
AIRPORT_CODE = "RULE_AIRPORT_CODE"
PIECE_COUNT = "RULE_PIECE_COUNT"
# Refused while reading, before the record (and so its business key) exists.
UNIT_CODE = "CARGO_XML_UNIT_UNKNOWN"
TYPE_CODE = "CARGO_XML_TYPE_MISMATCH"
MODE_NOT_AIR = "CARGO_XML_MODE_NOT_AIR"
ITEM_SEQUENCE = "CARGO_XML_ITEM_SEQUENCE"
TIME_INVALID = "STRUCTURE_TIME_INVALID"
ROOT_ELEMENT_UNKNOWN = "STRUCTURE_ELEMENT_UNKNOWN"
ROOT_ELEMENT_MISSING = "STRUCTURE_ELEMENT_MISSING"

_AWB = re.compile(r"([0-9]{3})-?([0-9]{8})")
_AIRPORT = re.compile(r"[A-Z]{3}")
_LOCAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_WEIGHT_UNITS = {"KGM": Decimal(1), "LBR": Decimal("0.45359237")}
_VOLUME_UNITS = {"MTQ": Decimal(1), "DMQ": Decimal("0.001"), "CMQ": Decimal("0.000001")}
_ONE_MINUTE = timedelta(minutes=1)
_MEASURE_LIMIT = Decimal(10) ** 9

NAME, TEXT = 512, 512
UNIT = Attr("unit_code", ("unitCode",), "UN/ECE Recommendation 20 unit (KGM, LBR, MTQ…).")
BOTH = frozenset({XFWB, XFZB})


def _skipped(path: str, *, repeats: bool = True) -> Node:
    return leaf(path.lower(), path, "Not carried by the canonical record.", kind=SKIPPED,
                repeats=repeats)


def _measure(field: str, path: str, doc: str, **options: Any) -> Node:
    return leaf(field, path, doc, kind=DECIMAL, attr=UNIT, **options)


def _indicators() -> tuple[Node, ...]:
    return tuple(_skipped(name, repeats=False) for name in (
        "NilCarriageValueIndicator", "DeclaredValueForCarriageAmount",
        "NilCustomsValueIndicator", "DeclaredValueForCustomsAmount",
        "NilInsuranceValueIndicator", "InsuranceValueAmount", "TotalChargePrepaidIndicator",
        "WeightTotalChargeAmount", "ValuationTotalChargeAmount", "TaxTotalChargeAmount",
        "TotalDisbursementPrepaidIndicator", "AgentTotalDisbursementAmount",
        "CarrierTotalDisbursementAmount", "TotalPrepaidChargeAmount",
        "TotalCollectChargeAmount"))


def _party(field: str, path: str, doc: str, **options: Any) -> Node:
    return group(field, path, "", doc, (
        leaf("name", "Name", "Name.", max_length=NAME, required=ALWAYS),
        _skipped("AccountID", repeats=False),
        _skipped("CargoAgentID", repeats=False),
        group("address", "PostalStructuredAddress|FreightForwarderAddress", "", "Address.", (
            leaf("post_code", "PostcodeCode", "Post code."),
            leaf("street", "StreetName", "Street.", max_length=NAME, required=ALWAYS),
            leaf("city", "CityName", "City.", max_length=NAME, required=ALWAYS),
            leaf("country_code", "CountryID", "ISO 3166-1 alpha-2.", required=ALWAYS),
            _skipped("CountryName", repeats=False),
            _skipped("CountrySubDivisionName", repeats=False),
            _skipped("PostOfficeBox", repeats=False),
            _skipped("CityID", repeats=False),
            _skipped("CountrySubDivisionID", repeats=False),
        )),
        _skipped("SpecifiedCargoAgentLocation", repeats=False),
        group("contact", "DefinedTradeContact", "", "Contact.", (
            _skipped("PersonName", repeats=False),
            _skipped("DepartmentName", repeats=False),
            leaf("phone", "DirectTelephoneCommunication/CompleteNumber", "Telephone.",
                 max_length=70, personal=True),
            _skipped("FaxCommunication", repeats=False),
            _skipped("URIEmailCommunication", repeats=False),
            _skipped("TelexCommunication", repeats=False),
        )),
    ), **options)


def _location(field: str, path: str, doc: str, **options: Any) -> Node:
    return group(field, path, "", doc, (
        leaf("id", "ID", "IATA airport code.", required=ALWAYS),
        leaf("name", "Name", "Name of the airport.", max_length=NAME),
        _skipped("TypeCode", repeats=False),
    ), **options)


def _event(field: str, path: str, location: str) -> Node:
    return group(field, path, "", "A scheduled departure or arrival.", (
        _skipped("ArrivalOccurrenceDateTimeTypeCode", repeats=False),
        _skipped("DepartureOccurrenceDateTimeTypeCode", repeats=False),
        leaf("scheduled", "ScheduledOccurrenceDateTime", "Scheduled date and time."),
        _location("location", location, "The airport.", required=ALWAYS),
    ))


MOVEMENT = group("movements", "SpecifiedLogisticsTransportMovement", "", "The flights.", (
    _skipped("StageCode", repeats=False),
    leaf("mode_code", "ModeCode", "UN/ECE Rec. 19 mode: 4 is air."),
    _skipped("Mode", repeats=False),
    leaf("flight", "ID", "Flight number.", required=ALWAYS),
    leaf("sequence", "SequenceNumeric", "Order of the flight.", required=ALWAYS),
    leaf("carrier", "UsedLogisticsTransportMeans/Name", "Carrier code.", required=ALWAYS),
    _event("arrival", "ArrivalEvent", "OccurrenceArrivalLocation"),
    _event("departure", "DepartureEvent", "OccurrenceDepartureLocation"),
), repeats=True)


def _item(path: str) -> Node:
    return group("items", path, "", "The goods items.", (
        leaf("sequence", "SequenceNumeric", "Item number.", required=ALWAYS),
        leaf("commodity_code", "TypeCode", "Commodity (HS) code."),
        _measure("gross_weight", "GrossWeightMeasure", "Gross weight.", required=ALWAYS),
        _measure("volume", "GrossVolumeMeasure", "Volume."),
        _skipped("PackageQuantity", repeats=False),
        leaf("pieces", "PieceQuantity", "Number of pieces.", required=ALWAYS),
        _skipped("Information", repeats=False),
        leaf("nature", "NatureIdentificationTransportCargo/Identification",
             "Nature and quantity of goods.", max_length=NAME, required=ALWAYS),
        _skipped("OriginCountry"),
        _skipped("TransportLogisticsPackage"),
        _skipped("ApplicableFreightRateServiceCharge"),
        _skipped("SpecifiedRateCombinationPointLocation"),
        _skipped("AssociatedUnitLoadTransportEquipment"),
    ), repeats=True)


def _consignment_body(items: Node, *extra: Node) -> tuple[Node, ...]:
    return (
        _skipped("ID", repeats=False),
        *_indicators(),
        _skipped("AdditionalID"),
        _skipped("FreightForwarderAssignedID", repeats=False),
        _skipped("AssociatedReferenceID"),
        _measure("gross_weight", "IncludedTareGrossWeightMeasure", "Total gross weight."),
        _skipped("GrossVolumeMeasure", repeats=False),
        _skipped("DensityGroupCode", repeats=False),
        _skipped("PackageQuantity", repeats=False),
        leaf("pieces", "TotalPieceQuantity", "Total pieces.", required=ALWAYS),
        _skipped("SummaryDescription", repeats=False),
        _skipped("ProductID", repeats=False),
        _party("consignor", "ConsignorParty", "Consignor.", required=ALWAYS),
        _party("consignee", "ConsigneeParty", "Consignee.", required=ALWAYS),
        _skipped("FreightForwarderParty", repeats=False),
        _skipped("AssociatedParty"),
        _skipped("ApplicableTransportCargoInsurance", repeats=False),
        *extra,
        _location("origin", "OriginLocation", "Airport of departure.", required=ALWAYS),
        _location("destination", "FinalDestinationLocation", "Airport of destination.",
                  required=ALWAYS),
        MOVEMENT,
        _skipped("UtilizedUnitLoadTransportEquipment"),
        _skipped("HandlingSPHInstructions"),
        _skipped("HandlingSSRInstructions"),
        _skipped("HandlingOSIInstructions"),
        _skipped("IncludedAccountingNote"),
        _skipped("IncludedCustomsNote"),
        _skipped("AssociatedReferenceDocument"),
        _skipped("AssociatedConsignmentCustomsProcedure"),
        _skipped("ApplicableOriginCurrencyExchange"),
        _skipped("ApplicableDestinationCurrencyExchange"),
        _skipped("ApplicableLogisticsServiceCharge"),
        _skipped("ApplicableLogisticsAllowanceCharge"),
        items,
        _skipped("ApplicableTotalRating"),
    )


HEADER = Plan((
    leaf("id", "ID", "Message identifier.", max_length=70, required=ALWAYS),
    _skipped("Name", repeats=False),
    leaf("type_code", "TypeCode", "UNCL 1001 document name code.", required=ALWAYS),
    _skipped("IssueDateTime", repeats=False),
    _skipped("PurposeCode", repeats=False),
    leaf("version_id", "VersionID", "Message version.", required=ALWAYS),
    _skipped("ConversationID", repeats=False),
    _skipped("SenderParty"),
    _skipped("RecipientParty"),
))
BUSINESS_HEADER = Plan((
    leaf("id", "ID", "Air waybill (or house waybill) number.", required=ALWAYS),
    _skipped("SenderAssignedID", repeats=False),
    _skipped("IncludedHeaderNote"),
    _skipped("SignatoryConsignorAuthentication", repeats=False),
    _skipped("SignatoryCarrierAuthentication", repeats=False),
))
MASTER_AIR_WAYBILL = Plan(_consignment_body(group(
    "ratings", "ApplicableRating", "", "Rating lines with the goods items.", (
        _skipped("TypeCode", repeats=False),
        _skipped("TotalChargeAmount", repeats=False),
        _skipped("ConsignmentItemQuantity", repeats=False),
        _item("IncludedMasterConsignmentItem"),
    ), repeats=True)))
HOUSE_CONSIGNMENT = _consignment_body(_item("IncludedHouseConsignmentItem"))
MASTER_OF_HOUSE = Plan((
    _skipped("ID", repeats=False),
    _skipped("AdditionalID"),
    _skipped("IncludedTareGrossWeightMeasure", repeats=False),
    _skipped("GrossVolumeMeasure", repeats=False),
    _skipped("TotalPieceQuantity", repeats=False),
    leaf("master_awb", "TransportContractDocument/ID", "Master air waybill number.",
         required=ALWAYS),
    _skipped("OriginLocation", repeats=False),
    _skipped("FinalDestinationLocation", repeats=False),
    group("house", "IncludedHouseConsignment", "", "The house consignment.",
          HOUSE_CONSIGNMENT, required=ALWAYS),
))
_PARTS = ("MessageHeaderDocument", "BusinessHeaderDocument", "MasterConsignment")


@dataclass(frozen=True, slots=True)
class Where:
    """Names a field of one message by its steps from the root (the first step in the
    message's namespace, the rest in iata:datamodel:3), with its line when it is found."""

    root: etree._Element
    consignment: tuple[str, ...]  # the steps to the consignment the record is read from
    located: bool = True  # False: the steps name the field but are no path to find it by

    def refusal(self, code: str, rule: str, *steps: str) -> RuleViolationError:
        """A refusal of the field at `steps` below the consignment."""
        return self.at_root(code, rule, *self.consignment, *steps)

    def at_root(self, code: str, rule: str, *steps: str) -> RuleViolationError:
        found = None
        if self.located:
            namespace = etree.QName(self.root).namespace
            found = self.root.find("/".join((f"{{{namespace}}}{steps[0]}",
                                             *(f"{{{DATA_NS}}}{step}" for step in steps[1:]))))
        return refusal(code, rule, steps, None if found is None else found.sourceline)


def of_message(root: etree._Element) -> Where:
    house = ROOTS.get(str(root.tag)) == XFZB
    return Where(root, ("MasterConsignment", "IncludedHouseConsignment") if house
                 else ("MasterConsignment",))


def is_valid_awb_number(number: str) -> bool:
    """Airline prefix and serial, the serial's last digit its first seven modulo 7."""
    found = _AWB.fullmatch(number)
    return found is not None and int(found.group(2)[:7]) % 7 == int(found.group(2)[7])


def business_key(record: Mapping[str, Any]) -> str:
    """The air waybill number; of a house waybill, the master's and the house number."""
    master = record["master_waybill_number"]
    number = str(record["waybill_number"])
    return number if master is None else f"{master}/{number}"


class CargoXmlAdapter(XmlAdapter):
    format_id = "cargo-xml"
    document_type = "waybill"
    schema_name = "px.canonical.MultimodalWaybill"
    xsd_name = ""  # IATA's XSDs are not public: the structure is checked from the table
    label = "IATA Cargo-XML waybill"
    root_elements: ClassVar[tuple[str, ...]] = tuple(ROOTS)
    __slots__ = ()

    business_key = staticmethod(business_key)

    def document_version(self, root: etree._Element) -> int:
        return 1  # Cargo-XML carries no version of the document

    @staticmethod
    def read(root: etree._Element) -> dict[str, Any]:
        return _read_message(root)

    @staticmethod
    def check(record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        _check_rules(record, root)
        return ()

    def render(self, record: Mapping[str, Any]) -> bytes:
        """XFWB for a waybill, XFZB for a house waybill (one with a master number). With no
        XSD to hold it to, the tree is read back and checked as parse would."""
        try:
            root = _build_message(record, document_version(record))
        except RENDER_ERRORS as exc:
            raise RenderError(f"cannot render {self.label} record: {type(exc).__name__}: "
                              f"{exc}") from None
        try:
            again = _read_message(root)
            _check_rules(again, root)
        except RuleViolationError as exc:
            raise RenderError(f"rendered {self.label} is not valid: {exc.code}: "
                              f"{exc.message}") from None
        if again != _body(record):
            raise RenderError(f"rendered {self.label} does not read back as the record: it "
                              "states what Cargo-XML has no element for")
        return cast(bytes, etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                          pretty_print=True))


def _body(record: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name != "header"}


# ---------------------------------------------------------------- XML -> canonical record


def _read_message(root: etree._Element) -> dict[str, Any]:
    variant = ROOTS.get(str(root.tag))
    if variant is None:
        raise refusal(ROOT_ELEMENT_UNKNOWN, "is not a Cargo-XML waybill or house waybill root",
                      (etree.QName(root).localname,), root.sourceline)
    parts = _parts(root)
    reader = TreeReader(DATA_NS, variant)
    header = reader.read_group(parts[0], HEADER, (_PARTS[0],))
    business = reader.read_group(parts[1], BUSINESS_HEADER, (_PARTS[1],))
    if header["type_code"] not in TYPE_CODES[variant]:
        raise of_message(root).at_root(
            TYPE_CODE, f"must be {' or '.join(TYPE_CODES[variant])} in a {variant}",
            _PARTS[0], "TypeCode")
    if variant == XFWB:
        master = reader.read_group(parts[2], MASTER_AIR_WAYBILL, (_PARTS[2],))
        items = [item for rating in master["ratings"] for item in rating["items"]]
        return _waybill(business["id"], None, master, items, of_message(root))
    outer = reader.read_group(parts[2], MASTER_OF_HOUSE, (_PARTS[2],))
    house = outer["house"]
    return _waybill(business["id"], outer["master_awb"], house, house["items"],
                    of_message(root))


def _parts(root: etree._Element) -> list[etree._Element]:
    """The message's three parts, in the root's namespace, each once and in order."""
    namespace = etree.QName(root).namespace
    elements = [child for child in root if isinstance(child.tag, str)]
    for index, child in enumerate(elements):
        expected = f"{{{namespace}}}{_PARTS[index]}" if index < len(_PARTS) else None
        if child.tag != expected:
            raise refusal(ROOT_ELEMENT_UNKNOWN, "is not the next part of the message "
                          f"({', '.join(_PARTS)})", (etree.QName(child).localname,),
                          child.sourceline)
    if len(elements) < len(_PARTS):
        raise refusal(ROOT_ELEMENT_MISSING, "is required", (_PARTS[len(elements)],),
                      root.sourceline)
    return elements


def _waybill(number: str, master: str | None, consignment: Mapping[str, Any],
             items: list[Mapping[str, Any]], where: Where) -> dict[str, Any]:
    return {
        "waybill_number": number,
        "status": None,
        "operator": None,
        "consignor": _party_record(consignment["consignor"]),
        "consignee": _party_record(consignment["consignee"]),
        "legs": [_leg(m, i, where) for i, m in enumerate(consignment["movements"])],
        "containers": [],
        "cargo_items": [_cargo(item, i, where) for i, item in enumerate(items)],
        "charges": [],
        "remarks": None,
        "transport_document": None,
        "notify_parties": [],
        "master_waybill_number": master,
        "origin": _airport(consignment["origin"]),
        "destination": _airport(consignment["destination"]),
        "total_number_of_pieces": _count(consignment["pieces"], where, "TotalPieceQuantity"),
        "total_gross_weight_kg": _optional_measure(consignment["gross_weight"], _WEIGHT_UNITS,
                                                   KILOGRAMS, where,
                                                   "IncludedTareGrossWeightMeasure"),
    }


def _party_record(party: Mapping[str, Any]) -> dict[str, Any]:
    address, contact = party["address"], party["contact"]
    return {
        "name": party["name"],
        "contact": None if contact is None else contact["phone"],
        "address": None if address is None else {
            "street": address["street"], "street_number": None,
            "post_code": address["post_code"], "city": address["city"],
            "country_code": address["country_code"]},
        "identifying_codes": [],
    }


def _airport(location: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if location is None:
        return None
    return {"un_locode": None, "station_code": location["id"], "name": location["name"]}


def _leg(movement: Mapping[str, Any], index: int, at: Where) -> dict[str, Any]:
    flight = f"SpecifiedLogisticsTransportMovement[{index + 1}]"
    if movement["mode_code"] not in (None, AIR_MODE_CODE):
        raise at.refusal(MODE_NOT_AIR, "must be 4 (air) on an air waybill", flight, "ModeCode")
    departure, arrival = movement["departure"], movement["arrival"]
    return {
        "sequence_number": _count(movement["sequence"], at, flight, "SequenceNumeric"),
        "mode": "air",
        "carrier": movement["carrier"],
        "origin": _airport(None if departure is None else departure["location"]),
        "destination": _airport(None if arrival is None else arrival["location"]),
        **_scheduled(departure, "departure", at, flight, "DepartureEvent"),
        **_scheduled(arrival, "arrival", at, flight, "ArrivalEvent"),
        "actual_departure": None, "actual_departure_utc_offset_minutes": None,
        "actual_arrival": None, "actual_arrival_utc_offset_minutes": None,
        "planned_departure_date": None, "planned_arrival_date": None,
        "vessel_name": None, "conveyance_reference": movement["flight"],
    }


def _scheduled(event: Mapping[str, Any] | None, kind: str, at: Where, *steps: str
               ) -> dict[str, Any]:
    """The planned instant and offset when the time has an offset, else the local time."""
    planned = f"planned_{kind}"
    fields: dict[str, Any] = {planned: None, f"{planned}_utc_offset_minutes": None,
                              f"{planned}_local_time": None}
    text = None if event is None else event["scheduled"]
    if text is None:
        return fields
    if _LOCAL_TIME.fullmatch(text):
        fields[f"{planned}_local_time"] = text
        return fields
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        local = None
    offset = None if local is None else local.utcoffset()
    if local is None or offset is None or local.microsecond % 1000:
        raise at.refusal(TIME_INVALID, "must be a date and time yyyy-MM-ddTHH:mm:ss, with or "
                         "without a UTC offset", *steps, "ScheduledOccurrenceDateTime")
    fields[planned] = local.astimezone(UTC)
    fields[f"{planned}_utc_offset_minutes"] = offset // _ONE_MINUTE
    return fields


def _cargo(item: Mapping[str, Any], index: int, at: Where) -> dict[str, Any]:
    # An air waybill's items are under its rating lines: named by their number overall.
    where = Where(at.root, (f"goods item {index + 1}",), located=False)
    if _count(item["sequence"], where, "SequenceNumeric") != index + 1:
        raise where.refusal(ITEM_SEQUENCE, f"must be {index + 1}: goods items are numbered 1, "
                            "2, 3 and on, in document order", "SequenceNumeric")
    code = item["commodity_code"]
    return {
        "description": item["nature"],
        "number_of_packages": _count(item["pieces"], where, "PieceQuantity"),
        "kind_of_packages": None,
        "gross_weight_kg": _measure_value(item["gross_weight"], _WEIGHT_UNITS, KILOGRAMS,
                                          where, "GrossWeightMeasure"),
        "volume_m3": _optional_measure(item["volume"], _VOLUME_UNITS, CUBIC_METRES,
                                       where, "GrossVolumeMeasure"),
        "package_description": None,
        "booking_reference": None,
        "hs_codes": [] if code is None else [code],
        "equipment_reference": None,
    }


def _count(text: str, at: Where, *steps: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise at.refusal("STRUCTURE_NUMBER_INVALID", "must be a whole number of at most 9 "
                         "digits", *steps)
    return int(text)


def _measure_value(measure: Mapping[str, Any], units: Mapping[str, Decimal], quantum: Decimal,
                   at: Where, element: str) -> Decimal:
    factor = units.get(measure["unit_code"] or "")
    if factor is None:
        raise at.refusal(UNIT_CODE, f"@unitCode must be one of {', '.join(units)}", element)
    value: Decimal = measure["value"] * factor
    if value >= _MEASURE_LIMIT:  # the canonical weight and volume: 9 integer digits at least
        raise at.refusal("STRUCTURE_NUMBER_INVALID", "has more than 9 digits before the "
                         "decimal point", element)
    return value.quantize(quantum, rounding=ROUND_HALF_EVEN)


def _optional_measure(measure: Mapping[str, Any] | None, units: Mapping[str, Decimal],
                      quantum: Decimal, at: Where, element: str) -> Decimal | None:
    return None if measure is None else _measure_value(measure, units, quantum, at, element)


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    at = of_message(root)
    master = record["master_waybill_number"]
    if not is_valid_awb_number(record["waybill_number"] if master is None else master):
        steps = (("BusinessHeaderDocument", "ID") if master is None
                 else ("MasterConsignment", "TransportContractDocument", "ID"))
        raise at.at_root(AWB_CHECK_DIGIT, "must be a 3-digit airline prefix and an 8-digit "
                         "serial whose last digit is its first seven modulo 7", *steps)
    _check_airport(record["origin"], at, "OriginLocation", "ID")
    _check_airport(record["destination"], at, "FinalDestinationLocation", "ID")
    for index, leg in enumerate(record["legs"]):
        flight = f"SpecifiedLogisticsTransportMovement[{index + 1}]"
        if leg["sequence_number"] != index + 1:
            raise at.refusal("RULE_SEQUENCE", f"must be {index + 1}: flights are numbered 1, 2, "
                             "3 and on, in document order", flight, "SequenceNumeric")
        _check_airport(leg["origin"], at, flight, "DepartureEvent",
                       "OccurrenceDepartureLocation", "ID")
        _check_airport(leg["destination"], at, flight, "ArrivalEvent",
                       "OccurrenceArrivalLocation", "ID")
        departs, arrives = leg["planned_departure"], leg["planned_arrival"]
        if departs is not None and arrives is not None and arrives <= departs:
            raise at.refusal("RULE_DATES_ORDER", "is not after the flight's scheduled "
                             "departure", flight, "ArrivalEvent", "ScheduledOccurrenceDateTime")
    pieces = sum(item["number_of_packages"] for item in record["cargo_items"])
    if record["cargo_items"] and pieces != record["total_number_of_pieces"]:
        raise at.refusal(PIECE_COUNT, "is not the sum of the goods items' PieceQuantity",
                         "TotalPieceQuantity")


def _check_airport(place: Mapping[str, Any] | None, at: Where, *steps: str) -> None:
    if place is not None and not _AIRPORT.fullmatch(place["station_code"]):
        raise at.refusal(AIRPORT_CODE, "must be a three-letter IATA airport code", *steps)


# ---------------------------------------------------------------- canonical record -> XML


def _build_message(record: Mapping[str, Any], version: int) -> etree._Element:
    del version  # Cargo-XML carries no version of the document
    house = record["master_waybill_number"] is not None
    variant, namespace = (XFZB, HOUSE_NS) if house else (XFWB, WAYBILL_NS)
    root_tag = next(tag for tag, v in ROOTS.items() if v == variant)
    root = etree.Element(root_tag, nsmap={None: DATA_NS, "ns2": namespace})
    parts = [etree.SubElement(root, f"{{{namespace}}}{name}") for name in _PARTS]
    build_children(parts[0], {"id": record["waybill_number"],
                              "type_code": TYPE_CODES[variant][-1], "version_id": VERSION_ID},
                   HEADER.nodes, DATA_NS, 0)
    build_children(parts[1], {"id": record["waybill_number"]}, BUSINESS_HEADER.nodes, DATA_NS, 0)
    consignment = _consignment_tree(record)
    items = consignment.pop("rated_items")
    if house:
        build_children(parts[2], {"master_awb": record["master_waybill_number"],
                                  "house": {**consignment, "items": items}},
                       MASTER_OF_HOUSE.nodes, DATA_NS, 0)
    else:
        build_children(parts[2], {**consignment,
                                  "ratings": [{"items": items}] if items else []},
                       MASTER_AIR_WAYBILL.nodes, DATA_NS, 0)
    return root


def _consignment_tree(record: Mapping[str, Any]) -> dict[str, Any]:
    if record["operator"] is not None or record["containers"] or record["charges"]:
        raise ValueError("Cargo-XML has no element for the operator, containers or charges")
    return {
        "gross_weight": _measure_tree(record["total_gross_weight_kg"], "KGM"),
        "pieces": _optional_count(record["total_number_of_pieces"]),
        "consignor": _party_tree(record["consignor"]),
        "consignee": _party_tree(record["consignee"]),
        "origin": _location_tree(record["origin"]),
        "destination": _location_tree(record["destination"]),
        "movements": [_movement_tree(leg) for leg in list_field(record["legs"])],
        "rated_items": [_item_tree(item, n + 1)
                        for n, item in enumerate(list_field(record["cargo_items"]))],
    }


def _optional_count(value: int | None) -> str | None:
    return None if value is None else format_int(value)


def _measure_tree(value: Decimal | None, unit: str) -> dict[str, Any] | None:
    return None if value is None else {"value": value, "unit_code": unit}


def _party_tree(party: Mapping[str, Any]) -> dict[str, Any]:
    address = party["address"]
    if address is not None and address["street_number"] is not None:
        raise ValueError("Cargo-XML writes the street number inside the street")
    return {
        "name": party["name"],
        "address": None if address is None else {
            "post_code": address["post_code"], "street": address["street"],
            "city": address["city"], "country_code": address["country_code"]},
        "contact": None if party["contact"] is None else {"phone": party["contact"]},
    }


def _location_tree(place: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if place is None:
        return None
    return {"id": place["station_code"], "name": place["name"]}


def _movement_tree(leg: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "mode_code": AIR_MODE_CODE,
        "flight": leg["conveyance_reference"],
        "sequence": format_int(leg["sequence_number"]),
        "carrier": leg["carrier"],
        "arrival": _event_tree(leg, "arrival", leg["destination"]),
        "departure": _event_tree(leg, "departure", leg["origin"]),
    }


def _event_tree(leg: Mapping[str, Any], kind: str, place: Mapping[str, Any] | None
                ) -> dict[str, Any] | None:
    planned = f"planned_{kind}"
    instant, offset = leg[planned], leg[f"{planned}_utc_offset_minutes"]
    scheduled = leg[f"{planned}_local_time"]
    if instant is not None:
        local = instant.astimezone(timezone(timedelta(minutes=offset)))
        scheduled = local.isoformat(timespec="milliseconds" if local.microsecond else "seconds")
    if place is None:
        if scheduled is not None:
            raise ValueError(f"a {kind} time needs its airport")
        return None
    return {"scheduled": scheduled, "location": _location_tree(place)}


def _item_tree(item: Mapping[str, Any], sequence: int) -> dict[str, Any]:
    codes = list_field(item["hs_codes"])
    if len(codes) > 1:
        raise ValueError("a Cargo-XML goods item has one commodity code")
    return {
        "sequence": format_int(sequence),
        "commodity_code": codes[0] if codes else None,
        "gross_weight": {"value": item["gross_weight_kg"], "unit_code": "KGM"},
        "volume": _measure_tree(item["volume_m3"], "MTQ"),
        "pieces": format_int(item["number_of_packages"]),
        "nature": item["description"],
    }


__all__ = ["CargoXmlAdapter", "business_key", "is_valid_awb_number"]
