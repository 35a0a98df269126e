"""UN/EDIFACT PAXLST adapters: crew lists to FAL 5, passenger lists to FAL 6, and back. The
samples are synthetic (tests/data/paxlst/SOURCES.md); the interchanges made here are written
with the EDIFACT layer's writer or by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterRegistry, Confidence, FormatDetector, RenderError
from adapters.paxlst import (
    PaxlstCrewListAdapter,
    PaxlstPassengerListAdapter,
    PaxlstRuleViolation,
)
from message_formats import AvroSchemas
from message_formats.countries import ALPHA3_BY_ALPHA2
from message_formats.edifact import Level
from tests.unit.adapter_strategies import (
    PROPERTY,
    broken,
    imo_with_check_digit,
    optional,
    pattern,
    tokens,
    warning_codes,
)
from tests.unit.test_adapter_fal5 import LOCODE, RECEIVED, event, with_count

DATA = Path(__file__).parents[1] / "data"
CREW_DATA = DATA / "paxlst" / "fal5"
PASSENGER_DATA = DATA / "paxlst" / "fal6"
CREW = PaxlstCrewListAdapter()
PASSENGERS = PaxlstPassengerListAdapter()


def crew_sample(name: str) -> bytes:
    return (CREW_DATA / name).read_bytes()


def passenger_sample(name: str) -> bytes:
    return (PASSENGER_DATA / name).read_bytes()


def interchange(*segments: str) -> bytes:
    """A one-message interchange written by hand, UNT counted."""
    return "'\r\n".join([
        "UNA:+.? ", "UNB+UNOC:3+PXLINE:ZZZ+PORTGW:ZZZ+260314:2210+R1",
        "UNH+M1+PAXLST:D:05B:UN:IATA", *segments, f"UNT+{len(segments) + 2}+M1", "UNZ+1+R1", ""
    ]).encode("latin-1")


VOYAGE = ("TDT+20+0312E+1+++++9456783:146::PX EASTERN DAWN:HK", "LOC+87+CNSHA",
          "DTM+232:202603150630:203")
MEMBER = ("NAD+FM+++CHEN:WEI", "DTM+329:19800101:102", "NAT+2+CHN", "DOC+P:110:111+E1")


# ---------------------------------------------------------------- what a list gives


def test_a_crew_list_maps_what_it_gives_and_leaves_the_rest_null() -> None:
    result = CREW.parse(crew_sample("crew_list.edi"))
    record = result.record
    assert result.business_key == "9456783:0312E:A:CNSHA"
    assert {k: v for k, v in record.items() if k != "crew"} == {
        "arrival_or_departure": "Arrival",
        "ship": {"name": "PX EASTERN DAWN", "imo_number": "9456783", "call_sign": "VRQD4",
                 "flag_state": "HK", "gross_tonnage": None, "net_tonnage": None},
        "voyage_number": "0312E",
        "port_of_arrival_departure": "CNSHA",
        "date_time_of_arrival_departure": None,  # DTM has no UTC offset: not invented
        "utc_offset_minutes": None,
        "local_date_time_of_arrival_departure": "2026-03-15T06:30",
        "last_port_of_call": "KRPUS",
        "crew_count": 6,
    }
    master, second = record["crew"][:2]
    assert master == {
        "family_name": "CHEN", "given_names": "CREW 0", "rank_or_rating": "MASTER",
        "nationality": "CN", "date_of_birth": date(1970, 5, 14), "place_of_birth": None,
        "identity_document": {"document_type": "IdentityCard", "number": "E00000000",
                              "issuing_state": "CN", "expiry_date": date(2031, 2, 18)},
    }
    assert second["given_names"] == "CREW 1"  # C080 given names, components joined
    assert second["place_of_birth"] == "PORT TOWN 1"
    assert second["date_of_birth"] == date(1971, 2, 11)  # YYMMDD: before the voyage
    assert second["identity_document"]["expiry_date"] is None
    assert second["identity_document"]["issuing_state"] is None


def test_a_passenger_list_maps_ports_transit_and_release_characters() -> None:
    record = PASSENGERS.parse(passenger_sample("passengers_10_with_transit.edi")).record
    assert record["passenger_count"] == 10
    assert [p["transit"] for p in record["passengers"]].count(True) == 2
    assert record["passengers"][3]["transit"] is True  # NAD+DDU
    assert record["passengers"][0]["port_of_embarkation"] == "KRPUS"
    assert "last_port_of_call" not in record  # FAL 6 has none
    released = PASSENGERS.parse(
        passenger_sample("passengers_custom_separators_and_release.edi")).record
    assert released["passengers"][0]["family_name"] == "O'NEILL*SMITH"
    assert released["passengers"][0]["given_names"] == "ANN:MARIE"


def test_a_syntax_4_list_in_utf_8_with_repetitions() -> None:
    record = PASSENGERS.parse(passenger_sample("passengers_syntax4_repetitions.edi")).record
    assert [p["family_name"] for p in record["passengers"]] == ["CHEN", "SANTOS", "NGUYEN"]


def test_a_list_split_over_messages_is_one_list_in_order() -> None:
    whole = CREW.parse(crew_sample("crew_list_split_over_two_messages.edi")).record
    assert whole["crew_count"] == 7
    assert [m["given_names"] for m in whole["crew"]] == [f"CREW {n}" for n in range(7)]


def test_the_version_comes_from_bgm_and_the_key_from_the_call_sign_without_imo() -> None:
    result = CREW.parse(crew_sample("crew_list_one_line.edi"))
    assert (result.business_key, result.document_version) == ("VRQD4:0312E:A:CNSHA", 2)
    assert result.record["ship"]["imo_number"] is None
    assert result.record["ship"]["flag_state"] is None


def test_a_count_with_leading_zeros_counts() -> None:
    data = crew_sample("crew_list.edi").replace(b"CNT+41:6", b"CNT+41:006")
    assert CREW.parse(data).record["crew_count"] == 6
    assert refusal(CREW, data.replace(b"CNT+41:006", b"CNT+41:6X")).code == "RULE_CREW_COUNT"


def test_expired_documents_are_warnings_naming_no_date() -> None:
    result = CREW.parse(crew_sample("crew_list_expired_document.edi"))
    assert warning_codes(result.warnings) == ["RULE_DOCUMENT_EXPIRED"] * 2
    assert all("2026" not in w for w in result.warnings)


def test_a_departure_list_has_the_departure_port_and_time() -> None:
    record = CREW.parse(interchange("BGM+250", "TDT+20+V1+1+++++:::PX TUG", "LOC+125+CNSHA",
                                    "DTM+189:20260315063015:204", *MEMBER, "CNT+41:1")).record
    assert (record["arrival_or_departure"], record["port_of_arrival_departure"]) == (
        "Departure", "CNSHA")
    assert record["local_date_time_of_arrival_departure"] == "2026-03-15T06:30:15"
    assert record["ship"] == {"name": "PX TUG", "imo_number": None, "call_sign": None,
                              "flag_state": None, "gross_tonnage": None, "net_tonnage": None}
    assert CREW.parse(CREW.render(record)).record == record


@pytest.mark.parametrize(("written", "voyage", "expected"), [
    ("DTM+329:260314", "202603150630", date(2026, 3, 14)),  # born the day before
    ("DTM+329:260316", "202603150630", date(1926, 3, 16)),  # not after the voyage
    ("DTM+36:610218", "202603150630", date(2061, 2, 18)),  # expiry: the nearest century
    ("DTM+36:910218", "202603150630", date(1991, 2, 18)),
])
def test_two_digit_years(written: str, voyage: str, expected: date) -> None:
    member = [*MEMBER[:1], "DTM+329:19800101:102", *MEMBER[2:]]
    if written.startswith("DTM+329"):
        member[1] = written
    else:
        member.append(written)
    record = CREW.parse(interchange("BGM+250", VOYAGE[0], VOYAGE[1], f"DTM+232:{voyage}:203",
                                    *member, "CNT+41:1")).record
    person = record["crew"][0]
    found = person["date_of_birth"] if written.startswith("DTM+329") else person[
        "identity_document"]["expiry_date"]
    assert found == expected


# ---------------------------------------------------------------- refusals


def refusal(adapter: Any, data: bytes) -> PaxlstRuleViolation:
    with pytest.raises(PaxlstRuleViolation) as caught:
        adapter.parse(data)
    return caught.value


def test_a_refusal_says_where_for_a_contrl_and_names_no_value() -> None:
    error = refusal(CREW, crew_sample("crew_bad_nationality.edi"))
    assert error.code == "RULE_NATIONALITY"
    assert (error.where.level, error.where.message_reference, error.where.segment_number,
            error.where.segment_tag) == (Level.SEGMENT, "M1", 20, "NAT")
    assert error.where.message_type == ("PAXLST", "D", "05B", "UN", "IATA")
    assert error.where.syntax_error == 12  # invalid value
    assert error.line == 20
    assert "XYZ" not in error.message


def test_a_rule_broken_after_reading_keeps_the_key_and_version() -> None:
    data = interchange("BGM+250+:3", *VOYAGE, *MEMBER[:1], "DTM+329:20260401:102", *MEMBER[2:],
                       "CNT+41:1")
    error = refusal(CREW, data)
    assert error.code == "RULE_BIRTH_AFTER_VOYAGE"
    assert (error.business_key, error.document_version) == ("9456783:0312E:A:CNSHA", 3)
    assert "20260401" not in error.message


def test_something_missing_is_reported_as_missing() -> None:
    error = refusal(CREW, interchange("BGM+250", *VOYAGE, *MEMBER[:2], "DOC+P:110:111+E1"))
    assert (error.code, error.where.syntax_error, error.where.segment_tag) == (
        "RULE_PERSON_INCOMPLETE", 13, "NAD")


@pytest.mark.parametrize(("segments", "code"), [
    (("BGM+250", "TDT+20+0312E+1", *VOYAGE[1:], *MEMBER), "RULE_SHIP_NAME"),
    (("BGM+250", VOYAGE[0], "LOC+87+SHA", VOYAGE[2], *MEMBER), "RULE_UNLOCODE"),
    (("BGM+250", VOYAGE[0], VOYAGE[2], *MEMBER), "RULE_PORT_MISSING"),
    (("BGM+250", *VOYAGE[:2], *MEMBER), "RULE_TIME_MISSING"),
    (("BGM+250", *VOYAGE, *MEMBER[:3], "DOC+X:110:111+E1"), "RULE_DOCUMENT_TYPE"),
    (("BGM+250", *VOYAGE, *MEMBER[:3], "DOC+V:110:111+E1"), "RULE_PERSON_INCOMPLETE"),
    (("BGM+250", *VOYAGE, *MEMBER[:2], "DOC+P:110:111+E1"), "RULE_PERSON_INCOMPLETE"),
    (("BGM+250", *VOYAGE, *MEMBER, "LOC+91+ZZZ"), "RULE_ISSUING_STATE"),
    (("BGM+250", *VOYAGE, "NAD+FL+++CHEN", *MEMBER[1:]), "RULE_PERSON_QUALIFIER"),
    (("BGM+250+:0", *VOYAGE, *MEMBER), "RULE_DOCUMENT_VERSION"),
    (("BGM+250", "TDT+20+0312E+1+++++9456783:146::PX:XX", *VOYAGE[1:], *MEMBER),
     "RULE_FLAG_STATE"),
    (("TDT+20", *VOYAGE), "RULE_BGM_MISSING"),
])
def test_each_rule_has_its_code(segments: tuple[str, ...], code: str) -> None:
    assert refusal(CREW, interchange(*segments)).code == code


def test_an_interchange_holds_paxlst_messages_only() -> None:
    data = interchange("BGM+250", *VOYAGE, *MEMBER).replace(b"PAXLST:D", b"CUSCAR:D")
    assert refusal(CREW, data).code == "RULE_MESSAGE_TYPE"


def test_a_split_list_must_agree_and_be_numbered() -> None:
    data = crew_sample("crew_list_split_over_two_messages.edi")
    assert refusal(CREW, data.replace(b"+02:F", b"+03:F")).code == "RULE_SPLIT_LIST"
    second_voyage = data.rsplit(b"0312E", 1)
    assert refusal(CREW, b"0313E".join(second_voyage)).code == "RULE_SPLIT_LIST"


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(("data", "format_id"), [
    (crew_sample("crew_list.edi"), "paxlst-crew"),
    (crew_sample("crew_list_one_line.edi"), "paxlst-crew"),
    (passenger_sample("passengers_custom_separators_and_release.edi"), "paxlst-passengers"),
])
def test_a_list_is_detected_by_its_message_type_and_document_name(data: bytes,
                                                                   format_id: str) -> None:
    found = FormatDetector(AdapterRegistry([CREW, PASSENGERS])).detect(data)
    assert (found.format_id, found.confidence) == (format_id, Confidence.DECLARED)


def test_a_paxlst_of_another_document_is_ambiguous() -> None:
    data = crew_sample("crew_list.edi").replace(b"BGM+250", b"BGM+336")
    found = FormatDetector(AdapterRegistry([CREW, PASSENGERS])).detect(data)
    assert found.confidence is Confidence.AMBIGUOUS
    assert found.candidates == ("paxlst-crew", "paxlst-passengers")


# ---------------------------------------------------------------- render


def test_a_fal6_xml_list_renders_as_paxlst_at_its_local_time() -> None:
    registry = AdapterRegistry.default()
    xml = registry.get("fal6-xml").parse((DATA / "fal6" / "valid_arrival.xml").read_bytes())
    back = PASSENGERS.parse(PASSENGERS.render(xml.record)).record
    instant = xml.record["date_time_of_arrival_departure"]
    local = instant + timedelta(minutes=xml.record["utc_offset_minutes"])
    assert back["local_date_time_of_arrival_departure"] == local.replace(
        tzinfo=None).isoformat(timespec="minutes")
    assert back["passengers"] == xml.record["passengers"]
    assert back["ship"]["gross_tonnage"] is None  # PAXLST has no tonnage: not carried


@pytest.mark.parametrize(("path", "value"), [
    (("crew", 0, "identity_document", "document_type"), "SeafarersIdentityDocument"),
    (("arrival_or_departure",), "Departure"),  # with a previous port of call
    (("ship", "flag_state"), "XX"),
    (("crew", 0, "nationality"), "XX"),
    (("crew_count",), 7),
    (("local_date_time_of_arrival_departure",), "2026-03-15T06:30:00.5"),
    (("local_date_time_of_arrival_departure",), "2026-03-15T06:30+08:00"),
])
def test_render_refuses_what_paxlst_cannot_say(path: tuple[Any, ...], value: Any) -> None:
    record = CREW.parse(crew_sample("crew_list.edi")).record
    with pytest.raises(RenderError):
        CREW.render(broken(record, path, value))


def test_the_xml_form_refuses_to_render_what_its_xsd_requires_and_the_list_lacks() -> None:
    """A PAXLST list's nulls (no call sign, no UTC offset) are a coded render refusal in the
    FAL 5 XML form, whose XSD requires them: never a crash, never an invented value."""
    record = CREW.parse(crew_sample("crew_list_one_line.edi")).record
    with pytest.raises(RenderError):
        AdapterRegistry.default().get("fal5-xml").render(record)


def test_render_refuses_a_passenger_whose_transit_is_unknown() -> None:
    record = PASSENGERS.parse(passenger_sample("passengers_2.edi")).record
    with pytest.raises(RenderError):
        PASSENGERS.render(broken(record, ("passengers", 1, "transit"), None))


# ---------------------------------------------------------------- property: round trips

COUNTRY = st.sampled_from(sorted(ALPHA3_BY_ALPHA2))
LOCAL_TIME = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2098, 12, 31)
                          ).map(lambda t: t.replace(microsecond=0))
SHIP = st.fixed_dictionaries({
    "name": tokens(35),
    "imo_number": optional(st.integers(0, 999_999).map(imo_with_check_digit)),
    "call_sign": optional(pattern(r"[A-Z0-9]{4,7}")),
    "flag_state": optional(COUNTRY),
    "gross_tonnage": st.none(),
    "net_tonnage": st.none(),
})


def identity_document(voyage: datetime) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "document_type": st.sampled_from(["Passport", "IdentityCard", "ResidencePermit",
                                          "TravelDocument"]),
        "number": pattern(r"[A-Z0-9][A-Z0-9/\-]{0,34}"),
        "issuing_state": optional(COUNTRY),
        "expiry_date": optional(st.dates(min_value=voyage.date(), max_value=date(2099, 12, 31))),
    })


# A name PAXLST can carry: not blank (a blank name component is no name; render refuses it).
NAMES = tokens(35).filter(str.strip)


def person(voyage: datetime, **own: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "family_name": NAMES,
        "given_names": optional(NAMES),
        **own,
        "nationality": COUNTRY,
        "date_of_birth": st.dates(min_value=date(1900, 1, 1), max_value=voyage.date()),
        "place_of_birth": optional(tokens(35)),
        "identity_document": identity_document(voyage),
    })


@st.composite
def crew_lists(draw: st.DrawFn) -> dict[str, Any]:
    voyage = draw(LOCAL_TIME)
    arrival = draw(st.booleans())
    members = st.lists(person(voyage, rank_or_rating=optional(tokens(35))), min_size=1,
                       max_size=6)
    return draw(with_count(st.fixed_dictionaries({
        "arrival_or_departure": st.just("Arrival" if arrival else "Departure"),
        "ship": SHIP,
        "voyage_number": optional(pattern(r"[A-Z0-9][A-Z0-9/.\-]{0,16}")),
        "port_of_arrival_departure": LOCODE,
        "date_time_of_arrival_departure": st.none(),
        "utc_offset_minutes": st.none(),
        "local_date_time_of_arrival_departure": st.just(voyage.isoformat(
            timespec="seconds" if voyage.second else "minutes")),
        "last_port_of_call": optional(LOCODE) if arrival else st.none(),
        "crew": members,
    }), "crew", "crew_count"))


@st.composite
def passenger_lists(draw: st.DrawFn) -> dict[str, Any]:
    record = draw(crew_lists())
    voyage = datetime.fromisoformat(record["local_date_time_of_arrival_departure"])
    passengers = draw(st.lists(person(
        voyage, port_of_embarkation=optional(LOCODE), port_of_disembarkation=optional(LOCODE),
        transit=st.booleans()), min_size=1, max_size=6))
    del record["crew"], record["crew_count"], record["last_port_of_call"]
    return {**record, "passenger_count": len(passengers), "passengers": passengers}


@PROPERTY
@given(record=crew_lists())
def test_a_crew_list_survives_paxlst(record: dict[str, Any]) -> None:
    assert CREW.parse(CREW.render(record)).record == record


@PROPERTY
@given(record=passenger_lists())
def test_a_passenger_list_survives_paxlst(record: dict[str, Any]) -> None:
    assert PASSENGERS.parse(PASSENGERS.render(record)).record == record


@PROPERTY
@given(record=crew_lists(), received=RECEIVED, version=st.integers(1, 2**31 - 1))
def test_a_crew_list_event_survives_avro_and_paxlst(
    schemas: AvroSchemas, record: dict[str, Any], received: datetime, version: int
) -> None:
    full = event(CREW, record, received, version)
    _, decoded = schemas.decode(schemas.encode(CREW.schema_name, full))
    assert decoded == full
    result = CREW.parse(CREW.render(decoded))
    assert (result.record, result.document_version) == (record, version)


def test_the_render_is_dated_when_the_gateway_received_the_list() -> None:
    record = CREW.parse(crew_sample("crew_list.edi")).record
    header = {"document_version": 1,
              "received_at": datetime(2026, 3, 14, 22, 10, 5, tzinfo=UTC)}
    assert b"+20260314:2210+" in CREW.render({"header": header, **record})


@pytest.mark.parametrize("field", ["family_name", "given_names"])
def test_a_blank_name_is_refused_not_lost(field: str) -> None:
    record = CREW.parse(crew_sample("crew_list.edi")).record
    record["crew"][0][field] = "\xa0"  # no XML whitespace, but a blank name all the same
    with pytest.raises(RenderError):
        CREW.render(record)
