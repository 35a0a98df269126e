"""An interchange of several messages, decided message by message (docs/adapters.md,
"Several messages per interchange"): the CUSCAR, IFTMIN and IFTSTA adapters read each message
as a document of its own (`ParseResult.parts`), the Derive stage decides each of the others
as the submission's own is decided (its event id, key, contracts, deliveries), the plan
records a refused one (REJECTED, its dead letter) and the CONTRL names every message. Real
adapters and stages on the synthetic samples of tests/data/edifact-interchanges/, no broker."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from adapters import CuscarAdapter, IftminAdapter, IftstaAdapter, RuleViolationError
from adapters.edi_text import MAX_MESSAGES, SegmentRuleError
from gateway.cli.main import main
from gateway.home.create import ContractSpec
from gateway.kafka.names import H_PART_OF, H_SENDER
from gateway.publish.contrl_answers import ContrlAnswers
from gateway.publish.plan import H_ORIGINAL_SIZE, KEPT_PREFIX_BYTES, Plan, accepted_plan
from message_formats.edifact import (
    Action,
    Level,
    MessageReport,
    Where,
    per_message_contrl,
    read_contrl,
    read_interchange,
)
from tests.unit.test_derived_documents import (
    AT,
    CUSTOMS,
    EVENT_ID,
    WIRE,
    decided,
    home_with,
    terminal_contract,
)

DATA = Path(__file__).parents[1] / "data"
THREE = (DATA / "edifact-interchanges" / "cuscar_three_reports.edi").read_bytes()
SECOND_REFUSED = (DATA / "edifact-interchanges" /
                  "cuscar_second_of_three_refused.edi").read_bytes()
TWO_STATUS = (DATA / "edifact-interchanges" / "iftsta_two_reports.edi").read_bytes()
ONE = (DATA / "cuscar-edifact" / "valid_sea_import.edi").read_bytes()
BAD = (DATA / "cuscar-edifact" / "bad_container_check_digit.edi").read_bytes()
CUSCAR_TYPE = ("CUSCAR", "D", "95B", "UN", "LOT10")
KEY = "CUSCAR:EXAMPLELINE:9312341:{}"


def messages_of(data: bytes) -> list[str]:
    text = data.decode("latin-1")
    return [f"UNH+{chunk}" for chunk in text[text.index("UNH+"):text.index("UNZ+")]
            .split("UNH+")[1:]]


def interchange(*messages: str) -> bytes:
    """The messages (UNH … UNT, as written) in one interchange, each given its place as its
    UNH and UNT reference."""
    head = ONE.decode("latin-1")
    body = "".join(m.replace("MREF0001", f"MREF{n:04}") for n, m in enumerate(messages, 1))
    return (head[:head.index("UNH+")] + body + f"UNZ+{len(messages)}+SRC0001'\n"
            ).encode("latin-1")


# ---------------------------------------------------------------- the adapters


def test_each_message_of_an_interchange_is_read_as_a_document_of_its_own() -> None:
    result = CuscarAdapter().parse(THREE)
    own, second, third = result.parts
    assert [(p.number, p.reference, p.identifier, p.own) for p in result.parts] == [
        (1, "MREF0001", CUSCAR_TYPE, True), (2, "MREF0002", CUSCAR_TYPE, False),
        (3, "MREF0003", CUSCAR_TYPE, False)]
    assert (own.parsed, own.refusal) == (None, None)  # the result itself, not a copy
    assert result.business_key == KEY.format("0326E")
    assert second.parsed is not None and third.parsed is not None
    assert [second.parsed.business_key, third.parsed.business_key] == [
        KEY.format("0327E"), KEY.format("0328E")]
    assert second.parsed.parts == () and second.refusal is None
    single = CuscarAdapter().parse(ONE)
    assert single.parts == ()
    assert single.record == result.record  # the same message, alone or first of three
    again = pickle.loads(pickle.dumps(result))  # as it leaves the parse worker
    assert again == result


def test_a_refused_message_keeps_its_code_and_place_and_the_others_are_read() -> None:
    result = CuscarAdapter().parse(SECOND_REFUSED)
    first, second, third = result.parts
    assert first.own and third.parsed is not None and second.parsed is None
    refusal = pickle.loads(pickle.dumps(second.refusal))
    assert isinstance(refusal, SegmentRuleError)
    assert (refusal.code, refusal.line, refusal.business_key) == (
        "RULE_CONTAINER_CHECK_DIGIT", 17, KEY.format("0332E"))
    assert refusal.where == Where(Level.SEGMENT, 12, message_reference="MREF0002",
                                  message_type=CUSCAR_TYPE, segment_number=17,
                                  segment_tag="EQD")


def test_the_first_message_read_is_the_submission_s_own() -> None:
    bad, good = messages_of(BAD)[0], messages_of(ONE)[0]
    result = CuscarAdapter().parse(interchange(bad, good))
    assert [(p.number, p.own, p.refusal is not None) for p in result.parts] == [
        (1, False, True), (2, True, False)]
    assert result.business_key == KEY.format("0326E")


def test_an_interchange_none_of_whose_messages_reads_is_refused_with_the_first_refusal(
        ) -> None:
    bad = messages_of(BAD)[0]
    with pytest.raises(RuleViolationError) as caught:
        CuscarAdapter().parse(interchange(bad, bad))
    assert caught.value.code == "RULE_CONTAINER_CHECK_DIGIT"
    assert caught.value.where.message_reference == "MREF0001"  # type: ignore[attr-defined]


def test_a_message_of_another_type_is_refused_at_its_message() -> None:
    status = messages_of(TWO_STATUS)[0]
    result = CuscarAdapter().parse(interchange(messages_of(ONE)[0], status))
    refusal = result.parts[1].refusal
    assert refusal is not None and refusal.code == "RULE_EDIFACT_MESSAGE_TYPE"
    assert refusal.where == Where(  # type: ignore[attr-defined]
        Level.MESSAGE, 12, message_reference="1",
        message_type=("IFTSTA", "D", "00B", "UN"))


def test_an_interchange_holds_at_most_max_messages() -> None:
    message = messages_of(ONE)[0]
    assert len(CuscarAdapter().parse(interchange(*[message] * MAX_MESSAGES)).parts) == (
        MAX_MESSAGES)
    with pytest.raises(RuleViolationError) as caught:
        CuscarAdapter().parse(interchange(*[message] * (MAX_MESSAGES + 1)))
    assert caught.value.code == "RULE_EDIFACT_TOO_MANY_MESSAGES"
    assert caught.value.where == Where(  # type: ignore[attr-defined]
        Level.INTERCHANGE, 18, service_segment="UNZ", element=1)


def test_iftmin_and_iftsta_read_several_messages_too() -> None:
    status = IftstaAdapter().parse(TWO_STATUS)
    assert [p.reference for p in status.parts] == ["1", "2"]
    assert status.business_key == "IFTSTA:EXAMPLELINE:EXSR2026001201"
    text = (DATA / "iftmin-edifact" / "valid_road_and_sea.edi").read_text("latin-1")
    start, end = text.index("UNH+"), text.index("UNZ+")
    unh_reference = text[start + 4:text.index("+", start + 4)]
    second = text[start:end].replace(f"UNH+{unh_reference}+", "UNH+SECOND+").replace(
        f"+{unh_reference}'", "+SECOND'")
    twice = text[:end] + second + text[end:].replace("UNZ+1+", "UNZ+2+", 1)
    instruction = IftminAdapter().parse(twice.encode("latin-1"))
    assert [p.reference for p in instruction.parts] == [unh_reference, "SECOND"]


def test_adapters_parse_prints_each_message(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "edifact-interchanges" / "cuscar_second_of_three_refused.edi"
    assert main(["adapters", "parse", str(path)]) == 1  # one message refused
    out, err = capsys.readouterr()
    view = json.loads(out)
    assert [(m["message"], m["reference"], m.get("business_key")) for m in view] == [
        (1, "MREF0001", KEY.format("0331E")), (2, "MREF0002", None),
        (3, "MREF0003", KEY.format("0333E"))]
    assert view[1]["refused"]["code"] == "RULE_CONTAINER_CHECK_DIGIT"
    assert f"{path}:17: RULE_CONTAINER_CHECK_DIGIT: message 2: EQD C237 8260" in err
    assert main(["adapters", "parse", "cuscar-edifact",
                 str(DATA / "edifact-interchanges" / "cuscar_three_reports.edi")]) == 0


# ---------------------------------------------------------------- the CONTRL


def test_a_per_message_contrl_acknowledges_the_interchange_and_names_each_message() -> None:
    subject = read_interchange(SECOND_REFUSED).header
    refused = Where(Level.SEGMENT, 12, segment_number=17, segment_tag="EQD")
    contrl = per_message_contrl(subject, (
        MessageReport("MREF0001", CUSCAR_TYPE), MessageReport("MREF0002", CUSCAR_TYPE, refused),
        MessageReport("MREF0003", CUSCAR_TYPE, Where(Level.MESSAGE, 0))),
        reference="C1", prepared=AT.replace(tzinfo=None))
    read = read_contrl(read_interchange(contrl).messages[0])
    assert (read.interchange.reference, read.interchange.action) == ("SRC0302",
                                                                      Action.ACKNOWLEDGED)
    assert [(r.reference, r.action, r.syntax_error, r.message_type)
            for r in read.reports("UCM")] == [
        ("MREF0001", Action.ACKNOWLEDGED, 0, CUSCAR_TYPE),
        ("MREF0002", Action.REJECTED, 0, CUSCAR_TYPE),
        ("MREF0003", Action.REJECTED, 0, CUSCAR_TYPE)]
    [ucs] = read.reports("UCS")
    assert (ucs.reference, ucs.syntax_error) == ("17", 12)


# ---------------------------------------------------------------- the stages and the plan


MANIFEST_TO_CUSTOMS = terminal_contract("manifest-to-customs", CUSTOMS, "cn-manifest")


def test_each_other_message_is_decided_as_a_document_of_its_own(tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", MANIFEST_TO_CUSTOMS)
    ctx, why = decided(home, parts, SECOND_REFUSED, "cuscar-edifact")
    assert why is None and ctx.decision is not None and ctx.decision.recipients == (CUSTOMS,)
    second, third = ctx.derived
    assert [c.derivation.message for c in ctx.derived if c.derivation] == [2, 3]
    assert second.refused is not None and second.decision is None and second.event is None
    assert (second.refused.code, second.business_key) == ("RULE_CONTAINER_CHECK_DIGIT",
                                                           KEY.format("0332E"))
    assert third.event is not None and third.decision is not None
    assert third.decision.recipients == (CUSTOMS,)
    assert third.event_id not in (EVENT_ID, second.event_id)
    assert third.event.key == KEY.format("0333E").encode()
    assert third.event.header(H_PART_OF) == f"{EVENT_ID}#3".encode()
    [(_, delivery)] = third.deliveries
    assert delivery.header(H_PART_OF) == f"{EVENT_ID}#3".encode()
    assert ctx.event is not None and ctx.event.header(H_PART_OF) is None
    header = parts.schemas.decode(third.event.value)[1]["header"]
    assert (header["event_id"], header["document_type"], header["business_key"]) == (
        third.event_id, "cn-manifest", KEY.format("0333E"))
    again, _ = decided(home, parts, SECOND_REFUSED, "cuscar-edifact")
    assert [c.event_id for c in again.derived] == [second.event_id, third.event_id]

    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [(m.out.topic, m.sealed) for m in plan.messages] == [
        (WIRE.canonical("cn-manifest"), False), (WIRE.delivery(CUSTOMS), True),
        (WIRE.dlq, False),
        (WIRE.canonical("cn-manifest"), False), (WIRE.delivery(CUSTOMS), True)]
    entries = [(e.fields["kind"], e.fields["event_id"], e.fields["business_key"],
                e.fields.get("error_code"), e.names) for e in plan.entries]
    assert entries == [
        ("ACCEPTED", EVENT_ID, KEY.format("0331E"), None, 0),
        ("DELIVERED", EVENT_ID, KEY.format("0331E"), None, 1),
        ("REJECTED", second.event_id, KEY.format("0332E"), "RULE_CONTAINER_CHECK_DIGIT", 2),
        ("ACCEPTED", third.event_id, KEY.format("0333E"), None, 3),
        ("DELIVERED", third.event_id, KEY.format("0333E"), None, 4)]
    assert plan.entries[2].fields["reason"].startswith(
        f"message 2 (UNH MREF0002) of the interchange of event {EVENT_ID}: EQD C237 8260")
    letter = plan.messages[2].out
    assert letter.header(H_PART_OF) == f"{EVENT_ID}#2".encode()
    assert letter.header(H_SENDER) is not None
    fields = parts.schemas.decode(letter.value)[1]
    assert (fields["event_id"], fields["error_code"], fields["error_line"]) == (
        second.event_id, "RULE_CONTAINER_CHECK_DIGIT", 17)
    assert len(SECOND_REFUSED) <= KEPT_PREFIX_BYTES or (
        len(fields["original"]) == KEPT_PREFIX_BYTES
        and letter.header(H_ORIGINAL_SIZE) == str(len(SECOND_REFUSED)).encode())
    assert plan.receipt is not None
    assert (plan.receipt.event_id, plan.receipt.business_key, plan.receipt.recipients) == (
        EVENT_ID, KEY.format("0331E"), (CUSTOMS,))

    answered = ContrlAnswers(parts.payloads, parts.schemas).added(plan, ctx, None, AT)
    contrl_message = answered.messages[-1].out
    assert contrl_message.topic == WIRE.delivery(ctx.submission.sender)
    payload = parts.schemas.decode(contrl_message.value)[1]["payload"]
    read = read_contrl(read_interchange(payload).messages[0])
    assert read.interchange.action == Action.ACKNOWLEDGED
    assert [(r.reference, r.action) for r in read.reports("UCM")] == [
        ("MREF0001", Action.ACKNOWLEDGED), ("MREF0002", Action.REJECTED),
        ("MREF0003", Action.ACKNOWLEDGED)]
    notified = answered.entries[-1].fields
    assert notified["kind"] == "NOTIFIED"
    assert "rejecting 1 of its 3 messages" in notified["reason"]


def test_a_message_no_contract_shares_is_denied_alone_and_its_contrl_says_rejected(
        tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home",
                            condition_on_message('head.message_id == "MREF0001"'))
    ctx, why = decided(home, parts, THREE, "cuscar-edifact")
    assert why is None
    assert [c.decision.grants == () for c in ctx.derived if c.decision] == [True, True]
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [e.fields["kind"] for e in plan.entries] == [
        "ACCEPTED", "DELIVERED", "DENIED", "DENIED"]
    answered = ContrlAnswers(parts.payloads, parts.schemas).added(plan, ctx, None, AT)
    payload = parts.schemas.decode(answered.messages[-1].out.value)[1]["payload"]
    read = read_contrl(read_interchange(payload).messages[0])
    assert [(r.reference, r.action, r.syntax_error) for r in read.reports("UCM")] == [
        ("MREF0001", Action.ACKNOWLEDGED, 0), ("MREF0002", Action.REJECTED, 0),
        ("MREF0003", Action.REJECTED, 0)]


def condition_on_message(condition: str) -> ContractSpec:
    to_customs = terminal_contract("some-messages-to-customs", CUSTOMS, "cn-manifest")
    return replace(to_customs, extra=to_customs.extra + f"condition = '{condition}'\n")


def test_the_submission_s_own_message_no_contract_shares_is_denied_alone(
        tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home",
                            condition_on_message('head.message_id != "MREF0001"'))
    ctx, why = decided(home, parts, THREE, "cuscar-edifact")
    assert why is None and ctx.event is None  # its event is not published
    assert ctx.decision is not None and ctx.decision.grants == ()
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [(e.fields["kind"], e.fields["business_key"]) for e in plan.entries] == [
        ("DENIED", KEY.format("0326E")),
        ("ACCEPTED", KEY.format("0327E")), ("DELIVERED", KEY.format("0327E")),
        ("ACCEPTED", KEY.format("0328E")), ("DELIVERED", KEY.format("0328E"))]
    assert plan.entries[0].fields["error_code"] == "ROUTE_CONDITION_FALSE"
    assert [m.out.topic for m in plan.messages] == [
        WIRE.canonical("cn-manifest"), WIRE.delivery(CUSTOMS)] * 2
    assert plan.receipt is not None and plan.receipt.recipients == (CUSTOMS,)
    answered = ContrlAnswers(parts.payloads, parts.schemas).added(plan, ctx, None, AT)
    payload = parts.schemas.decode(answered.messages[-1].out.value)[1]["payload"]
    read = read_contrl(read_interchange(payload).messages[0])
    assert [(r.reference, r.action) for r in read.reports("UCM")] == [
        ("MREF0001", Action.REJECTED), ("MREF0002", Action.ACKNOWLEDGED),
        ("MREF0003", Action.ACKNOWLEDGED)]


def test_an_interchange_no_message_of_which_is_shared_is_refused_whole(
        tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", condition_on_message(
        'head.message_id == "NONE"'))
    ctx, why = decided(home, parts, SECOND_REFUSED, "cuscar-edifact")
    assert why is not None and (why.code, why.kind) == ("ROUTE_CONDITION_FALSE", "DENIED")
    answered = ContrlAnswers(parts.payloads, parts.schemas).added(Plan(ctx.submission), ctx,
                                                                  why, AT)
    payload = parts.schemas.decode(answered.messages[-1].out.value)[1]["payload"]
    read = read_contrl(read_interchange(payload).messages[0])
    assert (read.interchange.action, read.reports("UCM")) == (Action.REJECTED, ())


def test_an_interchange_of_sound_messages_gets_a_contrl_only_when_unb_asks(
        tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", MANIFEST_TO_CUSTOMS)
    answers = ContrlAnswers(parts.payloads, parts.schemas)
    unasked = THREE.replace(b"++++1'", b"'", 1)
    for data, contrls in ((THREE, 1), (unasked, 0)):
        ctx, why = decided(home, parts, data, "cuscar-edifact")
        assert why is None and len(ctx.derived) == 2
        added = answers.added(Plan(ctx.submission), ctx, None, AT)
        assert len(added.messages) == contrls
