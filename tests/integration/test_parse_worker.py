"""The parse worker of a running `portgw serve` (gateway/decide/ahead.py), as an operator sees it:
killed mid-stream, it is replaced, every document is decided exactly once, and `/readyz`
says "not ready" while no worker can take work; SIGTERM stops the gateway and its worker
in seconds; a killed gateway leaves no worker behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from gateway.home.create import Home
from gateway.kafka.local_broker import LocalBroker
from tests.integration.service_support import (
    RECIPIENTS,
    GatewayProcess,
    ReceiptWatcher,
    produce_ingress,
    raw_deliveries,
    signed_arrivals,
    wait_ready,
)
from tests.integration.support import gateway_parts

pytestmark = pytest.mark.integration


def worker_pids(parent: int) -> list[int]:
    """The parse workers whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            command_line = (entry / "cmdline").read_bytes()
            if ppid == parent and b"gateway.decide.ahead_worker" in command_line:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def one_worker(gateway: GatewayProcess, timeout_s: float = 60.0) -> int:
    assert gateway.process is not None
    deadline = time.monotonic() + timeout_s
    while len(pids := worker_pids(gateway.process.pid)) != 1:
        assert time.monotonic() < deadline, f"workers: {pids}"
        await asyncio.sleep(0.05)
    return pids[0]


@dataclass
class ReadinessLog:
    """Every /readyz answer, with when it came: (monotonic time, status, what is not ready)."""

    answers: list[tuple[float, int, list[str]]] = field(default_factory=list)

    def after(self, t: float) -> list[tuple[float, int, list[str]]]:
        return [a for a in self.answers if a[0] > t]


@contextlib.asynccontextmanager
async def polling_readiness(session: aiohttp.ClientSession, url: str
                            ) -> AsyncIterator[ReadinessLog]:
    log = ReadinessLog()

    async def poll() -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/readyz") as response:
                    body = await response.json()
                    log.answers.append((time.monotonic(), response.status,
                                        body.get("not_ready", [])))
            await asyncio.sleep(0.005)

    task = asyncio.create_task(poll())
    try:
        yield log
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_worker_killed_mid_stream_is_replaced_and_every_document_decided_once(
        broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    asyncio.run(_worker_killed_mid_stream(broker, home, tmp_path))


async def _worker_killed_mid_stream(broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    _, parts = gateway_parts(home)
    bootstrap = broker.bootstrap_servers
    docs = signed_arrivals(home, 300)
    acked: list[str] = []
    with GatewayProcess(home, bootstrap, tmp_path / "gateway.log") as gateway:
        async with aiohttp.ClientSession() as session, \
                ReceiptWatcher(bootstrap, parts.topics, parts.schemas) as watcher:
            await wait_ready(session, gateway.url, alive=gateway.alive)
            first = await one_worker(gateway)
            async with polling_readiness(session, gateway.url) as readiness:
                producing = asyncio.create_task(produce_ingress(bootstrap, parts.topics, docs,
                                                                acked=acked, partitions=4))
                while len(watcher.receipts) < 30:
                    assert gateway.alive(), gateway.log_tail()
                    await asyncio.sleep(0.01)
                killed_at = time.monotonic()
                os.kill(first, signal.SIGKILL)
                decided_before = len(watcher.receipts)
                await producing
                receipts = await watcher.wait_for(acked)
                second = await one_worker(gateway)
                await wait_ready(session, gateway.url, alive=gateway.alive)
        assert gateway.stop() == 0, gateway.log_tail()

    print(f"worker killed after {decided_before} of {len(docs)} receipts")
    assert decided_before < len(docs), "the kill came after the stream was decided"
    assert second != first
    assert len(receipts) == len(docs)
    assert {r.receipt.status for r in receipts.values()} == {"accepted"}
    accepted = {r.receipt.event_id for r in receipts.values()}
    assert len(accepted) == len(docs)
    for recipient in RECIPIENTS:
        delivered = await raw_deliveries(bootstrap, parts.topics, recipient)
        assert delivered.keys() == accepted and set(delivered.values()) == {1}, recipient
    after_kill = readiness.after(killed_at)
    assert any(status == 503 and "parser" in names for _, status, names in after_kill), \
        "/readyz never said that no parser could take work"
    entries = gateway.log_entries()
    assert any(e.get("event") == "ahead.worker_lost" and e.get("why") == "died"
               for e in entries)


def test_sigterm_stops_the_gateway_and_its_worker_in_seconds(
        broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    asyncio.run(_sigterm(broker, home, tmp_path))


async def _sigterm(broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    _, parts = gateway_parts(home)
    bootstrap = broker.bootstrap_servers
    acked: list[str] = []
    with GatewayProcess(home, bootstrap, tmp_path / "gateway.log") as gateway:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, gateway.url, alive=gateway.alive)
        worker = await one_worker(gateway)
        producing = asyncio.create_task(produce_ingress(bootstrap, parts.topics,
                                                        signed_arrivals(home, 200),
                                                        acked=acked, partitions=4))
        while len(acked) < 50:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        status = await asyncio.to_thread(gateway.stop, 30.0)
        took = time.monotonic() - started
        await producing
    print(f"stopped in {took:.1f} s")
    assert status == 0, gateway.log_tail()
    assert took < 20, "SIGTERM took longer than a busy machine needs"
    assert not alive(worker)


def test_a_killed_gateway_leaves_no_worker_behind(
        broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    asyncio.run(_killed(broker, home, tmp_path))


async def _killed(broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    with GatewayProcess(home, broker.bootstrap_servers, tmp_path / "gateway.log") as gateway:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, gateway.url, alive=gateway.alive)
        worker = await one_worker(gateway)
        gateway.kill()
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not alive(worker)
