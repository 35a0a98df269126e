"""The checks of ingress documents done in a supervised worker process: the agency's
signature verified ahead, and every document parsed there, under a budget.

Why a process. SM2 verification and parsing (lxml, the XSD, the mapping) are most of a
document's cost, and the event loop is the gateway's bottleneck; a worker thread does not
help (the two threads pass the GIL to and fro at every ctypes and lxml call). Above all, a
parse runs in C: nothing inside the process can stop one that spins or swells. A worker
process can be killed, so every document's parse gets a time and memory budget, and one
document never stalls the others.

The protocol. The worker (`python -P -m gateway.decide.ahead_worker`) is spoken to over its
stdin and stdout by the event loop itself: length-prefixed frames of items (public key DER,
signature, document, format id, sender, time received; for a DXP envelope the first field
holds the DER of the sender's certificates instead, and the signature is empty; for a
submission that names no format, the format is empty and the first field holds the sender's
newest key, then its certificates) in; out, one message per item as it finishes (its
verdict, and the pickled ParseResult or the refusal; for an envelope, also what opening it
found; for a format detected, the format and then the answer for the item in that format),
after a hello once it is ready, and a goodbye when it leaves by itself (after a document
that left it large). An item with no key is only parsed: the loop has already verified it.

What the worker runs. The gateway's own stages (gateway.decide.pipeline: Authenticate,
ChooseAdapter, Adapt; OpenEnvelope instead of Authenticate for a DXP envelope; DetectFormat
first for a submission that names no format) on a context
made of the item, its keyring the one key the gateway chose for the sender (for an
envelope, the sender's certificates): one code judges a document in
either process, and a refusal the worker finds is the one the stages would raise, with its
code and what was read before it.

The supervision. The worker's answers come in the order the items were sent, so the item it
is working on is always the first one unanswered. The supervisor restarts it whenever it
ends and sends it again whatever was not answered:
- a document that uses more than `time_limit_ms` of the worker's CPU time, or waits (using
  none) ten times as long, gets the worker killed and is refused with PARSE_TIME_EXCEEDED.
  CPU time, not the clock: a worker that a busy machine runs seldom is no fault of the
  document (small documents were refused so on a loaded machine);
- a document that needs more memory than `memory_limit_mb` is refused by the worker itself
  with PARSE_MEMORY_EXCEEDED (its address space is limited), which then leaves;
- a worker that dies (killed, crashed) is restarted at once and its document tried once
  more; a document that loses a worker twice is refused with PARSE_WORKER_FAILED;
- a worker that cannot start (for example a broken installation) is tried again with
  growing pauses; meanwhile nothing is parsed, documents wait, and `ready` is false.
The event loop itself never parses a document.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import structlog

from adapters import AdapterRegistry, FormatDetector, ParseResult
from crypto import (
    Certificate,
    CryptoError,
    KeyEntry,
    Keyring,
    SM2PublicKey,
    certificate_entry,
)
from gateway.decide.pipeline import (
    DXP_FORMAT,
    Adapt,
    Authenticate,
    ChooseAdapter,
    Context,
    DetectFormat,
    EnvelopeRefused,
    Opened,
    OpenEnvelope,
    Pipeline,
    Refusal,
    Stage,
    Submission,
)
from gateway.errors import GatewayError, crash_site
from gateway.home.config import AgencyLimits, ParseSettings
from gateway.home.live_keyring import LiveKeyring
from message_formats import CodedError, SafeXmlParser

log = structlog.get_logger(__name__)

# Items per request frame: the loop waits for the first items of a batch only, then works
# on them while the worker checks the next ones.
CHUNK = 16

PARSE_TIME_EXCEEDED = "PARSE_TIME_EXCEEDED"
PARSE_MEMORY_EXCEEDED = "PARSE_MEMORY_EXCEEDED"
PARSE_WORKER_FAILED = "PARSE_WORKER_FAILED"

_LENGTH = struct.Struct(">I")
# What the worker says: the first byte of each of its messages.
HELLO, ANSWER, GOODBYE = b"H", b"A", b"B"
# An answer's outcome: its second byte.
NOT_VERIFIED, PARSED, REFUSED, OPENED, DETECTED = 0, 1, 2, 3, 4
# How often the supervisor looks at the clock of the document being parsed.
_TICK_S = 0.05
# A document on which the worker waits without using CPU (nothing in a parse should) is
# given this many times its CPU budget on the clock.
_WAIT_FACTOR = 10
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_MOST_PAUSE_S = 5.0
# A worker that has not said hello by then is taken for one that cannot start.
_START_LIMIT_S = 60.0


@dataclass(frozen=True, slots=True)
class Ahead:
    """What the worker found for one submission: the key that verified its signature (None
    where the loop must verify it), and the document parsed or why it was refused; for a
    DXP envelope, what opening it found (the signer is then named by `opened.serial`); for
    a submission that named no format, the format its content shows (`format_id`)."""

    signer: KeyEntry | None = None
    parsed: ParseResult | None = None
    refused: Refusal | None = None
    opened: Opened | None = None
    format_id: str | None = None


NOTHING_AHEAD = Ahead()


class ParseUnavailable(GatewayError):
    """No worker answered before the gateway stopped: the document is taken again later,
    never decided without its parse."""

    code = "PARSE_UNAVAILABLE"


# public key DER (empty: only parse), signature, document, format id, sender, time received
Item = tuple[bytes, bytes, bytes, bytes, bytes, bytes]
_ITEM_FIELDS = 6
Answer = tuple[int, bytes]  # outcome, payload


@dataclass(slots=True, eq=False)
class _Pending:
    item: Item
    answer: asyncio.Future[Answer | None]
    attempts: int = 0


@dataclass(slots=True)
class _WorkerState:
    process: asyncio.subprocess.Process
    ready: bool = False
    sent: int = 0  # how many of the unanswered items, from the oldest, it was sent
    since: float = field(default_factory=time.monotonic)  # when it began the oldest one
    # The worker's CPU seconds when the supervisor first saw it on the oldest one (`since`
    # as it was then); None before, or where the system does not tell them.
    cpu_mark: tuple[float, float | None] | None = None


class CheckAhead:
    """The gateway's side: sends items, supervises the worker, hands out what it found."""

    def __init__(self, keyring: LiveKeyring, limits_for: Callable[[str], AgencyLimits],
                 settings: ParseSettings | None = None,
                 on_worker_lost: Callable[[str], None] | None = None,
                 worker_module: str = "gateway.decide.ahead_worker") -> None:
        """`keyring`: the keyring in force, read for each submission (the worker holds no
        keyring: it is sent each item's public key, so a reload needs nothing of it).
        `worker_module`: what `python -m` runs as the worker (tests rig one)."""
        self._keyring = keyring
        self._worker_module = worker_module
        self._limits_for = limits_for
        self._settings = settings or ParseSettings()
        self._on_worker_lost = on_worker_lost
        self._unanswered: deque[_Pending] = deque()
        self._worker: _WorkerState | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def ready(self) -> bool:
        """Whether a worker is up and can take work."""
        return self._worker is not None and self._worker.ready

    @property
    def closed(self) -> bool:
        """Closed: nothing asked is answered until the next start."""
        return self._closed

    @property
    def worker_pid(self) -> int | None:
        return self._worker.process.pid if self._worker is not None else None

    async def start(self) -> None:
        """Starts the supervisor (and with it the worker), unless it runs; also after a
        close."""
        if self._supervisor is None:
            self._closed = False
            self._supervisor = asyncio.create_task(self._supervise())

    async def close(self) -> None:
        """Stops the worker; whatever was not answered, and whatever is asked until the next
        start, gets no answer (so nothing waits for a worker that will not come)."""
        self._closed = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        worker, self._worker = self._worker, None
        if worker is not None:
            await _end(worker.process)
        while self._unanswered:
            _settle(self._unanswered.popleft(), None)

    def check(self, submissions: Sequence[Submission]) -> list[asyncio.Future[list[Ahead]]]:
        """One future per CHUNK submissions, in order: what was found for each. The usual
        case is sent: the sender's newest key, a document within its size limit."""
        out: list[asyncio.Future[list[Ahead]]] = []
        for at in range(0, len(submissions), CHUNK):
            picks = [self._item(s) for s in submissions[at : at + CHUNK]]
            answers = self._send([item for item, _ in picks if item is not None])
            out.append(asyncio.ensure_future(_found(answers, picks)))
        return out

    def _item(self, s: Submission) -> tuple[Item | None, KeyEntry | None]:
        """What is sent of a submission, and the key chosen for it; no item when it is not
        sent (too large; no key, or for an envelope no certificate: the stages then refuse
        it without reading it)."""
        if len(s.document) > self._limits_for(s.sender).max_document_bytes:
            return None, None
        if not s.format_id:
            return self._detection_item(s)
        if s.format_id == DXP_FORMAT:
            certificates = self._certificates(s)
            return (item_of(s, pack_certificates(certificates)) if certificates else None,
                    None)
        entry = self._newest_key(s)
        return (None, None) if entry is None else (item_of(s, entry.public_key.to_der()),
                                                   entry)

    def _detection_item(self, s: Submission) -> tuple[Item | None, KeyEntry | None]:
        """A submission naming no format: the worker detects it, then checks it as it would
        an item of that format, so it is sent what either needs: the sender's newest key
        (empty when it has none) and its certificates."""
        entry, certificates = self._newest_key(s), self._certificates(s)
        if entry is None and not certificates:
            return None, None
        key = entry.public_key.to_der() if entry is not None else b""
        return item_of(s, pack_certificates([key, *certificates])), entry

    def _certificates(self, s: Submission) -> list[bytes]:
        """All the sender's certificates, usable or not: the worker holds each to its own
        validity (CERT_EXPIRED, CERT_NOT_YET_VALID), so that an envelope signed under an
        expired one is still read and its receipt echoes it; the gateway then confirms the
        signer under the keyring in force (revocation, the entry's window)."""
        return [entry.certificate.der
                for entry in self._keyring.current.certificate_entries(s.sender)
                if entry.certificate is not None]

    async def parse(self, s: Submission) -> Ahead:
        """The document of a submission the loop has verified, parsed by the worker; raises
        ParseUnavailable when the checks were closed before it was answered."""
        (answer,) = self._send([item_of(s)])
        found = await answer
        if found is None:
            raise ParseUnavailable("the gateway stopped before the document was parsed")
        return _ahead_of(None, found)

    def _newest_key(self, s: Submission) -> KeyEntry | None:
        try:
            return self._keyring.current.current_key(s.sender, s.received_at)
        except CryptoError:
            return None

    def _send(self, items: list[Item]) -> list[asyncio.Future[Answer | None]]:
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, loop.create_future()) for item in items]
        if self._closed:
            for p in pending:
                _settle(p, None)
        else:
            self._unanswered.extend(pending)
            self._send_unsent()
        return [p.answer for p in pending]

    def _send_unsent(self) -> None:
        worker = self._worker
        if worker is None or not worker.ready or worker.sent == len(self._unanswered):
            return
        assert worker.process.stdin is not None
        if worker.sent == 0:
            worker.since = time.monotonic()
        unsent = [self._unanswered[n].item for n in range(worker.sent, len(self._unanswered))]
        for at in range(0, len(unsent), CHUNK):
            worker.process.stdin.write(encode_frame(unsent[at : at + CHUNK]))
        worker.sent = len(self._unanswered)

    # ------------------------------------------------------------ supervision

    async def _supervise(self) -> None:
        failures = 0
        while not self._closed:
            started = await self._spawn()
            if started is None:
                ended, said_hello = "could not start", False
            else:
                self._worker = started
                ended = await self._watch(started)
                said_hello = started.ready
                self._worker = None
                await _end(started.process)
                self._after_loss(started, ended)
            if ended != "left":
                log.warning("ahead.worker_lost", why=ended, unanswered=len(self._unanswered))
                if self._on_worker_lost is not None:
                    self._on_worker_lost(ended)
            failures = 0 if said_hello else failures + 1
            if failures:
                await asyncio.sleep(min(_MOST_PAUSE_S, 0.1 * 2 ** (failures - 1)))

    async def _spawn(self) -> _WorkerState | None:
        try:
            process = await asyncio.create_subprocess_exec(
                *worker_command(self._settings, self._worker_module),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                env=worker_environment())
        except OSError as exc:
            log.error("ahead.worker_not_started", error=repr(exc))
            return None
        return _WorkerState(process)

    async def _watch(self, worker: _WorkerState) -> str:
        """Reads the worker's messages until it ends; kills it when the document it works
        on has had its time, or when it does not say hello in time. Why it ended: left,
        died, overran or could not start."""
        reading = asyncio.create_task(self._read(worker))
        limit_s = self._settings.time_limit_ms / 1000
        try:
            while True:
                done, _ = await asyncio.wait({reading}, timeout=_TICK_S)
                if done:
                    return reading.result()
                if worker.sent and _overran(worker, limit_s):
                    return "overran"
                if not worker.ready and time.monotonic() - worker.since > _START_LIMIT_S:
                    return "could not start"
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    async def _read(self, worker: _WorkerState) -> str:
        """Takes what the pipe holds at each wake-up and handles every whole message in it
        (the worker writes one per item; several usually wait by the time the loop reads)."""
        assert worker.process.stdout is not None
        stdout = worker.process.stdout
        pending = bytearray()
        try:
            while chunk := await stdout.read(1 << 20):
                pending += chunk
                at = 0
                while len(pending) - at >= _LENGTH.size:
                    (length,) = _LENGTH.unpack_from(pending, at)
                    end = at + _LENGTH.size + length
                    if end > len(pending):
                        break
                    ended = self._handle(worker, bytes(pending[at + _LENGTH.size : end]))
                    if ended is not None:
                        return ended
                    at = end
                del pending[:at]
        except ConnectionError:
            pass
        return "died"

    def _handle(self, worker: _WorkerState, message: bytes) -> str | None:
        """One message of the worker's; why it ended, if the message says so."""
        kind = message[:1]
        if kind == HELLO:
            worker.ready = True
            self._send_unsent()
        elif kind == ANSWER and worker.sent:
            worker.sent -= 1
            worker.since = time.monotonic()
            _settle(self._unanswered.popleft(), (message[1], message[2:]))
        elif kind == GOODBYE:
            return "left"
        else:
            return "died"  # a message it cannot send: treated as a failed worker
        return None

    def _after_loss(self, worker: _WorkerState, ended: str) -> None:
        """The item the worker was working on when it overran or died is refused, or tried
        once more; every item is sent again to the next worker."""
        if worker.sent and ended != "left":
            working_on = self._unanswered[0]
            working_on.attempts += 1
            refusal = None
            if ended == "overran":
                limit_ms = self._settings.time_limit_ms
                refusal = Refusal(PARSE_TIME_EXCEEDED, "the document was not parsed within "
                                  f"{limit_ms} ms of CPU time ({limit_ms * _WAIT_FACTOR} ms "
                                  "on the clock)")
            elif working_on.attempts >= 2:
                refusal = Refusal(PARSE_WORKER_FAILED, "the parser's process ended twice "
                                  "while parsing the document")
            if refusal is not None:
                self._unanswered.popleft()
                _settle(working_on, (REFUSED, pickle.dumps(refusal)))


def _overran(worker: _WorkerState, limit_s: float) -> bool:
    """Whether the document the worker is on has used more than `limit_s` of its CPU time
    (as far as the ticks tell: counted from the first tick that saw it), or has waited
    _WAIT_FACTOR times as long. Where the system does not tell a process's CPU time, the
    clock alone counts."""
    waited = time.monotonic() - worker.since
    if waited > limit_s * _WAIT_FACTOR:
        return True
    mark = worker.cpu_mark
    if mark is None or mark[0] != worker.since:
        worker.cpu_mark = (worker.since, cpu_seconds(worker.process.pid))
        return False
    if waited <= limit_s:
        return False
    used = cpu_seconds(worker.process.pid)
    return used is None or mark[1] is None or used - mark[1] > limit_s


def cpu_seconds(pid: int) -> float | None:
    """The user and system CPU time of a process, from /proc (None elsewhere, or once it
    has gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_PER_S


async def _end(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None:
        process.stdin.close()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    await process.wait()


def _settle(pending: _Pending, answer: Answer | None) -> None:
    if not pending.answer.done():
        pending.answer.set_result(answer)


async def _found(answers: list[asyncio.Future[Answer | None]],
                 picks: list[tuple[Item | None, KeyEntry | None]]) -> list[Ahead]:
    """Each submission's Ahead; NOTHING_AHEAD for those not sent or not answered. Items are
    settled in the order they were sent (answers, refusals after a loss, a close alike), so
    once the last is settled all are: one wake-up per chunk, not one per item."""
    if answers:
        await answers[-1]
    got = iter(answers)
    out = []
    for item, entry in picks:
        found = next(got).result() if item is not None else None
        if item is not None and not item[3] and found is not None and found[0] != DETECTED:
            entry = None  # settled by the supervisor (overran, failed): nothing verified
        out.append(NOTHING_AHEAD if found is None else _ahead_of(entry, found))
    return out


def _ahead_of(entry: KeyEntry | None, answer: Answer) -> Ahead:
    outcome, payload = answer
    if outcome == PARSED:
        parsed = pickle.loads(payload)
        if not isinstance(parsed, ParseResult):
            raise TypeError(f"the worker sent a {type(parsed).__name__}")
        return Ahead(entry, parsed)
    if outcome == REFUSED:
        refusal = pickle.loads(payload)
        if not isinstance(refusal, Refusal):
            raise TypeError(f"the worker sent a {type(refusal).__name__}")
        return Ahead(entry, refused=refusal)
    if outcome == OPENED:
        opened, parsed, refusal = pickle.loads(payload)
        if not isinstance(opened, Opened):
            raise TypeError(f"the worker sent a {type(opened).__name__}")
        return Ahead(None, parsed, refusal, opened)
    if outcome == DETECTED:
        (length,) = _LENGTH.unpack_from(payload)
        end = _LENGTH.size + length
        format_id = payload[_LENGTH.size : end].decode()
        # The key verified the signature only of a document checked as that format.
        verified_by = entry if format_id and format_id != DXP_FORMAT else None
        found = _ahead_of(verified_by, (payload[end], payload[end + 1 :]))
        return replace(found, format_id=format_id or None)
    return NOTHING_AHEAD


def worker_command(settings: ParseSettings,
                   module: str = "gateway.decide.ahead_worker") -> list[str]:
    """`-P`: the current folder is not put on the import path, so a gateway started in its
    home folder (which has a `contracts/` folder) still imports the package."""
    return [sys.executable, "-P", "-m", module,
            "--parent", str(os.getpid()),
            "--memory-limit-mb", str(settings.memory_limit_mb),
            "--recycle-above-mb", str(settings.recycle_above_mb)]


def worker_environment() -> dict[str, str]:
    """The gateway's environment, with the folder its own packages were imported from put
    first on the import path: the worker runs the same code as the gateway."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}


# ---------------------------------------------------------------- the frames


def item_of(s: Submission, key_der: bytes = b"") -> Item:
    """What the worker is sent of a submission: with the key to verify its signature by,
    or (no key) only its document to parse. For a DXP envelope `key_der` is the sender's
    certificates (`pack_certificates`)."""
    return (key_der, s.signature if key_der else b"", s.document, s.format_id.encode(),
            s.sender.encode(), s.received_at.isoformat().encode())


def pack_certificates(ders: Sequence[bytes]) -> bytes:
    """Certificates' DER, each length-prefixed: the first field of a DXP envelope's item."""
    return b"".join(_LENGTH.pack(len(der)) + der for der in ders)


def unpack_certificates(packed: bytes) -> list[bytes]:
    ders, at = [], 0
    while at < len(packed):
        (length,), at = _LENGTH.unpack_from(packed, at), at + _LENGTH.size
        ders.append(packed[at : at + length])
        at += length
    return ders


def encode_frame(items: Sequence[Item]) -> bytes:
    """A request: the items' fields, each length-prefixed, after the count; the whole
    length-prefixed."""
    parts = [_LENGTH.pack(len(items))]
    for fields in items:
        for value in fields:
            parts += (_LENGTH.pack(len(value)), value)
    body = b"".join(parts)
    return _LENGTH.pack(len(body)) + body


def decode_frame(body: bytes) -> list[Item]:
    view = memoryview(body)
    (count,), at = _LENGTH.unpack_from(view), _LENGTH.size
    items = []
    for _ in range(count):
        fields = []
        for _ in range(_ITEM_FIELDS):
            (length,) = _LENGTH.unpack_from(view, at)
            at += _LENGTH.size
            fields.append(bytes(view[at : at + length]))
            at += length
        items.append((fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]))
    return items


def message(kind: bytes, payload: bytes = b"") -> bytes:
    """One message of the worker's: its kind and payload, length-prefixed."""
    return _LENGTH.pack(len(kind) + len(payload)) + kind + payload


def answer_message(outcome: int, payload: bytes = b"") -> bytes:
    return message(ANSWER, bytes((outcome,)) + payload)


def detected_payload(format_id: str, outcome: int, payload: bytes) -> bytes:
    """A DETECTED answer's payload: the format found (empty: none, the answer is its
    refusal), then the answer for the item in that format."""
    named = format_id.encode()
    return _LENGTH.pack(len(named)) + named + bytes((outcome,)) + payload


# ---------------------------------------------------------------- the worker


AUTHENTICATE = "authenticate"
OPEN = "open"
DETECT = "detect"
# The worker keeps the keyrings of the keys it was last sent, up to this many.
_MOST_KEYRINGS = 4096


class Checker:
    """The worker's side: the gateway's stages run on each item's context. An item with a
    key is authenticated (under a keyring of that key alone), then parsed if it verified;
    an item without one is only parsed. As in the gateway, a stage's CodedError is the
    document's refusal, and anything else a bug, refused as INTERNAL_ERROR naming only where
    it happened."""

    def __init__(self, adapters: AdapterRegistry) -> None:
        parser = SafeXmlParser()
        detector = FormatDetector(adapters, parser=parser)
        parse: list[tuple[str, Stage]] = [("adapter", ChooseAdapter(adapters)), ("adapt", Adapt())]
        self._parse = Pipeline(parse)
        self._verify_and_parse = Pipeline([(AUTHENTICATE, Authenticate()), *parse])
        self._open_and_parse = Pipeline([
            (OPEN, OpenEnvelope(detector=detector, parser=parser)), *parse])
        self._detect = Pipeline([(DETECT, DetectFormat(detector, parser))])
        self._keyrings: dict[tuple[bytes, bytes], Keyring] = {}

    def check(self, item: Item) -> tuple[bytes, bool]:
        """The answer message, and whether the worker ran out of memory on it."""
        outcome, payload, out_of_memory = self._answer(item)
        return answer_message(outcome, payload), out_of_memory

    def _answer(self, item: Item) -> tuple[int, bytes, bool]:
        der, signature, document, format_id, sender, received_at = item
        submission = Submission("", sender.decode(), format_id.decode(), document, signature,
                                datetime.fromisoformat(received_at.decode()))
        if not format_id:
            return self._detected(item, submission)
        stages, keyring = self._parse, None
        if der:
            dxp = submission.format_id == DXP_FORMAT
            keyring = (self._certificate_keyring if dxp else self._keyring)(der, sender)
            if keyring is None:
                return NOT_VERIFIED, b"", False
            stages = self._open_and_parse if dxp else self._verify_and_parse
        # The ids and the digest are the gateway's to give: none of these stages reads them.
        reached = stages.run(Context(submission, event_id="", digest="", keyring=keyring))
        failed = reached.failed
        opened = (failed.opened if isinstance(failed, EnvelopeRefused)
                  else reached.context.opened)
        if opened is not None and not isinstance(failed, MemoryError):
            refusal = None if failed is None else _refusal_of(failed, reached.stage)
            return OPENED, pickle.dumps((opened, reached.context.parsed, refusal),
                                        pickle.HIGHEST_PROTOCOL), False
        if failed is None:
            return PARSED, pickle.dumps(reached.context.parsed, pickle.HIGHEST_PROTOCOL), False
        if reached.stage == AUTHENTICATE and not isinstance(failed, MemoryError):
            return NOT_VERIFIED, b"", False  # the gateway verifies it itself, and says why
        return _refused(failed, reached.stage)

    def _detected(self, item: Item, submission: Submission) -> tuple[int, bytes, bool]:
        """A submission naming no format: its format found from its content, then the
        answer for the item in that format, given the key or the certificates it needs
        (none: not verified, and not read further)."""
        reached = self._detect.run(Context(submission, event_id="", digest=""))
        if reached.failed is not None:
            outcome, payload, out_of_memory = _refused(reached.failed, reached.stage)
            return DETECTED, detected_payload("", outcome, payload), out_of_memory
        format_id = reached.context.submission.format_id
        der, signature, document, _, sender, received_at = item
        key, *certificates = unpack_certificates(der) or [b""]
        needed = pack_certificates(certificates) if format_id == DXP_FORMAT else key
        outcome, payload, out_of_memory = NOT_VERIFIED, b"", False
        if needed:
            outcome, payload, out_of_memory = self._answer(
                (needed, signature, document, format_id.encode(), sender, received_at))
        return DETECTED, detected_payload(format_id, outcome, payload), out_of_memory

    def _keyring(self, der: bytes, sender: bytes) -> Keyring | None:
        """A keyring of the one key the gateway chose for the sender; None for a key that
        does not load."""
        return self._cached(der, sender, lambda: Keyring(
            [KeyEntry(sender.decode(), SM2PublicKey.from_der(der))]))

    def _certificate_keyring(self, packed: bytes, sender: bytes) -> Keyring | None:
        """A keyring of the sender's certificates the gateway chose; None for one that does
        not load."""
        return self._cached(packed, sender, lambda: Keyring(
            [certificate_entry(sender.decode(), Certificate.from_der(der))
             for der in unpack_certificates(packed)]))

    def _cached(self, keys: bytes, sender: bytes, build: Callable[[], Keyring]
                ) -> Keyring | None:
        """The keyring `build` makes of `keys`, made once per (keys, sender) while the cache
        holds; None for keys that do not load."""
        keyring = self._keyrings.get((keys, sender))
        if keyring is None:
            try:
                keyring = build()
            except (CryptoError, ValueError, struct.error):
                return None
            if len(self._keyrings) >= _MOST_KEYRINGS:
                self._keyrings.clear()
            self._keyrings[keys, sender] = keyring
        return keyring


def _refused(failed: Exception, stage: str | None) -> tuple[int, bytes, bool]:
    """A stage's refusal as the worker's answer; whether it ran out of memory."""
    if isinstance(failed, MemoryError):
        refusal = Refusal(PARSE_MEMORY_EXCEEDED, "parsing the document needs more memory "
                          "than the parser may use")
        return REFUSED, pickle.dumps(refusal), True
    return REFUSED, pickle.dumps(_refusal_of(failed, stage)), False


def _refusal_of(failed: Exception, stage: str | None) -> Refusal:
    """As in the gateway: a stage's CodedError is the document's refusal, anything else a
    bug, refused as INTERNAL_ERROR naming only where it happened."""
    if isinstance(failed, CodedError):
        return Refusal.of(failed)
    where = crash_site(failed)
    log.error("ahead.parse_crashed", stage=stage, error=where)
    return Refusal("INTERNAL_ERROR", f"the parser failed ({where})")


def serve(requests: BinaryIO, answers: BinaryIO, checker: Checker,
          grown_too_much: Callable[[], bool] = lambda: False) -> None:
    """Says hello, then answers each item of each frame as it finishes, until the gateway
    closes the pipe or the worker should leave (memory ran out, or it has grown too much):
    then it says goodbye."""
    answers.write(message(HELLO))
    answers.flush()
    while len(header := requests.read(_LENGTH.size)) == _LENGTH.size:
        (length,) = _LENGTH.unpack(header)
        body = requests.read(length)
        if len(body) < length:  # the gateway stopped while writing
            return
        for item in decode_frame(body):
            answer, out_of_memory = checker.check(item)
            answers.write(answer)
            answers.flush()
            if out_of_memory or grown_too_much():
                answers.write(message(GOODBYE))
                answers.flush()
                return
