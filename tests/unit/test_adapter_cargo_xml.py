"""IATA Cargo-XML waybills (cargo-xml): the AWB check digit, the mapping of flights and
items, detection by root, and round trips of generated canonical records through XFWB/XFZB
and Avro."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import (
    AdapterError,
    AdapterRegistry,
    CargoXmlAdapter,
    FormatDetector,
    RenderError,
    is_valid_awb_number,
)
from message_formats import AvroSchemas, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import (
    PROPERTY,
    assert_survives_avro,
    broken,
    optional,
    pattern,
    tokens,
)

DATA = Path(__file__).parents[1] / "data" / "cargo-xml"


@pytest.fixture(scope="module")
def adapter() -> CargoXmlAdapter:
    return CargoXmlAdapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize(("number", "valid"), [
    ("999-12345675", True), ("99912345675", True), ("888-11111111", True),
    ("999-12345676", False), ("999-1234567", False), ("99-123456755", False),
    ("999-1234567A", False), ("999 12345675", False),
])
def test_awb_check_digit(number: str, valid: bool) -> None:
    assert is_valid_awb_number(number) is valid


def test_an_air_waybill_maps_its_flights_and_items(adapter: CargoXmlAdapter) -> None:
    record = adapter.parse(sample("valid_xfwb_two_flights.xml")).record
    assert (record["waybill_number"], record["master_waybill_number"]) == ("999-12345675", None)
    assert [(leg["origin"]["station_code"], leg["destination"]["station_code"],
             leg["conveyance_reference"], leg["mode"]) for leg in record["legs"]] == [
        ("PVG", "DXB", "XX0101", "air"), ("DXB", "FRA", "XX0045", "air")]
    first = record["legs"][0]
    # No offset in the message: the time stays local, no instant is invented.
    assert (first["planned_departure"], first["planned_departure_local_time"]) == (
        None, "2026-03-11T01:30:00")
    (item,) = record["cargo_items"]
    assert (item["number_of_packages"], item["gross_weight_kg"], item["volume_m3"]) == (
        3, Decimal("1042.500"), Decimal("2.602"))  # 2,602,000 cm3
    assert item["description"] == "CONSOLIDATION AS PER ATTACHED MANIFEST"
    assert record["consignor"]["contact"] == "86215550100"
    assert record["operator"] is None and record["containers"] == []


def test_a_house_waybill_names_its_master_and_keeps_offsets(adapter: CargoXmlAdapter) -> None:
    result = adapter.parse(sample("valid_xfzb_house.xml"))
    record = result.record
    assert result.business_key == "999-76543213/HSE26-00017"
    (leg,) = record["legs"]
    assert (leg["planned_departure"], leg["planned_departure_utc_offset_minutes"]) == (
        datetime(2026, 5, 1, 0, 5, tzinfo=UTC), 540)
    assert record["total_gross_weight_kg"] == Decimal("134.037")  # 295.5 lb
    assert record["total_number_of_pieces"] == 10


def test_a_weight_beyond_the_canonical_precision_is_refused(adapter: CargoXmlAdapter) -> None:
    data = sample("valid_xfwb_two_flights.xml").replace(
        b'<GrossWeightMeasure unitCode="KGM">1042.5<', b'<GrossWeightMeasure unitCode="KGM">'
        b'1000000000<')
    with pytest.raises(AdapterError) as caught:
        adapter.parse(data)
    assert caught.value.code == "STRUCTURE_NUMBER_INVALID"


def test_what_cargo_xml_cannot_state_is_not_rendered(adapter: CargoXmlAdapter) -> None:
    record = adapter.parse(sample("valid_xfwb_two_flights.xml")).record
    with pytest.raises(RenderError):
        adapter.render(broken(record, ("remarks",), "a remark"))
    with pytest.raises(RenderError):
        adapter.render(broken(record, ("operator",), {"name": "X", "address": None,
                                                      "unified_social_credit_code": None}))
    with pytest.raises(RenderError):  # the piece total no longer adds up
        adapter.render(broken(record, ("total_number_of_pieces",), 4))


@pytest.mark.parametrize("name", ["valid_xfwb_two_flights.xml", "valid_xfzb_house.xml"])
def test_waybills_are_detected_by_their_roots(name: str) -> None:
    registry = AdapterRegistry.default(xsd_store=XsdStore(), xml_parser=SafeXmlParser())
    assert FormatDetector(registry).detect(sample(name)).format_id == "cargo-xml"


# ---------------------------------------------------------------- round trips


_AIRPORT = st.fixed_dictionaries({"un_locode": st.none(), "station_code": pattern(r"[A-Z]{3}"),
                                  "name": optional(tokens(512))})
_ADDRESS = st.fixed_dictionaries({
    "street": tokens(512), "street_number": st.none(), "post_code": optional(tokens(35)),
    "city": tokens(512), "country_code": pattern(r"[A-Z]{2}")})
_PARTY = st.fixed_dictionaries({
    "name": tokens(512), "contact": optional(pattern(r"\+?[0-9]{6,15}")),
    "address": optional(_ADDRESS), "identifying_codes": st.just([])})
_OFFSET = st.integers(-14 * 4, 14 * 4).map(lambda quarters: quarters * 15)
_INSTANT = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda t: t.replace(microsecond=0, tzinfo=UTC))
_LOCAL = pattern(r"20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T"
                 r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
_CARGO = st.fixed_dictionaries({
    "description": tokens(512), "number_of_packages": st.integers(0, 99_999),
    "kind_of_packages": st.none(),
    "gross_weight_kg": st.decimals(min_value=0, max_value=Decimal("999999999.999"), places=3),
    "volume_m3": optional(st.decimals(min_value=0, max_value=Decimal("99999.999"), places=3)),
    "package_description": st.none(), "booking_reference": st.none(),
    "hs_codes": st.lists(pattern(r"[0-9]{6,10}"), max_size=1), "equipment_reference": st.none(),
})


@st.composite
def _times(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    planned = f"planned_{kind}"
    fields: dict[str, Any] = {planned: None, f"{planned}_utc_offset_minutes": None,
                              f"{planned}_local_time": None}
    how = draw(st.sampled_from(["none", "local", "instant"]))
    if how == "local":
        fields[f"{planned}_local_time"] = draw(_LOCAL)
    elif how == "instant":
        fields[planned] = draw(_INSTANT)
        fields[f"{planned}_utc_offset_minutes"] = draw(_OFFSET)
    return fields


@st.composite
def _leg(draw: st.DrawFn, sequence: int) -> dict[str, Any]:
    leg = {
        "sequence_number": sequence, "mode": "air", "carrier": draw(pattern(r"[A-Z0-9]{2}")),
        "origin": draw(_AIRPORT), "destination": draw(_AIRPORT),
        **draw(_times("departure")), **draw(_times("arrival")),
        "actual_departure": None, "actual_departure_utc_offset_minutes": None,
        "actual_arrival": None, "actual_arrival_utc_offset_minutes": None,
        "planned_departure_date": None, "planned_arrival_date": None, "vessel_name": None,
        "conveyance_reference": draw(pattern(r"[A-Z0-9]{2}[0-9]{1,4}[A-Z]?")),
    }
    departs, arrives = leg["planned_departure"], leg["planned_arrival"]
    if departs is not None and arrives is not None and arrives <= departs:
        leg["planned_arrival"] = departs + timedelta(hours=draw(st.integers(1, 20)))
    return leg


_AWB = st.integers(0, 9_999_999).flatmap(
    lambda serial: pattern(r"[0-9]{3}").map(lambda prefix: f"{prefix}-{serial:07d}{serial % 7}"))


@st.composite
def cargo_waybill(draw: st.DrawFn) -> dict[str, Any]:
    """A canonical waybill that an XFWB (or, with a master number, an XFZB) can state."""
    house = draw(st.booleans())
    items = draw(st.lists(_CARGO, max_size=3))
    legs = [draw(_leg(n + 1)) for n in range(draw(st.integers(0, 3)))]
    return {
        "waybill_number": draw(pattern(r"[A-Z0-9][A-Z0-9\-]{0,15}") if house else _AWB),
        "status": None, "operator": None,
        "consignor": draw(_PARTY), "consignee": draw(_PARTY),
        "legs": legs, "containers": [], "cargo_items": items, "charges": [],
        "remarks": None, "transport_document": None, "notify_parties": [],
        "master_waybill_number": draw(_AWB) if house else None,
        "origin": draw(_AIRPORT), "destination": draw(_AIRPORT),
        "total_number_of_pieces": (sum(i["number_of_packages"] for i in items) if items
                                   else draw(st.integers(0, 9999))),
        "total_gross_weight_kg": draw(optional(
            st.decimals(min_value=0, max_value=Decimal("999999999.999"), places=3))),
    }


@PROPERTY
@given(record=cargo_waybill())
def test_parse_inverts_render(adapter: CargoXmlAdapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    assert result.business_key == (
        record["waybill_number"] if record["master_waybill_number"] is None
        else f"{record['master_waybill_number']}/{record['waybill_number']}")


@PROPERTY
@given(record=cargo_waybill(), version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
        schemas: AvroSchemas, adapter: CargoXmlAdapter, record: dict[str, Any],
        version: int) -> None:
    assert_survives_avro(schemas, adapter, record, version)
