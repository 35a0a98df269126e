"""`portgw contracts lint` and `portgw contracts explain`, as an operator runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.home.create import Home, create_home

FAL1 = Path(__file__).parents[1] / "data" / "fal1" / "valid_arrival.xml"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return create_home(tmp_path / "home")


def test_lint_passes_a_clean_directory(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["contracts", "lint", str(home.path / "contracts"),
                 "--config", str(home.config_file)])
    assert code == 0
    assert "1 contract(s) in 1 file(s): no problems" in capsys.readouterr().out


def test_lint_prints_each_problem_with_file_and_line_and_exits_1(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    path = home.path / "contracts" / "fal1-port-to-clearance.toml"
    path.write_text(path.read_text(encoding="utf-8")
                    .replace('"cn.msa.sh"', '"cn.nobody"')
                    .replace('scope = "cross-department"', 'scope = "cross-border"'),
                    encoding="utf-8")
    code = main(["contracts", "lint", str(home.path / "contracts"),
                 "--agencies", str(home.path / "agencies.toml")])
    assert code == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{path}:4: CONTRACT_UNKNOWN_AGENCY: unknown agency 'cn.nobody'"
    assert lines[1].startswith(f"{path}:6: CONTRACT_NO_EXPORT_ASSESSMENT: ")
    assert lines[2].startswith(f"{path}:10: CONTRACT_PERSONAL_UNMASKED: personal fields of "
                               "fal1 would cross the border unmasked: master_name")
    assert len(lines) == 3


def test_explain_says_who_gets_what_and_why_the_others_do_not(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["contracts", "explain", "--sender", "cn.port.sh", str(FAL1),
                 "--at", "2026-06-01T00:00:00Z", "--config", str(home.config_file)])
    assert code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "fal1 from cn.port.sh at 2026-06-01T00:00:00+00:00"
    assert "DELIVER cn.customs.sh: under fal1-port-to-clearance v1" in out
    assert "DELIVER cn.msa.sh: under fal1-port-to-clearance v1" in out
    assert "DENY    cn.border.sh: ROUTE_NO_CONTRACT" in out
