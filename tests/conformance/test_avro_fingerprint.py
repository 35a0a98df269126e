"""Avro single-object encoding against the Avro specification: the CRC-64-AVRO fingerprint
computed by the spec's reference algorithm, vectors from Avro's schema-tests, and the
little-endian byte order the single-object header requires."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from message_formats import AvroSchemas, avro_fingerprint

EMPTY = 0xC15D213AA4D7A795
MASK64 = (1 << 64) - 1


def _fp_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp & MASK64)
    return table


FP_TABLE = _fp_table()


def reference_fingerprint64(data: bytes) -> int:
    """The Avro spec's `fingerprint64`, as an unsigned 64-bit integer."""
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


def signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


# (schema text, its Parsing Canonical Form, fingerprint as published: signed 64-bit decimal)
# from Apache Avro share/test/data/schema-tests.txt.
SPEC_VECTORS = [
    ('"null"', '"null"', 7195948357588979594),
    ('{"type":"int"}', '"int"', 8247732601305521295),
    ('"string"', '"string"', -8142146995180207161),
    ('[ "int" , {"type":"boolean"} ]', '["int","boolean"]', 5392556393470105090),
    (
        '{"fields":[], "type":"record", "name":"foo"}',
        '{"name":"foo","type":"record","fields":[]}',
        -4824392279771201922,
    ),
    (
        '{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
        '{"name":"x.y.foo","type":"record","fields":[]}',
        5916914534497305771,
    ),
    (
        '{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}',
        '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
        7843277075252814651,
    ),
    (
        '{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar",'
        ' "symbols":["A1", "A2"]}',
        '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
        -4448647247586288245,
    ),
]


@pytest.mark.parametrize(("schema", "canonical", "published"), SPEC_VECTORS)
def test_reference_algorithm_reproduces_the_spec_vectors(
    schema: str, canonical: str, published: int
) -> None:
    assert signed(reference_fingerprint64(canonical.encode())) == published


@pytest.mark.parametrize(("schema", "canonical", "published"), SPEC_VECTORS)
def test_fingerprint_bytes_are_the_little_endian_crc(
    schema: str, canonical: str, published: int
) -> None:
    expected = (published & MASK64).to_bytes(8, "little")
    assert avro_fingerprint(json.loads(schema)) == expected


def test_string_schema_fingerprint_bytes() -> None:
    # -8142146995180207161 == 0x8F014872634503C7, least significant byte first.
    assert avro_fingerprint("string") == bytes.fromhex("c70345637248018f")


def test_single_object_encoding_of_a_record_from_a_schema_directory(tmp_path: Path) -> None:
    (tmp_path / "x.y.foo.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "foo",
                "namespace": "x.y",
                "doc": "ignored by the canonical form",
                "fields": [{"name": "f1", "type": "boolean", "doc": "a flag"}],
            }
        )
    )
    schemas = AvroSchemas.from_dirs(tmp_path, builtin=False)
    canonical = '{"name":"x.y.foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}'
    assert schemas.canonical_form("x.y.foo") == canonical
    fingerprint = reference_fingerprint64(canonical.encode()).to_bytes(8, "little")
    assert schemas.fingerprint("x.y.foo") == fingerprint
    # C3 01, fingerprint, then the binary encoding of {"f1": true}: one byte 0x01.
    encoded = schemas.encode("x.y.foo", {"f1": True})
    assert encoded == b"\xc3\x01" + fingerprint + b"\x01"
    assert schemas.decode(encoded) == ("x.y.foo", {"f1": True})


def test_every_packaged_schema_fingerprint_matches_the_reference() -> None:
    schemas = AvroSchemas()
    for name in schemas.names():
        canonical = schemas.canonical_form(name).encode()
        assert schemas.fingerprint(name) == reference_fingerprint64(canonical).to_bytes(8, "little")
