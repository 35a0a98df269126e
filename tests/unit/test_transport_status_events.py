"""A transport status report's events as status events (docs/contracts.md, "Subscriptions"):
an agency party to an IFTSTA report with a subscription to `transport` events on
`transport-status` gets one px.gateway.StatusEvent per event the report holds, with the event
itself, and a NOTIFIED entry each; nobody else does, and no other document type gives any.
Real stages and plan on the synthetic IFTSTA samples, no broker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from adapters import IftstaAdapter
from contracts import STATUS_EVENTS, TRANSPORT_EVENT
from gateway.home.create import ContractSpec
from gateway.publish.plan import accepted_plan
from tests.unit import test_derived_documents as stowage
from tests.unit.test_derived_documents import CUSTOMS, MARITIME, SENDER, WIRE, decided

AT, home_with, terminal_contract = stowage.AT, stowage.home_with, stowage.terminal_contract

DATA = Path(__file__).parents[1] / "data"
REPORT = (DATA / "iftsta-edifact" / "valid_loaded_and_departed.edi").read_bytes()
TWO_REPORTS = (DATA / "edifact-interchanges" / "iftsta_two_reports.edi").read_bytes()
STATUS_TO_CUSTOMS = terminal_contract("status-to-customs", CUSTOMS, "transport-status")


def follows(agency: str, document_type: str = "transport-status",
            events: tuple[str, ...] = (TRANSPORT_EVENT,)) -> ContractSpec:
    return ContractSpec(
        id=f"{agency}-follows-transport", provider="", consumers=(agency,),
        document_types=(document_type,), scope="", purpose="follows consignments' movements",
        legal_basis="单一窗口 service agreement", kind="subscription", events=events)


def test_transport_is_a_status_event_a_subscription_may_name() -> None:
    assert TRANSPORT_EVENT == "transport" and TRANSPORT_EVENT in STATUS_EVENTS


def test_a_subscribed_party_gets_one_status_event_per_reported_event(tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", STATUS_TO_CUSTOMS, follows(CUSTOMS),
                            follows(MARITIME))  # not party to the report
    ctx, why = decided(home, parts, REPORT, "iftsta-edifact")
    assert why is None and ctx.decision is not None
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    statuses = [m.out for m in plan.messages if m.out.topic.startswith("px.status.")]
    assert {out.topic for out in statuses} == {WIRE.status(CUSTOMS)}
    decoded = [parts.schemas.decode(out.value)[1] for out in statuses]
    reported = IftstaAdapter().parse(REPORT).record["events"]
    assert len(reported) == 3
    assert [s["transport_event"] for s in decoded] == reported
    assert {(s["status"], s["event_id"], s["document_type"], s["business_key"],
             s["subscriber"], s["sender"], s["contract_id"]) for s in decoded} == {
        ("transport", ctx.event_id, "transport-status", "IFTSTA:EXAMPLELINE:EXSR2026001201",
         CUSTOMS, SENDER, f"{CUSTOMS}-follows-transport")}
    assert [s["transport_event"]["status_code"] for s in decoded] == ["AE", "VD", "GI"]
    notified = [e.fields for e in plan.entries if e.fields["kind"] == "NOTIFIED"]
    assert [n["reason"].split(" under ")[0] for n in notified] == [
        "status transport (STS AE of consignment 1)", "status transport (STS VD of consignment 1)",
        "status transport (STS GI of consignment 2)"]
    assert {n["recipient"] for n in notified} == {CUSTOMS}
    named = {e.names for e in plan.entries if e.fields["kind"] == "NOTIFIED"}
    assert {plan.messages[n].out.topic for n in named if n is not None} == {
        WIRE.status(CUSTOMS)}


def test_the_sender_subscribed_follows_its_own_reports_and_nothing_else_is_sent(
        tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", STATUS_TO_CUSTOMS, follows(SENDER),
                            follows(CUSTOMS, events=("accepted", "delivered")))
    ctx, _ = decided(home, parts, REPORT, "iftsta-edifact")
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    statuses = [parts.schemas.decode(m.out.value)[1] for m in plan.messages
                if m.out.topic.startswith("px.status.")]
    assert sorted((s["subscriber"], s["status"]) for s in statuses) == [
        (CUSTOMS, "accepted"), (CUSTOMS, "delivered"), *[(SENDER, "transport")] * 3]
    assert all(s["transport_event"] is None for s in statuses if s["status"] != "transport")


def test_each_report_of_an_interchange_of_several_sends_its_own_events(
        tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", STATUS_TO_CUSTOMS, follows(CUSTOMS))
    ctx, _ = decided(home, parts, TWO_REPORTS, "iftsta-edifact")
    [second] = ctx.derived
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    statuses = [parts.schemas.decode(m.out.value)[1] for m in plan.messages
                if m.out.topic.startswith("px.status.")]
    assert [(s["event_id"], s["transport_event"]["status_code"]) for s in statuses] == [
        (ctx.event_id, "AE"), (ctx.event_id, "VD"), (ctx.event_id, "GI"),
        (second.event_id, "DS"), (second.event_id, "VD"), (second.event_id, "GI")]


def test_no_other_document_type_gives_transport_events(tmp_path: Path) -> None:
    cargo = (DATA / "cuscar-edifact" / "valid_sea_import.edi").read_bytes()
    home, parts = home_with(tmp_path / "home", terminal_contract("to-customs", CUSTOMS,
                                                                 "cn-manifest"),
                            follows(CUSTOMS, "cn-manifest"))
    ctx, why = decided(home, parts, cargo, "cuscar-edifact")
    assert why is None
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert not [m for m in plan.messages if m.out.topic.startswith("px.status.")]
    unsubscribed = replace(follows(CUSTOMS), events=("accepted",))
    home, parts = home_with(tmp_path / "other", STATUS_TO_CUSTOMS, unsubscribed)
    ctx, _ = decided(home, parts, REPORT, "iftsta-edifact")
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [parts.schemas.decode(m.out.value)[1]["status"] for m in plan.messages
            if m.out.topic.startswith("px.status.")] == ["accepted"]
