from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterError, ParseResult
from adapters.fal2 import Fal2Adapter, is_valid_hs_code
from adapters.iso6346 import with_check_digit
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import (
    PROPERTY,
    broken,
    event_header,
    imo_with_check_digit,
    optional,
    pattern,
    tokens,
)

DATA = Path(__file__).parent.parent / "data" / "fal2"


@pytest.fixture(scope="module")
def adapter() -> Fal2Adapter:
    return Fal2Adapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- samples


def test_valid_arrival_maps_every_field(adapter: Fal2Adapter) -> None:
    result = adapter.parse(_sample("valid_arrival.xml"))
    assert result == ParseResult(
        record={
            "document_number": "CD-CNSHA-2026-000452",
            "arrival_or_departure": "Arrival",
            "ship": {
                "name": "PX HARMONY",
                "imo_number": "9074729",
                "call_sign": "VRAB7",
                "flag_state": "HK",
                "gross_tonnage": None,
                "net_tonnage": None,
            },
            "voyage_number": "V2611",
            "port_of_report": "CNSHA",
            "master_name": "ZHANG Wei 张伟",
            "port_of_loading": "KRPUS",
            "port_of_discharge": "CNSHA",
            "consignments": [
                {
                    "bill_of_lading_number": "COSU6183457890",
                    "marks_and_numbers": "N/M",
                    "number_of_packages": 1200,
                    "kind_of_packages": "CT",
                    # xs:token: the sample's line breaks and indentation collapse.
                    "description_of_goods": (
                        "Electronic integrated circuits, processors 电子集成电路（处理器）"
                    ),
                    "hs_code": "854231",
                    "gross_weight_kg": Decimal("14250.500"),
                    "measurement_m3": Decimal("58.200"),
                    "container_numbers": ["TGHU4012347", "FCIU5234568"],
                },
                {
                    "bill_of_lading_number": "COSU6183457912",
                    "marks_and_numbers": "SH-2611/1-480",
                    "number_of_packages": 480,
                    "kind_of_packages": "PK",
                    "description_of_goods": "Motor vehicle parts 汽车零部件",
                    "hs_code": "8708999990",
                    "gross_weight_kg": Decimal("9800.000"),
                    "measurement_m3": None,
                    "container_numbers": ["TCLU7788994"],
                },
                {
                    "bill_of_lading_number": "HDMUPUSA0458821",
                    "marks_and_numbers": "COIL NO. 1-12",
                    "number_of_packages": 12,
                    "kind_of_packages": "CL",
                    "description_of_goods": "Hot-rolled steel coils 热轧钢卷",
                    "hs_code": "720839",
                    "gross_weight_kg": Decimal("286400.000"),
                    "measurement_m3": None,
                    "container_numbers": [],
                },
            ],
            "total_number_of_packages": 1692,
            "total_gross_weight_kg": Decimal("310450.500"),
            "remarks": "Steel coils stowed in hold No. 3. 钢卷积载于三号舱。",
        },
        business_key="9074729:V2611:CNSHA",
        document_version=1,
        warnings=(),
    )


def test_valid_departure_leaves_absent_optionals_null(adapter: Fal2Adapter) -> None:
    record = adapter.parse(_sample("valid_departure.xml")).record
    assert record["arrival_or_departure"] == "Departure"
    assert record["total_number_of_packages"] is None
    assert record["total_gross_weight_kg"] is None
    assert record["remarks"] is None
    consignment = record["consignments"][0]
    assert consignment["hs_code"] is None
    assert consignment["measurement_m3"] is None
    assert consignment["gross_weight_kg"] == Decimal("11032.75")


def test_decimals_get_the_canonical_scale(adapter: Fal2Adapter) -> None:
    record = adapter.parse(_sample("valid_arrival.xml")).record
    weights = [c["gross_weight_kg"] for c in record["consignments"]]
    assert [w.as_tuple().exponent for w in weights] == [-3, -3, -3]
    data = _sample("valid_arrival.xml").replace(b">58.200<", b">58.20000<")
    assert adapter.parse(data).record["consignments"][0]["measurement_m3"] == Decimal("58.2")


def test_rule_messages_name_the_field_not_the_value(adapter: Fal2Adapter) -> None:
    with pytest.raises(AdapterError) as caught:
        adapter.parse(_sample("bad_container_check_digit.xml"))
    assert caught.value.message.startswith("Consignment[1]/ContainerNumber[2]: ")
    assert "FCIU5234567" not in caught.value.message
    with pytest.raises(AdapterError) as caught:
        adapter.parse(_sample("wrong_total_packages.xml"))
    assert caught.value.message == (
        "TotalNumberOfPackages: is not the sum of the consignments' NumberOfPackages"
    )


def test_duplicate_bill_of_lading_is_a_warning(adapter: Fal2Adapter) -> None:
    data = _sample("valid_arrival.xml").replace(b">COSU6183457912<", b">COSU6183457890<")
    result = adapter.parse(data)
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("WARN_DUPLICATE_BILL_OF_LADING: consignments ")
    assert "COSU6183457890" not in result.warnings[0]


def test_tonnage_is_not_part_of_fal2(adapter: Fal2Adapter) -> None:
    data = _sample("valid_arrival.xml").replace(
        b"<FlagState>HK</FlagState>", b"<FlagState>HK</FlagState><GrossTonnage>1</GrossTonnage>"
    )
    with pytest.raises(FormatError) as caught:
        adapter.parse(data)
    assert caught.value.code == "XSD_INVALID"


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("854231", True),
        ("0101210000", True),
        ("97011000", True),
        ("010121", True),
        ("000000", False),
        ("770000", False),
        ("980100", False),
        ("990100", False),
        ("85423", False),
        ("8542310", False),
        ("85423100001", False),
        ("85423a", False),
        ("８５４２３１", False),
    ],
)
def test_hs_codes(code: str, valid: bool) -> None:
    assert is_valid_hs_code(code) is valid


# ---------------------------------------------------------------- render


def test_render_is_utf8_xml_with_declaration(adapter: Fal2Adapter) -> None:
    record = adapter.parse(_sample("valid_arrival.xml")).record
    rendered = adapter.render(record)
    assert rendered.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "热轧钢卷".encode() in rendered
    assert b"<GrossWeight>14250.500</GrossWeight>" in rendered


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("consignments",), KeyError),
        (("consignments",), []),
        (("consignments",), "COSU6183457890"),
        (("ship", "gross_tonnage"), 40541),
        (("consignments", 0, "gross_weight_kg"), 14250.5),
        (("consignments", 0, "gross_weight_kg"), Decimal("14250.5001")),
        (("consignments", 0, "gross_weight_kg"), Decimal("NaN")),
        (("consignments", 0, "gross_weight_kg"), Decimal("-1")),
        (("consignments", 0, "gross_weight_kg"), Decimal("1E+20")),
        (("consignments", 0, "container_numbers"), "TGHU4012347"),
        (("consignments", 0, "hs_code"), "8542"),
        (("total_number_of_packages",), "1692"),
        (("arrival_or_departure",), "Anchored"),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: Fal2Adapter, path: tuple[Any, ...], value: Any
) -> None:
    record = adapter.parse(_sample("valid_arrival.xml")).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- property: round trips

def _decimals(max_value: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=Decimal(max_value), places=places, allow_nan=False)


_LOCODE = pattern(r"[A-Z]{2}[A-Z2-9]{3}")
_CONTAINER = pattern(r"[A-Z]{3}[UJZ][0-9]{6}").map(with_check_digit)
_HS_CHAPTER = st.sampled_from([f"{c:02d}" for c in range(1, 98) if c != 77])
_HS_CODE = st.tuples(_HS_CHAPTER, pattern(r"[0-9]{4}([0-9]{2}([0-9]{2})?)?")).map("".join)

_CONSIGNMENT = st.fixed_dictionaries(
    {
        "bill_of_lading_number": pattern(r"[A-Za-z0-9][A-Za-z0-9/.\-]{0,34}"),
        "marks_and_numbers": tokens(512),
        "number_of_packages": st.integers(0, 9_999_999),
        "kind_of_packages": pattern(r"[0-9A-Z]{2}"),
        "description_of_goods": tokens(512),
        "hs_code": optional(_HS_CODE),
        "gross_weight_kg": _decimals("99999999999.999", 3),
        "measurement_m3": optional(_decimals("999999999.999", 3)),
        "container_numbers": st.lists(_CONTAINER, max_size=3),
    }
)


@st.composite
def canonical_fal2(draw: st.DrawFn) -> dict[str, Any]:
    """A canonical FAL 2 body that passes every rule: check digits right, totals (when
    stated) the sums of the consignments."""
    consignments = draw(st.lists(_CONSIGNMENT, min_size=1, max_size=4))
    packages = sum(c["number_of_packages"] for c in consignments)
    weight = sum((c["gross_weight_kg"] for c in consignments), Decimal(0))
    return {
        "document_number": draw(tokens(35)),
        "arrival_or_departure": draw(st.sampled_from(["Arrival", "Departure"])),
        "ship": {
            "name": draw(tokens(70)),
            "imo_number": draw(st.integers(0, 999_999).map(imo_with_check_digit)),
            "call_sign": draw(pattern(r"[A-Z0-9]{2,10}")),
            "flag_state": draw(pattern(r"[A-Z]{2}")),
            "gross_tonnage": None,
            "net_tonnage": None,
        },
        "voyage_number": draw(pattern(r"[A-Za-z0-9][A-Za-z0-9/.\-]{0,16}")),
        "port_of_report": draw(_LOCODE),
        "master_name": draw(tokens(70)),
        "port_of_loading": draw(_LOCODE),
        "port_of_discharge": draw(_LOCODE),
        "consignments": consignments,
        "total_number_of_packages": draw(optional(st.just(packages))),
        "total_gross_weight_kg": draw(optional(st.just(weight))),
        "remarks": draw(optional(tokens(512))),
    }


@PROPERTY
@given(record=canonical_fal2())
def test_parse_inverts_render(adapter: Fal2Adapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    assert result.business_key == (
        f"{record['ship']['imo_number']}:{record['voyage_number']}:{record['port_of_report']}"
    )



@PROPERTY
@given(record=canonical_fal2(), version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas, adapter: Fal2Adapter, record: dict[str, Any], version: int
) -> None:
    event = {"header": event_header(adapter, version), **record}
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, event))
    assert name == adapter.schema_name
    assert decoded == event
    assert adapter.parse(adapter.render(decoded)).document_version == version


# ---------------------------------------------------------------- canonical schema files

