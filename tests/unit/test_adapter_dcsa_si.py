"""DCSA eBL 3.0 shipping instructions (dcsa-si): the mapping, the published schema's subset
(held to the `jsonschema` package too), the refusals, detection by content beside the
transport documents (dcsa-ebl), and round trips of generated canonical records through DCSA
JSON and Avro."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import (
    AdapterError,
    AdapterRegistry,
    Confidence,
    DcsaEblAdapter,
    DcsaShippingInstructionsAdapter,
    FormatDetector,
    FormatNotDetectedError,
    RenderError,
)
from adapters.detect import JSON_OBJECT
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import (
    DCSA_CONTACT,
    DCSA_CONTAINER_NUMBER,
    PROPERTY,
    assert_schema_verdicts_agree,
    assert_survives_avro,
    broken,
    dcsa_cargo_item,
    dcsa_party,
    dcsa_text,
    json_schema_reference,
    optional,
    pattern,
)

DATA = Path(__file__).parents[1] / "data"
REFERENCE = json_schema_reference("dcsa-ebl-shipping-instructions")


@pytest.fixture(scope="module")
def adapter() -> DcsaShippingInstructionsAdapter:
    return DcsaShippingInstructionsAdapter()


def sample(name: str, directory: str = "dcsa-si") -> bytes:
    return (DATA / directory / name).read_bytes()


def samples() -> list[str]:
    return sorted(p.name for p in (DATA / "dcsa-si").glob("*.json")
                  if p.name != "expected.json")


# ---------------------------------------------------------------- the mapping


def test_shipping_instructions_map_to_the_waybill_they_ask_for(
        adapter: DcsaShippingInstructionsAdapter) -> None:
    result = adapter.parse(sample("valid_si_received_bol.json"))
    record = result.record
    assert (result.business_key, result.document_version) == ("SI-2026-000457", 2)
    assert record["waybill_number"] == "PXBL2026000123"
    td = record["transport_document"]
    assert (td["shipping_instructions_status"], td["updated_shipping_instructions_status"],
            td["cargo_delivered_in_ics2_zone"]) == ("RECEIVED", "UPDATE_RECEIVED", True)
    assert (td["type_code"], td["to_order"], td["carrier_code"], td["invoice_payable_at"]) == (
        "BOL", False, "PXLN", "CNSHA")
    # what only the carrier's transport document states is not invented
    assert (td["status"], td["terms_and_conditions"], td["receipt_type_at_origin"],
            td["issue_date"]) == (None, None, None, None)
    assert (record["legs"], record["charges"], record["operator"]) == ([], [], None)
    assert [p["name"] for p in record["notify_parties"]] == ["Example Customs Brokers"]
    assert [(c["container_number"], c["shipper_owned"], c["size_type"])
            for c in record["containers"]] == [("PXLU1234566", False, None),
                                               ("PXLU7654329", False, None)]
    first, second = record["cargo_items"]
    assert (first["number_of_packages"], first["kind_of_packages"], first["volume_m3"]) == (
        24, "CR", Decimal("28.250"))
    assert (second["equipment_reference"], second["gross_weight_kg"]) == (
        "PXLU7654329", Decimal("9800.000"))


def test_what_minimal_instructions_lack_stays_null(
        adapter: DcsaShippingInstructionsAdapter) -> None:
    result = adapter.parse(sample("valid_si_swb_minimal_imperial.json"))
    record = result.record
    assert (result.business_key, result.document_version) == ("SI-2026-000901", 1)
    assert record["waybill_number"] is None  # no transport document number given yet
    assert record["consignee"] is None
    assert record["transport_document"]["carrier_code"] is None
    (item,) = record["cargo_items"]
    assert (item["number_of_packages"], item["package_description"]) == (None, None)
    # 2204.62 lb x 0.45359237; 1000 ft3 x 0.028316846592, to the canonical scale
    assert (item["gross_weight_kg"], item["volume_m3"]) == (Decimal("999.999"),
                                                            Decimal("28.317"))


def test_shipper_owned_equipment_is_read_but_not_rendered_without_its_tare_weight(
        adapter: DcsaShippingInstructionsAdapter) -> None:
    document = json.loads(sample("valid_si_received_bol.json"))
    document["utilizedTransportEquipments"][0] = {
        "isShipperOwned": True, "seals": [{"number": "PX0001234"}],
        "equipment": {"equipmentReference": "PXLU1234566", "ISOEquipmentCode": "22G1",
                      "tareWeight": {"value": 2200, "unit": "KGM"}}}
    record = adapter.parse(json.dumps(document).encode()).record
    assert record["containers"][0] == {"container_number": "PXLU1234566", "size_type": "22G1",
                                       "seal_numbers": ["PX0001234"], "shipper_owned": True}
    with pytest.raises(RenderError):
        adapter.render(record)


def test_each_adapter_renders_only_its_own_document() -> None:
    instructions = DcsaShippingInstructionsAdapter()
    documents = DcsaEblAdapter()
    si_record = instructions.parse(sample("valid_si_received_bol.json")).record
    td_record = documents.parse(sample("valid_bol_issued.json", "dcsa-ebl")).record
    with pytest.raises(RenderError):
        documents.render(si_record)
    with pytest.raises(RenderError):
        instructions.render(td_record)


@pytest.mark.parametrize("name", samples())
def test_the_schema_subset_agrees_with_the_jsonschema_package(
        adapter: DcsaShippingInstructionsAdapter, name: str) -> None:
    assert_schema_verdicts_agree(adapter, REFERENCE, sample(name), hostile="hostile" in name)


def test_refusals_name_the_field_and_never_the_value(
        adapter: DcsaShippingInstructionsAdapter) -> None:
    with pytest.raises(FormatError) as caught:
        adapter.parse(sample("bad_un_locode.json"))
    assert "invoicePayableAt/UNLocationCode" in caught.value.message
    assert "CNSH1" not in caught.value.message
    with pytest.raises(AdapterError) as refused:
        adapter.parse(sample("bad_container_check_digit.json"))
    assert (refused.value.business_key, refused.value.document_version) == (
        "SI-2026-000457", 2)
    assert "utilizedTransportEquipments[1]/equipmentReference" in refused.value.message
    assert "PXLU" not in refused.value.message


# ---------------------------------------------------------------- detection


@pytest.fixture(scope="module")
def detector() -> FormatDetector:
    return FormatDetector(AdapterRegistry.default(xsd_store=XsdStore(),
                                                  xml_parser=SafeXmlParser()))


@pytest.mark.parametrize("name", ["valid_si_received_bol.json",
                                  "valid_si_swb_minimal_imperial.json"])
def test_shipping_instructions_are_detected_by_their_members(
        detector: FormatDetector, name: str) -> None:
    found = detector.detect(sample(name))
    assert (found.format_id, found.confidence, found.root) == (
        "dcsa-si", Confidence.DECLARED, JSON_OBJECT)


def test_transport_documents_and_unknown_json_stay_apart(detector: FormatDetector) -> None:
    assert detector.detect(sample("valid_bol_issued.json", "dcsa-ebl")).format_id == "dcsa-ebl"
    both = json.loads(sample("valid_bol_issued.json", "dcsa-ebl"))
    both |= {"shippingInstructionsStatus": "RECEIVED", "isCargoDeliveredInICS2Zone": False}
    found = detector.detect(json.dumps(both).encode())
    assert (found.confidence, found.candidates) == (Confidence.AMBIGUOUS,
                                                    ("dcsa-ebl", "dcsa-si"))
    # a shipper's request to create instructions has no status: no format reads it
    unknown = detector.detect(b'{"transportDocumentTypeCode": "BOL", '
                              b'"isCargoDeliveredInICS2Zone": true}')
    with pytest.raises(FormatNotDetectedError) as caught:
        unknown.require_format()
    assert caught.value.code == "FORMAT_UNSUPPORTED"


# ---------------------------------------------------------------- round trips


_NOT_IN_INSTRUCTIONS = dict.fromkeys((
    "status", "terms_and_conditions", "receipt_type_at_origin", "delivery_type_at_destination",
    "cargo_movement_type_at_origin", "cargo_movement_type_at_destination",
    "invoice_payable_at_text", "issue_date", "shipped_on_board_date"))


@st.composite
def dcsa_instructions(draw: st.DrawFn) -> dict[str, Any]:
    """A canonical waybill that DCSA shipping instructions can state."""
    numbers = draw(st.lists(DCSA_CONTAINER_NUMBER, min_size=1, max_size=3, unique=True))
    containers = [{"container_number": number, "size_type": None,
                   "seal_numbers": draw(st.lists(dcsa_text(15), min_size=1, max_size=2)),
                   "shipper_owned": False} for number in numbers]
    type_code = draw(st.sampled_from(["BOL", "SWB"]))
    carrier = draw(optional(pattern(r"[A-Z]{2,4}")))
    return {
        "waybill_number": draw(optional(dcsa_text(20))),
        "status": None, "operator": None,
        "consignor": draw(dcsa_party(0)),
        "consignee": draw(optional(dcsa_party(0))),
        "legs": [],
        "containers": containers,
        "cargo_items": draw(st.lists(dcsa_cargo_item(numbers, packaged=False),
                                     min_size=1, max_size=3)),
        "charges": [], "remarks": None,
        "transport_document": {
            "type_code": type_code,
            "shipping_instructions_reference": draw(dcsa_text(100)),
            "shipped_on_board": draw(st.booleans()), "electronic": draw(st.booleans()),
            "to_order": type_code == "BOL" and draw(st.booleans()),
            "freight_payment_term": draw(st.sampled_from(["PRE", "COL"])),
            "carrier_code": carrier,
            "carrier_code_list_provider": None if carrier is None else draw(
                st.sampled_from(["SMDG", "NMFTA"])),
            "invoice_payable_at": draw(optional(pattern(r"[A-Z]{2}[A-Z2-9]{3}"))),
            "contacts": draw(st.lists(DCSA_CONTACT, min_size=1, max_size=2)),
            "shipping_instructions_status": draw(st.sampled_from(
                ["RECEIVED", "PENDING_UPDATE", "COMPLETED", "CANCELLED", "DECLINED"])),
            "updated_shipping_instructions_status": draw(optional(st.sampled_from(
                ["UPDATE_RECEIVED", "UPDATE_CONFIRMED"]))),
            "cargo_delivered_in_ics2_zone": draw(st.booleans()),
            **_NOT_IN_INSTRUCTIONS,
        },
        "notify_parties": draw(st.lists(dcsa_party(0), max_size=3)),
        "master_waybill_number": None, "origin": None, "destination": None,
        "total_number_of_pieces": None, "total_gross_weight_kg": None,
    }


@PROPERTY
@given(record=dcsa_instructions(), version=st.integers(1, 2**31 - 1))
def test_parse_inverts_render(adapter: DcsaShippingInstructionsAdapter,
                              record: dict[str, Any], version: int) -> None:
    rendered = adapter.render({"header": {"document_version": version}, **record})
    assert REFERENCE.is_valid(json.loads(rendered))
    result = adapter.parse(rendered)
    assert (result.record, result.document_version) == (record, version)
    assert result.business_key == record["transport_document"][
        "shipping_instructions_reference"]


@PROPERTY
@given(record=dcsa_instructions(), version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
        schemas: AvroSchemas, adapter: DcsaShippingInstructionsAdapter,
        record: dict[str, Any], version: int) -> None:
    assert_survives_avro(schemas, adapter, record, version)


def test_what_the_instructions_cannot_state_is_not_rendered(
        adapter: DcsaShippingInstructionsAdapter) -> None:
    record = adapter.parse(sample("valid_si_received_bol.json")).record
    for path, value in (
        (("transport_document", "terms_and_conditions"), "Standard terms"),
        (("transport_document", "shipping_instructions_status"), None),
        (("remarks",), "a remark"),
        (("containers", 0, "shipper_owned"), None),
        (("cargo_items", 0, "number_of_packages"), None),  # yet a package description
    ):
        with pytest.raises(RenderError):
            adapter.render(broken(record, path, value))


@pytest.mark.parametrize(("format_id", "path"), [
    ("waybill-xml", "waybill/valid_booked.xml"),
    ("iftmin-edifact", "iftmin-edifact/valid_road_and_sea.edi"),
    ("cargo-xml", "cargo-xml/valid_xfwb_two_flights.xml"),
    ("dcsa-ebl", "dcsa-ebl/valid_bol_issued.json"),
])
@pytest.mark.parametrize("field", [("waybill_number",), ("cargo_items", 0, "number_of_packages")])
def test_formats_that_need_a_number_or_a_package_count_refuse_a_record_without(
        detector: FormatDetector, format_id: str, path: str, field: tuple[Any, ...]) -> None:
    """What only shipping instructions may lack is not written as an empty or a "None"."""
    adapter = detector.registry.get(format_id)
    record = adapter.parse((DATA / path).read_bytes()).record
    with pytest.raises(RenderError):
        adapter.render(broken(record, field, None))
