"""A bay plan with dangerous goods through the running gateway on a real broker: besides the
bay plan, the FAL 7 dangerous goods manifest it holds is published as a canonical event of
its own and delivered under the maritime administration's FAL 7 contract; the receipt names
the recipients of both, the trail records both, and it verifies. A bay plan without
dangerous goods gives no FAL 7."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from adapters import BayPlanAdapter, fal7_manifest
from adapters.fal7 import business_key as fal7_business_key
from gateway.home.create import create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_DERIVED_FROM, H_EVENT_ID, Topics
from gateway.kafka.wire import read_topics
from replay.verify import verify_kafka
from tests.integration.service_support import (
    deduplicated_deliveries,
    post_document,
    receipt_from_json,
    running_gateway,
    signed,
    wait_ready,
)
from tests.integration.support import gateway_parts, trail_entries
from tests.unit.smdg_support import without_dangerous_goods
from tests.unit.test_derived_documents import terminal_contract

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data" / "stowage-plan"
SENDER, CUSTOMS, MARITIME = "cn.port.sh", "cn.customs.sh", "cn.msa.sh"
WITH_GOODS = (DATA / "smdg31_bay_plan.edi").read_bytes()
WITHOUT_GOODS = without_dangerous_goods((DATA / "smdg22_bay_plan.edi").read_bytes())


def test_a_bay_plan_s_dangerous_goods_reach_the_maritime_administration_as_fal7(
        broker: LocalBroker, topics: Topics, tmp_path: Path) -> None:
    contracts = (terminal_contract("stowage-to-customs", CUSTOMS, "stowage-plan"),
                 terminal_contract("fal7-to-maritime", MARITIME, "fal7"))
    home = create_home(tmp_path / "home", contracts=contracts, topic_prefix=topics.prefix,
                       seal_every=4, seal_interval_ms=100)
    documents = [replace(signed(home, data, f"plan-{n}"), format_id="baplie-edifact")
                 for n, data in enumerate((WITH_GOODS, WITHOUT_GOODS))]
    bootstrap = broker.bootstrap_servers
    config, parts = gateway_parts(home)

    async def run() -> list[tuple[int, tuple[str, ...], str]]:
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            answers = [await gw.serving.alongside(post_document(session, gw.url, doc))
                       for doc in documents]
        receipts = [receipt_from_json(a.body, parts.schemas).receipt for a in answers]
        return [(a.status, r.recipients, r.event_id) for a, r in zip(answers, receipts,
                                                                       strict=True)]

    [(status, recipients, plan_event), (plain_status, plain_recipients, plain_event)] = \
        asyncio.run(run())
    assert (status, recipients) == (200, (CUSTOMS, MARITIME))
    assert (plain_status, plain_recipients) == (200, (CUSTOMS,))

    [fal7] = asyncio.run(read_topics(bootstrap, [topics.canonical("fal7")]))
    name, event = parts.schemas.decode(fal7.value)
    manifest = fal7_manifest(BayPlanAdapter().parse(WITH_GOODS).record)
    assert manifest is not None and name == "px.canonical.Fal7DangerousGoodsManifest"
    assert {k: v for k, v in event.items() if k != "header"} == manifest
    assert fal7.key == fal7_business_key(manifest).encode()
    assert fal7.header(H_DERIVED_FROM) == plan_event.encode()
    fal7_event = event["header"]["event_id"]
    assert (event["header"]["sender"], event["header"]["document_type"]) == (SENDER, "fal7")
    assert fal7_event not in (plan_event, plain_event)
    plans = asyncio.run(read_topics(bootstrap, [topics.canonical("stowage-plan")]))
    assert sorted(m.header(H_EVENT_ID) for m in plans) == sorted(  # type: ignore[type-var]  # every event carries its id
        [plan_event.encode(), plain_event.encode()])

    _, fresh = gateway_parts(home)  # the recipients' view: verified, each delivery once
    to_customs = asyncio.run(deduplicated_deliveries(bootstrap, topics, CUSTOMS,
                                                     tmp_path / "customs", fresh.keyring))
    to_maritime = asyncio.run(deduplicated_deliveries(bootstrap, topics, MARITIME,
                                                      tmp_path / "maritime", fresh.keyring))
    assert to_customs == {plan_event: 1, plain_event: 1}
    assert to_maritime == {fal7_event: 1}

    entries = trail_entries(parts, bootstrap)
    of_fal7 = [(e["kind"], e.get("recipient")) for e in entries if e["event_id"] == fal7_event]
    assert of_fal7 == [("ACCEPTED", None), ("DELIVERED", MARITIME)]
    [accepted] = [e for e in entries if e["event_id"] == fal7_event and e["kind"] == "ACCEPTED"]
    assert accepted["reason"].startswith(f"derived from event {plan_event} (stowage-plan)")
    assert (accepted["submission_id"], accepted["document_type"]) == (
        f"{SENDER}~plan-0", "fal7")
    assert "fal7" not in {e["document_type"] for e in entries
                          if e["submission_id"] == f"{SENDER}~plan-1"}
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=parts.topics.trail))
    assert report.ok, report.breaks
