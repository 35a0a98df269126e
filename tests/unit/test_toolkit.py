"""The adapter toolkit's XmlAdapter: the business key is taken before the rules run, so a
document a rule refuses keeps its key and version on the error, across the worker's process
boundary too; an integrator's adapter built on the toolkit (the berth example) gets the same."""

from __future__ import annotations

import json
import pickle
import runpy
from pathlib import Path
from typing import Any

import pytest

from adapters import AdapterError, Fal5Adapter, RuleViolationError
from adapters.registry import BUILTIN
from adapters.toolkit import XmlAdapter
from message_formats import FormatError, SafeXmlParser, XsdStore

DATA = Path(__file__).parents[1] / "data"
BERTH = Path(__file__).parents[2] / "docs" / "examples" / "berth"


def refused_by_a_rule(data_dir: Path) -> list[str]:
    expected: dict[str, Any] = json.loads((data_dir / "expected.json").read_text("utf-8"))
    return sorted(name for name, outcome in expected.items()
                  if isinstance(outcome, dict) and outcome.get("code", "").startswith("RULE_"))


def refusal(adapter: XmlAdapter, document: bytes) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        adapter.parse(document)
    return caught.value


BUILTINS = {kind.document_type: kind(xsd_store=XsdStore(), xml_parser=SafeXmlParser())
            for kind in BUILTIN if issubclass(kind, XmlAdapter)}
RULE_SAMPLES = [(document_type, name) for document_type in sorted(BUILTINS)
                for name in refused_by_a_rule(DATA / document_type)]


def test_every_format_has_samples_a_rule_refuses() -> None:
    assert {document_type for document_type, _ in RULE_SAMPLES} == set(BUILTINS)


@pytest.mark.parametrize(("document_type", "sample"), RULE_SAMPLES)
def test_a_document_a_rule_refuses_keeps_its_business_key_and_version(
    document_type: str, sample: str
) -> None:
    adapter = BUILTINS[document_type]
    document = (DATA / document_type / sample).read_bytes()
    error = refusal(adapter, document)
    root = SafeXmlParser().parse(document)
    assert isinstance(error, RuleViolationError)
    assert error.business_key == adapter.business_key(adapter.read(root))
    assert error.document_version == int(root.get("version", ""))


@pytest.mark.parametrize(("sample", "code"), [
    ("crew_count_mismatch.xml", "RULE_CREW_COUNT"),
    ("birth_after_voyage.xml", "RULE_BIRTH_AFTER_VOYAGE"),
])
def test_a_refused_crew_list_keeps_the_key_of_its_port_call(sample: str, code: str) -> None:
    error = refusal(Fal5Adapter(), (DATA / "fal5" / sample).read_bytes())
    assert (error.code, error.business_key, error.document_version) == (
        code, "9456783:0312E:A:CNSHA", 1)
    again = pickle.loads(pickle.dumps(error))  # as it leaves the parse worker
    assert (again.code, again.message, again.line, again.business_key,
            again.document_version) == (code, error.message, error.line,
                                        "9456783:0312E:A:CNSHA", 1)


def test_a_document_refused_before_it_is_read_has_no_key() -> None:
    with pytest.raises(FormatError):
        Fal5Adapter().parse((DATA / "fal5" / "bad_nationality.xml").read_bytes())
    assert AdapterError("x").business_key is None
    assert AdapterError("x").document_version is None


def load_berth_adapter() -> XmlAdapter:
    """The example as an integrator's package would be: not importable from the gateway."""
    adapter: XmlAdapter = runpy.run_path(str(BERTH / "berth_adapter" / "__init__.py"))[
        "BerthAdapter"]()
    return adapter


def test_an_integrators_adapter_on_the_toolkit_keeps_the_key_of_a_refused_document() -> None:
    berth = load_berth_adapter()
    parsed = berth.parse((BERTH / "samples" / "application.xml").read_bytes())
    assert (parsed.business_key, parsed.document_version) == ("9074729:CNSHA:BA-2026-0042", 1)
    error = refusal(berth, (BERTH / "samples" / "bad_imo.xml").read_bytes())
    assert (error.code, error.message, error.line) == (
        "RULE_IMO_CHECK_DIGIT", "ImoNumber: the IMO number fails its check digit", 4)
    assert (error.business_key, error.document_version) == ("9074728:CNSHA:BA-2026-0042", 1)


def test_an_integrators_render_is_held_to_its_xsd() -> None:
    berth = load_berth_adapter()
    record = berth.parse((BERTH / "samples" / "application.xml").read_bytes()).record
    assert berth.parse(berth.render(record)).record == record
    with pytest.raises(AdapterError) as caught:
        berth.render({**record, "port": "shanghai"})
    assert caught.value.code == "RENDER_RECORD_INVALID"
