"""Contracts: reading, linting (scopes, personal data, unknown names, conditions), the
routing decision (default deny, validity windows, conditions) and the delivered payloads."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters import AdapterRegistry
from contracts import (
    Agency,
    AgencyInvalid,
    AgencyRegistry,
    ContractIndex,
    ContractInvalid,
    DocumentCatalog,
    Grant,
    LintReport,
    explain,
    lint_contract_dir,
    load_contract_dir,
)
from gateway.decide.router import document_catalog, format_table
from gateway.home.create import DEMO_AGENCIES
from message_formats import AvroSchemas

AT = datetime(2026, 6, 1, tzinfo=UTC)
DATA = Path(__file__).parents[1] / "data"
KEY = b"k" * 32

AGENCIES = AgencyRegistry([
    *DEMO_AGENCIES,
    Agency("cn.customs.gd", "Guangdong Sub-administration of Customs", "customs", "440000", "CN"),
    Agency("hk.customs", "Hong Kong Customs and Excise Department", "customs", "810000", "HK",
           delivery_format="manifest-xml"),
    Agency("hk.immd", "Hong Kong Immigration Department", "border", "810000", "HK",
           delivery_format="json"),
])

# A valid contract; tests change one thing at a time.
BASE = """\
id = "c1"
version = 1
provider = "cn.port.sh"
consumers = ["cn.customs.sh"]
document_types = ["fal5"]
scope = "cross-department"
purpose = "crew clearance"
legal_basis = "Exit and Entry Administration Law art. 51"
valid_from = 2026-01-01T00:00:00Z
fields = ["*"]
"""

CROSS_BORDER = """\
id = "crew-to-hk"
version = 2
provider = "cn.border.sh"
consumers = ["hk.immd"]
document_types = ["fal5"]
scope = "cross-border"
purpose = "joint crew screening for a Hong Kong call"
legal_basis = "Mainland–HK immigration cooperation arrangement"
export_assessment = "CAC-SJCJ-2026-0042"
valid_from = 2026-01-01T00:00:00Z
fields = ["ship", "crew"]

[masks]
"crew[].family_name" = "pseudonym"
"crew[].given_names" = "drop"
"crew[].date_of_birth" = "year"
"crew[].place_of_birth" = "drop"
"crew[].identity_document.number" = {rule = "partial", keep_start = 2, keep_end = 2}
"""


@pytest.fixture(scope="module")
def adapters(schemas: AvroSchemas) -> AdapterRegistry:
    return AdapterRegistry.default(schemas)


@pytest.fixture(scope="module")
def catalog(schemas: AvroSchemas, adapters: AdapterRegistry) -> DocumentCatalog:
    return document_catalog(adapters, schemas)


@pytest.fixture
def lint(tmp_path: Path, catalog: DocumentCatalog, adapters: AdapterRegistry):
    def run(*texts: str) -> LintReport:
        directory = tmp_path / "contracts"
        directory.mkdir(exist_ok=True)
        for number, text in enumerate(texts):
            (directory / f"{number:02d}.toml").write_text(text, encoding="utf-8")
        return lint_contract_dir(directory, AGENCIES, catalog, format_table(adapters))

    return run


def codes(report: LintReport) -> list[str]:
    return [p.code for p in report.problems]


def projected(grant: Grant, record: dict[str, Any]) -> dict[str, Any]:
    """The record as the grant's projection delivers it; the grant must have one."""
    assert grant.plan is not None and grant.plan.projection is not None
    return grant.plan.projection(record)


def crew_list(adapters: AdapterRegistry) -> dict[str, Any]:
    return adapters.get("fal5-xml").parse((DATA / "fal5" / "valid_arrival.xml").read_bytes()).record


def index_of(report: LintReport, catalog: DocumentCatalog) -> ContractIndex:
    assert report.ok, [str(p) for p in report.problems]
    return ContractIndex(report.contracts, AGENCIES, catalog, mask_key=KEY)


# --- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "consumer", "scope"), [
    ("cn.port.sh", "cn.customs.sh", "cross-department"),
    ("cn.customs.sh", "cn.customs.gd", "cross-region"),
])
def test_each_domestic_scope_is_accepted_between_agencies_that_fit_it(
    lint, provider: str, consumer: str, scope: str
) -> None:
    text = (BASE.replace('"cn.port.sh"', f'"{provider}"')
            .replace('["cn.customs.sh"]', f'["{consumer}"]')
            .replace('"cross-department"', f'"{scope}"'))
    assert lint(text).ok


def test_a_cross_border_contract_with_assessment_and_masks_is_accepted(lint) -> None:
    assert lint(CROSS_BORDER).ok


@pytest.mark.parametrize(("provider", "consumer", "scope", "why"), [
    ("cn.customs.sh", "cn.customs.gd", "cross-department", "both are customs agencies"),
    ("cn.port.sh", "cn.customs.sh", "cross-region", "both are in region 310000"),
    ("cn.customs.sh", "cn.customs.gd", "cross-border", "both are in jurisdiction CN"),
    ("cn.border.sh", "hk.immd", "cross-department", "that is cross-border"),
])
def test_a_scope_that_does_not_fit_the_agencies_is_an_error(
    lint, provider: str, consumer: str, scope: str, why: str
) -> None:
    text = (BASE.replace('"cn.port.sh"', f'"{provider}"')
            .replace('["cn.customs.sh"]', f'["{consumer}"]')
            .replace('"cross-department"', f'"{scope}"')
            + 'export_assessment = "CAC-1"\npersonal_data_basis = "consent"\n')
    report = lint(text)
    assert "CONTRACT_SCOPE_MISMATCH" in codes(report)
    problem = next(p for p in report.problems if p.code == "CONTRACT_SCOPE_MISMATCH")
    assert why in problem.message
    assert problem.line == 4  # the consumers line


def test_a_cross_border_contract_without_an_export_assessment_is_invalid(lint) -> None:
    text = CROSS_BORDER.replace('export_assessment = "CAC-SJCJ-2026-0042"\n', "")
    report = lint(text)
    assert codes(report) == ["CONTRACT_NO_EXPORT_ASSESSMENT"]
    assert "数据出境安全评估" in report.problems[0].message


def test_the_gateway_refuses_to_load_an_invalid_directory(
    tmp_path: Path, catalog: DocumentCatalog, adapters: AdapterRegistry
) -> None:
    directory = tmp_path / "contracts"
    directory.mkdir()
    path = directory / "hk.toml"
    path.write_text(CROSS_BORDER.replace('export_assessment = "CAC-SJCJ-2026-0042"\n', ""))
    with pytest.raises(ContractInvalid) as caught:
        load_contract_dir(directory, AGENCIES, catalog, format_table(adapters))
    assert caught.value.code == "CONTRACT_NO_EXPORT_ASSESSMENT"
    assert str(caught.value).startswith(f"{path}:6: CONTRACT_NO_EXPORT_ASSESSMENT: ")


# --- personal data across the border ---------------------------------------------------------


def test_personal_fields_may_not_cross_the_border_unmasked(lint) -> None:
    text = CROSS_BORDER.replace('"crew[].family_name" = "pseudonym"\n', "").replace(
        '"crew[].date_of_birth" = "year"\n', "")
    report = lint(text)
    assert codes(report) == ["CONTRACT_PERSONAL_UNMASKED"]
    message = report.problems[0].message
    assert "crew[].family_name" in message and "crew[].date_of_birth" in message
    assert "crew[].identity_document.number" not in message  # masked partially


def test_a_cited_basis_lets_personal_fields_cross_unmasked(lint) -> None:
    text = CROSS_BORDER.split("[masks]")[0] + 'personal_data_basis = "crew consent forms"\n'
    assert lint(text).ok


def test_a_whole_record_across_the_border_exposes_every_personal_field(lint) -> None:
    text = CROSS_BORDER.split("[masks]")[0].replace('fields = ["ship", "crew"]', 'fields = ["*"]')
    report = lint(text)
    assert codes(report) == ["CONTRACT_PERSONAL_UNMASKED"]
    assert "crew[].identity_document.number" in report.problems[0].message


# --- unknown names, bad values, every problem with its place ---------------------------------


@pytest.mark.parametrize(("old", "new", "code", "line"), [
    ('consumers = ["cn.customs.sh"]', 'consumers = ["cn.nobody"]', "CONTRACT_UNKNOWN_AGENCY", 4),
    ('document_types = ["fal5"]', 'document_types = ["fal9"]',
     "CONTRACT_UNKNOWN_DOCUMENT_TYPE", 5),
    ('fields = ["*"]', 'fields = ["ship.name", "crew[].shoe_size"]', "CONTRACT_UNKNOWN_FIELD", 10),
    ('fields = ["*"]', 'fields = ["ship..name"]', "CONTRACT_BAD_PATH", 10),
    ('scope = "cross-department"', 'scope = "anywhere"', "CONTRACT_BAD_SCOPE", 6),
    ("valid_from = 2026-01-01T00:00:00Z", "valid_from = 2026-01-01", "CONTRACT_BAD_VALIDITY", 9),
    ("valid_from = 2026-01-01T00:00:00Z",
     "valid_from = 2026-01-01T00:00:00Z\nvalid_to = 2025-01-01T00:00:00Z",
     "CONTRACT_BAD_VALIDITY", 10),
    ('fields = ["*"]', 'fields = ["*"]\nfeilds = ["ship"]', "CONTRACT_UNKNOWN_KEY", 11),
    ('fields = ["*"]', 'fields = ["*"]\nmax_classification = "secret"',
     "CONTRACT_BAD_CLASSIFICATION", 11),
    ('fields = ["*"]', 'fields = ["*"]\n[masks]\n"crew[].family_name" = "blur"',
     "CONTRACT_BAD_MASK", 12),
    ('fields = ["*"]', 'fields = ["ship"]\n[masks]\n"crew[].family_name" = "drop"',
     "CONTRACT_MASK_NOT_INCLUDED", None),
    ("version = 1", "version = = 1", "CONTRACT_INVALID", 2),
    ('id = "c1"\n', "", "CONTRACT_MISSING_FIELD", None),
])
def test_a_bad_contract_gets_its_code_and_line(
    lint, old: str, new: str, code: str, line: int | None
) -> None:
    assert old in BASE
    report = lint(BASE.replace(old, new))
    assert code in codes(report), [str(p) for p in report.problems]
    problem = next(p for p in report.problems if p.code == code)
    if line is not None:
        assert problem.line == line
    assert str(problem).startswith(f"{problem.path}:{problem.line or 1}: {code}: ")


def test_a_condition_error_is_reported_with_its_position(lint) -> None:
    report = lint(BASE + 'condition = "crew_count > 20 and ship.flag_state in [\\"HK\\""\n')
    assert codes(report) == ["CONDITION_SYNTAX"]
    problem = report.problems[0]
    assert problem.line == 11
    assert "^" in problem.message  # a caret under the position


def test_a_condition_on_an_unknown_field_is_an_error(lint) -> None:
    report = lint(BASE + "condition = 'ship.flag == \"HK\"'\n")
    assert codes(report) == ["CONDITION_UNKNOWN_FIELD"]
    assert "ship.flag_state" in report.problems[0].message  # the suggestion


def test_lint_lists_the_problems_of_every_file(lint) -> None:
    report = lint(BASE.replace('"cn.customs.sh"', '"cn.x"'),
                  BASE.replace('"c1"', '"c2"').replace('"fal5"', '"fal9"'),
                  BASE)  # a duplicate of the first file's id
    assert sorted(codes(report)) == ["CONTRACT_DUPLICATE", "CONTRACT_UNKNOWN_AGENCY",
                                     "CONTRACT_UNKNOWN_DOCUMENT_TYPE"]
    assert report.files == 3


def test_a_document_classified_above_the_contract_ceiling_is_an_error(lint) -> None:
    text = BASE.replace('"fal5"', '"fal7"')
    assert codes(lint(text)) == ["CONTRACT_CLASSIFICATION"]
    assert lint(text + 'max_classification = "important"\n').ok


def test_an_own_format_delivery_needs_the_whole_record(lint) -> None:
    text = BASE.replace('"fal5"', '"fal1"') + 'delivery_format = "fal1-xml"\n'
    assert lint(text).ok
    partial = text.replace('fields = ["*"]', 'fields = ["ship"]')
    assert codes(lint(partial)) == ["CONTRACT_FORMAT_NEEDS_WHOLE_RECORD"]
    wrong_type = BASE + 'delivery_format = "fal1-xml"\n'
    assert codes(lint(wrong_type)) == ["CONTRACT_BAD_FORMAT"]


# --- deciding ---------------------------------------------------------------------------------


def test_default_deny_without_a_contract_on_the_route(lint, catalog, adapters) -> None:
    index = index_of(lint(BASE), catalog)
    decision = index.decide("cn.border.sh", "fal5", crew_list(adapters), AT)
    assert decision.grants == ()
    assert decision.code == "ROUTE_NO_CONTRACT"
    assert "no contract shares fal5 from cn.border.sh" in decision.explanation


def test_a_contract_outside_its_validity_window_grants_nothing(lint, catalog, adapters) -> None:
    text = BASE.replace("valid_from = 2026-01-01T00:00:00Z",
                        "valid_from = 2026-01-01T00:00:00Z\nvalid_to = 2026-03-01T00:00:00Z")
    index = index_of(lint(text), catalog)
    record = crew_list(adapters)
    assert index.decide("cn.port.sh", "fal5", record, datetime(2026, 2, 1, tzinfo=UTC)).grants
    late = index.decide("cn.port.sh", "fal5", record, AT)
    assert late.grants == ()
    assert [d.code for d in late.denials] == ["ROUTE_NOT_IN_FORCE"]
    assert "c1 v1 is not in force" in late.explanation


def test_a_condition_on_content_selects_the_documents(lint, catalog, adapters) -> None:
    hk_only = BASE + "condition = 'ship.flag_state == \"HK\" and crew_count >= 25'\n"
    panama = BASE.replace('"c1"', '"c2"').replace('["cn.customs.sh"]', '["cn.msa.sh"]') + (
        "condition = 'ship.flag_state in [\"PA\", \"LR\"]'\n")
    index = index_of(lint(hk_only, panama), catalog)
    decision = index.decide("cn.port.sh", "fal5", crew_list(adapters), AT)  # HK-flagged, 25 crew
    assert decision.recipients == ("cn.customs.sh",)
    assert [(d.recipient, d.code) for d in decision.denials] == [
        ("cn.msa.sh", "ROUTE_CONDITION_FALSE")]


def test_explain_names_every_agency(lint, catalog, adapters) -> None:
    index = index_of(lint(CROSS_BORDER), catalog)
    lines = explain(index, "cn.border.sh", "fal5", crew_list(adapters), AT)
    text = "\n".join(lines)
    assert "DELIVER hk.immd: under crew-to-hk v2 (cross-border" in text
    assert "export assessment CAC-SJCJ-2026-0042" in text
    assert "crew[].identity_document.number (partial(keep_start=2, keep_end=2))" in text
    for agency in ("cn.port.sh", "cn.customs.sh", "cn.msa.sh", "hk.customs"):
        assert f"DENY    {agency}: ROUTE_NO_CONTRACT" in text
    assert "cn.border.sh:" not in text  # the sender itself


# --- what a recipient gets ----------------------------------------------------------------------


def test_each_masking_rule_shapes_the_delivered_record(lint, catalog, adapters) -> None:
    index = index_of(lint(CROSS_BORDER), catalog)
    record = {"header": {"event_id": "e"}, **crew_list(adapters)}
    (grant,) = index.decide("cn.border.sh", "fal5", record, AT).grants
    assert grant.plan is not None and grant.plan.format == "json"
    delivered = projected(grant, record)
    assert list(delivered) == ["header", "ship", "crew"]
    first, original = delivered["crew"][0], record["crew"][0]
    assert len(first["family_name"]) == 32 and first["family_name"] != original["family_name"]
    assert "given_names" not in first and "place_of_birth" not in first  # dropped
    assert first["date_of_birth"] == str(original["date_of_birth"].year)  # year
    number = original["identity_document"]["number"]
    assert first["identity_document"]["number"] == number[:2] + "*" * (len(number) - 4) + \
        number[-2:]  # partial
    assert first["rank_or_rating"] == original["rank_or_rating"]  # not personal, not masked
    assert "crew_count" not in delivered  # not in the contract's fields


def sparse_crew_list(adapters: AdapterRegistry) -> dict[str, Any]:
    """The crew list as a sender that lacks the optional fields gives it (a UN/EDIFACT PAXLST
    has no rank, often no place of birth, issuing State, expiry date, call sign or flag)."""
    record = crew_list(adapters)
    ship = {**record["ship"], "call_sign": None, "flag_state": None}
    crew = [{**member, "rank_or_rating": None, "place_of_birth": None,
             "identity_document": {**member["identity_document"], "issuing_state": None,
                                   "expiry_date": None}}
            for member in record["crew"]]
    return {**record, "ship": ship, "voyage_number": None, "crew": crew}


def test_masks_and_projections_keep_absent_values_absent(lint, catalog, adapters) -> None:
    index = index_of(lint(CROSS_BORDER), catalog)
    record = {"header": {"event_id": "e"}, **sparse_crew_list(adapters)}
    (grant,) = index.decide("cn.border.sh", "fal5", record, AT).grants
    delivered = projected(grant, record)
    assert delivered["ship"]["flag_state"] is None and delivered["ship"]["call_sign"] is None
    first = delivered["crew"][0]
    assert "place_of_birth" not in first  # dropped, as when present
    assert first["rank_or_rating"] is None
    assert first["identity_document"]["expiry_date"] is None
    assert first["identity_document"]["number"].startswith(
        record["crew"][0]["identity_document"]["number"][:2])  # masked as before


def test_a_condition_on_an_absent_field_selects_nothing(lint, catalog, adapters) -> None:
    """Null is no flag: a condition naming the flag fails closed."""
    hk_only = BASE + "condition = 'ship.flag_state == \"HK\"'\n"
    panama = BASE.replace('"c1"', '"c2"').replace('["cn.customs.sh"]', '["cn.msa.sh"]') + (
        "condition = 'ship.flag_state in [\"PA\", \"LR\"]'\n")
    index = index_of(lint(hk_only, panama), catalog)
    decision = index.decide("cn.port.sh", "fal5", sparse_crew_list(adapters), AT)
    assert decision.recipients == ()
    assert sorted(d.code for d in decision.denials if d.recipient in (
        "cn.customs.sh", "cn.msa.sh")) == ["ROUTE_CONDITION_FALSE", "ROUTE_CONDITION_FALSE"]


def test_the_same_person_gets_the_same_pseudonym_in_every_document(
    lint, catalog, adapters
) -> None:
    index = index_of(lint(CROSS_BORDER), catalog)
    record = crew_list(adapters)
    (first,) = index.decide("cn.border.sh", "fal5", record, AT).grants
    (second,) = index.decide("cn.border.sh", "fal5", record, AT).grants
    assert projected(first, record) == projected(second, record)
    other_key = ContractIndex(index.contracts, AGENCIES, catalog, mask_key=b"x" * 32)
    (third,) = other_key.decide("cn.border.sh", "fal5", record, AT).grants
    assert projected(third, record)["crew"][0]["family_name"] != \
        projected(first, record)["crew"][0]["family_name"]


# --- subscriptions --------------------------------------------------------------------------------


SUBSCRIPTION = """\
id = "port-status"
version = 1
kind = "subscription"
consumers = ["cn.port.sh"]
document_types = ["fal5", "fal1"]
events = ["accepted", "rejected", "delivered"]
purpose = "the port follows the clearance of what it files"
legal_basis = "口岸单一窗口 service agreement"
valid_from = 2026-01-01T00:00:00Z
"""


def test_a_subscription_reaches_only_parties_to_the_document(lint, catalog) -> None:
    index = index_of(lint(BASE, SUBSCRIPTION), catalog)
    assert [a for a, _ in index.subscribers("fal5", "accepted", ["cn.port.sh"], AT)] == [
        "cn.port.sh"]
    assert index.subscribers("fal5", "accepted", ["cn.border.sh"], AT) == ()
    assert index.subscribers("fal5", "released", ["cn.port.sh"], AT) == ()  # not subscribed
    assert index.subscribers("fal6", "accepted", ["cn.port.sh"], AT) == ()


def test_a_subscription_to_an_unknown_event_is_an_error(lint) -> None:
    report = lint(SUBSCRIPTION.replace('"delivered"]', '"opened"]'))
    assert codes(report) == ["CONTRACT_BAD_EVENT"]
    assert report.problems[0].line == 6


def test_agencies_load_with_their_attributes(tmp_path: Path) -> None:
    path = tmp_path / "agencies.toml"
    path.write_text(textwrap.dedent("""\
        [[agency]]
        id = "hk.customs"
        name = "Hong Kong Customs and Excise Department"
        name_zh = "香港海关"
        kind = "customs"
        region = "810000"
        jurisdiction = "HK"
        delivery_format = "manifest-xml"
        delivery_topic = "hk.customs.inbox"
        """), encoding="utf-8")
    agency = AgencyRegistry.from_toml(path).get("hk.customs")
    assert (agency.jurisdiction, agency.delivery_format, agency.delivery_topic) == (
        "HK", "manifest-xml", "hk.customs.inbox")
    path.write_text(path.read_text().replace('"810000"', '"HK"'))
    with pytest.raises(AgencyInvalid, match="GB/T 2260"):
        AgencyRegistry.from_toml(path)
