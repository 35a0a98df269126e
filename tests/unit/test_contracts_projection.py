from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import ContractError
from contracts.masking import MaskRule
from contracts.projection import (
    Projection,
    compile_projection,
    field_paths_of_avro,
    split_path,
    validate_paths,
)
from message_formats import AvroSchemas

KEY = b"gateway-mask-key-2026"
AVRO_DIR = Path(__file__).resolve().parents[2] / "message_formats" / "avro"

FAL1: dict[str, Any] = {
    "header": {"event_id": "0190a1b2-0000-7000-8000-000000000001", "document_type": "fal1",
               "sender": "cn.port.sh", "received_at": datetime(2026, 6, 1, tzinfo=UTC),
               "signature_key_id": None},
    "document_number": "GD-2026-0001",
    "arrival_or_departure": "Arrival",
    "ship": {
        "name": "EVER GIVEN",
        "imo_number": "9811000",
        "call_sign": "H3RC",
        "flag_state": "PA",
        "gross_tonnage": 220940,
        "net_tonnage": None,
    },
    "voyage_number": "V2611",
    "port_of_arrival_departure": "CNSHA",
    "date_time_of_arrival_departure": datetime(2026, 6, 1, 6, 30, tzinfo=UTC),
    "utc_offset_minutes": 480,
    "last_port_of_call": "SGSIN",
    "next_port_of_call": None,
    "master_name": "Kumar",
    "ship_agent": {"name": "Penavico Shanghai", "contact": None},
    "brief_cargo_description": "containers",
    "crew_count": 2,
    "passenger_count": 0,
    "remarks": None,
}

CREW_LIST: dict[str, Any] = {
    "document_number": "CL-1",
    "crew": [
        {"family_name": "Wang", "given_names": "Wei", "nationality": "CN",
         "date_of_birth": date(1987, 3, 4), "identity_document_number": "E12345678"},
        {"family_name": "Santos", "given_names": "Maria", "nationality": "PH",
         "date_of_birth": date(1990, 11, 30), "identity_document_number": None},
    ],
}


def project(record: dict[str, Any], include: list[str],
            masks: dict[str, Any] | None = None) -> dict[str, Any]:
    rules = {path: MaskRule.parse(spec, path=path) for path, spec in (masks or {}).items()}
    return compile_projection(include, rules, key=KEY)(record)


def pseudonym(value: str) -> str:
    return MaskRule("pseudonym").apply(value, KEY)


# --- what is delivered --------------------------------------------------------------------


def test_only_the_included_fields_are_delivered() -> None:
    assert project(FAL1, ["document_number", "crew_count", "remarks"]) == {
        "document_number": "GD-2026-0001", "crew_count": 2, "remarks": None}


def test_a_sub_record_is_delivered_whole_or_field_by_field() -> None:
    assert project(FAL1, ["ship"]) == {"ship": FAL1["ship"]}
    assert project(FAL1, ["ship.name", "ship.flag_state"]) == {
        "ship": {"name": "EVER GIVEN", "flag_state": "PA"}}
    assert project(FAL1, ["ship", "ship.name"]) == {"ship": FAL1["ship"]}  # the wider wins
    assert project(FAL1, ["header.sender", "ship.imo_number"]) == {
        "header": {"sender": "cn.port.sh"}, "ship": {"imo_number": "9811000"}}


def test_array_paths_reach_every_element() -> None:
    assert project(CREW_LIST, ["crew[].family_name", "crew[].nationality"]) == {
        "crew": [{"family_name": "Wang", "nationality": "CN"},
                 {"family_name": "Santos", "nationality": "PH"}]}
    assert project(CREW_LIST, ["crew"]) == {"crew": CREW_LIST["crew"]}
    assert project(CREW_LIST, ["crew[]"]) == {"crew": CREW_LIST["crew"]}
    # the marker documents the array; a step into an array goes into each element anyway
    assert project(CREW_LIST, ["crew.family_name"]) == project(CREW_LIST,
                                                               ["crew[].family_name"])


def test_nested_arrays() -> None:
    record = {"legs": [{"ports": [{"code": "CNSHA", "berth": "B1"}, {"code": "SGSIN"}]},
                       {"ports": []}, {"ports": None}, {}]}
    assert project(record, ["legs[].ports[].code"]) == {
        "legs": [{"ports": [{"code": "CNSHA"}, {"code": "SGSIN"}]}, {"ports": []},
                 {"ports": None}, {}]}


def test_absent_null_and_mistyped_values() -> None:
    record = {"ship": None, "agent": "not a record", "items": [1, {"a": 2}]}
    assert project(record, ["ship.name", "agent.name", "missing", "missing.deeper",
                            "items[].a"]) == {"ship": None, "items": [{"a": 2}]}


def test_masks_apply_at_their_paths() -> None:
    delivered = project(
        CREW_LIST,
        ["crew[].family_name", "crew[].identity_document_number", "crew[].date_of_birth"],
        {"crew[].identity_document_number": {"rule": "partial", "keep_start": 3,
                                             "keep_end": 2},
         "crew[].date_of_birth": "year"},
    )
    assert delivered == {"crew": [
        {"family_name": "Wang", "identity_document_number": "E12****78",
         "date_of_birth": "1987"},
        {"family_name": "Santos", "identity_document_number": None, "date_of_birth": "1990"},
    ]}


def test_masks_below_a_field_delivered_whole() -> None:
    delivered = project(FAL1, ["ship", "master_name"],
                        {"ship.imo_number": "pseudonym", "ship.call_sign": "drop",
                         "master_name": "drop"})
    assert delivered == {"ship": {"name": "EVER GIVEN", "imo_number": pseudonym("9811000"),
                                  "flag_state": "PA", "gross_tonnage": 220940,
                                  "net_tonnage": None}}
    assert list(delivered["ship"]) == ["name", "imo_number", "flag_state", "gross_tonnage",
                                       "net_tonnage"]  # the record's own order
    crew = project(CREW_LIST, ["crew"], {"crew[].identity_document_number": "drop",
                                         "crew[].given_names": "pseudonym"})
    assert crew["crew"][0] == {"family_name": "Wang", "given_names": pseudonym("Wei"),
                               "nationality": "CN", "date_of_birth": date(1987, 3, 4)}


def test_a_mask_deep_below_a_whole_field_keeps_the_rest_whole() -> None:
    record = {"ship": {"agent": {"name": "A", "contact": "+86 21 1234 5678"}, "name": "S"}}
    delivered = project(record, ["ship", "ship.agent.name"],
                        {"ship.agent.contact": {"rule": "partial", "keep_start": 3,
                                                "keep_end": 0}})
    assert delivered == {"ship": {"agent": {"name": "A", "contact": "+86*************"},
                                  "name": "S"}}


def test_the_input_is_left_alone_and_shares_nothing_mutable() -> None:
    original = copy.deepcopy(CREW_LIST)
    delivered = project(CREW_LIST, ["crew", "document_number"],
                        {"crew[].identity_document_number": "pseudonym"})
    assert original == CREW_LIST
    delivered["crew"][1]["family_name"] = "changed"
    delivered["crew"].append({})
    assert original == CREW_LIST
    whole = project(CREW_LIST, ["crew"])
    assert whole["crew"] is not CREW_LIST["crew"]
    assert whole["crew"][0] is not CREW_LIST["crew"][0]


def test_the_projection_value() -> None:
    rules = {"ship.imo_number": MaskRule("pseudonym")}
    projection = compile_projection(["ship", "ship", "document_number"], rules, key=KEY)
    assert isinstance(projection, Projection)
    assert projection.include == ("ship", "document_number")
    assert projection.paths == ("ship", "document_number", "ship.imo_number")
    assert projection.describe() == (
        "fields ship, document_number; masked ship.imo_number (pseudonym)")
    assert KEY.decode() not in repr(projection)
    assert projection.project(FAL1) == projection(FAL1)
    assert compile_projection([], {}, key=b"")(FAL1) == {}


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("include", "masks", "code", "fragment"), [
    (["ship.name"], {"ship.imo_number": "drop"}, "CONTRACT_MASK_NOT_INCLUDED",
     "'ship.imo_number'"),
    (["ship.name"], {"ship": "drop"}, "CONTRACT_MASK_NOT_INCLUDED", "'ship'"),
    ([], {"remarks": "drop"}, "CONTRACT_MASK_NOT_INCLUDED", "does not deliver"),
    (["crew[].family_name"], {"crew[].nationality": "pseudonym"},
     "CONTRACT_MASK_NOT_INCLUDED", "crew[].nationality"),
    (["ship"], {"ship": "drop", "ship.name": "pseudonym"}, "CONTRACT_BAD_MASK",
     "lies under"),
    (["ship"], {"ship.name": "pseudonym", "ship": "drop"}, "CONTRACT_BAD_MASK",
     "covers another mask"),
    (["crew"], {"crew[].family_name": "drop", "crew.family_name": "year"},
     "CONTRACT_BAD_MASK", "repeats"),
    (["ship..name"], {}, "CONTRACT_BAD_PATH", "'ship..name'"),
    (["ship.name[0]"], {}, "CONTRACT_BAD_PATH", "not a field path"),
    ([""], {}, "CONTRACT_BAD_PATH", "not a field path"),
    (["ship"], {"ship.1x": "drop"}, "CONTRACT_BAD_PATH", "'ship.1x'"),
])
def test_bad_projections(include: list[str], masks: dict[str, str], code: str,
                         fragment: str) -> None:
    with pytest.raises(ContractError) as caught:
        project(FAL1, include, masks)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_pseudonyms_need_a_key() -> None:
    with pytest.raises(ContractError) as caught:
        compile_projection(["ship"], {"ship.imo_number": MaskRule("pseudonym")}, key=b"")
    assert caught.value.code == "CONTRACT_BAD_MASK"
    compile_projection(["ship"], {"ship.imo_number": MaskRule("drop")}, key=b"")


def test_split_path() -> None:
    assert split_path("crew[].family_name") == ("crew", "family_name")
    assert split_path("legs[].ports[][].code") == ("legs", "ports", "code")
    assert split_path("ship") == ("ship",)


# --- property: nothing but what is included -----------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "d"])
LEAVES = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.booleans())


def _records() -> st.SearchStrategy[dict[str, Any]]:
    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        record = st.dictionaries(NAMES, inner, max_size=4)
        return st.one_of(record, st.lists(record, max_size=3))

    return st.dictionaries(NAMES, st.recursive(LEAVES, extend, max_leaves=15), max_size=4)


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every field path in a value, array steps left implicit."""
    found: set[tuple[str, ...]] = set()
    if isinstance(value, dict):
        for name, item in value.items():
            found.add((*prefix, name))
            found |= _paths(item, (*prefix, name))
    elif isinstance(value, list):
        for item in value:
            found |= _paths(item, prefix)
    return found


@given(_records(), st.data())
def test_output_paths_stay_within_the_included_paths(record: dict[str, Any],
                                                     data: st.DataObject) -> None:
    candidates = [*sorted(_paths(record)), ("a", "zz"), ("zz",)]
    include = data.draw(st.lists(st.sampled_from(candidates), max_size=4, unique=True))
    drops = data.draw(st.lists(st.sampled_from(include), max_size=1)) if include else []
    original = copy.deepcopy(record)
    rules = {".".join(path): MaskRule("drop") for path in drops}
    delivered = compile_projection([".".join(p) for p in include], rules, key=KEY)(record)
    assert record == original
    for path in _paths(delivered):
        # on the way to an included path, or at or below one
        assert any(path == inc[: len(path)] or inc == path[: len(inc)] for inc in include)
        assert not any(drop == path[: len(drop)] for drop in drops)
    untouched = [inc for inc in include
                 if not any(inc[: len(d)] == d or d[: len(inc)] == inc for d in drops)]
    for inc in untouched:
        if _plain_value(record, inc) is not None:
            assert _plain_value(delivered, inc) == _plain_value(record, inc)


def _plain_value(record: Any, path: tuple[str, ...]) -> Any:
    """The value at a path through records only (None where an array or nothing is)."""
    for name in path:
        if not isinstance(record, dict) or name not in record:
            return None
        record = record[name]
    return record


# --- paths of the Avro schemas -----------------------------------------------------------

FAL1_PATHS = {
    "header", "header.event_id", "header.document_type", "header.format_id",
    "header.schema_version", "header.sender", "header.business_key",
    "header.document_version", "header.received_at", "header.digest_sm3",
    "header.signature_key_id",
    "document_number", "arrival_or_departure",
    "ship", "ship.name", "ship.imo_number", "ship.call_sign", "ship.flag_state",
    "ship.gross_tonnage", "ship.net_tonnage",
    "voyage_number", "port_of_arrival_departure", "date_time_of_arrival_departure",
    "utc_offset_minutes", "last_port_of_call", "next_port_of_call", "master_name",
    "ship_agent", "ship_agent.name", "ship_agent.contact",
    "brief_cargo_description", "crew_count", "passenger_count", "remarks",
}


def test_field_paths_of_the_fal1_schema() -> None:
    schema = AvroSchemas().schema("px.canonical.Fal1GeneralDeclaration")
    assert field_paths_of_avro(schema) == FAL1_PATHS


def test_field_paths_of_plain_json_schemas() -> None:
    names = ("Header", "Ship", "ShipAgent", "ArrivalOrDeparture", "Fal1GeneralDeclaration")
    plain = {n: json.loads((AVRO_DIR / f"px.canonical.{n}.avsc").read_text()) for n in names}
    # alone, the references to other files cannot be resolved: they are leaves
    alone = field_paths_of_avro(plain["Fal1GeneralDeclaration"])
    assert alone == {p for p in FAL1_PATHS if "." not in p}
    # inlined, as one document, they are entered
    inlined = copy.deepcopy(plain["Fal1GeneralDeclaration"])
    for avro_field in inlined["fields"]:
        short = str(avro_field["type"]).removeprefix("px.canonical.")
        if short in plain:
            avro_field["type"] = plain[short]
    assert field_paths_of_avro(inlined) == FAL1_PATHS


CREW_LIST_SCHEMA = {
    "type": "record", "name": "CrewList", "namespace": "px.canonical",
    "fields": [
        {"name": "document_number", "type": "string"},
        {"name": "crew", "type": {"type": "array", "items": {
            "type": "record", "name": "CrewMember",
            "fields": [
                {"name": "family_name", "type": "string"},
                {"name": "date_of_birth", "type": {"type": "int", "logicalType": "date"}},
                {"name": "identity_document",
                 "type": ["null", {"type": "record", "name": "IdentityDocument",
                                   "namespace": "px.other",
                                   "fields": [{"name": "number", "type": "string"},
                                              {"name": "kind", "type": {
                                                  "type": "enum", "name": "Kind",
                                                  "symbols": ["PASSPORT", "SEAMAN"]}}]}]},
                {"name": "aliases", "type": {"type": "array", "items": "string"}},
            ]}}},
        {"name": "master", "type": ["null", "CrewMember"], "default": None},
        {"name": "backup_document", "type": "px.other.IdentityDocument"},
        {"name": "grid", "type": {"type": "array", "items": {"type": "array", "items": {
            "type": "record", "name": "Cell", "fields": [{"name": "v", "type": "int"}]}}}},
        {"name": "extras", "type": {"type": "map", "values": "CrewMember"}},
        {"name": "choice", "type": ["null", "Cell", "px.canonical.CrewMember"]},
        {"name": "unknown_ref", "type": "px.elsewhere.Thing"},
        {"name": "next", "type": ["null", "CrewList"]},
    ],
}


def test_field_paths_with_arrays_unions_references_and_recursion() -> None:
    member = {"family_name", "date_of_birth", "identity_document",
              "identity_document.number", "identity_document.kind", "aliases", "aliases[]"}
    expected = {
        "document_number",
        "crew", "crew[]", *(f"crew[].{p}" for p in member),
        "master", *(f"master.{p}" for p in member),
        "backup_document", "backup_document.number", "backup_document.kind",
        "grid", "grid[]", "grid[][]", "grid[][].v",
        "extras",
        "choice", "choice.v", *(f"choice.{p}" for p in member),
        "unknown_ref",
        "next",  # a recursive record is not entered again
    }
    assert field_paths_of_avro(CREW_LIST_SCHEMA) == expected


def test_field_paths_need_a_record() -> None:
    with pytest.raises(ValueError, match="record schema"):
        field_paths_of_avro({"type": "enum", "name": "E", "symbols": ["A"]})


def test_validate_paths_lists_the_unknown_once_in_order() -> None:
    paths = ["ship.name", "ship.imo", "crew[].family_name", "ship.imo", "remarks"]
    assert validate_paths(paths, FAL1_PATHS) == ["ship.imo", "crew[].family_name"]
    assert validate_paths(paths, list(FAL1_PATHS)) == ["ship.imo", "crew[].family_name"]
    assert validate_paths([], FAL1_PATHS) == []


def test_a_contract_projection_checked_against_the_fal1_schema() -> None:
    known = field_paths_of_avro(AvroSchemas().schema("px.canonical.Fal1GeneralDeclaration"))
    projection = compile_projection(
        ["ship", "date_time_of_arrival_departure", "port_of_arrival_departure"],
        {"ship.imo_number": MaskRule("pseudonym"), "ship.call_sign": MaskRule("drop")},
        key=KEY,
    )
    assert validate_paths(projection.paths, known) == []
    delivered = projection(FAL1)
    assert set(delivered) == {"ship", "date_time_of_arrival_departure",
                              "port_of_arrival_departure"}
    assert "call_sign" not in delivered["ship"]
