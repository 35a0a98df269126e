from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from message_formats import (
    SINGLE_OBJECT_MAGIC,
    AvroSchemas,
    FormatError,
)

FAL1 = "px.canonical.Fal1GeneralDeclaration"
CANONICAL = (
    "px.canonical.ArrivalOrDeparture",
    "px.canonical.Fal1GeneralDeclaration",
    "px.canonical.Header",
    "px.canonical.Ship",
    "px.canonical.ShipAgent",
)


@pytest.fixture(scope="module")
def event() -> dict[str, Any]:
    header = {
        "event_id": "01890a5d-ac96-774b-bcce-b302099a8057",
        "document_type": "fal1",
        "format_id": "fal1-xml",
        "schema_version": 1,
        "sender": "cn.msa.sh",
        "business_key": "9074729:V2611:A:CNSHA",
        "document_version": 1,
        "received_at": datetime(2026, 3, 14, 21, 0, 5, 123_000, tzinfo=UTC),
        "digest_sm3": "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
        "signature_key_id": "cn.msa.sh/2026-01",
    }
    return {
        "header": header,
        "document_number": "GD-CNSHA-2026-000451",
        "arrival_or_departure": "Arrival",
        "ship": {
            "name": "PX HARMONY",
            "imo_number": "9074729",
            "call_sign": "VRAB7",
            "flag_state": "HK",
            "gross_tonnage": 40541,
            "net_tonnage": None,
        },
        "voyage_number": "V2611",
        "port_of_arrival_departure": "CNSHA",
        "date_time_of_arrival_departure": datetime(2026, 3, 14, 22, 30, tzinfo=UTC),
        "utc_offset_minutes": 480,
        "last_port_of_call": "KRPUS",
        "next_port_of_call": None,
        "master_name": "ZHANG Wei 张伟",
        "ship_agent": {"name": "Shanghai Ocean Shipping Agency", "contact": None},
        "brief_cargo_description": "Containers, 2,150 TEU",
        "crew_count": 22,
        "passenger_count": 0,
        "remarks": "吴淞口锚地登轮。",
    }


def _packaged_schema_json(name: str) -> dict[str, Any]:
    path = resources.files("message_formats").joinpath("avro", f"{name}.avsc")
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- loading


def test_canonical_schemas_are_packaged(schemas: AvroSchemas) -> None:
    assert set(CANONICAL) <= set(schemas.names())
    assert list(schemas.names()) == sorted(schemas.names())


PACKAGED = sorted(path.name.removesuffix(".avsc")
                  for path in resources.files("message_formats").joinpath("avro").iterdir()
                  if path.name.endswith(".avsc"))


@pytest.mark.parametrize("name", PACKAGED)
def test_every_packaged_schema_documents_every_field(name: str) -> None:
    schema = _packaged_schema_json(name)
    assert schema.get("doc")
    assert f"{schema['namespace']}.{schema['name']}" == name
    for field in schema.get("fields", []):
        assert field.get("doc"), f"{name}.{field['name']} has no doc"


def test_header_fields() -> None:
    fields = {f["name"]: f["type"] for f in _packaged_schema_json("px.canonical.Header")["fields"]}
    assert fields == {
        "event_id": "string",
        "document_type": "string",
        "format_id": "string",
        "schema_version": "int",
        "sender": "string",
        "business_key": "string",
        "document_version": "int",
        "received_at": {"type": "long", "logicalType": "timestamp-millis"},
        "digest_sm3": "string",
        "signature_key_id": ["null", "string"],
    }


def test_parsed_schema_works_with_fastavro_directly(
    schemas: AvroSchemas, event: dict[str, Any]
) -> None:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schemas.schema(FAL1), event)
    buffer.seek(0)
    assert fastavro.schemaless_reader(buffer, schemas.schema(FAL1)) == event


def test_unknown_name(schemas: AvroSchemas) -> None:
    with pytest.raises(FormatError) as caught:
        schemas.schema("px.canonical.Nope")
    assert caught.value.code == "AVRO_UNKNOWN_SCHEMA"
    assert "px.canonical.Nope" not in schemas


# ---------------------------------------------------------------- single-object encoding


def test_round_trip_of_a_full_event(schemas: AvroSchemas, event: dict[str, Any]) -> None:
    encoded = schemas.encode(FAL1, event)
    assert encoded[:2] == SINGLE_OBJECT_MAGIC
    assert encoded[2:10] == schemas.fingerprint(FAL1)
    assert schemas.name_of_fingerprint(encoded[2:10]) == FAL1
    assert schemas.decode(encoded) == (FAL1, event)


def test_a_new_store_reads_a_message_of_a_schema_it_was_never_asked_for_by_name(
        schemas: AvroSchemas, event: dict[str, Any]) -> None:
    """Each file is parsed when first needed: a fingerprint finds its schema all the same."""
    encoded = schemas.encode(FAL1, event)
    assert AvroSchemas().decode(encoded) == (FAL1, event)
    assert AvroSchemas().name_of_fingerprint(encoded[2:10]) == FAL1
    fresh = AvroSchemas()
    assert FAL1 in fresh and FAL1 in fresh.names()
    assert fresh.decode(encoded) == (FAL1, event)


def test_decode_accepts_bytes_like(schemas: AvroSchemas, event: dict[str, Any]) -> None:
    encoded = schemas.encode(FAL1, event)
    assert schemas.decode(memoryview(bytearray(encoded)))[1] == event


def test_fingerprints_differ_between_schemas(schemas: AvroSchemas) -> None:
    fingerprints = {schemas.fingerprint(n) for n in schemas.names()}
    assert len(fingerprints) == len(schemas.names())
    assert all(len(f) == 8 for f in fingerprints)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc3", b"\xc3\x01\x00", b"garbage garbage garbage", b"\x00\x01" + bytes(20)],
)
def test_garbage_is_malformed(schemas: AvroSchemas, data: bytes) -> None:
    with pytest.raises(FormatError) as caught:
        schemas.decode(data)
    assert caught.value.code == "AVRO_MALFORMED"


def test_unknown_fingerprint(schemas: AvroSchemas) -> None:
    with pytest.raises(FormatError) as caught:
        schemas.decode(SINGLE_OBJECT_MAGIC + b"\x01" * 8 + b"\x00")
    assert caught.value.code == "AVRO_UNKNOWN_SCHEMA"
    with pytest.raises(FormatError):
        schemas.name_of_fingerprint(b"\x01" * 8)


def test_truncated_and_padded_values_are_malformed(
    schemas: AvroSchemas, event: dict[str, Any]
) -> None:
    encoded = schemas.encode(FAL1, event)
    for broken in (encoded[:-1], encoded[:20], encoded + b"\x00"):
        with pytest.raises(FormatError) as caught:
            schemas.decode(broken)
        assert caught.value.code == "AVRO_MALFORMED"


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300))
def test_random_bodies_decode_or_fail_cleanly(schemas: AvroSchemas, body: bytes) -> None:
    for name in (FAL1, "px.canonical.Header"):
        try:
            decoded_name, _ = schemas.decode(SINGLE_OBJECT_MAGIC + schemas.fingerprint(name) + body)
        except FormatError as exc:
            assert exc.code == "AVRO_MALFORMED"
        else:
            assert decoded_name == name


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.pop("crew_count"),
        lambda e: e.update(unexpected="x"),
        lambda e: e.update(crew_count="22"),
        lambda e: e.update(arrival_or_departure="Anchored"),
        lambda e: e["header"].pop("sender"),
    ],
)
def test_records_that_do_not_fit_are_refused(
    schemas: AvroSchemas, event: dict[str, Any], change: Any
) -> None:
    broken = {**event, "header": dict(event["header"])}
    change(broken)
    with pytest.raises(FormatError) as caught:
        schemas.encode(FAL1, broken)
    assert caught.value.code == "AVRO_RECORD_INVALID"


def test_fields_with_defaults_may_be_omitted(schemas: AvroSchemas, event: dict[str, Any]) -> None:
    header = {k: v for k, v in event["header"].items() if k != "signature_key_id"}
    _, decoded = schemas.decode(schemas.encode("px.canonical.Header", header))
    assert decoded["signature_key_id"] is None


# ---------------------------------------------------------------- extra directories


def _write_schema(directory: Path, name: str, schema: dict[str, Any]) -> None:
    (directory / f"{name}.avsc").write_text(json.dumps(schema), encoding="utf-8")


def test_extra_directory_may_reference_builtin_types(tmp_path: Path) -> None:
    _write_schema(
        tmp_path,
        "ext.port.BerthRequest",
        {
            "type": "record",
            "name": "BerthRequest",
            "namespace": "ext.port",
            "doc": "An integrator's document.",
            "fields": [
                {"name": "header", "type": "px.canonical.Header", "doc": "Shared header."},
                {"name": "berth", "type": "string", "doc": "Berth code."},
            ],
        },
    )
    schemas = AvroSchemas.from_dirs(tmp_path)
    assert "ext.port.BerthRequest" in schemas
    assert FAL1 in schemas
    header = {
        "event_id": "e",
        "document_type": "berth",
        "format_id": "berth-json",
        "schema_version": 1,
        "sender": "cn.port.sh",
        "business_key": "b",
        "document_version": 1,
        "received_at": datetime(2026, 1, 1, tzinfo=UTC),
        "digest_sm3": "0" * 64,
        "signature_key_id": None,
    }
    value = {"header": header, "berth": "W3"}
    assert schemas.decode(schemas.encode("ext.port.BerthRequest", value)) == (
        "ext.port.BerthRequest",
        value,
    )


def test_a_name_defined_twice_is_refused(tmp_path: Path) -> None:
    _write_schema(
        tmp_path,
        "px.canonical.Ship",
        {"type": "record", "name": "Ship", "namespace": "px.canonical", "fields": []},
    )
    with pytest.raises(FormatError) as caught:
        AvroSchemas.from_dirs(tmp_path)
    assert caught.value.code == "AVRO_SCHEMA_LOAD_FAILED"


def test_file_name_must_be_the_full_name(tmp_path: Path) -> None:
    _write_schema(tmp_path, "ext.Wrong", {"type": "record", "name": "Right", "fields": []})
    with pytest.raises(FormatError, match="file name"):
        AvroSchemas.from_dirs(tmp_path, builtin=False)


def test_unresolvable_reference_is_refused(tmp_path: Path) -> None:
    _write_schema(
        tmp_path,
        "ext.A",
        {
            "type": "record",
            "name": "A",
            "namespace": "ext",
            "fields": [{"name": "b", "type": "ext.B"}],
        },
    )
    with pytest.raises(FormatError) as caught:
        AvroSchemas.from_dirs(tmp_path, builtin=False)
    assert caught.value.code == "AVRO_SCHEMA_LOAD_FAILED"


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FormatError):
        AvroSchemas.from_dirs(tmp_path / "absent")
