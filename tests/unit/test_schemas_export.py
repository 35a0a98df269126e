"""`portgw schemas export`: every schema a consumer meets, each file standalone and named in
the index by the fingerprint single-object encoding carries; the projected and masked records
of the contracts in force included; earlier exports kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from gateway.cli.main import main
from gateway.cli.schemas import INDEX_FILE, export_schemas
from gateway.errors import GatewayError
from gateway.home.create import DEMO_CONTRACTS, ContractSpec, create_home
from message_formats import AvroSchemas, WriterSchema

PROJECTED = ContractSpec(
    id="crew-to-msa", provider="cn.border.sh", consumers=("cn.msa.sh",),
    document_types=("fal5",), scope="cross-department", purpose="port state control",
    legal_basis="海上交通安全法", fields=("ship", "crew"),
    extra='[masks]\n"crew[].family_name" = "pseudonym"\n"crew[].date_of_birth" = "year"\n')


def fastavro_fingerprint(schema: dict[str, Any]) -> str:
    """fastavro's own CRC-64-AVRO of the schema, in the byte order of single-object
    encoding."""
    return str(fingerprint(to_parsing_canonical_form(fastavro.parse_schema(schema)),
                           "CRC-64-AVRO"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    home = create_home(root / "home", contracts=(*DEMO_CONTRACTS, PROJECTED))
    assert main(["schemas", "export", str(root / "out"), "--config",
                 str(home.config_file)]) == 0
    return root / "out"


def test_every_file_is_standalone_and_named_by_its_fingerprint(exported: Path) -> None:
    index = json.loads((exported / INDEX_FILE).read_text())
    assert index["format"] == "px-avro-schema-index/1"
    current = {e["name"] for e in index["schemas"].values() if e["current"]}
    assert current == {*AvroSchemas().names(), "px.projected.crew_to_msa.v1.Fal5CrewList"}
    # The rest: an earlier release's schema of a current name, that older values carry.
    assert {e["name"] for e in index["schemas"].values() if not e["current"]} <= current
    for key, entry in index["schemas"].items():
        schema = json.loads((exported / entry["file"]).read_text(encoding="utf-8"))
        assert fastavro_fingerprint(schema) == key, entry["name"]
        assert entry["file"] == f"{entry['name']}-{key}.avsc"
    assert sorted(p.name for p in exported.iterdir()) == sorted(
        [INDEX_FILE, *(entry["file"] for entry in index["schemas"].values())])


def test_what_a_consumer_meets_is_there(exported: Path) -> None:
    names = {entry["name"]: key for key, entry in
             json.loads((exported / INDEX_FILE).read_text())["schemas"].items()}
    shipped = AvroSchemas()
    for name in ("px.gateway.Delivery", "px.canonical.Fal5CrewList", "px.trail.TrailRecord"):
        assert names[name] == shipped.fingerprint(name).hex()
    projected = json.loads((exported / f"px.projected.crew_to_msa.v1.Fal5CrewList-"
                            f"{names['px.projected.crew_to_msa.v1.Fal5CrewList']}.avsc")
                           .read_text(encoding="utf-8"))
    assert [field["name"] for field in projected["fields"]] == ["header", "ship", "crew"]
    # Logical types survive: a consumer reads times as times.
    assert '"logicalType": "timestamp-millis"' in json.dumps(projected)


def writer(name: str, doc: str) -> WriterSchema:
    schema: dict[str, Any] = {"type": "record", "name": name, "doc": doc,
              "fields": [{"name": doc, "type": "string"}]}
    return WriterSchema(name, bytes.fromhex(fastavro_fingerprint(schema)), schema, True)


def test_a_later_export_keeps_the_earlier_schemas(tmp_path: Path) -> None:
    first, second = writer("px.projected.a.v1.R", "one"), writer("px.projected.a.v2.R", "two")
    export_schemas([first], tmp_path)
    export_schemas([second], tmp_path)
    entries = json.loads((tmp_path / INDEX_FILE).read_text())["schemas"]
    assert entries == {
        first.fingerprint.hex(): {"name": first.full_name, "current": False,
                                  "file": f"{first.full_name}-{first.fingerprint.hex()}.avsc"},
        second.fingerprint.hex(): {"name": second.full_name, "current": True,
                                   "file": f"{second.full_name}-{second.fingerprint.hex()}.avsc"},
    }
    # An entry whose file is gone, or names a file outside the directory, is not kept.
    (tmp_path / entries[first.fingerprint.hex()]["file"]).unlink()
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    index["schemas"]["00" * 8] = {"name": "x", "file": f"../{tmp_path.name}/{INDEX_FILE}"}
    (tmp_path / INDEX_FILE).write_text(json.dumps(index))
    export_schemas([], tmp_path)
    assert list(json.loads((tmp_path / INDEX_FILE).read_text())["schemas"]) == [
        second.fingerprint.hex()]


def test_a_foreign_index_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / INDEX_FILE).write_text('{"schemas": []}')
    with pytest.raises(GatewayError) as caught:
        export_schemas([writer("px.projected.a.v1.R", "one")], tmp_path)
    assert caught.value.code == "SCHEMA_INDEX_INVALID"
    assert (tmp_path / INDEX_FILE).read_text() == '{"schemas": []}'
