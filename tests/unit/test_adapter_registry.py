from __future__ import annotations

import json
import pickle
import sys
import textwrap
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from adapters import (
    ENTRY_POINT_GROUP,
    Adapter,
    AdapterError,
    AdapterRegistry,
    Fal1Adapter,
    RuleViolationError,
    builtin_adapters,
    installed_schemas,
)
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore

PLUGIN_MODULE = "px_test_plugin_adapter"

PLUGIN_SOURCE = textwrap.dedent(
    """
    from adapters import ParseResult


    class EchoAdapter:
        format_id = "echo-text"
        document_type = "echo"
        schema_name = "px.canonical.Header"
        media_type = "text/plain"

        def parse(self, data):
            return ParseResult(record={"text": data.decode()}, business_key="k",
                               document_version=1)

        def render(self, record):
            return record["text"].encode()


    def broken():
        raise RuntimeError("plug-in exploded")


    def not_an_adapter():
        return object()
    """
)


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution on sys.path declaring adapter entry points."""
    (tmp_path / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    dist_info = tmp_path / "px_test_plugin_adapter-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: px-test-plugin-adapter\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\necho-text = {PLUGIN_MODULE}:EchoAdapter\n\n"
        f"[px_test.broken]\nbroken = {PLUGIN_MODULE}:broken\n\n"
        f"[px_test.not_adapter]\nodd = {PLUGIN_MODULE}:not_an_adapter\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, PLUGIN_MODULE, raising=False)
    return tmp_path


def test_default_registry_has_the_builtins() -> None:
    registry = AdapterRegistry.default(AvroSchemas())
    assert "fal1-xml" in registry.formats()
    assert isinstance(registry.get("fal1-xml"), Fal1Adapter)
    assert "fal1-xml" in registry
    assert len(registry) == len(registry.formats())


def test_default_registry_shares_the_given_store_and_parser() -> None:
    store = XsdStore()
    registry = AdapterRegistry.default(xsd_store=store, xml_parser=SafeXmlParser())
    compiled = store.compiled()  # every built-in XSD at start-up, not on a first document
    with_xsd = [a for a in registry if getattr(a, "xsd_name", "")]  # cn-manifest has none
    assert "fal1" in compiled and len(compiled) == len(with_xsd)
    sample = Path(__file__).parent.parent / "data" / "fal1" / "valid_arrival.xml"
    assert registry.get("fal1-xml").parse(sample.read_bytes()).document_version == 1
    assert store.compiled() == compiled


def test_unknown_format() -> None:
    with pytest.raises(AdapterError) as caught:
        AdapterRegistry().get("fal9-edifact")
    assert caught.value.code == "ADAPTER_UNKNOWN_FORMAT"


def test_duplicate_format_is_refused() -> None:
    registry = AdapterRegistry([Fal1Adapter()])
    with pytest.raises(AdapterError) as caught:
        registry.register(Fal1Adapter())
    assert caught.value.code == "ADAPTER_REGISTRATION_FAILED"


def test_non_adapters_are_refused() -> None:
    with pytest.raises(AdapterError, match="protocol"):
        AdapterRegistry().register(object())  # type: ignore[arg-type]  # the wrong type on purpose


def test_adapter_schema_must_be_known(tmp_path: Path) -> None:
    (tmp_path / "x.Only.avsc").write_text(
        '{"type":"record","name":"Only","namespace":"x","fields":[]}'
    )
    registry = AdapterRegistry(schemas=AvroSchemas.from_dirs(tmp_path, builtin=False))
    with pytest.raises(AdapterError, match=r"px\.canonical\.Fal1GeneralDeclaration"):
        registry.register(Fal1Adapter())


def test_entry_point_plugins_are_loaded(plugin_path: Path) -> None:
    registry = AdapterRegistry.default(AvroSchemas())
    assert set(registry.formats()) >= {"fal1-xml", "echo-text"}
    echo = registry.get("echo-text")
    assert echo.parse(b"hi").record == {"text": "hi"}
    assert {adapter.format_id for adapter in registry} == set(registry.formats())


@pytest.mark.parametrize(("group", "plugin", "code"), [
    ("px_test.broken", "broken", "ADAPTER_PLUGIN_LOAD_FAILED"),
    ("px_test.not_adapter", "odd", "ADAPTER_PLUGIN_NOT_AN_ADAPTER"),
])
def test_failing_plugins_are_skipped_with_their_code(plugin_path: Path, group: str, plugin: str,
                                                     code: str) -> None:
    registry = AdapterRegistry.default(AvroSchemas(), group=group)
    [problem] = registry.problems
    assert (problem.plugin, problem.code) == (plugin, code)
    assert str(problem).startswith(f"{code}: adapter plug-in {plugin} ({PLUGIN_MODULE}:")
    assert registry.formats() == builtin_formats()


def test_adapter_errors_carry_code_message_and_line() -> None:
    error = RuleViolationError("bad digit", code="RULE_IMO_CHECK_DIGIT", line=8)
    assert str(error) == "RULE_IMO_CHECK_DIGIT: bad digit (line 8)"
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, copy.message, copy.line) == (
        RuleViolationError,
        "RULE_IMO_CHECK_DIGIT",
        "bad digit",
        8,
    )
    assert AdapterError("x").code == "ADAPTER_ERROR"


@pytest.mark.parametrize("adapter", AdapterRegistry.default(), ids=lambda a: a.format_id)
def test_every_builtin_document_record_starts_with_the_shared_header(adapter: Adapter) -> None:
    avsc = resources.files("message_formats").joinpath("avro", f"{adapter.schema_name}.avsc")
    first = json.loads(avsc.read_text(encoding="utf-8"))["fields"][0]
    assert (first["name"], first["type"]) == ("header", "px.canonical.Header")


# -- plug-ins that bring their own schemas ----------------------------------------------------

TAG_ADAPTER = textwrap.dedent(
    """
    from pathlib import Path

    from adapters import ParseResult
    from message_formats import SafeXmlParser, XsdStore


    class TagAdapter:
        format_id = "tag-xml"
        document_type = "tag"
        schema_name = "px.test.Tag"
        media_type = "application/xml"

        def __init__(self, *, xsd_store=None, xml_parser=None):
            self.xsd = xsd_store or XsdStore(Path(__file__).parent / "xsd")
            self.parser = xml_parser or SafeXmlParser()

        def parse(self, data):
            root = self.parser.parse(data)
            self.xsd.validate("tag", root)
            return ParseResult(record={"text": root.text}, business_key=root.text,
                               document_version=1)

        def render(self, record):
            return f"<tag>{record['text']}</tag>".encode()
    """
)
TAG_AVSC = json.dumps({"type": "record", "name": "Tag", "namespace": "px.test", "fields": [
    {"name": "header", "type": "px.canonical.Header"}, {"name": "text", "type": "string"}]})
TAG_XSD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="tag"><xs:simpleType><xs:restriction base="xs:string">
    <xs:pattern value="[a-z]+"/></xs:restriction></xs:simpleType></xs:element>
</xs:schema>"""
TAG_FILES = {"__init__.py": TAG_ADAPTER, "avro/px.test.Tag.avsc": TAG_AVSC,
             "xsd/tag.xsd": TAG_XSD}
PLUGIN_GROUP = "px_test.packages"


def install_package(root: Path, monkeypatch: pytest.MonkeyPatch, package: str,
                    files: dict[str, str], entry: str = "TagAdapter") -> None:
    """A distribution of one package on sys.path, declaring `package:entry` as an adapter."""
    for name, text in files.items():
        (root / package / name).parent.mkdir(parents=True, exist_ok=True)
        (root / package / name).write_text(text, encoding="utf-8")
    dist_info = root / f"{package}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[{PLUGIN_GROUP}]\n{package} = {package}:{entry}\n")
    monkeypatch.delitem(sys.modules, package, raising=False)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_plugin_brings_its_avro_schema_and_its_xsd(site: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    install_package(site, monkeypatch, "px_test_tag", TAG_FILES)
    schemas, store = AvroSchemas(), XsdStore()
    registry = AdapterRegistry.default(schemas, xsd_store=store, group=PLUGIN_GROUP)
    assert registry.problems == ()
    tag = registry.get("tag-xml")
    assert tag.parse(b"<tag>berth</tag>").record == {"text": "berth"}
    with pytest.raises(FormatError) as caught:
        tag.parse(b"<tag>Berth 3</tag>")
    assert caught.value.code == "XSD_INVALID"
    assert "tag" not in store.names()  # its XSDs are its own, not the built-ins' store
    header = _header()
    encoded = schemas.encode("px.test.Tag", {"header": header, "text": "berth"})
    assert schemas.decode(encoded) == ("px.test.Tag", {"header": header, "text": "berth"})


BROKEN_PLUGINS = {
    "import": ({"__init__.py": "import px_no_such_module\n"}, "ADAPTER_PLUGIN_LOAD_FAILED"),
    "factory": ({**TAG_FILES, "__init__.py": TAG_ADAPTER + "\n\ndef TagAdapter_():\n"
                 "    raise RuntimeError('no')\n"}, "ADAPTER_PLUGIN_LOAD_FAILED"),
    "avro_json": ({**TAG_FILES, "avro/px.test.Tag.avsc": "{not json"},
                  "ADAPTER_PLUGIN_SCHEMA_INVALID"),
    "avro_name": ({**TAG_FILES, "avro/px.test.Tag.avsc": TAG_AVSC.replace('"Tag"', '"Tog"')},
                  "ADAPTER_PLUGIN_SCHEMA_INVALID"),
    "avro_builtin": ({**TAG_FILES, "avro/px.canonical.Header.avsc": json.dumps(
        {"type": "record", "name": "Header", "namespace": "px.canonical", "fields": []})},
                     "ADAPTER_PLUGIN_SCHEMA_REDEFINED"),
    "xsd_builtin": ({**TAG_FILES, "xsd/fal1.xsd": TAG_XSD}, "ADAPTER_PLUGIN_SCHEMA_REDEFINED"),
    "xsd_broken": ({**TAG_FILES, "xsd/tag.xsd": TAG_XSD.replace("xs:pattern", "xs:bogus")},
                   "ADAPTER_PLUGIN_SCHEMA_INVALID"),
    "schema_missing": ({k: v for k, v in TAG_FILES.items() if not k.startswith("avro/")},
                       "ADAPTER_PLUGIN_SCHEMA_MISSING"),
    "format_taken": ({**TAG_FILES, "__init__.py": TAG_ADAPTER.replace('"tag-xml"',
                                                                      '"fal1-xml"')},
                     "ADAPTER_PLUGIN_FORMAT_TAKEN"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_PLUGINS))
def test_a_broken_plugin_is_skipped_with_its_code_and_leaves_the_others(
        site: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    files, code = BROKEN_PLUGINS[case]
    entry = "TagAdapter_" if case == "factory" else "TagAdapter"
    install_package(site, monkeypatch, f"px_test_broken_{case}", files, entry)
    install_package(site, monkeypatch, "px_test_tag", TAG_FILES)
    schemas = AvroSchemas()
    registry = AdapterRegistry.default(schemas, group=PLUGIN_GROUP)
    [problem] = registry.problems
    assert (problem.plugin, problem.code) == (f"px_test_broken_{case}", code)
    assert set(registry.formats()) == {*builtin_formats(), "tag-xml"}
    assert registry.get("fal1-xml").schema_name in schemas
    assert schemas.names() == (*sorted((*AvroSchemas().names(), "px.test.Tag")),)


def test_installed_schemas_has_the_plugins_ones(site: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    install_package(site, monkeypatch, "px_test_tag", TAG_FILES)
    assert set(installed_schemas(PLUGIN_GROUP).names()) == {*AvroSchemas().names(),
                                                             "px.test.Tag"}


def test_a_second_plugin_may_not_redefine_the_first_ones_schema(
        site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_package(site, monkeypatch, "px_test_tag", TAG_FILES)
    install_package(site, monkeypatch, "px_test_tag2",
                    {**TAG_FILES, "__init__.py": TAG_ADAPTER.replace('"tag-xml"', '"tag2-xml"')})
    registry = AdapterRegistry.default(AvroSchemas(), group=PLUGIN_GROUP)
    assert [(p.plugin, p.code) for p in registry.problems] == [
        ("px_test_tag2", "ADAPTER_PLUGIN_SCHEMA_REDEFINED")]
    assert "tag-xml" in registry and "tag2-xml" not in registry


def builtin_formats() -> tuple[str, ...]:
    return AdapterRegistry(builtin_adapters(XsdStore(), SafeXmlParser())).formats()


def _header() -> dict[str, object]:
    return {"event_id": "e1", "document_type": "tag", "format_id": "tag-xml",
            "schema_version": 1, "sender": "cn.port.sh", "business_key": "berth",
            "document_version": 1, "received_at": datetime(2026, 1, 1, tzinfo=UTC),
            "digest_sm3": "00", "signature_key_id": None}
