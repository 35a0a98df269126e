"""What tests/integration/test_service.py shares: distinct signed documents, a gateway run
in-process with its HTTP door or as a `portgw serve` process, an HTTP client, a broker kept
in S3 (moto), and reading back receipts, dead letters and deliveries as recipients do."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import boto3
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from multidict import CIMultiDict
from prometheus_client.parser import text_string_to_metric_families

from crypto import BatchSeal, InclusionProof, Keyring
from gateway.deliveries.dedup import DedupReader
from gateway.deliveries.proof import DeliveryRefused, DeliveryVerifier
from gateway.errors import BrokerUnavailable
from gateway.home.config import GatewayConfig
from gateway.home.create import Home
from gateway.ingress.http_api import start_http
from gateway.kafka.local_broker import accepts_connections, free_loopback_port
from gateway.kafka.names import (
    H_EVENT_ID,
    H_SUBMISSION_ID,
    StoredMessage,
    Topics,
    submission_headers,
)
from gateway.kafka.wire import new_producer, new_reader, partitions_of, read_topics
from gateway.parts import GatewayParts
from gateway.receipts.receipt import RECEIPT_SCHEMA, Receipt, SignedReceipt
from gateway.service import Gateway, Serving
from message_formats import AvroSchemas

FAL1_SAMPLES = Path(__file__).parents[1] / "data" / "fal1"
ARRIVAL = (FAL1_SAMPLES / "valid_arrival.xml").read_bytes()
PROVIDER = "cn.port.sh"
RECIPIENTS = ("cn.customs.sh", "cn.msa.sh")
FORMAT = "fal1-xml"
S3_BUCKET = "tansu"
S3_STORAGE = f"s3://{S3_BUCKET}/"


# -- documents ---------------------------------------------------------------------------------


def numbered_arrival(number: int) -> bytes:
    """The sample arrival with its own document and voyage numbers (so its own business key):
    a distinct valid document."""
    document = ARRIVAL.replace(b"GD-CNSHA-2026-000451", b"GD-CNSHA-2026-%06d" % number)
    return document.replace(b"<VoyageNumber>V2611<", b"<VoyageNumber>V%06d<" % number)


@dataclass(frozen=True, slots=True)
class Document:
    """One submission as an agency system makes it."""

    submission_id: str
    sender: str
    document: bytes
    signature: bytes
    format_id: str = FORMAT


def http_id(doc: Document, key: str | None = None) -> str:
    """The submission id the HTTP door gives `doc` posted under Idempotency-Key `key`
    (`post_document`'s default: the document's own submission id): the key scoped by its
    sender."""
    return f"{doc.sender}~{key or doc.submission_id}"


def signed(home: Home, document: bytes, submission_id: str, *, sender: str = PROVIDER
           ) -> Document:
    return Document(submission_id, sender, document, home.agency_keys[sender].sign(document))


def signed_arrivals(home: Home, count: int, *, start: int = 0, prefix: str = "sub"
                    ) -> list[Document]:
    """`count` distinct arrivals signed by the provider, numbered from `start`."""
    return [signed(home, numbered_arrival(n), f"{prefix}-{n:06d}")
            for n in range(start, start + count)]


def ingress_headers(doc: Document) -> list[tuple[str, bytes]]:
    """The headers gateway.ingress.client.submit puts on an ingress record."""
    return submission_headers(doc.submission_id, doc.sender, doc.format_id, doc.signature)


async def produce_ingress(bootstrap: str, topics: Topics, docs: Sequence[Document], *,
                          acked: list[str],
                          partitions: int | None = None, interval_s: float = 0.0,
                          retry_for_s: float = 60.0,
                          extra_headers: Sequence[tuple[str, bytes]] = ()) -> None:
    """Puts each document on the ingress topic (round-robin over `partitions` when given,
    else keyed by sender as the client does), one after the other, adding its submission id
    to `acked` once the broker acknowledged it. A send that fails is sent again, as an
    agency system would, for up to `retry_for_s`."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for n, doc in enumerate(docs):
            partition = n % partitions if partitions else None
            deadline = time.monotonic() + retry_for_s
            while True:
                try:
                    await producer.send_and_wait(topics.ingress, doc.document,
                                                 key=doc.sender.encode(),
                                                 headers=[*ingress_headers(doc),
                                                          *extra_headers],
                                                 partition=partition)
                    break
                except KafkaError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
            acked.append(doc.submission_id)
            if interval_s:
                await asyncio.sleep(interval_s)
    finally:
        await producer.stop()


# -- receipts ----------------------------------------------------------------------------------


def receipt_from_json(body: Mapping[str, Any], schemas: AvroSchemas) -> SignedReceipt:
    """The signed receipt an HTTP answer carries, rebuilt from its `signature` block alone."""
    sig = body["signature"]
    signed_body = base64.b64decode(sig["signed_receipt"])
    return SignedReceipt(
        receipt=Receipt.from_avro(schemas.decode_body(RECEIPT_SCHEMA, signed_body)),
        body=signed_body,
        seal=BatchSeal(bytes.fromhex(sig["root"]), sig["count"],
                       base64.b64decode(sig["signature"]), sig["key_id"]),
        proof=InclusionProof(sig["index"], sig["count"],
                             tuple(bytes.fromhex(node) for node in sig["path"])),
    )


class TopicFollower:
    """Follows a topic from its beginning in the background (from when it exists, across
    broker outages), counting its messages."""

    def __init__(self, bootstrap: str, topic: str, *, fetch_wait_ms: int = 20) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._fetch_wait_ms = fetch_wait_ms
        self.messages = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        consumer = new_reader(self._bootstrap, fetch_max_wait_ms=self._fetch_wait_ms)
        await consumer.start()
        self._task = asyncio.create_task(self._follow(consumer))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def handle(self, record: Any) -> None:
        self.messages += 1

    async def _assign(self, consumer: Any) -> bool:
        """Every partition of the topic, from offset 0; False while the topic is absent."""
        try:
            partitions = await partitions_of(self._bootstrap, [self._topic])
        except BrokerUnavailable:
            return False
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        return bool(partitions)

    async def _follow(self, consumer: Any) -> None:
        try:
            while not await self._assign(consumer):
                await asyncio.sleep(0.1)
            while True:
                try:
                    batches = await consumer.getmany(timeout_ms=100)
                except KafkaError:
                    await asyncio.sleep(0.2)
                    continue
                for records in batches.values():
                    for record in records:
                        self.handle(record)
        finally:
            await consumer.stop()

    async def _wait(self, done: Callable[[], bool], timeout_s: float,
                    why: Callable[[], str]) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert self._task is not None and not self._task.done(), "the follower stopped"
            assert time.monotonic() < deadline, why()
            await asyncio.sleep(0.02)

    async def wait_for_messages(self, count: int, *, timeout_s: float = 60.0) -> None:
        await self._wait(lambda: self.messages >= count, timeout_s,
                         lambda: f"{self.messages} messages on {self._topic}, not {count}")


class ReceiptWatcher(TopicFollower):
    """Follows px.receipt.v1: the latest signed receipt given for each submission id."""

    def __init__(self, bootstrap: str, topics: Topics, schemas: AvroSchemas, *,
                 fetch_wait_ms: int = 20) -> None:
        super().__init__(bootstrap, topics.receipt, fetch_wait_ms=fetch_wait_ms)
        self._schemas = schemas
        self.receipts: dict[str, SignedReceipt] = {}

    def handle(self, record: Any) -> None:
        super().handle(record)
        self.receipts[record.key.decode()] = SignedReceipt.decode(self._schemas, record.value)

    async def wait_for(self, submission_ids: Iterable[str], *, timeout_s: float = 60.0
                       ) -> dict[str, SignedReceipt]:
        wanted = set(submission_ids)
        await self._wait(lambda: wanted <= self.receipts.keys(), timeout_s,
                         lambda: f"no receipt for {len(wanted - self.receipts.keys())} of "
                                 f"{len(wanted)} submissions")
        return {sid: self.receipts[sid] for sid in wanted}


# -- what the broker holds ---------------------------------------------------------------------


async def dead_letters(bootstrap: str, topics: Topics, schemas: AvroSchemas
                       ) -> dict[str, dict[str, Any]]:
    """The dead letters on px.dlq.v1 by submission id."""
    letters = {}
    for message in await read_topics(bootstrap, [topics.dlq]):
        _, letter = schemas.decode(message.value)
        letters[letter["submission_id"]] = letter
    return letters


async def ingress_submission_ids(bootstrap: str, topics: Topics) -> set[str]:
    """The submission ids of every record the ingress topic holds."""
    return {m.header(H_SUBMISSION_ID).decode()  # type: ignore[union-attr]  # every message here carries the header
            for m in await read_topics(bootstrap, [topics.ingress])}


async def raw_deliveries(bootstrap: str, topics: Topics, recipient: str) -> Counter[str]:
    """How many messages the recipient's delivery topic holds per event id (not
    de-duplicated)."""
    messages = await read_topics(bootstrap, [topics.delivery(recipient)])
    return Counter(m.header(H_EVENT_ID).decode() for m in messages)  # type: ignore[union-attr]  # every message here carries the header


async def deduplicated_deliveries(bootstrap: str, topics: Topics, recipient: str, store: Path,
                                  keyring: Keyring, *, timeout_s: float = 30.0) -> Counter[str]:
    """What a recipient reading its whole delivery topic through a verifying DedupReader is
    handed: how often each event id (1 when de-duplication works). Any delivery refused (not
    sealed by the gateway for `recipient`) fails the test."""
    ends: dict[TopicPartition, int] = {}
    for m in await read_topics(bootstrap, [topics.delivery(recipient)]):
        tp = TopicPartition(m.topic, m.partition)
        ends[tp] = max(ends.get(tp, 0), m.offset + 1)
    handed: Counter[str] = Counter()
    deadline = time.monotonic() + timeout_s
    refused: list[tuple[StoredMessage, DeliveryRefused]] = []
    async with DedupReader(bootstrap, [topics.delivery(recipient)], store,
                           verifier=DeliveryVerifier(keyring, recipient),
                           on_refused=lambda m, why: refused.append((m, why))) as reader:
        while any(reader.positions.get(tp, 0) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, (dict(reader.positions), ends)
            batch = await reader.poll()
            handed.update(m.header(H_EVENT_ID).decode()  # type: ignore[union-attr]  # every message here carries the header
                          for m in batch)
            reader.mark_done(batch)
    assert not refused, [why.code for _, why in refused]
    return handed


# -- HTTP --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: dict[str, Any]
    headers: CIMultiDict[str]


async def post_document(session: aiohttp.ClientSession, base_url: str, doc: Document, *,
                        idempotency_key: str | None = None, timeout_s: float = 30.0
                        ) -> HttpAnswer:
    """POST /v1/submissions as an agency system does; `idempotency_key` defaults to the
    document's submission id."""
    headers = {"Px-Sender": doc.sender, "Px-Format": doc.format_id,
               "Px-Signature": base64.b64encode(doc.signature).decode(),
               "Idempotency-Key": idempotency_key or doc.submission_id}
    async with session.post(f"{base_url}/v1/submissions", data=doc.document, headers=headers,
                            timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
        return HttpAnswer(response.status, await response.json(),
                          CIMultiDict(response.headers))


async def post_unnamed(session: aiohttp.ClientSession, base_url: str, doc: Document) -> int:
    """POST /v1/submissions without Px-Format, the format left to be found from the content;
    the answer's status."""
    headers = {"Px-Sender": doc.sender, "Idempotency-Key": doc.submission_id,
               "Px-Signature": base64.b64encode(doc.signature).decode()}
    async with session.post(f"{base_url}/v1/submissions", data=doc.document, headers=headers,
                            timeout=aiohttp.ClientTimeout(total=60)) as response:
        await response.read()
        return response.status


async def get_answer(session: aiohttp.ClientSession, url: str) -> HttpAnswer:
    async with session.get(url) as response:
        return HttpAnswer(response.status, await response.json(),
                          CIMultiDict(response.headers))


async def metric_total(session: aiohttp.ClientSession, base_url: str, name: str) -> float:
    """The sum over all labels of one sample in GET /metrics (e.g.
    portgw_documents_accepted_total); 0 when absent."""
    async with session.get(f"{base_url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == name)


async def wait_until_metric(session: aiohttp.ClientSession, url: str, name: str,
                            value: float, *, exactly: bool = False,
                            timeout_s: float = 120.0) -> None:
    """Until the metric (summed over its labels) reaches `value`, or is `value` exactly. A
    document answered over Kafka is counted once the gateway hears the broker has its
    receipt, which a reader of the receipt topic may hear first."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = await metric_total(session, url, name)
        if seen == value or (seen > value and not exactly):
            return
        assert time.monotonic() < deadline, f"{name} = {seen}, not {value}"
        await asyncio.sleep(0.1)


async def eventually(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Until `predicate()` holds; fails the test, saying `what`, when it has not within
    `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.05)


async def partitions_split(a: GatewayProcess, b: GatewayProcess, partitions: int = 4) -> None:
    """Until the two processes own the ingress partitions between them, none owned by both."""
    await eventually(lambda: bool(a.owned_partitions() and b.owned_partitions()
                                  and a.owned_partitions() | b.owned_partitions()
                                  == set(range(partitions))
                                  and not a.owned_partitions() & b.owned_partitions()),
                     f"the two processes split the {partitions} ingress partitions",
                     timeout_s=60.0)


async def wait_ready(session: aiohttp.ClientSession, base_url: str, *, timeout_s: float = 30.0,
                     alive: Callable[[], bool] = lambda: True) -> None:
    """Until GET /readyz answers 200."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert alive(), f"the gateway at {base_url} exited"
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base_url}/readyz") as response:
                if response.status == 200:
                    return
        assert time.monotonic() < deadline, f"{base_url} not ready within {timeout_s} s"
        await asyncio.sleep(0.1)


# -- a gateway in this process -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InProcess:
    gateway: Gateway
    serving: Serving
    url: str
    ops_url: str  # the operators' door: /metrics


@asynccontextmanager
async def running_gateway(config: GatewayConfig, parts: GatewayParts, bootstrap: str, *,
                          prepare: Callable[[Gateway], None] = lambda _: None
                          ) -> AsyncIterator[InProcess]:
    """A gateway serving the ingress topic with its HTTP door on a free port, as `portgw
    serve` runs it; `prepare` is given the gateway before it starts."""
    gateway = Gateway(config, parts, bootstrap)
    prepare(gateway)
    async with gateway, gateway.serving() as serving:
        http = await start_http(gateway.http_app(), "127.0.0.1:0")
        ops = await start_http(gateway.operator_app(), "127.0.0.1:0")
        try:
            yield InProcess(gateway, serving, f"http://127.0.0.1:{http.port}",
                            f"http://127.0.0.1:{ops.port}")
        finally:
            await ops.close()
            await http.close()


# -- a gateway process -------------------------------------------------------------------------


@dataclass
class GatewayProcess:
    """`portgw serve` as an operator runs it, its HTTP door on a chosen port (set through the
    environment), logging JSON at info level to `log_path`."""

    home: Home
    bootstrap: str
    log_path: Path
    http_port: int = field(default_factory=free_loopback_port)
    ops_port: int = field(default_factory=free_loopback_port)
    process: subprocess.Popen[bytes] | None = None
    # In a session (and process group) of its own, to be killed with all it started.
    own_session: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ops_url(self) -> str:
        """The operators' door ([http] operator_listen): /metrics."""
        return f"http://127.0.0.1:{self.ops_port}"

    def start(self) -> GatewayProcess:
        env = {**os.environ, "PORTGW__HTTP__LISTEN": f"127.0.0.1:{self.http_port}",
               "PORTGW__HTTP__OPERATOR_LISTEN": f"127.0.0.1:{self.ops_port}"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli.main", "--log-level", "info", "--log-json",
                 "serve", "--config", str(self.home.config_file),
                 "--bootstrap-servers", self.bootstrap],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=self.own_session)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, as an operator stops it; its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.alive():
            self.kill()

    def log_entries(self) -> list[dict[str, Any]]:
        """Its JSON log lines, in order (plain lines such as `http on ...` left out)."""
        entries = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def owned_partitions(self) -> set[int]:
        """The ingress partitions it owns now, by its ingress.assigned/revoked log lines."""
        owned: set[int] = set()
        for entry in self.log_entries():
            if entry.get("event") == "ingress.assigned":
                owned |= set(entry["partitions"])
            elif entry.get("event") == "ingress.revoked":
                owned -= set(entry["partitions"])
        return owned

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


# -- a broker whose storage outlives it --------------------------------------------------------


@contextlib.contextmanager
def moto_s3(log_path: Path) -> Iterator[dict[str, str]]:
    """A moto S3 server with the bucket tansu keeps its data in; yields the environment the
    broker needs to reach it."""
    port = free_loopback_port()
    with open(log_path, "ab") as log:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                                  stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not accepts_connections("127.0.0.1", port):
            assert server.poll() is None, "moto_server exited"
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port}"
        env = {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true",
               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                     aws_secret_access_key="test", region_name="us-east-1",
                     ).create_bucket(Bucket=S3_BUCKET)
        yield env
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


async def post_each_unnamed(config: GatewayConfig, parts: GatewayParts, bootstrap: str,
                            documents: Sequence[Document]) -> list[int]:
    """A gateway started on `bootstrap`, and each document POSTed to it in turn without
    Px-Format (post_unnamed); their statuses."""
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        await wait_ready(session, gw.url)
        return [await gw.serving.alongside(post_unnamed(session, gw.url, doc))
                for doc in documents]
