"""Port safety early warning adapter (warning-xml): samples, business rules, render, round
trips through the XML and through Avro."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from adapters import AdapterError, AdapterRegistry, ParseResult, SafetyWarningAdapter
from adapters.warning import (
    ACTIONS_ZH,
    LEVEL_COLOURS,
    LEVEL_NAMES_ZH,
    LEVELS,
    SUBCATEGORIES,
)
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import PROPERTY, broken, event_header, optional, pattern, tokens
from tests.unit.test_adapter_fal5 import undocumented

ROOT = Path(__file__).parents[2]
AVRO = ROOT / "message_formats" / "avro"
XSD = ROOT / "message_formats" / "xsd" / "warning.xsd"
DATA = Path(__file__).parent.parent / "data" / "warning"
EXPECTED: dict[str, dict[str, Any]] = {
    name: outcome
    for name, outcome in json.loads((DATA / "expected.json").read_text()).items()
    if not name.startswith("_")
}
RULE_CODES = {
    "RULE_WARNING_TIME_NOT_MINUTE",
    "RULE_WARNING_SUBCATEGORY_MISMATCH",
    "RULE_WARNING_LEVEL_COLOUR",
    "RULE_WARNING_ITEMS_ORDER",
    "RULE_WARNING_POLYGON",
    "RULE_UNLOCODE",
    "RULE_WARNING_TERROR_RESULT",
    "RULE_WARNING_FILED_TO",
}


@pytest.fixture(scope="module")
def adapter() -> SafetyWarningAdapter:
    return SafetyWarningAdapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _cst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A China Standard Time wall-clock time as the UTC instant the record holds."""
    china = timezone(timedelta(hours=8))
    return datetime(year, month, day, hour, minute, tzinfo=china).astimezone(UTC)


def _with(name: str, old: str, new: str) -> bytes:
    text = _sample(name).decode()
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1).encode()


def _code_of(adapter: SafetyWarningAdapter, data: bytes) -> str:
    with pytest.raises((FormatError, AdapterError)) as caught:
        adapter.parse(data)
    assert isinstance(caught.value, (FormatError, AdapterError))  # pytest says Exception
    return caught.value.code


# ---------------------------------------------------------------- identity and constants


def test_the_default_registry_has_it() -> None:
    registry = AdapterRegistry.default(AvroSchemas())
    assert isinstance(registry.get("warning-xml"), SafetyWarningAdapter)


def _symbols(name: str) -> list[str]:
    return json.loads((AVRO / f"{name}.avsc").read_text(encoding="utf-8"))["symbols"]


def test_constants_agree_with_the_schemas() -> None:
    assert LEVELS == ("I", "II", "III", "IV")
    assert list(LEVELS) == _symbols("px.canonical.WarningLevel")
    assert dict(LEVEL_COLOURS) == {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}
    assert dict(LEVEL_NAMES_ZH) == {"I": "特别重大", "II": "重大", "III": "较大", "IV": "一般"}
    assert list(SUBCATEGORIES) == _symbols("px.canonical.WarningCategory")
    subcategories = _symbols("px.canonical.WarningSubcategory")
    # Each subcategory belongs to exactly one category, listed in category order.
    assert (
        list(
            itertools.chain.from_iterable(
                sorted(SUBCATEGORIES[c], key=subcategories.index) for c in SUBCATEGORIES
            )
        )
        == subcategories
    )
    assert list(ACTIONS_ZH) == _symbols("px.canonical.WarningAction")
    assert ACTIONS_ZH["TERROR_CHECK"] == "涉恐排查" and ACTIONS_ZH["FILE"] == "备案"


_XS = "{http://www.w3.org/2001/XMLSchema}"


def _xsd_enumeration(type_name: str) -> list[str]:
    simple_type = etree.parse(str(XSD)).find(f"{_XS}simpleType[@name='{type_name}']")
    assert simple_type is not None, type_name
    return [e.get("value") for e in simple_type.iter(f"{_XS}enumeration")]


@pytest.mark.parametrize(
    ("xsd_type", "avro_enum"),
    [
        ("CategoryType", "px.canonical.WarningCategory"),
        ("SubcategoryType", "px.canonical.WarningSubcategory"),
        ("LevelType", "px.canonical.WarningLevel"),
        ("ActionType", "px.canonical.WarningAction"),
        ("TerrorRelevanceType", "px.canonical.TerrorRelevance"),
    ],
)
def test_xml_values_are_the_avro_symbols(xsd_type: str, avro_enum: str) -> None:
    assert _xsd_enumeration(xsd_type) == _symbols(avro_enum)


def test_every_element_and_attribute_is_documented_in_english_and_chinese() -> None:
    assert undocumented(XSD) == []


# ---------------------------------------------------------------- samples


def test_every_rule_has_a_refused_sample() -> None:
    codes = {outcome["code"] for outcome in EXPECTED.values() if "code" in outcome}
    assert codes >= RULE_CODES | {"XSD_INVALID", "XML_DTD_FORBIDDEN"}


def test_valid_draft_maps_every_field(adapter: SafetyWarningAdapter) -> None:
    assert adapter.parse(_sample("valid_chemical_leak_draft.xml")) == ParseResult(
        record={
            "warning_id": "SHCUS-YJ-2026-0017",
            "issuing_authority": "中华人民共和国上海海关",
            "issued_at": _cst(2026, 3, 15, 9, 30),
            "utc_offset_minutes": 480,
            "category": "HAZARDOUS_CHEMICALS",
            "subcategory": "CHEMICAL_LEAK",
            "level": "II",
            "start_time": _cst(2026, 3, 15, 7, 45),
            "affected_area": {
                "description": "外高桥港区四期码头危险品堆场及周边 500 米范围",
                "port_codes": ["CNSHA"],
                "polygon": [
                    {"latitude": 31.3542, "longitude": 121.5893},
                    {"latitude": 31.3571, "longitude": 121.5962},
                    {"latitude": 31.3518, "longitude": 121.6007},
                    {"latitude": 31.3489, "longitude": 121.5938},
                ],
            },
            "warning_items": [
                {"urgency": 1, "text": "立即疏散堆场作业人员，禁止无关车辆进入"},
                {"urgency": 1, "text": "暂停该区域危险货物查验作业"},
                {"urgency": 2, "text": "对周边集装箱开展气体检测"},
            ],
            "situation": (
                "2026年3月15日7时45分，外高桥港区四期码头危险品堆场一只装载丙烯腈（UN 1093）"
                "的罐式集装箱阀门发生泄漏，现场已有刺激性气味。码头消防队已到场处置，暂无人员伤亡。"
            ),
            "control_measures": [
                "划定警戒区，设置隔离带",
                "查验人员佩戴正压式空气呼吸器方可进入",
                "对同批次进口罐箱实施暂停放行",
            ],
            "contact": {
                "name": "李明",
                "organisation": "上海海关口岸监管处",
                "telephone": "021-5555-0123",
                "email": None,
            },
            "step": {
                "action": "DRAFT",
                "actor": {
                    "name": "张伟",
                    "position": "科员",
                    "organisation": "外高桥港区海关查验科",
                },
                "at": _cst(2026, 3, 15, 9, 12),
                "comment": None,
                "terror_relevance": None,
                "filed_to": None,
            },
            "history": [],
        },
        business_key="SHCUS-YJ-2026-0017",
        document_version=1,
        warnings=(),
    )


def test_terror_check_sample(adapter: SafetyWarningAdapter) -> None:
    record = adapter.parse(_sample("valid_terror_check.xml")).record
    assert record["level"] == "III"  # no colour attribute: it is optional
    assert record["affected_area"] == {
        "description": "红其拉甫口岸旅检通道及货运通道",
        "port_codes": [],
        "polygon": [],
    }
    assert record["contact"] == {
        "name": "阿不都热合曼·买买提",
        "organisation": None,
        "telephone": "+86 998 555 0177",
        "email": "duty.office@kashi.customs.example.cn",
    }
    assert record["step"]["action"] == "TERROR_CHECK"
    assert record["step"]["terror_relevance"] == "NOT_EXCLUDED"
    assert record["step"]["comment"] == "驾驶人身份待进一步核实，暂不能排除涉恐"
    assert [step["action"] for step in record["history"]] == [
        "DRAFT",
        "CONTENT_REVIEW",
        "CATEGORY_REVIEW",
        "LEVEL_REVIEW",
    ]
    # Two history steps were written in UTC ("Z" and "+00:00"): the instants are exact, the
    # document's offset is the issue time's.
    assert record["utc_offset_minutes"] == 480
    assert record["history"][0]["at"] == _cst(2026, 4, 2, 15, 10)
    assert record["history"][1]["at"] == _cst(2026, 4, 2, 15, 35)
    assert record["history"][3]["at"] == _cst(2026, 4, 2, 17, 5)


def test_filed_sample(adapter: SafetyWarningAdapter) -> None:
    record = adapter.parse(_sample("valid_filed.xml")).record
    assert (record["category"], record["subcategory"], record["level"]) == (
        "NUCLEAR_RADIATION",
        "RADIATION_GOODS",
        "IV",
    )
    assert record["affected_area"]["port_codes"] == ["CNNGB", "CNZOS"]
    assert len(record["affected_area"]["polygon"]) == 3
    assert record["step"]["action"] == "FILE"
    assert record["step"]["filed_to"] == "海关总署口岸安全预警管理系统"
    assert [step["action"] for step in record["history"]] == [
        "DRAFT",
        "CONTENT_REVIEW",
        "RETURN",
        "CONTENT_REVIEW",
        "CATEGORY_REVIEW",
        "LEVEL_REVIEW",
        "TERROR_CHECK",
        "PUBLISH",
        "RELEASE",
    ]
    assert record["history"][6]["terror_relevance"] == "EXCLUDED"
    assert record["history"][2]["comment"] == "补充剂量率复测数据后重新提交"
    assert all(step["filed_to"] is None for step in record["history"])


def test_gb18030_sample(adapter: SafetyWarningAdapter) -> None:
    data = _sample("valid_gb18030.xml")
    assert data.startswith(b'<?xml version="1.0" encoding="GB18030"?>')
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    record = adapter.parse(data).record
    assert record["issuing_authority"] == "中华人民共和国广州海关"
    assert record["contact"]["name"] == "刘䶮"  # outside GBK, inside GB18030
    assert record["situation"].startswith("境外某地暴发新型禽流感人传人疫情")
    assert record["control_measures"] == [
        "严格执行入境健康申报，对有症状者就地隔离",
        "对邮轮及行李实施终末消毒",
    ]
    assert (record["level"], record["step"]["action"]) == ("I", "CONTENT_REVIEW")


def test_an_encoding_declaration_that_lies_is_refused(adapter: SafetyWarningAdapter) -> None:
    data = _sample("valid_gb18030.xml").decode("gb18030").encode("utf-8")
    assert _code_of(adapter, data) == "XML_ENCODING_MISMATCH"


# ---------------------------------------------------------------- business rules

_DRAFT = "valid_chemical_leak_draft.xml"
_FILED = "valid_filed.xml"


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        # every time of the warning is to the minute
        (
            "<IssuedAt>2026-03-15T09:30:00+",
            "<IssuedAt>2026-03-15T09:30:01+",
            "RULE_WARNING_TIME_NOT_MINUTE",
        ),
        (
            "<IssuedAt>2026-03-15T09:30:00+",
            "<IssuedAt>2026-03-15T09:30:00.001+",
            "RULE_WARNING_TIME_NOT_MINUTE",
        ),
        ("<At>2026-03-15T09:12:00+", "<At>2026-03-15T09:12:59+", "RULE_WARNING_TIME_NOT_MINUTE"),
        ("<IssuedAt>2026-03-15T09:30:00+", "<IssuedAt>2026-03-15T09:30:00.000+", None),
        # a whole minute in an odd offset is still a whole minute
        ("<StartTime>2026-03-15T07:45:00+08:00", "<StartTime>2026-03-15T05:00:00+05:45", None),
        # the colour is optional, and must be the level's when given
        ('<Level colour="orange">', "<Level>", None),
        ('<Level colour="orange">II', '<Level colour="red">I', None),
        ('<Level colour="orange">II', '<Level colour="yellow">III', None),
        ('<Level colour="orange">II', '<Level colour="blue">IV', None),
        ('<Level colour="orange">II', '<Level colour="blue">III', "RULE_WARNING_LEVEL_COLOUR"),
        ('<Level colour="orange">II', '<Level colour="orange">I', "RULE_WARNING_LEVEL_COLOUR"),
        # items: equal urgencies are fine, a more urgent item after a less urgent one is not
        ('<WarningItem urgency="2">', '<WarningItem urgency="1">', None),
        (
            '<WarningItem urgency="1">立即',
            '<WarningItem urgency="2">立即',
            "RULE_WARNING_ITEMS_ORDER",
        ),
        # polygon: none, or at least three points within range
        ('latitude="31.3542"', 'latitude="90"', None),
        ('longitude="121.5893"', 'longitude="-180.0"', None),
        ('longitude="121.5893"', 'longitude="180.5"', "RULE_WARNING_POLYGON"),
        ('latitude="31.3542"', 'latitude="-90.01"', "RULE_WARNING_POLYGON"),
        ('latitude="31.3542"', 'latitude="NaN"', "RULE_WARNING_POLYGON"),
        ('longitude="121.5893"', 'longitude="INF"', "RULE_WARNING_POLYGON"),
        # ports: UN/LOCODE shape
        ("<PortCode>CNSHA<", "<PortCode>cnsha<", "RULE_UNLOCODE"),
        ("<PortCode>CNSHA<", "<PortCode>CN SH<", "RULE_UNLOCODE"),
        ("<PortCode>CNSHA<", "<PortCode>CNSH0<", "RULE_UNLOCODE"),
        ("<PortCode>CNSHA<", "<PortCode>CNSH9<", None),
        ("<PortCode>CNSHA<", "<PortCode>CNSHA</PortCode><PortCode>HKHKG<", None),
        # the conditional elements of a step
        ("<Action>DRAFT<", "<Action>TERROR_CHECK<", "RULE_WARNING_TERROR_RESULT"),
        ("<Action>DRAFT<", "<Action>FILE<", "RULE_WARNING_FILED_TO"),
        (
            "<At>2026-03-15T09:12:00+08:00</At>",
            "<At>2026-03-15T09:12:00+08:00</At><TerrorRelevance>EXCLUDED</TerrorRelevance>",
            "RULE_WARNING_TERROR_RESULT",
        ),
    ],
)
def test_rules_on_the_draft(
    adapter: SafetyWarningAdapter, old: str, new: str, code: str | None
) -> None:
    data = _with(_DRAFT, old, new)
    if code is None:
        adapter.parse(data)
    else:
        assert _code_of(adapter, data) == code


@pytest.mark.parametrize(
    ("category", "subcategory"),
    [(c, s) for c in SUBCATEGORIES for s in sorted(set().union(*SUBCATEGORIES.values()))],
)
def test_subcategories_belong_to_their_category(
    adapter: SafetyWarningAdapter, category: str, subcategory: str
) -> None:
    data = _with(
        _DRAFT,
        "<Category>HAZARDOUS_CHEMICALS</Category>\n  <Subcategory>CHEMICAL_LEAK<",
        f"<Category>{category}</Category>\n  <Subcategory>{subcategory}<",
    )
    if subcategory in SUBCATEGORIES[category]:
        assert adapter.parse(data).record["subcategory"] == subcategory
    else:
        with pytest.raises(AdapterError) as caught:
            adapter.parse(data)
        assert caught.value.code == "RULE_WARNING_SUBCATEGORY_MISMATCH"
        assert caught.value.line == 8


@pytest.mark.parametrize(
    ("old", "new", "code", "line"),
    [
        # the rules hold for every step of the history, with the line of that step's element
        ("<At>2026-02-20T09:10:00+", "<At>2026-02-20T09:10:30+", "TIME_NOT_MINUTE", 45),
        (
            "      <TerrorRelevance>EXCLUDED</TerrorRelevance>\n",
            "",
            "TERROR_RESULT",
            74,
        ),
        (
            "<Comment>涉事集装箱已退运，预警解除</Comment>",
            "<Comment>涉事集装箱已退运，预警解除</Comment><FiledTo>上级系统</FiledTo>",
            "FILED_TO",
            88,
        ),
        # a filing in the history is a step like any other
        (
            "    <Step>\n      <Action>DRAFT<",
            "    <Step>\n      <Action>FILE</Action>\n      <Actor><Name>甲</Name><Position>科员"
            "</Position><Organisation>乙</Organisation></Actor>\n      <At>2026-02-19T09:00:00Z"
            "</At>\n      <FiledTo>丙</FiledTo>\n    </Step>\n    <Step>\n      <Action>DRAFT<",
            None,
            None,
        ),
    ],
)
def test_rules_on_the_history(
    adapter: SafetyWarningAdapter, old: str, new: str, code: str | None, line: int | None
) -> None:
    data = _with(_FILED, old, new)
    if code is None:
        assert len(adapter.parse(data).record["history"]) == 10
        return
    with pytest.raises(AdapterError) as caught:
        adapter.parse(data)
    assert (caught.value.code, caught.value.line) == (f"RULE_WARNING_{code}", line)


def test_a_polygon_of_one_point(adapter: SafetyWarningAdapter) -> None:
    text = _sample(_DRAFT).decode()
    start, end = text.index("<Polygon>"), text.index("</Polygon>")
    one = text[:start] + '<Polygon><Point latitude="1" longitude="2"/>' + text[end:]
    assert _code_of(adapter, one.encode()) == "RULE_WARNING_POLYGON"
    none = text[:start] + text[end + len("</Polygon>") :]
    assert adapter.parse(none.encode()).record["affected_area"]["polygon"] == []


def test_rule_messages_name_no_one(adapter: SafetyWarningAdapter) -> None:
    with pytest.raises(AdapterError) as caught:
        adapter.parse(_sample("terror_check_without_result.xml"))
    assert "王强" not in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("  <ControlMeasure>划定", "  <Remarks>备注</Remarks><ControlMeasure>划定"),
        ("<WarningId>SHCUS-YJ-2026-0017<", "<WarningId>S<"),  # too short
        ("<WarningId>SHCUS-YJ-2026-0017<", "<WarningId>SHCUS YJ<"),
        ("<Category>HAZARDOUS_CHEMICALS<", "<Category>hazardous_chemicals<"),
        ("<Subcategory>CHEMICAL_LEAK<", "<Subcategory>LEAK<"),
        (">II</Level>", ">V</Level>"),
        ('colour="orange"', 'colour="green"'),
        ("<IssuedAt>2026-03-15T09:30:00+08:00<", "<IssuedAt>2026-03-15T09:30+08:00<"),
        ("<IssuedAt>2026-03-15T09:30:00+08:00<", "<IssuedAt>2026-03-15T09:30:00+15:00<"),
        ("<IssuedAt>2026-03-15T09:30:00+08:00<", "<IssuedAt>2026-03-15T09:30:00.0001+08:00<"),
        ("<PortCode>CNSHA<", "<PortCode>CNSH<"),  # not five characters
        ('<WarningItem urgency="2">', '<WarningItem urgency="0">'),
        ('<WarningItem urgency="2">', "<WarningItem>"),
        ('latitude="31.3542"', 'latitude="north"'),
        ("<Telephone>021-5555-0123<", "<Telephone>021 - 5555<"),
        (
            "<Telephone>021-5555-0123</Telephone>",
            "<Telephone>021-5555-0123</Telephone><Email>no-at-sign</Email>",
        ),
        ("<Action>DRAFT<", "<Action>APPROVE<"),
        ("      <Position>科员</Position>\n", ""),
        ("<Step>", '<Step id="1">'),
    ],
)
def test_malformed_values_are_schema_invalid(
    adapter: SafetyWarningAdapter, old: str, new: str
) -> None:
    assert _code_of(adapter, _with(_DRAFT, old, new)) == "XSD_INVALID"


@pytest.mark.parametrize(
    "element", ["WarningItem", "ControlMeasure", "Situation", "Contact", "Step", "AffectedArea"]
)
def test_required_elements(adapter: SafetyWarningAdapter, element: str) -> None:
    root = etree.fromstring(_sample(_DRAFT))
    for child in root.findall(f"{{urn:px:warning:1}}{element}"):
        root.remove(child)
    assert _code_of(adapter, etree.tostring(root)) == "XSD_INVALID"


def test_an_empty_history_or_polygon_is_schema_invalid(adapter: SafetyWarningAdapter) -> None:
    assert _code_of(adapter, _with(_DRAFT, "</Step>\n", "</Step><History/>\n")) == "XSD_INVALID"
    text = _sample(_DRAFT).decode()
    start, end = text.index("<Polygon>"), text.index("</Polygon>")
    assert _code_of(adapter, (text[:start] + "<Polygon>" + text[end:]).encode()) == "XSD_INVALID"


def test_another_root_element_is_invalid(adapter: SafetyWarningAdapter) -> None:
    data = b'<MultimodalWaybill xmlns="urn:px:multimodal:waybill:1" version="1"/>'
    assert _code_of(adapter, data) == "XSD_INVALID"


# ---------------------------------------------------------------- render


def test_render_writes_every_time_in_the_documents_offset(adapter: SafetyWarningAdapter) -> None:
    rendered = adapter.render(adapter.parse(_sample("valid_terror_check.xml")).record)
    assert rendered.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert b'<Level colour="yellow">III</Level>' in rendered  # the colour is always written
    assert b"<At>2026-04-02T15:10:00+08:00</At>" in rendered  # written as 07:10:00Z
    assert b"Z<" not in rendered and b"+00:00" not in rendered
    assert b"<History>" in rendered


def test_render_leaves_out_what_is_empty(adapter: SafetyWarningAdapter) -> None:
    record = adapter.parse(_sample("valid_terror_check.xml")).record
    rendered = adapter.render({**record, "history": []})
    assert b"History" not in rendered and b"Polygon" not in rendered
    assert b"PortCode" not in rendered


_AT = ("step", "at")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("situation",), KeyError),
        (("control_measures",), "划定警戒区"),
        (("control_measures",), []),
        (("warning_items",), []),
        (("level",), "V"),
        (("level",), 2),
        (("category",), "TERRORISM"),  # the subcategory is a chemical leak
        (("issued_at",), datetime(2026, 3, 15, 1, 30)),  # naive
        (("issued_at",), datetime(2026, 3, 15, 1, 30, 15, tzinfo=UTC)),  # not a whole minute
        (_AT, datetime(2026, 3, 15, 1, 12, 0, 1000, tzinfo=UTC)),
        (("utc_offset_minutes",), 15 * 60),
        (("utc_offset_minutes",), 480.0),
        (("affected_area", "port_codes"), ["cnsha"]),
        (("affected_area", "polygon"), [{"latitude": 1.0, "longitude": 2.0}] * 2),
        (("affected_area", "polygon"), [{"latitude": 91.0, "longitude": 2.0}] * 3),
        (("affected_area", "polygon"), [{"latitude": math.inf, "longitude": 2.0}] * 3),
        (("affected_area", "polygon"), [{"latitude": "1", "longitude": 2.0}] * 3),
        (("warning_items", 0, "urgency"), 5),
        (("warning_items", 0, "urgency"), 0),
        (("step", "terror_relevance"), "EXCLUDED"),
        (("step", "filed_to"), "上级系统"),
        (("step", "action"), "FILE"),
        (("step", "actor", "position"), None),
        (("contact", "telephone"), "call me"),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: SafetyWarningAdapter, path: tuple[Any, ...], value: Any
) -> None:
    record = adapter.parse(_sample(_DRAFT)).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- property: round trips

_OFFSET = st.integers(-14 * 60, 14 * 60)
_MINUTE = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2098, 12, 30), timezones=st.just(UTC)
).map(lambda dt: dt.replace(second=0, microsecond=0))
_ORGANISATION = tokens(140)
_POINT = st.fixed_dictionaries(
    {
        "latitude": st.floats(-90, 90, allow_nan=False),
        "longitude": st.floats(-180, 180, allow_nan=False),
    }
)


@st.composite
def _step(draw: st.DrawFn) -> dict[str, Any]:
    action = draw(st.sampled_from(list(ACTIONS_ZH)))
    return {
        "action": action,
        "actor": {
            "name": draw(tokens(70)),
            "position": draw(tokens(70)),
            "organisation": draw(_ORGANISATION),
        },
        "at": draw(_MINUTE),
        "comment": draw(optional(tokens(512))),
        "terror_relevance": (
            draw(st.sampled_from(["EXCLUDED", "NOT_EXCLUDED"]))
            if action == "TERROR_CHECK"
            else None
        ),
        "filed_to": draw(_ORGANISATION) if action == "FILE" else None,
    }


@st.composite
def canonical_warning(draw: st.DrawFn) -> dict[str, Any]:
    category = draw(st.sampled_from(list(SUBCATEGORIES)))
    items = draw(
        st.lists(
            st.fixed_dictionaries({"urgency": st.integers(1, 2**31 - 1), "text": tokens(512)}),
            min_size=1,
            max_size=4,
        )
    )
    return {
        "warning_id": draw(pattern(r"[A-Za-z0-9][A-Za-z0-9._/\-]{2,63}")),
        "issuing_authority": draw(_ORGANISATION),
        "issued_at": draw(_MINUTE),
        "utc_offset_minutes": draw(_OFFSET),
        "category": category,
        "subcategory": draw(st.sampled_from(sorted(SUBCATEGORIES[category]))),
        "level": draw(st.sampled_from(LEVELS)),
        "start_time": draw(_MINUTE),
        "affected_area": {
            "description": draw(tokens(512)),
            "port_codes": draw(st.lists(pattern(r"[A-Z]{2}[A-Z2-9]{3}"), max_size=3)),
            "polygon": draw(st.just([]) | st.lists(_POINT, min_size=3, max_size=6)),
        },
        "warning_items": sorted(items, key=lambda item: item["urgency"]),
        "situation": draw(tokens(4000)),
        "control_measures": draw(st.lists(tokens(512), min_size=1, max_size=3)),
        "contact": {
            "name": draw(tokens(70)),
            "organisation": draw(optional(_ORGANISATION)),
            "telephone": draw(pattern(r"\+?[0-9]{1,4}([ \-][0-9]{1,4}){0,5}")),
            "email": draw(optional(pattern(r"[a-z0-9._%+\-]{1,20}@[a-z0-9\-]{1,20}\.[a-z]{2,6}"))),
        },
        "step": draw(_step()),
        "history": draw(st.lists(_step(), max_size=4)),
    }


@PROPERTY
@given(record=canonical_warning())
def test_parse_inverts_render(adapter: SafetyWarningAdapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    assert result.business_key == record["warning_id"]



@PROPERTY
@given(record=canonical_warning(), version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas, adapter: SafetyWarningAdapter, record: dict[str, Any], version: int
) -> None:
    event = {"header": event_header(adapter, version), **record}
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, event))
    assert name == adapter.schema_name
    assert decoded == event
    result = adapter.parse(adapter.render(decoded))
    assert result.document_version == version
    assert result.record == record


# ---------------------------------------------------------------- canonical schema files

DOCUMENT_SCHEMA = "px.canonical.SafetyWarning"


def test_document_record_fields_in_order() -> None:
    fields = json.loads((AVRO / f"{DOCUMENT_SCHEMA}.avsc").read_text(encoding="utf-8"))["fields"]
    assert [f["name"] for f in fields] == [
        "header",
        "warning_id",
        "issuing_authority",
        "issued_at",
        "utc_offset_minutes",
        "category",
        "subcategory",
        "level",
        "start_time",
        "affected_area",
        "warning_items",
        "situation",
        "control_measures",
        "contact",
        "step",
        "history",
    ]


@pytest.mark.parametrize(
    "documented",
    [
        "危化品",
        "核辐射",
        "公共卫生和食品安全",
        "生态环境",
        "通关群体性",
        "自然灾害",
        "涉恐",
        "特别重大",
        "较大",
        "一般",
        "起草",
        "复核",
        "涉恐排查",
        "级别调整",
        "解除",
        "备案",
    ],
)
def test_chinese_terms_are_in_the_xsd(documented: str) -> None:
    assert documented in XSD.read_text(encoding="utf-8")
