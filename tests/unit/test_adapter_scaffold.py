"""`portgw adapters new --xsd`: an adapter plug-in written from a format's XML Schema, which
passes the conformance kit on the integrator's samples as written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from adapters.kit import check_adapter
from adapters.scaffold import Names, ScaffoldError, Skeleton, load_written, write_skeleton
from gateway.cli.main import main
from message_formats import XsdStore

ROOT = Path(__file__).parents[2]
# A real published schema, as the xmlschema wheel ships it: W3C XML Signature Syntax and
# Processing (its DTD commented out by xmlschema, so that a safe parser reads it).
XMLDSIG_XSD = Path(xmlschema.__file__).parent / "schemas" / "DSIG" / "xmldsig-core-schema.xsd"
SIGNED_MANIFEST = ROOT / "tests" / "data" / "cn-manifest" / "mt2101_signed_the_eport_way.xml"
NAMES = Names(format_id="call-xml", document_type="port_call", package="port_call_adapter",
              avro_namespace="px.plugin", label="Port call")

MAIN = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:example:call"
           xmlns:v="urn:example:vessel" targetNamespace="urn:example:call"
           elementFormDefault="qualified">
  <xs:include schemaLocation="common/call-types.xsd"/>
  <xs:import namespace="urn:example:vessel" schemaLocation="common/vessel.xsd"/>
  <xs:element name="PortCall">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="CallId" type="xs:token"/>
        <xs:element ref="v:Vessel"/>
        <xs:element name="Berth" type="PlaceType"/>
        <xs:element name="Anchorage" type="PlaceType" minOccurs="0"/>
        <xs:element name="Draught" type="MetresType" minOccurs="0"/>
        <xs:element name="Remark" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
        <xs:choice>
          <xs:element name="Arrival" type="xs:dateTime"/>
          <xs:element name="Departure" type="xs:dateTime"/>
        </xs:choice>
        <xs:element name="Cargo" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:element name="Tonnes" type="xs:double"/>
              <xs:element name="Dangerous" type="xs:boolean"/>
            </xs:sequence>
            <xs:attribute name="lines" type="xs:unsignedShort" use="required"/>
          </xs:complexType>
        </xs:element>
        <xs:any namespace="##other" processContents="lax" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="version" type="xs:positiveInteger" use="required"/>
      <xs:attribute name="urgent" type="xs:boolean"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""
TYPES = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:example:call"
           targetNamespace="urn:example:call" elementFormDefault="qualified">
  <xs:complexType name="PlaceType">
    <xs:sequence>
      <xs:element name="Locode" type="xs:string"/>
      <xs:element name="Name" type="xs:token" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="MetresType">
    <xs:simpleContent>
      <xs:extension base="xs:decimal">
        <xs:attribute name="measured" type="xs:boolean" use="required"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
</xs:schema>
"""
VESSEL = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:example:vessel"
           elementFormDefault="qualified">
  <xs:element name="Vessel">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Imo" type="xs:string"/>
        <xs:element name="Teu" type="xs:int" minOccurs="0"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""
FULL_CALL = """<?xml version="1.0" encoding="UTF-8"?>
<PortCall xmlns="urn:example:call" xmlns:v="urn:example:vessel" version="3" urgent="true">
  <CallId>CNSHA-2026-0042</CallId>
  <v:Vessel><v:Imo>9456783</v:Imo><v:Teu>14000</v:Teu></v:Vessel>
  <Berth><Locode>CNSHA</Locode><Name>Yangshan 4</Name></Berth>
  <Anchorage><Locode>CNSHA</Locode></Anchorage>
  <Draught measured="true">14.5</Draught>
  <Remark>pilot at 0600</Remark>
  <Remark>tugs: 2</Remark>
  <Arrival>2026-12-07T06:00:00+08:00</Arrival>
  <Cargo lines="12"><Tonnes>5230.5</Tonnes><Dangerous>false</Dangerous></Cargo>
  <Cargo lines="1"><Tonnes>12</Tonnes><Dangerous>1</Dangerous></Cargo>
</PortCall>
"""
SPARE_CALL = """<?xml version="1.0" encoding="UTF-8"?>
<PortCall xmlns="urn:example:call" xmlns:v="urn:example:vessel" version="1">
  <CallId>CNSHA-2026-0043</CallId>
  <v:Vessel><v:Imo>9321483</v:Imo></v:Vessel>
  <Berth><Locode>CNNGB</Locode></Berth>
  <Departure>2026-12-08T18:30:00Z</Departure>
</PortCall>
"""


def write_schema(folder: Path, main: str = MAIN) -> Path:
    (folder / "common").mkdir(parents=True)
    (folder / "common" / "call-types.xsd").write_text(TYPES)
    (folder / "common" / "vessel.xsd").write_text(VESSEL)
    (folder / "call.xsd").write_text(main)
    return folder / "call.xsd"


def write_samples(folder: Path, **documents: str) -> list[Path]:
    folder.mkdir()
    paths = []
    for name, text in documents.items():
        (folder / f"{name}.xml").write_text(text)
        paths.append(folder / f"{name}.xml")
    return paths


@pytest.fixture
def call_project(tmp_path: Path) -> Skeleton:
    samples = write_samples(tmp_path / "mine", full=FULL_CALL, spare=SPARE_CALL)
    return write_skeleton(write_schema(tmp_path / "schema"), tmp_path / "call", NAMES, samples)


def avro_fields(project: Skeleton) -> dict[str, Any]:
    schema = json.loads(project.avro_file.read_text())
    return {field["name"]: field["type"] for field in schema["fields"]}


def test_the_written_adapter_passes_the_conformance_kit_on_the_samples(
        call_project: Skeleton) -> None:
    adapter, schemas = load_written(call_project, NAMES)
    report = check_adapter(adapter, samples_dir=call_project.folder / "samples",
                           schemas=schemas)
    assert report.ok, report.describe()
    assert sorted(p.name for p in (call_project.package / "xsd").iterdir()) == [
        "call-types.xsd", "call.xsd", "vessel.xsd"]
    assert 'schemaLocation="vessel.xsd"' in (call_project.package / "xsd" / "call.xsd").read_text()


def test_the_written_adapter_reads_every_declared_element_and_attribute(
        call_project: Skeleton) -> None:
    adapter, _ = load_written(call_project, NAMES)
    record = adapter.parse(FULL_CALL.encode()).record
    assert record["version"] == 3 and record["urgent"] is True
    assert record["vessel"] == {"imo": "9456783", "teu": 14000}
    assert record["berth"] == {"locode": "CNSHA", "name": "Yangshan 4"}
    assert record["anchorage"] == {"locode": "CNSHA", "name": None}
    assert record["draught"] == {"measured": True, "value": "14.5"}
    assert record["remark"] == ["pilot at 0600", "tugs: 2"]
    assert (record["arrival"], record["departure"]) == ("2026-12-07T06:00:00+08:00", None)
    assert record["cargo"] == [{"lines": 12, "tonnes": 5230.5, "dangerous": False},
                               {"lines": 1, "tonnes": 12.0, "dangerous": True}]
    assert adapter.parse(FULL_CALL.encode()).document_version == 3
    spare = adapter.parse(SPARE_CALL.encode()).record
    assert (spare["anchorage"], spare["draught"], spare["remark"], spare["cargo"]) == (
        None, None, [], [])


def test_the_canonical_record_types_follow_the_schema(call_project: Skeleton) -> None:
    fields = avro_fields(call_project)
    assert fields["header"] == "px.canonical.Header"
    assert fields["version"] == "long"  # xs:positiveInteger
    assert fields["urgent"] == ["null", "boolean"]
    assert fields["call_id"] == "string"
    assert fields["remark"] == {"type": "array", "items": "string"}
    assert fields["arrival"] == ["null", "string"] == fields["departure"]  # a choice
    # A named type used twice is one record, defined where it first appears.
    assert fields["berth"]["name"] == "Place" and fields["anchorage"] == ["null", "Place"]
    cargo = fields["cargo"]["items"]
    assert {f["name"]: f["type"] for f in cargo["fields"]} == {
        "lines": "int", "tonnes": "double", "dangerous": "boolean"}


def test_wildcards_are_named_in_the_module_as_not_read(call_project: Skeleton) -> None:
    module = call_project.adapter_module.read_text()
    assert "- PortCall: xs:any" in module
    assert "def business_key" in module and "record[\"call_id\"]" in module


def test_the_copies_point_at_each_other_and_none_is_named_as_a_builtin(tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "mine", arrival=(ROOT / "tests" / "data" / "fal3" /
                                                         "valid_arrival.xml").read_text())
    names = Names("stores-xml", "stores", "stores_adapter", "px.plugin", "Ship's stores")
    written = write_skeleton(ROOT / "message_formats" / "xsd" / "fal3.xsd", tmp_path / "stores",
                             names, samples)
    # fal3 is the gateway's own XSD name: the copy is renamed, so the plug-in loads.
    assert [p.name for p in (written.package / "xsd").iterdir()] == ["fal3_2.xsd"]
    XsdStore.with_extension(written.package / "xsd")
    adapter, schemas = load_written(written, names)
    assert check_adapter(adapter, samples_dir=written.folder / "samples", schemas=schemas).ok


def test_a_real_published_schema_gives_a_plugin_whose_own_test_passes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = tmp_path / "signature.xml"
    sample.write_bytes(_signature_of(SIGNED_MANIFEST))
    assert main(["adapters", "new", str(tmp_path / "dsig"), "--xsd", str(XMLDSIG_XSD),
                 "--root", "Signature", "--sample", str(sample), "--format-id", "xmldsig-xml",
                 "--label", "XML signature"]) == 0
    assert "the conformance kit passes on 1 sample(s)" in capsys.readouterr().out
    project = tmp_path / "dsig"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests"], cwd=project, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": f"{project}:{ROOT}", "PATH": "/usr/bin:/bin"},
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_a_sample_the_schema_refuses_is_reported_by_the_kit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = write_samples(tmp_path / "mine", broken=SPARE_CALL.replace("<CallId>", "<Id>")
                            .replace("</CallId>", "</Id>"))
    assert main(["adapters", "new", str(tmp_path / "call"), "--xsd",
                 str(write_schema(tmp_path / "s")), "--sample", str(samples[0]),
                 "--format-id", "call-xml"]) == 1
    err = capsys.readouterr().err
    assert "broken.xml" in err and "XSD_INVALID" in err
    assert (tmp_path / "call" / "call_adapter" / "__init__.py").is_file()  # kept to be fixed


@pytest.mark.parametrize(("change", "code"), [
    (lambda main: main.replace('<?xml version="1.0" encoding="UTF-8"?>',
                               '<?xml version="1.0"?><!DOCTYPE xs:schema [<!ENTITY e "x">]>'),
     "SCAFFOLD_XSD_DTD"),
    (lambda main: main.replace('schemaLocation="common/vessel.xsd"',
                               'schemaLocation="https://example.org/vessel.xsd"'),
     "SCAFFOLD_XSD_REMOTE"),
    (lambda main: main.replace('schemaLocation="common/vessel.xsd"',
                               'schemaLocation="common/gone.xsd"'), "SCAFFOLD_XSD_UNREADABLE"),
    (lambda main: main.replace('<xs:element name="CallId" type="xs:token"/>',
                               '<xs:element name="CallId" type="xs:token"/>'
                               '<xs:element ref="PortCall" minOccurs="0"/>'),
     "SCAFFOLD_RECURSIVE_TYPE"),
    (lambda main: main.replace("</xs:schema>",
                               '<xs:element name="Other" type="xs:string"/></xs:schema>'),
     "SCAFFOLD_ROOT_AMBIGUOUS"),
])
def test_a_schema_the_skeleton_cannot_take_is_refused_with_its_code(
        tmp_path: Path, change: Any, code: str) -> None:
    samples = write_samples(tmp_path / "mine", spare=SPARE_CALL)
    xsd = write_schema(tmp_path / "schema", change(MAIN))
    with pytest.raises(ScaffoldError) as refused:
        write_skeleton(xsd, tmp_path / "call", NAMES, samples)
    assert refused.value.code == code
    assert not (tmp_path / "call").exists()


@pytest.mark.parametrize(("names", "out_exists", "code"), [
    (NAMES, True, "SCAFFOLD_TARGET_EXISTS"),
    (Names("Call XML", "port_call", "port_call_adapter", "px.plugin", "x"), False,
     "SCAFFOLD_NAME_INVALID"),
    (Names("call-xml", "port_call", "class", "px.plugin", "x"), False, "SCAFFOLD_NAME_INVALID"),
    (Names("call-xml", "port_call", "pkg", "px.plugin", 'a """ b'), False,
     "SCAFFOLD_NAME_INVALID"),
])
def test_names_and_the_target_folder_are_checked_before_anything_is_written(
        tmp_path: Path, names: Names, out_exists: bool, code: str) -> None:
    samples = write_samples(tmp_path / "mine", spare=SPARE_CALL)
    if out_exists:
        (tmp_path / "call").mkdir()
    with pytest.raises(ScaffoldError) as refused:
        write_skeleton(write_schema(tmp_path / "schema"), tmp_path / "call", names, samples)
    assert refused.value.code == code


def _signature_of(path: Path) -> bytes:
    from lxml import etree

    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    signature = tree.getroot().find(".//{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert signature is not None
    return etree.tostring(signature, xml_declaration=True, encoding="UTF-8")
