"""Push on the real broker to real HTTPS endpoints run here, on loopback (certificates made
here, as tests/integration/test_http_tls.py makes them): every delivery once and in order to
an endpoint that fails for a while, a slow endpoint holding up no other, a restart of the
gateway sending nothing acknowledged again, a certificate that is not the one pinned getting
nothing, and a delivery past its retry horizon dead-lettered with its code."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from crypto import Keyring, SM2PrivateKey
from gateway.deliveries.acknowledgements import Taken, sign_acknowledgement
from gateway.deliveries.proof import DELIVERY_PROOF_INVALID, DeliveryRefused, DeliveryVerifier
from gateway.deliveries.push_wire import pushed_messages
from gateway.home.create import DEMO_AGENCIES, Home, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_EVENT_ID, Topics
from gateway.kafka.wire import new_producer, read_topics
from gateway.parts import GatewayParts
from gateway.publish.push import PUSH_HORIZON_PASSED, PUSH_TLS_PIN_MISMATCH
from gateway.trail.taken import TAKEN, taken_chain
from replay.verify import verify_kafka
from tests.integration.service_support import (
    RECIPIENTS,
    Document,
    dead_letters,
    metric_total,
    produce_ingress,
    running_gateway,
    signed_arrivals,
    wait_until_metric,
)
from tests.integration.support import gateway_parts, trail_entries
from tests.integration.test_http_tls import Pki, make_pki

pytestmark = pytest.mark.integration

CUSTOMS, MSA = RECIPIENTS
DEADLINE_S = 120.0


@dataclass
class Endpoint:
    """A recipient's HTTPS endpoint: it verifies each delivery's proof, keeps what it took
    in the order it took it, and answers with its signed acknowledgement; it may refuse
    (503) its first `failing` requests, or hold every answer until `release` is set."""

    agency: str
    key: SM2PrivateKey
    verifier: DeliveryVerifier
    failing: int = 0
    release: asyncio.Event | None = None
    requests: int = 0
    taken: list[str] = field(default_factory=list)  # event ids, in the order taken
    refused: list[str] = field(default_factory=list)
    bodies: list[tuple[str, bytes]] = field(default_factory=list)  # content type, body

    sizes: list[int] = field(default_factory=list)  # deliveries a request, as acknowledged

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        try:
            deliveries = [self.verifier.check(message)
                          for message in pushed_messages(request.headers, body)]
        except DeliveryRefused as exc:
            self.refused.append(exc.code)
            return web.Response(status=400)
        if self.requests <= self.failing:
            return web.Response(status=503)
        if self.release is not None:
            await self.release.wait()
        self.taken.extend(delivery.event_id for delivery in deliveries)
        self.bodies.append((request.content_type, body))
        self.sizes.append(len(deliveries))
        ack = sign_acknowledgement(
            self.agency, tuple(Taken.of(d.delivery_id, d.payload) for d in deliveries),
            datetime.now(UTC), self.key)
        return web.Response(body=ack.to_json(), content_type="application/json")


def server_context(pki: Pki) -> ssl.SSLContext:
    """The endpoint's TLS: its certificate for 127.0.0.1, the gateway's client certificate
    required (issued by the test CA)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki.directory / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(pki.directory / "server.pem", pki.directory / "server.key")
    return context


@asynccontextmanager
async def serving(endpoint: Endpoint, context: ssl.SSLContext) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/deliveries", endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        yield f"https://127.0.0.1:{runner.addresses[0][1]}/deliveries"
    finally:
        await runner.cleanup()


def push_config(home: Home, pki: Pki, recipients: dict[str, dict[str, object]]) -> None:
    """`[push]` in the home's configuration: the gateway's client certificate, and each
    recipient's table."""
    lines = ["", "[push]", f'client_cert_file = "{pki.directory / "agency-a.pem"}"',
             f'client_key_file = "{pki.directory / "agency-a.key"}"']
    for agency, table in recipients.items():
        lines.append(f'[push.recipients."{agency}"]')
        lines += [f"{name} = {value!r}" if isinstance(value, str) else f"{name} = {value}"
                  for name, value in table.items()]
    with home.config_file.open("a", encoding="utf-8") as config:
        config.write("\n".join(lines).replace("'", '"') + "\n")


def recipient(url: str, pki: Pki, **settings: object) -> dict[str, object]:
    return {"url": url, "server_sha256": pki.fingerprints["server"],
            "backoff_initial_s": 0.05, "backoff_max_s": 0.5, **settings}


def endpoint(home: Home, agency: str, **kwargs: object) -> Endpoint:
    keyring = Keyring.from_toml(home.path / "keyring.toml")
    return Endpoint(agency, home.agency_keys[agency], DeliveryVerifier(keyring, agency),
                    **kwargs)  # type: ignore[arg-type]  # the dataclass's own fields


async def wait_until(done: Callable[[], bool], why: Callable[[], str], *,
                     timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, why()
        await asyncio.sleep(0.05)


async def topic_order(bootstrap: str, topics: Topics, agency: str) -> dict[str, tuple[int, int]]:
    """Each delivery's (partition, offset) on the agency's topic, by event id."""
    return {m.header(H_EVENT_ID).decode(): (m.partition, m.offset)  # type: ignore[union-attr]
            for m in await read_topics(bootstrap, [topics.delivery(agency)])}


def in_topic_order(taken: list[str], places: dict[str, tuple[int, int]]) -> bool:
    """Whether, partition by partition, deliveries were taken in their topic's order."""
    last: dict[int, int] = {}
    for event_id in taken:
        partition, offset = places[event_id]
        if offset <= last.get(partition, -1):
            return False
        last[partition] = offset
    return True


# -- an endpoint that fails for a while --------------------------------------------------------


def test_a_recovering_endpoint_gets_every_delivery_once_in_order(
    broker: LocalBroker, topics: Topics, tmp_path: Path
) -> None:
    """The MSA takes its deliveries in its own format (FAL 1 XML, rendered by the adapter),
    pushed `native`: the XML document itself, its proof in the headers."""
    agencies = tuple(dataclasses.replace(agency, delivery_format="fal1-xml")
                     if agency.id == MSA else agency for agency in DEMO_AGENCIES)
    home = create_home(tmp_path / "home", agencies=agencies, seal_every=4,
                       seal_interval_ms=100, topic_prefix=topics.prefix)
    asyncio.run(_recovering(broker.bootstrap_servers, home, topics, make_pki(tmp_path / "pki")))


async def _recovering(bootstrap: str, home: Home, topics: Topics, pki: Pki) -> None:
    customs = endpoint(home, CUSTOMS, failing=5)
    msa = endpoint(home, MSA)
    docs = signed_arrivals(home, 12)
    async with serving(customs, server_context(pki)) as customs_url, \
            serving(msa, server_context(pki)) as msa_url:
        push_config(home, pki, {CUSTOMS: recipient(customs_url, pki),
                                MSA: recipient(msa_url, pki, format="native")})
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap) as running:
            await produce_ingress(bootstrap, topics, docs, acked=[])
            await wait_until(lambda: len(customs.taken) == len(docs) == len(msa.taken),
                             lambda: f"taken: {len(customs.taken)}, {len(msa.taken)}")
            async with aiohttp.ClientSession() as session:
                await wait_until_metric(session, running.ops_url,
                                        "portgw_deliveries_taken_total", 2 * len(docs))
                failures = await metric_total(session, running.ops_url,
                                              "portgw_push_failures_total")
    for taken in (customs.taken, msa.taken):
        assert sorted(Counter(taken).values()) == [1] * len(docs)
    assert customs.requests == len(docs) + 5 and failures == 5
    assert not customs.refused and not msa.refused
    assert {kind for kind, _ in customs.bodies} == {"application/vnd.px.delivery+avro"}
    assert {kind for kind, _ in msa.bodies} == {"application/xml"}
    assert all(body.startswith(b"<") for _, body in msa.bodies)
    for agency, taken in ((CUSTOMS, customs.taken), (MSA, msa.taken)):
        places = await topic_order(bootstrap, topics, agency)
        assert set(taken) == set(places)
        assert in_topic_order(taken, places)
    await taken_on_trail(bootstrap, parts, {CUSTOMS: customs.taken, MSA: msa.taken})


async def taken_on_trail(bootstrap: str, parts: GatewayParts, taken: dict[str, list[str]]
                         ) -> None:
    """Each delivery taken is one TAKEN record (on the chain of the gateway's recorder, its
    lowest ingress partition's), and the trail verifies."""
    records = [e for e in await asyncio.to_thread(trail_entries, parts, bootstrap)
               if e["kind"] == TAKEN]
    assert sorted((e["recipient"], e["event_id"], e["chain"]) for e in records) == \
        sorted((agency, event_id, taken_chain(0))
               for agency, event_ids in taken.items() for event_id in event_ids)
    report = await verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                trail_topic=parts.topics.trail)
    assert report.breaks == ()


# -- a slow endpoint ---------------------------------------------------------------------------


def test_a_slow_endpoint_does_not_hold_up_another(
    broker: LocalBroker, home: Home, topics: Topics, tmp_path: Path
) -> None:
    asyncio.run(_slow(broker.bootstrap_servers, home, topics, make_pki(tmp_path / "pki")))


async def _slow(bootstrap: str, home: Home, topics: Topics, pki: Pki) -> None:
    held = asyncio.Event()
    msa = endpoint(home, MSA, release=held)  # answers nothing until released
    customs = endpoint(home, CUSTOMS)
    docs = signed_arrivals(home, 8)
    async with serving(customs, server_context(pki)) as customs_url, \
            serving(msa, server_context(pki)) as msa_url:
        validated = {"server_sha256": "", "ca_file": str(pki.directory / "ca.pem")}
        push_config(home, pki, {CUSTOMS: recipient(customs_url, pki, format="json",
                                                   **validated),  # a CA, no pin
                                MSA: recipient(msa_url, pki, timeout_s=300,
                                               max_in_flight=2)})
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap) as running, \
                aiohttp.ClientSession() as session:
            await produce_ingress(bootstrap, topics, docs, acked=[])
            await wait_until(lambda: len(customs.taken) == len(docs) and msa.requests >= 1,
                             lambda: f"customs took {len(customs.taken)} of {len(docs)}, "
                                     f"the MSA was asked {msa.requests} times")
            assert msa.taken == []  # still held: customs got all its deliveries meanwhile
            assert 1 <= msa.requests <= 2  # one request a partition, max_in_flight at most
            # All the MSA's are pending, none of customs'; the oldest waits.
            await wait_until_metric(session, running.ops_url,
                                    "portgw_push_pending_deliveries", len(docs), exactly=True)
            await wait_until_metric(session, running.ops_url,
                                    "portgw_push_oldest_pending_seconds", 0.001)
            held.set()
            await wait_until(lambda: len(msa.taken) == len(docs),
                             lambda: f"the MSA took {len(msa.taken)} of {len(docs)}")
    assert msa.requests == len(docs) and not customs.refused and not msa.refused


# -- a restart of the gateway ------------------------------------------------------------------


def test_a_recipient_taking_batches_gets_every_delivery_once_in_order(
    broker: LocalBroker, home: Home, topics: Topics, tmp_path: Path
) -> None:
    """Deliveries waiting on the topic go several a request (`batch`), each request retried
    whole until its one acknowledgement names them all; each is one TAKEN record."""
    asyncio.run(_batches(broker.bootstrap_servers, home, topics, make_pki(tmp_path / "pki")))


async def _batches(bootstrap: str, home: Home, topics: Topics, pki: Pki) -> None:
    customs = endpoint(home, CUSTOMS, failing=1)
    docs = signed_arrivals(home, 12)
    config, parts = gateway_parts(home)
    async with running_gateway(config, parts, bootstrap):  # no push yet: they wait
        await produce_ingress(bootstrap, topics, docs, acked=[])
        await wait_until_delivered(bootstrap, topics, CUSTOMS, len(docs))
    async with serving(customs, server_context(pki)) as customs_url:
        push_config(home, pki, {CUSTOMS: recipient(customs_url, pki, batch=5, format="json")})
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap):
            await wait_until(lambda: len(customs.taken) == len(docs),
                             lambda: f"customs took {len(customs.taken)} of {len(docs)}")
    assert sorted(Counter(customs.taken).values()) == [1] * len(docs)
    assert max(customs.sizes) > 1 and max(customs.sizes) <= 5, customs.sizes
    assert customs.requests == len(customs.sizes) + 1  # the one refused, sent again whole
    assert {kind for kind, _ in customs.bodies} == {"multipart/mixed"}
    places = await topic_order(bootstrap, topics, CUSTOMS)
    assert in_topic_order(customs.taken, places)
    await taken_on_trail(bootstrap, parts, {CUSTOMS: customs.taken})


async def wait_until_delivered(bootstrap: str, topics: Topics, agency: str, count: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while len(found := await topic_order(bootstrap, topics, agency)) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} deliveries"
        await asyncio.sleep(0.2)


def test_a_restarted_gateway_sends_nothing_acknowledged_again(
    broker: LocalBroker, home: Home, topics: Topics, tmp_path: Path
) -> None:
    asyncio.run(_restart(broker.bootstrap_servers, home, topics, make_pki(tmp_path / "pki")))


async def _restart(bootstrap: str, home: Home, topics: Topics, pki: Pki) -> None:
    customs = endpoint(home, CUSTOMS)
    first, then = signed_arrivals(home, 6), signed_arrivals(home, 5, start=6)
    async with serving(customs, server_context(pki)) as customs_url:
        push_config(home, pki, {CUSTOMS: recipient(customs_url, pki)})
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap):
            await taken_when_submitted(bootstrap, topics, first, customs)
        await produce_ingress(bootstrap, topics, then, acked=[])  # while no gateway runs
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap):
            await taken_when_submitted(bootstrap, topics, [], customs,
                                       count=len(first) + len(then))
    await each_sent_once_in_order(bootstrap, topics, parts, customs)


async def taken_when_submitted(bootstrap: str, topics: Topics, docs: list[Document],
                               taken_by: Endpoint, *, count: int | None = None) -> None:
    """Submits `docs`, then waits until the endpoint took `count` deliveries in all (by
    default as many as it had, and one for each of `docs`)."""
    wanted = len(taken_by.taken) + len(docs) if count is None else count
    await produce_ingress(bootstrap, topics, docs, acked=[])
    await wait_until(lambda: len(taken_by.taken) == wanted,
                     lambda: f"took {len(taken_by.taken)} of {wanted}")


async def each_sent_once_in_order(bootstrap: str, topics: Topics, parts: GatewayParts,
                                  customs: Endpoint) -> None:
    """Customs was sent each of its deliveries once, took them in their topic's order, and
    each is a TAKEN record."""
    assert customs.requests == len(customs.taken)  # none sent twice
    places = await topic_order(bootstrap, topics, CUSTOMS)
    assert sorted(customs.taken) == sorted(places) and in_topic_order(customs.taken, places)
    await taken_on_trail(bootstrap, parts, {CUSTOMS: customs.taken})


# -- a certificate not pinned; the retry horizon -----------------------------------------------


def test_an_endpoint_not_pinned_gets_nothing_and_its_deliveries_are_dead_lettered(
    broker: LocalBroker, home: Home, topics: Topics, tmp_path: Path
) -> None:
    asyncio.run(_not_pinned(broker.bootstrap_servers, home, topics, make_pki(tmp_path / "pki"),
                            make_pki(tmp_path / "other-pki")))


async def _not_pinned(bootstrap: str, home: Home, topics: Topics, pki: Pki, other: Pki) -> None:
    impostor = endpoint(home, MSA)  # the MSA's address, another server's certificate
    customs = endpoint(home, CUSTOMS)
    docs = signed_arrivals(home, 3)
    async with serving(customs, server_context(pki)) as customs_url, \
            serving(impostor, server_context(other)) as msa_url:
        push_config(home, pki, {CUSTOMS: recipient(customs_url, pki),
                                MSA: recipient(msa_url, pki, retry_horizon_s=1.5)})
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap) as running, \
                aiohttp.ClientSession() as session:
            await produce_ingress(bootstrap, topics, docs, acked=[])
            await wait_until(lambda: len(customs.taken) == len(docs),
                             lambda: f"customs took {len(customs.taken)} of {len(docs)}")
            await forge_one(bootstrap, topics.delivery(CUSTOMS))
            await wait_until_metric(session, running.ops_url,
                                    "portgw_push_dead_lettered_total", len(docs) + 1)
            failures = await metric_total(session, running.ops_url,
                                          "portgw_push_failures_total")
    assert impostor.requests == 0 and impostor.taken == []
    assert failures >= len(docs)
    assert customs.requests == len(docs) and not customs.refused  # the forgery was not sent
    letters = list((await dead_letters(bootstrap, topics, parts.schemas)).values())
    past = [letter for letter in letters if letter["error_code"] == PUSH_HORIZON_PASSED]
    places = await topic_order(bootstrap, topics, MSA)
    assert {letter["event_id"] for letter in past} == set(places)
    for letter in past:
        assert PUSH_TLS_PIN_MISMATCH in letter["error_message"]
        assert letter["format_id"] == "px-delivery"
    assert [letter["error_code"] for letter in letters if letter not in past] == \
        [DELIVERY_PROOF_INVALID]


async def forge_one(bootstrap: str, topic: str) -> None:
    """A copy of the topic's first delivery, its payload altered, its seal kept, put on the
    topic as anyone who may write to it could."""
    original = (await read_topics(bootstrap, [topic]))[0]
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, original.value[:-1] + b"!", key=original.key,
                                     headers=list(original.headers),
                                     partition=original.partition)
    finally:
        await producer.stop()
