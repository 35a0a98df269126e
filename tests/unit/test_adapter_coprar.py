from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import RenderError
from adapters.coarri import ContainerReportAdapter
from adapters.coprar import ContainerHandlingAdapter, ContainerOrderAdapter
from message_formats import AvroSchemas
from tests.unit.adapter_strategies import PROPERTY, broken, event_header, optional, pattern
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

DATA = Path(__file__).parent.parent / "data"
ORDER = DATA / "container-order" / "coprar_loading_order.edi"
REPORT = DATA / "container-report" / "coarri_discharge_report.edi"
HEADER = "UNB+UNOA:2+LINE+TERMINAL+261207:1530+REF1'UNH+M1+COPRAR:D:95B:UN:ITG12'"
VOYAGE = "BGM+45+DOC1+9'TDT+20+V1+1++EXL:172:20+++9074729:146::EXAMPLE SHIP'"


@pytest.fixture(scope="module")
def order_adapter() -> ContainerOrderAdapter:
    return ContainerOrderAdapter()


@pytest.fixture(scope="module")
def report_adapter() -> ContainerReportAdapter:
    return ContainerReportAdapter()


def interchange(body: str, header: str = HEADER) -> bytes:
    return interchange_around(header, body)


# ---------------------------------------------------------------- samples


def test_coprar_sample_maps_every_field(order_adapter: ContainerOrderAdapter) -> None:
    result = order_adapter.parse(ORDER.read_bytes())
    assert (result.business_key, result.document_version, result.warnings) == (
        "9074729:V2612S:LO2612070001", 1, ())
    record = result.record
    assert {k: v for k, v in record.items() if k != "containers"} == {
        "kind": "Order",
        "document_number": "LO2612070001",
        "document_name_code": "45",
        "message_function": "9",
        "message_version": "D:95B:ITG12",
        "prepared_at": "202612070900",
        "vessel": {"name": "EXAMPLE TRADER", "imo_number": "9074729", "call_sign": None,
                   "flag_state": None},
        "voyage_number": "V2612S",
        "carrier": "EXL",
        "port_of_loading": "CNSHA",
        "port_of_discharge": None,
    }
    first, second, third = record["containers"]
    assert first == {
        "container_number": "EXMU1234569", "size_type": "45G1", "equipment_status": "2",
        "full_or_empty": "Full", "stowage_position": "0140682", "gross_mass_kg": None,
        "verified_gross_mass_kg": Decimal("24650.000"), "temperature_setting_celsius": None,
        "port_of_loading": None,
        "port_of_discharge": "SGSIN", "place_of_delivery": None, "handled_at": None,
        "booking_reference": "EXLBKG1001", "bill_of_lading_number": None, "operator": "EXL",
        "seals": ["EXS0001234"], "dangerous_goods": [],
    }
    assert (second["place_of_delivery"], second["gross_mass_kg"]) == ("MYPKG", Decimal("18200.000"))
    assert second["dangerous_goods"][0]["un_number"] == "1263"
    assert (third["equipment_status"], third["full_or_empty"], third["operator"]) == (
        "6", "Empty", "EXO")


def test_each_adapter_reads_only_its_message_type(
    order_adapter: ContainerOrderAdapter, report_adapter: ContainerReportAdapter
) -> None:
    assert refused(order_adapter, REPORT.read_bytes()).code == "RULE_MESSAGE_TYPE"
    assert refused(report_adapter, ORDER.read_bytes()).code == "RULE_MESSAGE_TYPE"
    assert order_adapter.edifact_message_types == frozenset({"COPRAR"})
    assert report_adapter.edifact_message_types == frozenset({"COARRI"})


@pytest.mark.parametrize(("body", "code"), [
    (VOYAGE + "EQD+CN+EXMU1234569++++7'", "RULE_FULL_OR_EMPTY"),
    (VOYAGE + "EQD+CN+EXMU1234569+++X1'", "RULE_EQUIPMENT_STATUS"),
    (VOYAGE + "EQD+CN+EXMU1234569'LOC+147+0010182::5'EQD+CN+EXMU2345675'LOC+147+0010182::5'",
     "RULE_STOWAGE_CELL_TWICE"),
    (VOYAGE + "EQD+CN+EXMU1234569'LOC+7+DEHAM'LOC+9+Hamburg'", "RULE_UNLOCODE"),
    (VOYAGE + "EQD+CN+EXMU1234569'MEA+AAE+VGM+KGM:-1'", "RULE_MASS"),
    (VOYAGE + "EQD+CN+EXMU1234569'DTM+203:2612081415:102'", "RULE_DATE"),
    (VOYAGE.replace("9074729:146", "VRAB7:ZZZ"), "RULE_VESSEL_ID"),
    (VOYAGE.replace("BGM+45+DOC1+9", "BGM+45++9"), "RULE_REQUIRED"),
    (VOYAGE + "EQD+CN'", "RULE_REQUIRED"),
])
def test_rules(order_adapter: ContainerOrderAdapter, body: str, code: str) -> None:
    error = refused(order_adapter, interchange(body))
    assert error.code == code
    assert "EXMU" not in error.message and "Hamburg" not in error.message


def test_directories_read(order_adapter: ContainerOrderAdapter) -> None:
    for release in ("95B", "00B"):
        data = interchange(VOYAGE, HEADER.replace("95B", release))
        assert order_adapter.parse(data).record["message_version"] == f"D:{release}:ITG12"
    assert refused(order_adapter, interchange(VOYAGE, HEADER.replace("95B", "13B"))).code == (
        "RULE_MESSAGE_VERSION")


# ---------------------------------------------------------------- render


def test_render_writes_the_count_and_the_version(order_adapter: ContainerOrderAdapter) -> None:
    record = order_adapter.parse(ORDER.read_bytes()).record
    rendered = order_adapter.render({"header": {"document_version": 4}, **record})
    text = rendered.decode()
    assert "UNH+" in text and "+COPRAR:D:95B:UN:ITG12++4'" in text
    assert "CNT+16:3'" in text and "BGM+45+LO2612070001+9'" in text
    assert order_adapter.parse(rendered).document_version == 4


@pytest.mark.parametrize(("path", "value"), [
    (("kind",), "Report"),  # a COPRAR is an order
    (("containers", 0, "seals"), "EXS0001234"),
    (("containers", 0, "equipment_status"), "export"),
    (("message_version",), "D:13B:ITG12"),
])
def test_render_refuses_what_the_message_cannot_carry(
    order_adapter: ContainerOrderAdapter, path: tuple[Any, ...], value: Any
) -> None:
    record = order_adapter.parse(ORDER.read_bytes()).record
    with pytest.raises(RenderError):
        order_adapter.render(broken(record, path, value))


# ---------------------------------------------------------------- properties


@st.composite
def handled_containers(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "container_number": draw(CONTAINER_NUMBER),
        "size_type": draw(optional(SIZE_TYPE)),
        "equipment_status": draw(optional(pattern(r"[0-9]{1,2}"))),
        "full_or_empty": draw(FULL_OR_EMPTY),
        "stowage_position": draw(optional(CELL)),
        "gross_mass_kg": draw(optional(MASS)),
        "verified_gross_mass_kg": draw(optional(MASS)),
        "temperature_setting_celsius": draw(optional(CELSIUS)),
        "port_of_loading": draw(optional(LOCODE)),
        "port_of_discharge": draw(optional(LOCODE)),
        "place_of_delivery": draw(optional(LOCODE)),
        "handled_at": draw(optional(LOCAL_TIMES)),
        "booking_reference": draw(optional(TEXT)),
        "bill_of_lading_number": draw(optional(TEXT)),
        "operator": draw(optional(CODE)),
        "seals": draw(st.lists(TEXT, max_size=2)),
        "dangerous_goods": draw(st.lists(dangerous_goods(), max_size=2)),
    }


@st.composite
def container_handlings(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "document_number": draw(TEXT),
        "document_name_code": draw(optional(pattern(r"[0-9]{1,3}"))),
        "message_function": draw(MESSAGE_FUNCTIONS),
        "message_version": draw(st.sampled_from(["D:95B:ITG12", "D:00B:ITG13", "D:95B:"])),
        "prepared_at": draw(optional(LOCAL_TIMES)),
        "vessel": draw(vessels()),
        "voyage_number": draw(TEXT),
        "carrier": draw(optional(CODE)),
        "port_of_loading": draw(optional(LOCODE)),
        "port_of_discharge": draw(optional(LOCODE)),
        "containers": draw(st.lists(handled_containers(), max_size=4, unique_by=(
            lambda c: c["container_number"],
            lambda c: c["stowage_position"] or c["container_number"]))),
    }


@PROPERTY
@given(data=st.data(), version=st.integers(1, 2**31 - 1))
def test_parse_inverts_render(
    order_adapter: ContainerOrderAdapter, report_adapter: ContainerReportAdapter,
    data: st.DataObject, version: int
) -> None:
    adapter: ContainerHandlingAdapter = data.draw(st.sampled_from([order_adapter,
                                                                   report_adapter]))
    record = data.draw(container_handlings(adapter.kind))
    result = adapter.parse(adapter.render({"header": {"document_version": version}, **record}))
    assert (result.record, result.document_version) == (record, version)


@PROPERTY
@given(record=container_handlings("Order"))
def test_canonical_record_survives_avro(order_adapter: ContainerOrderAdapter,
                                        schemas: AvroSchemas, record: dict[str, Any]) -> None:
    event = {"header": event_header(order_adapter, 1), **record}
    assert schemas.decode(schemas.encode(order_adapter.schema_name, event)) == (
        order_adapter.schema_name, event)
