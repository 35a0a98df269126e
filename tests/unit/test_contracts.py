from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import AgencyRegistry, ContractIndex, ContractInvalid, load_contract_dir
from gateway.home import DEMO_AGENCIES, ContractSpec, create_home

AT = datetime(2026, 6, 1, tzinfo=UTC)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home_dir(tmp_path: Path) -> Path:
    return create_home(tmp_path / "home").path


def load(home_dir: Path) -> ContractIndex:
    agencies = AgencyRegistry.from_toml(home_dir / "agencies.toml")
    return ContractIndex(load_contract_dir(home_dir / "contracts", agencies))


def test_the_provider_shares_with_the_consumers_named_and_no_one_else(home_dir: Path) -> None:
    decision = load(home_dir).decide("cn.port.sh", "fal1", AT)
    assert decision.recipients == ("cn.customs.sh", "cn.msa.sh")
    assert all(g.contract.id == "fal1-port-to-clearance" for g in decision.grants)


@pytest.mark.parametrize(("sender", "document_type"), [
    ("cn.border.sh", "fal1"),  # not the provider
    ("cn.port.sh", "fal5"),  # a type the contract does not name
])
def test_default_deny_explains_itself(home_dir: Path, sender: str, document_type: str) -> None:
    decision = load(home_dir).decide(sender, document_type, AT)
    assert decision.grants == ()
    assert f"no contract shares {document_type} from {sender}" in decision.explanation


def test_a_contract_outside_its_validity_window_grants_nothing(tmp_path: Path) -> None:
    spec = ContractSpec(id="old", provider="cn.port.sh", consumers=("cn.customs.sh",),
                        document_types=("fal1",), scope="cross-department", purpose="p",
                        legal_basis="b", valid_from="2027-01-01T00:00:00Z")
    home_dir = create_home(tmp_path / "home", contracts=[spec]).path
    decision = load(home_dir).decide("cn.port.sh", "fal1", AT)
    assert decision.grants == ()
    assert "not" in decision.explanation and "old v1" in decision.explanation


@pytest.mark.parametrize(("change", "code", "line"), [
    (('scope = "cross-department"', 'scope = "anywhere"'), "CONTRACT_BAD_SCOPE", 6),
    (('provider = "cn.port.sh"', 'provider = "cn.nobody"'), "CONTRACT_UNKNOWN_AGENCY", 3),
    (("valid_from = 2026-01-01T00:00:00Z", "valid_from = 2026-01-01"), "CONTRACT_BAD_VALIDITY",
     9),
    (('id = "fal1-port-to-clearance"\n', ""), "CONTRACT_MISSING_FIELD", 1),
    (('version = 1', 'version = = 1'), "CONTRACT_INVALID", 2),
])
def test_a_bad_contract_file_is_refused_with_its_code_and_line(
    home_dir: Path, change: tuple[str, str], code: str, line: int
) -> None:
    path = home_dir / "contracts" / "fal1-port-to-clearance.toml"
    text = path.read_text(encoding="utf-8")
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1]), encoding="utf-8")
    with pytest.raises(ContractInvalid) as caught:
        load(home_dir)
    assert caught.value.code == code
    assert caught.value.line == line or (line == 1 and caught.value.line is None)
    assert str(path) in str(caught.value)


def test_demo_agencies_load_with_their_attributes(home_dir: Path) -> None:
    agencies = AgencyRegistry.from_toml(home_dir / "agencies.toml")
    assert [a.id for a in agencies] == [a.id for a in DEMO_AGENCIES]
    assert agencies.get("cn.customs.sh").kind == "customs"
    assert agencies.get("cn.customs.sh").name_zh == "上海海关"
