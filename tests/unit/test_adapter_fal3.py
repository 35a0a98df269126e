"""FAL 3 Ship's Stores Declaration adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterError, ParseResult
from adapters.fal3 import Fal3Adapter
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import broken, optional, pattern, tokens
from tests.unit.test_adapter_fal5 import (
    LOCODE,
    PROPERTY,
    RECEIVED,
    VOYAGE,
    event,
)

DATA = Path(__file__).parent.parent / "data" / "fal3"


@pytest.fixture(scope="module")
def adapter() -> Fal3Adapter:
    return Fal3Adapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- samples


def test_valid_arrival_maps_the_declaration(adapter: Fal3Adapter) -> None:
    result = adapter.parse(_sample("valid_arrival.xml"))
    record = result.record
    assert result.business_key == "9456783:0317N:A:CNTAO"
    assert {k: v for k, v in record.items() if k != "articles"} == {
        "arrival_or_departure": "Arrival",
        "ship": {
            "name": "PX EASTERN DAWN",
            "imo_number": "9456783",
            "call_sign": "VRQD4",
            "flag_state": "HK",
            "gross_tonnage": None,
            "net_tonnage": None,
        },
        "voyage_number": "0317N",
        "port_of_arrival_departure": "CNTAO",
        "date_time_of_arrival_departure": datetime(2026, 3, 17, 6, 0, tzinfo=UTC),
        "utc_offset_minutes": 480,
        "last_port_of_call": "CNSHA",
        "next_port_of_call": None,
        "number_of_persons_on_board": 25,
        "period_of_stay_days": 2,
    }
    articles = record["articles"]
    assert len(articles) == 13
    assert articles[0] == {
        "name": "Very low sulphur fuel oil (0.5 % S)",
        "quantity": Decimal("1850.500"),
        "unit_of_measure": "TNE",
        "location_on_board": "Bunker tanks",
        "official_use": None,
    }
    assert articles[4]["name"] == "Rice 大米"
    assert articles[9] == {
        "name": "Whisky, 0.7 l bottles",
        "quantity": Decimal("24.000"),
        "unit_of_measure": "XBO",
        "location_on_board": "Bonded store",
        "official_use": "Sealed by Qingdao Customs, seal no. QD-2026-031705 青岛海关加封",
    }


def test_valid_departure_maps_every_field(adapter: Fal3Adapter) -> None:
    assert adapter.parse(_sample("valid_departure.xml")) == ParseResult(
        record={
            "arrival_or_departure": "Departure",
            "ship": {
                "name": "JADE PEARL",
                "imo_number": "9321483",
                "call_sign": "3EBY9",
                "flag_state": "PA",
                "gross_tonnage": 9957,
                "net_tonnage": 5120,
            },
            "voyage_number": "026S",
            "port_of_arrival_departure": "CNYTN",
            "date_time_of_arrival_departure": datetime(2026, 3, 16, 22, 15, 30, tzinfo=UTC),
            "utc_offset_minutes": 0,
            "last_port_of_call": None,
            "next_port_of_call": "SGSIN",
            "number_of_persons_on_board": 21,
            "period_of_stay_days": None,
            "articles": [
                {
                    "name": "Marine gas oil",
                    "quantity": Decimal("96.500"),
                    "unit_of_measure": "TNE",
                    "location_on_board": "Bunker tanks",
                    "official_use": None,
                },
                {
                    "name": "Cigarettes",
                    "quantity": Decimal("12.000"),
                    "unit_of_measure": "XCT",
                    "location_on_board": "Bonded store",
                    "official_use": "Seal YT-0311 intact",
                },
            ],
        },
        business_key="9321483:026S:D:CNYTN",
        document_version=2,
        warnings=(),
    )


def test_quantities_have_the_canonical_scale(adapter: Fal3Adapter) -> None:
    quantities = [
        a["quantity"] for a in adapter.parse(_sample("valid_arrival.xml")).record["articles"]
    ]
    assert all(q.as_tuple().exponent == -3 for q in quantities)


@pytest.mark.parametrize("quantity", [b"+1", b"1e3", b"1.", b".5", b"1 000", b"1234567890"])
def test_quantity_lexical_forms_are_checked(adapter: Fal3Adapter, quantity: bytes) -> None:
    data = _sample("valid_arrival.xml").replace(b"<Quantity>60<", b"<Quantity>" + quantity + b"<")
    with pytest.raises(FormatError) as caught:
        adapter.parse(data)
    assert caught.value.code == "XSD_INVALID"


# ---------------------------------------------------------------- render


def test_render_writes_plain_decimals_at_the_canonical_scale(adapter: Fal3Adapter) -> None:
    record = adapter.parse(_sample("valid_departure.xml")).record
    record["articles"][0]["quantity"] = Decimal("1E+2")
    rendered = adapter.render(record)
    assert b"<Quantity>100.000</Quantity>" in rendered
    assert b"<Quantity>12.000</Quantity>" in rendered


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("articles",), KeyError),
        (("articles", 0, "quantity"), 96.5),
        (("articles", 0, "quantity"), "96.5"),
        (("articles", 0, "quantity"), Decimal("96.5001")),
        (("articles", 0, "quantity"), Decimal("NaN")),
        (("articles", 0, "quantity"), Decimal("1E+12")),
        (("articles", 0, "unit_of_measure"), "kg"),
        (("period_of_stay_days",), -1),
        (("number_of_persons_on_board",), "21"),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: Fal3Adapter, path: tuple[str | int, ...], value: Any
) -> None:
    record = adapter.parse(_sample("valid_departure.xml")).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- property: round trips

QUANTITY = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("999999999.999"), places=3)

ARTICLE = st.fixed_dictionaries(
    {
        "name": tokens(256),
        "quantity": QUANTITY,
        "unit_of_measure": pattern(r"[A-Z0-9]{2,3}"),
        "location_on_board": tokens(70),
        "official_use": optional(tokens(512)),
    }
)

CANONICAL_FAL3 = st.fixed_dictionaries(
    {
        **VOYAGE,
        "last_port_of_call": optional(LOCODE),
        "next_port_of_call": optional(LOCODE),
        "number_of_persons_on_board": st.integers(0, 99_999),
        "period_of_stay_days": optional(st.integers(0, 9999)),
        "articles": st.lists(ARTICLE, min_size=1, max_size=8),
    }
)


@PROPERTY
@given(record=CANONICAL_FAL3)
def test_parse_inverts_render(adapter: Fal3Adapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    assert result.business_key.startswith(record["ship"]["imo_number"] + ":")


@PROPERTY
@given(record=CANONICAL_FAL3, received=RECEIVED, version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas,
    adapter: Fal3Adapter,
    record: dict[str, Any],
    received: datetime,
    version: int,
) -> None:
    full = event(adapter, record, received, version)
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, full))
    assert name == adapter.schema_name
    assert decoded == full
    assert adapter.parse(adapter.render(decoded)).document_version == version
