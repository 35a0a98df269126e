"""Acknowledgements taken by two gateway processes, on the real broker: each process records
its TAKEN records on a chain of its own (the chain of an ingress partition it owns), so the
trail verifies, on the broker and in the archive; a repeated acknowledgement is answered
with its first receipt and recorded once; one signed outside the freshness window is
refused (ACK_STALE)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.clock import utc_now
from gateway.deliveries.acknowledgements import (
    ACK_STALE,
    Acknowledgement,
    Taken,
    sign_acknowledgement,
)
from gateway.deliveries.proof import DeliveryVerifier
from gateway.deliveries.pull_client import PullClient, PullFailed
from gateway.home.create import Home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import StoredMessage
from gateway.parts import GatewayParts
from gateway.trail.archive import list_segments
from gateway.trail.taken import TAKEN, taken_chain
from replay import verify_kafka
from replay.archive import verify_archive
from tests.integration.service_support import (
    RECIPIENTS,
    GatewayProcess,
    partitions_split,
    produce_ingress,
    signed_arrivals,
    wait_ready,
)
from tests.integration.support import gateway_parts, trail_entries

CUSTOMS = RECIPIENTS[0]
DOCS = 8


async def all_deliveries(url: str) -> tuple[StoredMessage, ...]:
    """Every delivery to customs on its topic, through the door at `url`, once all are."""
    deadline = time.monotonic() + 120
    async with PullClient(url, sender=CUSTOMS) as door:
        while True:
            page = await door.page(None, limit=100, wait_s=1.0)
            if len(page.deliveries) >= DOCS:
                return page.deliveries
            assert time.monotonic() < deadline, f"{len(page.deliveries)} of {DOCS} deliveries"


def signed(home: Home, parts: GatewayParts, messages: Sequence[StoredMessage], *,
           ago: timedelta = timedelta(0)) -> Acknowledgement:
    """Customs' acknowledgement of `messages`, signed `ago` before now."""
    verifier = DeliveryVerifier(parts.keyring, CUSTOMS)
    deliveries = [verifier.check(m) for m in messages]
    return sign_acknowledgement(CUSTOMS, [Taken.of(d.delivery_id, d.payload)
                                          for d in deliveries],
                                utc_now() - ago, home.agency_keys[CUSTOMS])


async def acknowledge(url: str, ack: Acknowledgement, messages: Sequence[StoredMessage]
                      ) -> dict[str, Any]:
    """Customs posts `ack` of `messages` at the door at `url`; the signed receipt."""
    async with PullClient(url, sender=CUSTOMS) as door:
        return dict(await door.acknowledge(ack, messages))


def unsigned(receipt: dict[str, Any]) -> dict[str, Any]:
    """A receipt without its signature (an SM2 signature differs at each signing)."""
    return {name: value for name, value in receipt.items() if name != "signature"}


def test_two_gateway_processes_record_taken_on_chains_of_their_own(
    broker: LocalBroker, home: Home, tmp_path: Path
) -> None:
    asyncio.run(_two_recording(broker.bootstrap_servers, home, tmp_path))


async def _two_recording(bootstrap: str, home: Home, tmp_path: Path) -> None:
    config, parts = gateway_parts(home)
    with GatewayProcess(home, bootstrap, tmp_path / "gateway-a.log") as a, \
            GatewayProcess(home, bootstrap, tmp_path / "gateway-b.log") as b:
        async with aiohttp.ClientSession() as session:
            for gw in (a, b):
                await wait_ready(session, gw.url, alive=gw.alive)
        await partitions_split(a, b)
        await produce_ingress(bootstrap, parts.topics, signed_arrivals(home, DOCS), acked=[],
                              partitions=4)
        messages = await all_deliveries(a.url)
        half = DOCS // 2
        ack = signed(home, parts, messages[:half])
        first = await acknowledge(a.url, ack, messages[:half])
        second = await acknowledge(b.url, signed(home, parts, messages[half:]),
                                   messages[half:])
        again = await acknowledge(a.url, ack, messages[:half])
        with pytest.raises(PullFailed) as stale:
            await acknowledge(a.url, signed(home, parts, messages[:1],
                                            ago=timedelta(minutes=11)), messages[:1])
        owners = (min(a.owned_partitions()), min(b.owned_partitions()))
        assert [gw.stop() for gw in (a, b)] == [0, 0], a.log_tail() + b.log_tail()

    assert (stale.value.status, stale.value.problem) == (422, ACK_STALE)
    assert unsigned(again) == unsigned(first)  # the first receipt, nothing recorded again
    chains = [{r["chain"] for r in receipt["taken"]} for receipt in (first, second)]
    assert chains == [{taken_chain(owners[0])}, {taken_chain(owners[1])}]
    taken = [e for e in await asyncio.to_thread(trail_entries, parts, bootstrap)
             if e["kind"] == TAKEN]
    assert sorted((e["chain"], e["submission_id"]) for e in taken) == sorted(
        (r["chain"], r["delivery_id"]) for receipt in (first, second) for r in receipt["taken"])
    assert len(taken) == DOCS
    report = await verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                trail_topic=parts.topics.trail)
    assert report.ok, report.breaks
    assert config.archive_dir is not None  # both processes archive there, chain by chain
    archived = verify_archive(config.archive_dir, parts.schemas, parts.keyring)
    assert archived.ok, archived.breaks
    assert {taken_chain(p) for p in owners} <= set(list_segments(config.archive_dir))
