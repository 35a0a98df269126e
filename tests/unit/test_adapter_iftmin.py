"""The IFTMIN adapter: a transport instruction as the multimodal waybill it books (or
cancels), its refusals naming segment and element, and render then parse giving back any
record an instruction can carry."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterRegistry, MultimodalWaybillAdapter, RenderError, RuleViolationError
from adapters.edi_text import iso_local
from adapters.iftmin import IftminAdapter
from adapters.iso6346 import with_check_digit
from adapters.waybill import with_defaults
from message_formats import AvroSchemas, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import PROPERTY, broken, event_header, optional, pattern

DATA = Path(__file__).parents[1] / "data" / "iftmin-edifact"
SCHEMAS = AvroSchemas()


@pytest.fixture(scope="module")
def adapter() -> IftminAdapter:
    return IftminAdapter()


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_an_instruction_books_a_waybill_with_local_planned_times(adapter: IftminAdapter) -> None:
    result = adapter.parse(sample("valid_road_and_sea.edi"))
    record = result.record
    assert (result.business_key, result.document_version) == ("EXWB2026000318", 1)
    assert (record["status"], record["operator"]) == (
        "booked", {"name": "EXAMPLE MULTIMODAL OPERATOR", "unified_social_credit_code": None,
                   "address": None})
    assert record["consignor"] == {"name": "EXAMPLE EXPORT CO LTD",
                                   "contact": "ZHANG SAN 000-0000-0000", "address": None,
                                   "identifying_codes": []}
    road, sea = record["legs"]
    assert (road["sequence_number"], road["mode"], road["carrier"]) == (
        1, "road", "EXAMPLE TRUCKING")
    assert road["origin"] == {"un_locode": "CNCKG", "station_code": None,
                              "name": "CHONGQING DEPOT"}
    assert (road["planned_departure"], road["planned_departure_local_time"]) == (
        None, "2026-12-10T10:00")
    assert (sea["planned_arrival_date"], sea["planned_arrival_local_time"]) == (
        date(2027, 1, 10), None)  # format 102: a date
    assert record["cargo_items"][0] == {
        "description": "MACHINE PARTS", "number_of_packages": 20, "kind_of_packages": "CT",
        "gross_weight_kg": Decimal("1200.5"), "volume_m3": Decimal("12.25"),
        "package_description": None, "booking_reference": None, "hs_codes": [],
        "equipment_reference": None}
    assert record["containers"][0] == {"container_number": "EXMU4000029", "size_type": "22G1",
                                       "seal_numbers": ["SL400001"], "shipper_owned": None}
    assert (record["charges"], record["remarks"]) == ([], "HANDLE WITH CARE")


def test_a_cancellation_cancels(adapter: IftminAdapter) -> None:
    record = adapter.parse(sample("valid_cancelled_rail_and_barge.edi")).record
    assert record["status"] == "cancelled"
    assert [leg["mode"] for leg in record["legs"]] == ["rail", "inland_water"]
    assert record["consignor"]["name"] == "EXAMPLE 西安 TRADING"
    assert b"BGM+340+EXWB2026000319+1'" in adapter.render(record)


def test_a_refusal_names_segment_and_element(adapter: IftminAdapter) -> None:
    with pytest.raises(RuleViolationError) as caught:
        adapter.parse(sample("weight_in_pounds.edi"))
    assert (caught.value.code, caught.value.line) == ("RULE_UNIT_OF_MEASURE", 25)
    assert caught.value.message == "MEA C174 6411 (segment 25): the unit must be KGM"


def test_registered_as_a_builtin_that_reads_iftmin() -> None:
    found = AdapterRegistry.default(SCHEMAS).get("iftmin-edifact")
    assert isinstance(found, IftminAdapter)
    assert found.edifact_message_types == frozenset({"IFTMIN"})


@pytest.mark.parametrize(("path", "value"), [
    (("status",), "in_transit"),
    (("operator", "unified_social_credit_code"), "91500000MA5U000000"),
    (("charges",), [{"item": "rail freight", "amount": Decimal(1), "currency": "CNY"}]),
    (("legs", 0, "planned_departure"), datetime(2026, 12, 10, 2, tzinfo=UTC)),
    (("legs", 0, "origin"), {"un_locode": None, "station_code": "CUW", "name": None}),
])
def test_what_an_instruction_cannot_carry_is_refused(
        adapter: IftminAdapter, path: tuple[Any, ...], value: Any) -> None:
    record = adapter.parse(sample("valid_road_and_sea.edi")).record
    with pytest.raises(RenderError):
        adapter.render(broken(record, path, value))


def test_the_xml_waybill_does_not_render_a_record_without_its_required_fields(
        adapter: IftminAdapter) -> None:
    """The canonical record grew optional fields for IFTMIN; the XML form still needs them."""
    xml = MultimodalWaybillAdapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())
    with pytest.raises(RenderError):
        xml.render(adapter.parse(sample("valid_road_and_sea.edi")).record)


# ---------------------------------------------------------------- property: round trip

WORD = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./é中+:?*'"),
               min_size=1, max_size=10)
NAME = st.lists(WORD, min_size=1, max_size=5).map(" ".join)
CODE = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), min_size=1,
               max_size=12)
UNLOCODES = pattern(r"[A-Z]{2}[A-Z2-9]{3}")
LOCAL = st.sampled_from((12, 14)).flatmap(lambda digits: st.datetimes(
    datetime(2000, 1, 1), datetime(2099, 12, 31)).map(lambda m: iso_local(m, digits)))


def places() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"un_locode": UNLOCODES, "station_code": st.none(),
                                  "name": optional(NAME)})


@st.composite
def legs(draw: st.DrawFn, number: int) -> dict[str, Any]:
    leg: dict[str, Any] = {name: None for name in (
        "planned_departure", "planned_departure_utc_offset_minutes", "planned_arrival",
        "planned_arrival_utc_offset_minutes", "actual_departure",
        "actual_departure_utc_offset_minutes", "actual_arrival",
        "actual_arrival_utc_offset_minutes")}
    leg.update({
        "sequence_number": number,
        "mode": draw(st.sampled_from(("sea", "rail", "road", "air", "inland_water"))),
        "carrier": draw(NAME), "origin": draw(places()), "destination": draw(places()),
        **draw(local_time("planned_departure")), **draw(local_time("planned_arrival"))})
    return leg


def local_time(field: str) -> st.SearchStrategy[dict[str, Any]]:
    """A zone-less planned time as IFTMIN gives it: none, a date, or a date and time."""
    return st.one_of(
        st.just({f"{field}_date": None, f"{field}_local_time": None}),
        st.dates(date(2000, 1, 1), date(2099, 12, 31)).map(
            lambda day: {f"{field}_date": day, f"{field}_local_time": None}),
        LOCAL.map(lambda text: {f"{field}_date": None, f"{field}_local_time": text}))


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    party = st.fixed_dictionaries({"name": NAME, "contact": optional(NAME)})
    cargo = st.fixed_dictionaries({
        "description": NAME, "number_of_packages": st.integers(0, 10**6),
        "kind_of_packages": st.sampled_from(("CT", "PK", "BX")),
        "gross_weight_kg": st.decimals(0, 10**9, places=3),
        "volume_m3": optional(st.decimals(0, 10**6, places=3))})
    containers = st.fixed_dictionaries({
        "container_number": pattern(r"[A-Z]{3}U[0-9]{6}").map(with_check_digit),
        "size_type": optional(CODE), "seal_numbers": st.lists(CODE, max_size=2)})
    return with_defaults({
        "waybill_number": draw(CODE),
        "status": draw(st.sampled_from(("booked", "cancelled"))),
        "operator": {"name": draw(NAME), "unified_social_credit_code": None},
        "consignor": draw(party), "consignee": draw(party),
        "legs": [draw(legs(n)) for n in range(1, draw(st.integers(1, 3)) + 1)],
        "containers": draw(st.lists(containers, min_size=1, max_size=3)),
        "cargo_items": draw(st.lists(cargo, min_size=1, max_size=3)),
        "charges": [], "remarks": draw(optional(NAME)),
    })


@PROPERTY
@given(record=records(), version=st.integers(1, 50))
def test_render_then_parse_gives_the_record_back(
        adapter: IftminAdapter, record: dict[str, Any], version: int) -> None:
    result = adapter.parse(adapter.render({"header": {"document_version": version}, **record}))
    assert (result.record, result.document_version) == (record, version)


@PROPERTY
@given(record=records())
def test_every_record_it_carries_fits_the_schema(
        adapter: IftminAdapter, record: dict[str, Any]) -> None:
    event = {"header": event_header(adapter, 1), **record}
    assert SCHEMAS.decode(SCHEMAS.encode(adapter.schema_name, event)) == (
        adapter.schema_name, event)
