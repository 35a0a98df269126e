"""The Avro schema of a projected record (`projected_avro_schema`) and the personal field paths
of a schema (`personal_paths_of_avro`)."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.errors import ContractError
from contracts.masking import MaskRule
from contracts.projection import (
    compile_projection,
    field_paths_of_avro,
    personal_paths_of_avro,
    projected_avro_schema,
    split_path,
)
from message_formats import AvroSchemas
from tests.unit.avro_strategies import avro_values

KEY = b"gateway-mask-key-2026"
SCHEMAS = AvroSchemas()
NS = "px.projected.test"

# The canonical documents: the px.canonical records that embed the header.
DOCUMENTS = [
    name for name in SCHEMAS.names()
    if name.startswith("px.canonical.")
    and SCHEMAS.schema(name)["type"] == "record"
    and any(f["name"] == "header" for f in SCHEMAS.schema(name)["fields"])
]


def test_the_canonical_documents() -> None:
    assert [name.removeprefix("px.canonical.") for name in DOCUMENTS] == [
        "ContainerHandling", "CustomsCargoManifest", "CustomsManifest", "Fal1GeneralDeclaration",
        "Fal2CargoDeclaration",
        "Fal3ShipStoresDeclaration", "Fal4CrewEffectsDeclaration", "Fal5CrewList",
        "Fal6PassengerList", "Fal7DangerousGoodsManifest", "MultimodalWaybill", "SafetyWarning",
        "StowagePlan", "TransportStatusReport"]


# --- helpers ------------------------------------------------------------------------------


def round_trip(schema: Any, value: Any) -> Any:
    """Written strictly and read back: fastavro's own normalisation (milliseconds, decimal
    scale) of a value that fits."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, value, strict=True)
    buffer.seek(0)
    back = fastavro.schemaless_reader(buffer, schema)
    assert buffer.read() == b""
    return back


def shape(value: Any) -> Any:
    """The value with every record's field order made visible."""
    if isinstance(value, dict):
        return [(name, shape(item)) for name, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    return value


def check_fits(projected_schema: dict[str, Any], delivered: dict[str, Any]) -> None:
    """`delivered` is a value of `projected_schema`, field for field and in the same order."""
    assert json.loads(json.dumps(projected_schema)) == projected_schema  # plain JSON
    parsed = fastavro.parse_schema(copy.deepcopy(projected_schema))
    assert validate(delivered, parsed, raise_errors=True, strict=True)
    back = round_trip(parsed, delivered)
    assert back == delivered
    assert shape(back) == shape(delivered)


def rules(masks: dict[str, Any]) -> dict[str, MaskRule]:
    return {path: MaskRule.parse(spec, path=path) for path, spec in masks.items()}


def schema_of(schema: dict[str, Any], include: list[str],
              masks: dict[str, Any] | None = None, name: str = f"{NS}.Doc") -> dict[str, Any]:
    projection = compile_projection(include, rules(masks or {}), key=KEY)
    return projected_avro_schema(schema, projection, name=name)


# --- property: every projection of every canonical document encodes ----------------------

MASKS = [MaskRule("drop"), MaskRule("pseudonym"), MaskRule("partial", 2, 1), MaskRule("year")]
_RECORDS = {name: avro_values(SCHEMAS.schema(name)) for name in DOCUMENTS}
_PATHS = {name: sorted(field_paths_of_avro(SCHEMAS.schema(name))) for name in DOCUMENTS}


def _under(path: tuple[str, ...], wider: tuple[str, ...]) -> bool:
    return path[: len(wider)] == wider


@st.composite
def projections(draw: st.DrawFn, paths: list[str]) -> tuple[list[str], dict[str, MaskRule]]:
    """A random include list, and random masks at or below included paths (never one mask
    at or below another)."""
    include = draw(st.lists(st.sampled_from(paths), max_size=6, unique=True))
    included = [split_path(path) for path in include]
    maskable = [p for p in paths if any(_under(split_path(p), inc) for inc in included)]
    masks: dict[str, MaskRule] = {}
    if maskable:
        for path in draw(st.lists(st.sampled_from(maskable), max_size=4, unique=True)):
            steps = split_path(path)
            if not any(_under(steps, split_path(m)) or _under(split_path(m), steps)
                       for m in masks):
                masks[path] = draw(st.sampled_from(MASKS))
    return include, masks


@pytest.mark.parametrize("document", DOCUMENTS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_projected_records_fit_their_schema(document: str, data: st.DataObject) -> None:
    schema = SCHEMAS.schema(document)
    record = round_trip(schema, data.draw(_RECORDS[document], label="record"))
    include, masks = data.draw(projections(_PATHS[document]), label="projection")
    projection = compile_projection(include, masks, key=KEY)
    name = f"{NS}.{document.rpartition('.')[2]}"
    check_fits(projected_avro_schema(schema, projection, name=name), projection(record))


@pytest.mark.parametrize("document", DOCUMENTS)
def test_everything_and_nothing(document: str) -> None:
    schema = SCHEMAS.schema(document)
    top = [str(f["name"]) for f in schema["fields"]]
    projection = compile_projection(top, {}, key=KEY)
    everything = projected_avro_schema(schema, projection, name=f"{NS}.All")
    # the whole document: the same type under another name
    assert fastavro.schema.to_parsing_canonical_form(everything) == (
        SCHEMAS.canonical_form(document).replace(f'"{document}"', f'"{NS}.All"', 1))
    nothing = projected_avro_schema(schema, compile_projection([], {}, key=KEY),
                                    name=f"{NS}.Nothing")
    assert nothing == {"type": "record", "name": f"{NS}.Nothing", "doc": schema["doc"],
                       **({"classification": schema["classification"]}
                          if "classification" in schema else {}),
                       "fields": []}
    check_fits(nothing, {})


# --- spelled out --------------------------------------------------------------------------

DIRECTION = {"type": "enum", "name": "px.canonical.Direction", "symbols": ["Arrival", "Departure"]}
SHIP = {"type": "record", "name": "px.canonical.Ship", "doc": "A ship.", "fields": [
    {"name": "name", "type": "string", "doc": "Name."},
    {"name": "imo_number", "type": "string", "doc": "IMO number."},
    {"name": "call_sign", "type": ["null", "string"], "default": None, "doc": "Call sign."},
]}
DOCUMENT_KIND = {"type": "enum", "name": "px.canonical.DocumentKind",
                 "symbols": ["Passport", "SeafarersBook"]}
IDENTITY_DOCUMENT = {"type": "record", "name": "px.canonical.IdentityDocument", "fields": [
    {"name": "kind", "type": DOCUMENT_KIND},
    {"name": "number", "type": "string", "doc": "Document number.", "personal": True},
]}
CREW_MEMBER = {"type": "record", "name": "px.canonical.CrewMember", "fields": [
    {"name": "family_name", "type": "string", "doc": "Family name.", "personal": True},
    {"name": "date_of_birth", "type": {"type": "int", "logicalType": "date"}, "personal": True},
    {"name": "identity_document", "type": ["null", IDENTITY_DOCUMENT], "default": None},
    {"name": "aliases", "type": {"type": "array", "items": "string"}, "default": []},
]}
# Written as people write .avsc files: short names, namespaces inherited.
CREW_LIST: dict[str, Any] = {
    "type": "record", "name": "CrewList", "namespace": "px.canonical", "doc": "A crew list.",
    "fields": [
        {"name": "arrival_or_departure", "doc": "Arrival or departure.", "type": {
            "type": "enum", "name": "Direction", "symbols": ["Arrival", "Departure"]}},
        {"name": "ship", "doc": "The ship.", "type": {
            "type": "record", "name": "Ship", "doc": "A ship.", "fields": [
                {"name": "name", "type": "string", "doc": "Name."},
                {"name": "imo_number", "type": "string", "doc": "IMO number."},
                {"name": "call_sign", "type": ["null", "string"], "default": None,
                 "doc": "Call sign."}]}},
        {"name": "crew", "doc": "The crew.", "type": {"type": "array", "items": {
            "type": "record", "name": "CrewMember", "fields": [
                {"name": "family_name", "type": "string", "doc": "Family name.",
                 "personal": True},
                {"name": "date_of_birth", "type": {"type": "int", "logicalType": "date"},
                 "personal": True},
                {"name": "identity_document", "default": None, "type": ["null", {
                    "type": "record", "name": "IdentityDocument", "fields": [
                        {"name": "kind", "type": {"type": "enum", "name": "DocumentKind",
                                                  "symbols": ["Passport", "SeafarersBook"]}},
                        {"name": "number", "type": "string", "doc": "Document number.",
                         "personal": True}]}]},
                {"name": "aliases", "type": {"type": "array", "items": "string"},
                 "default": []}]}}},
        {"name": "master", "type": ["null", "CrewMember"], "default": None},
        {"name": "next_direction", "type": "Direction", "doc": "Direction of the next call."},
        {"name": "previous_ship", "type": ["null", "Ship"], "default": None},
    ],
}
CREW_LIST_PARSED = fastavro.parse_schema(copy.deepcopy(CREW_LIST))
BOTH_FORMS = pytest.mark.parametrize("form", [CREW_LIST, CREW_LIST_PARSED],
                                     ids=["plain", "parsed"])
WANG = {"family_name": "Wang", "date_of_birth": date(1987, 3, 4),
        "identity_document": {"kind": "SeafarersBook", "number": "E12345678"},
        "aliases": ["Wang Wei", "W."]}
SANTOS = {"family_name": "Santos", "date_of_birth": date(1990, 11, 30),
          "identity_document": None, "aliases": []}
RECORD = {
    "arrival_or_departure": "Arrival",
    "ship": {"name": "EVER GIVEN", "imo_number": "9811000", "call_sign": "H3RC"},
    "crew": [WANG, SANTOS],
    "master": WANG,
    "next_direction": "Departure",
    "previous_ship": {"name": "EVER GREEN", "imo_number": "9832705", "call_sign": None},
}


def doc(fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": f"{NS}.Doc", "doc": "A crew list.", "fields": fields}


def pseudonym(value: str) -> str:
    return MaskRule("pseudonym").apply(value, KEY)


@BOTH_FORMS
def test_a_record_delivered_whole_keeps_its_definition(form: dict[str, Any]) -> None:
    schema = schema_of(form, ["ship", "arrival_or_departure"])
    assert schema == doc([
        {"name": "ship", "type": SHIP, "doc": "The ship."},
        {"name": "arrival_or_departure", "type": DIRECTION, "doc": "Arrival or departure."},
    ])
    check_fits(schema, {"ship": RECORD["ship"], "arrival_or_departure": "Arrival"})


@BOTH_FORMS
def test_a_partly_delivered_record_is_a_new_record_in_contract_order(
        form: dict[str, Any]) -> None:
    schema = schema_of(form, ["ship.imo_number", "ship.name"])
    assert schema == doc([
        {"name": "ship", "doc": "The ship.", "type": {
            "type": "record", "name": f"{NS}.Ship", "doc": "A ship.", "fields": [
                {"name": "imo_number", "type": "string", "doc": "IMO number."},
                {"name": "name", "type": "string", "doc": "Name."}]}},
    ])
    projection = compile_projection(["ship.imo_number", "ship.name"], {}, key=KEY)
    check_fits(schema, projection(RECORD))


@BOTH_FORMS
def test_a_pseudonymised_number_deep_in_an_array(form: dict[str, Any]) -> None:
    include = ["crew[].family_name", "crew[].identity_document"]
    masks = {"crew[].identity_document.number": "pseudonym"}
    schema = schema_of(form, include, masks)
    assert schema == doc([
        {"name": "crew", "doc": "The crew.", "type": {"type": "array", "items": {
            "type": "record", "name": f"{NS}.CrewItem", "fields": [
                {"name": "family_name", "type": "string", "doc": "Family name.",
                 "personal": True},
                {"name": "identity_document", "default": None, "type": ["null", {
                    "type": "record", "name": f"{NS}.CrewItemIdentityDocument", "fields": [
                        {"name": "kind", "type": DOCUMENT_KIND},
                        {"name": "number", "type": ["null", "string"], "default": None,
                         "personal": True,
                         "doc": "Document number. Masked (pseudonym); null where a value "
                                "cannot be masked."}]}]}]}}},
    ])
    delivered = compile_projection(include, rules(masks), key=KEY)(RECORD)
    assert delivered["crew"][0]["identity_document"]["number"] == pseudonym("E12345678")
    check_fits(schema, delivered)


@BOTH_FORMS
def test_dropped_and_masked_fields_under_a_whole_parent(form: dict[str, Any]) -> None:
    include = ["ship", "crew"]
    masks = {"ship.call_sign": "drop", "crew[].aliases": "pseudonym",
             "crew[].date_of_birth": "year", "crew[].identity_document": "drop"}
    schema = schema_of(form, include, masks)
    note = "Masked ({}); null where a value cannot be masked."
    assert schema == doc([
        {"name": "ship", "doc": "The ship.", "type": {
            "type": "record", "name": f"{NS}.Ship", "doc": "A ship.", "fields": [
                {"name": "name", "type": "string", "doc": "Name."},
                {"name": "imo_number", "type": "string", "doc": "IMO number."}]}},
        {"name": "crew", "doc": "The crew.", "type": {"type": "array", "items": {
            "type": "record", "name": f"{NS}.CrewItem", "fields": [
                {"name": "family_name", "type": "string", "doc": "Family name.",
                 "personal": True},
                {"name": "date_of_birth", "type": ["null", "string"], "default": None,
                 "personal": True, "doc": note.format("year")},
                # an array masked element by element; its default still fits
                {"name": "aliases", "type": {"type": "array", "items": ["null", "string"]},
                 "default": [], "doc": note.format("pseudonym")}]}}},
    ])
    delivered = compile_projection(include, rules(masks), key=KEY)(RECORD)
    assert delivered["crew"][0] == {"family_name": "Wang", "date_of_birth": "1987",
                                    "aliases": [pseudonym("Wang Wei"), pseudonym("W.")]}
    check_fits(schema, delivered)


@BOTH_FORMS
def test_a_named_type_used_twice_is_defined_once_where_first_used(
        form: dict[str, Any]) -> None:
    # the schema defines Direction and Ship first; the contract names their second uses first
    include = ["next_direction", "previous_ship", "arrival_or_departure", "ship", "master",
               "crew"]
    schema = schema_of(form, include)
    crew_member = copy.deepcopy(CREW_MEMBER)
    assert schema == doc([
        {"name": "next_direction", "type": DIRECTION, "doc": "Direction of the next call."},
        {"name": "previous_ship", "type": ["null", SHIP], "default": None},
        {"name": "arrival_or_departure", "type": "px.canonical.Direction",
         "doc": "Arrival or departure."},
        {"name": "ship", "type": "px.canonical.Ship", "doc": "The ship."},
        {"name": "master", "type": ["null", crew_member], "default": None},
        {"name": "crew", "type": {"type": "array", "items": "px.canonical.CrewMember"},
         "doc": "The crew."},
    ])
    check_fits(schema, compile_projection(include, {}, key=KEY)(RECORD))


def test_a_reshaped_record_and_its_untouched_twin() -> None:
    # master is delivered whole, crew members reshaped: the original keeps its name
    include = ["master", "crew[].family_name"]
    schema = schema_of(CREW_LIST, include)
    assert schema["fields"][0]["type"] == ["null", CREW_MEMBER]
    assert schema["fields"][1]["type"] == {"type": "array", "items": {
        "type": "record", "name": f"{NS}.CrewItem", "fields": [
            {"name": "family_name", "type": "string", "doc": "Family name.",
             "personal": True}]}}
    check_fits(schema, compile_projection(include, {}, key=KEY)(RECORD))


def test_new_names_never_clash() -> None:
    schema = {"type": "record", "name": "px.canonical.Doc", "fields": [
        {"name": "crew", "type": {"type": "array", "items": {
            "type": "record", "name": "px.canonical.Member",
            "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "int"}]}}},
        {"name": "crew_item", "type": "px.canonical.Member"},
        {"name": "member", "type": "px.canonical.Member"},
    ]}
    include = ["crew[].a", "crew_item.b", "member"]
    # the new records share the source's namespace: Member stays the source's
    projected = schema_of(schema, include, name="px.canonical.Projected")
    names = [projected["fields"][0]["type"]["items"]["name"],
             projected["fields"][1]["type"]["name"],
             projected["fields"][2]["type"]["name"]]
    assert names == ["px.canonical.CrewItem", "px.canonical.CrewItem2", "px.canonical.Member"]
    record = {"crew": [{"a": 1, "b": 2}], "crew_item": {"a": 3, "b": 4},
              "member": {"a": 5, "b": 6}}
    check_fits(projected, compile_projection(include, {}, key=KEY)(record))
    with pytest.raises(ValueError, match=r"px\.canonical\.Member would name both"):
        schema_of(schema, include, name="px.canonical.Member")


def test_a_union_of_several_records() -> None:
    schema = {"type": "record", "name": "px.canonical.Doc", "fields": [
        {"name": "choice", "type": [
            "null",
            {"type": "record", "name": "px.canonical.Cell",
             "fields": [{"name": "v", "type": "int"}, {"name": "w", "type": "int"}]},
            {"type": "record", "name": "px.canonical.Other",
             "fields": [{"name": "x", "type": "string"}]},
            "string"]},  # a string where records are reached into is left out by `project`
        {"name": "grid", "type": {"type": "array", "items": {"type": "array", "items": [
            "null", "px.canonical.Cell"]}}, "default": []},
    ]}
    include = ["choice.v", "grid[][].w"]
    projected = schema_of(schema, include, {"grid[][].w": "pseudonym"})
    assert projected["fields"] == [
        {"name": "choice", "type": [
            "null",
            {"type": "record", "name": f"{NS}.ChoiceCell", "fields": [{"name": "v",
                                                                       "type": "int"}]},
            {"type": "record", "name": f"{NS}.ChoiceOther", "fields": []}]},
        {"name": "grid", "type": {"type": "array", "items": {"type": "array", "items": [
            "null", {"type": "record", "name": f"{NS}.GridItemItem", "fields": [
                {"name": "w", "type": ["null", "string"], "default": None,
                 "doc": "Masked (pseudonym); null where a value cannot be masked."}]}]}},
         "default": []},
    ]
    projection = compile_projection(include, rules({"grid[][].w": "pseudonym"}), key=KEY)
    for choice in (None, {"v": 1, "w": 2}, {"x": "y"}):
        check_fits(projected, projection({"choice": choice,
                                          "grid": [[{"v": 1, "w": 2}, None], []]}))


def test_masks_on_records_and_nullable_arrays_fail_closed_to_null() -> None:
    schema = {"type": "record", "name": "px.canonical.Doc", "fields": [
        {"name": "ship", "type": SHIP},
        {"name": "tags", "type": ["null", {"type": "array", "items": "long"}], "default": None},
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ]}
    include = ["ship", "tags", "when"]
    masks = {"ship": "pseudonym", "tags": {"rule": "partial", "keep_start": 1, "keep_end": 0},
             "when": "year"}
    projected = schema_of(schema, include, masks)
    assert [f["type"] for f in projected["fields"]] == [
        ["null", "string"],
        ["null", {"type": "array", "items": ["null", "string"]}],
        ["null", "string"],
    ]
    projection = compile_projection(include, rules(masks), key=KEY)
    delivered = projection({"ship": RECORD["ship"], "tags": [123, 4],
                            "when": datetime(2026, 6, 1, tzinfo=UTC)})
    assert delivered == {"ship": None, "tags": ["1**", "*"], "when": "2026"}
    check_fits(projected, delivered)


def test_the_parsed_schema_is_left_alone_and_shares_nothing() -> None:
    schema = SCHEMAS.schema("px.canonical.Fal5CrewList")
    before = copy.deepcopy(schema)
    projected = schema_of(schema, ["ship", "crew"], {"crew[].place_of_birth": "drop"})
    projected["fields"][0]["type"]["fields"].clear()
    projected["fields"][1]["type"]["items"]["fields"][0]["doc"] = "changed"
    assert schema == before


@pytest.mark.parametrize(("include", "masks", "unknown"), [
    (["ship.tonnage"], {}, "'ship.tonnage'"),
    (["ship", "crew[].nickname"], {"ship.flag": "drop"}, "'crew[].nickname', 'ship.flag'"),
    (["master.identity_document.number.digits"], {}, "'master.identity_document"),
])
def test_unknown_fields(include: list[str], masks: dict[str, str], unknown: str) -> None:
    with pytest.raises(ContractError) as caught:
        schema_of(CREW_LIST, include, masks)
    assert caught.value.code == "CONTRACT_UNKNOWN_FIELD"
    assert f"px.canonical.CrewList has no field {unknown}" in caught.value.message


def test_a_map_beside_a_record_is_not_supported() -> None:
    schema = {"type": "record", "name": "px.canonical.Doc", "fields": [
        {"name": "x", "type": ["null", {"type": "map", "values": "int"}, {
            "type": "record", "name": "px.canonical.R", "fields": [{"name": "a", "type": "int"}]
        }]}]}
    with pytest.raises(ContractError) as caught:
        schema_of(schema, ["x.a"])
    assert caught.value.code == "CONTRACT_UNSUPPORTED_SCHEMA"
    assert schema_of(schema, ["x"])["fields"][0]["type"][1] == {"type": "map", "values": "int"}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="record schema"):
        projected_avro_schema(DIRECTION, compile_projection([], {}, key=KEY), name="a.B")
    with pytest.raises(ValueError, match="full Avro name"):
        schema_of(CREW_LIST, ["ship"], name="px..Doc")


# --- personal paths -----------------------------------------------------------------------


@BOTH_FORMS
def test_personal_paths(form: dict[str, Any]) -> None:
    member = ("family_name", "date_of_birth", "identity_document.number")
    assert personal_paths_of_avro(form) == {
        *(f"crew[].{p}" for p in member), *(f"master.{p}" for p in member)}
    assert personal_paths_of_avro(form) <= field_paths_of_avro(form)


def test_personal_means_true_and_nothing_else() -> None:
    schema = {"type": "record", "name": "R", "fields": [
        {"name": "a", "type": "string", "personal": "yes"},
        {"name": "b", "type": "string", "personal": False},
        {"name": "c", "type": "string"},
        {"name": "d", "type": {"type": "array", "items": "string"}, "personal": True},
    ]}
    assert personal_paths_of_avro(schema) == {"d"}
    assert personal_paths_of_avro(SHIP) == frozenset()
    with pytest.raises(ValueError, match="record schema"):
        personal_paths_of_avro(DIRECTION)
