"""An agency taking its deliveries without Kafka, pushed and pulled, against reading its
delivery topic itself.

A gateway process (`portgw serve`, its door on plain loopback HTTP, as a local home has it)
works off a backlog of signed FAL 1 arrivals, each delivered to cn.customs.sh (and
cn.msa.sh). Once every delivery to cn.customs.sh is on its topic:

- the reference, from the same run: `portgw receive` reading the topic with a Kafka consumer
  (verified, de-duplicated, as JSON lines);
- `portgw receive --pull`: the same deliveries through `GET /v1/deliveries` (pages of
  `--page-size`), each verified and written alike, and each page acknowledged with one
  signed acknowledgement that the gateway checks and records in its trail as TAKEN;
- push: the gateway started again with cn.customs.sh as a `[push]` recipient, its endpoint an
  HTTPS server in this process (its certificate pinned, the gateway's client certificate
  required) that checks each delivery's proof and answers with the agency's signed
  acknowledgement; the figure is deliveries acknowledged per second from the gateway's start
  until the endpoint has them all (`--push-docs` of them: push sends one delivery a request),
  and the same from the first delivery's coming (the gateway's start left out);
- push in batches: the same again for cn.msa.sh (the same documents, its own topic) with
  `batch = --push-batch`: up to that many deliveries a request (multipart/mixed), each
  request answered with one acknowledgement naming them all.

Pull and the reference are separate processes with a store of their own, writing to
/dev/null; their figures are deliveries per second of wall time, the command's start
included. Prints the figures, then one JSON line.

Run: .venv/bin/python bench/deliveries.py [--tiny] [--docs N] [--page-size N] [--push-docs N]
                                          [--push-batch N]

`--tiny` uses 40 documents and removes its working directory at the end: a check that the
bench still runs (its gateway and broker are stopped), not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path[0] = str(Path(__file__).resolve().parents[1])

from crypto import Keyring, SM2PrivateKey  # noqa: E402
from gateway.deliveries.acknowledgements import Taken, sign_acknowledgement  # noqa: E402
from gateway.deliveries.proof import DeliveryRefused, DeliveryVerifier  # noqa: E402
from gateway.deliveries.push_wire import pushed_messages  # noqa: E402
from gateway.home.create import Home, create_home  # noqa: E402
from gateway.kafka.local_broker import LocalBroker  # noqa: E402
from gateway.kafka.names import Topics, submission_headers  # noqa: E402
from gateway.kafka.wire import ensure_topics, new_producer, read_topics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (ROOT / "tests" / "data" / "fal1" / "valid_arrival.xml").read_bytes()
TOPICS = Topics()  # the production names: the bench runs its own broker
SENDER = "cn.port.sh"
RECIPIENT = "cn.customs.sh"
BATCH_RECIPIENT = "cn.msa.sh"  # gets the same documents: pushed in batches, from its own topic
DEFAULT_PUSH_BATCH = 50
FULL_DOCS, TINY_DOCS = 3000, 40
FULL_PUSH_DOCS = 600
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


# ---------------------------------------------------------------- push


@dataclass(frozen=True, slots=True)
class Tls:
    """The endpoint's certificate and key, and the gateway's client certificate and key, all
    issued by one throwaway CA (ECDSA P-256), in `directory`."""

    directory: Path
    server_sha256: str

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"


def make_tls(directory: Path) -> Tls:
    directory.mkdir()
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, now, is_ca=True)
    _write(directory, "ca", ca, ca_key)
    fingerprint = ""
    for name, san in (("server", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
                      ("client", x509.DNSName("px.gateway"))):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = _certificate(subject, key, ca_name, ca_key, now, san=san)
        _write(directory, name, cert, key)
        if name == "server":
            fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return Tls(directory, fingerprint)


def _certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                 issuer_key: ec.EllipticCurvePrivateKey, now: dt.datetime, *,
                 is_ca: bool = False, san: x509.GeneralName | None = None) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey) -> None:
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


@dataclass
class Endpoint:
    """The recipient's HTTPS endpoint: each delivery's proof checked, then answered with the
    agency's signed acknowledgement, as an agency system would."""

    agency: str
    key: SM2PrivateKey
    verifier: DeliveryVerifier
    wanted: int
    taken: set[str] = field(default_factory=set)
    refused: int = 0
    all_taken: asyncio.Event = field(default_factory=asyncio.Event)
    first_at: float | None = None  # when the first delivery came (perf_counter)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            deliveries = [self.verifier.check(message) for message in
                          pushed_messages(request.headers, await request.read())]
        except DeliveryRefused:
            self.refused += 1
            return web.Response(status=400)
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.taken.update(delivery.delivery_id for delivery in deliveries)
        if len(self.taken) >= self.wanted:
            self.all_taken.set()
        ack = sign_acknowledgement(self.agency, tuple(Taken.of(d.delivery_id, d.payload)
                                                      for d in deliveries),
                                   dt.datetime.now(dt.UTC), self.key)
        return web.Response(body=ack.to_json(), content_type="application/json")


def with_push_recipient(home: Home, config: str, tls: Tls, url: str, agency: str,
                        batch: int) -> None:
    """The home's configuration `config` with `agency` as its one push recipient."""
    home.config_file.write_text(config + f"""
[push]
client_cert_file = "{tls.directory / 'client.pem'}"
client_key_file = "{tls.directory / 'client.key'}"
[push.recipients."{agency}"]
url = "{url}"
server_sha256 = "{tls.server_sha256}"
ca_file = "{tls.ca}"
batch = {batch}
""", encoding="utf-8")


async def push(home: Home, bootstrap: str, workdir: Path, docs: int, agency: str,
               batch: int) -> tuple[Run, Run]:
    """Serves the endpoint, restarts the gateway with it as `agency`'s push endpoint (up to
    `batch` deliveries a request), and times it until the endpoint holds `docs` deliveries
    (the topic's first ones, in its order): from the gateway's start, and from the first
    delivery's coming (the flow without the start)."""
    tls = make_tls(workdir / f"tls-{agency}")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.ca)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_cert_chain(tls.directory / "server.pem", tls.directory / "server.key")
    keyring = Keyring.from_toml(home.path / "keyring.toml")
    endpoint = Endpoint(agency, home.agency_keys[agency], DeliveryVerifier(keyring, agency),
                        docs)
    app = web.Application()
    app.router.add_post("/deliveries", endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    config = home.config_file.read_text(encoding="utf-8")
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server).start()
        with_push_recipient(home, config, tls,
                            f"https://127.0.0.1:{runner.addresses[0][1]}/deliveries", agency,
                            batch)
        started = time.perf_counter()
        gateway = start_gateway(home, bootstrap, free_port(),
                                workdir / f"gateway-push-{agency}.log")
        try:
            await asyncio.wait_for(endpoint.all_taken.wait(), timeout=60 + docs)
            ended, count = time.perf_counter(), len(endpoint.taken)
        finally:
            gateway.terminate()
            await asyncio.to_thread(gateway.wait, 60)
    finally:
        home.config_file.write_text(config, encoding="utf-8")
        await runner.cleanup()
    if endpoint.refused:
        raise SystemExit(f"the endpoint refused {endpoint.refused} pushed deliveries")
    assert endpoint.first_at is not None
    return Run(count, ended - started), Run(count - 1, ended - endpoint.first_at)


def run(workdir: Path, docs: int, page_size: int, push_docs: int, push_batch: int
        ) -> dict[str, float | int]:
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
        pushed, flowing = asyncio.run(push(home, bootstrap, workdir, min(push_docs, docs),
                                           RECIPIENT, 1))
        batched, batched_flowing = asyncio.run(push(home, bootstrap, workdir,
                                                    min(push_docs, docs), BATCH_RECIPIENT,
                                                    push_batch))
    if (kafka.deliveries, pulled.deliveries) != (docs, docs):
        raise SystemExit(f"expected {docs} deliveries each way, got {kafka.deliveries} "
                         f"(Kafka) and {pulled.deliveries} (pull)")
    return {"pulled_per_s": round(pulled.per_s, 1), "pushed_per_s": round(pushed.per_s, 1),
            "pushed_flowing_per_s": round(flowing.per_s, 1),
            "batched_per_s": round(batched.per_s, 1),
            "batched_flowing_per_s": round(batched_flowing.per_s, 1), "push_batch": push_batch,
            "batched": batched.deliveries, "batched_s": round(batched.seconds, 2),
            "kafka_per_s": round(kafka.per_s, 1),
            "ratio_to_kafka": round(pulled.per_s / kafka.per_s, 2),
            "push_ratio_to_kafka": round(pushed.per_s / kafka.per_s, 3), "deliveries": docs,
            "pushed": pushed.deliveries, "page_size": page_size,
            "pull_s": round(pulled.seconds, 2), "push_s": round(pushed.seconds, 2),
            "kafka_s": round(kafka.seconds, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="very small sizes, same code: checks that the bench runs")
    parser.add_argument("--docs", type=int, default=None, help=f"documents (default {FULL_DOCS})")
    parser.add_argument("--page-size", type=int, default=500, help="deliveries per page")
    parser.add_argument("--push-docs", type=int, default=FULL_PUSH_DOCS,
                        help=f"deliveries pushed (default {FULL_PUSH_DOCS})")
    parser.add_argument("--push-batch", type=int, default=DEFAULT_PUSH_BATCH,
                        help="deliveries a request in the batched push run "
                             f"(default {DEFAULT_PUSH_BATCH})")
    args = parser.parse_args(argv)
    docs = args.docs or (TINY_DOCS if args.tiny else FULL_DOCS)
    workdir = Path(tempfile.mkdtemp(prefix="portgw-bench-deliveries-"))
    try:
        figures = run(workdir, docs, args.page_size, args.push_docs, args.push_batch)
    finally:
        if args.tiny:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{docs:,} deliveries to {RECIPIENT}, pages of {args.page_size}")
    print(f"reference  portgw receive (Kafka consumer)   {figures['kafka_per_s']:8.1f} "
          f"deliveries/s ({figures['kafka_s']} s)")
    print(f"pull       portgw receive --pull (HTTP)      {figures['pulled_per_s']:8.1f} "
          f"deliveries/s ({figures['pull_s']} s), acknowledged")
    print(f"push       HTTPS endpoint, pinned             {figures['pushed_per_s']:8.1f} "
          f"deliveries/s ({figures['pushed']} in {figures['push_s']} s), acknowledged")
    print(f"           once flowing (its start left out)  {figures['pushed_flowing_per_s']:8.1f} "
          "deliveries/s")
    print(f"push       batches of {figures['push_batch']:<4} ({BATCH_RECIPIENT})    "
          f"{figures['batched_per_s']:8.1f} deliveries/s ({figures['batched']} in "
          f"{figures['batched_s']} s), acknowledged")
    print(f"           once flowing (its start left out)  "
          f"{figures['batched_flowing_per_s']:8.1f} deliveries/s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
