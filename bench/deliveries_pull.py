"""An agency taking its deliveries over HTTP pull, against reading its delivery topic itself.

A gateway process (`portgw serve`, its door on plain loopback HTTP, as a local home has it)
works off a backlog of signed FAL 1 arrivals, each delivered to cn.customs.sh (and
cn.msa.sh). Once every delivery to cn.customs.sh is on its topic:

- the reference, from the same run: `portgw receive` reading the topic with a Kafka consumer
  (verified, de-duplicated, as JSON lines);
- `portgw receive --pull`: the same deliveries through `GET /v1/deliveries` (pages of
  `--page-size`), each verified and written alike, and each page acknowledged with one
  signed acknowledgement that the gateway checks and records in its trail as TAKEN.

Both are separate processes with a store of their own, writing to /dev/null; the figure is
deliveries per second of wall time, the command's start included. Prints the figures, then
one JSON line.

Run: .venv/bin/python bench/deliveries_pull.py [--tiny] [--docs N] [--page-size N]

`--tiny` uses 40 documents and removes its working directory at the end: a check that the
bench still runs (its gateway and broker are stopped), not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from gateway.home.create import Home, create_home  # noqa: E402
from gateway.kafka.local_broker import LocalBroker  # noqa: E402
from gateway.kafka.names import Topics, submission_headers  # noqa: E402
from gateway.kafka.wire import ensure_topics, new_producer, read_topics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (ROOT / "tests" / "data" / "fal1" / "valid_arrival.xml").read_bytes()
TOPICS = Topics()  # the production names: the bench runs its own broker
SENDER = "cn.port.sh"
RECIPIENT = "cn.customs.sh"
FULL_DOCS, TINY_DOCS = 3000, 40
RECEIVED = re.compile(r"(\d+) deliver(?:y|ies) received, (\d+) refused")


@dataclass(frozen=True, slots=True)
class Run:
    deliveries: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.deliveries / self.seconds


def document(n: int) -> bytes:
    """The sample arrival with its own document and voyage numbers (its own business key)."""
    numbered = SAMPLE.replace(b"GD-CNSHA-2026-000451", b"GD-CNSHA-2026-%06d" % n)
    return numbered.replace(b"<VoyageNumber>V2611<", b"<VoyageNumber>V%06d<" % n)


async def put_backlog(bootstrap: str, home: Home, count: int) -> None:
    await ensure_topics(bootstrap, {TOPICS.ingress: 4})
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        key = home.agency_keys[SENDER]
        sent = []
        for n in range(count):
            doc = document(n)
            sent.append(await producer.send(
                TOPICS.ingress, doc, key=f"bench-{n}".encode(),
                headers=submission_headers(f"bench-{n}", SENDER, "fal1-xml", key.sign(doc))))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def wait_for_deliveries(bootstrap: str, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (found := len(await read_topics(bootstrap, [TOPICS.delivery(RECIPIENT)]))) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the gateway delivered {found} of {count} documents in "
                             f"{timeout_s} s")
        await asyncio.sleep(1.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gateway(home: Home, bootstrap: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PORTGW__HTTP__LISTEN": f'"127.0.0.1:{port}"',
           "PORTGW__HTTP__OPERATOR_LISTEN": '""',
           "PORTGW__LIMITS__DEFAULT__RATE_PER_S": "0"}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli.main", "--log-level", "warning", "serve",
             "--config", str(home.config_file), "--bootstrap-servers", bootstrap],
            stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_for_door(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the gateway's door did not open") from None
            time.sleep(0.2)


def receive(home: Home, bootstrap: str, store: Path, *extra: str) -> Run:
    command = [sys.executable, "-m", "gateway.cli.main", "--log-level", "warning", "receive",
               "--agency", RECIPIENT, "--keyring", str(home.path / "keyring.toml"),
               "--store", str(store), "--config", str(home.config_file),
               "--bootstrap-servers", bootstrap, *extra]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False, timeout=600)
    seconds = time.perf_counter() - started
    counted = RECEIVED.search(done.stderr.decode(errors="replace"))
    if done.returncode != 0 or counted is None:
        raise SystemExit(f"portgw receive failed ({done.returncode}): "
                         f"{done.stderr.decode(errors='replace')[-2000:]}")
    return Run(int(counted.group(1)), seconds)


def run(workdir: Path, docs: int, page_size: int) -> dict[str, float | int]:
    home = create_home(workdir / "home")
    with LocalBroker(log_path=workdir / "broker.log") as broker:
        bootstrap = broker.bootstrap_servers
        asyncio.run(put_backlog(bootstrap, home, docs))
        port = free_port()
        gateway = start_gateway(home, bootstrap, port, workdir / "gateway.log")
        try:
            asyncio.run(wait_for_deliveries(bootstrap, docs, timeout_s=60 + docs / 10))
            wait_for_door(port)
            kafka = receive(home, bootstrap, workdir / "kafka-store")
            pulled = receive(home, bootstrap, workdir / "pull-store",
                             "--pull", f"http://127.0.0.1:{port}",
                             "--key", str(home.path / "keys" / f"{RECIPIENT}.key"),
                             "--page-size", str(page_size))
        finally:
            gateway.terminate()
            gateway.wait(timeout=60)
    if (kafka.deliveries, pulled.deliveries) != (docs, docs):
        raise SystemExit(f"expected {docs} deliveries each way, got {kafka.deliveries} "
                         f"(Kafka) and {pulled.deliveries} (pull)")
    return {"pulled_per_s": round(pulled.per_s, 1), "kafka_per_s": round(kafka.per_s, 1),
            "ratio_to_kafka": round(pulled.per_s / kafka.per_s, 2), "deliveries": docs,
            "page_size": page_size, "pull_s": round(pulled.seconds, 2),
            "kafka_s": round(kafka.seconds, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="very small sizes, same code: checks that the bench runs")
    parser.add_argument("--docs", type=int, default=None, help=f"documents (default {FULL_DOCS})")
    parser.add_argument("--page-size", type=int, default=500, help="deliveries per page")
    args = parser.parse_args(argv)
    docs = args.docs or (TINY_DOCS if args.tiny else FULL_DOCS)
    workdir = Path(tempfile.mkdtemp(prefix="portgw-bench-pull-"))
    try:
        figures = run(workdir, docs, args.page_size)
    finally:
        if args.tiny:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{docs:,} deliveries to {RECIPIENT}, pages of {args.page_size}")
    print(f"reference  portgw receive (Kafka consumer)   {figures['kafka_per_s']:8.1f} "
          f"deliveries/s ({figures['kafka_s']} s)")
    print(f"pull       portgw receive --pull (HTTP)      {figures['pulled_per_s']:8.1f} "
          f"deliveries/s ({figures['pull_s']} s), acknowledged")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
