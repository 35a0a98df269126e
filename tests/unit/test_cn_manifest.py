"""The China customs manifest adapter (cn-manifest-xml) beyond its samples: the canonical
schema follows the element table, any record of any type renders and parses back, the quirks
of real files read as the plain form does, and render writes each type's spellings."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from adapters import AdapterRegistry, CnManifestAdapter, FormatDetector, RenderError
from adapters.base import RuleViolationError
from adapters.cn_manifest import business_key, namespace_of, sender_code
from adapters.cn_manifest_tree import MANIFEST, MESSAGE_TYPES
from adapters.xml_tree import (
    ATTRIBUTE_UNKNOWN,
    CHINA_STANDARD_TIME,
    DECIMAL,
    ELEMENT_MISSING,
    ELEMENT_REPEATED,
    ELEMENT_UNKNOWN,
    GROUP,
    NUMBER_INVALID,
    TEXT_MISPLACED,
    TEXT_TOO_LONG,
    TIME,
    TIME_DIGITS,
    Node,
    digits_of,
    read_time_digits,
)
from contracts import DocumentCatalog, compile_condition
from crypto import SM2PrivateKey
from crypto.xmldsig import sign_enveloped, verify_enveloped
from message_formats import AvroSchemas, SafeXmlParser
from message_formats.dxp import DxpEnvelope, DxpTransInfo, read_dxp_msg, render_dxp_msg
from tests.unit.adapter_strategies import PROPERTY, event_header, pattern, tokens
from tests.unit.cn_manifest_schema import AVRO_DIR, file_text
from tests.unit.cn_manifest_schema import schemas as generated_schemas

DATA = Path(__file__).parents[1] / "data" / "cn-manifest"


@pytest.fixture(scope="module")
def adapter() -> CnManifestAdapter:
    return CnManifestAdapter()


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- the table and the schema


def test_the_committed_avro_schemas_follow_the_element_table() -> None:
    for full_name, schema in generated_schemas().items():
        assert (AVRO_DIR / f"{full_name}.avsc").read_text(encoding="utf-8") == file_text(schema)


def test_the_adapter_declares_the_root_of_every_namespace_it_reads(
        adapter: CnManifestAdapter) -> None:
    assert len(adapter.root_elements) == 2 * len(MESSAGE_TYPES)
    assert "{urn:Declaration:datamodel:standard:CN:MT2101:1}Manifest" in adapter.root_elements
    assert "{urn:Declaration:datamodel:standard:MT2101:1}Manifest" in adapter.root_elements


def test_format_detection_chooses_the_adapter_for_every_valid_sample() -> None:
    detector = FormatDetector(AdapterRegistry.default(AvroSchemas()))
    expected = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
    valid = [name for name, outcome in expected.items()
             if not name.startswith("_") and "code" not in outcome]
    assert len(valid) >= 8
    for name in valid:
        found = detector.detect(sample(name))
        assert (found.format_id, found.message_type) == ("cn-manifest-xml", name[:6].upper())


# ---------------------------------------------------------------- property: round trip


def _times(digits: int) -> st.SearchStrategy[dict[str, Any]]:
    local = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 31))
    return local.map(lambda moment: {"instant": read_time_digits(digits_of(moment, digits)),
                                     "digits": digits, "local_date_time": None})


def _decimals() -> st.SearchStrategy[Decimal]:
    places = Decimal("0.000001")
    return st.decimals(min_value=0, max_value=Decimal("999999999999.999999"), places=6,
                       allow_nan=False, allow_infinity=False).map(lambda d: d.quantize(places))


def _value(node: Node, variant: str) -> st.SearchStrategy[Any]:
    if node.kind == GROUP:
        return _record(node.children, variant)
    if node.kind == TIME:
        value: st.SearchStrategy[Any] = st.sampled_from(TIME_DIGITS).flatmap(_times)
    elif node.kind == DECIMAL:
        value = _decimals()
    else:
        value = tokens(node.max_length)
    if node.attr is None:
        return value
    return st.fixed_dictionaries({"value": value, node.attr.field: st.none() | tokens(35)})


def _field(node: Node, variant: str) -> st.SearchStrategy[Any]:
    one = _value(node, variant)
    if node.repeats:
        return st.lists(one, min_size=1 if node.required_in(variant) else 0, max_size=2)
    return one if node.required_in(variant) else st.none() | one


def _record(nodes: tuple[Node, ...], variant: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({node.field: _field(node, variant) for node in nodes})


def _fixed(record: dict[str, Any], message_type: str, sender: str) -> dict[str, Any]:
    """The record made to keep the rules: the head names the type and a valid sender,
    goods items are numbered, master documents unique."""
    record["head"]["message_type"] = message_type
    record["head"]["sender_id"] = sender
    for index, consignment in enumerate(record["declaration"]["consignments"]):
        consignment["transport_contract_document"]["id"] = f"B{index}"
        for position, item in enumerate(consignment["items"]):
            item["sequence_numeric"] = str(position + 1)
    modes, stages = {"1": "SEA", "2": "AIR", "4": "ROAD"}, {
        "1": "ORIGINAL", "2": "PRE_MANIFEST", "3": "ARRIVAL_REPORT"}
    return {"mode": modes[message_type[3]], "stage": stages[message_type[2]],
            "sender_code": sender_code(sender), **record}


# Built once: a strategy made afresh for every example is validated afresh, which costs more
# than drawing from it.
RECORDS = {message_type: _record(MANIFEST, message_type) for message_type in MESSAGE_TYPES}
SENDERS = pattern(r"[0-9A-Z]{13}(_[0-9A-Z@]{1,16}){0,2}")


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    message_type = draw(st.sampled_from(sorted(MESSAGE_TYPES)))
    sender = draw(SENDERS)
    return _fixed(draw(RECORDS[message_type]), message_type, sender)


@PROPERTY
@given(record=manifests())
def test_any_record_of_any_type_renders_and_parses_back(
        adapter: CnManifestAdapter, record: dict[str, Any]) -> None:
    rendered = adapter.render(record)
    result = adapter.parse(rendered)
    assert result.record == record
    assert result.business_key == business_key(record)
    assert result.document_version == 1


@PROPERTY
@given(record=manifests())
def test_any_record_fits_the_canonical_schema(adapter: CnManifestAdapter, schemas: AvroSchemas,
                                              record: dict[str, Any]) -> None:
    event = {"header": event_header(adapter, 1), **record}
    assert schemas.decode(schemas.encode(adapter.schema_name, event)) == (
        adapter.schema_name, event)


# ---------------------------------------------------------------- quirks and spellings


def test_the_currency_reads_from_either_attribute(adapter: CnManifestAdapter) -> None:
    sea = sample("mt2101_sea_pre_manifest.xml")
    wco = sea.replace(b'CurrencyTypeCode="USD"', b'currencyID="USD"')
    assert adapter.parse(wco).record == adapter.parse(sea).record


def test_the_namespace_reads_with_or_without_cn(adapter: CnManifestAdapter) -> None:
    without = sample("mt1101_sea_original.xml")
    with_cn = without.replace(b"standard:MT1101:1", b"standard:CN:MT1101:1")
    assert adapter.parse(with_cn).record == adapter.parse(without).record
    assert namespace_of("MT1101").encode() in adapter.render(adapter.parse(without).record)


def test_the_order_of_elements_does_not_matter(adapter: CnManifestAdapter) -> None:
    """The road template's alphabetical order reads as the business order render writes."""
    record = adapter.parse(sample("mt1401_road_original.xml")).record
    rendered = adapter.render(record)
    assert rendered.index(b"<RepresentativePerson>") < rendered.index(b"<Consignment>")
    assert adapter.parse(rendered).record == record


@pytest.mark.parametrize(("name", "written", "not_written"), [
    ("mt1401_road_original.xml", b"<PaymentMethodCode>", b"<FreightPayment>"),
    ("mt1401_road_original.xml", b'currencyID="CNY"', b"CurrencyTypeCode"),
    ("mt1401_road_original.xml", b"<TransportEquipment>\n        <ID>", b"EquipmentIdentification"),
    ("mt2101_sea_pre_manifest.xml", b"<FreightPayment>", b"<Freight>"),
    ("mt2101_sea_pre_manifest.xml", b'CurrencyTypeCode="USD"', b"currencyID"),
    ("mt2101_sea_pre_manifest.xml", b"<EquipmentIdentification>",
     b"<TransportEquipment>\n        <ID>"),
])
def test_render_writes_the_spelling_of_the_message_type(
        adapter: CnManifestAdapter, name: str, written: bytes, not_written: bytes) -> None:
    rendered = adapter.render(adapter.parse(sample(name)).record)
    assert written in rendered
    assert not_written not in rendered


def test_dates_keep_their_digits(adapter: CnManifestAdapter) -> None:
    record = adapter.parse(sample("mt1401_road_original.xml")).record
    arrival = record["declaration"]["unloading_location"]["arrival_date_time"]
    assert arrival == {"instant": datetime(2026, 3, 15, 16, 0, tzinfo=UTC), "digits": 8,
                       "local_date_time": None}
    assert b"<ArrivalDateTime>20260316</ArrivalDateTime>" in adapter.render(record)


def test_a_time_finer_than_its_digits_is_not_rendered(adapter: CnManifestAdapter) -> None:
    record = adapter.parse(sample("mt3101_sea_arrival_report.xml")).record
    record["head"]["send_time"] = {
        "instant": datetime(2026, 3, 23, 15, 0, 1, tzinfo=CHINA_STANDARD_TIME), "digits": 12}
    with pytest.raises(RenderError):
        adapter.render(record)


def test_the_version_travels_only_when_it_is_not_the_first(adapter: CnManifestAdapter) -> None:
    record = adapter.parse(sample("mt3101_sea_arrival_report.xml")).record
    assert etree.fromstring(adapter.render(record)).get("version") is None
    again = adapter.render({"header": {"document_version": 4}, **record})
    assert etree.fromstring(again).get("version") == "4"
    assert adapter.parse(again).document_version == 4


def test_a_sea_sample_with_an_air_mode_code_is_read_with_a_warning(
        adapter: CnManifestAdapter) -> None:
    result = adapter.parse(sample("mt2101_mode_code_quirk.xml"))
    assert result.record["mode"] == "SEA"
    assert [w.split(":", 1)[0] for w in result.warnings] == ["WARN_MANIFEST_MODE_CODE"]


def test_the_suffixes_of_the_sender_are_kept(adapter: CnManifestAdapter) -> None:
    record = adapter.parse(sample("mt2101_sea_pre_manifest.xml")).record
    assert record["sender_code"] == "3100900000001"
    assert record["head"]["sender_id"].endswith("_SW00000020260301_@")


# ---------------------------------------------------------------- an enveloped signature


DS = "{http://www.w3.org/2000/09/xmldsig#}"


def signed_manifest(key: SM2PrivateKey) -> etree._Element:
    root = etree.fromstring(sample("mt2101_sea_pre_manifest.xml"))
    sign_enveloped(root, key, convention="eport-sm2-sm3", serial=0x5A17)
    return root


def test_a_manifest_signed_the_eport_way_reads_as_the_unsigned_one(
        adapter: CnManifestAdapter) -> None:
    """E-Port systems sign the business message itself: its ds:Signature, the root's last
    child, is passed by (the crypto layer checks it), plain or inside an unsigned envelope."""
    key = SM2PrivateKey.generate()
    signed = etree.tostring(signed_manifest(key))
    unsigned = adapter.parse(sample("mt2101_sea_pre_manifest.xml"))
    assert adapter.parse(signed) == unsigned
    assert adapter.parse(sample("mt2101_signed_the_eport_way.xml")) == unsigned
    envelope = render_dxp_msg(DxpEnvelope(
        DxpTransInfo("c0p-1", "3100900000001", ("EPORT",), "2026-03-01T09:30:15", "MT2101"),
        signed))
    inner = read_dxp_msg(SafeXmlParser().parse(envelope)).envelope.data
    assert adapter.parse(inner) == unsigned
    verified = verify_enveloped(SafeXmlParser().parse(inner), lambda hint: key.public_key())
    assert verified.hint.serial == 0x5A17


@pytest.mark.parametrize("move", ["first", "inside", "twice"])
def test_a_signature_anywhere_but_last_in_the_root_is_an_unknown_element(
        adapter: CnManifestAdapter, move: str) -> None:
    root = signed_manifest(SM2PrivateKey.generate())
    signature = root[-1]
    if move == "first":
        root.insert(0, signature)
    elif move == "inside":
        root.find("{*}Declaration").append(signature)
    else:
        root.insert(0, copy.deepcopy(signature))
    with pytest.raises(RuleViolationError) as refused:
        adapter.parse(etree.tostring(root))
    assert refused.value.code == ELEMENT_UNKNOWN
    assert refused.value.message.endswith(
        "Signature: is in another namespace than the message")


def test_the_expected_outcomes_name_every_type() -> None:
    expected = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
    keys = [o["business_key"] for o in expected.values() if "business_key" in o]
    assert {key.split(":")[0] for key in keys} == MESSAGE_TYPES


# ---------------------------------------------------------------- contracts see the model


@pytest.mark.parametrize(("name", "routed"), [
    ("mt2101_sea_pre_manifest.xml", True),
    ("mt2401_road_pre_manifest.xml", False),
    ("mt3101_sea_arrival_report.xml", False),
])
def test_a_contract_condition_picks_the_mode_and_stage(
        adapter: CnManifestAdapter, name: str, routed: bool) -> None:
    """One document type for the family: a contract chooses by mode, stage or type."""
    catalog = DocumentCatalog.from_schemas(AvroSchemas(), {"cn-manifest": adapter.schema_name})
    condition = compile_condition(
        'mode == "SEA" and stage == "PRE_MANIFEST" and head.message_type == "MT2101"',
        known_paths=catalog["cn-manifest"].field_paths)
    assert condition.evaluate(adapter.parse(sample(name)).record) is routed


def test_contact_names_and_numbers_are_personal(adapter: CnManifestAdapter) -> None:
    catalog = DocumentCatalog.from_schemas(AvroSchemas(), {"cn-manifest": adapter.schema_name})
    personal = catalog["cn-manifest"].personal_paths
    assert "declaration.consignments[].undg_contact.name" in personal
    assert "declaration.consignments[].consignee.communications[].id" in personal


@pytest.mark.parametrize(("change", "why"), [
    (lambda r: r["declaration"].update(carrier_id=None), "STRUCTURE_ELEMENT_MISSING"),
    (lambda r: r["head"].update(sender_id="_X"), "MANIFEST_SENDER_INVALID"),
    (lambda r: r["declaration"]["consignments"].append(r["declaration"]["consignments"][0]),
     "MANIFEST_DOCUMENT_DUPLICATE"),
    (lambda r: r.update(mode="AIR"), "does not read back"),
    (lambda r: r["declaration"].update(agent_id="A  B"), "does not read back"),
])
def test_render_refuses_what_parse_would_refuse(
        adapter: CnManifestAdapter, change: Any, why: str) -> None:
    record = adapter.parse(sample("mt2101_sea_pre_manifest.xml")).record
    change(record)
    with pytest.raises(RenderError) as caught:
        adapter.render(record)
    assert why in caught.value.message



CONSOLIDATOR = "<Consolidator>\n          <ID>3100900000002</ID>\n        </Consolidator>"
IN_CONTRACT = "Declaration/Consignment[1]/TransportContractDocument/Consolidator"
GOODS_MEASURE = ('<GoodsMeasure>\n          <GrossMassMeasure unitCode="KGM">8400.5'
                 '</GrossMassMeasure>\n        </GoodsMeasure>')
IN_ITEM = "Declaration/Consignment[1]/ConsignmentItem[1]/GoodsMeasure"


@pytest.mark.parametrize(("original", "wrapped", "code", "where"), [
    (CONSOLIDATOR, CONSOLIDATOR.replace("<Consolidator>", '<Consolidator a="x">'),
     ATTRIBUTE_UNKNOWN, f"{IN_CONTRACT}: @a is not an attribute"),
    (CONSOLIDATOR, CONSOLIDATOR.replace("<Consolidator>", "<Consolidator>x"), TEXT_MISPLACED,
     f"{IN_CONTRACT}: holds text"),
    (CONSOLIDATOR, CONSOLIDATOR.replace("</ID>", "</ID>y"), TEXT_MISPLACED,
     f"{IN_CONTRACT}: holds text"),
    (CONSOLIDATOR, CONSOLIDATOR.replace("</ID>", "</ID><ID>1</ID>"), ELEMENT_REPEATED,
     f"{IN_CONTRACT}/ID[2]: may occur once"),
    (CONSOLIDATOR, CONSOLIDATOR.replace("<ID>", '<ID b="1">'), ATTRIBUTE_UNKNOWN,
     f"{IN_CONTRACT}/ID: @b is not an attribute"),
    (CONSOLIDATOR, CONSOLIDATOR.replace("<ID>", "<ID><ID>1</ID>"), ELEMENT_UNKNOWN,
     f"{IN_CONTRACT}/ID/ID: is not an element"),
    (CONSOLIDATOR, CONSOLIDATOR.replace("3100900000002", "9" * 36), TEXT_TOO_LONG,
     f"{IN_CONTRACT}/ID: is longer than 35"),
    (CONSOLIDATOR, CONSOLIDATOR.replace("ID>", "Name>"), ELEMENT_UNKNOWN,
     f"{IN_CONTRACT}/Name: is not an element"),
    (CONSOLIDATOR, "<Consolidator/>", ELEMENT_MISSING, f"{IN_CONTRACT}/ID: is required"),
    (CONSOLIDATOR, CONSOLIDATOR * 2, ELEMENT_REPEATED, f"{IN_CONTRACT}[2]: may occur once"),
    (GOODS_MEASURE, GOODS_MEASURE.replace("8400.5", "8,4"), NUMBER_INVALID,
     f"{IN_ITEM}/GrossMassMeasure: must be a decimal number"),
    (GOODS_MEASURE, GOODS_MEASURE.replace('"KGM"', '"KGM" q="1"'), ATTRIBUTE_UNKNOWN,
     f"{IN_ITEM}/GrossMassMeasure: @q is not an attribute"),
    (GOODS_MEASURE, GOODS_MEASURE.replace("<GoodsMeasure>", '<GoodsMeasure z="1">'),
     ATTRIBUTE_UNKNOWN, f"{IN_ITEM}: @z is not an attribute"),
])
def test_a_wrapped_leaf_is_refused_by_the_rule_it_breaks(
        adapter: CnManifestAdapter, original: str, wrapped: str, code: str, where: str
        ) -> None:
    text = sample("mt2101_sea_pre_manifest.xml").decode()
    assert original in text
    with pytest.raises(RuleViolationError) as refused:
        adapter.parse(text.replace(original, wrapped).encode())
    assert refused.value.code == code
    assert refused.value.message.startswith(where)
