"""Documents derived from an accepted one (adapters.DerivesDocuments): a bay plan with
dangerous goods holds a FAL 7 dangerous goods manifest, which the Derive stage decides as a
document of its own (its event id, type, key, contracts) and the plan publishes besides the
bay plan: its event, its deliveries, its trail records naming the bay plan's event, and the
receipt names the recipients of both. Real stages on real bay plans, no broker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters import AdapterRegistry, ParseResult, document_derivers
from adapters.baplie import BayPlanAdapter, fal7_manifest
from adapters.fal7 import Fal7Adapter
from adapters.fal7 import business_key as fal7_business_key
from gateway.decide import pipeline as stages
from gateway.decide.pipeline import Context, Rejection, Submission
from gateway.home.config import GatewayConfig
from gateway.home.create import ContractSpec, Home, create_home
from gateway.kafka.names import H_DERIVED_FROM, H_DOCUMENT_TYPE, H_SENDER, Topics
from gateway.parts import GatewayParts
from gateway.publish.deliveries import BuildDeliveries
from gateway.publish.plan import accepted_plan
from gateway.receipts.receipt import ACCEPTED
from gateway.service import run_stages
from tests.built_in_schemas import built_in_schemas
from tests.unit.smdg_support import without_dangerous_goods

DATA = Path(__file__).parents[1] / "data"
PLAN = (DATA / "stowage-plan" / "smdg31_bay_plan.edi").read_bytes()
SENDER, CUSTOMS, MARITIME = "cn.port.sh", "cn.customs.sh", "cn.msa.sh"
AT = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
WIRE = Topics()
EVENT_ID = "019af7c2-6000-7000-8000-000000000001"


def terminal_contract(id: str, consumer: str, document_type: str) -> ContractSpec:
    """The port's contract sharing its documents of `document_type` with `consumer`, as
    stowage and dangerous goods oversight."""
    return ContractSpec(
        id=id, provider=SENDER, consumers=(consumer,), document_types=(document_type,),
        scope="cross-department", purpose="stowage and dangerous goods oversight",
        legal_basis="中华人民共和国海上交通安全法", extra='max_classification = "important"\n')


STOWAGE_TO_CUSTOMS = terminal_contract("stowage-to-customs", CUSTOMS, "stowage-plan")
FAL7_TO_MARITIME = terminal_contract("fal7-to-maritime", MARITIME, "fal7")


def home_with(path: Path, *contracts: ContractSpec) -> tuple[Home, GatewayParts]:
    home = create_home(path, contracts=contracts)
    return home, GatewayParts.load(GatewayConfig.load(home.config_file))


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, GatewayParts]:
    return home_with(tmp_path_factory.mktemp("derived") / "home", STOWAGE_TO_CUSTOMS,
                     FAL7_TO_MARITIME)


@pytest.fixture(scope="module")
def stowage_only(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, GatewayParts]:
    return home_with(tmp_path_factory.mktemp("derived") / "home", STOWAGE_TO_CUSTOMS)


def decided(home: Home, parts: GatewayParts, document: bytes = PLAN,
            format_id: str = "baplie-edifact") -> tuple[Context, Rejection | None]:
    """The document as the gateway's stages decide on it, the Derive stage included."""
    event = stages.BuildEvent(parts.schemas, parts.topics)
    deliveries = BuildDeliveries(parts.payloads, parts.schemas)
    pipeline = stages.Pipeline([
        ("authenticate", stages.Authenticate(parts.live_keyring)),
        ("adapter", stages.ChooseAdapter(parts.adapters)),
        ("adapt", stages.Adapt()),
        ("event", event),
        ("route", stages.Route(parts.router)),
        ("deliveries", deliveries),
        ("derive", stages.Derive(document_derivers(parts.adapters), parts.router, event,
                                 deliveries)),
    ])
    submission = Submission("sub-1", SENDER, format_id, document,
                            home.agency_keys[SENDER].sign(document), AT)
    return run_stages(pipeline, stages.new_context(submission, EVENT_ID))


def test_a_bay_plan_derives_its_fal7_under_the_fal7_adapter_s_type_schema_and_key() -> None:
    parsed = BayPlanAdapter().parse(PLAN)
    [derived] = BayPlanAdapter().derived(parsed)
    manifest = fal7_manifest(parsed.record)
    assert manifest is not None
    assert (derived.document_type, derived.schema_name) == (Fal7Adapter.document_type,
                                                            Fal7Adapter.schema_name)
    assert derived.parsed == ParseResult(manifest, fal7_business_key(manifest),
                                         parsed.document_version)
    plain = BayPlanAdapter().parse(without_dangerous_goods(PLAN))
    assert tuple(BayPlanAdapter().derived(plain)) == ()


def test_of_the_built_in_adapters_the_bay_plan_s_alone_derives_documents() -> None:
    assert set(document_derivers(AdapterRegistry.default(built_in_schemas()))) == {
        "baplie-edifact"}


def test_the_derived_fal7_is_decided_as_a_document_of_its_own(
        both: tuple[Home, GatewayParts]) -> None:
    home, parts = both
    ctx, why = decided(home, parts)
    assert why is None and ctx.decision is not None and ctx.event is not None
    assert ctx.decision.recipients == (CUSTOMS,)
    [fal7] = ctx.derived
    assert fal7.event_id != ctx.event_id
    assert fal7.event_id == stages.derived_event_id(EVENT_ID, "fal7", 0)  # fixed by the source
    assert fal7.document_type == "fal7" and fal7.decision is not None
    assert fal7.decision.recipients == (MARITIME,)
    assert fal7.event is not None and fal7.record is not None
    assert fal7.event.topic == WIRE.canonical("fal7")
    name, event = parts.schemas.decode(fal7.event.value)
    assert name == "px.canonical.Fal7DangerousGoodsManifest"
    parsed = BayPlanAdapter().parse(PLAN)
    manifest = fal7_manifest(parsed.record)
    assert manifest is not None
    assert {k: v for k, v in event.items() if k != "header"} == manifest
    assert fal7.event.key == fal7_business_key(manifest).encode()
    source = parts.schemas.decode(ctx.event.value)[1]["header"]
    header = event["header"]
    assert (header["event_id"], header["document_type"], header["business_key"]) == (
        fal7.event_id, "fal7", fal7_business_key(manifest))
    same = ("sender", "format_id", "document_version", "received_at", "digest_sm3",
            "signature_key_id")
    assert {k: header[k] for k in same} == {k: source[k] for k in same}
    assert source["sender"] == SENDER and source["signature_key_id"] is not None
    assert fal7.event.header(H_DERIVED_FROM) == EVENT_ID.encode()
    assert fal7.event.header(H_DOCUMENT_TYPE) == b"fal7"
    assert fal7.event.header(H_SENDER) == SENDER.encode()
    [(grant, delivery)] = fal7.deliveries
    assert grant.recipient == MARITIME and grant.contract.id == FAL7_TO_MARITIME.id
    assert delivery.header(H_DERIVED_FROM) == EVENT_ID.encode()
    fields = parts.schemas.decode(delivery.value)[1]
    assert (fields["event_id"], fields["document_type"], fields["recipient"]) == (
        fal7.event_id, "fal7", MARITIME)
    assert ctx.event.header(H_DERIVED_FROM) is None


def test_the_plan_publishes_both_and_the_receipt_names_the_recipients_of_both(
        both: tuple[Home, GatewayParts]) -> None:
    home, parts = both
    ctx, _ = decided(home, parts)
    [fal7] = ctx.derived
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [(m.out.topic, m.sealed) for m in plan.messages] == [
        (WIRE.canonical("stowage-plan"), False), (WIRE.delivery(CUSTOMS), True),
        (WIRE.canonical("fal7"), False), (WIRE.delivery(MARITIME), True)]
    assert plan.messages[2].out == fal7.event
    entries = [(e.fields["kind"], e.fields["event_id"], e.fields["document_type"],
                e.fields.get("recipient"), e.names) for e in plan.entries]
    assert entries == [
        ("ACCEPTED", EVENT_ID, "stowage-plan", None, 0),
        ("DELIVERED", EVENT_ID, "stowage-plan", CUSTOMS, 1),
        ("ACCEPTED", fal7.event_id, "fal7", None, 2),
        ("DELIVERED", fal7.event_id, "fal7", MARITIME, 3)]
    derived_accepted = plan.entries[2].fields
    assert derived_accepted["reason"].startswith(
        f"derived from event {EVENT_ID} (stowage-plan); {MARITIME} under")
    assert derived_accepted["submission_id"] == "sub-1"
    assert derived_accepted["business_key"] == fal7.business_key
    assert plan.receipt is not None
    assert (plan.receipt.status, plan.receipt.event_id, plan.receipt.recipients) == (
        ACCEPTED, EVENT_ID, (CUSTOMS, MARITIME))


def test_a_fal7_no_contract_shares_is_not_published_and_its_denial_is_recorded(
        stowage_only: tuple[Home, GatewayParts]) -> None:
    home, parts = stowage_only
    ctx, why = decided(home, parts)
    assert why is None
    [fal7] = ctx.derived
    assert fal7.decision is not None and fal7.decision.grants == ()
    assert (fal7.event, fal7.deliveries) == (None, ())
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [m.out.topic for m in plan.messages] == [WIRE.canonical("stowage-plan"),
                                                    WIRE.delivery(CUSTOMS)]
    denied = plan.entries[-1]
    assert (denied.fields["kind"], denied.fields["event_id"], denied.fields["error_code"],
            denied.names) == ("DENIED", fal7.event_id, "ROUTE_NO_CONTRACT", None)
    assert denied.fields["reason"].startswith(f"derived from event {EVENT_ID}")
    assert plan.receipt is not None and plan.receipt.recipients == (CUSTOMS,)


def test_a_bay_plan_without_dangerous_goods_derives_nothing(
        both: tuple[Home, GatewayParts]) -> None:
    home, parts = both
    ctx, why = decided(home, parts, without_dangerous_goods(PLAN))
    assert why is None and ctx.derived == ()
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    assert [m.out.topic for m in plan.messages] == [WIRE.canonical("stowage-plan"),
                                                    WIRE.delivery(CUSTOMS)]


def test_a_document_whose_adapter_derives_nothing_passes_the_stage_untouched(
        both: tuple[Home, GatewayParts]) -> None:
    _, parts = both
    derive = stages.Derive(document_derivers(parts.adapters), parts.router,
                           stages.BuildEvent(parts.schemas, parts.topics),
                           BuildDeliveries(parts.payloads, parts.schemas))
    fal5 = replace(stages.new_context(
        Submission("sub-2", SENDER, "fal5-xml", b"<x/>", b"", AT), "event-2"),
        adapter=parts.adapters.get("fal5-xml"))
    assert derive(fal5) is fal5


def test_the_parties_subscribed_to_fal7_are_told_of_the_derived_fal7(
        tmp_path: Path) -> None:
    follows_fal7 = ContractSpec(
        id="port-follows-fal7", provider="", consumers=(SENDER,), document_types=("fal7",),
        scope="", purpose="the port follows the FAL 7 it gives", legal_basis="单一窗口 service "
        "agreement", kind="subscription", events=("accepted", "delivered"))
    home, parts = home_with(tmp_path / "home", STOWAGE_TO_CUSTOMS, FAL7_TO_MARITIME,
                            follows_fal7)
    ctx, _ = decided(home, parts)
    [fal7] = ctx.derived
    plan = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT)
    statuses = [parts.schemas.decode(m.out.value)[1] for m in plan.messages[4:]]
    assert [(s["event_id"], s["document_type"], s["status"], s["recipient"], s["subscriber"])
            for s in statuses] == [(fal7.event_id, "fal7", "accepted", None, SENDER),
                                   (fal7.event_id, "fal7", "delivered", MARITIME, SENDER)]
    assert [(e.fields["kind"], e.fields["event_id"], e.names) for e in plan.entries[4:]] == [
        ("NOTIFIED", fal7.event_id, 4), ("NOTIFIED", fal7.event_id, 5)]
