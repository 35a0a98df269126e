"""CUSCAR interchanges of three messages, and a COPRAR one of two, in the running gateway on
a real broker, decided message by message: each message is a canonical event of its own (its
own event id and business key), delivered under the contract to customs, recorded on the
trail; a message that breaks a rule is refused alone (its REJECTED record, its dead letter)
while the others are accepted; the sender gets one CONTRL naming each message (asked for in
UNB, or sent because a message was refused) and a signed receipt naming each message's
outcome, which it verifies; and the trail verifies."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.home.create import Home, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_EVENT_ID, H_PART_OF, Topics
from gateway.kafka.wire import read_topics
from gateway.publish.contrl_answers import CONTRL_FORMAT
from gateway.receipts.receipt import SignedReceipt
from message_formats import AvroSchemas
from message_formats.edifact import Acknowledgement, Action, read_contrl, read_interchange
from replay.verify import verify_kafka
from tests.integration.service_support import (
    dead_letters,
    deduplicated_deliveries,
    post_document,
    post_unnamed,
    receipt_from_json,
    running_gateway,
    signed,
    wait_ready,
)
from tests.integration.support import gateway_parts, trail_entries
from tests.unit.test_derived_documents import CUSTOMS, SENDER, terminal_contract

KEY = "CUSCAR:EXAMPLELINE:9312341:{}"
ORDER_KEY = "9074729:V2612S:LO261207000{}"
DATA = Path(__file__).parents[1] / "data" / "edifact-interchanges"
pytestmark = pytest.mark.integration


def test_each_message_of_an_interchange_is_a_document_and_the_contrl_names_each(
        broker: LocalBroker, topics: Topics, tmp_path: Path) -> None:
    home = home_sharing_with_customs(tmp_path, topics, "cn-manifest")
    three = signed(home, (DATA / "cuscar_three_reports.edi").read_bytes(), "three")
    refused_one = replace(signed(home, (DATA / "cuscar_second_of_three_refused.edi"
                                        ).read_bytes(), "second-refused"),
                          format_id="cuscar-edifact")
    bootstrap = broker.bootstrap_servers
    config, parts = gateway_parts(home)

    async def run() -> tuple[int, int, str]:
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            unnamed = await gw.serving.alongside(post_unnamed(session, gw.url, three))
            answer = await gw.serving.alongside(post_document(session, gw.url, refused_one))
            looked_up = await gw.serving.alongside(looked_up_receipt(
                session, f"{gw.url}/v1/submissions/{SENDER}~second-refused/receipt"))
        signed_receipt = receipt_from_json(answer.body, parts.schemas)
        signed_receipt.check(fresh.keyring)  # the sender's verification: the seal covers parts
        receipt = signed_receipt.receipt
        assert (receipt.status, receipt.business_key, receipt.recipients) == (
            "accepted", KEY.format("0331E"), (CUSTOMS,))
        assert answer.body["receipt"]["parts"] == looked_up["receipt"]["parts"] == [
            part.to_json() for part in receipt.parts or ()]
        return unnamed, answer.status, receipt.event_id

    _, fresh = gateway_parts(home)  # the sender's and the recipient's view of the keys
    unnamed_status, status, own_event = asyncio.run(run())
    assert (unnamed_status, status) == (200, 200)

    events = asyncio.run(read_topics(bootstrap, [topics.canonical("cn-manifest")]))
    keys = {m.key.decode(): m for m in events if m.key is not None}
    assert sorted(keys) == sorted(KEY.format(v) for v in (
        "0326E", "0327E", "0328E", "0331E", "0333E"))
    ids = {key: m.header(H_EVENT_ID).decode() for key, m in keys.items()}  # type: ignore[union-attr]  # every event carries its id
    assert len(set(ids.values())) == 5 and ids[KEY.format("0331E")] == own_event
    assert keys[KEY.format("0333E")].header(H_PART_OF) == f"{own_event}#3".encode()
    for key, message in keys.items():
        header = parts.schemas.decode(message.value)[1]["header"]
        assert (header["business_key"], header["event_id"]) == (key, ids[key])

    # the recipient's view: verified, each delivery once
    to_customs = asyncio.run(deduplicated_deliveries(bootstrap, topics, CUSTOMS,
                                                     tmp_path / "customs", fresh.keyring))
    assert to_customs == {event_id: 1 for event_id in ids.values()}

    contrls = sender_contrls(parts.schemas, bootstrap, topics)
    asked = contrls["SRC0301"]
    assert asked.interchange.action == Action.ACKNOWLEDGED
    assert [(r.reference, r.action) for r in asked.reports("UCM")] == [
        ("MREF0001", Action.ACKNOWLEDGED), ("MREF0002", Action.ACKNOWLEDGED),
        ("MREF0003", Action.ACKNOWLEDGED)]
    partly = contrls["SRC0302"]  # not asked for: sent because a message was refused
    assert partly.interchange.action == Action.ACKNOWLEDGED
    assert [(r.reference, r.action) for r in partly.reports("UCM")] == [
        ("MREF0001", Action.ACKNOWLEDGED), ("MREF0002", Action.REJECTED),
        ("MREF0003", Action.ACKNOWLEDGED)]
    [ucs] = partly.reports("UCS")
    assert (ucs.reference, ucs.syntax_error) == ("17", 12)

    receipts = sender_receipts(parts.schemas, bootstrap, topics)  # as a Kafka sender reads
    of_three = receipts[f"{SENDER}~three"].receipt
    assert [(p.number, p.status, p.business_key) for p in of_three.parts or ()] == [
        (n, "accepted", KEY.format(v)) for n, v in ((1, "0326E"), (2, "0327E"), (3, "0328E"))]
    signed_of_refused = receipts[f"{SENDER}~second-refused"]
    signed_of_refused.check(fresh.keyring)
    parts_told = [(p.number, p.reference, p.message_type, p.status, p.business_key,
                   p.error_code, p.error_segment, p.recipients)
                  for p in signed_of_refused.receipt.parts or ()]
    assert parts_told == [
        (1, "MREF0001", "CUSCAR", "accepted", KEY.format("0331E"), None, None, (CUSTOMS,)),
        (2, "MREF0002", "CUSCAR", "rejected", KEY.format("0332E"),
         "RULE_CONTAINER_CHECK_DIGIT", 17, ()),
        (3, "MREF0003", "CUSCAR", "accepted", KEY.format("0333E"), None, None, (CUSTOMS,))]
    part_ids = [p.event_id for p in signed_of_refused.receipt.parts or ()]

    [letter] = asyncio.run(dead_letters(bootstrap, topics, parts.schemas)).values()
    assert (letter["error_code"], letter["business_key"], letter["submission_id"]) == (
        "RULE_CONTAINER_CHECK_DIGIT", KEY.format("0332E"), f"{SENDER}~second-refused")
    entries = trail_entries(parts, bootstrap)
    of_refused = [e for e in entries if e["submission_id"] == f"{SENDER}~second-refused"]
    outcomes = [(e["kind"], e["business_key"], e.get("error_code")) for e in of_refused
                if e["kind"] in ("ACCEPTED", "REJECTED")]
    assert outcomes == [("ACCEPTED", KEY.format("0331E"), None),
                        ("REJECTED", KEY.format("0332E"), "RULE_CONTAINER_CHECK_DIGIT"),
                        ("ACCEPTED", KEY.format("0333E"), None)]
    [rejected] = [e for e in of_refused if e["kind"] == "REJECTED"]
    assert rejected["event_id"] == letter["event_id"] == part_ids[1] not in ids.values()
    assert {part_ids[0], part_ids[2]} <= set(ids.values())
    assert rejected["reason"].startswith(
        f"message 2 (UNH MREF0002) of the interchange of event {own_event}")
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=parts.topics.trail))
    assert report.ok, report.breaks


def home_sharing_with_customs(tmp_path: Path, topics: Topics, document_type: str) -> Home:
    """A home whose port shares its documents of `document_type` with customs."""
    return create_home(tmp_path / "home", topic_prefix=topics.prefix, seal_every=4,
                       seal_interval_ms=100,
                       contracts=(terminal_contract(f"{document_type}-to-customs", CUSTOMS,
                                                    document_type),))


async def looked_up_receipt(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """GET /v1/submissions/{id}/receipt as the sender asks it."""
    async with session.get(url, headers={"Px-Sender": SENDER}) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


def sender_receipts(schemas: AvroSchemas, bootstrap: str, topics: Topics
                    ) -> dict[str, SignedReceipt]:
    """The signed receipts on the receipt topic, by the submission id each answers."""
    return {message.key.decode(): SignedReceipt.decode(schemas, message.value)
            for message in asyncio.run(read_topics(bootstrap, [topics.receipt]))
            if message.key is not None}


def sender_contrls(schemas: AvroSchemas, bootstrap: str, topics: Topics
                   ) -> dict[str, Acknowledgement]:
    """The CONTRLs on the sender's delivery topic, by the reference of the interchange each
    answers."""
    found = {}
    for message in asyncio.run(read_topics(bootstrap, [topics.delivery(SENDER)])):
        delivery = schemas.decode(message.value)[1]
        assert delivery["payload_encoding"] == CONTRL_FORMAT
        read = read_contrl(read_interchange(delivery["payload"]).messages[0])
        found[read.interchange.reference] = read
    return found


def test_each_order_of_a_coprar_interchange_is_a_document_of_its_own(
        broker: LocalBroker, topics: Topics, tmp_path: Path) -> None:
    """An SMDG interchange of two loading orders (COPRAR), decided as the CUSCAR ones are:
    two events with their own ids and keys, each delivered once, and the CONTRL the UNB asked
    for acknowledging both."""
    home = home_sharing_with_customs(tmp_path, topics, "container-order")
    orders = replace(signed(home, (DATA / "coprar_two_orders.edi").read_bytes(), "orders"),
                     format_id="coprar-edifact")
    bootstrap = broker.bootstrap_servers
    config, parts = gateway_parts(home)

    async def run() -> str:
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            answer = await gw.serving.alongside(post_document(session, gw.url, orders))
        assert answer.status == 200
        receipt = receipt_from_json(answer.body, parts.schemas).receipt
        assert (receipt.status, receipt.business_key, receipt.recipients) == (
            "accepted", ORDER_KEY.format(1), (CUSTOMS,))
        return receipt.event_id

    own_event = asyncio.run(run())
    events = asyncio.run(read_topics(bootstrap, [topics.canonical("container-order")]))
    keys = {m.key.decode(): m for m in events if m.key is not None}
    assert sorted(keys) == [ORDER_KEY.format(1), ORDER_KEY.format(2)]
    ids = {key: m.header(H_EVENT_ID).decode() for key, m in keys.items()}  # type: ignore[union-attr]  # every event carries its id
    assert ids[ORDER_KEY.format(1)] == own_event != ids[ORDER_KEY.format(2)]
    assert keys[ORDER_KEY.format(2)].header(H_PART_OF) == f"{own_event}#2".encode()
    for key, message in keys.items():
        header = parts.schemas.decode(message.value)[1]["header"]
        assert (header["business_key"], header["event_id"]) == (key, ids[key])

    _, fresh = gateway_parts(home)
    to_customs = asyncio.run(deduplicated_deliveries(bootstrap, topics, CUSTOMS,
                                                     tmp_path / "customs", fresh.keyring))
    assert to_customs == {event_id: 1 for event_id in ids.values()}
    asked = sender_contrls(parts.schemas, bootstrap, topics)["LO0002"]
    assert asked.interchange.action == Action.ACKNOWLEDGED
    assert [(r.reference, r.action) for r in asked.reports("UCM")] == [
        ("LO1", Action.ACKNOWLEDGED), ("LO2", Action.ACKNOWLEDGED)]
    accepted = [e for e in trail_entries(parts, bootstrap) if e["kind"] == "ACCEPTED"]
    assert sorted(e["business_key"] for e in accepted) == sorted(ids)
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=parts.topics.trail))
    assert report.ok, report.breaks
