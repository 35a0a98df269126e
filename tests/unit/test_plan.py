"""A decision becomes a plan of what to publish without a broker: the messages in the order
they are handed over, the trail entries naming them, the answer."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gateway.decide.pipeline import Rejection, Submission, new_context
from gateway.home.create import Home
from gateway.kafka.names import H_DIGEST, Topics
from gateway.parts import GatewayParts
from gateway.publish.plan import (
    DEAD_LETTER_SCHEMA,
    H_ORIGINAL_SIZE,
    KEPT_PREFIX_BYTES,
    STATUS_SCHEMA,
    accepted_plan,
    dead_letter,
    duplicate_plan,
    received_entry,
    rejected_plan,
    repeat_plan,
)
from gateway.publish.sealing import BatchSealer, ReceiptSigner
from gateway.receipts.receipt import ACCEPTED, REJECTED, SignedReceipt
from tests.built_in_schemas import built_in_schemas
from tests.unit.publish_support import SENDER, decided, publishing_home

WIRE = Topics()  # the production names: the homes here have no topic prefix

NOW = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
RECIPIENTS = ("cn.customs.sh", "cn.msa.sh")
SCHEMAS = built_in_schemas()


@pytest.fixture(scope="module")
def home_and_parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, GatewayParts]:
    return publishing_home(tmp_path_factory.mktemp("plan") / "home")


def test_an_accepted_document_plans_its_event_sealed_deliveries_statuses_and_receipt(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    home, parts = home_and_parts
    ctx, why = decided(home, parts, "valid_arrival.xml")
    assert why is None and ctx.event is not None
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, NOW)

    assert [m.out.topic for m in plan.messages] == [
        WIRE.canonical("fal1"), *(f"px.deliver.{r}.v1" for r in RECIPIENTS),
        *[WIRE.status(SENDER)] * 3]
    assert [m.sealed for m in plan.messages] == [False, True, True, False, False, False]
    assert plan.messages[0].out == ctx.event
    statuses = [parts.schemas.decode(m.out.value) for m in plan.messages[3:]]
    assert {name for name, _ in statuses} == {STATUS_SCHEMA}
    assert [(s["status"], s["recipient"], s["time"]) for _, s in statuses] == [
        ("accepted", None, NOW), ("delivered", RECIPIENTS[0], NOW),
        ("delivered", RECIPIENTS[1], NOW)]

    kinds = [(e.fields["kind"], e.fields.get("recipient"), e.names) for e in plan.entries]
    assert kinds == [("ACCEPTED", None, 0), ("DELIVERED", RECIPIENTS[0], 1),
                     ("DELIVERED", RECIPIENTS[1], 2), ("NOTIFIED", SENDER, 3),
                     ("NOTIFIED", SENDER, 4), ("NOTIFIED", SENDER, 5)]
    assert {e.fields["business_key"] for e in plan.entries} == {"9074729:V2611:A:CNSHA"}
    assert plan.receipt is not None and plan.again is None
    assert (plan.receipt.status, plan.receipt.recipients) == (ACCEPTED, RECIPIENTS)
    assert plan.submission == ctx.submission


def test_a_refused_document_plans_its_dead_letter_rejected_status_and_error_receipt(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    home, parts = home_and_parts
    ctx, why = decided(home, parts, "bad_imo_check_digit.xml")
    assert why is not None
    plan = rejected_plan(ctx, why, parts.router.index, parts.schemas, WIRE, NOW)

    assert [m.out.topic for m in plan.messages] == [WIRE.dlq, WIRE.status(SENDER)]
    assert not any(m.sealed for m in plan.messages)
    name, letter = parts.schemas.decode(plan.messages[0].out.value)
    assert (name, letter["error_code"], letter["original"]) == (
        DEAD_LETTER_SCHEMA, "RULE_IMO_CHECK_DIGIT", ctx.submission.document)
    _, status = parts.schemas.decode(plan.messages[1].out.value)
    assert (status["status"], status["error_code"]) == ("rejected", "RULE_IMO_CHECK_DIGIT")
    assert [(e.fields["kind"], e.fields.get("error_code"), e.names) for e in plan.entries] == [
        ("REJECTED", "RULE_IMO_CHECK_DIGIT", 0), ("NOTIFIED", None, 1)]
    assert plan.receipt is not None
    assert (plan.receipt.status, plan.receipt.error_code, plan.receipt.document_type) == (
        REJECTED, "RULE_IMO_CHECK_DIGIT", "fal1")


def test_a_dead_letter_keeps_only_the_first_bytes_of_a_document_never_authenticated() -> None:
    document = b"<x>" + b"a" * (2 * KEPT_PREFIX_BYTES) + b"</x>"
    ctx = new_context(Submission("sub-9", "cn.nobody", "fal1-xml", document, b"sig",
                                 NOW), "event-9")
    why = Rejection("AUTH_UNKNOWN_SENDER", "the sender is not in the keyring", None, "REJECTED")
    out = dead_letter(ctx, why, SCHEMAS, WIRE)
    headers = dict(out.headers)
    assert headers[H_ORIGINAL_SIZE] == str(len(document)).encode()
    assert headers[H_DIGEST] == ctx.digest.encode()
    _, letter = SCHEMAS.decode(out.value)
    assert letter["original"] == document[:KEPT_PREFIX_BYTES]
    assert letter["document_type"] is None  # nothing was found out about it


def test_a_duplicate_plans_its_entry_and_the_first_receipt_again_and_nothing_else(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    home, parts = home_and_parts
    ctx, _ = decided(home, parts, "valid_arrival.xml", number=2)
    first = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, NOW).receipt
    assert first is not None

    async def signed_now() -> SignedReceipt:
        signer = ReceiptSigner(BatchSealer(parts.key), parts.schemas)
        return await signer.request(replace(first, event_id="first-event"))

    signed = asyncio.run(signed_now())
    plan = duplicate_plan(ctx, signed, "sub-1")
    assert plan.messages == () and plan.receipt is None
    assert plan.again is not None and (plan.again.duplicate_of, plan.again.publish) == (
        "sub-1", True)
    [entry] = plan.entries
    assert (entry.fields["kind"], entry.fields["event_id"], entry.names) == (
        "DUPLICATE", "first-event", None)
    repeat = repeat_plan(ctx, signed, None)
    assert (repeat.messages, repeat.entries, repeat.receipt) == ((), (), None)
    assert repeat.again is not None and not repeat.again.publish


def test_the_received_entry_names_the_ingress_message_when_there_is_one(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    home, parts = home_and_parts
    read, _ = decided(home, parts, "valid_arrival.xml", partition=2, ingress_offset=41)
    handed, _ = decided(home, parts, "valid_arrival.xml")
    entry = received_entry(read, WIRE)
    assert (entry.fields["kind"], entry.fields["ref_topic"], entry.fields["ref_partition"],
            entry.fields["ref_offset"], entry.fields["ref_digest"]) == (
        "RECEIVED", WIRE.ingress, 2, 41, read.digest)
    assert "ref_topic" not in received_entry(handed, WIRE).fields


def test_the_same_decision_gives_the_same_plan(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    home, parts = home_and_parts
    ctx, _ = decided(home, parts, "valid_arrival.xml")
    index, schemas = parts.router.index, parts.schemas
    assert (accepted_plan(ctx, index, schemas, WIRE, NOW)
            == accepted_plan(ctx, index, schemas, WIRE, NOW))
