"""`portgw adapters detect FILE` and `portgw adapters parse FILE` without a format, run
in-process as an integrator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli.main import main
from message_formats.dxp import DxpEnvelope, DxpTransInfo, render_dxp_msg

DATA = Path(__file__).parents[1] / "data"
DXP = DATA / "dxp"
FAL1 = DATA / "fal1" / "valid_arrival.xml"


def test_detect_names_the_format_root_and_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "detect", str(FAL1)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "format: fal1-xml" in lines
    assert "root: GeneralDeclaration" in lines
    assert "namespace: urn:px:fal:1" in lines


def test_detect_of_an_envelope_prints_its_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "detect", str(DXP / "valid_fal1_in_envelope.xml")]) == 0
    out = capsys.readouterr().out
    assert "format: fal1-xml" in out.splitlines()
    envelope = next(line for line in out.splitlines() if line.startswith("envelope: "))
    assert "cop_msg_id DXPENT0000099001202603150631024170" in envelope
    assert "sender_id DXPENT0000099001" in envelope and "msg_type FAL1" in envelope


def test_detect_json_of_a_manifest_in_an_envelope(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "detect", "--json", str(DXP / "valid_prefixed_mt2101.xml")]) == 0
    view = json.loads(capsys.readouterr().out)
    assert (view["format"], view["message_type"], view["mode"]) == (
        "cn-manifest-xml", "MT2101", "sea")
    assert view["envelope"]["receiver_ids"] == ["DXPEDCDEC0000001", "DXPEDCDEC0000002"]
    assert view["envelope"]["add_info"]["biz_keys"] == {"DealFlag": "1", "RetType": "1"}


def test_detect_refuses_a_hostile_file_with_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "detect", str(DXP / "six_receivers.xml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{DXP / 'six_receivers.xml'}:6: DXP_TOO_MANY_RECEIVERS: ")


def test_parse_without_format_detects_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "parse", str(FAL1)]) == 0
    detected = json.loads(capsys.readouterr().out)
    assert main(["adapters", "parse", "fal1-xml", str(FAL1)]) == 0
    assert detected == json.loads(capsys.readouterr().out)
    assert main(["adapters", "parse", "--format", "fal1-xml", str(FAL1)]) == 0
    assert detected == json.loads(capsys.readouterr().out)


def test_parse_of_an_envelope_keeps_its_fields_beside_the_record(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "parse", str(DXP / "valid_zipped_fal1.xml")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "fal1-xml"
    assert out["record"]["ship"]["imo_number"] == "9074729"
    envelope = out["envelope"]
    assert envelope["cop_msg_id"] == "DXPENT0000099001202603150631024170"
    assert (envelope["sender_id"], envelope["receiver_ids"], envelope["msg_type"]) == (
        "DXPENT0000099001", ["DXPEDCDEC0000001"], "FAL1")
    assert envelope["zipped"] is True and envelope["signed"] is False


def test_parse_without_format_of_an_unknown_document_exits_1_with_a_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unknown = tmp_path / "invoice.xml"
    unknown.write_bytes(b'<Invoice xmlns="urn:x:invoice"/>')
    assert main(["adapters", "parse", str(unknown)]) == 1
    assert f"{unknown}:0: FORMAT_UNKNOWN: root {{urn:x:invoice}}Invoice" in capsys.readouterr().err
    loading = tmp_path / "loading.xml"  # a manifest type no installed adapter reads
    loading.write_bytes(b'<Manifest xmlns="urn:Declaration:datamodel:standard:CN:MT4101:1"/>')
    assert main(["adapters", "parse", str(loading)]) == 1
    assert ": FORMAT_NO_ADAPTER: customs manifest MT4101" in capsys.readouterr().err


def test_parse_names_a_refusal_inside_the_envelope_as_such(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "parse", str(DXP / "dtd_inside_data.xml")]) == 1
    err = capsys.readouterr().err
    assert "XML_DTD_FORBIDDEN: the business message in DxpMsg/Data: DOCTYPE" in err


def test_parse_refuses_a_format_named_twice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "parse", "--format", "fal1-xml", "fal1-xml", str(FAL1)]) == 2
    assert "CLI_USAGE" in capsys.readouterr().err


def test_parse_names_a_business_rule_broken_inside_the_envelope(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = (DATA / "fal1" / "bad_imo_check_digit.xml").read_bytes()
    info = DxpTransInfo("COP-9", "DXPENT0000099001", ("DXPEDCDEC0000001",),
                        "2026-03-15T06:31:02", "FAL1")
    enveloped = tmp_path / "enveloped.xml"
    enveloped.write_bytes(render_dxp_msg(DxpEnvelope(info, bad)))
    assert main(["adapters", "parse", str(enveloped)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{enveloped}: RULE_IMO_CHECK_DIGIT: the business message in "
                          "DxpMsg/Data, line ")
