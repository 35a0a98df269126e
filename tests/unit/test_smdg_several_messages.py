"""SMDG interchanges of several messages (BAPLIE, COPRAR, COARRI), decided message by message
by the mechanism the EDIFACT adapters use (docs/adapters.md, "Several messages per
interchange"): each message a document of its own (`ParseResult.parts`), a bay plan message
with dangerous goods deriving its own FAL 7; and the CONTRL of an interchange of functional
groups (UNG/UNE), each group's UCF before its messages' UCMs, read back. Real adapters and
stages on the synthetic samples of tests/data/edifact-interchanges/, no broker."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from adapters import (
    ContainerOrderAdapter,
    ContainerReportAdapter,
    RuleViolationError,
)
from adapters.baplie import fal7_manifest
from adapters.edi_text import MAX_MESSAGES
from adapters.fal7 import business_key as fal7_business_key
from gateway.decide import pipeline as stages
from gateway.home.create import ContractSpec
from gateway.kafka.names import H_DERIVED_FROM, H_PART_OF
from gateway.publish.contrl_answers import ContrlAnswers
from gateway.publish.plan import accepted_plan
from message_formats import edifact
from message_formats.edifact import Action, Group, Level, MessageReport, Where
from tests.unit.smdg_support import refused
from tests.unit.test_derived_documents import (
    AT,
    CUSTOMS,
    EVENT_ID,
    FAL7_TO_MARITIME,
    MARITIME,
    STOWAGE_TO_CUSTOMS,
    WIRE,
    decided,
    home_with,
    terminal_contract,
)

DATA = Path(__file__).parents[1] / "data" / "edifact-interchanges"
ORDERS = (DATA / "coprar_two_orders.edi").read_bytes()
REPORTS = (DATA / "coarri_second_of_two_refused.edi").read_bytes()
PLANS = (DATA / "baplie_two_plans.edi").read_bytes()
GROUPS = (DATA / "coprar_two_groups.edi").read_bytes()
ONE_ORDER = (Path(__file__).parents[1] / "data" / "container-order" /
             "coprar_loading_order.edi").read_bytes()
COPRAR_TYPE = ("COPRAR", "D", "95B", "UN", "ITG12")
ORDER_KEY = "9074729:V2612S:LO261207000{}"
ORDERS_TO_CUSTOMS = terminal_contract("orders-to-customs", CUSTOMS, "container-order")


def messages_of(data: bytes) -> str:
    text = data.decode("latin-1")
    return text[text.index("UNH+"):text.index("UNZ+")]


def orders(count: int) -> bytes:
    """The loading order `count` times in one interchange, each with its own references."""
    head, message = ONE_ORDER.decode("latin-1"), messages_of(ONE_ORDER)
    body = "".join(message.replace("LO1'", f"M{n}'").replace("UNH+LO1+", f"UNH+M{n}+")
                   for n in range(1, count + 1))
    return f"{head[:head.index('UNH+')]}{body}UNZ+{count}+LO0001'".encode("latin-1")


# ---------------------------------------------------------------- the adapters


def test_each_order_of_a_coprar_interchange_is_read_as_a_document_of_its_own() -> None:
    result = ContainerOrderAdapter().parse(ORDERS)
    own, second = result.parts
    assert [(p.number, p.reference, p.identifier, p.own, p.group) for p in result.parts] == [
        (1, "LO1", COPRAR_TYPE, True, None), (2, "LO2", COPRAR_TYPE, False, None)]
    assert (own.parsed, own.refusal) == (None, None)
    assert result.business_key == ORDER_KEY.format(1)
    assert second.parsed is not None and second.parsed.business_key == ORDER_KEY.format(2)
    assert result.record == ContainerOrderAdapter().parse(ONE_ORDER).record
    assert ContainerOrderAdapter().parse(ONE_ORDER).parts == ()
    assert pickle.loads(pickle.dumps(result)) == result  # as it leaves the parse worker


def test_a_refused_coarri_report_is_refused_alone_at_its_segment() -> None:
    result = ContainerReportAdapter().parse(REPORTS)
    first, second = result.parts
    assert first.own and second.parsed is None and second.refusal is not None
    assert (second.refusal.code, second.refusal.line) == ("RULE_CONTAINER_CHECK_DIGIT", 17)
    assert second.refusal.where == Where(  # type: ignore[attr-defined]
        Level.SEGMENT, 12, message_reference="DR2",
        message_type=("COARRI", "D", "00B", "UN", "ITG13"), segment_number=17,
        segment_tag="EQD")


def test_a_message_of_another_type_in_an_smdg_interchange_is_refused_alone() -> None:
    report = messages_of(REPORTS).split("UNH+DR2+")[0]
    data = ORDERS.decode("latin-1").replace("UNZ+2+", f"{report}UNZ+3+").encode("latin-1")
    result = ContainerOrderAdapter().parse(data)
    assert [p.refusal.code if p.refusal else None for p in result.parts] == [
        None, None, "RULE_MESSAGE_TYPE"]
    assert result.parts[2].refusal.where.level is Level.SEGMENT  # type: ignore[union-attr]


def test_an_smdg_interchange_none_of_whose_messages_reads_is_refused_whole() -> None:
    data = REPORTS.decode("latin-1").replace("EXMU6789019", "EXMU6789010").encode("latin-1")
    caught = refused(ContainerReportAdapter(), data)
    assert caught.code == "RULE_CONTAINER_CHECK_DIGIT"
    assert caught.where.message_reference == "DR1"  # type: ignore[union-attr]


def test_an_smdg_interchange_holds_at_most_max_messages() -> None:
    assert len(ContainerOrderAdapter().parse(orders(MAX_MESSAGES)).parts) == MAX_MESSAGES
    with pytest.raises(RuleViolationError) as caught:
        ContainerOrderAdapter().parse(orders(MAX_MESSAGES + 1))
    assert caught.value.code == "RULE_EDIFACT_TOO_MANY_MESSAGES"
    assert caught.value.where == Where(  # type: ignore[attr-defined]
        Level.INTERCHANGE, 18, service_segment="UNZ", element=1)


def test_the_messages_of_functional_groups_name_their_group() -> None:
    result = ContainerOrderAdapter().parse(GROUPS)
    assert [(p.reference, p.group) for p in result.parts] == [
        ("LO1", Group("G1", "COPRAR", "EXAMPLE", "EXAMPLE2", 2)),
        ("LO2", Group("G1", "COPRAR", "EXAMPLE", "EXAMPLE2", 2)),
        ("LO3", Group("G2", "COPRAR", "EXAMPLE", "EXAMPLE3", 1))]
    assert result.parts[2].refusal is not None
    assert result.parts[2].refusal.code == "RULE_CONTAINER_CHECK_DIGIT"


# ---------------------------------------------------------------- the CONTRL of groups


G1, G2 = Group("G1", "COPRAR", "EXAMPLE", "EXAMPLE2", 2), Group("G2", "COPRAR", "A", "B", 1)
AT_SEGMENT = Where(Level.SEGMENT, 12, segment_number=15, segment_tag="EQD")


def contrl_of(*reports: MessageReport) -> bytes:
    subject = edifact.read_interchange(GROUPS).header
    return edifact.per_message_contrl(subject, reports, reference="C1",
                                      prepared=AT.replace(tzinfo=None))


def test_a_per_message_contrl_reports_each_group_before_its_messages_and_reads_back() -> None:
    contrl = contrl_of(MessageReport("LO1", COPRAR_TYPE, group=G1),
                       MessageReport("LO2", COPRAR_TYPE, Where(Level.MESSAGE, 0), G1),
                       MessageReport("LO3", COPRAR_TYPE, AT_SEGMENT, G2))
    text = contrl.decode()
    assert "UCF+G1+EXAMPLE+EXAMPLE2+7'UCM+LO1+COPRAR:D:95B:UN:ITG12+7'" in text
    assert "UCF+G2+A+B+4'UCM+LO3+COPRAR:D:95B:UN:ITG12+4'UCS+15+12'" in text
    read = edifact.read_contrl(edifact.read_interchange(contrl).messages[0])
    assert read.interchange.action == Action.ACKNOWLEDGED
    assert [(g.group.reference, g.group.action, [(m.reference, m.action) for m in g.messages])
            for g in read.groups()] == [
        ("G1", Action.ACKNOWLEDGED, [("LO1", Action.ACKNOWLEDGED), ("LO2", Action.REJECTED)]),
        ("G2", Action.REJECTED, [("LO3", Action.REJECTED)])]
    [ucs] = read.reports("UCS")
    assert (ucs.reference, ucs.syntax_error) == ("15", 12)


def test_a_per_message_contrl_of_messages_outside_groups_has_no_ucf() -> None:
    read = edifact.read_contrl(edifact.read_interchange(contrl_of(
        MessageReport("LO1", COPRAR_TYPE), MessageReport("LO2", COPRAR_TYPE))).messages[0])
    assert read.groups() == () and len(read.reports("UCM")) == 2


def test_a_ucf_echoes_no_more_than_the_syntax_allows() -> None:
    long = Group("G" * 40, "COPRAR", "S" * 80, "R" * 80, 1)
    read = edifact.read_contrl(edifact.read_interchange(contrl_of(
        MessageReport("LO1", COPRAR_TYPE, group=long))).messages[0])
    [group] = read.groups()
    assert group.group.reference == "G" * 14
    assert "S" * 36 not in contrl_of(MessageReport("LO1", COPRAR_TYPE, group=long)).decode()


# ---------------------------------------------------------------- the stages and the plan


def test_each_order_is_decided_and_the_contrl_names_each_group(tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", ORDERS_TO_CUSTOMS)
    ctx, why = decided(home, parts, GROUPS, "coprar-edifact")
    assert why is None and ctx.event is not None
    second, third = ctx.derived
    assert second.event is not None and second.event.header(H_PART_OF) == (
        f"{EVENT_ID}#2".encode())
    assert third.refused is not None and third.refused.code == "RULE_CONTAINER_CHECK_DIGIT"
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [(e.fields["kind"], e.fields["business_key"]) for e in plan.entries] == [
        ("ACCEPTED", ORDER_KEY.format(1)), ("DELIVERED", ORDER_KEY.format(1)),
        ("ACCEPTED", ORDER_KEY.format(2)), ("DELIVERED", ORDER_KEY.format(2)),
        ("REJECTED", None)]
    answered = ContrlAnswers(parts.payloads, parts.schemas).added(plan, ctx, None, AT)
    payload = parts.schemas.decode(answered.messages[-1].out.value)[1]["payload"]
    read = edifact.read_contrl(edifact.read_interchange(payload).messages[0])
    assert [(g.group.reference, g.group.action, [(m.reference, m.action) for m in g.messages])
            for g in read.groups()] == [
        ("G1", Action.ACKNOWLEDGED, [("LO1", Action.ACKNOWLEDGED), ("LO2", Action.ACKNOWLEDGED)]),
        ("G2", Action.REJECTED, [("LO3", Action.REJECTED)])]


def test_each_bay_plan_message_with_dangerous_goods_derives_its_own_fal7(
        tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", STOWAGE_TO_CUSTOMS, FAL7_TO_MARITIME)
    ctx, why = decided(home, parts, PLANS)
    assert why is None and ctx.event is not None
    second, fal7 = ctx.derived  # the first plan holds no dangerous goods: it derives none
    assert second.derivation is not None and second.derivation.message == 2
    assert fal7.document_type == "fal7" and fal7.event is not None
    assert fal7.event_id == stages.derived_event_id(second.event_id, "fal7", 0)
    assert fal7.event.header(H_DERIVED_FROM) == second.event_id.encode()
    assert fal7.event.header(H_PART_OF) is None
    assert second.parsed is not None
    manifest = fal7_manifest(second.parsed.record)
    assert manifest is not None and fal7.business_key == fal7_business_key(manifest)
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [(e.fields["kind"], e.fields["document_type"], e.fields.get("recipient"))
            for e in plan.entries] == [
        ("ACCEPTED", "stowage-plan", None), ("DELIVERED", "stowage-plan", CUSTOMS),
        ("ACCEPTED", "stowage-plan", None), ("DELIVERED", "stowage-plan", CUSTOMS),
        ("ACCEPTED", "fal7", None), ("DELIVERED", "fal7", MARITIME)]
    assert plan.entries[4].fields["reason"].startswith(
        f"derived from event {second.event_id} (stowage-plan)")
    assert plan.receipt is not None and plan.receipt.recipients == (CUSTOMS, MARITIME)
    again, _ = decided(home, parts, PLANS)
    assert [c.event_id for c in again.derived] == [second.event_id, fal7.event_id]


def only_voyage(voyage: str) -> ContractSpec:
    condition = f"condition = 'voyage_number == \"{voyage}\"'\n"
    return replace(STOWAGE_TO_CUSTOMS, extra=STOWAGE_TO_CUSTOMS.extra + condition)


def test_a_bay_plan_message_no_contract_shares_derives_nothing(tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", only_voyage("025N"), FAL7_TO_MARITIME)
    ctx, why = decided(home, parts, PLANS)
    assert why is None and ctx.event is not None
    [second] = ctx.derived  # denied alone: its FAL 7 would name an event never published
    assert second.decision is not None and second.decision.grants == ()
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [e.fields["kind"] for e in plan.entries] == ["ACCEPTED", "DELIVERED", "DENIED"]
    assert plan.receipt is not None and plan.receipt.recipients == (CUSTOMS,)


def test_the_own_bay_plan_message_no_contract_shares_derives_nothing(tmp_path: Path) -> None:
    own_with_goods = PLANS.decode("latin-1")
    first, second = own_with_goods.split("UNH+BP31+")
    swapped = (first[:first.index("UNH+")] + "UNH+BP31+" + second.replace("UNZ+2+", "")
               .removesuffix("BP0003'") + first[first.index("UNH+"):] + "UNZ+2+BP0003'")
    home, parts = home_with(tmp_path / "home", only_voyage("025N"), FAL7_TO_MARITIME)
    ctx, why = decided(home, parts, swapped.encode("latin-1"))
    assert why is None and ctx.event is None  # the own message (026N) is denied alone
    [plain] = ctx.derived
    assert plain.event is not None and plain.derivation is not None
    assert plain.derivation.message == 2
