"""DCSA eBL 3.0 shipping instructions as JSON, the `ShippingInstructions` of DCSA's published
OpenAPI (dcsaorg/DCSA-OpenAPI, ebl/v3, Apache-2.0) as a carrier holds and returns them, to the
canonical multimodal waybill and back ("dcsa-si").

Shipping instructions are what the shipper asks the transport document to state: its type,
to order or not, the parties, the equipment and cargo, whom to contact, where freight is
payable. They go to the same record as a transport document (adapters/dcsa_ebl.py) under
their own document type, so an update of the instructions never meets the transport document
of the same reference as one of its versions. What only a carrier's document states (its
number while the carrier has not given one, its status, terms, receipt and delivery types,
the sea leg, charges, issuer) is null or empty; what only the instructions state goes to
`transport_document.shipping_instructions_*` and `cargo_delivered_in_ics2_zone`.

The business key is `shippingInstructionsReference` (optional in the published schema; the
gateway needs it as the document's identity, so instructions without one are DCSA_NOT_MAPPED);
the version is `shippingInstructionsRevisionNumber`, 1 when absent. Shipping instructions
carry no dangerous goods (in eBL 3.0 only a transport document's packaging does), so no UN
number is checked; container check digits and the equipment of each cargo item are, as for a
transport document, and a sea waybill is never to order (the published condition on
`isToOrder`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from message_formats.safe_json import json_path

from .dcsa_ebl import (
    DcsaJsonAdapter,
    DcsaNotMappedError,
    Path,
    build_consignment_item,
    build_contacts,
    build_party,
    check_equipment,
    present,
    read_cargo,
    read_contacts,
    read_optional_party,
    read_party,
    rule_violation,
)
from .toolkit import list_field

SCHEMA_FILE = "dcsa-ebl-shipping-instructions"
_MAX_VERSION = 2**31 - 1  # the Avro int of the event header


class DcsaShippingInstructionsAdapter(DcsaJsonAdapter):
    format_id: ClassVar[str] = "dcsa-si"
    document_type: ClassVar[str] = "shipping-instructions"
    label: ClassVar[str] = "DCSA eBL shipping instructions"
    schema_file: ClassVar[str] = SCHEMA_FILE
    # Members the published schema requires of shipping instructions that no transport
    # document has (adapters.base.RecognisesJson; dcsa-ebl's members are not among them).
    json_keys: ClassVar[frozenset[str]] = frozenset(
        {"shippingInstructionsStatus", "isCargoDeliveredInICS2Zone"})

    __slots__ = ()

    def identity(self, document: Mapping[str, Any]) -> tuple[str, int]:
        return _reference(document), _revision(document)

    def read(self, document: Mapping[str, Any]) -> dict[str, Any]:
        return _read_instructions(document)

    def check(self, document: Mapping[str, Any]) -> None:
        _check_rules(document)

    def build(self, record: Mapping[str, Any], version: int) -> dict[str, Any]:
        """The shipping instructions of a canonical record that has them, the header's
        version as their revision number (none written for version 1)."""
        return _build_instructions(record, version)


# ---------------------------------------------------------------- JSON -> canonical record


def _reference(doc: Mapping[str, Any]) -> str:
    if "shippingInstructionsReference" not in doc:
        raise DcsaNotMappedError(
            f"{json_path(('shippingInstructionsReference',))}: shipping instructions are "
            "identified by the carrier's reference, and these have none")
    return str(doc["shippingInstructionsReference"])


def _revision(doc: Mapping[str, Any]) -> int:
    revision = doc.get("shippingInstructionsRevisionNumber", 1)
    if not 1 <= revision <= _MAX_VERSION:
        raise DcsaNotMappedError(
            f"{json_path(('shippingInstructionsRevisionNumber',))}: a document version is "
            f"from 1 to {_MAX_VERSION}")
    return int(revision)


def _read_instructions(doc: Mapping[str, Any]) -> dict[str, Any]:
    parties = doc["documentParties"]
    return {
        "waybill_number": doc.get("transportDocumentReference"),
        "status": None,
        "operator": None,
        "consignor": read_party(parties["shipper"]),
        "consignee": read_optional_party(parties.get("consignee")),
        "legs": [],
        "containers": [_read_equipment(e) for e in doc["utilizedTransportEquipments"]],
        "cargo_items": [
            read_cargo(item, cargo, ("consignmentItems", i, "cargoItems", j))
            for i, item in enumerate(doc["consignmentItems"])
            for j, cargo in enumerate(item["cargoItems"])
        ],
        "charges": [],
        "remarks": None,
        "transport_document": _read_requested_document(doc),
        "notify_parties": [read_party(p) for p in parties.get("notifyParties", [])],
        **dict.fromkeys(_NOT_IN_INSTRUCTIONS),
    }


# Canonical fields shipping instructions have no member for; render refuses a record that
# sets one rather than drop it.
_NOT_IN_INSTRUCTIONS = ("master_waybill_number", "origin", "destination",
                        "total_number_of_pieces", "total_gross_weight_kg")
_ONLY_IN_TRANSPORT_DOCUMENTS = (
    "status", "terms_and_conditions", "receipt_type_at_origin", "delivery_type_at_destination",
    "cargo_movement_type_at_origin", "cargo_movement_type_at_destination",
    "invoice_payable_at_text", "issue_date", "shipped_on_board_date")


def _read_requested_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type_code": doc["transportDocumentTypeCode"],
        "shipping_instructions_reference": doc["shippingInstructionsReference"],
        "shipped_on_board": doc["isShippedOnBoardType"],
        "electronic": doc["isElectronic"],
        "to_order": doc["isToOrder"],
        "freight_payment_term": doc["freightPaymentTermCode"],
        "carrier_code": doc.get("carrierCode"),
        "carrier_code_list_provider": doc.get("carrierCodeListProvider"),
        "invoice_payable_at": doc.get("invoicePayableAt", {}).get("UNLocationCode"),
        "contacts": read_contacts(doc["partyContactDetails"]),
        "shipping_instructions_status": doc["shippingInstructionsStatus"],
        "updated_shipping_instructions_status": doc.get("updatedShippingInstructionsStatus"),
        "cargo_delivered_in_ics2_zone": doc["isCargoDeliveredInICS2Zone"],
        **dict.fromkeys(_ONLY_IN_TRANSPORT_DOCUMENTS),
    }


def _read_equipment(used: Mapping[str, Any]) -> dict[str, Any]:
    """Shipper-owned equipment is described (`equipment`), the carrier's only referenced
    (`equipmentReference`): the published schema's two forms. A tare weight is not mapped."""
    equipment = used.get("equipment")
    return {
        "container_number": _equipment_reference(used),
        "size_type": None if equipment is None else equipment["ISOEquipmentCode"],
        "seal_numbers": [seal["number"] for seal in used["seals"]],
        "shipper_owned": used["isShipperOwned"],
    }


def _equipment_reference(used: Mapping[str, Any]) -> str:
    return str(used["equipment"]["equipmentReference"] if "equipment" in used
               else used["equipmentReference"])


# ---------------------------------------------------------------- business rules


def _check_rules(doc: Mapping[str, Any]) -> None:
    check_equipment(doc, _equipment_references(doc))
    if doc["transportDocumentTypeCode"] == "SWB" and doc["isToOrder"]:
        raise rule_violation("RULE_SWB_TO_ORDER", "is true for a sea waybill (SWB)",
                             ("isToOrder",))


def _equipment_references(doc: Mapping[str, Any]) -> Iterator[tuple[Path, str]]:
    for i, used in enumerate(doc["utilizedTransportEquipments"]):
        path: Path = (("utilizedTransportEquipments", i, "equipment", "equipmentReference")
                      if "equipment" in used
                      else ("utilizedTransportEquipments", i, "equipmentReference"))
        yield path, _equipment_reference(used)


# ---------------------------------------------------------------- canonical record -> JSON


def _build_instructions(record: Mapping[str, Any], version: int) -> dict[str, Any]:
    td = record["transport_document"]
    if td is None or td["shipping_instructions_status"] is None:
        raise ValueError("the record has no shipping instructions")
    if any(record[name] is not None for name in (*_NOT_IN_INSTRUCTIONS, "status", "operator",
                                                 "remarks")) \
            or list_field(record["legs"]) or list_field(record["charges"]) \
            or any(td[name] is not None for name in _ONLY_IN_TRANSPORT_DOCUMENTS):
        raise ValueError("the record states what DCSA shipping instructions have no member for")
    notify = [build_party(p) for p in list_field(record["notify_parties"])]
    return {
        "shippingInstructionsReference": td["shipping_instructions_reference"],
        **({} if version == 1 else {"shippingInstructionsRevisionNumber": version}),
        **present(transportDocumentReference=record["waybill_number"],
                  shippingInstructionsStatus=td["shipping_instructions_status"],
                  updatedShippingInstructionsStatus=td["updated_shipping_instructions_status"]),
        "transportDocumentTypeCode": td["type_code"],
        "isShippedOnBoardType": td["shipped_on_board"],
        "freightPaymentTermCode": td["freight_payment_term"],
        "isElectronic": td["electronic"],
        "isToOrder": td["to_order"],
        **present(carrierCode=td["carrier_code"],
                  carrierCodeListProvider=td["carrier_code_list_provider"]),
        **({} if td["invoice_payable_at"] is None
           else {"invoicePayableAt": {"UNLocationCode": td["invoice_payable_at"]}}),
        "partyContactDetails": build_contacts(td["contacts"]),
        "documentParties": {
            "shipper": build_party(record["consignor"]),
            **({} if record["consignee"] is None
               else {"consignee": build_party(record["consignee"])}),
            **({"notifyParties": notify} if notify else {}),
        },
        "isCargoDeliveredInICS2Zone": td["cargo_delivered_in_ics2_zone"],
        "consignmentItems": [build_consignment_item(c)
                             for c in list_field(record["cargo_items"])],
        "utilizedTransportEquipments": [_build_equipment(c)
                                        for c in list_field(record["containers"])],
    }


def _build_equipment(container: Mapping[str, Any]) -> dict[str, Any]:
    """The carrier's equipment, by reference. Shipper-owned equipment is described with a
    tare weight, which the canonical record does not hold: it is refused, not invented."""
    if container["shipper_owned"] is not False or container["size_type"] is not None:
        raise ValueError("shipper-owned equipment needs a tare weight the record does not hold")
    return {"isShipperOwned": False,
            "equipmentReference": container["container_number"],
            "seals": [{"number": number} for number in list_field(container["seal_numbers"])]}


__all__ = ["DcsaShippingInstructionsAdapter"]
