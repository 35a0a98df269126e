"""SMDG container messages through the running gateway on a real broker: a bay plan and a
discharge report sent without a format name are recognised by their UNH message types, read
by the built-in adapters and published as canonical events to the maritime administration;
a bay plan a business rule refuses is answered 422 and with a negative CONTRL that rejects
its message at the segment the rule names."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from gateway.home.create import ContractSpec, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import read_topics
from message_formats.edifact import Action, read_contrl, read_interchange
from tests.integration.service_support import post_unnamed, running_gateway, signed, wait_ready
from tests.integration.support import gateway_parts

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data"
SENDER, MARITIME = "cn.port.sh", "cn.msa.sh"
CONTRACT = ContractSpec(
    id="terminal-to-maritime", provider=SENDER, consumers=(MARITIME,),
    document_types=("stowage-plan", "container-report"), scope="cross-department",
    purpose="dangerous goods and stowage oversight", legal_basis="中华人民共和国海上交通安全法",
    extra='max_classification = "important"\n')
PLAN = (DATA / "stowage-plan" / "smdg31_bay_plan.edi").read_bytes()
REPORT = (DATA / "container-report" / "coarri_discharge_report.edi").read_bytes()
REFUSED = (DATA / "stowage-plan" / "bad_container_check_digit.edi").read_bytes()


def test_bay_plans_and_reports_are_recognised_published_and_refused_with_contrl(
        broker: LocalBroker, topics: Topics, tmp_path: Path) -> None:
    home = create_home(tmp_path / "home", contracts=(CONTRACT,), topic_prefix=topics.prefix,
                       seal_every=4, seal_interval_ms=100)
    documents = [signed(home, data, f"smdg-{n}")
                 for n, data in enumerate((PLAN, REPORT, REFUSED))]
    bootstrap = broker.bootstrap_servers

    async def run() -> list[int]:
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            return [await gw.serving.alongside(post_unnamed(session, gw.url, doc))
                    for doc in documents]

    assert asyncio.run(run()) == [200, 200, 422]
    _, parts = gateway_parts(home)
    for document_type, format_id, data in (("stowage-plan", "baplie-edifact", PLAN),
                                           ("container-report", "coarri-edifact", REPORT)):
        [message] = asyncio.run(read_topics(bootstrap, [topics.canonical(document_type)]))
        name, event = parts.schemas.decode(message.value)
        expected = parts.adapters.get(format_id).parse(data)
        assert name == parts.adapters.get(format_id).schema_name
        assert event["header"]["format_id"] == format_id
        assert {k: v for k, v in event.items() if k != "header"} == expected.record
        assert message.key == expected.business_key.encode()
    deliveries = asyncio.run(read_topics(bootstrap, [topics.delivery(MARITIME)]))
    assert len(deliveries) == 2

    [answer] = asyncio.run(read_topics(bootstrap, [topics.delivery(SENDER)]))
    delivery = parts.schemas.decode(answer.value)[1]
    contrl = read_contrl(read_interchange(delivery["payload"]).messages[0])
    assert (contrl.interchange.reference, contrl.interchange.action) == ("BP0001",
                                                                         Action.REJECTED)
    [ucm] = contrl.reports("UCM")
    assert (ucm.reference, ucm.action) == ("BP22", Action.REJECTED)
    [ucs] = contrl.reports("UCS")  # the EQD whose container number fails its check digit
    assert (ucs.reference, ucs.syntax_error) == ("25", 12)
