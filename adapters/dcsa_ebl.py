"""DCSA eBL 3.0 transport documents (bills of lading and sea waybills) as JSON, the
`TransportDocument` of DCSA's published OpenAPI (dcsaorg/DCSA-OpenAPI, ebl/v3, Apache-2.0),
to the canonical multimodal waybill and back ("dcsa-ebl").

Why the waybill: a transport document is one version of one contract of carriage, with its
parties, legs, equipment, cargo and charges, which is what px.canonical.MultimodalWaybill
holds. px.canonical.ManifestBillOfLading is a bill *as listed on a customs manifest*: it has
no header of its own (it is no event), no legs, no dates and no charges, so a transport
document would lose most of itself there. What a bill of lading states beyond the carriage
(type BOL/SWB, its state, shipped on board, to order, terms, the carrier's code) goes to the
waybill's `transport_document`.

The document is read with message_formats.safe_json (bounded size, depth, values, numbers;
duplicate keys refused), held to message_formats/jsonschema/dcsa-ebl-transport-document.json
(the published schema's fields that are mapped, with their published types, lengths,
patterns, enums and required lists), then mapped. What the schema allows but the canonical
record cannot hold without inventing a value is refused with DCSA_NOT_MAPPED naming the field
(a place given without a UN/LOCODE, more than one vessel voyage, an amount finer than a
cent). Weights in pounds and volumes in cubic feet are converted exactly and rounded to the
canonical scale (grams, litres); render writes kilograms and cubic metres.

DcsaJsonAdapter and the public readers and builders here serve the shipping instructions
(adapters/dcsa_si.py) too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar

from message_formats.safe_json import (
    DEFAULT_JSON_LIMITS,
    JsonLimits,
    JsonSchema,
    dump_json,
    json_path,
    read_untrusted_json,
)

from .base import AdapterError, ParseResult, RenderError, RuleViolationError
from .fal2 import CONTAINER_CHECK_DIGIT_RULE, CUBIC_METRES, KILOGRAMS
from .iso6346 import is_valid_container_number
from .toolkit import RENDER_ERRORS, document_version, list_field, require_int
from .waybill import MONEY

SCHEMA_FILE = "dcsa-ebl-transport-document"
DCSA_NOT_MAPPED = "DCSA_NOT_MAPPED"
_POUND_KG = Decimal("0.45359237")
_CUBIC_FOOT_M3 = Decimal("0.028316846592")

Path = tuple[str | int, ...]


class DcsaNotMappedError(AdapterError):
    """Valid against the published schema, but not expressible in the canonical record
    without inventing or dropping a value."""

    code = DCSA_NOT_MAPPED


def business_key(record: Mapping[str, Any]) -> str:
    """The transport document reference: every state of a document is one key."""
    return str(record["waybill_number"])


class DcsaJsonAdapter:
    """What the DCSA eBL documents' adapters share: the bounded reader, the published schema's
    subset, then the document's identity, its mapping and its rules; and render held to the
    same schema. A subclass names its schema file and supplies those four steps."""

    schema_name: ClassVar[str] = "px.canonical.MultimodalWaybill"
    schema_version: ClassVar[int] = 1
    media_type: ClassVar[str] = "application/json"
    label: ClassVar[str]
    schema_file: ClassVar[str]

    __slots__ = ("_limits", "_schema")

    def __init__(self, *, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> None:
        self._limits = limits
        self._schema = JsonSchema.load(self.schema_file)

    def parse(self, data: bytes) -> ParseResult:
        document = read_untrusted_json(data, self._limits)
        self._schema.validate(document)
        key, version = self.identity(document)
        record = self.read(document)
        try:
            self.check(document)
        except AdapterError as exc:
            exc.business_key, exc.document_version = key, version
            raise
        return ParseResult(record=record, business_key=key, document_version=version)

    def render(self, record: Mapping[str, Any]) -> bytes:
        try:
            # a malformed header is refused as by the other formats
            document = self.build(record, document_version(record))
        except RENDER_ERRORS as exc:
            raise RenderError(f"cannot render {self.label}: {type(exc).__name__}: {exc}") \
                from None
        first = self._schema.first_violation(document)
        if first is not None:
            raise RenderError(f"rendered {self.label} is not valid: {first}")
        return dump_json(document)

    def identity(self, document: Mapping[str, Any]) -> tuple[str, int]:
        """The business key and version of a schema-valid document."""
        raise NotImplementedError

    def read(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical record of a schema-valid document, without "header"."""
        raise NotImplementedError

    def check(self, document: Mapping[str, Any]) -> None:
        """RuleViolationError for the first business rule the document breaks."""
        raise NotImplementedError

    def build(self, record: Mapping[str, Any], version: int) -> dict[str, Any]:
        """The document of a record, as JSON values; RENDER_ERRORS for one it cannot state."""
        raise NotImplementedError


class DcsaEblAdapter(DcsaJsonAdapter):
    format_id: ClassVar[str] = "dcsa-ebl"
    document_type: ClassVar[str] = "waybill"
    label: ClassVar[str] = "DCSA eBL transport document"
    schema_file: ClassVar[str] = SCHEMA_FILE
    # How detection recognises a transport document (adapters.base.RecognisesJson): the
    # top-level members the published schema requires and no other DCSA document has.
    json_keys: ClassVar[frozenset[str]] = frozenset(
        {"transportDocumentReference", "transportDocumentStatus", "transportDocumentTypeCode"})

    __slots__ = ()

    def identity(self, document: Mapping[str, Any]) -> tuple[str, int]:
        # DCSA documents carry no version of their own: each is version 1 (docs/adapters.md).
        return str(document["transportDocumentReference"]), 1

    def read(self, document: Mapping[str, Any]) -> dict[str, Any]:
        return _read_document(document)

    def check(self, document: Mapping[str, Any]) -> None:
        _check_rules(document)

    def build(self, record: Mapping[str, Any], version: int) -> dict[str, Any]:
        """The transport document of a canonical record that has one; the header's version
        is not written (the format has no place for it)."""
        return _build_document(record)


# ---------------------------------------------------------------- JSON -> canonical record


def _read_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    parties = doc["documentParties"]
    return {
        "waybill_number": doc["transportDocumentReference"],
        "status": None,
        "operator": _read_operator(parties["issuingParty"]),
        "consignor": read_party(parties["shipper"]),
        "consignee": read_optional_party(parties.get("consignee")),
        "legs": [_read_leg(doc)],
        "containers": [_read_equipment(e) for e in doc["utilizedTransportEquipments"]],
        "cargo_items": [
            read_cargo(item, cargo, ("consignmentItems", i, "cargoItems", j))
            for i, item in enumerate(doc["consignmentItems"])
            for j, cargo in enumerate(item["cargoItems"])
        ],
        "charges": [_read_charge(c, ("charges", i)) for i, c in enumerate(doc.get("charges", []))],
        "remarks": None,
        "transport_document": _read_transport_document(doc),
        **dict.fromkeys(_NOT_IN_DCSA),
        "notify_parties": [],
    }


# Canonical fields a DCSA transport document has no member for; render refuses a record
# that sets one rather than drop it.
_NOT_IN_DCSA = ("master_waybill_number", "origin", "destination", "total_number_of_pieces",
                "total_gross_weight_kg")


def _read_transport_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    payable = doc["invoicePayableAt"]
    return {
        "type_code": doc["transportDocumentTypeCode"],
        "status": doc["transportDocumentStatus"],
        "shipping_instructions_reference": doc.get("shippingInstructionsReference"),
        "shipped_on_board": doc["isShippedOnBoardType"],
        "electronic": doc["isElectronic"],
        "to_order": doc["isToOrder"],
        "freight_payment_term": doc.get("freightPaymentTermCode"),
        "terms_and_conditions": doc["termsAndConditions"],
        "receipt_type_at_origin": doc["receiptTypeAtOrigin"],
        "delivery_type_at_destination": doc["deliveryTypeAtDestination"],
        "cargo_movement_type_at_origin": doc["cargoMovementTypeAtOrigin"],
        "cargo_movement_type_at_destination": doc["cargoMovementTypeAtDestination"],
        "carrier_code": doc["carrierCode"],
        "carrier_code_list_provider": doc["carrierCodeListProvider"],
        "invoice_payable_at": payable.get("UNLocationCode"),
        "invoice_payable_at_text": payable.get("freeText"),
        "issue_date": _optional_date(doc.get("issueDate")),
        "shipped_on_board_date": _optional_date(doc.get("shippedOnBoardDate")),
        "contacts": read_contacts(doc["partyContactDetails"]),
        **dict.fromkeys(SHIPPING_INSTRUCTIONS_ONLY),
    }


# What only shipping instructions state (adapters/dcsa_si.py): a transport document has none.
SHIPPING_INSTRUCTIONS_ONLY = ("shipping_instructions_status",
                              "updated_shipping_instructions_status",
                              "cargo_delivered_in_ics2_zone")


def read_contacts(contacts: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": c["name"], "phone": c.get("phone"), "email": c.get("email")}
            for c in contacts]


def _read_operator(party: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": party["partyName"], "unified_social_credit_code": None,
            "address": _read_address(party["address"])}


def read_party(party: Mapping[str, Any]) -> dict[str, Any]:
    address = party.get("address")
    return {
        "name": party["partyName"],
        "contact": None,
        "address": None if address is None else _read_address(address),
        "identifying_codes": [
            {"code_list_provider": c["codeListProvider"], "party_code": c["partyCode"],
             "code_list_name": c.get("codeListName")}
            for c in party.get("identifyingCodes", [])
        ],
    }


def read_optional_party(party: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if party is None else read_party(party)


def _read_address(address: Mapping[str, Any]) -> dict[str, Any]:
    return {"street": address["street"], "street_number": address.get("streetNumber"),
            "post_code": address.get("postCode"), "city": address["city"],
            "country_code": address["countryCode"]}


def _read_leg(doc: Mapping[str, Any]) -> dict[str, Any]:
    transports = doc["transports"]
    voyages = transports["vesselVoyages"]
    if len(voyages) > 1:
        raise DcsaNotMappedError(
            f"{json_path(('transports', 'vesselVoyages'))}: more than one vessel voyage; the "
            "ports between them are not stated, so they cannot become legs")
    return {
        "sequence_number": 1,
        "mode": "sea",
        "carrier": doc["carrierCode"],
        "origin": _read_port(transports["portOfLoading"], ("transports", "portOfLoading")),
        "destination": _read_port(transports["portOfDischarge"],
                                  ("transports", "portOfDischarge")),
        **dict.fromkeys(_LEG_INSTANTS),
        "planned_departure_date": date.fromisoformat(transports["plannedDepartureDate"]),
        "planned_arrival_date": date.fromisoformat(transports["plannedArrivalDate"]),
        "vessel_name": voyages[0]["vesselName"],
        "conveyance_reference": voyages[0]["carrierExportVoyageNumber"],
    }


_LEG_INSTANTS = (*(
    f"{kind}_{event}{suffix}"
    for kind in ("planned", "actual") for event in ("departure", "arrival")
    for suffix in ("", "_utc_offset_minutes")),
    "planned_departure_local_time", "planned_arrival_local_time")


def _read_port(port: Mapping[str, Any], path: Path) -> dict[str, Any]:
    if "UNLocationCode" not in port:
        raise DcsaNotMappedError(f"{json_path(path)}: a port is mapped by its UN/LOCODE, and "
                                 "this one has none")
    return {"un_locode": port["UNLocationCode"], "station_code": None,
            "name": port.get("locationName")}


def _read_equipment(used: Mapping[str, Any]) -> dict[str, Any]:
    equipment = used["equipment"]
    return {
        "container_number": equipment["equipmentReference"],
        "size_type": equipment.get("ISOEquipmentCode"),
        "seal_numbers": [seal["number"] for seal in used["seals"]],
        "shipper_owned": used["isShipperOwned"],
    }


def read_cargo(item: Mapping[str, Any], cargo: Mapping[str, Any], path: Path
               ) -> dict[str, Any]:
    packaging = cargo.get("outerPackaging", {})  # required in a transport document
    volume = cargo.get("cargoGrossVolume")
    return {
        "description": "\n".join(item["descriptionOfGoods"]),
        "number_of_packages": packaging.get("numberOfPackages"),
        "kind_of_packages": packaging.get("packageCode"),
        "gross_weight_kg": _in_unit(cargo["cargoGrossWeight"], "LBR", _POUND_KG, WEIGHT,
                                    (*path, "cargoGrossWeight", "value")),
        "volume_m3": None if volume is None else _in_unit(
            volume, "FTQ", _CUBIC_FOOT_M3, VOLUME, (*path, "cargoGrossVolume", "value")),
        "package_description": packaging.get("description"),
        "booking_reference": item["carrierBookingReference"],
        "hs_codes": list(item["HSCodes"]),
        "equipment_reference": cargo["equipmentReference"],
    }


def _in_unit(measure: Mapping[str, Any], other_unit: str, factor: Decimal, scale: Scale,
             path: Path) -> Decimal:
    value = Decimal(measure["value"])
    if measure["unit"] == other_unit:
        value *= factor
    return scale.fitted(value, path, exact=False)


def _read_charge(charge: Mapping[str, Any], path: Path) -> dict[str, Any]:
    return {
        "item": charge["chargeName"],
        "amount": AMOUNT.fitted(charge["currencyAmount"], (*path, "currencyAmount")),
        "currency": charge["currencyCode"],
        "payment_term": charge["paymentTermCode"],
        "calculation_basis": charge["calculationBasis"],
        "unit_price": PER_UNIT.fitted(charge["unitPrice"], (*path, "unitPrice")),
        "quantity": PER_UNIT.fitted(charge["quantity"], (*path, "quantity")),
    }


@dataclass(frozen=True, slots=True)
class Scale:
    """A canonical decimal field's scale and the integer digits its Avro precision leaves."""

    quantum: Decimal
    integer_digits: int

    def fitted(self, value: int | Decimal, path: Path, *, exact: bool = True) -> Decimal:
        """`value` at the scale: rounded half-even (a converted measure) or, `exact`,
        refused if it has more places; refused if it has more integer digits."""
        number = Decimal(value)
        if abs(number) >= 10 ** self.integer_digits:
            raise DcsaNotMappedError(f"{json_path(path)}: more than {self.integer_digits} "
                                     "digits before the decimal point")
        fitted = number.quantize(self.quantum, rounding=ROUND_HALF_EVEN)
        if exact and fitted != number:
            raise DcsaNotMappedError(f"{json_path(path)}: more decimal places than "
                                     f"{self.quantum}")
        return fitted


# px.canonical.WaybillCargoItem and WaybillCharge: decimal(15, 3), (12, 3), (15, 2), (18, 4)
WEIGHT = Scale(KILOGRAMS, 12)
VOLUME = Scale(CUBIC_METRES, 9)
AMOUNT = Scale(MONEY, 13)
PER_UNIT = Scale(Decimal("0.0001"), 14)


def _optional_date(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


# ---------------------------------------------------------------- business rules


def _check_rules(doc: Mapping[str, Any]) -> None:
    check_equipment(doc, (
        (("utilizedTransportEquipments", i, "equipment", "equipmentReference"),
         used["equipment"]["equipmentReference"])
        for i, used in enumerate(doc["utilizedTransportEquipments"])))
    transports = doc["transports"]
    if transports["plannedArrivalDate"] < transports["plannedDepartureDate"]:
        raise rule_violation("RULE_DATES_ORDER", "is before transports/plannedDepartureDate",
                             ("transports", "plannedArrivalDate"))


def check_equipment(doc: Mapping[str, Any], equipment: Iterable[tuple[Path, str]]) -> None:
    """The ISO 6346 check digit of each equipment reference (path, reference), and each
    cargo item of the consignment items in one of them."""
    references = set()
    for path, reference in equipment:
        references.add(reference)
        if not is_valid_container_number(reference):
            raise rule_violation("RULE_CONTAINER_CHECK_DIGIT", CONTAINER_CHECK_DIGIT_RULE, path)
    for i, item in enumerate(doc["consignmentItems"]):
        for j, cargo in enumerate(item["cargoItems"]):
            if cargo["equipmentReference"] not in references:
                raise rule_violation("RULE_EQUIPMENT_UNKNOWN",
                                     "names no equipment of utilizedTransportEquipments",
                                     ("consignmentItems", i, "cargoItems", j,
                                      "equipmentReference"))


def rule_violation(code: str, rule: str, path: Path) -> RuleViolationError:
    return RuleViolationError(f"{json_path(path)}: {rule}", code=code)


# ---------------------------------------------------------------- canonical record -> JSON


def _build_document(record: Mapping[str, Any]) -> dict[str, Any]:
    td = record["transport_document"]
    if td is None:
        raise ValueError("the record has no transport_document")
    if any(record[name] is not None for name in _NOT_IN_DCSA) or record["notify_parties"] \
            or record["remarks"] is not None or record["status"] is not None \
            or any(td[name] is not None for name in SHIPPING_INSTRUCTIONS_ONLY):
        raise ValueError("the record states what a DCSA transport document has no member for")
    legs = list_field(record["legs"])
    if len(legs) != 1 or legs[0]["mode"] != "sea":
        raise ValueError("a DCSA transport document has one sea leg")
    leg = legs[0]
    if leg["carrier"] != td["carrier_code"]:
        raise ValueError("the sea leg's carrier is not the document's carrier code")
    document: dict[str, Any] = {
        "transportDocumentReference": record["waybill_number"],
        **present(shippingInstructionsReference=td["shipping_instructions_reference"]),
        "transportDocumentStatus": td["status"],
        "transportDocumentTypeCode": td["type_code"],
        "isShippedOnBoardType": td["shipped_on_board"],
        **present(freightPaymentTermCode=td["freight_payment_term"]),
        "isElectronic": td["electronic"],
        "isToOrder": td["to_order"],
        **present(shippedOnBoardDate=optional_iso(td["shipped_on_board_date"]),
                  issueDate=optional_iso(td["issue_date"])),
        "termsAndConditions": td["terms_and_conditions"],
        "receiptTypeAtOrigin": td["receipt_type_at_origin"],
        "deliveryTypeAtDestination": td["delivery_type_at_destination"],
        "cargoMovementTypeAtOrigin": td["cargo_movement_type_at_origin"],
        "cargoMovementTypeAtDestination": td["cargo_movement_type_at_destination"],
        "carrierCode": td["carrier_code"],
        "carrierCodeListProvider": td["carrier_code_list_provider"],
        "transports": _build_transports(leg),
        "charges": [_build_charge(c) for c in list_field(record["charges"])],
        "invoicePayableAt": present(UNLocationCode=td["invoice_payable_at"],
                                    freeText=td["invoice_payable_at_text"]),
        "partyContactDetails": build_contacts(td["contacts"]),
        "documentParties": {
            "shipper": build_party(record["consignor"]),
            **({} if record["consignee"] is None
               else {"consignee": build_party(record["consignee"])}),
            "issuingParty": _build_issuing_party(record["operator"]),
        },
        "consignmentItems": [build_consignment_item(c) for c in list_field(record["cargo_items"])],
        "utilizedTransportEquipments": [_build_equipment(c)
                                        for c in list_field(record["containers"])],
    }
    if not document["charges"]:
        del document["charges"]
    return document


def present(**members: Any) -> dict[str, Any]:
    """The members that have a value: DCSA leaves an absent optional member out."""
    return {name: value for name, value in members.items() if value is not None}


def build_contacts(contacts: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [present(name=c["name"], phone=c["phone"], email=c["email"])
            for c in list_field(contacts)]


def optional_iso(value: date | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, date):
        raise TypeError(f"expected a date, not {type(value).__name__}")
    return value.isoformat()


def _build_transports(leg: Mapping[str, Any]) -> dict[str, Any]:
    if any(leg[name] is not None for name in _LEG_INSTANTS):
        raise ValueError("a DCSA transport document states dates, not times")
    return {
        "plannedArrivalDate": optional_iso(leg["planned_arrival_date"]),
        "plannedDepartureDate": optional_iso(leg["planned_departure_date"]),
        "portOfLoading": _build_port(leg["origin"]),
        "portOfDischarge": _build_port(leg["destination"]),
        "vesselVoyages": [{"vesselName": leg["vessel_name"],
                           "carrierExportVoyageNumber": leg["conveyance_reference"]}],
    }


def _build_port(place: Mapping[str, Any]) -> dict[str, Any]:
    return present(locationName=place["name"], UNLocationCode=place["un_locode"])


def build_party(party: Mapping[str, Any]) -> dict[str, Any]:
    if party["contact"] is not None:
        raise ValueError("a DCSA party's contact is not a single text")
    codes = [present(codeListProvider=c["code_list_provider"], partyCode=c["party_code"],
                     codeListName=c["code_list_name"])
             for c in list_field(party["identifying_codes"])]
    address = party["address"]
    return {"partyName": party["name"],
            **({} if address is None else {"address": _build_address(address)}),
            **({"identifyingCodes": codes} if codes else {})}


def _build_issuing_party(operator: Mapping[str, Any] | None) -> dict[str, Any]:
    if operator is None or operator["unified_social_credit_code"] is not None:
        raise ValueError("a DCSA issuing party is named, with no credit code")
    return {"partyName": operator["name"], "address": _build_address(operator["address"])}


def _build_address(address: Mapping[str, Any]) -> dict[str, Any]:
    return present(street=address["street"], streetNumber=address["street_number"],
                   postCode=address["post_code"], city=address["city"],
                   countryCode=address["country_code"])


def build_consignment_item(cargo: Mapping[str, Any]) -> dict[str, Any]:
    description = cargo["description"]
    return {
        "carrierBookingReference": cargo["booking_reference"],
        "descriptionOfGoods": description.split("\n") if description else [],
        "HSCodes": list(list_field(cargo["hs_codes"])),
        "cargoItems": [{
            "equipmentReference": cargo["equipment_reference"],
            "cargoGrossWeight": {"value": _decimal(cargo["gross_weight_kg"]), "unit": "KGM"},
            **({} if cargo["volume_m3"] is None else {
                "cargoGrossVolume": {"value": _decimal(cargo["volume_m3"]), "unit": "MTQ"}}),
            **_outer_packaging(cargo),
        }],
    }


def _outer_packaging(cargo: Mapping[str, Any]) -> dict[str, Any]:
    """The member of a cargo item with packages; none for one without (shipping instructions
    may leave it out, and a transport document's schema then refuses the rendering)."""
    packaging = (cargo["kind_of_packages"], cargo["number_of_packages"],
                 cargo["package_description"])
    if packaging == (None, None, None):
        return {}
    return {"outerPackaging": {
        **present(packageCode=cargo["kind_of_packages"]),
        "numberOfPackages": require_int(cargo["number_of_packages"]),
        "description": cargo["package_description"],
    }}


def _build_equipment(container: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "equipment": present(equipmentReference=container["container_number"],
                              ISOEquipmentCode=container["size_type"]),
        "isShipperOwned": container["shipper_owned"],
        "seals": [{"number": number} for number in list_field(container["seal_numbers"])],
    }


def _build_charge(charge: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "chargeName": charge["item"],
        "currencyAmount": _decimal(charge["amount"]),
        "currencyCode": charge["currency"],
        "paymentTermCode": charge["payment_term"],
        "calculationBasis": charge["calculation_basis"],
        "unitPrice": _decimal(charge["unit_price"]),
        "quantity": _decimal(charge["quantity"]),
    }


def _decimal(value: Decimal) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError("expected a finite Decimal")
    return value


__all__ = [
    "DCSA_NOT_MAPPED",
    "SHIPPING_INSTRUCTIONS_ONLY",
    "DcsaEblAdapter",
    "DcsaNotMappedError",
    "build_consignment_item",
    "build_contacts",
    "build_party",
    "business_key",
    "check_equipment",
    "optional_iso",
    "present",
    "read_cargo",
    "read_contacts",
    "read_optional_party",
    "read_party",
    "rule_violation",
]
