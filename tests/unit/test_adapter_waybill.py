from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterError, ParseResult
from adapters.iso6346 import with_check_digit
from adapters.waybill import MultimodalWaybillAdapter, is_valid_unified_social_credit_code
from message_formats import AvroSchemas, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import PROPERTY, broken, event_header, optional, pattern, tokens

DATA = Path(__file__).parent.parent / "data" / "waybill"


@pytest.fixture(scope="module")
def adapter() -> MultimodalWaybillAdapter:
    return MultimodalWaybillAdapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _cst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A China Standard Time wall-clock time as the UTC instant the record holds."""
    china = timezone(timedelta(hours=8))
    return datetime(year, month, day, hour, minute, tzinfo=china).astimezone(UTC)


# ---------------------------------------------------------------- samples


def test_valid_booked_maps_every_field(adapter: MultimodalWaybillAdapter) -> None:
    no_actuals = {
        "planned_departure_local": None,
        "planned_arrival_local": None,
        "actual_departure": None,
        "actual_departure_utc_offset_minutes": None,
        "actual_arrival": None,
        "actual_arrival_utc_offset_minutes": None,
    }
    assert adapter.parse(_sample("valid_booked.xml")) == ParseResult(
        record={
            "waybill_number": "CQ-MT-2026-00318",
            "status": "booked",
            "operator": {
                "name": "重庆长江多式联运有限公司",
                "unified_social_credit_code": "91310000607201753X",
            },
            "consignor": {"name": "重庆川渝汽车配件有限公司", "contact": "陈静 023-5555 0789"},
            "consignee": {"name": "宁波东方汽车零部件有限公司", "contact": "赵磊 0574-5555 0321"},
            "legs": [
                {
                    "sequence_number": 1,
                    "mode": "inland_water",
                    "carrier": "重庆长江轮船有限公司",
                    "origin": {"un_locode": "CNCKG", "station_code": None, "name": "重庆果园港"},
                    "destination": {
                        "un_locode": "CNSHA",
                        "station_code": None,
                        "name": "上海外高桥港区",
                    },
                    "planned_departure": _cst(2026, 3, 18, 10),
                    "planned_departure_utc_offset_minutes": 480,
                    "planned_arrival": _cst(2026, 3, 27, 16),
                    "planned_arrival_utc_offset_minutes": 480,
                    **no_actuals,
                },
                {
                    "sequence_number": 2,
                    "mode": "road",
                    "carrier": "上海港集卡运输有限公司",
                    "origin": {"un_locode": "CNSHA", "station_code": None, "name": None},
                    "destination": {
                        "un_locode": "CNNGB",
                        "station_code": None,
                        "name": "宁波保税区仓库",
                    },
                    "planned_departure": _cst(2026, 3, 28, 8),
                    "planned_departure_utc_offset_minutes": 480,
                    "planned_arrival": _cst(2026, 3, 28, 14, 30),
                    "planned_arrival_utc_offset_minutes": 480,
                    **no_actuals,
                },
            ],
            "containers": [
                {"container_number": "TCNU3618528", "size_type": "22G1", "seal_numbers": []}
            ],
            "cargo_items": [
                {
                    "description": "汽车制动盘 Brake discs for motor vehicles",
                    "number_of_packages": 36,
                    "kind_of_packages": "PX",
                    "gross_weight_kg": Decimal("21480.250"),
                    "volume_m3": None,
                }
            ],
            "charges": [],
            "remarks": None,
        },
        business_key="CQ-MT-2026-00318",
        document_version=1,
        warnings=(),
    )


def test_valid_delivered(adapter: MultimodalWaybillAdapter) -> None:
    record = adapter.parse(_sample("valid_delivered.xml")).record
    assert record["status"] == "delivered"
    rail, sea, road = record["legs"]
    assert rail["mode"] == "rail"
    assert rail["origin"] == {"un_locode": None, "station_code": "ZAF", "name": "郑州圃田站"}
    assert sea["actual_arrival"] == datetime(2026, 3, 15, 20, 45, 30, 250_000, tzinfo=UTC)
    assert sea["actual_arrival_utc_offset_minutes"] == 480
    assert road["destination"]["un_locode"] == "CNDGG"
    assert [c["amount"] for c in record["charges"]] == [
        Decimal("12800.00"),
        Decimal("9600.00"),
        Decimal("2400.50"),
    ]
    assert {c["currency"] for c in record["charges"]} == {"CNY"}
    assert record["cargo_items"][0]["volume_m3"] == Decimal("132.500")


def _delivered_with(old: bytes, new: bytes) -> bytes:
    data = _sample("valid_delivered.xml")
    assert data.count(old) == 1, old
    return data.replace(old, new)


_LAST_ARRIVAL = b"\n    <ActualArrival>2026-03-16T19:20:00+08:00</ActualArrival>"
_LAST_DEPARTURE = b"\n    <ActualDeparture>2026-03-16T15:05:00+08:00</ActualDeparture>"


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        # in transit although every leg has arrived: the status update may lag
        (b">delivered<", b">in-transit<", None),
        # delivered although the last leg is still under way, or has not left yet
        (_LAST_ARRIVAL, b"", "RULE_CONDITIONAL"),
        (_LAST_DEPARTURE + _LAST_ARRIVAL, b"", "RULE_CONDITIONAL"),
        # cancelled is possible at any point
        (b">delivered<", b">cancelled<", None),
        # an arrival without its departure
        (_LAST_DEPARTURE, b"", "RULE_CONDITIONAL"),
        # the actual arrival of a leg before its own departure
        (
            b"<ActualArrival>2026-03-16T19:20:00+08:00<",
            b"<ActualArrival>2026-03-16T15:05:00+08:00<",
            "RULE_DATES_ORDER",
        ),
    ],
)
def test_status_and_actual_times(
    adapter: MultimodalWaybillAdapter, old: bytes, new: bytes, code: str | None
) -> None:
    data = _delivered_with(old, new)
    if code is None:
        assert adapter.parse(data).record["legs"][2]["actual_arrival"] is not None
        return
    with pytest.raises(AdapterError) as caught:
        adapter.parse(data)
    assert caught.value.code == code


def test_in_transit_needs_the_first_departure(adapter: MultimodalWaybillAdapter) -> None:
    data = _sample("valid_booked.xml").replace(b">booked<", b">in-transit<")
    with pytest.raises(AdapterError) as caught:
        adapter.parse(data)
    assert caught.value.code == "RULE_CONDITIONAL"
    assert caught.value.line == 5


def test_in_transit_mid_way(adapter: MultimodalWaybillAdapter) -> None:
    data = _delivered_with(_LAST_DEPARTURE + _LAST_ARRIVAL, b"").replace(
        b">delivered<", b">in-transit<"
    )
    record = adapter.parse(data).record
    assert record["status"] == "in_transit"
    assert record["legs"][2]["actual_departure"] is None


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("91350100M000100Y43", True),  # the example of GB 32100-2015
        ("91350100M000100Y44", False),
        ("91330200144069187X", True),
        ("91330200144069187Y", False),
        ("91310115MA1K3Y2B6C", True),
        ("91350100m000100Y43", False),
        ("91350100M000100Y4", False),
        ("91350100M000100Y433", False),
        ("9135010OM000100Y43", False),  # O is not in the alphabet
        ("", False),
    ],
)
def test_unified_social_credit_codes(code: str, valid: bool) -> None:
    assert is_valid_unified_social_credit_code(code) is valid


# ---------------------------------------------------------------- render


def test_render_spells_enums_as_the_xml_does(adapter: MultimodalWaybillAdapter) -> None:
    rendered = adapter.render(adapter.parse(_sample("valid_booked.xml")).record)
    assert rendered.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert b"<Mode>inland-water</Mode>" in rendered
    assert b"<Status>booked</Status>" in rendered
    assert b"<PlannedArrival>2026-03-28T14:30:00+08:00</PlannedArrival>" in rendered


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("status",), "in-transit"),  # the XML spelling, not the Avro symbol
        (("legs", 0, "mode"), "inland-water"),
        (("legs",), []),
        (("containers",), []),
        (("legs", 0, "origin", "station_code"), "CKG"),  # both codes
        (("legs", 0, "origin", "un_locode"), None),  # neither code
        (("legs", 0, "actual_departure"), datetime(2026, 3, 18, 2, tzinfo=UTC)),  # no offset
        (("legs", 0, "actual_departure_utc_offset_minutes"), 480),  # offset alone
        (("charges",), [{"item": "港杂费", "amount": Decimal("1.005"), "currency": "CNY"}]),
        (("charges",), [{"item": "港杂费", "amount": Decimal("1.00"), "currency": "cny"}]),
        (("operator", "unified_social_credit_code"), "9131000060720175"),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: MultimodalWaybillAdapter, path: tuple[Any, ...], value: Any
) -> None:
    record = adapter.parse(_sample("valid_booked.xml")).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- property: round trips

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [3**i % 31 for i in range(17)]  # GB 32100: 3^(i) mod 31


def _uscc_with_check_character(first_17: str) -> str:
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(first_17, _USCC_WEIGHTS, strict=True))
    return first_17 + _USCC_ALPHABET[(31 - total % 31) % 31]


_USCC = pattern(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{9}").map(
    _uscc_with_check_character
)
_OFFSET = st.integers(-14 * 60, 14 * 60)
_GAP = st.integers(1, 10 * 24 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms))
_START = st.datetimes(
    min_value=datetime(1901, 1, 1), max_value=datetime(2098, 1, 1), timezones=st.just(UTC)
).map(lambda dt: dt.replace(microsecond=dt.microsecond // 1000 * 1000))
_PLACE = st.one_of(
    st.fixed_dictionaries(
        {
            "un_locode": pattern(r"[A-Z]{2}[A-Z2-9]{3}"),
            "station_code": st.none(),
            "name": optional(tokens(70)),
        }
    ),
    st.fixed_dictionaries(
        {
            "un_locode": st.none(),
            "station_code": pattern(r"[A-Z]{3}"),
            "name": optional(tokens(70)),
        }
    ),
)


@st.composite
def _progress(draw: st.DrawFn, status: str, legs: int) -> tuple[int, bool]:
    """How far the carriage has got, as (legs completed, next leg under way), for a status:
    nothing while booked, all of it once delivered, at least the first departure in
    transit, anything when cancelled."""
    if status == "booked":
        return 0, False
    if status == "delivered":
        return legs, False
    if status == "in_transit":
        return draw(st.integers(0, legs - 1)), True
    completed = draw(st.integers(0, legs))
    return completed, completed < legs and draw(st.booleans())


@st.composite
def _legs(draw: st.DrawFn, status: str) -> list[dict[str, Any]]:
    """Legs in time order: planned times one after another from a start, actual times
    likewise, filled in as far as the status says the carriage has got."""
    count = draw(st.integers(1, 4))
    completed, under_way = draw(_progress(status, count))
    planned = draw(_START)
    actual = draw(_START)
    legs = []
    for index in range(count):
        planned_departure = planned + draw(_GAP)
        planned = planned_departure + draw(_GAP)
        leg = {
            "sequence_number": index + 1,
            "mode": draw(st.sampled_from(["sea", "rail", "road", "inland_water", "air"])),
            "carrier": draw(tokens(140)),
            "origin": draw(_PLACE),
            "destination": draw(_PLACE),
            "planned_departure": planned_departure,
            "planned_departure_utc_offset_minutes": draw(_OFFSET),
            "planned_arrival": planned,
            "planned_arrival_utc_offset_minutes": draw(_OFFSET),
            "planned_departure_local": None,
            "planned_arrival_local": None,
            "actual_departure": None,
            "actual_departure_utc_offset_minutes": None,
            "actual_arrival": None,
            "actual_arrival_utc_offset_minutes": None,
        }
        if index < completed or (index == completed and under_way):
            actual += draw(_GAP)
            leg["actual_departure"] = actual
            leg["actual_departure_utc_offset_minutes"] = draw(_OFFSET)
        if index < completed:
            actual += draw(_GAP)
            leg["actual_arrival"] = actual
            leg["actual_arrival_utc_offset_minutes"] = draw(_OFFSET)
        legs.append(leg)
    return legs


@st.composite
def canonical_waybill(draw: st.DrawFn) -> dict[str, Any]:
    status = draw(st.sampled_from(["booked", "in_transit", "delivered", "cancelled"]))
    return {
        "waybill_number": draw(pattern(r"[A-Za-z0-9][A-Za-z0-9/.\-]{0,34}")),
        "status": status,
        "operator": {"name": draw(tokens(140)), "unified_social_credit_code": draw(_USCC)},
        "consignor": {"name": draw(tokens(140)), "contact": draw(tokens(256))},
        "consignee": {"name": draw(tokens(140)), "contact": draw(tokens(256))},
        "legs": draw(_legs(status)),
        "containers": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "container_number": pattern(r"[A-Z]{3}[UJZ][0-9]{6}").map(
                            with_check_digit
                        ),
                        "size_type": pattern(r"[0-9A-Z][0-9A-Z][A-Z][0-9A-Z]"),
                        "seal_numbers": st.lists(
                            pattern(r"[A-Za-z0-9][A-Za-z0-9/\-]{0,34}"), max_size=2
                        ),
                    }
                ),
                min_size=1,
                max_size=3,
            )
        ),
        "cargo_items": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "description": tokens(512),
                        "number_of_packages": st.integers(0, 99_999_999),
                        "kind_of_packages": pattern(r"[0-9A-Z]{2}"),
                        "gross_weight_kg": st.decimals(
                            min_value=0,
                            max_value=Decimal("999999999999.999"),
                            places=3,
                            allow_nan=False,
                        ),
                        "volume_m3": optional(
                            st.decimals(
                                min_value=0,
                                max_value=Decimal("999999999.999"),
                                places=3,
                                allow_nan=False,
                            )
                        ),
                    }
                ),
                min_size=1,
                max_size=3,
            )
        ),
        "charges": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "item": tokens(70),
                        "amount": st.decimals(
                            min_value=0,
                            max_value=Decimal("9999999999999.99"),
                            places=2,
                            allow_nan=False,
                        ),
                        "currency": pattern(r"[A-Z]{3}"),
                    }
                ),
                max_size=3,
            )
        ),
        "remarks": draw(optional(tokens(512))),
    }


@PROPERTY
@given(record=canonical_waybill())
def test_parse_inverts_render(adapter: MultimodalWaybillAdapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    assert result.business_key == record["waybill_number"]



@PROPERTY
@given(record=canonical_waybill(), version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas,
    adapter: MultimodalWaybillAdapter,
    record: dict[str, Any],
    version: int,
) -> None:
    event = {"header": event_header(adapter, version), **record}
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, event))
    assert name == adapter.schema_name
    assert decoded == event
    assert adapter.parse(adapter.render(decoded)).document_version == version


# ---------------------------------------------------------------- canonical schema files

