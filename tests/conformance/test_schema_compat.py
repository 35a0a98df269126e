"""Every schema ever released stays readable: data written with a released schema must be
readable with the current one (Avro backward compatibility)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from fastavro import parse_schema

from message_formats import AvroSchemas
from message_formats.compat import backward_problems

RELEASED = Path(__file__).parents[2] / "message_formats" / "released"
VERSIONS = sorted(p for p in RELEASED.iterdir() if p.is_dir())
CURRENT = AvroSchemas()


def released_names(version: Path) -> list[str]:
    return sorted(p.stem for p in version.glob("*.avsc"))


@pytest.mark.parametrize("version", VERSIONS, ids=lambda p: p.name)
def test_current_schemas_read_everything_released(version: Path) -> None:
    released = AvroSchemas.from_dirs(version, builtin=False)
    problems = []
    for name in released_names(version):
        if name not in CURRENT:
            problems.append(f"{name}: removed, but {version.name} released it")
            continue
        problems += backward_problems(released.schema(name), CURRENT.schema(name))
    assert problems == []


def record(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    parsed = parse_schema({"type": "record", "name": name, "namespace": "t",
                           "fields": list(fields)})
    return cast(dict[str, Any], parsed)  # a record schema parses to a dict


def field(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


ENUM_AB = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
ENUM_A = {"type": "enum", "name": "E", "symbols": ["A"]}


@pytest.mark.parametrize(("released", "current", "expected"), [
    (record(field("a", "int")), record(field("a", "int"), field("b", "string")),
     "t.R.b: field added without a default"),
    (record(field("a", "long")), record(field("a", "int")), "released long cannot be read as int"),
    (record(field("a", ["null", "string"])), record(field("a", "string")),
     "released null cannot be read as string"),
    (record(field("e", ENUM_AB)), record(field("e", ENUM_A)), "enum symbols removed"),
    (record(field("a", "int")), record(field("a", "int"), name="S"), "record t.R became t.S"),
])
def test_breaking_changes_are_named(released: Any, current: Any, expected: str) -> None:
    problems = backward_problems(released, current)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("released", "current"), [
    (record(field("a", "int")), record(field("a", "int"), field("b", "string", default="x"))),
    (record(field("a", "int"), field("b", "string")), record(field("a", "int"))),
    (record(field("a", "int")), record(field("a", "long"))),
    (record(field("a", "string")), record(field("a", ["null", "string"]))),
    (record(field("e", ENUM_A)), record(field("e", ENUM_AB))),
    (record(field("t", {"type": "long", "logicalType": "timestamp-millis"})),
     record(field("t", {"type": "long", "logicalType": "timestamp-millis"}))),
])
def test_compatible_changes_pass(released: Any, current: Any) -> None:
    assert backward_problems(released, current) == []


def test_the_check_catches_a_real_breaking_edit(tmp_path: Path) -> None:
    """A canonical schema edited the wrong way is caught, not just toy schemas."""
    name = "px.canonical.Fal1GeneralDeclaration"
    source = json.loads((RELEASED / "0.1.0" / f"{name}.avsc").read_text(encoding="utf-8"))
    source["fields"].append({"name": "berth", "type": "string", "doc": "new, no default"})
    edited = tmp_path / f"{name}.avsc"
    edited.write_text(json.dumps(source), encoding="utf-8")
    for other in (RELEASED / "0.1.0").glob("*.avsc"):
        if other.name != edited.name:
            (tmp_path / other.name).write_bytes(other.read_bytes())
    current = AvroSchemas.from_dirs(tmp_path, builtin=False)
    released = AvroSchemas.from_dirs(RELEASED / "0.1.0", builtin=False)
    assert backward_problems(released.schema(name), current.schema(name)) == [
        f"{name}.berth: field added without a default"
    ]


def test_a_message_written_with_a_released_schema_is_read_as_the_current_one() -> None:
    """What lets a trail schema evolve: a 0.1.0 seal (no previous_seal) is decoded by Avro
    schema resolution, its new field at its default."""
    released = AvroSchemas.from_dirs(RELEASED / "0.1.0", builtin=False)
    body = {"chain": "p0", "seal_seq": 0, "first_seq": 0, "last_seq": 0, "root": "00" * 32,
            "time": 0, "key_id": "k"}
    written = released.encode("px.trail.Seal", {"body": body, "signature": b"sig"})
    assert written[2:10] != CURRENT.fingerprint("px.trail.Seal")
    assert written[2:10] in CURRENT.fingerprints("px.trail.Seal")
    name, value = CURRENT.decode(written)
    assert name == "px.trail.Seal"
    assert value["body"]["previous_seal"] is None and value["signature"] == b"sig"


def test_the_released_writers_are_each_release_s_schemas_that_differ_from_the_current() -> None:
    """Read name by name (a trail archive asks for three names' fingerprints): every schema
    of every release whose fingerprint is not the current one of its name, and no other."""
    current = AvroSchemas()
    expected: set[bytes] = set()
    for version in VERSIONS:
        released = AvroSchemas.from_dirs(version, builtin=False)
        expected |= {released.fingerprint(name) for name in released.names()
                     if name in current and released.fingerprint(name) != current.fingerprint(name)}
    asked_alone = {fingerprint for name in current.names()
                   for fingerprint in current.fingerprints(name)[1:]}
    assert asked_alone == expected and len(expected) > 10
    assert {entry.fingerprint for entry in AvroSchemas().writer_schemas()
            if not entry.current} == expected


def test_a_crew_list_written_before_the_lists_opened_is_read_with_the_new_fields_null() -> None:
    """A 0.2.0 crew list (every field required, no local time) decodes as today's record."""
    released = AvroSchemas.from_dirs(RELEASED / "0.2.0", builtin=False)
    header = {"event_id": "e", "document_type": "fal5", "format_id": "fal5-xml",
              "schema_version": 1, "sender": "cn.port.sh", "business_key": "k",
              "document_version": 1, "received_at": 0, "digest_sm3": "0" * 64,
              "signature_key_id": None}
    ship = {"name": "PX EASTERN DAWN", "imo_number": "9456783", "call_sign": "VRQD4",
            "flag_state": "HK", "gross_tonnage": None, "net_tonnage": None}
    member = {"family_name": "CHEN", "given_names": None, "rank_or_rating": "Master",
              "nationality": "CN", "date_of_birth": 0, "place_of_birth": "Ningbo",
              "identity_document": {"document_type": "Passport", "number": "E1",
                                    "issuing_state": "CN", "expiry_date": 20_000}}
    record = {"header": header, "arrival_or_departure": "Arrival", "ship": ship,
              "voyage_number": "0312E", "port_of_arrival_departure": "CNSHA",
              "date_time_of_arrival_departure": 0, "utc_offset_minutes": 480,
              "last_port_of_call": None, "crew_count": 1, "crew": [member]}
    name = "px.canonical.Fal5CrewList"
    written = released.encode(name, record)
    assert written[2:10] != CURRENT.fingerprint(name)
    decoded_name, value = CURRENT.decode(written)
    assert decoded_name == name
    assert value["local_date_time_of_arrival_departure"] is None
    assert value["ship"]["call_sign"] == "VRQD4" and value["crew"][0]["rank_or_rating"] == "Master"
