from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterError, ParseResult
from adapters.fal7 import (
    DANGEROUS_GOODS_LIST,
    Fal7Adapter,
    division,
    packing_group_required,
)
from adapters.iso6346 import with_check_digit
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

DATA = Path(__file__).parent.parent / "data" / "fal7"


@pytest.fixture(scope="module")
def adapter() -> Fal7Adapter:
    return Fal7Adapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- samples


def test_valid_departure_maps_every_field(adapter: Fal7Adapter) -> None:
    result = adapter.parse(_sample("valid_departure.xml"))
    assert result.business_key == "9074729:V2612S:CNSHA"
    assert result.document_version == 1
    assert result.warnings == ()
    record = result.record
    assert {k: v for k, v in record.items() if k != "dangerous_goods"} == {
        "document_number": "DG-CNSHA-2026-000187",
        "ship": {
            "name": "PX HARMONY",
            "imo_number": "9074729",
            "call_sign": "VRAB7",
            "flag_state": "HK",
            "gross_tonnage": None,
            "net_tonnage": None,
        },
        "voyage_number": "V2612S",
        "port_of_report": "CNSHA",
        "port_of_loading": "CNSHA",
        "port_of_discharge": "SGSIN",
        "master_name": "ZHANG Wei 张伟",
        "shipping_agent": {
            "name": "上海外轮代理有限公司 Shanghai Ocean Shipping Agency Co., Ltd.",
            "contact": "24h DG desk +86 21 5555 0119, dg@agency.example.cn",
        },
        "additional_information": (
            "Class 8 stowed away from living quarters. 第 8 类远离生活区积载。"
        ),
    }
    assert len(record["dangerous_goods"]) == 4
    assert record["dangerous_goods"][0] == {
        "booking_reference": "COSU6183460021",
        "marks_and_numbers": "HUAXIA COATINGS / SIN / 1-80",
        "container_number": "TEMU3322114",
        "vehicle_registration_number": None,
        "stowage_position": "0340282",
        "number_of_packages": 80,
        "kind_of_packages": "DR",
        "proper_shipping_name": "PAINT 油漆",
        "imdg_class": "3",
        "un_number": "1263",
        "packing_group": "II",
        "subsidiary_risks": [],
        "flash_point_celsius": Decimal("12.0"),
        "marine_pollutant": False,
        "gross_mass_kg": Decimal("16800.000"),
        "net_mass_kg": Decimal("15200.000"),
        "ems": "F-E, S-E",
    }
    batteries, _, pollutant = record["dangerous_goods"][1:]
    assert (batteries["un_number"], batteries["packing_group"]) == ("3480", None)
    assert batteries["flash_point_celsius"] is None
    assert pollutant["marine_pollutant"] is True
    assert pollutant["proper_shipping_name"] == (
        "ENVIRONMENTALLY HAZARDOUS SUBSTANCE, LIQUID, N.O.S. (chlorpyrifos) 对环境有害的液态物质"
    )


def test_valid_arrival_has_subsidiary_risks_vehicles_and_a_warning(adapter: Fal7Adapter) -> None:
    result = adapter.parse(_sample("valid_arrival.xml"))
    assert result == ParseResult(
        record=result.record,
        business_key="9321483:026N:CNYTN",
        document_version=3,
        warnings=(
            "WARN_UN_NUMBER_UNKNOWN: DangerousGoods[3]/UnNumber: the UN number is not in the "
            "built-in excerpt of the Dangerous Goods List; its class was not checked",
        ),
    )
    methanol, aerosols, _, vehicle = result.record["dangerous_goods"]
    assert methanol["subsidiary_risks"] == ["6.1"]
    assert methanol["gross_mass_kg"] == Decimal("24350.5")
    assert aerosols["imdg_class"] == "2.1"
    assert aerosols["packing_group"] is None
    assert aerosols["net_mass_kg"] is None
    assert vehicle["container_number"] is None
    assert vehicle["vehicle_registration_number"] == "粤B D12345"
    assert result.record["shipping_agent"]["contact"] is None
    assert result.record["additional_information"] is None


def test_class_mismatch_message_names_the_field_not_the_values(adapter: Fal7Adapter) -> None:
    with pytest.raises(AdapterError) as caught:
        adapter.parse(_sample("un_number_class_mismatch.xml"))
    assert caught.value.message == (
        "DangerousGoods[3]/Class: is not a class the Dangerous Goods List gives the UN number"
    )


_AEROSOLS = b"<Class>2.1</Class>\n    <UnNumber>1950</UnNumber>"


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        # the list assigns aerosols no packing group
        (_AEROSOLS, _AEROSOLS + b"<PackingGroup>III</PackingGroup>", "RULE_UN_NUMBER_CLASS"),
        # methanol is packing group II only
        (
            b"<PackingGroup>II</PackingGroup>\n    <SubsidiaryRisk>",
            b"<PackingGroup>I</PackingGroup>\n    <SubsidiaryRisk>",
            "RULE_UN_NUMBER_CLASS",
        ),
        # a gas never has a packing group, whether the list knows the UN number or not
        (
            _AEROSOLS,
            b"<Class>2.2</Class>\n    <UnNumber>1066</UnNumber><PackingGroup>III</PackingGroup>",
            "RULE_CONDITIONAL",
        ),
    ],
)
def test_packing_group_refusals(adapter: Fal7Adapter, old: bytes, new: bytes, code: str) -> None:
    data = _sample("valid_arrival.xml")
    assert data.count(old) == 1
    with pytest.raises(AdapterError) as caught:
        adapter.parse(data.replace(old, new))
    assert caught.value.code == code


def test_unknown_un_number_without_packing_group_in_a_packing_group_class(
    adapter: Fal7Adapter,
) -> None:
    data = _sample("valid_arrival.xml").replace(
        b"<UnNumber>1866</UnNumber>\n    <PackingGroup>III</PackingGroup>",
        b"<UnNumber>1866</UnNumber>",
    )
    with pytest.raises(AdapterError) as caught:
        adapter.parse(data)
    assert caught.value.code == "RULE_CONDITIONAL"


# ---------------------------------------------------------------- the Dangerous Goods List


@pytest.mark.parametrize(
    ("un_number", "imdg_class"),
    [
        ("1203", "3"),
        ("1090", "3"),
        ("1017", "2.3"),
        ("1005", "2.3"),
        ("1263", "3"),
        ("1830", "8"),
        ("1789", "8"),
        ("2794", "8"),
        ("3480", "9"),
        ("3082", "9"),
        ("1942", "5.1"),
        ("1950", "2.1"),
        ("1950", "2.2"),
        ("1075", "2.1"),
        ("1230", "3"),
        ("1993", "3"),
        ("2067", "5.1"),
        ("1648", "3"),
        ("2211", "9"),
        ("3077", "9"),
        ("1402", "4.3"),
    ],
)
def test_dangerous_goods_list_classes(un_number: str, imdg_class: str) -> None:
    entry = DANGEROUS_GOODS_LIST[un_number]
    assert entry.un_number == un_number
    assert entry.allows_class(imdg_class)
    assert not entry.allows_class("6.1")


def test_dangerous_goods_list_is_read_only() -> None:
    with pytest.raises(TypeError):
        DANGEROUS_GOODS_LIST["9999"] = DANGEROUS_GOODS_LIST["1203"]  # type: ignore[index]  # read-only on purpose


@pytest.mark.parametrize(
    ("imdg_class", "expected"), [("1.4S", "1.4"), ("1.1", "1.1"), ("2.1", "2.1"), ("9", "9")]
)
def test_division_drops_the_compatibility_group(imdg_class: str, expected: str) -> None:
    assert division(imdg_class) == expected


@pytest.mark.parametrize(
    ("un_number", "imdg_class", "required"),
    [
        ("1203", "3", True),
        ("3480", "9", False),  # batteries: no packing group assigned
        ("2794", "8", False),
        ("1950", "2.1", False),  # class 2 never
        ("0012", "1.4S", False),  # class 1 never
        ("3105", "5.2", False),  # organic peroxides never
        ("3224", "4.1", False),  # self-reactive substances have none
        ("1325", "4.1", True),  # unknown to the list, but class 4.1 sorts into groups
        ("2811", "6.1", True),
    ],
)
def test_packing_group_required(un_number: str, imdg_class: str, required: bool) -> None:
    assert packing_group_required(un_number, imdg_class) is required


# ---------------------------------------------------------------- render


def test_render_is_utf8_xml_with_declaration(adapter: Fal7Adapter) -> None:
    rendered = adapter.render(adapter.parse(_sample("valid_departure.xml")).record)
    assert rendered.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert b"<MarinePollutant>true</MarinePollutant>" in rendered
    assert b"<FlashPoint>12.0</FlashPoint>" in rendered


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("dangerous_goods",), []),
        (("ship", "net_tonnage"), 100),
        (("dangerous_goods", 0, "marine_pollutant"), "false"),
        (("dangerous_goods", 0, "marine_pollutant"), 0),
        (("dangerous_goods", 0, "packing_group"), "IV"),
        (("dangerous_goods", 0, "imdg_class"), "4"),
        (("dangerous_goods", 0, "flash_point_celsius"), Decimal("12.05")),
        (("dangerous_goods", 0, "subsidiary_risks"), ["6.1", "8", "5.1", "2.3"]),
        (("dangerous_goods", 0, "ems"), "F-E,S-E"),
        (("shipping_agent",), KeyError),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: Fal7Adapter, path: tuple[Any, ...], value: Any
) -> None:
    record = adapter.parse(_sample("valid_departure.xml")).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- property: round trips

def _decimals(min_value: str, max_value: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal(min_value), max_value=Decimal(max_value), places=places, allow_nan=False
    )


_LOCODE = pattern(r"[A-Z]{2}[A-Z2-9]{3}")
_CLASS = pattern(r"1\.[1-6][A-HJKLNS]?|2\.[1-3]|3|4\.[1-3]|5\.[12]|6\.[12]|7|8|9")
_ENTRIES = sorted(DANGEROUS_GOODS_LIST.values(), key=lambda e: e.un_number)
# UN numbers outside the built-in list, with a class that has no packing groups, so that
# they pass with a warning whatever the packing group rule would say.
_UNLISTED = st.tuples(
    pattern(r"[0-9]{4}").filter(lambda un: un not in DANGEROUS_GOODS_LIST),
    st.sampled_from(["1.4S", "2.2", "5.2", "6.2", "7"]),
)


@st.composite
def _classification(draw: st.DrawFn) -> dict[str, Any]:
    """UN number, class, packing group and marine pollutant flag that agree with the list."""
    if draw(st.booleans()):
        un_number, imdg_class = draw(_UNLISTED)
        return {
            "un_number": un_number,
            "imdg_class": imdg_class,
            "packing_group": None,
            "marine_pollutant": draw(st.booleans()),
        }
    entry = draw(st.sampled_from(_ENTRIES))
    groups = sorted(entry.packing_groups)
    return {
        "un_number": entry.un_number,
        "imdg_class": draw(st.sampled_from(sorted(entry.classes))),
        "packing_group": draw(st.sampled_from(groups)) if groups else None,
        "marine_pollutant": True if entry.marine_pollutant else draw(st.booleans()),
    }


@st.composite
def _goods(draw: st.DrawFn) -> dict[str, Any]:
    classification = draw(_classification())
    gross = draw(_decimals("0", "99999999999.999", 3))
    return {
        "booking_reference": draw(tokens(35)),
        "marks_and_numbers": draw(tokens(512)),
        "container_number": draw(
            optional(pattern(r"[A-Z]{3}[UJZ][0-9]{6}").map(with_check_digit))
        ),
        "vehicle_registration_number": draw(optional(tokens(20))),
        "stowage_position": draw(tokens(17)),
        "number_of_packages": draw(st.integers(0, 99_999_999)),
        "kind_of_packages": draw(pattern(r"[0-9A-Z]{2}")),
        "proper_shipping_name": draw(tokens(512)),
        "imdg_class": classification["imdg_class"],
        "un_number": classification["un_number"],
        "packing_group": classification["packing_group"],
        "subsidiary_risks": draw(st.lists(_CLASS, max_size=3)),
        "flash_point_celsius": draw(optional(_decimals("-273.1", "999.9", 1))),
        "marine_pollutant": classification["marine_pollutant"],
        "gross_mass_kg": gross,
        "net_mass_kg": draw(optional(_decimals("0", str(gross), 3))),
        "ems": draw(pattern(r"F-[A-J], S-[A-Z]")),
    }


CANONICAL_FAL7 = st.fixed_dictionaries(
    {
        "document_number": tokens(35),
        "ship": st.fixed_dictionaries(
            {
                "name": tokens(70),
                "imo_number": st.integers(0, 999_999).map(imo_with_check_digit),
                "call_sign": pattern(r"[A-Z0-9]{2,10}"),
                "flag_state": pattern(r"[A-Z]{2}"),
                "gross_tonnage": st.none(),
                "net_tonnage": st.none(),
            }
        ),
        "voyage_number": pattern(r"[A-Za-z0-9][A-Za-z0-9/.\-]{0,16}"),
        "port_of_report": _LOCODE,
        "port_of_loading": _LOCODE,
        "port_of_discharge": _LOCODE,
        "master_name": tokens(70),
        "shipping_agent": st.fixed_dictionaries(
            {"name": tokens(140), "contact": optional(tokens(256))}
        ),
        "dangerous_goods": st.lists(_goods(), min_size=1, max_size=4),
        "additional_information": optional(tokens(512)),
    }
)


@PROPERTY
@given(record=CANONICAL_FAL7)
def test_parse_inverts_render(adapter: Fal7Adapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    unlisted = [g for g in record["dangerous_goods"] if g["un_number"] not in DANGEROUS_GOODS_LIST]
    assert len(result.warnings) == len(unlisted)



@PROPERTY
@given(record=CANONICAL_FAL7, version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas, adapter: Fal7Adapter, record: dict[str, Any], version: int
) -> None:
    event = {"header": event_header(adapter, version), **record}
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, event))
    assert name == adapter.schema_name
    assert decoded == event
    assert adapter.parse(adapter.render(decoded)).document_version == version


# ---------------------------------------------------------------- canonical schema files

