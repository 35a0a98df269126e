"""The checks of ingress documents done ahead, in a worker process: the agency's signature
verified and the document parsed.

SM2 verification (about 0.3 ms of OpenSSL) and parsing (lxml, the XSD, the mapping; about as
much again) are most of a document's cost, and the event loop is the gateway's bottleneck. A
worker thread does not help: the two threads then pass the GIL to and fro at every ctypes
and lxml call. A worker process does them on another core while the loop works on earlier
documents. It is a child process (`python -m gateway.ahead_worker`), spoken to over its
stdin and stdout by the event loop itself, so no helper thread takes the GIL from the loop:
length-prefixed frames, a batch of (public key DER, signature, document, format id) in, for
each item a verdict and, when the signature verified and the document parsed, the pickled
ParseResult out, in order.

Only the usual case is done ahead: the sender's newest key usable at the time received (the
key `Keyring.verify` tries first), and a document its adapter accepts. A signature that key
does not verify, an unknown sender, a document over the sender's size limit or refused by
its adapter, or any trouble with the worker, is left to the `authenticate` and `adapt`
stages, which do it in the loop as before and name the error. A worker that fails is not
started again: the gateway goes on in the loop alone.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import structlog

from adapters import AdapterRegistry, ParseResult
from crypto import CryptoError, KeyEntry, Keyring, SM2PublicKey
from gateway.config import AgencyLimits
from gateway.pipeline import Submission

log = structlog.get_logger(__name__)

# Documents per frame: the loop waits for the first frame of a batch only, then works on
# its documents while the worker checks the next ones.
CHUNK = 16

_LENGTH = struct.Struct(">I")
_VERIFIED = 1


@dataclass(frozen=True, slots=True)
class Ahead:
    """What the worker found for one submission: the key that verified its signature, and
    the document parsed; None where the loop must do it."""

    signer: KeyEntry | None = None
    parsed: ParseResult | None = None


NOTHING_AHEAD = Ahead()


class CheckAhead:
    def __init__(self, keyring: Keyring, limits_for: Callable[[str], AgencyLimits]) -> None:
        self._keyring = keyring
        self._limits_for = limits_for
        self._worker: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Task[None] | None = None
        self._waiting: deque[asyncio.Future[bytes]] = deque()  # answers due, in order
        self._failed = False

    async def close(self) -> None:
        """Stops the worker: its stdin closed, it answers what it was sent and exits (or is
        killed after a while). Its answers are read to the end meanwhile: a worker whose
        stdout pipe is full waits for ever, and so would its exit."""
        self._failed = True  # nothing more is sent
        worker, self._worker = self._worker, None
        if worker is not None:
            assert worker.stdin is not None
            worker.stdin.close()
            try:
                await asyncio.wait_for(worker.wait(), 5)
            except TimeoutError:
                worker.kill()
                await worker.wait()
        if self._reading is not None:
            await asyncio.gather(self._reading, return_exceptions=True)
        self._fail_waiting()

    async def check(self, submissions: Sequence[Submission]
                    ) -> list[asyncio.Future[list[Ahead]]]:
        """One future per CHUNK submissions, in order: what was found for each."""
        chunks = [submissions[i : i + CHUNK] for i in range(0, len(submissions), CHUNK)]
        if not await self.start():
            return [_done([NOTHING_AHEAD] * len(chunk)) for chunk in chunks]
        return [self._send(chunk) for chunk in chunks]

    async def start(self) -> bool:
        """Starts the worker process unless it runs or has failed; whether it runs."""
        if self._worker is None and not self._failed:
            try:
                self._worker = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway.ahead_worker",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            except OSError as exc:
                self._give_up(exc)
            else:
                self._reading = asyncio.create_task(self._read_answers(self._worker))
        return self._worker is not None

    def _send(self, chunk: Sequence[Submission]) -> asyncio.Future[list[Ahead]]:
        entries = [self._newest_key(s) for s in chunk]
        items = [(entry.public_key.to_der(), s.signature, s.document, s.format_id.encode())
                 for s, entry in zip(chunk, entries, strict=True) if entry is not None]
        assert self._worker is not None and self._worker.stdin is not None
        self._worker.stdin.write(encode_frame(items))
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.append(answer)
        return asyncio.ensure_future(_found(answer, entries))

    def _newest_key(self, s: Submission) -> KeyEntry | None:
        if len(s.document) > self._limits_for(s.sender).max_document_bytes:
            return None
        try:
            return self._keyring.current_key(s.sender, s.received_at)
        except CryptoError:
            return None

    async def _read_answers(self, worker: asyncio.subprocess.Process) -> None:
        assert worker.stdout is not None
        try:
            while True:
                (length,) = _LENGTH.unpack(await worker.stdout.readexactly(_LENGTH.size))
                answer = await worker.stdout.readexactly(length)
                waiting = self._waiting.popleft()
                if not waiting.done():
                    waiting.set_result(answer)
        except (OSError, EOFError, IndexError) as exc:
            if self._worker is worker:  # not closed by us: it failed
                self._give_up(exc)
                worker.kill()

    def _give_up(self, exc: BaseException) -> None:
        log.warning("check_ahead.stopped", error=repr(exc),
                    note="signatures are verified and documents parsed in the event loop")
        self._failed = True
        self._worker = None
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.done():
                waiting.set_result(b"")


async def _found(answer: asyncio.Future[bytes], entries: list[KeyEntry | None]) -> list[Ahead]:
    """Each submission's Ahead; NOTHING_AHEAD for those not sent, and for all of them when
    the worker gave no answer or one that does not decode."""
    sent = sum(entry is not None for entry in entries)
    try:
        found = iter(decode_answer(await answer, sent))
    except (ValueError, struct.error, pickle.UnpicklingError) as exc:
        log.warning("check_ahead.bad_answer", error=repr(exc))
        return [NOTHING_AHEAD] * len(entries)
    out = []
    for entry in entries:
        if entry is None:
            out.append(NOTHING_AHEAD)
            continue
        verified, parsed = next(found)
        out.append(Ahead(entry, parsed) if verified else NOTHING_AHEAD)
    return out


def _done(value: list[Ahead]) -> asyncio.Future[list[Ahead]]:
    future: asyncio.Future[list[Ahead]] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


# ---------------------------------------------------------------- the frames

Item = tuple[bytes, bytes, bytes, bytes]


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
        for _ in range(4):
            (length,) = _LENGTH.unpack_from(view, at)
            at += _LENGTH.size
            fields.append(bytes(view[at : at + length]))
            at += length
        items.append((fields[0], fields[1], fields[2], fields[3]))
    return items


def encode_answer(results: Sequence[tuple[bool, bytes]]) -> bytes:
    """An answer: per item a verdict byte and the length-prefixed pickled ParseResult (empty
    when there is none); the whole length-prefixed."""
    parts = []
    for verified, parsed in results:
        parts += (bytes((_VERIFIED if verified else 0,)), _LENGTH.pack(len(parsed)), parsed)
    body = b"".join(parts)
    return _LENGTH.pack(len(body)) + body


def decode_answer(body: bytes, count: int) -> list[tuple[bool, ParseResult | None]]:
    """Raises ValueError unless `body` holds exactly `count` results."""
    view = memoryview(body)
    results, at = [], 0
    for _ in range(count):
        verified = view[at] == _VERIFIED
        (length,) = _LENGTH.unpack_from(view, at + 1)
        at += 1 + _LENGTH.size
        parsed = pickle.loads(view[at : at + length]) if length else None
        at += length
        if parsed is not None and not isinstance(parsed, ParseResult):
            raise ValueError(f"the worker sent a {type(parsed).__name__}")
        results.append((verified, parsed))
    if at != len(body):
        raise ValueError(f"the answer holds more than {count} results")
    return results


# ---------------------------------------------------------------- the worker


class Checker:
    """The worker's side: each item's signature verified and, if it verifies, its document
    parsed by the adapter of its format."""

    def __init__(self, adapters: AdapterRegistry) -> None:
        self._adapters = adapters
        self._keys: dict[bytes, SM2PublicKey] = {}

    def answer(self, items: Sequence[Item]) -> bytes:
        return encode_answer([self._check(item) for item in items])

    def _check(self, item: Item) -> tuple[bool, bytes]:
        der, signature, document, format_id = item
        try:
            self._public_key(der).verify(signature, document)
        except (CryptoError, ValueError):
            return False, b""
        try:
            parsed = self._adapters.get(format_id.decode()).parse(document)
        except Exception:  # refused or failed: the loop parses it again and names why
            return True, b""
        return True, pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL)

    def _public_key(self, der: bytes) -> SM2PublicKey:
        key = self._keys.get(der)
        if key is None:
            if len(self._keys) >= 4096:
                self._keys.clear()
            key = self._keys[der] = SM2PublicKey.from_der(der)
        return key


def serve(requests: BinaryIO, answers: BinaryIO, checker: Checker) -> None:
    """Answers frames until the gateway closes the pipe."""
    while len(header := requests.read(_LENGTH.size)) == _LENGTH.size:
        (length,) = _LENGTH.unpack(header)
        body = requests.read(length)
        if len(body) < length:  # the gateway stopped while writing
            return
        answers.write(checker.answer(decode_frame(body)))
        answers.flush()
