"""The built-in CUSCAR, IFTMIN and IFTSTA adapters in the running gateway on a real broker:
each interchange, submitted without naming its format, is detected by its UNH message type,
parsed in the parse worker and delivered to the consumer its contract names; a CUSCAR that
breaks a business rule is refused (422) and answered with a negative CONTRL that rejects its
message at the segment (UCS) with 0085 code 12 (invalid value)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from gateway.home.create import ContractSpec, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import read_topics
from gateway.publish.contrl_answers import CONTRL_FORMAT
from message_formats.edifact import Action, read_contrl, read_interchange
from tests.integration.service_support import (
    post_unnamed,
    running_gateway,
    signed,
    wait_ready,
)
from tests.integration.support import gateway_parts

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data"
SENDER, CUSTOMS = "cn.port.sh", "cn.customs.sh"
CONTRACT = ContractSpec(
    id="cargo-edifact-port-to-customs", provider=SENDER, consumers=(CUSTOMS,),
    document_types=("cn-manifest", "waybill", "transport-status"), scope="cross-department",
    purpose="cargo reports, transport instructions and status for customs control",
    legal_basis="中华人民共和国海关法", extra='max_classification = "important"\n')
SAMPLES = ("cuscar-edifact/valid_sea_import.edi", "iftmin-edifact/valid_road_and_sea.edi",
           "iftsta-edifact/valid_loaded_and_departed.edi",
           "cuscar-edifact/bad_container_check_digit.edi")


def test_cargo_interchanges_are_detected_delivered_and_refused_with_contrl(
        broker: LocalBroker, topics: Topics, tmp_path: Path) -> None:
    home = create_home(tmp_path / "home", contracts=(CONTRACT,), topic_prefix=topics.prefix,
                       seal_every=4, seal_interval_ms=100)
    docs = [signed(home, (DATA / name).read_bytes(), f"cargo-{n}")
            for n, name in enumerate(SAMPLES)]
    bootstrap = broker.bootstrap_servers

    async def run() -> list[int]:
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            return [await gw.serving.alongside(post_unnamed(session, gw.url, doc))
                    for doc in docs]

    assert asyncio.run(run()) == [200, 200, 200, 422]
    _, parts = gateway_parts(home)
    delivered = asyncio.run(read_topics(bootstrap, [parts.topics.delivery(CUSTOMS)]))
    assert sorted(parts.schemas.decode(m.value)[1]["document_type"] for m in delivered) == [
        "cn-manifest", "transport-status", "waybill"]
    answers = []
    for message in asyncio.run(read_topics(bootstrap, [parts.topics.delivery(SENDER)])):
        delivery = parts.schemas.decode(message.value)[1]
        assert delivery["payload_encoding"] == CONTRL_FORMAT
        answers.append(read_contrl(read_interchange(delivery["payload"]).messages[0]))
    [refused] = answers  # the valid ones asked for no acknowledgement
    assert (refused.interchange.reference, refused.interchange.action) == (
        "SRC0001", Action.REJECTED)
    [ucm], [ucs] = refused.reports("UCM"), refused.reports("UCS")
    assert (ucm.reference, ucm.action) == ("MREF0001", Action.REJECTED)
    assert (ucs.reference, ucs.syntax_error) == ("17", 12)  # the EQD, an invalid value
