"""Format detection: each built-in format is found by the root it declares, a DXP envelope is
opened and its business message detected, the customs manifest family is named without an
adapter, and plug-ins that declare nothing keep working."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters import (
    AdapterRegistrationError,
    AdapterRegistry,
    CnManifestAdapter,
    Confidence,
    FormatDetector,
    FormatNotDetectedError,
    ParseResult,
    customs_manifest_type,
)
from message_formats import FormatError, SafeXmlParser, XsdStore
from message_formats.dxp import DxpEnvelope, DxpTransInfo, render_dxp_msg

DATA = Path(__file__).parents[1] / "data"
DXP = DATA / "dxp"


@pytest.fixture(scope="module")
def registry() -> AdapterRegistry:
    return AdapterRegistry.default(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


@pytest.fixture(scope="module")
def detector(registry: AdapterRegistry) -> FormatDetector:
    return FormatDetector(registry)


def manifest(message_type: str, namespace_form: str = "urn:Declaration:datamodel:standard:CN:"
             ) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Manifest xmlns="{namespace_form}'
            f'{message_type}:1"><Head><MessageType>{message_type}</MessageType></Head>'
            "</Manifest>").encode()


def in_envelope(business: bytes) -> bytes:
    info = DxpTransInfo("COP-9", "DXPENT0000099001", ("DXPEDCDEC0000001",),
                        "2026-03-15T06:31:02", "T")
    return render_dxp_msg(DxpEnvelope(info, business))


@pytest.mark.parametrize("family", ["fal1", "fal2", "fal3", "fal4", "fal5", "fal6", "fal7",
                                    "manifest", "warning", "waybill"])
def test_every_builtin_sample_is_detected_as_the_format_that_reads_it(
        registry: AdapterRegistry, detector: FormatDetector, family: str) -> None:
    valid = sorted((DATA / family).glob("valid*.xml"))
    assert valid
    for sample in valid:
        detection = detector.detect(sample.read_bytes())
        assert detection.confidence is Confidence.DECLARED
        assert detection.format_id is not None
        registry.get(detection.format_id).parse(sample.read_bytes())  # that format reads it
        assert detection.envelope is None


def test_a_dxp_envelope_is_opened_and_its_business_message_detected(
        detector: FormatDetector) -> None:
    detection = detector.detect((DXP / "valid_zipped_fal1.xml").read_bytes())
    assert detection.format_id == "fal1-xml"
    assert detection.envelope is not None
    assert detection.envelope.trans_info.cop_msg_id == "DXPENT0000099001202603150631024170"
    assert detection.envelope.zipped and not detection.envelope_signed
    assert detection.why.startswith("DXP envelope holding: ")


@pytest.mark.parametrize(("message_type", "kind", "mode"), [
    ("MT1101", "original manifest", "sea"),
    ("MT1201", "original manifest", "air"),
    ("MT1401", "original manifest", "road"),
    ("MT2101", "pre-manifest", "sea"),
    ("MT2401", "pre-manifest", "road"),
    ("MT3201", "arrival report", "air"),
    ("MT4101", "loading manifest", "sea"),
    ("MT5102", "tally report", "sea"),
    ("MT9999", "receipt", None),
    ("WLJK_MT3101", "arrival report", "sea"),
    ("MTECEX", None, None),
])
def test_the_customs_manifest_family_is_named_with_or_without_an_adapter(
        detector: FormatDetector, message_type: str, kind: str | None, mode: str | None) -> None:
    """The types cn-manifest-xml reads are its; the family's others are named all the same."""
    detection = detector.detect(manifest(message_type))
    assert (detection.root, detection.message_type, detection.mode) == (
        "Manifest", message_type, mode)
    assert customs_manifest_type(detection.namespace, "Manifest").kind == kind  # type: ignore[union-attr]
    if f"{{{detection.namespace}}}Manifest" in CnManifestAdapter.root_elements:
        assert detection.require_format() == "cn-manifest-xml"
        return
    assert detection.format_id is None
    assert detection.confidence is Confidence.KNOWN_NO_ADAPTER
    with pytest.raises(FormatNotDetectedError) as caught:
        detection.require_format()
    assert caught.value.code == "FORMAT_NO_ADAPTER"
    assert "no adapter is installed" in caught.value.message


def test_the_manifest_namespace_without_cn_is_the_same_family(detector: FormatDetector) -> None:
    detection = detector.detect(manifest("MT2201", "urn:Declaration:datamodel:standard:"))
    assert (detection.message_type, detection.mode) == ("MT2201", "air")


def test_a_manifest_in_an_envelope_is_named_with_the_envelope(detector: FormatDetector) -> None:
    detection = detector.detect((DXP / "valid_prefixed_mt2101.xml").read_bytes())
    assert (detection.message_type, detection.mode) == ("MT2101", "sea")
    assert detection.envelope is not None
    assert detection.envelope.trans_info.receiver_ids == ("DXPEDCDEC0000001", "DXPEDCDEC0000002")


def test_an_undeclared_root_is_unknown(detector: FormatDetector) -> None:
    detection = detector.detect(b'<Invoice xmlns="urn:x:invoice"/>')
    assert (detection.format_id, detection.confidence) == (None, Confidence.UNKNOWN)
    assert (detection.root, detection.namespace) == ("Invoice", "urn:x:invoice")
    with pytest.raises(FormatNotDetectedError) as caught:
        detection.require_format()
    assert caught.value.code == "FORMAT_UNKNOWN"
    assert detector.detect(b"<Manifest/>").confidence is Confidence.UNKNOWN


def test_only_the_start_tag_of_a_plain_document_is_read(detector: FormatDetector) -> None:
    truncated = (DATA / "fal1" / "valid_arrival.xml").read_bytes()[:400]
    assert detector.detect(truncated).format_id == "fal1-xml"  # parsing it is the adapter's


@pytest.mark.parametrize(("data", "code"), [
    (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "XML_DTD_FORBIDDEN"),
    (b"", "XML_MALFORMED"),
    (b"<a", "XML_MALFORMED"),
    (b"not xml", "XML_MALFORMED"),
    (b'<?xml version="1.0" encoding="UTF-7"?><a/>', "XML_ENCODING_UNSUPPORTED"),
    (b"<a>" + b" " * 70 + b"</a>", "XML_TOO_LARGE"),
])
def test_the_root_sniff_refuses_as_the_safe_parser_does(data: bytes, code: str) -> None:
    with pytest.raises(FormatError) as caught:
        SafeXmlParser(max_bytes=64).root_tag(data)
    assert caught.value.code == code


def test_a_dtd_inside_the_envelope_data_is_refused_by_the_safe_parser(
        detector: FormatDetector) -> None:
    with pytest.raises(FormatError) as caught:
        detector.detect((DXP / "dtd_inside_data.xml").read_bytes())
    assert caught.value.code == "XML_DTD_FORBIDDEN"
    assert caught.value.message.startswith("the business message in DxpMsg/Data: ")
    assert caught.value.line is None  # the inner line is not the file's


def test_an_envelope_inside_an_envelope_is_refused(detector: FormatDetector) -> None:
    inner = in_envelope((DATA / "fal1" / "valid_arrival.xml").read_bytes())
    with pytest.raises(FormatError) as caught:
        detector.detect(in_envelope(inner))
    assert caught.value.code == "DXP_NESTED_ENVELOPE"


def test_an_inner_envelope_is_refused_before_it_is_opened(detector: FormatDetector) -> None:
    """The gateway's envelope stage names the business message with `detect_business`: an
    envelope inside one is refused from its root, its Data (here no base64) never read."""
    inner = (DXP / "bad_base64.xml").read_bytes()
    with pytest.raises(FormatError) as caught:
        detector.detect(inner)
    assert caught.value.code == "DXP_BAD_BASE64"
    with pytest.raises(FormatError) as caught:
        detector.detect_business(inner)
    assert caught.value.code == "DXP_NESTED_ENVELOPE"


def test_hostile_samples_are_refused_with_their_codes(detector: FormatDetector) -> None:
    expected: dict[str, dict[str, str]] = json.loads(
        (DXP / "expected.json").read_text(encoding="utf-8"))
    for name, outcome in expected.items():
        with pytest.raises(FormatError) as caught:
            detector.detect((DXP / name).read_bytes())
        assert caught.value.code == outcome["code"], name


# -- what plug-ins declare ---------------------------------------------------------------------


class _Plugin:
    document_type = "plug"
    schema_name = "px.canonical.Header"
    media_type = "application/xml"

    def __init__(self, format_id: str) -> None:
        self.format_id = format_id

    def parse(self, data: bytes) -> ParseResult:
        return ParseResult(record={}, business_key="k", document_version=1)

    def render(self, record: Mapping[str, Any]) -> bytes:
        return b"<Plug/>"


class _DeclaringPlugin(_Plugin):
    def __init__(self, format_id: str, roots: Any) -> None:
        super().__init__(format_id)
        self.root_elements = roots


def test_a_plugin_that_declares_its_root_is_detected_and_two_make_it_ambiguous() -> None:
    registry = AdapterRegistry([_DeclaringPlugin("plug-a", ("{urn:plug}Plug",))])
    detector = FormatDetector(registry)
    assert detector.detect(b'<Plug xmlns="urn:plug"/>').format_id == "plug-a"
    registry.register(_DeclaringPlugin("plug-b", ("{urn:plug}Plug",)))
    detection = detector.detect(b'<Plug xmlns="urn:plug"/>')
    assert (detection.format_id, detection.confidence) == (None, Confidence.AMBIGUOUS)
    assert detection.candidates == ("plug-a", "plug-b")
    with pytest.raises(FormatNotDetectedError) as caught:
        detection.require_format()
    assert caught.value.code == "FORMAT_AMBIGUOUS"


def test_a_plugin_that_declares_nothing_still_registers_and_parses() -> None:
    registry = AdapterRegistry([_Plugin("plug-quiet")])
    assert registry.get("plug-quiet").parse(b"<Plug/>").business_key == "k"
    assert FormatDetector(registry).detect(b"<Plug/>").confidence is Confidence.UNKNOWN


@pytest.mark.parametrize("roots", ["{urn:plug}Plug", ("{urn:plug Plug",), (b"Plug",),
                                   ("{urn:plug}",)])
def test_a_plugin_declaring_roots_badly_is_refused(roots: Any) -> None:
    with pytest.raises(AdapterRegistrationError):
        AdapterRegistry([_DeclaringPlugin("plug-odd", roots)])


PLUGIN_SOURCE = '''
from adapters import ParseResult


class _Base:
    document_type = "plug"
    schema_name = "px.canonical.Header"
    media_type = "application/xml"

    def parse(self, data):
        return ParseResult(record={}, business_key="k", document_version=1)

    def render(self, record):
        return b"<Plug/>"


class Declaring(_Base):
    format_id = "plug-declaring"
    root_elements = ("{urn:plug}Plug",)


class Silent(_Base):
    format_id = "plug-silent"


class Odd(_Base):
    format_id = "plug-odd"
    root_elements = "{urn:plug}Odd"
'''


def test_installed_plugins_declare_roots_or_not_and_a_bad_declaration_is_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "px_detect_plugin.py").write_text(PLUGIN_SOURCE)
    dist_info = tmp_path / "px_detect_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: px-detect-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[px_test.detect]\nplug-declaring = px_detect_plugin:Declaring\n"
        "plug-odd = px_detect_plugin:Odd\nplug-silent = px_detect_plugin:Silent\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    registry = AdapterRegistry.default(group="px_test.detect")
    assert {"plug-declaring", "plug-silent"} <= set(registry.formats())
    assert [(p.plugin, p.code) for p in registry.problems] == [
        ("plug-odd", "ADAPTER_PLUGIN_ROOTS_INVALID")]
    detector = FormatDetector(registry)
    assert detector.detect(b'<Plug xmlns="urn:plug"/>').format_id == "plug-declaring"
    assert registry.get("plug-silent").parse(b"<Plug/>").business_key == "k"
