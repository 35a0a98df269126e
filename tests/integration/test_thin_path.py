"""One FAL 1 document end to end on a real broker process, accepted and refused."""

from __future__ import annotations

import asyncio

import pytest

from crypto import sm3_hex
from gateway.home.create import Home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import read_topics
from replay import verify_kafka
from tests.integration.support import FAL1_SAMPLES, Sent, gateway_parts, submit_all

ARRIVAL = (FAL1_SAMPLES / "valid_arrival.xml").read_bytes()


def test_accepted_document_reaches_each_permitted_recipient_and_no_one_else(
    broker: LocalBroker, home: Home, topics: Topics
) -> None:
    bootstrap = broker.bootstrap_servers
    [receipt] = asyncio.run(submit_all(home, bootstrap, [Sent("cn.port.sh", ARRIVAL)]))

    assert receipt.accepted, receipt
    assert set(receipt.recipients) == {"cn.customs.sh", "cn.msa.sh"}
    assert receipt.business_key == "9074729:V2611:A:CNSHA"
    assert receipt.digest_sm3 == sm3_hex(ARRIVAL)

    _, parts = gateway_parts(home)
    [delivery_message] = asyncio.run(read_topics(bootstrap, [topics.delivery("cn.customs.sh")]))
    name, delivery = parts.schemas.decode(delivery_message.value)
    assert name == "px.gateway.Delivery"
    assert delivery["event_id"] == receipt.event_id
    assert (delivery["contract_id"], delivery["contract_version"]) == ("fal1-port-to-clearance", 1)
    assert delivery["recipient"] == "cn.customs.sh"

    payload_schema, event = parts.schemas.decode(delivery["payload"])
    assert payload_schema == "px.canonical.Fal1GeneralDeclaration"
    assert event["header"]["sender"] == "cn.port.sh"
    assert event["header"]["digest_sm3"] == sm3_hex(ARRIVAL)
    assert event["header"]["event_id"] == receipt.event_id
    expected = parts.adapters.get("fal1-xml").parse(ARRIVAL).record
    assert {k: v for k, v in event.items() if k != "header"} == expected

    [canonical] = asyncio.run(read_topics(bootstrap, [topics.canonical("fal1")]))
    assert canonical.value == delivery["payload"]
    assert canonical.key == b"9074729:V2611:A:CNSHA"
    assert asyncio.run(read_topics(bootstrap, [topics.delivery("cn.border.sh")])) == []

    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=topics.trail))
    assert report.ok, report.breaks
    # RECEIVED (naming the ingress message), ACCEPTED (the event), two DELIVERED.
    assert (report.records, report.sealed_records, report.references) == (4, 4, 4)


def _tampered(document: bytes) -> bytes:
    return document.replace(b"PX HARMONY", b"PX HARM0NY")


REFUSALS = {
    "bad signature": (Sent("cn.port.sh", _tampered(ARRIVAL), signature=b"later"),
                      "AUTH_SIGNATURE_INVALID", "REJECTED"),
    "unknown sender": (Sent("cn.nobody", ARRIVAL, signature=b"\x30\x00"),
                       "AUTH_UNKNOWN_SENDER", "REJECTED"),
    "XSD violation": (Sent("cn.port.sh", (FAL1_SAMPLES / "missing_ship_name.xml").read_bytes()),
                      "XSD_INVALID", "REJECTED"),
    "IMO check digit": (Sent("cn.port.sh",
                             (FAL1_SAMPLES / "bad_imo_check_digit.xml").read_bytes()),
                        "RULE_IMO_CHECK_DIGIT", "REJECTED"),
    "entity expansion": (Sent("cn.port.sh", (FAL1_SAMPLES / "billion_laughs.xml").read_bytes()),
                         "XML_DTD_FORBIDDEN", "REJECTED"),
    "no contract": (Sent("cn.border.sh", ARRIVAL), "ROUTE_NO_CONTRACT", "DENIED"),
    "unknown format": (Sent("cn.port.sh", ARRIVAL, format_id="fal9-xml"),
                       "ADAPTER_UNKNOWN_FORMAT", "REJECTED"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_document_gets_error_receipt_dead_letter_and_trail_record(
    broker: LocalBroker, home: Home, topics: Topics, case: str
) -> None:
    sent, code, kind = REFUSALS[case]
    if sent.signature == b"later":  # signed over the original bytes, then altered in transit
        sent = Sent(sent.sender, sent.document, home.agency_keys[sent.sender].sign(ARRIVAL))
    bootstrap = broker.bootstrap_servers
    [receipt] = asyncio.run(submit_all(home, bootstrap, [sent]))

    assert receipt.status == "rejected"
    assert receipt.error_code == code
    assert receipt.error_message
    assert receipt.recipients == ()

    _, parts = gateway_parts(home)
    [dead] = asyncio.run(read_topics(bootstrap, [topics.dlq]))
    _, letter = parts.schemas.decode(dead.value)
    assert letter["error_code"] == code
    assert letter["original"] == sent.document
    assert letter["event_id"] == receipt.event_id

    trail = [parts.schemas.decode(m.value) for m in asyncio.run(read_topics(bootstrap,
                                                                            [topics.trail]))]
    entries = [value["entry"] for name, value in trail if name == "px.trail.TrailRecord"]
    assert [(e["kind"], e["error_code"], e["event_id"]) for e in entries] == [
        ("RECEIVED", None, receipt.event_id), (kind, code, receipt.event_id)
    ]
    received, refused = entries
    assert (received["ref_topic"], received["ref_digest"]) == (topics.ingress,
                                                               sm3_hex(sent.document))
    assert refused["ref_topic"] == topics.dlq and refused["ref_offset"] == dead.offset

    nobody = [topics.delivery(a) for a in ("cn.customs.sh", "cn.msa.sh", "cn.border.sh")]
    assert asyncio.run(read_topics(bootstrap, nobody)) == []  # read together: one fetch wait
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=topics.trail))
    assert report.ok, report.breaks


def test_a_restarted_gateway_continues_the_chain(broker: LocalBroker, home: Home,
                                                 topics: Topics) -> None:
    bootstrap = broker.bootstrap_servers
    departure = (FAL1_SAMPLES / "valid_departure.xml").read_bytes()
    first = asyncio.run(submit_all(home, bootstrap, [Sent("cn.port.sh", ARRIVAL)]))
    second = asyncio.run(submit_all(home, bootstrap, [Sent("cn.port.sh", departure),
                                                       Sent("cn.border.sh", ARRIVAL)]))
    assert [r.status for r in first + second] == ["accepted", "accepted", "rejected"]

    _, parts = gateway_parts(home)
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=topics.trail))
    assert report.ok, report.breaks
    assert report.records == 10
    assert report.sealed_records == 10
