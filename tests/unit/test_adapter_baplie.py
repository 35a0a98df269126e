from __future__ import annotations

import pickle
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterError, AdapterRegistry, RenderError
from adapters.baplie import BayPlanAdapter, fal7_manifest
from adapters.fal7 import Fal7Adapter
from adapters.smdg import MessageRuleViolation
from message_formats import AvroSchemas
from message_formats.edifact import Level, Where
from tests.unit.adapter_strategies import PROPERTY, broken, event_header, optional
from tests.unit.smdg_support import (
    CELL,
    CELSIUS,
    CODE,
    CONTAINER_NUMBER,
    FULL_OR_EMPTY,
    LOCAL_TIMES,
    LOCODE,
    MASS,
    MESSAGE_FUNCTIONS,
    SIZE_TYPE,
    TEXT,
    dangerous_goods,
    interchange_around,
    refused,
    vessels,
)

DATA = Path(__file__).parent.parent / "data" / "stowage-plan"
RELEASED_0_2_0 = Path(__file__).parents[2] / "message_formats" / "released" / "0.2.0"
SMDG22_HEADER = "UNB+UNOA:2+LINE+TERMINAL+261207:1530+REF1'UNH+M1+BAPLIE:D:95B:UN:SMDG22'"
SMDG31_HEADER = "UNB+UNOA:3+LINE+TERMINAL+261207:1530+REF1'UNH+M1+BAPLIE:D:13B:UN:SMDG31'"
VOYAGE = "BGM++DOC1+9'TDT+20+V1+++EXL:172:20+++9074729:146::EXAMPLE SHIP'LOC+5+CNSHA:139:6'"


@pytest.fixture(scope="module")
def adapter() -> BayPlanAdapter:
    return BayPlanAdapter()


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def interchange(body: str, header: str = SMDG22_HEADER) -> bytes:
    return interchange_around(header, body)


def one_container(*segments: str, header: str = SMDG22_HEADER) -> bytes:
    cell = "LOC+147+0010182::5'EQD+CN+EXMU1234569+22G1:102:5+++5'"
    return interchange(VOYAGE + cell + "".join(f"{s}'" for s in segments), header)


# ---------------------------------------------------------------- samples


def test_smdg22_sample_maps_every_field(adapter: BayPlanAdapter) -> None:
    result = adapter.parse(_sample("smdg22_bay_plan.edi"))
    assert (result.business_key, result.document_version, result.warnings) == (
        "9074729:V2612S:CNSHA", 1, ())
    record = result.record
    assert {k: v for k, v in record.items() if k != "containers"} == {
        "document_number": "BP2612070001",
        "message_function": "9",
        "message_version": "D:95B:SMDG22",
        "prepared_at": "202612071530",
        "vessel": {"name": "EXAMPLE TRADER", "imo_number": "9074729", "call_sign": None,
                   "flag_state": None},
        "voyage_number": "V2612S",
        "carrier": "EXL",
        "port_of_departure": "CNSHA",
        "next_port_of_call": "SGSIN",
    }
    first, second, third = record["containers"]
    assert first == {
        "stowage_position": "0140682", "container_number": "EXMU1234569", "size_type": "45G1",
        "full_or_empty": "Full", "gross_mass_kg": Decimal("24500.000"),
        "verified_gross_mass_kg": Decimal("24650.000"), "temperature_setting_celsius": None,
        "operator": "EXL",
        "port_of_loading": "CNSHA", "port_of_discharge": "SGSIN", "place_of_delivery": None,
        "booking_reference": None, "bill_of_lading_number": "EXLSHA0001234",
        "dangerous_goods": [],
    }
    assert second["dangerous_goods"] == [{
        "imdg_class": "3", "un_number": "1263", "packing_group": "II",
        "flash_point_celsius": Decimal("23.0"), "ems": "F-E S-E"}]
    assert (second["booking_reference"], second["place_of_delivery"]) == ("EXLBKG5678", "MYPKG")
    assert (third["full_or_empty"], third["operator"], third["verified_gross_mass_kg"]) == (
        "Empty", "EXO", None)


def test_smdg31_sample_reads_the_version_3_layout(adapter: BayPlanAdapter) -> None:
    result = adapter.parse(_sample("smdg31_bay_plan.edi"))
    assert (result.business_key, result.document_version) == ("9321483:026N:SGSIN", 2)
    assert [w.split(":")[0] for w in result.warnings] == ["WARN_UN_NUMBER_UNKNOWN"]
    assert "2922" not in result.warnings[0]
    record = result.record
    assert (record["message_version"], record["message_function"]) == ("D:13B:SMDG31", "5")
    assert record["vessel"]["flag_state"] == "PA"
    reefer, tank, empty = record["containers"]
    assert (reefer["operator"], reefer["gross_mass_kg"], reefer["verified_gross_mass_kg"]) == (
        "EXL", Decimal("28700.000"), Decimal("28750.500"))
    assert reefer["temperature_setting_celsius"] == Decimal("-18.0")
    assert [(g["un_number"], g["packing_group"]) for g in tank["dangerous_goods"]] == [
        ("1830", "II"), ("2922", "II")]
    assert (empty["full_or_empty"], empty["gross_mass_kg"]) == ("Empty", None)


@pytest.mark.parametrize(("sample", "code", "where"), [
    ("bad_container_check_digit.edi", "RULE_CONTAINER_CHECK_DIGIT",
     "EQD+CN (segment 25) C237 8260"),
    ("bad_stowage_cell.edi", "RULE_STOWAGE_CELL", "LOC+147 (segment 28) C517 3225"),
    ("bad_imo_check_digit.edi", "RULE_IMO_CHECK_DIGIT", "TDT+20 (segment 4) C222 8213"),
    ("bad_unlocode.edi", "RULE_UNLOCODE", "LOC+83 (segment 25) C517 3225"),
    ("bad_un_number.edi", "RULE_UN_NUMBER", "DGS+IMD (segment 27) C234 7124"),
    ("un_number_class_mismatch.edi", "RULE_UN_NUMBER_CLASS", "DGS+IMD (segment 26) C205 8351"),
    ("cell_occupied_twice.edi", "RULE_STOWAGE_CELL_TWICE", "LOC+147 (segment 28) C517 3225"),
    ("lying_equipment_count.edi", "RULE_EQUIPMENT_COUNT", "CNT+16 (segment 34) C270 6066"),
    ("container_missing.edi", "RULE_REQUIRED", "EQD+CN (segment 20)"),
])
def test_refusals_name_segment_and_element_not_the_value(
    adapter: BayPlanAdapter, sample: str, code: str, where: str
) -> None:
    error = refused(adapter, _sample(sample))
    assert error.code == code
    assert error.message.startswith(f"{where}: ")
    assert error.line == int(where.split("segment ")[1].split(")")[0])
    for value in ("EXMU2345670", "100982", "9074728", "CN1AN", "UN1263"):
        assert value not in error.message


def test_a_refusal_says_where_contrl_reports_it(adapter: BayPlanAdapter) -> None:
    error = refused(adapter, _sample("bad_container_check_digit.edi"))
    assert isinstance(error, MessageRuleViolation)
    assert error.where == Where(Level.SEGMENT, 12, message_reference="BP22",
                                message_type=("BAPLIE", "D", "95B", "UN", "SMDG22"),
                                segment_number=25, segment_tag="EQD")
    assert pickle.loads(pickle.dumps(error)).where == error.where  # crosses the parse worker
    missing = refused(adapter, _sample("container_missing.edi"))
    assert isinstance(missing, MessageRuleViolation) and missing.where is not None
    assert (missing.where.syntax_error, missing.where.segment_number) == (13, 20)


def test_a_refusal_after_reading_carries_the_key_and_version(adapter: BayPlanAdapter) -> None:
    error = refused(adapter, _sample("lying_equipment_count.edi"))
    assert isinstance(error, AdapterError)
    assert (error.business_key, error.document_version) == ("9321483:026N:SGSIN", 2)


# ---------------------------------------------------------------- reading rules


def test_pounds_fahrenheit_and_a_decimal_comma_are_converted(adapter: BayPlanAdapter) -> None:
    data = one_container("MEA+WT++LBR:10000", "MEA+VGM++KGM:4536,25",
                         "DGS+IMD+3+1993+73,4:FAH+3+F-E S-E", "TMP+2+-0,4:FAH")
    container = adapter.parse(data).record["containers"][0]
    assert container["gross_mass_kg"] == Decimal("4535.924")
    assert container["verified_gross_mass_kg"] == Decimal("4536.250")
    assert container["dangerous_goods"][0]["flash_point_celsius"] == Decimal("23.0")
    assert container["temperature_setting_celsius"] == Decimal("-18.0")


@pytest.mark.parametrize(("header", "mass", "operator"), [
    (SMDG22_HEADER, "MEA+AAE+G+KGM:20000", "NAD+CF+EXO:172:20"),  # 3.x qualifiers in 2.x
    (SMDG31_HEADER, "MEA+WT++KGM:20000", "NAD+CA+EXO:172:20"),  # and the other way round
])
def test_either_layouts_qualifiers_are_understood(
    adapter: BayPlanAdapter, header: str, mass: str, operator: str
) -> None:
    container = adapter.parse(one_container(mass, operator, header=header)).record[
        "containers"][0]
    assert (container["gross_mass_kg"], container["operator"]) == (Decimal("20000.000"), "EXO")


def test_call_sign_and_two_digit_year(adapter: BayPlanAdapter) -> None:
    voyage = VOYAGE.replace("9074729:146", "VRAB7:103") + "DTM+137:2701010000:201'"
    record = adapter.parse(interchange(voyage)).record
    assert record["vessel"]["call_sign"] == "VRAB7" and record["vessel"]["imo_number"] is None
    assert record["prepared_at"] == "202701010000"
    assert record["containers"] == []


@pytest.mark.parametrize(("data", "code"), [
    (one_container("MEA+WT++TNE:20"), "RULE_MASS"),
    (one_container("MEA+WT++KGM:0"), "RULE_MASS"),
    (one_container("MEA+WT++KGM:12A"), "RULE_MASS"),
    (one_container("DGS+IMD+3.9+1993"), "RULE_IMDG_CLASS"),
    (one_container("DGS+IMD+3+1993+23:KEL"), "RULE_FLASH_POINT"),
    (one_container("TMP+2+-18"), "RULE_TEMPERATURE"),
    (one_container("DGS+IMD+3+1993++4"), "RULE_PACKING_GROUP"),
    (one_container("DGS+IMD+3+1090++3"), "RULE_UN_NUMBER_CLASS"),
    (interchange(VOYAGE + "DTM+137:2702300000:201'"), "RULE_DATE"),
    (interchange(VOYAGE + "DTM+137:202702010000:102'"), "RULE_DATE"),
    (interchange(VOYAGE.replace("9074729:146", "9074729:ZZZ")), "RULE_VESSEL_ID"),
    (interchange(VOYAGE.replace("EXAMPLE SHIP", "EXAMPLE SHIP:PAN")), "RULE_FLAG_STATE"),
    (interchange(VOYAGE.replace("TDT+20+V1", "TDT+20+")), "RULE_REQUIRED"),
    (interchange(VOYAGE.replace("BGM++DOC1", "BGM++")), "RULE_REQUIRED"),
    (interchange(VOYAGE, SMDG22_HEADER.replace("95B", "96A")), "RULE_MESSAGE_VERSION"),
    (interchange(VOYAGE, SMDG22_HEADER.replace("BAPLIE", "COPRAR")), "RULE_MESSAGE_TYPE"),
    (interchange(VOYAGE, SMDG22_HEADER.replace("SMDG22'", "SMDG22++0'")),
     "RULE_DOCUMENT_VERSION"),
    (one_container("LOC+147+0010182::5", "EQD+CN+EXMU2345675"), "RULE_STOWAGE_CELL_TWICE"),
    (one_container("LOC+147+0010184::5", "EQD+CN+EXMU1234569"), "RULE_CONTAINER_TWICE"),
    (one_container("CNT+16:2"), "RULE_EQUIPMENT_COUNT"),
])
def test_rules(adapter: BayPlanAdapter, data: bytes, code: str) -> None:
    assert refused(adapter, data).code == code


def test_each_bay_plan_of_an_interchange_is_a_document_of_its_own(
        adapter: BayPlanAdapter) -> None:
    """Once refused (RULE_MESSAGE_COUNT); now each message is read (docs/adapters.md,
    "Several messages per interchange")."""
    message = f"UNH+M1+BAPLIE:D:95B:UN:SMDG22'{VOYAGE}UNT+5+M1'"
    data = f"UNB+UNOA:2+LINE+TERMINAL+261207:1530+REF1'{message}{message}UNZ+2+REF1'"
    parsed = adapter.parse(data.encode())
    assert [(part.number, part.own) for part in parsed.parts] == [(1, True), (2, False)]
    assert parsed.parts[1].parsed is not None
    assert parsed.parts[1].parsed.record == parsed.record


# ---------------------------------------------------------------- render


def test_render_writes_each_layouts_own_segments(adapter: BayPlanAdapter) -> None:
    for sample, expected in (
        ("smdg22_bay_plan.edi", ("MEA+VGM++KGM:24650", "NAD+CA+EXL:172:20",
                                 "DTM+137:2612071530:201")),
        ("smdg31_bay_plan.edi", ("MEA+AAE+VGM+KGM:28750.5", "NAD+CF+EXL:172:20",
                                 "DTM+137:202612071530:203")),
    ):
        record = adapter.parse(_sample(sample)).record
        text = adapter.render(record).decode()
        assert all(f"{segment}'" in text for segment in expected), text
        assert text.startswith("UNA:+.? '\r\nUNB+UNOA:")


def test_render_picks_the_smallest_repertoire_and_releases_separators(
    adapter: BayPlanAdapter
) -> None:
    record = adapter.parse(_sample("smdg22_bay_plan.edi")).record
    latin = broken(record, ("vessel", "name"), "Fähre d'Or+1")
    rendered = adapter.render(latin)
    assert b"\r\nUNB+UNOC:3+" in rendered
    assert ":146::Fähre d?'Or?+1'" in rendered.decode("latin-1")
    chinese = broken(record, ("vessel", "name"), "远洋之星")
    assert b"\r\nUNB+UNOY:4+" in adapter.render(chinese)
    assert adapter.parse(adapter.render(chinese)).record == chinese


def test_render_carries_the_document_version(adapter: BayPlanAdapter) -> None:
    record = adapter.parse(_sample("smdg22_bay_plan.edi")).record
    result = adapter.parse(adapter.render({"header": {"document_version": 7}, **record}))
    assert (result.record, result.document_version) == (record, 7)


@pytest.mark.parametrize(("path", "value"), [
    (("vessel", "call_sign"), "VRAB7"),  # a bay plan names the ship by one identifier
    (("prepared_at", ), "199912312359"),  # SMDG 2.x writes two-digit years
    (("containers", 0, "container_number"), "EXMU1234560"),
    (("containers", 0, "stowage_position"), "14068"),
    (("containers", 0, "gross_mass_kg"), 24500),
    (("message_version", ), "D:96A:SMDG22"),
    (("containers", 0, "full_or_empty"), "Half"),
    (("containers", 0, "port_of_loading"), "Shanghai"),
])
def test_render_refuses_what_a_bay_plan_cannot_carry(
    adapter: BayPlanAdapter, path: tuple[Any, ...], value: Any
) -> None:
    record = adapter.parse(_sample("smdg22_bay_plan.edi")).record
    with pytest.raises(RenderError):
        adapter.render(broken(record, path, value))


# ---------------------------------------------------------------- FAL 7


def test_fal7_manifest_takes_what_a_bay_plan_states(adapter: BayPlanAdapter) -> None:
    manifest = fal7_manifest(adapter.parse(_sample("smdg31_bay_plan.edi")).record)
    assert manifest is not None
    assert manifest["ship"] == {"name": "EXAMPLE CARRIER", "imo_number": "9321483",
                                "call_sign": None, "flag_state": "PA", "gross_tonnage": None,
                                "net_tonnage": None}
    assert (manifest["document_number"], manifest["voyage_number"], manifest["port_of_report"]
            ) == ("BP2612070002", "026N", "CNYTN")
    assert manifest["master_name"] is None and manifest["shipping_agent"] is None
    assert [(g["container_number"], g["stowage_position"], g["un_number"], g["imdg_class"],
             g["booking_reference"]) for g in manifest["dangerous_goods"]] == [
        ("EXMU4567898", "0340286", "3480", "9", "EXLBKG9012"),
        ("EXMU6789019", "0350184", "1830", "8", None),
        ("EXMU6789019", "0350184", "2922", "8", None),
    ]
    item = manifest["dangerous_goods"][2]
    assert (item["flash_point_celsius"], item["packing_group"], item["ems"]) == (
        Decimal("61.0"), "II", "F-A S-B")
    assert all(item[field] is None for field in (
        "marks_and_numbers", "number_of_packages", "kind_of_packages", "proper_shipping_name",
        "marine_pollutant", "gross_mass_kg", "net_mass_kg"))


def test_fal7_manifest_fits_its_schema(adapter: BayPlanAdapter, schemas: AvroSchemas) -> None:
    manifest = fal7_manifest(adapter.parse(_sample("smdg31_bay_plan.edi")).record)
    assert manifest is not None
    header = {**event_header(adapter, 1), "document_type": "fal7"}
    name = "px.canonical.Fal7DangerousGoodsManifest"
    event = {"header": header, **manifest}
    assert schemas.decode(schemas.encode(name, event)) == (name, event)


def test_no_fal7_manifest_without_dangerous_goods_or_imo_number(adapter: BayPlanAdapter) -> None:
    record = adapter.parse(_sample("smdg22_bay_plan.edi")).record
    assert fal7_manifest(record) is not None
    assert fal7_manifest(broken(record, ("containers", 1, "dangerous_goods"), [])) is None
    by_call_sign = broken(broken(record, ("vessel", "imo_number"), None),
                          ("vessel", "call_sign"), "VRAB7")
    assert fal7_manifest(by_call_sign) is None
    assert fal7_manifest(broken(record, ("next_port_of_call",), None)) is None


# ---------------------------------------------------------------- registry


def test_registered_and_declares_its_message_type() -> None:
    registry = AdapterRegistry.default(AvroSchemas())
    adapter = registry.get("baplie-edifact")
    assert isinstance(adapter, BayPlanAdapter)
    assert adapter.edifact_message_types == frozenset({"BAPLIE"})


# ---------------------------------------------------------------- properties

DIRECTORIES = st.sampled_from(["D:95B:SMDG22", "D:95B:SMDG20", "D:95B:", "D:13B:SMDG31",
                               "D:13B:SMDG311"])


@st.composite
def containers(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "stowage_position": draw(CELL),
        "container_number": draw(CONTAINER_NUMBER),
        "size_type": draw(optional(SIZE_TYPE)),
        "full_or_empty": draw(FULL_OR_EMPTY),
        "gross_mass_kg": draw(optional(MASS)),
        "verified_gross_mass_kg": draw(optional(MASS)),
        "temperature_setting_celsius": draw(optional(CELSIUS)),
        "operator": draw(optional(CODE)),
        "port_of_loading": draw(optional(LOCODE)),
        "port_of_discharge": draw(optional(LOCODE)),
        "place_of_delivery": draw(optional(LOCODE)),
        "booking_reference": draw(optional(TEXT)),
        "bill_of_lading_number": draw(optional(TEXT)),
        "dangerous_goods": draw(st.lists(dangerous_goods(), max_size=2)),
    }


@st.composite
def stowage_plans(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "document_number": draw(TEXT),
        "message_function": draw(MESSAGE_FUNCTIONS),
        "message_version": draw(DIRECTORIES),
        "prepared_at": draw(optional(LOCAL_TIMES)),
        "vessel": draw(vessels()),
        "voyage_number": draw(TEXT),
        "carrier": draw(optional(CODE)),
        "port_of_departure": draw(optional(LOCODE)),
        "next_port_of_call": draw(optional(LOCODE)),
        "containers": draw(st.lists(containers(), max_size=4, unique_by=(
            lambda c: c["stowage_position"], lambda c: c["container_number"]))),
    }


@PROPERTY
@given(record=stowage_plans(), version=st.integers(1, 2**31 - 1))
def test_parse_inverts_render(adapter: BayPlanAdapter, record: dict[str, Any],
                              version: int) -> None:
    result = adapter.parse(adapter.render({"header": {"document_version": version}, **record}))
    assert (result.record, result.document_version) == (record, version)


@PROPERTY
@given(record=stowage_plans())
def test_canonical_record_survives_avro(adapter: BayPlanAdapter, schemas: AvroSchemas,
                                        record: dict[str, Any]) -> None:
    event = {"header": event_header(adapter, 1), **record}
    assert schemas.decode(schemas.encode(adapter.schema_name, event)) == (
        adapter.schema_name, event)


def test_a_fal7_from_a_bay_plan_is_not_rendered_as_fal7_xml(adapter: BayPlanAdapter) -> None:
    """The FAL 7 XML form requires what a bay plan does not state: rendering the record as
    that form is refused rather than filled in."""
    registry = AdapterRegistry.default(AvroSchemas())
    manifest = fal7_manifest(adapter.parse(_sample("smdg31_bay_plan.edi")).record)
    assert manifest is not None
    with pytest.raises(RenderError):
        registry.get("fal7-xml").render(manifest)


def test_a_fal7_written_before_its_fields_became_optional_reads_as_todays(
    schemas: AvroSchemas,
) -> None:
    """FAL 7 events already on the topics and in the trail (message_formats/released/0.2.0)
    decode with the current schema, by Avro schema resolution."""
    released = AvroSchemas.from_dirs(RELEASED_0_2_0, builtin=False)
    fal7 = Fal7Adapter()
    record = fal7.parse((DATA.parent / "fal7" / "valid_departure.xml").read_bytes()).record
    name = "px.canonical.Fal7DangerousGoodsManifest"
    event = {"header": event_header(fal7, 1), **record}
    written = released.encode(name, event)
    assert written[2:10] != schemas.fingerprint(name)
    assert schemas.decode(written) == (name, event)
