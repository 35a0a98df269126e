"""DCSA eBL 3.0 JSON through the running gateway on a real broker: shipping instructions and a
transport document, submitted without naming their format, are told apart by their members,
read by their adapters and published under their own document types to the consumer the
contract names; instructions a business rule refuses are answered 422, and JSON no format
declares is refused as FORMAT_UNSUPPORTED, not as malformed XML."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.home.create import ContractSpec, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import read_topics
from tests.integration.service_support import post_each_unnamed, signed
from tests.integration.support import gateway_parts

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data"
SENDER, CUSTOMS = "cn.port.sh", "cn.customs.sh"
CONTRACT = ContractSpec(
    id="dcsa-line-to-customs", provider=SENDER, consumers=(CUSTOMS,),
    document_types=("shipping-instructions", "waybill"), scope="cross-department",
    purpose="advance cargo information for customs risk assessment",
    legal_basis="中华人民共和国海关法", extra='max_classification = "important"\n')
INSTRUCTIONS = (DATA / "dcsa-si" / "valid_si_received_bol.json").read_bytes()
DOCUMENT = (DATA / "dcsa-ebl" / "valid_bol_issued.json").read_bytes()
REFUSED = (DATA / "dcsa-si" / "sea_waybill_to_order.json").read_bytes()
BOOKING = b'{"carrierBookingRequestReference": "PXBR0001", "bookingStatus": "RECEIVED"}'


def test_instructions_and_transport_documents_are_told_apart_and_published(
        broker: LocalBroker, topics: Topics, tmp_path: Path) -> None:
    home = create_home(tmp_path / "home", contracts=(CONTRACT,), topic_prefix=topics.prefix,
                       seal_every=4, seal_interval_ms=100)
    documents = [signed(home, data, f"dcsa-{n}")
                 for n, data in enumerate((INSTRUCTIONS, DOCUMENT, REFUSED, BOOKING))]
    bootstrap = broker.bootstrap_servers
    config, parts = gateway_parts(home)

    statuses = asyncio.run(post_each_unnamed(config, parts, bootstrap, documents))

    assert statuses == [200, 200, 422, 422]
    for document_type, format_id, data in (("shipping-instructions", "dcsa-si", INSTRUCTIONS),
                                           ("waybill", "dcsa-ebl", DOCUMENT)):
        [message] = asyncio.run(read_topics(bootstrap, [topics.canonical(document_type)]))
        name, event = parts.schemas.decode(message.value)
        expected = parts.adapters.get(format_id).parse(data)
        assert (name, event["header"]["format_id"]) == ("px.canonical.MultimodalWaybill",
                                                       format_id)
        assert event["header"]["document_version"] == expected.document_version
        assert {k: v for k, v in event.items() if k != "header"} == expected.record
        assert message.key == expected.business_key.encode()
    deliveries = asyncio.run(read_topics(bootstrap, [topics.delivery(CUSTOMS)]))
    assert sorted(parts.schemas.decode(m.value)[1]["document_type"] for m in deliveries) == [
        "shipping-instructions", "waybill"]
    refusals = [parts.schemas.decode(m.value)[1]
                for m in asyncio.run(read_topics(bootstrap, [topics.dlq]))]
    assert sorted(r["error_code"] for r in refusals) == ["FORMAT_UNSUPPORTED",
                                                         "RULE_SWB_TO_ORDER"]
