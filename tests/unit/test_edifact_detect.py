"""UN/EDIFACT recognised by content (docs/edifact.md, "Detection"): an interchange is the
format of the one adapter that reads its message types; an interchange no adapter reads,
and text that is no XML, are FORMAT_UNSUPPORTED (no longer an XML error), in
`FormatDetector.detect`, the gateway's DetectFormat stage and `portgw adapters parse`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters import (
    AdapterRegistrationError,
    AdapterRegistry,
    Confidence,
    FormatDetector,
    FormatNotDetectedError,
)
from gateway.cli.main import main
from gateway.decide.pipeline import Context, DetectFormat, Submission, new_context
from message_formats import SafeXmlParser
from message_formats.edifact import EdifactError, render_interchange
from tests.unit.edifact_support import (
    BASIC,
    EdifactProbeAdapter,
    header,
    lines,
    paxlst,
)

PAXLST_INTERCHANGE = render_interchange(header(), [paxlst("M1"), paxlst("M2")])
IFTSAI = lines("UNB+UNOA:3+LINE+PORT+240131:1405+R'", "UNH+1+IFTSAI:D:99B:UN'", "BGM+229'",
               "UNT+3+1'", "UNZ+1+R'")


def detector(*adapters: EdifactProbeAdapter) -> FormatDetector:
    return FormatDetector(AdapterRegistry(adapters or (EdifactProbeAdapter(),)))


@pytest.mark.parametrize("data", [
    PAXLST_INTERCHANGE, lines(*BASIC), b"\xef\xbb\xbf\r\n " + lines(*BASIC),
    lines(*BASIC[1:]), b"UNA:*.? $UNB*UNOA:4*S*R*20240131:1405*R$UNH*1*PAXLST:D:05B:UN$"
                       b"UNT*2*1$UNZ*1*R$",
])
def test_an_interchange_is_the_format_that_reads_its_message_types(data: bytes) -> None:
    found = detector().detect(data)
    assert (found.format_id, found.confidence) == ("probe-edifact", Confidence.DECLARED)
    assert found.message_type == "PAXLST" and found.root == "UNB"


def test_a_message_type_no_adapter_reads_is_unsupported() -> None:
    found = detector().detect(IFTSAI)
    assert found.confidence is Confidence.UNSUPPORTED and "IFTSAI" in found.why
    with pytest.raises(FormatNotDetectedError) as caught:
        found.require_format()
    assert caught.value.code == "FORMAT_UNSUPPORTED"


def test_an_interchange_no_one_adapter_reads_whole_is_unsupported() -> None:
    mixed = lines("UNB+UNOA:3+LINE+PORT+240131:1405+R'", "UNH+1+PAXLST:D:05B:UN'", "UNT+2+1'",
                  "UNH+2+CUSCAR:D:95B:UN'", "UNT+2+2'", "UNZ+2+R'")
    cuscar = EdifactProbeAdapter(format_id="probe-cuscar",
                                 edifact_message_types=frozenset({"CUSCAR"}))
    assert detector(EdifactProbeAdapter(), cuscar).detect(mixed).format_id is None
    both = replace(cuscar, format_id="probe-both",
                   edifact_message_types=frozenset({"CUSCAR", "PAXLST"}))
    assert detector(EdifactProbeAdapter(), cuscar, both).detect(mixed).format_id == "probe-both"


def test_two_adapters_of_one_message_type_are_ambiguous() -> None:
    found = detector(EdifactProbeAdapter(), EdifactProbeAdapter(format_id="other")).detect(
        PAXLST_INTERCHANGE)
    assert found.confidence is Confidence.AMBIGUOUS
    assert found.candidates == ("other", "probe-edifact")


@pytest.mark.parametrize("data", [b'{"transportDocumentReference": "X"}', b"  [1, 2]",
                                  b"ISA*00*          *00*", b"not xml at all"])
def test_text_that_is_no_xml_is_unsupported_not_malformed(data: bytes) -> None:
    found = detector().detect(data)
    assert found.confidence is Confidence.UNSUPPORTED and found.format_id is None


@pytest.mark.parametrize("data, code", [
    (b"UNA:+", "EDI_UNA_INVALID"),
    (b"UNB+UNOZ:3+A+B+240131:1405+R'", "EDI_SYNTAX_UNSUPPORTED"),
    (b"UNB+UNOA:3+A+B+240131:1405+R'UNZ+0+R'", "EDI_NO_MESSAGE"),
])
def test_an_interchange_whose_envelope_cannot_be_read_is_refused_with_its_code(
        data: bytes, code: str) -> None:
    with pytest.raises(EdifactError) as caught:
        detector().detect(data)
    assert caught.value.code == code


def test_declared_message_types_must_be_a_frozenset_of_types() -> None:
    with pytest.raises(AdapterRegistrationError):
        AdapterRegistry([EdifactProbeAdapter(
            edifact_message_types=("PAXLST",))])  # type: ignore[arg-type]
    with pytest.raises(AdapterRegistrationError):
        AdapterRegistry([EdifactProbeAdapter(edifact_message_types=frozenset({"pax lst"}))])


def test_the_detect_stage_finds_an_edifact_format_and_refuses_other_text() -> None:
    parser = SafeXmlParser()
    stage = DetectFormat(detector(), parser)
    at = datetime(2026, 5, 1, tzinfo=UTC)

    def unnamed(document: bytes) -> Context:
        return new_context(Submission("s", "cn.port.sh", "", document, b"", at), "e")

    assert stage(unnamed(PAXLST_INTERCHANGE)).submission.format_id == "probe-edifact"
    for document, code in ((IFTSAI, "FORMAT_UNSUPPORTED"), (b"{}", "FORMAT_UNSUPPORTED")):
        with pytest.raises(FormatNotDetectedError) as caught:
            stage(unnamed(document))
        assert caught.value.code == code


def test_adapters_parse_says_format_unsupported_for_json_and_unread_edifact(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, data in (("si.json", b'{"shippingInstructionsReference": "SI1"}\n'),
                       ("schedule.edi", IFTSAI)):
        path = tmp_path / name
        path.write_bytes(data)
        assert main(["adapters", "parse", str(path)]) != 0
        assert "FORMAT_UNSUPPORTED" in capsys.readouterr().err
