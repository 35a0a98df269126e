"""The gateway as a service, on a real broker: agencies submit over HTTP and over Kafka and
get signed receipts; duplicates, oversize documents, unknown senders and bad signatures are
answered as agencies expect; and nothing acknowledged is lost or delivered twice (after the
recipients' de-duplication) when the broker or a gateway process dies mid-stream, or when two
gateway processes share the work."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from crypto import Keyring, SignatureInvalid, sm3_hex
from gateway.home.config import GatewayConfig
from gateway.home.create import Home
from gateway.ingress.client import submit
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_SUBMISSION_ID, H_VIA, StoredMessage, Topics
from gateway.kafka.wire import ensure_topics, read_topics
from gateway.observe.health import BrokerHealth
from gateway.parts import GatewayParts
from gateway.publish.plan import KEPT_PREFIX_BYTES
from gateway.receipts.book import ReceiptBook
from gateway.receipts.receipt import SignedReceipt
from gateway.service import Gateway
from gateway.trail.writer import RECORD_SCHEMA
from replay import verify_kafka
from tests.integration.service_support import (
    ARRIVAL,
    FORMAT,
    PROVIDER,
    RECIPIENTS,
    Document,
    GatewayProcess,
    HttpAnswer,
    ReceiptWatcher,
    TopicFollower,
    dead_letters,
    deduplicated_deliveries,
    get_answer,
    http_id,
    ingress_submission_ids,
    metric_total,
    numbered_arrival,
    partitions_split,
    post_document,
    produce_ingress,
    raw_deliveries,
    receipt_from_json,
    running_gateway,
    signed,
    signed_arrivals,
    wait_ready,
    wait_until_metric,
)
from tests.integration.support import gateway_parts

BORDER = "cn.border.sh"  # registered, but no contract shares FAL 1 with it
SMALL_LIMIT = 4096


def assert_accepted(signed_receipt: SignedReceipt, home: Home) -> None:
    signed_receipt.verify(home.gateway_key.public_key())
    receipt = signed_receipt.receipt
    assert receipt.status == "accepted", receipt
    assert sorted(receipt.recipients) == sorted(RECIPIENTS)


# -- 1. HTTP -----------------------------------------------------------------------------------


def test_http_submission_gets_a_signed_receipt_and_is_delivered(
    broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_http_submission(broker.bootstrap_servers, home))


async def _http_submission(bootstrap: str, home: Home) -> None:
    config, parts = gateway_parts(home)
    doc = signed(home, ARRIVAL, "http-1")
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        await wait_ready(session, gw.url)  # /readyz 200 while running
        answer = await post_document(session, gw.url, doc)
        looked_up = await get_answer(session, f"{gw.url}/v1/submissions/{http_id(doc)}")
        accepted_count = await metric_total(session, gw.ops_url, "portgw_documents_accepted_total")

    assert answer.status == 200, answer.body
    assert (answer.body["status"], answer.body["submission_id"]) == ("accepted",
                                                                     "cn.port.sh~http-1")
    signed_receipt = receipt_from_json(answer.body, parts.schemas)
    assert_accepted(signed_receipt, home)
    receipt = signed_receipt.receipt
    assert receipt.to_json() == answer.body["receipt"]  # the JSON says what was signed
    assert (receipt.submission_id, receipt.sender) == ("cn.port.sh~http-1", PROVIDER)
    assert receipt.digest_sm3 == sm3_hex(ARRIVAL)
    with pytest.raises(SignatureInvalid):  # not signed by just any key
        signed_receipt.verify(home.agency_keys[PROVIDER].public_key())
    assert (looked_up.status, looked_up.body) == (200, answer.body)
    assert accepted_count == 1

    [delivery] = await read_topics(bootstrap, [parts.topics.delivery("cn.customs.sh")])
    name, value = parts.schemas.decode(delivery.value)
    assert name == "px.gateway.Delivery"
    assert (value["event_id"], value["recipient"]) == (receipt.event_id, "cn.customs.sh")
    assert await read_topics(bootstrap, [parts.topics.delivery(BORDER)]) == []


# -- 2. Kafka ----------------------------------------------------------------------------------


def test_kafka_submission_gets_an_accepted_receipt(broker: LocalBroker, home: Home) -> None:
    asyncio.run(_kafka_submission(broker.bootstrap_servers, home))


async def _kafka_submission(bootstrap: str, home: Home) -> None:
    config, parts = gateway_parts(home)
    doc = signed(home, ARRIVAL, "kafka-1")
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        signed_receipt = await gw.serving.alongside(submit_over_kafka(bootstrap, doc, parts))
        # Whichever door it came in by, the HTTP door answers for it.
        looked_up = await get_answer(session, f"{gw.url}/v1/submissions/kafka-1")

    assert_accepted(signed_receipt, home)
    assert signed_receipt.receipt.submission_id == "kafka-1"
    assert signed_receipt.receipt.business_key == "9074729:V2611:A:CNSHA"
    assert looked_up.status == 200
    assert looked_up.body["receipt"] == signed_receipt.receipt.to_json()
    deliveries = await raw_deliveries(bootstrap, parts.topics, "cn.msa.sh")
    assert deliveries == {signed_receipt.receipt.event_id: 1}


async def submit_over_kafka(bootstrap: str, doc: Document, parts: GatewayParts
                            ) -> SignedReceipt:
    return await submit(bootstrap, sender=doc.sender, format_id=doc.format_id,
                        document=doc.document, signature=doc.signature, schemas=parts.schemas,
                        submission_id=doc.submission_id, topics=parts.topics, timeout_s=30)


# -- 3. duplicates -----------------------------------------------------------------------------


def test_a_duplicate_gets_the_first_receipt_and_is_delivered_once(
    broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_duplicate(broker.bootstrap_servers, home))


async def _duplicate(bootstrap: str, home: Home) -> None:
    config, parts = gateway_parts(home)
    doc = signed(home, ARRIVAL, "dup-1")
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        first = await post_document(session, gw.url, doc)
        second = await post_document(session, gw.url, doc, idempotency_key="dup-2")
        retried = await post_document(session, gw.url, doc)  # same key: the same answer
        over_kafka = await gw.serving.alongside(submit_over_kafka(
            bootstrap, Document("dup-3", doc.sender, doc.document, doc.signature), parts))
        await wait_until_metric(session, gw.ops_url, "portgw_duplicates_total", 2,
                                exactly=True)

    assert (first.status, second.status, retried.status) == (200, 200, 200)
    assert "duplicate_of" not in first.body
    assert second.body["duplicate_of"] == http_id(doc)
    assert second.headers["Px-Duplicate-Of"] == http_id(doc)
    assert second.body["submission_id"] == http_id(doc, "dup-2")
    assert second.body["receipt"] == first.body["receipt"]
    assert second.body["signature"] == first.body["signature"]
    assert retried.body == first.body
    assert over_kafka.receipt.to_json() == first.body["receipt"]

    event_id = first.body["receipt"]["event_id"]
    for recipient in RECIPIENTS:  # raw topics, not de-duplicated: the gateway sent it once
        assert await raw_deliveries(bootstrap, parts.topics, recipient) == {event_id: 1}, recipient


def test_a_post_sent_twice_at_once_with_one_key_keeps_one_answer(
    broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_sent_twice_at_once(broker.bootstrap_servers, home))


async def _sent_twice_at_once(bootstrap: str, home: Home) -> None:
    config, parts = gateway_parts(home)
    doc = signed(home, ARRIVAL, "twice-1")
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        first, again = await asyncio.gather(post_document(session, gw.url, doc),
                                            post_document(session, gw.url, doc))
        await every_copy_answered(bootstrap, parts.topics, http_id(doc))
        later = await get_answer(session, f"{gw.url}/v1/submissions/{http_id(doc)}")

    assert (first.status, again.status) == (200, 200)
    assert again.body == first.body
    assert "Px-Duplicate-Of" not in later.headers
    assert later.body == first.body


async def every_copy_answered(bootstrap: str, topics: Topics, submission_id: str) -> None:
    """Until the receipt topic holds an answer to each copy of the submission on the ingress
    topic."""
    key = submission_id.encode()
    deadline = time.monotonic() + 30
    while True:
        copies = sum(m.header(H_SUBMISSION_ID) == key
                     for m in await read_topics(bootstrap, [topics.ingress]))
        answers = sum(m.key == key for m in await read_topics(bootstrap, [topics.receipt]))
        if answers >= copies:
            return
        assert time.monotonic() < deadline, f"{answers} receipts for {copies} copies"
        await asyncio.sleep(0.1)


# -- 3a. an Idempotency-Key is its sender's own --------------------------------------------------

CUSTOMS = "cn.customs.sh"


def test_one_idempotency_key_from_two_agencies_names_two_submissions_each_decided_as_its_own(
    broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_one_key_two_agencies(broker.bootstrap_servers, home))


async def get_as(session: aiohttp.ClientSession, url: str, sender: str) -> HttpAnswer:
    """GET naming the agency that asks (Px-Sender)."""
    async with session.get(url, headers={"Px-Sender": sender}) as response:
        return HttpAnswer(response.status, await response.json(), response.headers.copy())


async def _one_key_two_agencies(bootstrap: str, home: Home) -> None:
    config, parts = gateway_parts(home)
    ports = signed(home, numbered_arrival(41), "shared-key")
    customs = signed(home, numbered_arrival(42), "shared-key", sender=CUSTOMS)
    ports_other = signed(home, numbered_arrival(43), "shared-key")  # its key, another document
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        port_answer = await post_document(session, gw.url, ports)
        customs_answer = await post_document(session, gw.url, customs)
        reused = await post_document(session, gw.url, ports_other)
        ports_url = f"{gw.url}/v1/submissions/{http_id(ports)}"
        asked_by = {sender: await get_as(session, ports_url, sender)
                    for sender in (PROVIDER, CUSTOMS)}
        receipt_asked_by_customs = await get_as(session, f"{ports_url}/receipt", CUSTOMS)
    ingress = [m.header(H_SUBMISSION_ID) or b""
               for m in await read_topics(bootstrap, [parts.topics.ingress])]

    assert port_answer.status == 200, port_answer.body
    assert customs_answer.status in (200, 422), customs_answer.body
    for answer, doc in ((customs_answer, customs), (port_answer, ports)):
        signed_receipt = receipt_from_json(answer.body, parts.schemas)
        signed_receipt.verify(home.gateway_key.public_key())
        receipt = signed_receipt.receipt  # each its own sender's decision on its own bytes
        assert (receipt.sender, receipt.digest_sm3) == (doc.sender, sm3_hex(doc.document))
        assert answer.body["submission_id"] == receipt.submission_id == http_id(doc)
    # Each document reached the ingress topic once, as its own sender's; the reused key's
    # other document did not.
    assert sorted(ingress) == sorted([http_id(ports).encode(), http_id(customs).encode()])
    assert (reused.status, reused.body["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert "receipt" not in reused.body
    assert (asked_by[PROVIDER].status, asked_by[PROVIDER].body) == (200, port_answer.body)
    assert (asked_by[CUSTOMS].status, asked_by[CUSTOMS].body["code"]) == (
        404, "SUBMISSION_UNKNOWN")
    assert receipt_asked_by_customs.status == 404


# -- 3b. the receipts a process has read, across restarts --------------------------------------


@pytest.mark.usefixtures("info_logs")
def test_a_restarted_gateway_reads_only_new_receipts_and_still_knows_the_old_ones(
    broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_restarted_with_index(broker.bootstrap_servers, home))


async def _restarted_with_index(bootstrap: str, home: Home) -> None:
    config, parts = gateway_parts(home)
    docs = [signed(home, numbered_arrival(n), f"idx-{n}") for n in range(12)]
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        firsts = [await post_document(session, gw.url, doc) for doc in docs]
    assert [answer.status for answer in firsts] == [200] * len(docs)
    held = {m.partition for m in await read_topics(bootstrap, [parts.topics.receipt])}

    with capture_logs() as logs:
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            # Not in memory any more: read from the topic, all at once.
            olds = await asyncio.gather(*(get_answer(session,
                                                     f"{gw.url}/v1/submissions/{http_id(doc)}")
                                          for doc in docs))
            again = await post_document(session, gw.url, docs[5], idempotency_key="idx-5b")
    [loaded] = [entry for entry in logs if entry["event"] == "receipts.loaded"]
    # Read again: the last indexed receipt of each partition, to check that it is still there.
    assert loaded["read"] == len(held)
    assert [(old.status, old.body) for old in olds] == [(200, first.body) for first in firsts]
    assert again.status == 200
    assert again.body["duplicate_of"] == http_id(docs[5])
    assert again.body["receipt"] == firsts[5].body["receipt"]


def test_a_receipt_the_topic_no_longer_holds_is_reported_missing_not_failed(
    broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_receipt_gone_from_topic(broker.bootstrap_servers, home))


async def _receipt_gone_from_topic(bootstrap: str, home: Home) -> None:
    """The index points at a place the topic does not hold, as after a memory-only broker
    restarted under a running process: the book has no such receipt, and logs why."""
    _, parts = gateway_parts(home)
    await ensure_topics(bootstrap, {parts.topics.receipt: 1})
    book = ReceiptBook(bootstrap, parts.schemas, topics=parts.topics, cache_size=0)
    await book.start()
    try:
        book.add(StoredMessage(parts.topics.receipt, 0, 7, b"gone-1", b"", (), 0))
        assert "gone-1" in book
        with capture_logs() as logs:
            assert await book.get("gone-1") is None
    finally:
        await book.stop()
    assert [entry["event"] for entry in logs] == ["receipts.not_on_topic"]


def test_an_index_made_against_another_broker_is_made_again(
    broker: LocalBroker, home: Home, tmp_path: Path
) -> None:
    asyncio.run(_index_of_another_broker(broker.bootstrap_servers, home, tmp_path))


async def _index_of_another_broker(bootstrap: str, home: Home, tmp_path: Path) -> None:
    """The local broker keeps its topics in memory: after it restarts, the receipts a
    gateway indexed are gone, and offsets start again at 0."""
    config, parts = gateway_parts(home)
    doc = signed(home, ARRIVAL, "moved-1")
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        assert (await post_document(session, gw.url, doc)).status == 200

    with LocalBroker(log_path=tmp_path / "other-broker.log") as other, capture_logs() as logs:
        async with running_gateway(config, parts, other.bootstrap_servers) as gw, \
                aiohttp.ClientSession() as session:
            unknown = await get_answer(session, f"{gw.url}/v1/submissions/{http_id(doc)}")
            sent_again = await post_document(session, gw.url, doc)
    events = [entry["event"] for entry in logs]
    assert "receipts.index_not_of_this_topic" in events
    assert unknown.status == 404
    assert sent_again.status == 200
    assert "duplicate_of" not in sent_again.body


@pytest.mark.usefixtures("info_logs")
def test_a_gateway_whose_receipt_index_fails_is_not_ready_until_it_has_rebuilt_it(
    broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_index_fails(broker.bootstrap_servers, home))


async def _index_fails(bootstrap: str, home: Home) -> None:
    """The index's connection closed under the running gateway, as a failing disk leaves
    it: not ready, then the index rebuilt from the topic and ready again, with nothing
    forgotten and nothing lost."""
    config, parts = gateway_parts(home)
    before = signed(home, numbered_arrival(1), "before-failure")
    during = signed(home, numbered_arrival(2), "during-failure")
    with capture_logs() as logs:
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            first = await post_document(session, gw.url, before)
            gw.gateway.book.index._db.close()
            refused = await post_document(session, gw.url, during)
            states = [await _readiness_until(session, gw.url, 503),
                      await _readiness_until(session, gw.url, 200)]
            again = await post_document(session, gw.url, before, idempotency_key="resent")
            sent_later = await post_document(session, gw.url, during)
    assert first.status == 200
    # Nothing was taken: the door could not tell whether the id was known already.
    assert (refused.status, refused.body["code"]) == (500, "RECEIPT_INDEX_FAILED")
    assert states == [{"status": "not ready", "not_ready": ["gateway"]}, {"status": "ready"}]
    assert again.body["duplicate_of"] == http_id(before)
    assert sent_later.status == 200
    assert "duplicate_of" not in sent_later.body
    events = [entry["event"] for entry in logs]
    assert events.index("receipts.index_failed") < events.index("receipts.index_recovered")


async def _readiness_until(session: aiohttp.ClientSession, url: str, status: int
                           ) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while (answer := await get_answer(session, f"{url}/readyz")).status != status:
        assert time.monotonic() < deadline, f"/readyz never answered {status}"
        await asyncio.sleep(0.05)
    return answer.body


# -- 4. size limit -----------------------------------------------------------------------------


def test_an_oversize_document_is_refused_over_http_and_dead_lettered_over_kafka(
    broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_oversize(broker.bootstrap_servers, home))


def oversize_arrival() -> bytes:
    """A valid arrival made larger than SMALL_LIMIT by a comment."""
    padding = b"<!-- " + b"padding " * (SMALL_LIMIT // 8) + b"-->\n"
    document = numbered_arrival(7).replace(b"?>\n", b"?>\n" + padding, 1)
    assert len(document) > SMALL_LIMIT
    return document


async def _oversize(bootstrap: str, home: Home) -> None:
    config = GatewayConfig.load(
        home.config_file, env={"PORTGW__LIMITS__DEFAULT__MAX_DOCUMENT_BYTES": str(SMALL_LIMIT)})
    parts = GatewayParts.load(config)
    big = oversize_arrival()
    parts.adapters.get(FORMAT).parse(big)  # refused for its size only
    big_http = signed(home, big, "big-http")
    big_kafka = signed(home, big, "big-kafka")
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        refused = await post_document(session, gw.url, big_http)
        small = await post_document(session, gw.url, signed(home, ARRIVAL, "small-http"))
        rejected = await gw.serving.alongside(submit_over_kafka(bootstrap, big_kafka, parts))

    assert refused.status == 413
    assert refused.body["code"] == "DOCUMENT_TOO_LARGE"
    assert small.status == 200, small.body
    rejected.verify(home.gateway_key.public_key())
    assert (rejected.receipt.status, rejected.receipt.error_code) == (
        "rejected", "DOCUMENT_TOO_LARGE")
    assert rejected.receipt.recipients == ()

    letters = await dead_letters(bootstrap, parts.topics, parts.schemas)
    assert letters.keys() == {"big-kafka"}  # the door's refusal never reached the ingress
    letter = letters["big-kafka"]
    assert letter["error_code"] == "DOCUMENT_TOO_LARGE"
    # refused before its signature was checked: kept as its first bytes, never whole
    assert letter["original"] == big[:KEPT_PREFIX_BYTES]
    assert http_id(big_http) not in await ingress_submission_ids(bootstrap, parts.topics)


# -- 4b. rate limit on the ingress topic --------------------------------------------------------

RATE_PER_S = 4.0


def test_an_agency_past_its_rate_on_the_ingress_topic_waits_whatever_its_headers_claim(
    broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_rate_limited(broker.bootstrap_servers, home))


async def _rate_limited(bootstrap: str, home: Home) -> None:
    """The HTTP door applies the rate limit itself and stamps what it puts on the ingress
    topic; an agency producing there directly cannot skip its limit by claiming the door."""
    config = GatewayConfig.load(home.config_file, env={
        "PORTGW__LIMITS__DEFAULT__RATE_PER_S": str(RATE_PER_S),
        "PORTGW__LIMITS__DEFAULT__BURST": "1"})
    parts = GatewayParts.load(config)
    through_door = signed(home, numbered_arrival(300), "door-300")
    claiming = signed_arrivals(home, 5, start=301, prefix="claims-door")
    acked: list[str] = []
    with capture_logs() as logs:
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session, \
                ReceiptWatcher(bootstrap, parts.topics, parts.schemas) as watcher:
            answer = await post_document(session, gw.url, through_door)
            await produce_ingress(bootstrap, parts.topics, claiming, acked=acked,
                                  extra_headers=[(H_VIA, b"http:" + b"0" * 64)])
            receipts = await gw.serving.alongside(watcher.wait_for(acked))

    assert answer.status == 200, answer.body
    times = sorted(receipts[doc.submission_id].receipt.time for doc in claiming)
    assert all(r.receipt.status == "accepted" for r in receipts.values())
    # One token at most was left in the bucket: the other four waited 1/RATE_PER_S each.
    assert (times[-1] - times[0]).total_seconds() >= 3 / RATE_PER_S
    flagged = {e["submission_id"] for e in logs if e["event"] == "ingress.door_stamp_invalid"}
    assert flagged == {doc.submission_id for doc in claiming}


# -- 5. unknown sender -------------------------------------------------------------------------


def test_a_decision_that_fails_once_is_made_again_and_the_gateway_still_stops(
    broker: LocalBroker, home: Home
) -> None:
    """Whatever fails while a document's decision is handed over (here, once, making its
    plan), the document is taken again from the ingress topic and decided, and the gateway
    stops: a failed first try once left later tries of the same document, and the stop,
    waiting for it for ever."""
    asyncio.run(_fails_once(broker.bootstrap_servers, home))


async def _fails_once(bootstrap: str, home: Home) -> None:
    config, parts = gateway_parts(home)
    failures: list[str] = []

    def failing_once(gateway: Gateway) -> None:
        answers = gateway._contrl_answers

        class FailsOnce:
            """The last step of making a plan, failing the first time."""

            def added(self, plan: Any, ctx: Any, *rest: Any) -> Any:
                if not failures:
                    failures.append(ctx.submission.submission_id)
                    raise RuntimeError("the plan could not be made")
                return answers.added(plan, ctx, *rest)

        gateway._contrl_answers = FailsOnce()  # type: ignore[assignment]

    doc = signed(home, numbered_arrival(7001), "fails-once")
    async with asyncio.timeout(90):
        async with running_gateway(config, parts, bootstrap, prepare=failing_once) as gw:
            receipt = await gw.serving.alongside(submit_over_kafka(bootstrap, doc, parts))
    assert failures == ["fails-once"]
    assert receipt.receipt.status == "accepted"
    for recipient in RECIPIENTS:
        assert await raw_deliveries(bootstrap, parts.topics, recipient) == {
            receipt.receipt.event_id: 1}, recipient


def test_an_unknown_sender_is_refused(broker: LocalBroker, home: Home) -> None:
    asyncio.run(_unknown_sender(broker.bootstrap_servers, home))


async def _unknown_sender(bootstrap: str, home: Home) -> None:
    config, parts = gateway_parts(home)
    key = home.agency_keys[PROVIDER]  # a real key, under a name nobody registered
    stranger = Document("stranger-http", "cn.nobody", ARRIVAL, key.sign(ARRIVAL))
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        refused = await post_document(session, gw.url, stranger)
        rejected = await gw.serving.alongside(submit_over_kafka(
            bootstrap, Document("stranger-kafka", "cn.nobody", ARRIVAL, stranger.signature),
            parts))

    assert refused.status == 403
    assert refused.body["code"] == "AUTH_UNKNOWN_SENDER"
    rejected.verify(home.gateway_key.public_key())
    assert rejected.receipt.status == "rejected"
    assert (rejected.receipt.error_code or "").startswith("AUTH_"), rejected.receipt

    letters = await dead_letters(bootstrap, parts.topics, parts.schemas)
    assert letters.keys() == {"stranger-kafka"}
    assert letters["stranger-kafka"]["sender"] == "cn.nobody"
    assert letters["stranger-kafka"]["original"] == ARRIVAL
    for recipient in (*RECIPIENTS, BORDER):
        assert await raw_deliveries(bootstrap, parts.topics, recipient) == {}


# -- 6. bad signature --------------------------------------------------------------------------


def test_a_bad_signature_is_rejected_with_a_dead_letter(broker: LocalBroker, home: Home) -> None:
    asyncio.run(_bad_signature(broker.bootstrap_servers, home))


async def _bad_signature(bootstrap: str, home: Home) -> None:
    config, parts = gateway_parts(home)
    altered = ARRIVAL.replace(b"PX HARMONY", b"PX HARM0NY")  # after it was signed
    doc = Document("altered-http", PROVIDER, altered, home.agency_keys[PROVIDER].sign(ARRIVAL))
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        answer = await post_document(session, gw.url, doc)
        looked_up = await get_answer(session, f"{gw.url}/v1/submissions/{http_id(doc)}")

    assert answer.status == 422, answer.body
    assert answer.body["status"] == "rejected"
    signed_receipt = receipt_from_json(answer.body, parts.schemas)
    signed_receipt.verify(home.gateway_key.public_key())
    assert signed_receipt.receipt.error_code == "AUTH_SIGNATURE_INVALID"
    assert signed_receipt.receipt.recipients == ()
    assert (looked_up.status, looked_up.body) == (422, answer.body)

    letter = (await dead_letters(bootstrap, parts.topics, parts.schemas))[http_id(doc)]
    assert letter["error_code"] == "AUTH_SIGNATURE_INVALID"
    assert (letter["original"], letter["signature"]) == (altered, doc.signature)
    for recipient in RECIPIENTS:
        assert await raw_deliveries(bootstrap, parts.topics, recipient) == {}


# -- 7. the broker dies and comes back ---------------------------------------------------------



OUTAGE_S = 4.0
POST_EVERY_S = 0.25
S3_FETCH_WAIT_MS = 200


def test_every_acknowledged_submission_survives_a_broker_restart(
    s3_broker: LocalBroker, home: Home, tmp_path: Path
) -> None:
    asyncio.run(_broker_restart(s3_broker, home, tmp_path))


async def post_during(session: aiohttp.ClientSession, url: str, docs: list[Document],
                      seconds: float) -> list[tuple[Document, HttpAnswer]]:
    """POSTs one document every POST_EVERY_S for `seconds` (without waiting for the answers
    in between); each with its answer."""
    tasks = []
    deadline = time.monotonic() + seconds
    for doc in docs:
        if time.monotonic() > deadline:
            break
        tasks.append((doc, asyncio.create_task(post_document(session, url, doc,
                                                             timeout_s=60))))
        await asyncio.sleep(POST_EVERY_S)
    return [(doc, await task) for doc, task in tasks]


def unconfirmed(answer: HttpAnswer) -> bool:
    """A 202 saying that the broker did not confirm taking the document."""
    return answer.status == 202 and answer.body.get("code") == "INGRESS_UNCONFIRMED"


async def until_decided(session: aiohttp.ClientSession, url: str, doc: Document, *,
                        timeout_s: float = 90.0) -> HttpAnswer:
    """What an agency system does with a document answered 202 INGRESS_UNCONFIRMED or 503:
    sends it again under the same key until it is decided."""
    deadline = time.monotonic() + timeout_s
    while (answer := await post_document(session, url, doc)).status not in (200, 422):
        assert time.monotonic() < deadline, f"not decided within {timeout_s} s: {answer}"
        await asyncio.sleep(0.5)
    return answer


async def settled_receipts(bootstrap: str, topics: Topics, watcher: ReceiptWatcher
                           ) -> dict[str, SignedReceipt]:
    """Once every record on the ingress topic has a receipt (read again until no record
    arrives meanwhile): the receipt of each."""
    on_ingress: set[str] = set()
    while True:
        now_on_ingress = await ingress_submission_ids(bootstrap, topics)
        if now_on_ingress == on_ingress:
            return await watcher.wait_for(on_ingress)
        on_ingress = now_on_ingress
        await watcher.wait_for(on_ingress, timeout_s=90)


async def _broker_restart(broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    config, parts = gateway_parts(home)
    # Every fetch costs the S3-backed broker a LIST per partition: poll less often.
    config = replace(config, fetch_wait_ms=S3_FETCH_WAIT_MS)
    bootstrap = broker.bootstrap_servers
    warm_up = signed(home, numbered_arrival(999), "warm-up")
    stream = signed_arrivals(home, 30, prefix="stream")
    during = signed_arrivals(home, 60, start=1000, prefix="http")
    acked: list[str] = []
    async with running_gateway(config, parts, bootstrap) as gw, \
            ReceiptWatcher(bootstrap, parts.topics, parts.schemas,
                           fetch_wait_ms=S3_FETCH_WAIT_MS) as watcher, \
            aiohttp.ClientSession() as session:
        # Once this is answered, the gateway has joined its group and decides at once.
        assert (await post_document(session, gw.url, warm_up)).status == 200
        producing = asyncio.create_task(produce_ingress(bootstrap, parts.topics, stream,
                                                        acked=acked, partitions=4,
                                                        interval_s=0.25))
        await watcher.wait_for_messages(5)  # the gateway is deciding the stream
        broker.kill()
        acked_before_kill = len(acked)
        posting = asyncio.create_task(post_during(session, gw.url, during, OUTAGE_S))
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(broker.start)  # same port, same storage
        answers = await posting
        await producing
        # As the answer tells: a document the broker may not have taken is sent again.
        resent = [await until_decided(session, gw.url, doc)
                  for doc, answer in answers if unconfirmed(answer)]
        receipts = await settled_receipts(bootstrap, parts.topics, watcher)
        on_ingress = await ingress_submission_ids(bootstrap, parts.topics)
        assert (await get_answer(session, f"{gw.url}/readyz")).status == 200

    statuses = Counter(a.status for _, a in answers)
    print(f"broker killed after {acked_before_kill} of {len(stream)} stream documents; "
          f"HTTP answers during the outage: {dict(statuses)} ({len(resent)} unconfirmed); "
          f"{len(receipts)} ingress records decided")
    assert acked_before_kill < len(stream), "the stream ended before the broker was killed"
    unavailable = [(doc, a) for doc, a in answers if a.status == 503]
    assert unavailable, f"no 503 while the broker was down: {dict(statuses)}"
    for _, answer in unavailable:
        assert answer.body["code"] == "BROKER_UNAVAILABLE"
        assert answer.headers["Retry-After"] == "5"  # [http] retry_after_s
    refused_on_ingress = {http_id(doc) for doc, _ in unavailable} & on_ingress
    assert not refused_on_ingress, f"answered 503, yet on the ingress topic: {refused_on_ingress}"
    assert statuses.keys() <= {200, 202, 503}, statuses
    assert all(answer.status == 200 for answer in resent), resent
    assert len(acked) == len(stream)
    taken = set(acked) | {http_id(doc) for doc, a in answers if a.status in (200, 202)}
    assert taken <= receipts.keys(), "acknowledged, yet not on the ingress topic"
    for submission_id in taken:
        assert_accepted(receipts[submission_id], home)
    assert all(r.receipt.accepted for r in receipts.values())

    accepted = {r.receipt.event_id for r in receipts.values()}
    await assert_each_recipient_got_each_once(bootstrap, parts.topics, accepted, tmp_path,
                                              parts.keyring)
    report = await verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                trail_topic=parts.topics.trail)
    assert report.ok, report.breaks


UNCONFIRMED_AFTER_S = 1.0  # [http] ingress_timeout_s in the test below


def test_a_document_the_broker_may_have_taken_is_never_answered_503(
    s3_broker: LocalBroker, home: Home
) -> None:
    asyncio.run(_may_have_taken(s3_broker, home))


def slow_probe(gateway: Gateway) -> None:
    """A broker probe that, while the broker answers, looks only every 10 s: the kill below
    is then noticed by the door's own hand-over, not by a probe that happens to run between
    the kill and the POST."""
    gateway.health = BrokerHealth(interval_s=10.0)


async def _may_have_taken(broker: LocalBroker, home: Home) -> None:
    """The broker dies as the door hands a document to the producer, and comes back before
    the producer gives up: the door cannot know whether the broker took it, so it answers
    202 INGRESS_UNCONFIRMED with the status URL, not 503; sent again under the same key, the
    document is decided once. A document posted once the door knows the broker is down is
    answered 503 and is nowhere on the ingress topic."""
    config, parts = gateway_parts(home)
    config = replace(config, fetch_wait_ms=S3_FETCH_WAIT_MS,
                     http=replace(config.http, ingress_timeout_s=UNCONFIRMED_AFTER_S))
    bootstrap = broker.bootstrap_servers
    warm_ups = [signed(home, numbered_arrival(n), f"warm-up-{n}") for n in (698, 699)]
    in_flight, while_down = (signed(home, numbered_arrival(n), name) for n, name in
                             ((701, "in-flight"), (702, "while-down")))
    async with running_gateway(config, parts, bootstrap, prepare=slow_probe) as gw, \
            ReceiptWatcher(bootstrap, parts.topics, parts.schemas,
                           fetch_wait_ms=S3_FETCH_WAIT_MS) as watcher, \
            aiohttp.ClientSession() as session:
        # Twice: the first decision's new topics leave the producer without the ingress
        # topic's partitions, which the second brings back. Without them the producer would
        # have to ask the dead broker, never take the document, and the answer be 503.
        for warm_up in warm_ups:
            assert (await post_document(session, gw.url, warm_up)).status == 200
        broker.kill()
        first = await post_document(session, gw.url, in_flight)
        refused = await post_document(session, gw.url, while_down)
        await asyncio.to_thread(broker.start)  # same port, same storage
        await wait_ready(session, gw.url, timeout_s=60)
        decided = await until_decided(session, gw.url, in_flight)
        receipts = await settled_receipts(bootstrap, parts.topics, watcher)
        on_ingress = await ingress_submission_ids(bootstrap, parts.topics)
        sent_again = await post_document(session, gw.url, while_down)  # as the 503 asks

    copies = [m for m in await read_topics(bootstrap, [parts.topics.ingress])
              if m.header(H_SUBMISSION_ID) == http_id(in_flight).encode()]
    print(f"copies of the unconfirmed document on the ingress topic: {len(copies)}")
    assert unconfirmed(first), (first.status, first.body)
    assert first.headers["Location"] == f"/v1/submissions/{http_id(in_flight)}"
    assert (refused.status, refused.body["code"]) == (503, "BROKER_UNAVAILABLE"), refused.body
    assert http_id(while_down) not in on_ingress
    assert decided.status == 200, decided.body
    assert_accepted(receipts[http_id(in_flight)], home)
    assert sent_again.status == 200, sent_again.body
    event_id = decided.body["receipt"]["event_id"]
    for recipient in RECIPIENTS:  # raw topics: decided once, however many copies were sent
        assert (await raw_deliveries(bootstrap, parts.topics, recipient))[event_id] == 1, recipient


async def assert_each_recipient_got_each_once(bootstrap: str, topics: Topics, accepted: set[str],
                                              tmp_path: Path, keyring: Keyring) -> None:
    """Through the recipients' verifying, de-duplicating reader: every accepted event, once
    each, every delivery sealed by the gateway."""
    for recipient in RECIPIENTS:
        handed = await deduplicated_deliveries(bootstrap, topics, recipient,
                                               tmp_path / f"{recipient}.sqlite", keyring)
        assert handed.keys() == accepted, recipient
        assert set(handed.values()) == {1}, recipient


# -- 8. a gateway process is killed ------------------------------------------------------------


def test_a_killed_gateway_process_loses_nothing_and_recipients_get_each_document_once(
    broker: LocalBroker, home: Home, tmp_path: Path
) -> None:
    asyncio.run(_killed_gateway(broker.bootstrap_servers, home, tmp_path))


async def _killed_gateway(bootstrap: str, home: Home, tmp_path: Path) -> None:
    _, parts = gateway_parts(home)
    docs = signed_arrivals(home, 200)
    acked: list[str] = []
    async with aiohttp.ClientSession() as session, contextlib.AsyncExitStack() as stack:
        first = stack.enter_context(GatewayProcess(home, bootstrap, tmp_path / "gateway-1.log"))
        await wait_ready(session, first.url, alive=first.alive)
        watcher = await stack.enter_async_context(ReceiptWatcher(bootstrap, parts.topics,
                                                                 parts.schemas))
        delivered = await stack.enter_async_context(
            TopicFollower(bootstrap, parts.topics.delivery(RECIPIENTS[0])))
        producing = asyncio.create_task(produce_ingress(bootstrap, parts.topics, docs, acked=acked,
                                                        partitions=4))
        await delivered.wait_for_messages(len(docs) // 2)
        first.kill()  # in the midst of the stream, most likely with documents half done
        decided_before_kill = len(watcher.receipts)
        second = stack.enter_context(GatewayProcess(home, bootstrap,
                                                    tmp_path / "gateway-2.log"))
        await wait_ready(session, second.url, alive=second.alive)
        await producing
        receipts = await watcher.wait_for(acked)
        accepted_after = await metric_total(session, second.ops_url,
                                            "portgw_documents_accepted_total")
        assert second.stop() == 0, second.log_tail()

    print(f"killed with {decided_before_kill} of {len(docs)} receipts seen; the restarted process "
          f"accepted {accepted_after:.0f} more")
    assert decided_before_kill < len(docs), "the kill came after the stream was decided"
    assert len(acked) == len(docs)
    for signed_receipt in receipts.values():
        assert_accepted(signed_receipt, home)
    accepted = {r.receipt.event_id for r in receipts.values()}
    assert len(accepted) == len(docs)

    for recipient in RECIPIENTS:
        raw = await raw_deliveries(bootstrap, parts.topics, recipient)
        print(f"{recipient}: {sum(raw.values())} raw deliveries of {len(raw)} documents")
    await assert_each_recipient_got_each_once(bootstrap, parts.topics, accepted, tmp_path,
                                              parts.keyring)
    report = await verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                trail_topic=parts.topics.trail)
    assert report.ok, report.breaks


# -- 9. two gateway processes ------------------------------------------------------------------


def test_two_gateway_processes_share_the_ingress_partitions(
    broker: LocalBroker, home: Home, tmp_path: Path
) -> None:
    asyncio.run(_two_gateways(broker.bootstrap_servers, home, tmp_path))


async def _two_gateways(bootstrap: str, home: Home, tmp_path: Path) -> None:
    _, parts = gateway_parts(home)
    docs = signed_arrivals(home, 100)
    acked: list[str] = []
    with GatewayProcess(home, bootstrap, tmp_path / "gateway-a.log") as a, \
            GatewayProcess(home, bootstrap, tmp_path / "gateway-b.log") as b:
        gateways = (a, b)
        async with aiohttp.ClientSession() as session:
            for gw in gateways:
                await wait_ready(session, gw.url, alive=gw.alive)
            await partitions_split(a, b)
            owners = {p: gw for gw in gateways for p in gw.owned_partitions()}
            async with ReceiptWatcher(bootstrap, parts.topics, parts.schemas) as watcher:
                await produce_ingress(bootstrap, parts.topics, docs, acked=acked, partitions=4)
                receipts = await watcher.wait_for(acked)
            accepted_by = [await metric_total(session, gw.ops_url,
                                              "portgw_documents_accepted_total")
                           for gw in gateways]
        assert [gw.stop() for gw in gateways] == [0, 0], a.log_tail() + b.log_tail()

    print(f"partitions {sorted(a.owned_partitions())} and {sorted(b.owned_partitions())}; "
          f"accepted {accepted_by}")
    assert len(receipts) == len(docs)
    for signed_receipt in receipts.values():
        assert_accepted(signed_receipt, home)
    assert all(n > 0 for n in accepted_by) and sum(accepted_by) == len(docs)

    # Each chain of the trail was written by the process that owned its partition.
    chains = set()
    for message in await read_topics(bootstrap, [parts.topics.trail]):
        name, value = parts.schemas.decode(message.value)
        if name == RECORD_SCHEMA:
            chains.add(value["entry"]["chain"])
    assert chains == {"p0", "p1", "p2", "p3"}
    assert {owners[int(chain[1:])] is a for chain in chains} == {True, False}
    report = await verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                trail_topic=parts.topics.trail)
    assert report.ok, report.breaks
    assert report.chains == 4
