"""HTTP pull of deliveries on the real broker, over real TLS with client certificates: a
recipient pulls with `portgw receive --pull`, acknowledges (the gateway records each delivery
as TAKEN in its trail), stops, and goes on later without a gap or a repeat; another agency's
certificate never sees them, and no cursor takes it to them; a forged delivery on the topic
is handed over by the door but refused by `portgw receive` and never acknowledged; an
acknowledgement with a bad signature, another agency's key or a wrong digest is refused."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crypto import Keyring, sm3_hex
from gateway.clock import utc_now
from gateway.deliveries.acknowledgements import (
    Acknowledgement,
    Taken,
    canonical_json,
    sign_acknowledgement,
)
from gateway.deliveries.proof import DELIVERY_SCHEMA, DeliveryVerifier
from gateway.deliveries.pull import Cursor, delivery_from_json
from gateway.deliveries.pull_client import PullClient, PullFailed
from gateway.home.config import GatewayConfig
from gateway.home.create import Home
from gateway.ingress.client import submit
from gateway.ingress.http_api import start_http
from gateway.kafka.local_broker import LocalBroker, free_loopback_port
from gateway.kafka.names import StoredMessage
from gateway.kafka.wire import new_producer, read_topics
from gateway.parts import GatewayParts
from gateway.service import Gateway
from gateway.trail.taken import TAKEN
from replay.verify import verify_kafka
from tests.integration.service_support import PROVIDER, numbered_arrival, signed
from tests.integration.support import Ran, portgw, trail_entries
from tests.integration.test_http_tls import Pki, ask, make_pki, tls_gateway, tls_home

CUSTOMS = "cn.customs.sh"  # agency-b's certificate; agency-a's is the provider's


@dataclass(frozen=True, slots=True)
class TlsHome:
    """A gateway home with a TLS door and its clients' certificates, on the test's broker."""

    home: Home
    pki: Pki
    config: GatewayConfig
    parts: GatewayParts
    bootstrap: str

    def gateway(self) -> AbstractAsyncContextManager[str]:
        """The gateway serving, its door's URL."""
        return tls_gateway(self.config, self.parts, self.bootstrap)

    @asynccontextmanager
    async def gateway_on(self, port: int) -> AsyncIterator[str]:
        """The gateway serving, its door on `port` (the same URL after a restart)."""
        async with Gateway(self.config, self.parts, self.bootstrap) as gateway, \
                gateway.serving():
            door = await start_http(gateway.http_app(), f"127.0.0.1:{port}")
            try:
                yield f"https://127.0.0.1:{port}"
            finally:
                await door.close()


@pytest.fixture
def tls(broker: LocalBroker, home: Home, tmp_path: Path) -> TlsHome:
    pki = make_pki(tmp_path / "pki")
    config, parts, _ = tls_home(home, pki)
    return TlsHome(home, pki, config, parts, broker.bootstrap_servers)


async def _submit(home: Home, parts: GatewayParts, bootstrap: str, numbers: range) -> None:
    for n in numbers:
        doc = signed(home, numbered_arrival(n), f"pull-{n}")
        receipt = await submit(bootstrap, sender=doc.sender, format_id=doc.format_id,
                               document=doc.document, signature=doc.signature,
                               schemas=parts.schemas, topics=parts.topics, timeout_s=60)
        assert receipt.receipt.accepted, receipt.receipt


def _receive(home: Home, pki: Pki, url: str, store: Path, *extra: str) -> Ran:
    return portgw("receive", "--agency", CUSTOMS, "--pull", url,
                  "--client-cert", pki.directory / "agency-b.pem",
                  "--client-key", pki.directory / "agency-b.key", "--ca", pki.directory / "ca.pem",
                  "--keyring", home.path / "keyring.toml", "--store", store,
                  "--key", home.path / "keys" / f"{CUSTOMS}.key", "--config", home.config_file,
                  *extra)


def _lines(ran: Ran) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ran.stdout.splitlines()]


def test_a_recipient_pulls_acknowledges_and_goes_on_after_a_restart_without_gaps_or_repeats(
    tls: TlsHome, tmp_path: Path
) -> None:
    home, pki, parts, bootstrap = tls.home, tls.pki, tls.parts, tls.bootstrap
    store = tmp_path / "store"

    port = free_loopback_port()

    async def run() -> tuple[Ran, Ran, str]:
        async with tls.gateway_on(port) as url:
            await _submit(home, parts, bootstrap, range(3))
            first = await asyncio.to_thread(_receive, home, pki, url, store, "--page-size", "2")
        async with tls.gateway_on(port) as url:  # the gateway restarted, and the recipient
            await _submit(home, parts, bootstrap, range(3, 5))
            second = await asyncio.to_thread(_receive, home, pki, url, store)
            metrics = await ask(pki, "operator", "GET", f"{url}/metrics")
        return first, second, str(metrics.body)

    first, second, metrics = asyncio.run(run())
    assert (first.returncode, second.returncode) == (0, 0), (first.stderr, second.stderr)
    on_topic = [DeliveryVerifier(parts.keyring, CUSTOMS).check(m) for m in asyncio.run(
        read_topics(bootstrap, [parts.topics.delivery(CUSTOMS)]))]
    assert len(on_topic) == 5
    got = [line["delivery_id"] for line in _lines(first) + _lines(second)]
    assert len(_lines(first)) == 3 and len(got) == 5
    assert sorted(got) == sorted(d.delivery_id for d in on_topic)  # no gap, no repeat
    payloads = {d.delivery_id: d.payload for d in on_topic}
    assert all(base64.b64decode(line["payload"]) == payloads[line["delivery_id"]]
               for line in _lines(first) + _lines(second))

    taken = [e for e in trail_entries(parts, bootstrap) if e["kind"] == TAKEN]
    assert sorted(e["submission_id"] for e in taken) == sorted(got)
    assert all(e["recipient"] == CUSTOMS and e["digest_sm3"] == sm3_hex(
        payloads[e["submission_id"]]) for e in taken)
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=parts.topics.trail))
    assert report.breaks == ()
    assert _metric(metrics, "portgw_deliveries_taken_total", CUSTOMS) == 2  # since the restart
    assert _metric(metrics, "portgw_deliveries_pulled_total", CUSTOMS) == 2
    assert _metric(metrics, "portgw_deliveries_pending", CUSTOMS) == 0


def _metric(text: str, name: str, recipient: str) -> float:
    found = re.search(rf'^{name}\{{[^}}]*recipient="{re.escape(recipient)}"[^}}]*\}} (\S+)$',
                      text, re.MULTILINE)
    assert found is not None, f"{name} for {recipient} not in the metrics"
    return float(found.group(1))


def test_another_agency_never_sees_the_deliveries(tls: TlsHome) -> None:
    home, pki, parts, bootstrap = tls.home, tls.pki, tls.parts, tls.bootstrap

    async def run() -> dict[str, Any]:
        async with tls.gateway() as url:
            await _submit(home, parts, bootstrap, range(2))
            msa = parts.topics.delivery("cn.msa.sh")
            theirs = (await read_topics(bootstrap, [msa]))[0]  # copied onto customs' topic:
            await _put(bootstrap, dataclasses.replace(  # never handed to customs either
                theirs, topic=parts.topics.delivery(CUSTOMS)))
            mine = await _page(pki, "agency-b", url, wait=0)
            nothing_yet = await _page(pki, "agency-b", url, cursor=mine["cursor"], wait=0)
            waiting = asyncio.create_task(_page(pki, "agency-b", url, cursor=mine["cursor"],
                                                wait=30, busy_too=True))
            meanwhile = await _busy(pki, url)
            await _submit(home, parts, bootstrap, range(2, 3))
            arrived = await waiting
            customs_cursor = Cursor(parts.topics.delivery(CUSTOMS), {0: 0}).encode()
            other = f"{url}/v1/deliveries"
            return {
                "mine": mine, "nothing_yet": nothing_yet, "arrived": arrived,
                "meanwhile": meanwhile,
                "theirs": (await ask(pki, "agency-a", "GET", other)).body,
                "their_cursor": await ask(pki, "agency-a", "GET", other,
                                          params={"cursor": customs_cursor}),
                "mine_to_them": await ask(pki, "agency-a", "GET", other,
                                          params={"cursor": mine["cursor"]}),
                "operator": await ask(pki, "operator", "GET", other),
                "unbound": await ask(pki, "unbound", "GET", other),
                "too_many": await ask(pki, "agency-b", "GET", other, params={"limit": "100000"}),
            }

    seen = asyncio.run(run())
    assert len(seen["mine"]["deliveries"]) == 2 and seen["mine"]["pending"] == 0
    assert all(DeliveryVerifier(parts.keyring, CUSTOMS).check(delivery_from_json(
        seen["mine"]["topic"], item)) for item in seen["mine"]["deliveries"])
    assert seen["nothing_yet"]["deliveries"] == [] and seen["nothing_yet"]["pending"] == 0
    assert len(seen["arrived"]["deliveries"]) == 1  # the long poll waited for it
    assert seen["meanwhile"] == (429, "DELIVERIES_PULL_BUSY")  # one pull at a time
    assert seen["theirs"]["deliveries"] == [] and seen["theirs"]["pending"] == 0
    assert seen["theirs"]["topic"] == parts.topics.delivery(PROVIDER)
    for refused in ("their_cursor", "mine_to_them"):
        assert (seen[refused].status, seen[refused].body["code"]) == (
            400, "DELIVERIES_CURSOR_INVALID")
    assert (seen["operator"].status, seen["operator"].body["code"]) == (403, "HTTP_AGENCY_ONLY")
    assert (seen["unbound"].status, seen["unbound"].body["code"]) == (
        403, "HTTP_CLIENT_UNBOUND")
    assert (seen["too_many"].status, seen["too_many"].body["code"]) == (400, "HTTP_BAD_REQUEST")


async def _busy(pki: Pki, url: str, *, timeout_s: float = 25.0) -> tuple[int, str]:
    """What a second pull of the agency is answered while its long poll waits (asked until
    the door has that poll, which asks again while one of these is under way; nothing
    arrives for it meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await ask(pki, "agency-b", "GET", f"{url}/v1/deliveries")
        if answer.status != 200 or time.monotonic() > deadline:
            return answer.status, answer.body.get("code", "")


async def _page(pki: Pki, client: str, url: str, *, busy_too: bool = False,
                **params: Any) -> dict[str, Any]:
    """A page; `busy_too`: asked again while another pull of the agency is under way."""
    while True:
        answer = await ask(pki, client, "GET", f"{url}/v1/deliveries",
                           params={name: str(value) for name, value in params.items()})
        if not busy_too or answer.status != 429:
            break
    assert answer.status == 200, answer.body
    assert isinstance(answer.body, dict)
    return answer.body


def test_a_forged_delivery_is_refused_by_portgw_receive_and_never_acknowledged(
    tls: TlsHome, tmp_path: Path
) -> None:
    home, pki, parts, bootstrap = tls.home, tls.pki, tls.parts, tls.bootstrap
    topic = parts.topics.delivery(CUSTOMS)

    async def run() -> Ran:
        async with tls.gateway() as url:
            await _submit(home, parts, bootstrap, range(1))
            (real,) = await read_topics(bootstrap, [topic])
            await _put(bootstrap, _altered(parts, real))
            await _submit(home, parts, bootstrap, range(1, 2))
            return await asyncio.to_thread(_receive, home, pki, url, tmp_path / "store")

    ran = asyncio.run(run())
    assert ran.returncode == 1, ran.stderr
    assert "DELIVERY_PROOF_INVALID" in ran.stderr
    on_topic = asyncio.run(read_topics(bootstrap, [topic]))
    assert len(on_topic) == 3
    real = [DeliveryVerifier(parts.keyring, CUSTOMS).check(m) for m in on_topic
            if m.offset != 1]
    assert sorted(line["delivery_id"] for line in _lines(ran)) == sorted(
        d.delivery_id for d in real)
    taken = [e for e in trail_entries(parts, bootstrap) if e["kind"] == TAKEN]
    assert sorted(e["submission_id"] for e in taken) == sorted(d.delivery_id for d in real)


def _altered(parts: GatewayParts, real: StoredMessage) -> StoredMessage:
    """The real delivery with a byte added to its payload, its seal kept."""
    _, value = parts.schemas.decode(real.value)
    return dataclasses.replace(real, value=parts.schemas.encode(
        DELIVERY_SCHEMA, {**value, "payload": value["payload"] + b" "}))


async def _put(bootstrap: str, message: StoredMessage) -> None:
    """What any client of the broker may do: put a record on a topic."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(message.topic, message.value, key=message.key,
                                     headers=list(message.headers))
    finally:
        await producer.stop()


def test_an_acknowledgement_is_taken_only_signed_by_the_recipient_for_what_it_got(
    tls: TlsHome, tmp_path: Path
) -> None:
    home, pki, parts, bootstrap = tls.home, tls.pki, tls.parts, tls.bootstrap

    async def run() -> tuple[dict[str, str], dict[str, Any]]:
        async with tls.gateway() as url:
            await _submit(home, parts, bootstrap, range(1))
            async with PullClient(url, tls=pki.client("agency-b")) as door:
                page = await door.page(None)
                (message,) = page.deliveries
                delivery = DeliveryVerifier(parts.keyring, CUSTOMS).check(message)
                right = Taken.of(delivery.delivery_id, delivery.payload)
                key = home.agency_keys[CUSTOMS]
                good = sign_acknowledgement(CUSTOMS, [right], utc_now(), key)
                attempts = {
                    "bad_signature": dataclasses.replace(good, signature=good.signature[:-1]
                                                         + bytes([good.signature[-1] ^ 1])),
                    "another_agencys_key": sign_acknowledgement(
                        CUSTOMS, [right], utc_now(), home.agency_keys[PROVIDER]),
                    "for_another_agency": sign_acknowledgement(
                        PROVIDER, [right], utc_now(), home.agency_keys[PROVIDER]),
                    "wrong_digest": sign_acknowledgement(
                        CUSTOMS, [Taken(right.delivery_id, sm3_hex(b"other"))], utc_now(),
                        key),
                }
                refused = {name: await _refusal(door, ack, [message])
                           for name, ack in attempts.items()}
                as_another = PullClient(url, tls=pki.client("agency-a"))
                async with as_another:
                    refused["posted_by_another"] = await _refusal(as_another, good, [message])
                refused["offset_beyond_int64"] = await _refusal(
                    door, good, [dataclasses.replace(message, offset=2**63)])
                receipt = await door.acknowledge(good, [message])
        return refused, dict(receipt)

    refused, receipt = asyncio.run(run())
    assert refused == {
        "bad_signature": "403 ACK_SIGNATURE_INVALID",
        "another_agencys_key": "403 ACK_SIGNATURE_INVALID",
        "for_another_agency": "403 ACK_AGENCY_MISMATCH",
        "wrong_digest": "422 ACK_DIGEST_MISMATCH",
        "posted_by_another": "403 ACK_AGENCY_MISMATCH",
        "offset_beyond_int64": "400 ACK_MALFORMED",
    }
    assert receipt["agency"] == CUSTOMS and len(receipt["taken"]) == 1
    _check_signed_by_gateway(parts.keyring, receipt)
    taken = [e for e in trail_entries(parts, bootstrap) if e["kind"] == TAKEN]
    assert len(taken) == 1  # the refused ones left no record


async def _refusal(door: PullClient, ack: Acknowledgement,
                   places: Sequence[StoredMessage]) -> str:
    try:
        await door.acknowledge(ack, places)
    except PullFailed as exc:
        return f"{exc.status} {exc.problem}"
    return "taken"


def _check_signed_by_gateway(keyring: Keyring, receipt: dict[str, Any]) -> None:
    body = {k: v for k, v in receipt.items() if k not in ("key_id", "signature")}
    keyring.verify_seal(base64.b64decode(receipt["signature"]), canonical_json(body),
                        key_id=receipt["key_id"], at=utc_now())

