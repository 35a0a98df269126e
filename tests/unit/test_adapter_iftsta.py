"""The IFTSTA adapter: a status report as one event per STS, each with the documents,
containers, place and local time it concerns; its refusals; render then parse."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterRegistry, RenderError, RuleViolationError
from adapters.edi_text import iso_local
from adapters.iftsta import IftstaAdapter
from adapters.iso6346 import with_check_digit
from message_formats import AvroSchemas
from message_formats.edifact import Level, Where
from tests.unit.adapter_strategies import PROPERTY, broken, event_header, optional, pattern

DATA = Path(__file__).parents[1] / "data" / "iftsta-edifact"
SCHEMAS = AvroSchemas()


@pytest.fixture(scope="module")
def adapter() -> IftstaAdapter:
    return IftstaAdapter()


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_each_status_is_an_event_with_what_it_concerns(adapter: IftstaAdapter) -> None:
    result = adapter.parse(sample("valid_loaded_and_departed.edi"))
    record = result.record
    assert (result.business_key, result.document_version) == (
        "IFTSTA:EXAMPLELINE:EXSR2026001201", 1)
    assert {k: v for k, v in record.items() if k != "events"} == {
        "report_number": "EXSR2026001201", "function_code": "9", "sender_id": "EXAMPLELINE",
        "receiver_id": "EXAMPLEFORWARDER", "message_version": "D:00B:UN"}
    loaded, departed, gate_in = record["events"]
    assert loaded == {
        "consignment_number": 1, "transport_document_number": "EXLN2026000001",
        "booking_reference": "EXBK000318", "status_code": "AE", "status_code_agency": "ZZZ",
        "status_text": "LOADED ON BOARD", "event_time_local": "2026-12-15T05:45",
        "location_un_locode": "CNSHA", "location_name": "SHANGHAI YANGSHAN",
        "container_numbers": ["EXMU6000012", "EXMU6000028"]}
    # The consignment's references hold for each of its events.
    assert (departed["booking_reference"], departed["container_numbers"]) == ("EXBK000318", [])
    assert (gate_in["consignment_number"], gate_in["event_time_local"]) == (2, "2026-12-14")


def test_a_later_version_of_a_report(adapter: IftstaAdapter) -> None:
    result = adapter.parse(sample("valid_second_version_one_line.edi"))
    (event,) = result.record["events"]
    assert (result.document_version, result.record["function_code"]) == (2, "5")
    assert (event["status_code_agency"], event["status_text"], event["event_time_local"]) == (
        "HS", "RAIL DEPARTED FROM IN-TRANSIT LOCAT", "2026-12-20T21:45:30")
    assert event["transport_document_number"] is None


def test_a_refusal_names_segment_and_element(adapter: IftstaAdapter) -> None:
    with pytest.raises(RuleViolationError) as caught:
        adapter.parse(sample("status_without_code.edi"))
    assert (caught.value.code, caught.value.line) == ("RULE_EDIFACT_REQUIRED", 18)
    assert caught.value.message.startswith("STS C556 9011 (segment 18): ")
    where = getattr(caught.value, "where", None)  # for the CONTRL: missing (13), at the STS
    assert isinstance(where, Where)
    assert (where.level, where.syntax_error, where.segment_number, where.segment_tag) == (
        Level.SEGMENT, 13, 18, "STS")


def test_registered_as_a_builtin_that_reads_iftsta() -> None:
    found = AdapterRegistry.default(SCHEMAS).get("iftsta-edifact")
    assert isinstance(found, IftstaAdapter)
    assert found.edifact_message_types == frozenset({"IFTSTA"})


@pytest.mark.parametrize(("path", "value"), [
    (("events", 0, "consignment_number"), 2),  # consignments out of order
    (("events", 0, "location_un_locode"), None),  # a place name alone
    (("events", 0, "event_time_local"), "2026-12-15 05:45"),  # not as iso_local writes it
])
def test_what_does_not_read_back_is_refused(
        adapter: IftstaAdapter, path: tuple[Any, ...], value: Any) -> None:
    record = adapter.parse(sample("valid_loaded_and_departed.edi")).record
    with pytest.raises(RenderError):
        adapter.render(broken(record, path, value))


# ---------------------------------------------------------------- property: round trip

WORD = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./é中+:?*'"),
               min_size=1, max_size=10)
CODE = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), min_size=1,
               max_size=12)
LOCAL = st.sampled_from((8, 12, 14)).flatmap(lambda digits: st.datetimes(
    datetime(2000, 1, 1), datetime(2099, 12, 31)).map(lambda m: iso_local(m, digits)))


@st.composite
def events(draw: st.DrawFn, number: int) -> dict[str, Any]:
    located = draw(st.booleans())
    return {
        "consignment_number": number,
        "transport_document_number": draw(optional(CODE)),
        "booking_reference": draw(optional(CODE)),
        "status_code": draw(CODE), "status_code_agency": draw(optional(CODE)),
        "status_text": draw(optional(WORD)),
        "event_time_local": draw(optional(LOCAL)),
        "location_un_locode": draw(pattern(r"[A-Z]{2}[A-Z2-9]{3}")) if located else None,
        "location_name": draw(optional(WORD)) if located else None,
        "container_numbers": draw(st.lists(pattern(r"[A-Z]{3}U[0-9]{6}").map(
            with_check_digit), max_size=2)),
    }


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    per_consignment = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    return {
        "report_number": draw(CODE), "function_code": draw(st.sampled_from("9541")),
        "sender_id": draw(CODE), "receiver_id": draw(CODE),
        "message_version": draw(st.sampled_from(("D:00B:UN", "D:99B:UN", "D:00B:UN:2.0"))),
        "events": [draw(events(number)) for number, count in enumerate(per_consignment, 1)
                   for _ in range(count)],
    }


@PROPERTY
@given(record=records(), version=st.integers(1, 50))
def test_render_then_parse_gives_the_record_back(
        adapter: IftstaAdapter, record: dict[str, Any], version: int) -> None:
    result = adapter.parse(adapter.render({"header": {"document_version": version}, **record}))
    assert (result.record, result.document_version) == (record, version)


@PROPERTY
@given(record=records())
def test_every_record_it_carries_fits_the_schema(
        adapter: IftstaAdapter, record: dict[str, Any]) -> None:
    event = {"header": event_header(adapter, 1), **record}
    assert SCHEMAS.decode(SCHEMAS.encode(adapter.schema_name, event)) == (
        adapter.schema_name, event)
