"""Hostile XML over HTTP against a real `portgw serve` process on the local broker.

Each class of hostile document (tests/integration/hostile_xml.py), signed by a registered
agency so that it passes authentication and reaches the parser, is refused with a stable
code within a liveness bound, while valid documents from other agencies sent at the same
time are accepted; the gateway's memory comes back near where it started; nothing the
documents name is opened (a named pipe would block whoever opened it) or fetched (a canary
listener counts connections). And a poison record put on the ingress topic directly is
refused once, with a dead letter, and does not wedge the gateway across a restart.

The gateway runs in a session of its own, so that it and its worker process
(`python -m gateway.decide.ahead_worker`) are killed together whatever state they are in."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import aiohttp
import pytest

from crypto import CryptoError
from gateway.home.create import DEMO_CONTRACTS, ContractSpec, Home, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import read_topics
from gateway.receipts.receipt import SignedReceipt
from message_formats import AvroSchemas
from tests.integration.hostile_xml import (
    DTD,
    Hostile,
    fifo_has_reader,
    hostile_corpus,
    is_stable_code,
    parameter_entity_doctype,
    with_doctype,
)
from tests.integration.service_support import (
    PROVIDER,
    Document,
    GatewayProcess,
    HttpAnswer,
    ReceiptWatcher,
    get_answer,
    numbered_arrival,
    post_document,
    produce_ingress,
    receipt_from_json,
    signed,
    wait_ready,
)

# The hostile documents come from the port operator, whose FAL 1 declarations a contract
# shares: one that got past the parser would be accepted and delivered, not refused for
# want of a contract. The valid ones come from two other agencies, given contracts here.
HOSTILE_SENDER = PROVIDER
CUSTOMS = "cn.customs.sh"
MSA = "cn.msa.sh"
VALID_SENDERS = (CUSTOMS, MSA)

DEADLINE_S = 10.0  # liveness bound per document (the gateway answers 202 after timeout_s = 10)
LATE_GRACE_S = 2.0  # after a 202, how long the receipt is still looked for (to report it)
POST_EVERY_S = 0.1
VALID_DURING = 30
MEMORY_SLACK = 60 * 1024 * 1024
STOP_S = 10.0


def hostile_home(path: Path) -> Home:
    """The demo home, plus contracts letting customs and maritime safety share their FAL 1
    declarations with each other."""
    extra = tuple(
        ContractSpec(id=f"fal1-{provider}-to-{consumer}", provider=provider,
                     consumers=(consumer,), document_types=("fal1",),
                     scope="cross-department", purpose="arrival clearance, shared back",
                     legal_basis="IMO FAL Convention Std 2.1")
        for provider, consumer in ((CUSTOMS, MSA), (MSA, CUSTOMS)))
    return create_home(path, contracts=(*DEMO_CONTRACTS, *extra), seal_every=4,
                       seal_interval_ms=100)


# -- a gateway process that can be killed with everything it started ---------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of a live process; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class IsolatedGateway(GatewayProcess):
    """`portgw serve` as GatewayProcess starts it, but in a session (and process group) of its
    own: `kill_all` ends it and every process it started, its worker included, even one
    left behind by the gateway's exit. Every process seen under it is remembered."""

    seen: set[int] = field(default_factory=set)
    own_session: bool = True

    def start(self) -> IsolatedGateway:
        super().start()
        self.seen.add(self.pid)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def processes(self) -> list[int]:
        """The live processes of its group and under it (itself first while it lives)."""
        stats = {pid: stat for pid in _all_pids() if (stat := _stat(pid)) is not None}
        found = [self.pid] if self.pid in stats else []
        found += [pid for pid, (_, group) in stats.items()
                  if group == self.pid and pid != self.pid]
        at = 0
        while at < len(found):  # whatever moved to a group of its own, too
            found += [pid for pid, (parent, _) in stats.items()
                      if parent == found[at] and pid not in found]
            at += 1
        self.seen.update(found)
        return found

    def workers(self) -> list[int]:
        return [pid for pid in self.processes() if pid != self.pid]

    def rss(self) -> tuple[int, int]:
        """Resident bytes of the gateway process and of the processes under it."""
        return _rss_bytes(self.pid), sum(_rss_bytes(pid) for pid in self.workers())

    def terminate(self, timeout_s: float = STOP_S) -> int | None:
        """SIGTERM, as an operator stops it; its exit status, None if it did not exit in
        time (it is left running: `kill_all` ends it)."""
        assert self.process is not None
        self.processes()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout_s)
        return self.process.poll()

    def left_running(self) -> list[int]:
        """The processes seen under it that still run in its process group (a pid seen once
        and now in another group was reused by someone else: not ours)."""
        return [pid for pid in sorted(self.seen)
                if (stat := _stat(pid)) is not None and stat[1] == self.pid]

    def kill_all(self) -> None:
        """SIGKILL to it, its process group and every process under it."""
        if self.process is None:
            return
        under = self.processes()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for pid in under:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        deadline = time.monotonic() + 5
        while self.left_running() and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> IsolatedGateway:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill_all()


@pytest.fixture
def gateways() -> Iterator[list[IsolatedGateway]]:
    """Every gateway a test starts is put here, and killed with all it started at the end,
    whatever happened."""
    started: list[IsolatedGateway] = []
    yield started
    for gateway in started:
        gateway.kill_all()
    leftover = [pid for gateway in started for pid in gateway.left_running()]
    assert not leftover, f"processes left running: {leftover}"


# -- answers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answered:
    """What one POST came to: the final HTTP status (None: no answer at all), the receipt's
    or the door's code, whether it was accepted, and after how many seconds."""

    name: str
    sender: str
    status: int | None
    code: str | None
    accepted: bool
    seconds: float
    note: str = ""

    def line(self) -> str:
        return (f"{self.name:30} {self.sender:14} {self.status!s:>4} {self.code or '-':28} "
                f"{self.seconds:6.2f} s {self.note}")


def code_of(answer: HttpAnswer) -> str | None:
    receipt = answer.body.get("receipt")
    if isinstance(receipt, dict):
        return receipt.get("error_code")
    return answer.body.get("code")


async def post_and_wait(session: aiohttp.ClientSession, url: str, doc: Document, name: str,
                        home: Home, schemas: AvroSchemas, *, deadline_s: float = DEADLINE_S
                        ) -> Answered:
    """POSTs the document; if the gateway answers 202 (not decided within its timeout), looks
    the submission up until `deadline_s` + LATE_GRACE_S, so that a late decision is seen."""
    started = time.monotonic()
    try:
        answer = await post_document(session, url, doc, timeout_s=deadline_s + 5)
        location = answer.headers.get("Location", "")
        while answer.status == 202 and time.monotonic() - started < deadline_s + LATE_GRACE_S:
            await asyncio.sleep(0.1)
            answer = await get_answer(session, f"{url}{location}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Answered(name, doc.sender, None, None, False, time.monotonic() - started,
                        f"no answer: {exc!r}")
    seconds = time.monotonic() - started
    note = ""
    if "signature" in answer.body:
        try:
            receipt_from_json(answer.body, schemas).verify(home.gateway_key.public_key())
        except (CryptoError, ValueError, KeyError) as exc:
            note = f"receipt signature does not verify: {exc!r}"
    accepted = answer.status == 200 and answer.body.get("status") == "accepted"
    return Answered(name, doc.sender, answer.status, code_of(answer), accepted, seconds, note)


def hostile_problem(case: Hostile, answered: Answered) -> str | None:
    """Why the answer to a hostile document is not the one wanted; None when it is."""
    if answered.status is None:
        return answered.note
    if answered.status == 202:
        return f"not decided within {DEADLINE_S + LATE_GRACE_S:.0f} s"
    if answered.accepted or answered.status == 200:
        return "accepted"
    if not is_stable_code(answered.code):
        return f"code {answered.code!r} is not a stable error code"
    if answered.code not in case.expected:
        return f"code {answered.code}, expected one of {sorted(case.expected)}"
    if answered.seconds > DEADLINE_S:
        return f"answered after {answered.seconds:.1f} s"
    if answered.note:
        return answered.note
    return None


def valid_problem(answered: Answered) -> str | None:
    if not answered.accepted:
        return f"not accepted: status {answered.status}, code {answered.code} {answered.note}"
    if answered.seconds > DEADLINE_S:
        return f"accepted after {answered.seconds:.1f} s"
    return answered.note or None


def valid_documents(home: Home, count: int, *, start: int, prefix: str) -> list[Document]:
    """`count` distinct valid arrivals, from customs and maritime safety in turn."""
    return [signed(home, numbered_arrival(n), f"{prefix}-{n}",
                   sender=VALID_SENDERS[n % len(VALID_SENDERS)])
            for n in range(start, start + count)]


# -- a listener that counts what connects to it ------------------------------------------------


@dataclass
class Canary:
    """A TCP listener on the loopback that counts connections and closes each at once: a URL
    pointing at it proves a fetch was never tried (one at 127.0.0.1:1 fails unseen)."""

    connections: int = 0
    url: str = ""


@contextlib.asynccontextmanager
async def canary() -> AsyncIterator[Canary]:
    seen = Canary()

    async def handle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    seen.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


# -- 1. every class of hostile document, among valid ones --------------------------------------


def test_hostile_documents_are_refused_promptly_while_other_agencies_are_served(
    broker: LocalBroker, tmp_path: Path, gateways: list[IsolatedGateway]
) -> None:
    home = hostile_home(tmp_path / "home")
    gateway = IsolatedGateway(home, broker.bootstrap_servers, tmp_path / "gateway.log")
    gateways.append(gateway)
    asyncio.run(_hostile_among_valid(gateway, home, tmp_path))


async def _hostile_among_valid(gateway: IsolatedGateway, home: Home, tmp_path: Path) -> None:
    schemas = AvroSchemas()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    try:
        await _run_hostile(gateway, home, fifo, scratch, schemas)
    finally:
        shutil.rmtree(scratch)  # the 64 MiB file: not kept with pytest's last runs


async def _run_hostile(gateway: IsolatedGateway, home: Home, fifo: Path, scratch: Path,
                       schemas: AvroSchemas) -> None:
    async with canary() as listener, aiohttp.ClientSession() as session:
        corpus = hostile_corpus(scratch, remote=listener.url, fifo=fifo)
        hostile = [signed(home, case.document, f"hostile-{n}", sender=HOSTILE_SENDER)
                   for n, case in enumerate(corpus)]
        warm_up = valid_documents(home, 4, start=100, prefix="warm")
        during = valid_documents(home, VALID_DURING, start=200, prefix="during")
        after = valid_documents(home, 4, start=300, prefix="after")

        with gateway:
            await wait_ready(session, gateway.url, alive=gateway.alive)

            async def post(doc: Document, name: str, delay_s: float = 0.0) -> Answered:
                await asyncio.sleep(delay_s)
                return await post_and_wait(session, gateway.url, doc, name, home, schemas)

            warmed = [await post(doc, doc.submission_id) for doc in warm_up]
            await asyncio.sleep(1.0)
            rss_start = gateway.rss()
            workers_start = gateway.workers()

            # The hostile documents one after the other, POST_EVERY_S apart, none waiting
            # for the one before; the valid ones at the same pace, at the same time.
            started = time.monotonic()
            answers = await asyncio.gather(
                *(post(doc, case.name, n * POST_EVERY_S)
                  for n, (case, doc) in enumerate(zip(corpus, hostile, strict=True))),
                *(post(doc, doc.submission_id, n * POST_EVERY_S)
                  for n, doc in enumerate(during)))
            run_s = time.monotonic() - started
            hostile_answers = answers[: len(corpus)]
            during_answers = answers[len(corpus) :]

            await asyncio.sleep(2.0)
            afterwards = await asyncio.gather(*(post(doc, doc.submission_id) for doc in after))
            await asyncio.sleep(1.0)
            rss_end = gateway.rss()
            workers_end = gateway.workers()
            fifo_opened = fifo_has_reader(fifo)  # before the gateway is killed
            alive = gateway.alive()
        fetches = listener.connections

    print(f"\n{'document':30} {'sender':14} {'HTTP':>4} {'code':28} {'time':>8}")
    for answered in [*warmed, *hostile_answers, *during_answers, *afterwards]:
        print(answered.line())
    print(f"hostile run: {run_s:.1f} s for {len(corpus)} hostile and {len(during)} valid")
    print(f"RSS gateway + workers: start {rss_start[0] / 2**20:.1f} + "
          f"{rss_start[1] / 2**20:.1f} MiB (workers {workers_start}), end "
          f"{rss_end[0] / 2**20:.1f} + {rss_end[1] / 2**20:.1f} MiB (workers {workers_end})")
    print(f"connections to the canary: {fetches}; named pipe opened: {fifo_opened}")

    problems = [f"{case.name}: {why}"
                for case, answered in zip(corpus, hostile_answers, strict=True)
                if (why := hostile_problem(case, answered)) is not None]
    problems += [f"{answered.name} (valid, {answered.sender}): {why}"
                 for answered in [*warmed, *during_answers, *afterwards]
                 if (why := valid_problem(answered)) is not None]
    if sum(rss_end) > sum(rss_start) + MEMORY_SLACK:
        problems.append(f"memory: {sum(rss_end) / 2**20:.0f} MiB after the run, "
                        f"{sum(rss_start) / 2**20:.0f} MiB before")
    if fifo_opened:
        problems.append("the named pipe was opened for reading by some process")
    if fetches:
        problems.append(f"{fetches} connections to the URL the documents name")
    if not alive:
        problems.append("the gateway process exited")
    assert not problems, "\n".join(problems)


# -- 2. a poison record on the ingress topic, and a restart ------------------------------------


def test_a_poison_record_on_the_ingress_topic_is_refused_once_and_wedges_nothing(
    broker: LocalBroker, tmp_path: Path, gateways: list[IsolatedGateway], topics: Topics
) -> None:
    home = hostile_home(tmp_path / "home")
    first = IsolatedGateway(home, broker.bootstrap_servers, tmp_path / "gateway-1.log")
    second = IsolatedGateway(home, broker.bootstrap_servers, tmp_path / "gateway-2.log")
    gateways += [first, second]
    asyncio.run(_poison(broker.bootstrap_servers, topics, home, first, second))


POISON = with_doctype(parameter_entity_doctype("file:///dev/zero"))
POISON_ID = "poison-1"


async def _poison(bootstrap: str, topics: Topics, home: Home, first: IsolatedGateway,
                  second: IsolatedGateway) -> None:
    schemas = AvroSchemas()
    poison = signed(home, POISON, POISON_ID, sender=HOSTILE_SENDER)
    warm_up, later = valid_documents(home, 2, start=400, prefix="poison-test")
    problems: list[str] = []
    async with aiohttp.ClientSession() as session, \
            ReceiptWatcher(bootstrap, topics, schemas) as watcher:
        with first:
            await wait_ready(session, first.url, alive=first.alive)
            warmed = await post_and_wait(session, first.url, warm_up, "warm-up", home, schemas)
            assert warmed.accepted, warmed
            await produce_ingress(bootstrap, topics, [poison], acked=[])
            started = time.monotonic()
            while POISON_ID not in watcher.receipts and time.monotonic() - started < DEADLINE_S:
                await asyncio.sleep(0.05)
            decided_s = time.monotonic() - started
            workers = first.workers()
            status = first.terminate()
            deadline = time.monotonic() + 2.0  # a worker ends once its stdin is closed
            while (orphans := first.left_running()) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        print(f"\npoison decided: {POISON_ID in watcher.receipts} after {decided_s:.2f} s; "
              f"gateway exit status after SIGTERM: {status}; workers {workers}, "
              f"left running: {orphans}")
        if POISON_ID not in watcher.receipts:
            problems.append(f"no receipt for the poison record within {DEADLINE_S:.0f} s")
        if status != 0:
            problems.append(f"the gateway did not exit cleanly within {STOP_S:.0f} s of "
                            f"SIGTERM (status {status})")
        if orphans:
            problems.append(f"processes of the gateway still running after SIGTERM: {orphans}")

        with second:
            await wait_ready(session, second.url, alive=second.alive)
            answered = await post_and_wait(session, second.url, later, "after restart",
                                           home, schemas, deadline_s=2 * DEADLINE_S)
            print(answered.line())
            if not answered.accepted:
                problems.append(f"after the restart, a valid document was not accepted: "
                                f"status {answered.status}, code {answered.code}")
            await asyncio.sleep(1.0)  # time to decide the poison record again, were it taken
            receipts = [m for m in await read_topics(bootstrap, [topics.receipt])
                        if m.key == POISON_ID.encode()]
            letters = [letter for m in await read_topics(bootstrap, [topics.dlq])
                       if (letter := schemas.decode(m.value)[1])["submission_id"] == POISON_ID]

    codes = [SignedReceipt.decode(schemas, m.value).receipt.error_code for m in receipts]
    letter_codes = [letter["error_code"] for letter in letters]
    print(f"poison: {len(receipts)} receipts {codes}, {len(letters)} dead letters "
          f"{letter_codes}")
    if len(receipts) != 1:
        problems.append(f"{len(receipts)} receipts for the poison record, not 1")
    if not set(codes) <= DTD:
        problems.append(f"the poison record was refused with {codes}, not {sorted(DTD)}")
    if len(letters) != 1:
        problems.append(f"{len(letters)} dead letters for the poison record, not 1")
    if any(letter["original"] != POISON or letter["error_code"] not in DTD
           for letter in letters):
        problems.append(f"a dead letter without the original bytes or with {letter_codes}")
    assert not problems, "\n".join(problems)
