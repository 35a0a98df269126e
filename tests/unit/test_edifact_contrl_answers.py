"""The CONTRL an EDIFACT sender gets back on its delivery topic (gateway.publish.
contrl_answers): a refusal answered with a negative CONTRL at the level of the defect, an
acceptance with a positive one when UNB asked for it, none for an unauthenticated sender,
for an interchange of CONTRL messages, or for a document that is no EDIFACT."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from gateway.decide.pipeline import Context, Refusal, Rejection
from gateway.parts import GatewayParts
from gateway.publish.contrl_answers import CONTRL_FORMAT, ContrlAnswers
from gateway.publish.plan import Plan
from message_formats.edifact import (
    Acknowledgement,
    Action,
    EdifactError,
    negative_contrl,
    read_contrl,
    read_interchange,
    render_interchange,
)
from tests.unit import publish_support
from tests.unit.edifact_support import header, interchange_with, paxlst

AT = publish_support.AT
LYING_COUNT = interchange_with("UNH+M1+PAXLST:D:05B:UN:IATA'", "BGM+745'", "UNT+9+M1'")


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> tuple[GatewayParts, Context]:
    """An authenticated context (the real stages on a FAL 1 document) to put EDIFACT in."""
    home, parts = publish_support.publishing_home(tmp_path_factory.mktemp("home"))
    ctx, why = publish_support.decided(home, parts, "valid_arrival.xml")
    assert why is None and ctx.signer is not None
    return parts, ctx


def with_document(ctx: Context, document: bytes, refused: Refusal | None = None) -> Context:
    return dataclasses.replace(ctx, refused=refused, submission=dataclasses.replace(
        ctx.submission, document=document, format_id="probe-edifact"))


def answered(parts: GatewayParts, ctx: Context, why: Rejection | None) -> Plan:
    return ContrlAnswers(parts.payloads, parts.schemas).added(Plan(ctx.submission), ctx, why,
                                                              AT)


def contrl_of(parts: GatewayParts, plan: Plan) -> Acknowledgement:
    (message,) = plan.messages
    (entry,) = plan.entries
    assert message.sealed
    assert message.out.topic == parts.topics.delivery(publish_support.SENDER)
    assert entry.names == 0 and entry.fields["kind"] == "NOTIFIED"
    _, delivery = parts.schemas.decode(message.out.value)
    assert delivery["payload_encoding"] == CONTRL_FORMAT
    interchange = read_interchange(delivery["payload"])
    # addressed to the interchange's sender as its UNB names it, under the reference the
    # trail entry gives
    assert (interchange.recipient, interchange.control_reference) == (
        "CARRIER", entry.fields["reason"].split()[-1])
    return read_contrl(interchange.messages[0])


def rejected(data: bytes) -> EdifactError:
    with pytest.raises(EdifactError) as caught:
        read_interchange(data)
    return caught.value


def refusal_of(data: bytes) -> tuple[Refusal, Rejection]:
    error = rejected(data)
    return (pickle.loads(pickle.dumps(Refusal.of(error))),
            Rejection(error.code, error.message, None, "REJECTED"))


def test_a_refused_interchange_gets_a_contrl_naming_its_defect(
        decided: tuple[GatewayParts, Context]) -> None:
    parts, ctx = decided
    refusal, why = refusal_of(LYING_COUNT)
    read = contrl_of(parts, answered(parts, with_document(ctx, LYING_COUNT, refusal), why))
    assert (read.interchange.reference, read.interchange.action) == ("ICR1", Action.REJECTED)
    [ucm] = read.reports("UCM")
    assert (ucm.reference, ucm.syntax_error, ucm.service_segment) == ("M1", 29, "UNT")


def test_a_refusal_that_says_no_place_rejects_the_interchange_as_a_whole(
        decided: tuple[GatewayParts, Context]) -> None:
    parts, ctx = decided
    document = render_interchange(header(), [paxlst()])
    why = Rejection("RULE_CHECK_DIGIT", "DOC: the document number fails its check", None,
                    "REJECTED")
    read = contrl_of(parts, answered(parts, with_document(ctx, document), why))
    assert read.interchange.action == Action.REJECTED and read.interchange.syntax_error == 0
    assert read.details == ()


def test_an_accepted_interchange_is_acknowledged_when_unb_asks(
        decided: tuple[GatewayParts, Context]) -> None:
    parts, ctx = decided
    asking = render_interchange(header(ack=True), [paxlst()])
    read = contrl_of(parts, answered(parts, with_document(ctx, asking), None))
    assert (read.interchange.reference, read.interchange.action) == ("ICR1", Action.ACKNOWLEDGED)
    silent = with_document(ctx, render_interchange(header(), [paxlst()]))
    assert answered(parts, silent, None).messages == ()


def test_no_contrl_for_an_unauthenticated_sender_a_contrl_or_a_document_of_another_kind(
        decided: tuple[GatewayParts, Context]) -> None:
    parts, ctx = decided
    refusal, why = refusal_of(LYING_COUNT)
    unauthenticated = dataclasses.replace(with_document(ctx, LYING_COUNT, refusal), signer=None)
    assert answered(parts, unauthenticated, why).messages == ()
    contrl = negative_contrl(rejected(LYING_COUNT), reference="C1", prepared=AT) or b""
    assert answered(parts, with_document(ctx, contrl), why).messages == ()
    assert answered(parts, ctx, why).messages == ()  # the FAL 1 XML document itself


def test_the_refusals_place_crosses_the_worker_boundary() -> None:
    refusal, _ = refusal_of(LYING_COUNT)
    assert refusal.edifact is not None and refusal.edifact.message_reference == "M1"
