from __future__ import annotations

import json
import pickle
import sys
import textwrap
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
)
from message_formats import AvroSchemas, SafeXmlParser, XsdStore

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
    assert "fal1" in compiled and len(compiled) == len(registry)
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


@pytest.mark.parametrize("group", ["px_test.broken", "px_test.not_adapter"])
def test_failing_plugins_stop_start_up(plugin_path: Path, group: str) -> None:
    with pytest.raises(AdapterError) as caught:
        AdapterRegistry.default(group=group)
    assert caught.value.code == "ADAPTER_REGISTRATION_FAILED"


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
