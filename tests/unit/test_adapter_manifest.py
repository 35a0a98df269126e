from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterError
from adapters.fal7 import DANGEROUS_GOODS_LIST
from adapters.iso6346 import with_check_digit
from adapters.manifest import CustomsManifestAdapter
from message_formats import AvroSchemas, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import (
    PROPERTY,
    broken,
    event_header,
    imo_with_check_digit,
    optional,
    pattern,
    tokens,
)

DATA = Path(__file__).parent.parent / "data" / "manifest"


@pytest.fixture(scope="module")
def adapter() -> CustomsManifestAdapter:
    return CustomsManifestAdapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- samples


def test_valid_import_maps_every_field(adapter: CustomsManifestAdapter) -> None:
    result = adapter.parse(_sample("valid_import.xml"))
    assert (result.business_key, result.document_version, result.warnings) == (
        "9812341:0326E:2248",
        1,
        (),
    )
    record = result.record
    assert {k: v for k, v in record.items() if k != "bills_of_lading"} == {
        "document_number": "MF-2248-20260316-0007",
        "transport_means": {
            "vessel_name": "PX EVERBRIGHT",
            "imo_number": "9812341",
            "call_sign": "BOAL7",
            "voyage_number": "0326E",
            "nationality": "CN",
        },
        "customs_code": "2248",
        "port_of_loading": "USLAX",
        "loading_date_time": datetime(2026, 3, 3, 2, 0, tzinfo=UTC),
        "loading_date_time_utc_offset_minutes": -480,
        "port_of_discharge": "CNSHA",
        "discharge_date_time": datetime(2026, 3, 15, 21, 30, tzinfo=UTC),
        "discharge_date_time_utc_offset_minutes": 480,
    }
    first, second = record["bills_of_lading"]
    assert first == {
        "master_bill_number": "COSU6401128830",
        "house_bill_number": None,
        "consignor": {
            "name": "Pacific Agri Exports LLC",
            "address": "1200 Harbor Blvd, Long Beach, CA 90802",
            "country": "US",
            "enterprise_code": None,
        },
        "consignee": {
            "name": "上海良友进出口有限公司",
            "address": "上海市浦东新区张杨路 500 号",
            "country": "CN",
            "enterprise_code": "USCI+91310115MA1K3Y2B6C",
        },
        "notify_party": {
            "name": "上海浦东国际货运代理有限公司",
            "address": "上海市浦东新区洋山港区申港大道 88 号",
            "country": "CN",
            "enterprise_code": None,
        },
        "total_number_of_packages": 2000,
        "kind_of_packages": "BG",
        "total_gross_weight_kg": Decimal("50100.000"),
        "containers": [
            {
                "container_number": "MSCU7054324",
                "size_type": "45G1",
                "seal_numbers": ["UL1234567"],
                "full_or_empty": "Full",
            },
            {
                "container_number": "CSLU1288105",
                "size_type": "45G1",
                "seal_numbers": ["UL1234568", "CIQ-0098812"],
                "full_or_empty": "Full",
            },
        ],
        "goods_items": [
            {
                "sequence_number": 1,
                "description": "Soybean meal 豆粕",
                "hs_code": "2304001000",
                "number_of_packages": 1000,
                "kind_of_packages": "BG",
                "gross_weight_kg": Decimal("25050.000"),
                "un_number": None,
                "imdg_class": None,
                "container_numbers": ["MSCU7054324"],
            },
            {
                "sequence_number": 2,
                "description": "Distillers dried grains with solubles 干玉米酒糟",
                "hs_code": "2303300000",
                "number_of_packages": 1000,
                "kind_of_packages": "BG",
                "gross_weight_kg": Decimal("25050.000"),
                "un_number": None,
                "imdg_class": None,
                "container_numbers": ["CSLU1288105"],
            },
        ],
    }
    assert second["house_bill_number"] == "SHAFWD260301"
    assert second["notify_party"] is None
    batteries = second["goods_items"][0]
    assert (batteries["un_number"], batteries["imdg_class"]) == ("3480", "9")


def test_valid_export_without_containers_or_call_sign(adapter: CustomsManifestAdapter) -> None:
    record = adapter.parse(_sample("valid_export.xml")).record
    assert record["transport_means"]["call_sign"] is None
    steel, empty = record["bills_of_lading"]
    assert steel["containers"] == []
    assert empty["containers"][0]["full_or_empty"] == "Empty"
    assert empty["containers"][0]["seal_numbers"] == []
    assert record["discharge_date_time"] == datetime(2026, 4, 22, 4, 0, 0, 500_000, tzinfo=UTC)
    assert record["discharge_date_time_utc_offset_minutes"] == 120


def test_class_without_un_number_is_refused_too(adapter: CustomsManifestAdapter) -> None:
    data = _sample("valid_import.xml").replace(b"<UnNumber>3480</UnNumber>", b"")
    with pytest.raises(AdapterError) as caught:
        adapter.parse(data)
    assert caught.value.code == "RULE_CONDITIONAL"
    assert "need both UnNumber and DangerousGoodsClass" in caught.value.message


def test_unknown_un_number_is_a_warning(adapter: CustomsManifestAdapter) -> None:
    data = _sample("valid_import.xml").replace(b">3480<", b">3536<")
    result = adapter.parse(data)
    assert result.warnings == (
        "WARN_UN_NUMBER_UNKNOWN: BillOfLading[2]/GoodsItem[1]/UnNumber: the UN number is not "
        "in the built-in excerpt of the Dangerous Goods List; its class was not checked",
    )


def test_equal_instants_are_out_of_order(adapter: CustomsManifestAdapter) -> None:
    data = _sample("valid_import.xml").replace(
        b"2026-03-16T05:30:00+08:00", b"2026-03-03T02:00:00Z"
    )
    with pytest.raises(AdapterError) as caught:
        adapter.parse(data)
    assert caught.value.code == "RULE_DATES_ORDER"


# ---------------------------------------------------------------- render


def test_render_keeps_local_times(adapter: CustomsManifestAdapter) -> None:
    rendered = adapter.render(adapter.parse(_sample("valid_import.xml")).record)
    assert b"<LoadingDateTime>2026-03-02T18:00:00-08:00</LoadingDateTime>" in rendered
    assert "上海良友进出口有限公司".encode() in rendered


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("bills_of_lading",), []),
        (("customs_code",), "CNSHA"),
        (("loading_date_time",), datetime(2026, 3, 2, 18, 0)),  # naive
        (("loading_date_time_utc_offset_minutes",), None),
        (("bills_of_lading", 0, "goods_items"), []),
        (("bills_of_lading", 0, "containers", 0, "full_or_empty"), "Half"),
        (("bills_of_lading", 0, "containers", 0, "size_type"), "45G"),
        (("bills_of_lading", 0, "containers", 0, "seal_numbers"), "UL1234567"),
        (("bills_of_lading", 0, "consignee"), None),
        (("bills_of_lading", 0, "goods_items", 0, "sequence_number"), 0),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: CustomsManifestAdapter, path: tuple[Any, ...], value: Any
) -> None:
    record = adapter.parse(_sample("valid_import.xml")).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- property: round trips

_LOCODE = pattern(r"[A-Z]{2}[A-Z2-9]{3}")
_KIND = pattern(r"[0-9A-Z]{2}")
_BILL_NUMBER = pattern(r"[A-Za-z0-9][A-Za-z0-9/.\-]{0,34}")
_CONTAINER_NUMBER = pattern(r"[A-Z]{3}[UJZ][0-9]{6}").map(with_check_digit)
_HS_CODE = st.tuples(
    st.sampled_from([f"{c:02d}" for c in range(1, 98) if c != 77]),
    pattern(r"[0-9]{4}([0-9]{2}([0-9]{2})?)?"),
).map("".join)
_WEIGHT = st.decimals(min_value=0, max_value=Decimal("99999999999.999"), places=3, allow_nan=False)
# Starts late enough before 2099 that a voyage of up to a year stays within the XSD's years
# in every UTC offset.
_INSTANT = st.datetimes(
    min_value=datetime(1901, 1, 1), max_value=datetime(2097, 12, 31), timezones=st.just(UTC)
).map(lambda dt: dt.replace(microsecond=dt.microsecond // 1000 * 1000))
_OFFSET = st.integers(-14 * 60, 14 * 60)
_DANGEROUS = st.one_of(
    st.sampled_from(sorted(DANGEROUS_GOODS_LIST.values(), key=lambda e: e.un_number)).flatmap(
        lambda e: st.tuples(st.just(e.un_number), st.sampled_from(sorted(e.classes)))
    ),
    st.tuples(
        pattern(r"[0-9]{4}").filter(lambda un: un not in DANGEROUS_GOODS_LIST),
        pattern(r"1\.[1-6][A-HJKLNS]?|2\.[1-3]|3|4\.[1-3]|5\.[12]|6\.[12]|7|8|9"),
    ),
)

_PARTY = st.fixed_dictionaries(
    {
        "name": tokens(140),
        "address": tokens(256),
        "country": pattern(r"[A-Z]{2}"),
        "enterprise_code": optional(pattern(r"[A-Za-z0-9][A-Za-z0-9+\-]{0,34}")),
    }
)

_CONTAINER: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "container_number": _CONTAINER_NUMBER,
        "size_type": pattern(r"[0-9A-Z][0-9A-Z][A-Z][0-9A-Z]"),
        "seal_numbers": st.lists(pattern(r"[A-Za-z0-9][A-Za-z0-9/\-]{0,34}"), max_size=3),
        "full_or_empty": st.sampled_from(["Full", "Empty"]),
    }
)


@st.composite
def _goods_item(draw: st.DrawFn, sequence_number: int, full: list[str]) -> dict[str, Any]:
    dangerous = draw(optional(_DANGEROUS))
    return {
        "sequence_number": sequence_number,
        "description": draw(tokens(512)),
        "hs_code": draw(optional(_HS_CODE)),
        "number_of_packages": draw(st.integers(0, 9_999_999)),
        "kind_of_packages": draw(_KIND),
        "gross_weight_kg": draw(_WEIGHT),
        "un_number": None if dangerous is None else dangerous[0],
        "imdg_class": None if dangerous is None else dangerous[1],
        "container_numbers": draw(st.lists(st.sampled_from(full), max_size=2)) if full else [],
    }


@st.composite
def _bill(draw: st.DrawFn) -> dict[str, Any]:
    """A bill whose totals are its goods items' sums and whose goods sit in its own full
    containers."""
    containers = draw(st.lists(_CONTAINER, max_size=3, unique_by=lambda c: c["container_number"]))
    full = [c["container_number"] for c in containers if c["full_or_empty"] == "Full"]
    count = draw(st.integers(1, 3))
    items = [draw(_goods_item(n, full)) for n in range(1, count + 1)]
    return {
        "master_bill_number": draw(_BILL_NUMBER),
        "house_bill_number": draw(optional(_BILL_NUMBER)),
        "consignor": draw(_PARTY),
        "consignee": draw(_PARTY),
        "notify_party": draw(optional(_PARTY)),
        "total_number_of_packages": sum(i["number_of_packages"] for i in items),
        "kind_of_packages": draw(_KIND),
        "total_gross_weight_kg": sum((i["gross_weight_kg"] for i in items), Decimal(0)),
        "containers": containers,
        "goods_items": items,
    }


@st.composite
def canonical_manifest(draw: st.DrawFn) -> dict[str, Any]:
    loading = draw(_INSTANT)
    voyage = draw(st.integers(1, 365 * 24 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms)))
    return {
        "document_number": draw(tokens(35)),
        "transport_means": {
            "vessel_name": draw(tokens(70)),
            "imo_number": draw(st.integers(0, 999_999).map(imo_with_check_digit)),
            "call_sign": draw(optional(pattern(r"[A-Z0-9]{2,10}"))),
            "voyage_number": draw(pattern(r"[A-Za-z0-9][A-Za-z0-9/.\-]{0,16}")),
            "nationality": draw(pattern(r"[A-Z]{2}")),
        },
        "customs_code": draw(pattern(r"[0-9]{4}")),
        "port_of_loading": draw(_LOCODE),
        "loading_date_time": loading,
        "loading_date_time_utc_offset_minutes": draw(_OFFSET),
        "port_of_discharge": draw(_LOCODE),
        "discharge_date_time": loading + voyage,
        "discharge_date_time_utc_offset_minutes": draw(_OFFSET),
        "bills_of_lading": draw(st.lists(_bill(), min_size=1, max_size=3)),
    }


@PROPERTY
@given(record=canonical_manifest())
def test_parse_inverts_render(adapter: CustomsManifestAdapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    means = record["transport_means"]
    assert result.business_key == (
        f"{means['imo_number']}:{means['voyage_number']}:{record['customs_code']}"
    )



@PROPERTY
@given(record=canonical_manifest(), version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas,
    adapter: CustomsManifestAdapter,
    record: dict[str, Any],
    version: int,
) -> None:
    event = {"header": event_header(adapter, version), **record}
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, event))
    assert name == adapter.schema_name
    assert decoded == event
    assert adapter.parse(adapter.render(decoded)).document_version == version


# ---------------------------------------------------------------- canonical schema files

