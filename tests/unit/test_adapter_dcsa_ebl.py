"""DCSA eBL 3.0 transport documents (dcsa-ebl): the mapping, the published schema's subset
(held to the `jsonschema` package too), the refusals, detection by content, and round trips
of generated canonical records through DCSA JSON and Avro."""

from __future__ import annotations

import json
from datetime import date, timedelta
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
    FormatDetector,
    RenderError,
)
from adapters.dcsa_ebl import SHIPPING_INSTRUCTIONS_ONLY
from adapters.detect import JSON_OBJECT, SNIFF_BYTES, json_top_level_keys
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore
from message_formats.safe_json import DEFAULT_JSON_LIMITS
from tests.unit.adapter_strategies import (
    DCSA_ADDRESS,
    DCSA_CONTACT,
    DCSA_CONTAINER_NUMBER,
    PROPERTY,
    assert_schema_verdicts_agree,
    assert_survives_avro,
    bounded_decimal,
    broken,
    dcsa_cargo_item,
    dcsa_party,
    dcsa_text,
    json_schema_reference,
    optional,
    pattern,
)

DATA = Path(__file__).parents[1] / "data" / "dcsa-ebl"
REFERENCE = json_schema_reference("dcsa-ebl-transport-document")


@pytest.fixture(scope="module")
def adapter() -> DcsaEblAdapter:
    return DcsaEblAdapter()


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def samples() -> list[str]:
    return sorted(p.name for p in DATA.glob("*.json") if p.name != "expected.json")


# ---------------------------------------------------------------- the mapping


def test_a_bill_of_lading_maps_to_the_waybill_and_its_transport_document(
        adapter: DcsaEblAdapter) -> None:
    result = adapter.parse(sample("valid_bol_issued.json"))
    record = result.record
    assert (result.business_key, result.document_version) == ("PXBL2026000123", 1)
    assert record["status"] is None  # a document state is not a transport state
    assert record["transport_document"]["status"] == "ISSUED"
    assert record["transport_document"]["type_code"] == "BOL"
    assert record["transport_document"]["issue_date"] == date(2026, 3, 20)
    assert record["transport_document"]["invoice_payable_at"] == "CNSHA"
    assert record["operator"] == {
        "name": "PX Example Line", "unified_social_credit_code": None,
        "address": {"street": "Zhongshan Road East", "street_number": "1", "post_code": None,
                    "city": "Shanghai", "country_code": "CN"}}
    assert record["consignee"]["identifying_codes"] == [
        {"code_list_provider": "W3C", "party_code": "did:web:parts.example",
         "code_list_name": "DID"}]
    (leg,) = record["legs"]
    assert (leg["mode"], leg["carrier"], leg["vessel_name"], leg["conveyance_reference"]) == (
        "sea", "PXLN", "PX EXAMPLE STAR", "2611W")
    assert (leg["origin"]["un_locode"], leg["destination"]["un_locode"]) == ("CNSHA", "NLRTM")
    assert (leg["planned_departure_date"], leg["planned_arrival_date"]) == (
        date(2026, 3, 19), date(2026, 4, 18))
    assert leg["planned_departure"] is None and leg["planned_departure_utc_offset_minutes"] is None
    first, second = record["cargo_items"]
    assert first["description"] == "Brake discs for motor vehicles\ncast iron, unassembled"
    assert (first["gross_weight_kg"], first["volume_m3"]) == (Decimal("21480.250"),
                                                              Decimal("58.500"))
    assert (second["equipment_reference"], second["booking_reference"], second["hs_codes"]) == (
        "TGHU7654320", "PXBK26031201", ["870830"])
    assert [c["seal_numbers"] for c in record["containers"]] == [
        ["SH2026031901"], ["SH2026031902", "CUS778812"]]
    assert [(c["amount"], c["unit_price"], c["quantity"]) for c in record["charges"]] == [
        (Decimal("2450.00"), Decimal("1225.0000"), Decimal("2.0000")),
        (Decimal("1700.50"), Decimal("850.2500"), Decimal("2.0000"))]


def test_pounds_and_cubic_feet_become_kilograms_and_cubic_metres(
        adapter: DcsaEblAdapter) -> None:
    record = adapter.parse(sample("valid_swb_draft_imperial.json")).record
    (item,) = record["cargo_items"]
    # 4410.5 lb x 0.45359237 kg/lb; 353.1 ft3 x 0.028316846592 m3/ft3, to the canonical scale
    assert (item["gross_weight_kg"], item["volume_m3"]) == (Decimal("2000.569"),
                                                            Decimal("9.999"))
    assert item["kind_of_packages"] is None
    assert record["consignee"] is None
    assert record["transport_document"]["invoice_payable_at_text"] == "Carrier office Los Angeles"
    rendered = json.loads(adapter.render(record))
    cargo = rendered["consignmentItems"][0]["cargoItems"][0]
    assert cargo["cargoGrossWeight"] == {"value": 2000.569, "unit": "KGM"}
    assert cargo["cargoGrossVolume"] == {"value": 9.999, "unit": "MTQ"}


@pytest.mark.parametrize("name", samples())
def test_the_schema_subset_agrees_with_the_jsonschema_package(
        adapter: DcsaEblAdapter, name: str) -> None:
    assert_schema_verdicts_agree(adapter, REFERENCE, sample(name), hostile="hostile" in name)


@pytest.mark.parametrize(("member", "value"), [
    (b'"value": 21480.25', b'"value": 1E+12'),  # kilograms beyond decimal(15, 3)
    (b'"value": 21480.25', b'"value": 2204622621849'),  # pounds, converted, beyond it too
    (b'"currencyAmount": 2450.00', b'"currencyAmount": 1E+30'),
])
def test_numbers_beyond_the_canonical_precision_are_not_mapped(
        adapter: DcsaEblAdapter, member: bytes, value: bytes) -> None:
    data = sample("valid_bol_issued.json").replace(member, value, 1)
    if b"2204622621849" in value:
        data = data.replace(b'"unit": "KGM"', b'"unit": "LBR"', 1)
    with pytest.raises(AdapterError) as caught:
        adapter.parse(data)
    assert caught.value.code == "DCSA_NOT_MAPPED"


def test_refusals_name_the_field_and_never_the_value(adapter: DcsaEblAdapter) -> None:
    with pytest.raises(FormatError) as caught:
        adapter.parse(sample("bad_un_locode.json"))
    assert "transports/portOfDischarge/UNLocationCode" in caught.value.message
    assert "NLRT1" not in caught.value.message
    with pytest.raises(AdapterError) as refused:
        adapter.parse(sample("bad_container_check_digit.json"))
    assert refused.value.business_key == "PXBL2026000123"
    assert "MSKU" not in refused.value.message


def test_a_transport_document_without_one_sea_leg_is_not_rendered(
        adapter: DcsaEblAdapter) -> None:
    record = adapter.parse(sample("valid_bol_issued.json")).record
    with pytest.raises(RenderError):
        adapter.render(broken(record, ("transport_document",), None))
    with pytest.raises(RenderError):
        adapter.render(broken(record, ("legs",), [*record["legs"], *record["legs"]]))
    with pytest.raises(RenderError):  # 0 kg breaks DCSA's exclusiveMinimum
        adapter.render(broken(record, ("cargo_items", 0, "gross_weight_kg"), Decimal("0.000")))


# ---------------------------------------------------------------- detection


@pytest.fixture(scope="module")
def detector() -> FormatDetector:
    return FormatDetector(AdapterRegistry.default(xsd_store=XsdStore(),
                                                  xml_parser=SafeXmlParser()))


@pytest.mark.parametrize("name", ["valid_bol_issued.json", "valid_swb_draft_imperial.json"])
def test_a_transport_document_is_detected_by_its_members(
        detector: FormatDetector, name: str) -> None:
    found = detector.detect(b"\xef\xbb\xbf \n" + sample(name))
    assert (found.format_id, found.confidence, found.root) == (
        "dcsa-ebl", Confidence.DECLARED, JSON_OBJECT)


def test_other_json_is_unsupported_not_malformed_xml(detector: FormatDetector) -> None:
    shipping_instructions = (b'{"shippingInstructionsReference": "SI-1", '
                             b'"transportDocumentTypeCode": "BOL"}')
    found = detector.detect(shipping_instructions)
    assert (found.format_id, found.confidence) == (None, Confidence.UNSUPPORTED)


def test_only_top_level_members_count_and_only_the_first_bytes_are_read() -> None:
    nested = b'{"a": {"transportDocumentReference": 1}, "b": ["c", {"d": 2}], "e\\u0041": 3}'
    assert json_top_level_keys(nested) == {"a", "b", "eA"}
    late = b'{"pad": "' + b"x" * SNIFF_BYTES + b'", "late": 1}'
    assert json_top_level_keys(late) == {"pad", "late"}  # within the reader's budget: read
    huge = b'{"pad": "' + b"x" * DEFAULT_JSON_LIMITS.max_bytes + b'", "late": 1}'
    assert json_top_level_keys(huge) == {"pad"}  # beyond it: "late" is past the bytes read
    assert json_top_level_keys(b'{"k": "a \\" quoted: {", "m": 1}') == {"k", "m"}


def test_the_sniff_reads_each_byte_once_whatever_the_quotes() -> None:
    """Escaped quotes with no closing one would make a naive string pattern rescan the rest
    of the bytes from every quote: quadratic in SNIFF_BYTES."""
    hostile = b'{"a": "' + b'\\"' * DEFAULT_JSON_LIMITS.max_bytes
    assert json_top_level_keys(hostile) == {"a"}


# ---------------------------------------------------------------- round trips


_DATE = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))
_PORT = st.fixed_dictionaries({"un_locode": pattern(r"[A-Z]{2}[A-Z2-9]{3}"),
                               "station_code": st.none(), "name": optional(dcsa_text(100))})


@st.composite
def dcsa_waybill(draw: st.DrawFn) -> dict[str, Any]:
    """A canonical waybill that a DCSA transport document can state."""
    departure = draw(_DATE)
    containers = draw(st.lists(st.fixed_dictionaries({
        "container_number": DCSA_CONTAINER_NUMBER,
        "size_type": optional(pattern(r"[0-9]{2}[A-Z][0-9]")),
        "seal_numbers": st.lists(dcsa_text(15), min_size=1, max_size=2),
        "shipper_owned": st.booleans()}), min_size=1, max_size=3,
        unique_by=lambda c: c["container_number"]))
    payable = draw(st.booleans())
    carrier = draw(pattern(r"[A-Z]{2,4}"))
    return {
        "waybill_number": draw(dcsa_text(20)),
        "status": None,
        "operator": {"name": draw(dcsa_text(70)), "unified_social_credit_code": None,
                     "address": draw(DCSA_ADDRESS)},
        "consignor": draw(dcsa_party(0)),
        "consignee": draw(optional(dcsa_party(1))),
        "legs": [{
            "sequence_number": 1, "mode": "sea", "carrier": carrier,
            "origin": draw(_PORT), "destination": draw(_PORT),
            "planned_departure": None, "planned_departure_utc_offset_minutes": None,
            "planned_arrival": None, "planned_arrival_utc_offset_minutes": None,
            "actual_departure": None, "actual_departure_utc_offset_minutes": None,
            "actual_arrival": None, "actual_arrival_utc_offset_minutes": None,
            "planned_departure_date": departure,
            "planned_arrival_date": departure + timedelta(days=draw(st.integers(0, 90))),
            "vessel_name": draw(dcsa_text(50)), "conveyance_reference": draw(dcsa_text(50)),
            "planned_departure_local_time": None, "planned_arrival_local_time": None,
        }],
        "containers": containers,
        "cargo_items": draw(st.lists(dcsa_cargo_item(
            [c["container_number"] for c in containers], packaged=True), min_size=1, max_size=3)),
        "charges": draw(st.lists(st.fixed_dictionaries({
            "item": dcsa_text(50), "amount": bounded_decimal(2, "0", "9999999999.99"),
            "currency": pattern(r"[A-Z]{3}"), "payment_term": st.sampled_from(["PRE", "COL"]),
            "calculation_basis": dcsa_text(50),
            "unit_price": bounded_decimal(4, "0", "99999999.9999"),
            "quantity": bounded_decimal(4, "0", "99999.9999")}), max_size=2)),
        "remarks": None,
        "transport_document": {
            "type_code": draw(st.sampled_from(["BOL", "SWB"])),
            "status": draw(st.sampled_from(["DRAFT", "APPROVED", "ISSUED", "VOIDED"])),
            "shipping_instructions_reference": draw(optional(dcsa_text(100))),
            "shipped_on_board": draw(st.booleans()), "electronic": draw(st.booleans()),
            "to_order": draw(st.booleans()),
            "freight_payment_term": draw(optional(st.sampled_from(["PRE", "COL"]))),
            "terms_and_conditions": draw(dcsa_text(500)),
            "receipt_type_at_origin": draw(st.sampled_from(["CY", "SD", "CFS"])),
            "delivery_type_at_destination": draw(st.sampled_from(["CY", "SD", "CFS"])),
            "cargo_movement_type_at_origin": draw(st.sampled_from(["FCL", "LCL"])),
            "cargo_movement_type_at_destination": draw(st.sampled_from(["FCL", "LCL"])),
            "carrier_code": carrier,
            "carrier_code_list_provider": draw(st.sampled_from(["SMDG", "NMFTA"])),
            "invoice_payable_at": draw(pattern(r"[A-Z]{2}[A-Z2-9]{3}")) if payable else None,
            "invoice_payable_at_text": None if payable else draw(dcsa_text(35)),
            "issue_date": draw(optional(_DATE)),
            "shipped_on_board_date": draw(optional(_DATE)),
            "contacts": draw(st.lists(DCSA_CONTACT, min_size=1, max_size=2)),
            **dict.fromkeys(SHIPPING_INSTRUCTIONS_ONLY),
        },
        "notify_parties": [], "master_waybill_number": None, "origin": None,
        "destination": None, "total_number_of_pieces": None, "total_gross_weight_kg": None,
    }


@PROPERTY
@given(record=dcsa_waybill())
def test_parse_inverts_render(adapter: DcsaEblAdapter, record: dict[str, Any]) -> None:
    rendered = adapter.render(record)
    assert REFERENCE.is_valid(json.loads(rendered))
    result = adapter.parse(rendered)
    assert result.record == record
    assert result.business_key == record["waybill_number"]


@PROPERTY
@given(record=dcsa_waybill(), version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
        schemas: AvroSchemas, adapter: DcsaEblAdapter, record: dict[str, Any],
        version: int) -> None:
    assert_survives_avro(schemas, adapter, record, version)
