"""IFTSTA status reports reach subscriptions on a real broker: customs, to which a sharing
contract delivers the port's transport status reports and which subscribes to `transport`
events on `transport-status`, gets on its status topic one px.gateway.StatusEvent per event
of each report of an interchange of two, with the event itself; each is a NOTIFIED trail
record, and the trail verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from adapters import IftstaAdapter
from gateway.home.create import create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_EVENT_ID, Topics
from gateway.kafka.wire import read_topics
from replay.verify import verify_kafka
from tests.integration.service_support import post_unnamed, running_gateway, signed, wait_ready
from tests.integration.support import gateway_parts, trail_entries
from tests.unit.test_derived_documents import CUSTOMS, SENDER, terminal_contract
from tests.unit.test_transport_status_events import follows

pytestmark = pytest.mark.integration

TWO_REPORTS = (Path(__file__).parents[1] / "data" / "edifact-interchanges" /
               "iftsta_two_reports.edi").read_bytes()


def test_a_status_report_s_events_reach_the_subscribed_party_as_status_events(
        broker: LocalBroker, topics: Topics, tmp_path: Path) -> None:
    home = create_home(tmp_path / "home", topic_prefix=topics.prefix, seal_every=4,
                       seal_interval_ms=100,
                       contracts=(terminal_contract("status-to-customs", CUSTOMS,
                                                    "transport-status"), follows(CUSTOMS)))
    bootstrap = broker.bootstrap_servers
    config, parts = gateway_parts(home)

    async def run() -> int:
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            return await gw.serving.alongside(post_unnamed(
                session, gw.url, signed(home, TWO_REPORTS, "status-reports")))

    assert asyncio.run(run()) == 200
    reports = asyncio.run(read_topics(bootstrap, [topics.canonical("transport-status")]))
    event_of = {m.key.decode(): m.header(H_EVENT_ID).decode()  # type: ignore[union-attr]  # every event has a key and an id
                for m in reports}
    first, second = (event_of[f"IFTSTA:EXAMPLELINE:EXSR202600120{n}"] for n in (1, 2))

    statuses = [parts.schemas.decode(m.value)[1]
                for m in asyncio.run(read_topics(bootstrap, [topics.status(CUSTOMS)]))]
    parsed = IftstaAdapter().parse(TWO_REPORTS)
    assert parsed.parts[1].parsed is not None
    expected = [(first, event) for event in parsed.record["events"]] + [
        (second, event) for event in parsed.parts[1].parsed.record["events"]]
    assert sorted(((s["event_id"], s["transport_event"]) for s in statuses),
                  key=lambda pair: (pair[0], pair[1]["status_code"])) == sorted(
        expected, key=lambda pair: (pair[0], pair[1]["status_code"]))
    assert {(s["status"], s["subscriber"], s["sender"], s["document_type"])
            for s in statuses} == {("transport", CUSTOMS, SENDER, "transport-status")}

    notified = [e for e in trail_entries(parts, bootstrap) if e["kind"] == "NOTIFIED"]
    assert len(notified) == 6 and {e["recipient"] for e in notified} == {CUSTOMS}
    assert sorted(e["reason"].split(" under ")[0] for e in notified if e["event_id"] == second
                  ) == ["status transport (STS DS of consignment 1)",
                        "status transport (STS GI of consignment 2)",
                        "status transport (STS VD of consignment 1)"]
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=parts.topics.trail))
    assert report.ok, report.breaks
