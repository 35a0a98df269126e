"""FAL 4 Crew's Effects Declaration adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterError, ParseResult
from adapters.fal4 import Fal4Adapter
from message_formats import AvroSchemas, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import broken, optional, pattern, tokens
from tests.unit.test_adapter_fal5 import (
    PROPERTY,
    RECEIVED,
    VOYAGE,
    event,
)

DATA = Path(__file__).parent.parent / "data" / "fal4"


@pytest.fixture(scope="module")
def adapter() -> Fal4Adapter:
    return Fal4Adapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- samples


def test_valid_arrival_maps_the_declaration(adapter: Fal4Adapter) -> None:
    result = adapter.parse(_sample("valid_arrival.xml"))
    record = result.record
    assert result.business_key == "9456783:0312E:A:CNSHA"
    assert {k: v for k, v in record.items() if k != "crew"} == {
        "arrival_or_departure": "Arrival",
        "ship": {
            "name": "PX EASTERN DAWN",
            "imo_number": "9456783",
            "call_sign": "VRQD4",
            "flag_state": "HK",
            "gross_tonnage": None,
            "net_tonnage": None,
        },
        "voyage_number": "0312E",
        "port_of_arrival_departure": "CNSHA",
        "date_time_of_arrival_departure": datetime(2026, 3, 14, 22, 30, tzinfo=UTC),
        "utc_offset_minutes": 480,
    }
    crew = record["crew"]
    assert len(crew) == 6
    assert crew[0] == {
        "family_name": "王",
        "given_names": "建国",
        "rank_or_rating": "Master 船长",
        "effects": [
            {
                "description": "Cigarettes, 200 per carton",
                "quantity": Decimal("2.000"),
                "unit_of_measure": "XCT",
            },
            {
                "description": "Laptop computer",
                "quantity": Decimal("1.000"),
                "unit_of_measure": "H87",
            },
        ],
    }
    assert crew[2]["effects"] == [
        {"description": "Gold jewellery", "quantity": Decimal("0.045"), "unit_of_measure": "KGM"}
    ]
    assert crew[4]["given_names"] is None


def test_nil_declaration(adapter: Fal4Adapter) -> None:
    assert adapter.parse(_sample("valid_nil_departure.xml")) == ParseResult(
        record={
            "arrival_or_departure": "Departure",
            "ship": {
                "name": "JADE PEARL",
                "imo_number": "9321483",
                "call_sign": "3EBY9",
                "flag_state": "PA",
                "gross_tonnage": None,
                "net_tonnage": None,
            },
            "voyage_number": "026S",
            "port_of_arrival_departure": "CNYTN",
            "date_time_of_arrival_departure": datetime(
                2026, 3, 16, 14, 15, 30, 250_000, tzinfo=UTC
            ),
            "utc_offset_minutes": 480,
            "crew": [],
        },
        business_key="9321483:026S:D:CNYTN",
        document_version=2,
        warnings=(),
    )


def test_quantity_rule_names_positions_only(adapter: Fal4Adapter) -> None:
    with pytest.raises(AdapterError) as caught:
        adapter.parse(_sample("zero_quantity.xml"))
    assert caught.value.message == "CrewMember[4]/Effect[2]/Quantity: must be positive"


# ---------------------------------------------------------------- render


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("crew",), None),
        (("crew", 0, "effects"), KeyError),
        (("crew", 0, "effects"), []),  # the schema wants at least one effect per member
        (("crew", 0, "effects", 0, "quantity"), 2),
        (("crew", 0, "rank_or_rating"), ""),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: Fal4Adapter, path: tuple[str | int, ...], value: Any
) -> None:
    record = adapter.parse(_sample("valid_arrival.xml")).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- property: round trips

EFFECT = st.fixed_dictionaries(
    {
        "description": tokens(256),
        "quantity": st.decimals(
            min_value=Decimal("0.001"), max_value=Decimal("999999999.999"), places=3
        ),
        "unit_of_measure": pattern(r"[A-Z0-9]{2,3}"),
    }
)

CREW_MEMBER_EFFECTS = st.fixed_dictionaries(
    {
        "family_name": tokens(70),
        "given_names": optional(tokens(70)),
        "rank_or_rating": tokens(35),
        "effects": st.lists(EFFECT, min_size=1, max_size=4),
    }
)

CANONICAL_FAL4 = st.fixed_dictionaries(
    {**VOYAGE, "crew": st.lists(CREW_MEMBER_EFFECTS, min_size=0, max_size=6)}
)


@PROPERTY
@given(record=CANONICAL_FAL4)
def test_parse_inverts_render(adapter: Fal4Adapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    assert result.business_key.startswith(record["ship"]["imo_number"] + ":")


@PROPERTY
@given(record=CANONICAL_FAL4, received=RECEIVED, version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas,
    adapter: Fal4Adapter,
    record: dict[str, Any],
    received: datetime,
    version: int,
) -> None:
    full = event(adapter, record, received, version)
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, full))
    assert name == adapter.schema_name
    assert decoded == full
    assert adapter.parse(adapter.render(decoded)).document_version == version
