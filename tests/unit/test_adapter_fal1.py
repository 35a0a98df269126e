from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import (
    AdapterError,
    Fal1Adapter,
    ParseResult,
    is_valid_imo_number,
)
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import (
    broken,
    event_header,
    imo_with_check_digit,
    optional,
    pattern,
    tokens,
)

DATA = Path(__file__).parent.parent / "data" / "fal1"


@pytest.fixture(scope="module")
def adapter() -> Fal1Adapter:
    return Fal1Adapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- samples


def test_valid_arrival_maps_every_field(adapter: Fal1Adapter) -> None:
    result = adapter.parse(_sample("valid_arrival.xml"))
    assert result == ParseResult(
        record={
            "document_number": "GD-CNSHA-2026-000451",
            "arrival_or_departure": "Arrival",
            "ship": {
                "name": "PX HARMONY",
                "imo_number": "9074729",
                "call_sign": "VRAB7",
                "flag_state": "HK",
                "gross_tonnage": 40541,
                "net_tonnage": 24089,
            },
            "voyage_number": "V2611",
            "port_of_arrival_departure": "CNSHA",
            "date_time_of_arrival_departure": datetime(2026, 3, 14, 22, 30, tzinfo=UTC),
            "utc_offset_minutes": 480,
            "last_port_of_call": "KRPUS",
            "next_port_of_call": "CNNGB",
            "master_name": "ZHANG Wei 张伟",
            "ship_agent": {
                "name": "Shanghai Ocean Shipping Agency Co., Ltd. 上海外轮代理有限公司",
                "contact": "+86 21 5555 0100, ops@agency.example.cn",
            },
            # xs:token: the sample's line breaks and indentation collapse.
            "brief_cargo_description": (
                "Containers, 2,150 TEU: general cargo and reefers; no dangerous goods."
            ),
            "crew_count": 22,
            "passenger_count": 0,
            "remarks": "Pilot boarding at Wusongkou anchorage. 吴淞口锚地登轮。",
        },
        business_key="9074729:V2611:A:CNSHA",
        document_version=1,
        warnings=(),
    )


def test_valid_departure_leaves_absent_optionals_null(adapter: Fal1Adapter) -> None:
    record = adapter.parse(_sample("valid_departure.xml")).record
    assert record["last_port_of_call"] is None
    assert record["remarks"] is None
    assert record["ship"]["net_tonnage"] is None
    assert record["ship_agent"]["contact"] is None
    assert record["date_time_of_arrival_departure"] == datetime(
        2026, 3, 16, 14, 15, 30, 250_000, tzinfo=UTC
    )


def test_rule_errors_are_adapter_errors_naming_the_field_not_the_value(
    adapter: Fal1Adapter,
) -> None:
    with pytest.raises(AdapterError, match=r"Ship/ImoNumber: .*check digit") as caught:
        adapter.parse(_sample("bad_imo_check_digit.xml"))
    assert "9074728" not in caught.value.message


def test_net_tonnage_above_gross_is_a_warning(adapter: Fal1Adapter) -> None:
    data = _sample("valid_arrival.xml").replace(b">24089<", b">50000<")
    result = adapter.parse(data)
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("WARN_NET_TONNAGE_ABOVE_GROSS")


def test_whitespace_in_codes_is_invalid_but_collapses_in_text(adapter: Fal1Adapter) -> None:
    with pytest.raises(FormatError, match=r"XSD_INVALID|pattern"):
        adapter.parse(_sample("valid_arrival.xml").replace(b">CNSHA<", b"> CNSHA<"))
    spaced = _sample("valid_arrival.xml").replace(b">PX HARMONY<", b">\n PX\t\tHARMONY  <")
    assert adapter.parse(spaced).record["ship"]["name"] == "PX HARMONY"


def test_instant_normalised_to_utc_with_offset_kept(adapter: Fal1Adapter) -> None:
    data = _sample("valid_arrival.xml").replace(
        b"2026-03-15T06:30:00+08:00", b" 2026-03-14T17:00:00.5-05:30 "
    )
    record = adapter.parse(data).record
    assert record["date_time_of_arrival_departure"] == datetime(
        2026, 3, 14, 22, 30, 0, 500_000, tzinfo=UTC
    )
    assert record["utc_offset_minutes"] == -330


def test_comment_inside_a_value_does_not_truncate_it(adapter: Fal1Adapter) -> None:
    data = _sample("valid_arrival.xml").replace(b">PX HARMONY<", b">PX <!-- x -->HARMONY<")
    assert adapter.parse(data).record["ship"]["name"] == "PX HARMONY"


def test_another_root_element_is_invalid(adapter: Fal1Adapter) -> None:
    with pytest.raises(FormatError) as caught:
        adapter.parse(b'<CrewList xmlns="urn:px:fal:5"/>')
    assert caught.value.code == "XSD_INVALID"


@pytest.mark.parametrize(
    ("imo", "valid"),
    [
        ("9074729", True),
        ("9074728", False),
        ("9321483", True),
        ("1234567", True),  # 1*7+2*6+3*5+4*4+5*3+6*2 = 77 -> 7
        ("0000000", True),
        ("907472", False),
        ("90747290", False),
        ("907472A", False),
        ("９０７４７２９", False),
    ],
)
def test_imo_check_digit(imo: str, valid: bool) -> None:
    assert is_valid_imo_number(imo) is valid


# ---------------------------------------------------------------- render


def test_render_is_utf8_xml_with_declaration(adapter: Fal1Adapter) -> None:
    record = adapter.parse(_sample("valid_arrival.xml")).record
    rendered = adapter.render(record)
    assert rendered.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "张伟".encode() in rendered
    assert b"2026-03-15T06:30:00+08:00" in rendered


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("ship",), KeyError),
        (("ship", "imo_number"), 9074729),
        (("port_of_arrival_departure",), "Shanghai"),
        (("date_time_of_arrival_departure",), datetime(2026, 3, 15, 6, 30)),  # naive
        (("date_time_of_arrival_departure",), "2026-03-15T06:30:00+08:00"),
        (("utc_offset_minutes",), 15 * 60),
        (("crew_count",), "22"),
        (("crew_count",), True),
        (("master_name",), "bell\x07"),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: Fal1Adapter, path: tuple[str, ...], value: Any
) -> None:
    record = adapter.parse(_sample("valid_arrival.xml")).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- property: round trips

_LOCODE = pattern(r"[A-Z]{2}[A-Z2-9]{3}")
_INSTANT = st.datetimes(
    min_value=datetime(1901, 1, 1), max_value=datetime(2098, 12, 31), timezones=st.just(UTC)
).map(lambda dt: dt.replace(microsecond=dt.microsecond // 1000 * 1000))


CANONICAL_FAL1 = st.fixed_dictionaries(
    {
        "document_number": tokens(35),
        "arrival_or_departure": st.sampled_from(["Arrival", "Departure"]),
        "ship": st.fixed_dictionaries(
            {
                "name": tokens(70),
                "imo_number": st.integers(0, 999_999).map(imo_with_check_digit),
                "call_sign": pattern(r"[A-Z0-9]{2,10}"),
                "flag_state": pattern(r"[A-Z]{2}"),
                "gross_tonnage": optional(st.integers(0, 999_999)),
                "net_tonnage": optional(st.integers(0, 999_999)),
            }
        ),
        "voyage_number": pattern(r"[A-Za-z0-9][A-Za-z0-9/.\-]{0,16}"),
        "port_of_arrival_departure": _LOCODE,
        "date_time_of_arrival_departure": _INSTANT,
        "utc_offset_minutes": st.integers(-14 * 60, 14 * 60),
        "last_port_of_call": optional(_LOCODE),
        "next_port_of_call": optional(_LOCODE),
        "master_name": tokens(70),
        "ship_agent": st.fixed_dictionaries(
            {"name": tokens(140), "contact": optional(tokens(256))}
        ),
        "brief_cargo_description": tokens(512),
        "crew_count": st.integers(1, 99_999),
        "passenger_count": st.integers(0, 99_999),
        "remarks": optional(tokens(512)),
    }
)

_PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_PROPERTY
@given(record=CANONICAL_FAL1)
def test_parse_inverts_render(adapter: Fal1Adapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    assert result.business_key.startswith(record["ship"]["imo_number"] + ":")


@_PROPERTY
@given(record=CANONICAL_FAL1, received=_INSTANT, version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas,
    adapter: Fal1Adapter,
    record: dict[str, Any],
    received: datetime,
    version: int,
) -> None:
    event = {"header": event_header(adapter, version, received_at=received), **record}
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, event))
    assert name == adapter.schema_name
    assert decoded == event
    assert adapter.parse(adapter.render(decoded)).document_version == version


def test_render_round_trips_at_the_edges_of_the_time_range(adapter: Fal1Adapter) -> None:
    record = adapter.parse(_sample("valid_departure.xml")).record
    for instant, offset in [
        (datetime(1900, 1, 1, 14, tzinfo=UTC), 14 * 60),
        (datetime(2099, 12, 31, 9, 59, 59, 999_000, tzinfo=UTC), -14 * 60),
        (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=1), 0),
    ]:
        edge = {**record, "date_time_of_arrival_departure": instant, "utc_offset_minutes": offset}
        assert adapter.parse(adapter.render(edge)).record == edge


def test_a_declared_gbk_encoding_is_honoured(adapter: Fal1Adapter) -> None:
    """GB18030 and UTF-16, which hold every sample: tests/conformance/test_formats.py."""
    text = _sample("valid_arrival.xml").decode()
    data = text.replace('encoding="UTF-8"', 'encoding="GBK"').encode("GBK")
    assert adapter.parse(data).record["master_name"] == "ZHANG Wei 张伟"
