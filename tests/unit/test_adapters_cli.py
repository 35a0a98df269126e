"""`portgw adapters list|parse|render`, as an integrator uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters import AdapterRegistry
from gateway.cli.main import main
from message_formats import AvroSchemas
from message_formats.json_view import from_json, to_json

DATA = Path(__file__).parents[1] / "data"
FAL1 = DATA / "fal1"


def test_list_names_each_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "fal1-xml  fal1  px.canonical.Fal1GeneralDeclaration  application/xml" in lines


def test_parse_then_render_gives_back_the_same_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["adapters", "parse", "fal1-xml", str(FAL1 / "valid_arrival.xml")]) == 0
    record_json = tmp_path / "record.json"
    record_json.write_text(capsys.readouterr().out, encoding="utf-8")
    assert json.loads(record_json.read_text(encoding="utf-8"))["ship"]["imo_number"] == "9074729"

    assert main(["adapters", "render", "fal1-xml", str(record_json)]) == 0
    rendered = tmp_path / "rendered.xml"
    rendered.write_bytes(capsys.readouterr().out.encode("utf-8"))
    assert main(["adapters", "parse", "fal1-xml", str(rendered)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(record_json.read_text("utf-8"))


def test_parse_reports_code_and_line_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    sample = FAL1 / "bad_imo_check_digit.xml"
    assert main(["adapters", "parse", "fal1-xml", str(sample)]) == 1
    assert f"{sample}:8: RULE_IMO_CHECK_DIGIT:" in capsys.readouterr().err


def test_render_refuses_a_record_that_does_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"ship": "not a record"}', encoding="utf-8")
    assert main(["adapters", "render", "fal1-xml", str(bad)]) == 1
    assert "JSON_BAD_VALUE" in capsys.readouterr().err


def test_an_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "parse", "fal99-xml", str(FAL1 / "valid_arrival.xml")]) == 2
    assert "ADAPTER_UNKNOWN_FORMAT" in capsys.readouterr().err


def test_json_view_round_trips_a_canonical_record() -> None:
    schemas = AvroSchemas()
    adapter = AdapterRegistry.default(schemas).get("fal1-xml")
    record = adapter.parse((FAL1 / "valid_departure.xml").read_bytes()).record
    as_json = json.loads(json.dumps(to_json(record)))
    assert from_json(schemas.schema(adapter.schema_name), as_json, omit=("header",)) == record


@pytest.mark.parametrize(("format_id", "sample"), [
    ("manifest-xml", "manifest/valid_import.xml"),
    ("cn-manifest-xml", "cn-manifest/mt2101_sea_pre_manifest.xml"),
])
def test_records_with_decimals_go_through_json_and_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], format_id: str, sample: str
) -> None:
    assert main(["adapters", "parse", format_id, str(DATA / sample)]) == 0
    record_json = tmp_path / "record.json"
    record_json.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["adapters", "render", format_id, str(record_json)]) == 0
    rendered = tmp_path / "rendered.xml"
    rendered.write_bytes(capsys.readouterr().out.encode("utf-8"))
    adapter = AdapterRegistry.default().get(format_id)
    assert adapter.parse(rendered.read_bytes()) == adapter.parse((DATA / sample).read_bytes())


def test_check_runs_the_kit_on_a_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "check", "fal1-xml", str(FAL1)]) == 0
    assert "fal1-xml:" in capsys.readouterr().out
