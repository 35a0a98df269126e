"""The CUSCAR adapter: what a customs cargo report maps to in the WCO-model manifest, what it
refuses (with the segment and data element named), and render then parse giving back any
record it can carry."""

from __future__ import annotations

import pickle
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterRegistry, RenderError, RuleViolationError
from adapters.cn_manifest import CnManifestAdapter
from adapters.cuscar import CuscarAdapter
from adapters.edi_text import iso_local, local_time
from adapters.iso6346 import with_check_digit
from message_formats import AvroSchemas, SafeXmlParser, XsdStore
from message_formats.edifact import Level, Segment, Where
from tests.unit.adapter_strategies import (
    PROPERTY,
    broken,
    event_header,
    imo_with_check_digit,
    optional,
    pattern,
)

DATA = Path(__file__).parents[1] / "data" / "cuscar-edifact"
SCHEMAS = AvroSchemas()


@pytest.fixture(scope="module")
def adapter() -> CuscarAdapter:
    return CuscarAdapter()


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- samples


def test_a_cargo_report_maps_to_the_wco_manifest(adapter: CuscarAdapter) -> None:
    result = adapter.parse(sample("valid_sea_import.edi"))
    record = result.record
    assert (result.business_key, result.document_version, result.warnings) == (
        "CUSCAR:EXAMPLELINE:9312341:0326E", 1, ())
    assert (record["mode"], record["stage"], record["sender_code"]) == (
        "SEA", None, "EXAMPLELINE")
    assert record["head"] == {
        "message_id": "MREF0001", "function_code": "9", "message_type": "CUSCAR",
        "sender_id": "EXAMPLELINE", "receiver_id": "EXAMPLECUSTOMS",
        "send_time": {"instant": None, "digits": 12,
                      "local_date_time": "2026-12-07T14:05"},
        "version": "D:95B:UN:LOT10"}
    declaration = record["declaration"]
    assert declaration["id"] == "CR2026-0001" and declaration["carrier_id"] == "EXAMPLELINE"
    assert declaration["transport_means"] == {
        "journey_id": "0326E", "type_code": "1", "id": "9312341", "name": "EXAMPLE STAR",
        "first_arrival_location_id": None, "arrival_date_time": None,
        "departure_date_time": None}
    assert declaration["loading_location"] == {
        "id": "CNSHA", "loading_date": None,
        "loading_date_time": {"instant": None, "digits": 12,
                              "local_date_time": "2026-12-03T18:00"}}
    (consignment,) = declaration["consignments"]
    assert consignment["transport_contract_document"]["id"] == "EXLN2026000001"
    assert consignment["total_gross_mass"] == {"value": Decimal("12500.5"), "unit_code": "KGM"}
    assert consignment["consignor"]["address"]["country_code"] == "CN"
    assert consignment["transport_equipment"] == [{
        "id": "EXMU1234569", "characteristic_code": "45G1", "fullness_code": "5",
        "seals": [{"value": "SL000123", "agency_code": "CA"}]}]
    assert consignment["items"][1] == {
        "sequence_numeric": "2",
        "commodity": {"cargo_description": "STEEL SCREWS AND BOLTS", "description": None,
                      "classification_id": "731815"},
        "gross_mass": {"value": Decimal(4500), "unit_code": "KGM"},
        "package_quantity": {"value": Decimal(100), "unit_code": "CT"}}


def test_one_line_interchange_with_decimal_comma_and_house_bill(adapter: CuscarAdapter) -> None:
    result = adapter.parse(sample("valid_one_line_house_bill.edi"))
    declaration = result.record["declaration"]
    first, second = declaration["consignments"]
    assert first["total_gross_mass"]["value"] == Decimal("1000.25")
    assert first["consignor"]["name"] == "EXAMPLE O'BRIEN TRADING"
    assert (second["transport_contract_document"]["id"],
            second["associated_transport_document_id"]) == ("EXLN2026000003", "EXHB000017")
    assert declaration["loading_location"]["loading_date_time"]["digits"] == 8
    assert result.record["head"]["version"] == "D:96B:UN"
    # The vessel is named by its call sign only: not kept as the means id, and said so.
    assert declaration["transport_means"]["id"] is None
    assert [w.split(":")[0] for w in result.warnings] == ["WARN_CUSCAR_CALL_SIGN_NOT_KEPT"]


def test_a_rule_refusal_names_segment_and_element_and_keeps_the_key(
        adapter: CuscarAdapter) -> None:
    with pytest.raises(RuleViolationError) as caught:
        adapter.parse(sample("bad_container_check_digit.edi"))
    error = pickle.loads(pickle.dumps(caught.value))  # as it leaves the parse worker
    assert (error.code, error.line, error.business_key, error.document_version) == (
        "RULE_CONTAINER_CHECK_DIGIT", 17, "CUSCAR:EXAMPLELINE:9312341:0326E", 1)
    assert error.message.startswith("EQD C237 8260 (segment 17): ")
    # CONTRL: the message rejected (UCM) at its segment 17 (UCS), an invalid value (12).
    assert error.where == Where(Level.SEGMENT, 12, message_reference="MREF0001",
                                message_type=("CUSCAR", "D", "95B", "UN", "LOT10"),
                                segment_number=17, segment_tag="EQD")
    assert "EXMU" not in error.message  # names the field, never the value


def test_one_report_per_message(adapter: CuscarAdapter) -> None:
    """One message, one record: two messages in one interchange are two documents, each
    read (tests/unit/test_edifact_several_messages.py)."""
    text = sample("valid_sea_import.edi").decode("latin-1")
    start, end = text.index("UNH+"), text.index("UNZ+")
    twice = text[:end] + text[start:end].replace("MREF0001", "MREF0002") + "UNZ+2+SRC0001'\n"
    result = adapter.parse(twice.encode("latin-1"))
    assert [(part.reference, part.own) for part in result.parts] == [
        ("MREF0001", True), ("MREF0002", False)]
    assert result.parts[1].parsed is not None
    assert result.parts[1].parsed.record["head"]["message_id"] == "MREF0002"


def test_registered_as_a_builtin_that_reads_cuscar() -> None:
    registry = AdapterRegistry.default(SCHEMAS)
    found = registry.get("cuscar-edifact")
    assert isinstance(found, CuscarAdapter)
    assert found.edifact_message_types == frozenset({"CUSCAR"})


# ---------------------------------------------------------------- render


def test_render_writes_the_version_into_bgm(adapter: CuscarAdapter) -> None:
    record = adapter.parse(sample("valid_sea_import.edi")).record
    rendered = adapter.render({"header": {"document_version": 4}, **record})
    assert b"BGM+85+CR2026-0001:4+9'" in rendered
    assert rendered.startswith(b"UNA:+.?*'UNB+UNOC:4+EXAMPLELINE+EXAMPLECUSTOMS+20261207:1405")
    assert adapter.parse(rendered).document_version == 4


def test_render_releases_service_characters_and_widens_the_repertoire(
        adapter: CuscarAdapter) -> None:
    record = adapter.parse(sample("valid_one_line_house_bill.edi")).record
    record["declaration"]["consignments"][0]["consignee"]["name"] = "上海 A+B:C?D*E'F"
    rendered = adapter.render(record)
    assert b"UNB+UNOY:4+" in rendered
    assert "上海 A?+B?:C??D?*E?'F".encode() in rendered
    assert adapter.parse(rendered).record == record


@pytest.mark.parametrize(("path", "value"), [
    (("stage",), "ORIGINAL"),
    (("head", "message_type"), "MT2101"),
    (("declaration", "agent_id"), "AGENT1"),
    (("declaration", "consignments", 0, "consignee", "aeo"), "AEO1"),
    (("head", "send_time"), {"instant": datetime(2026, 1, 1).astimezone(), "digits": 12,
                             "local_date_time": None}),
])
def test_what_cuscar_cannot_carry_is_refused_not_dropped(
        adapter: CuscarAdapter, path: tuple[Any, ...], value: Any) -> None:
    record = adapter.parse(sample("valid_one_line_house_bill.edi")).record
    with pytest.raises(RenderError):
        adapter.render(broken(record, path, value))


def test_an_eport_manifest_is_not_rendered_as_cuscar(adapter: CuscarAdapter) -> None:
    eport = CnManifestAdapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())
    data = (DATA.parent / "cn-manifest" / "mt2101_sea_pre_manifest.xml").read_bytes()
    with pytest.raises(RenderError):
        adapter.render(eport.parse(data).record)


# ---------------------------------------------------------------- property: round trip

WORD = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./()éß中+:?*'"),
               min_size=1, max_size=10)
CODE = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), min_size=1,
               max_size=14)
UNLOCODES = pattern(r"[A-Z]{2}[A-Z2-9]{3}")
AMOUNTS = st.decimals(min_value=0, max_value=10**9, places=3)


def words(max_words: int, width: int = 35) -> st.SearchStrategy[str]:
    return st.lists(WORD, min_size=1, max_size=max_words).map(" ".join).filter(
        lambda text: len(text) <= width * 3)


def local_times(digits: int) -> st.SearchStrategy[dict[str, Any]]:
    moments = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31))
    return moments.map(lambda m: {"instant": None, "digits": digits,
                                  "local_date_time": iso_local(m, digits)})


def any_time() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from((8, 12, 14)).flatmap(local_times)


def measure(unit: st.SearchStrategy[str | None]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"value": AMOUNTS, "unit_code": unit})


@st.composite
def parties(draw: st.DrawFn) -> dict[str, Any]:
    address = {"line": draw(optional(words(4))), "city_name": draw(optional(CODE)),
               "country_sub_entity_id": draw(optional(CODE)),
               "country_sub_entity_name": None, "postcode_id": draw(optional(CODE)),
               "country_code": draw(optional(pattern(r"[A-Z]{2}")))}
    return {"id": draw(optional(CODE)), "name": draw(optional(words(5))),
            "address": address if any(v is not None for v in address.values()) else None,
            "communications": [], "contact": None, "aeo": None}


@st.composite
def items(draw: st.DrawFn, number: int) -> dict[str, Any]:
    commodity = {"cargo_description": draw(optional(words(6))), "description": None,
                 "classification_id": draw(optional(pattern(r"[0-9]{6}")))}
    return {"sequence_numeric": str(number),
            "commodity": commodity if any(v is not None for v in commodity.values()) else None,
            "gross_mass": draw(optional(measure(optional(st.just("KGM"))))),
            "package_quantity": draw(optional(measure(optional(st.sampled_from(("CT", "PK")))))),
            }


@st.composite
def equipment(draw: st.DrawFn) -> dict[str, Any]:
    owner = draw(pattern(r"[A-Z]{3}U[0-9]{6}"))
    seals = draw(st.lists(st.fixed_dictionaries({"value": CODE, "agency_code": optional(
        st.sampled_from(("CA", "CU", "SH")))}), max_size=2))
    return {"id": with_check_digit(owner), "characteristic_code": draw(optional(CODE)),
            "fullness_code": draw(optional(st.sampled_from(("4", "5")))), "seals": seals}


def total(draw: st.DrawFn, goods: list[dict[str, Any]], field: str,
          unit: str | None) -> dict[str, Any] | None:
    """None, or the sum over the items when each states its own, else any value."""
    if not draw(st.booleans()):
        return None
    stated = [item[field] for item in goods]
    if goods and all(m is not None for m in stated):
        return {"value": sum((m["value"] for m in stated), Decimal(0)), "unit_code": unit}
    return {"value": draw(AMOUNTS), "unit_code": unit}


@st.composite
def consignments(draw: st.DrawFn) -> dict[str, Any]:
    goods = [draw(items(n)) for n in range(1, draw(st.integers(0, 3)) + 1)]
    place = st.fixed_dictionaries({"id": UNLOCODES, "loading_date": st.none(),
                                   "loading_date_time": st.none()})
    unplace = st.fixed_dictionaries({"id": UNLOCODES, "arrival_date": st.none(),
                                     "arrival_date_time": st.none()})
    consignment: dict[str, Any] = {name: None for name in (
        "gross_volume", "value_amount", "goods_receipt_place", "transit_destination_id",
        "transit_departure_id", "goods_consigned_place_id", "freight_payment_method_code",
        "packaging", "transport_split_indicator", "government_procedure_code",
        "government_agency_gross_mass", "previous_customs_document", "delivery_destination",
        "intermediate_carrier_id", "undg_contact")}
    consignment.update({
        "transport_contract_document": {"id": draw(CODE), "change_reason_code": None,
                                        "condition_code": None, "consolidator_id": None,
                                        "deconsolidator_id": None},
        "associated_transport_document_id": draw(optional(CODE)),
        "total_package_quantity": total(draw, goods, "package_quantity", None),
        "total_gross_mass": total(draw, goods, "gross_mass", "KGM"),
        "loading_location": draw(optional(place)),
        "unloading_location": draw(optional(unplace)),
        "transhipment_location_id": draw(optional(UNLOCODES)),
        "routing_country_codes": [],
        "consignor": draw(optional(parties())),
        "consignee": draw(optional(parties())),
        "notify_party": draw(optional(parties())),
        "transport_equipment": draw(st.lists(equipment(), max_size=2)),
        "items": goods,
    })
    return consignment


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    mode, type_code = draw(st.sampled_from((("SEA", "1"), ("ROAD", "3"), ("AIR", "4"))))
    sender = draw(CODE)
    means = {"journey_id": draw(optional(CODE)), "type_code": type_code,
             "id": draw(optional(st.integers(0, 999_999).map(imo_with_check_digit) | CODE)),
             "name": draw(optional(CODE)), "first_arrival_location_id": None,
             "arrival_date_time": None, "departure_date_time": None}
    loading = st.fixed_dictionaries({"id": UNLOCODES, "loading_date": st.none(),
                                     "loading_date_time": optional(any_time())})
    unloading = st.fixed_dictionaries({"id": UNLOCODES, "arrival_date": st.none(),
                                       "arrival_date_time": optional(any_time())})
    declaration = {
        "declaration_office_id": None, "id": draw(optional(CODE)),
        "representative_person_name": None, "exit_customs_office_id": None, "agent_id": None,
        "carrier_id": draw(optional(CODE)), "transport_means": means,
        "loading_location": draw(optional(loading)),
        "unloading_location": draw(optional(unloading)),
        "consignments": draw(st.lists(consignments(), min_size=1, max_size=3)),
        "additional_information": None}
    head = {"message_id": draw(CODE), "function_code": draw(st.sampled_from("92345")),
            "message_type": "CUSCAR", "sender_id": sender, "receiver_id": draw(CODE),
            "send_time": draw(local_times(12)),
            "version": draw(st.sampled_from(("D:95B:UN:LOT10", "D:96B:UN", "D:03B:UN")))}
    return {"mode": mode, "stage": None, "sender_code": sender, "head": head,
            "declaration": declaration}


@PROPERTY
@given(record=records(), version=st.integers(1, 50))
def test_render_then_parse_gives_the_record_back(
        adapter: CuscarAdapter, record: dict[str, Any], version: int) -> None:
    rendered = adapter.render({"header": {"document_version": version}, **record})
    result = adapter.parse(rendered)
    assert (result.record, result.document_version) == (record, version)


@PROPERTY
@given(record=records())
def test_every_record_it_carries_fits_the_schema(
        adapter: CuscarAdapter, record: dict[str, Any]) -> None:
    event = {"header": event_header(adapter, 1), **record}
    assert SCHEMAS.decode(SCHEMAS.encode(adapter.schema_name, event)) == (
        adapter.schema_name, event)


# ---------------------------------------------------------------- DTM formats


@pytest.mark.parametrize(("value", "expected"), [
    (("133", "2612031800", "201"), "2026-12-03T18:00"),
    (("133", "9912031800", "201"), "1999-12-03T18:00"),  # two-digit years as strptime's %y
    (("133", "20261203"), "2026-12-03"),  # no format named: known by its length
    (("133", "20261203183005", "204"), "2026-12-03T18:30:05"),
])
def test_dtm_formats_read_as_local_iso_text(value: tuple[str, ...], expected: str) -> None:
    assert local_time(Segment("DTM", (value,), 5))["local_date_time"] == expected


@pytest.mark.parametrize("value", [
    ("133", "202612031800", "102"),  # longer than its format
    ("133", "20261232", "102"),  # no 32nd
    ("133", "２０２６１２０３", "102"),  # digits, but not ASCII ones
    ("133", "20261203", "999"),  # a format not read
    ("133", "202612"),
])
def test_dtm_that_is_no_time_is_refused(value: tuple[str, ...]) -> None:
    with pytest.raises(RuleViolationError) as caught:
        local_time(Segment("DTM", (value,), 5))
    assert (caught.value.code, caught.value.line) == ("RULE_DATE_TIME", 5)
