"""One gateway process (`portgw serve`) against the local broker, end to end.

FAL 5 crew lists of 25 crew, from 20 agencies, each shared with 3 recipients. Agencies
produce to the ingress topic as they would directly (gateway.ingress.client's headers).

1. Throughput: a backlog of signed documents is put on the ingress topic before the gateway
   starts (signing is the agencies' work, not the gateway's); the gateway then works it off,
   and the receipts it gives within a 60 s window are counted. `cpu_ms_per_doc` is the
   gateway process's CPU time (user + system, from /proc) in that window per document.
2. Latency: a fresh broker and gateway; once one document of each sender has gone through,
   documents submitted for 20 s at half the throughput phase 1 measured (`--rate` fixes it
   instead; a fixed rate saturates on a slow day, as this machine's speed drifts by a third
   between days); the time from handing each to the producer to its delivery arriving at a
   recipient's consumer; also the median of the first and of the last quarter, with the
   broker's CPU share while each was submitted (the local broker's cost grows with what it
   holds, and with it the latency: tansu 0.6's storage lists every batch a partition holds
   for each fetch below its end); how many of the machine's cores were busy meanwhile (every
   process, this bench's producer and reader too); then, with nothing coming, the CPU share
   of the gateway and of the broker for 5 s: what their fetches cost while idle.

The references printed from the same run: the pipeline alone in this process on one core
(signature check, XML, Avro, routing, deliveries; no Kafka, no trail, no receipts), and one
hop through a fresh broker alone at the latency phase's rate (a document makes two), with
the broker's CPU share in its first and last quarter: its growth with no gateway at all.
Prints the figures, then one JSON line.

`--profile FILE` runs the throughput phase's gateway in this process under cProfile instead
(the CPU figure then includes the receipt counting and the profiler), writes the stats to FILE
and prints the entries with the most time of their own: where the gateway's time goes.

Targets: `docs_per_s` at least `pipeline_only_docs_per_s` (the service adds no serial cost
over its stages: the trail, receipts and Kafka run beside them), and p99 at most 100 ms at half
throughput.

`--tiny` runs the same phases with 300 documents, a 3 s window, half the throughput for 1 s
and a 0.5 s pipeline reference, and removes its working directory at the end: a check that the
bench still runs (every gateway and broker it starts is stopped), not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

sys.path[0] = str(Path(__file__).resolve().parents[1])

from aiokafka import TopicPartition  # noqa: E402

from contracts import Agency  # noqa: E402
from crypto import SM2PrivateKey  # noqa: E402
from gateway.clock import utc_now  # noqa: E402
from gateway.decide.pipeline import Submission, new_context  # noqa: E402
from gateway.home.config import GatewayConfig  # noqa: E402
from gateway.home.create import ContractSpec, Home, create_home  # noqa: E402
from gateway.kafka.local_broker import LocalBroker  # noqa: E402
from gateway.kafka.names import Topics, submission_headers  # noqa: E402
from gateway.kafka.wire import ensure_topics, new_producer, new_reader, partitions_of  # noqa: E402
from gateway.observe.logs import configure_logging  # noqa: E402
from gateway.parts import GatewayParts  # noqa: E402
from gateway.service import Gateway, run_stages  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (ROOT / "tests" / "data" / "fal5" / "valid_arrival.xml").read_bytes()
# The production topic names: the bench runs its own broker.
TOPICS = Topics()
SENDERS = tuple(f"cn.port.bench{n:02d}" for n in range(20))
RECIPIENTS = ("cn.customs.sh", "cn.msa.sh", "cn.border.sh")
PARTITIONS = 4
TINY = {"docs": 300, "seconds": 3.0, "latency_seconds": 1.0}
TINY_REFERENCE_S = 0.5
T = TypeVar("T")


def agencies() -> list[Agency]:
    senders = [Agency(s, f"Bench terminal {s[-2:]}", "port-operator", "310000", "CN",
                      f"测试码头{s[-2:]}") for s in SENDERS]
    return [*senders,
            Agency("cn.customs.sh", "Shanghai Customs", "customs", "310000", "CN", "上海海关"),
            Agency("cn.msa.sh", "Shanghai MSA", "maritime", "310000", "CN", "上海海事局"),
            Agency("cn.border.sh", "Shanghai Border", "border", "310000", "CN", "上海边检")]


def contracts() -> list[ContractSpec]:
    return [ContractSpec(id=f"fal5-{s}", provider=s, consumers=RECIPIENTS,
                         document_types=("fal5",), scope="cross-department",
                         purpose="crew lists for arrival clearance",
                         legal_basis="IMO FAL Convention Std 2.1") for s in SENDERS]


def document(n: int) -> bytes:
    return SAMPLE.replace(b"<VoyageNumber>0312E<", f"<VoyageNumber>V{n:07d}<".encode(), 1)


def sign_range(args: tuple[dict[str, bytes], int, int]) -> list[tuple[int, bytes]]:
    """Signatures of documents start..stop-1 (in a worker process)."""
    pems, start, stop = args
    keys = {s: SM2PrivateKey.from_pem(p) for s, p in pems.items()}
    return [(n, keys[SENDERS[n % len(SENDERS)]].sign(document(n))) for n in range(start, stop)]


def signed_documents(home: Home, count: int) -> Iterator[tuple[int, bytes]]:
    pems = {s: home.agency_keys[s].to_pem() for s in SENDERS}
    chunks = [(pems, start, min(start + 2000, count)) for start in range(0, count, 2000)]
    with ProcessPoolExecutor(2) as pool:
        for signed in pool.map(sign_range, chunks):
            yield from signed


def headers(n: int, signature: bytes) -> list[tuple[str, bytes]]:
    return submission_headers(f"bench-{n}", SENDERS[n % len(SENDERS)], "fal5-xml", signature)


async def put_backlog(bootstrap: str, home: Home, count: int) -> None:
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        pending = []
        for n, signature in signed_documents(home, count):
            sender = SENDERS[n % len(SENDERS)]
            pending.append(await producer.send(TOPICS.ingress, document(n), key=sender.encode(),
                                               headers=headers(n, signature)))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


# The bench measures the gateway, not the agencies' rate limits (by default 50 documents a
# second each, which a backlog worked off at full speed would reach).
NO_RATE_LIMIT = {"PORTGW__LIMITS__DEFAULT__RATE_PER_S": "0"}


def start_gateway(home: Home, bootstrap: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PORTGW__HTTP__LISTEN": '""', **NO_RATE_LIMIT}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli.main", "--log-level", "warning", "serve",
             "--config", str(home.config_file), "--bootstrap-servers", bootstrap],
            stdout=out, stderr=subprocess.STDOUT, env=env)


def machine_busy_seconds() -> float:
    """CPU time every process of the machine has used since boot (/proc/stat, less idle and
    I/O wait)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def idle_shares(gateway_pid: int, broker_pid: int, seconds: float) -> tuple[float, float]:
    """The CPU share of the gateway (with its worker) and of the broker while no document
    comes: what their polling costs."""
    gateway, broker, began = cpu_seconds(gateway_pid), cpu_seconds(broker_pid), time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - began
    return (cpu_seconds(gateway_pid) - gateway) / took, (cpu_seconds(broker_pid) - broker) / took


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process and of its children (the gateway's signature
    worker), from /proc."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended meanwhile
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def count_receipts(bootstrap: str, cpu: Callable[[], float], window_s: float,
                         total: int) -> tuple[int, float, float]:
    """Receipts given in a window that opens with the first one; (count, seconds, cpu s), the
    CPU time as `cpu()` tells it."""
    consumer = new_reader(bootstrap, fetch_max_wait_ms=20)
    await consumer.start()
    try:
        partitions = [TopicPartition(TOPICS.receipt, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        seen = 0
        while seen == 0:
            seen += sum(len(r) for r in (await consumer.getmany(timeout_ms=200)).values())
        opened, cpu_opened, counted = time.monotonic(), cpu(), 0
        while (elapsed := time.monotonic() - opened) < window_s and seen < total:
            got = sum(len(r) for r in (await consumer.getmany(timeout_ms=200)).values())
            seen += got
            counted += got
        return counted, elapsed, cpu() - cpu_opened
    finally:
        await consumer.stop()


async def paced(count: int, rate: int) -> AsyncIterator[int]:
    """0 to count - 1, each at its time when `rate` a second start now."""
    started = time.monotonic()
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        yield n


class QuarterCpu:
    """The CPU share of a process while the first and while the last quarter of `count`
    paced sends were made: `mark(n)` before send n, and once more after the last."""

    def __init__(self, pid: int, count: int, rate: int) -> None:
        self._pid, self._count, self._quarter_s = pid, count, count // 4 / rate
        self._marks = {0, count // 4, count - count // 4, count}
        self._cpu: dict[int, float] = {}

    def mark(self, n: int) -> None:
        if n in self._marks:
            self._cpu[n] = cpu_seconds(self._pid)

    def shares(self) -> tuple[float, float]:
        cpu, count = self._cpu, self._count
        return ((cpu[count // 4] - cpu[0]) / self._quarter_s,
                (cpu[count] - cpu[count - count // 4]) / self._quarter_s)


@dataclass(frozen=True, slots=True)
class Latencies:
    seconds: list[float]  # in the order submitted (the broker-alone hop: as they arrived)
    broker_cpu: tuple[float, float]  # the broker's CPU share in the first and last quarter
    machine_busy: float = 0.0  # cores busy while they were submitted, every process's

    def quarters_p50_ms(self) -> tuple[float, float]:
        quarter = len(self.seconds) // 4
        return (percentile(sorted(self.seconds[:quarter]), 0.5),
                percentile(sorted(self.seconds[-quarter:]), 0.5))


async def latencies(bootstrap: str, home: Home, rate: int, seconds: float,
                    broker_pid: int) -> Latencies:
    """Submit at `rate`/s; seconds from send to the delivery reaching cn.customs.sh, and the
    broker's CPU share while the first and the last quarter were submitted.

    One document from each sender goes first, untimed, and the clock starts once all of them
    arrived: the gateway has then joined its consumer group and met every topic."""
    count = int(rate * seconds)
    warm_up = range(count, count + len(SENDERS))
    signed = dict(signed_documents(home, warm_up.stop))
    reader = new_reader(bootstrap, fetch_max_wait_ms=5)
    producer = new_producer(bootstrap)
    await reader.start()
    await producer.start()
    sent_at: dict[bytes, float] = {}
    arrived: dict[bytes, float] = {}

    async def submit(n: int) -> bytes:
        key = f"9456783:V{n:07d}:A:CNSHA".encode()
        sent_at[key] = time.monotonic()
        await producer.send(TOPICS.ingress, document(n), key=SENDERS[n % 20].encode(),
                            headers=headers(n, signed[n]))
        return key

    async def read(until: int) -> None:
        while len(arrived) < until:
            for records in (await reader.getmany(timeout_ms=100)).values():
                now = time.monotonic()
                for record in records:
                    arrived.setdefault(record.key, now)

    try:
        await ensure_topics(bootstrap, {TOPICS.delivery("cn.customs.sh"): 1})
        tps = await partitions_of(bootstrap, [TOPICS.delivery("cn.customs.sh")])
        reader.assign(tps)
        for tp in tps:
            reader.seek(tp, 0)
        warm = [await submit(n) for n in warm_up]
        await asyncio.wait_for(read(len(warm)), 60)
        reading = asyncio.create_task(read(len(warm) + count))
        timed = []
        broker_cpu = QuarterCpu(broker_pid, count, rate)
        busy, began = machine_busy_seconds(), time.monotonic()
        async for n in paced(count + 1, rate):  # the last, at the end, marks the end only
            broker_cpu.mark(n)
            if n < count:
                timed.append(await submit(n))
        busy = (machine_busy_seconds() - busy) / (time.monotonic() - began)
        await asyncio.wait_for(reading, 60)
    finally:
        await producer.stop()
        await reader.stop()
    return Latencies([arrived[k] - sent_at[k] for k in timed], broker_cpu.shares(), busy)


async def broker_hop(bootstrap: str, rate: int, seconds: float, broker_pid: int
                     ) -> Latencies:
    """The broker alone: messages of the sample's size produced at `rate`/s and read as the
    gateway reads (5 ms fetch wait); seconds from send to arrival, and the broker's CPU share
    in the first and the last quarter. One of the two hops a document makes (ingress topic,
    then delivery topic)."""
    topic, count = "bench.hop.v1", int(rate * seconds)
    await ensure_topics(bootstrap, {topic: PARTITIONS})
    producer, reader = new_producer(bootstrap), new_reader(bootstrap, fetch_max_wait_ms=5)
    await producer.start()
    await reader.start()
    took: list[float] = []
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        reader.assign(partitions)
        for tp in partitions:
            reader.seek(tp, 0)

        async def read() -> None:
            while len(took) < count:
                for records in (await reader.getmany(timeout_ms=100)).values():
                    now = time.time()
                    took.extend(now - record.timestamp / 1000 for record in records)

        reading = asyncio.create_task(read())
        broker_cpu = QuarterCpu(broker_pid, count, rate)
        async for n in paced(count + 1, rate):
            broker_cpu.mark(n)
            if n < count:
                await producer.send(topic, SAMPLE, key=SENDERS[n % 20].encode())
        await asyncio.wait_for(reading, 60)
    finally:
        await producer.stop()
        await reader.stop()
    return Latencies(took, broker_cpu.shares())


async def profile_gateway(bootstrap: str, home: Home, window_s: float, total: int,
                          out: Path) -> tuple[int, float, float]:
    """count_receipts with the gateway serving in this process under cProfile."""
    configure_logging("warning")
    config = GatewayConfig.load(home.config_file, env={**os.environ, **NO_RATE_LIMIT})
    profile = cProfile.Profile()
    async with Gateway(config, GatewayParts.load(config), bootstrap) as gateway, \
            gateway.serving():
        profile.enable()
        try:
            return await count_receipts(bootstrap, time.process_time, window_s, total)
        finally:
            profile.disable()
            profile.dump_stats(out)


def pipeline_reference(home: Home, seconds: float = 5.0) -> float:
    """Documents per second through the pipeline's stages alone, in this process."""
    os.sched_setaffinity(0, {0})
    config = GatewayConfig.load(home.config_file)
    parts = GatewayParts.load(config)
    gateway = Gateway(config, parts, "unused:9092")
    signed = dict(signed_documents(home, 500))
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        n = done % 500
        ctx = new_context(Submission(f"ref-{done}", SENDERS[n % 20], "fal5-xml", document(n),
                                     signed[n], utc_now()), f"e{done}")
        ctx, why = run_stages(gateway._checks, ctx)
        ctx, why = run_stages(gateway._pipeline, ctx)
        assert why is None, why
        done += 1
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return done / (time.perf_counter() - started)


def percentile(sorted_seconds: list[float], q: float) -> float:
    """In milliseconds."""
    return sorted_seconds[min(int(len(sorted_seconds) * q), len(sorted_seconds) - 1)] * 1000


def run_gateway_phase(work: Callable[[LocalBroker, Path], T], log: Path) -> T:
    with LocalBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap_servers, {TOPICS.ingress: PARTITIONS}))
        return work(broker, log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=150_000, help="backlog size")
    parser.add_argument("--seconds", type=float, default=60.0, help="throughput window")
    parser.add_argument("--rate", type=int, default=None,
                        help="latency phase rate, docs/s (default: half the measured throughput)")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="profile the throughput phase's gateway in this process")
    parser.add_argument("--tiny", action="store_true",
                        help="very small sizes, same code: checks that the bench runs")
    args = parser.parse_args()
    if args.tiny:
        for name, value in TINY.items():
            setattr(args, name, value)
    workdir = Path(tempfile.mkdtemp(prefix="px-bench-e2e-"))
    try:
        run(args, workdir)
    finally:
        if args.tiny:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> None:
    home = create_home(workdir / "home", agencies=agencies(), contracts=contracts(),
                       seal_every=256, seal_interval_ms=500, http_listen="")

    reference = pipeline_reference(home, TINY_REFERENCE_S if args.tiny else 5.0)
    print(f"reference: the pipeline's stages alone, one core: {reference:,.0f} docs/s")

    def throughput(broker: LocalBroker, log: Path) -> tuple[int, float, float]:
        bootstrap = broker.bootstrap_servers
        began = time.monotonic()
        asyncio.run(put_backlog(bootstrap, home, args.docs))
        print(f"backlog: {args.docs:,} signed documents on the ingress topic "
              f"in {time.monotonic() - began:.0f} s")
        if args.profile is not None:
            return asyncio.run(profile_gateway(bootstrap, home, args.seconds, args.docs,
                                               args.profile))
        gateway = start_gateway(home, bootstrap, log)
        try:
            return asyncio.run(count_receipts(bootstrap, lambda: cpu_seconds(gateway.pid),
                                              args.seconds, args.docs))
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(60)

    counted, elapsed, cpu = run_gateway_phase(throughput, workdir / "throughput.log")
    if args.profile is not None:
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(30)
    docs_per_s = counted / elapsed
    print(f"throughput: {counted:,} receipts in {elapsed:.1f} s = {docs_per_s:,.0f} docs/s; "
          f"gateway CPU {cpu:.1f} s = {cpu * 1000 / max(counted, 1):.2f} ms/doc "
          f"(target >= the pipeline alone, {reference:,.0f} docs/s: "
          f"{docs_per_s / reference:.2f} of it)")
    rate = args.rate or max(1, round(docs_per_s / 2))

    def latency(broker: LocalBroker, log: Path) -> tuple[Latencies, tuple[float, float]]:
        assert broker.pid is not None
        gateway = start_gateway(home, broker.bootstrap_servers, log)
        try:
            measured = asyncio.run(latencies(broker.bootstrap_servers, home, rate,
                                             args.latency_seconds, broker.pid))
            time.sleep(0.5)  # the last deliveries' trail records and receipts
            return measured, idle_shares(gateway.pid, broker.pid, 1.0 if args.tiny else 5.0)
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(60)

    measured, (idle_gateway, idle_broker) = run_gateway_phase(latency, workdir / "latency.log")
    ordered = sorted(measured.seconds)
    p50, p99 = percentile(ordered, 0.5), percentile(ordered, 0.99)
    print(f"latency at {rate}/s ({'as asked' if args.rate else 'half the throughput'}), "
          f"submit -> delivery: p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p99 <= 100 ms)")
    first_p50, last_p50 = measured.quarters_p50_ms()
    first_cpu, last_cpu = measured.broker_cpu
    print(f"  first quarter of the run: p50 {first_p50:.1f} ms, broker CPU {first_cpu:.0%} of a "
          f"core; last quarter: p50 {last_p50:.1f} ms, broker CPU {last_cpu:.0%} (the local "
          f"broker's cost grows with what it holds)")
    print(f"  the machine: {measured.machine_busy:.2f} of its {os.cpu_count()} cores busy "
          f"meanwhile (every process: gateway, worker, broker, this bench); idle, the gateway "
          f"took {idle_gateway:.0%} of a core and the broker {idle_broker:.0%} (their polling)")
    with LocalBroker() as broker:
        assert broker.pid is not None
        alone = asyncio.run(broker_hop(broker.bootstrap_servers, rate,
                                       args.latency_seconds, broker.pid))
    hop = sorted(alone.seconds)
    alone_first_cpu, alone_last_cpu = alone.broker_cpu
    print(f"reference: one hop through the broker alone at {rate}/s (a document makes "
          f"two): p50 {percentile(hop, 0.5):.1f} ms, p99 {percentile(hop, 0.99):.1f} ms; "
          f"broker CPU {alone_first_cpu:.0%} of a core in the first quarter, "
          f"{alone_last_cpu:.0%} in the last")
    logged = workdir / "throughput.log"  # none when the gateway ran in this process
    errors = [line for line in (logged.read_text() if logged.exists() else "").splitlines()
              if re.search(r"error|Traceback", line)]
    if errors:
        print(f"gateway log had {len(errors)} error lines, first: {errors[0][:200]}")
    print(json.dumps({"docs_per_s": round(docs_per_s), "latency_rate_per_s": rate,
                      "p50_ms": round(p50, 1),
                      "p99_ms": round(p99, 1),
                      "broker_hop_p50_ms": round(percentile(hop, 0.5), 1),
                      "broker_hop_p99_ms": round(percentile(hop, 0.99), 1),
                      "cpu_ms_per_doc": round(cpu * 1000 / max(counted, 1), 2),
                      "broker_cpu_share_first_quarter": round(first_cpu, 2),
                      "broker_cpu_share_last_quarter": round(last_cpu, 2),
                      "broker_alone_cpu_share_first_quarter": round(alone_first_cpu, 2),
                      "broker_alone_cpu_share_last_quarter": round(alone_last_cpu, 2),
                      "machine_busy_cores_at_latency_rate": round(measured.machine_busy, 2),
                      "idle_gateway_cpu_share": round(idle_gateway, 3),
                      "idle_broker_cpu_share": round(idle_broker, 3),
                      "pipeline_only_docs_per_s": round(reference)}))


if __name__ == "__main__":
    main()
