"""Agencies' signatures verified in a worker process, ahead of the event loop.

An SM2 verification is the largest single cost of a document (about 0.3 ms of OpenSSL), and
the event loop is the gateway's bottleneck. A worker thread does not help: the two threads
then pass the GIL to and fro at every ctypes call. A worker process verifies on another
core while the loop works on earlier documents. It is a child process
(`python -m gateway.verify_worker`), spoken to over its stdin and stdout by the event loop
itself: length-prefixed frames, a batch of (public key DER, signature, document) in, one
verdict byte per item out, in order. No helper thread takes the GIL from the loop.

Only the usual case is done ahead: the sender's newest key usable at the time received,
the key `Keyring.verify` tries first. A document that key does not verify, an unknown
sender, a document over the sender's size limit, or any trouble with the worker, is left to
the `authenticate` stage, which verifies in the loop as before and names the error. A worker
that fails is not started again: the gateway goes on verifying in the loop.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import BinaryIO

import structlog

from crypto import CryptoError, KeyEntry, Keyring, SM2PublicKey
from gateway.config import AgencyLimits
from gateway.pipeline import Submission

log = structlog.get_logger(__name__)

# Documents per frame: the loop waits for the first frame of a batch only, then works on
# its documents while the worker verifies the next ones.
CHUNK = 16

Verified = Sequence[KeyEntry | None]
_LENGTH = struct.Struct(">I")


class VerifyAhead:
    def __init__(self, keyring: Keyring, limits_for: Callable[[str], AgencyLimits]) -> None:
        self._keyring = keyring
        self._limits_for = limits_for
        self._worker: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Task[None] | None = None
        self._waiting: deque[tuple[asyncio.Future[bytes], int]] = deque()
        self._failed = False

    async def close(self) -> None:
        """Stops the worker: its stdin closed, it exits (or is killed after a while)."""
        self._failed = True  # nothing more is sent
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
        worker, self._worker = self._worker, None
        if worker is not None:
            assert worker.stdin is not None
            worker.stdin.close()
            try:
                await asyncio.wait_for(worker.wait(), 5)
            except TimeoutError:
                worker.kill()
                await worker.wait()
        self._fail_waiting()

    async def verify(self, submissions: Sequence[Submission]) -> list[asyncio.Future[Verified]]:
        """One future per CHUNK submissions, in order: for each submission, the key entry
        that verified its signature, or None when the loop must verify it."""
        chunks = [submissions[i : i + CHUNK] for i in range(0, len(submissions), CHUNK)]
        if not await self._started():
            return [_done([None] * len(chunk)) for chunk in chunks]
        return [self._send(chunk) for chunk in chunks]

    async def _started(self) -> bool:
        if self._worker is None and not self._failed:
            try:
                self._worker = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway.verify_worker",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            except OSError as exc:
                self._give_up(exc)
            else:
                self._reading = asyncio.create_task(self._read_verdicts(self._worker))
        return self._worker is not None

    def _send(self, chunk: Sequence[Submission]) -> asyncio.Future[Verified]:
        entries = [self._newest_key(s) for s in chunk]
        items = [(entry.public_key.to_der(), s.signature, s.document)
                 for s, entry in zip(chunk, entries, strict=True) if entry is not None]
        assert self._worker is not None and self._worker.stdin is not None
        self._worker.stdin.write(encode_frame(items))
        verdicts: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.append((verdicts, len(items)))
        return asyncio.ensure_future(_signers(verdicts, entries))

    def _newest_key(self, s: Submission) -> KeyEntry | None:
        if len(s.document) > self._limits_for(s.sender).max_document_bytes:
            return None
        try:
            return self._keyring.current_key(s.sender, s.received_at)
        except CryptoError:
            return None

    async def _read_verdicts(self, worker: asyncio.subprocess.Process) -> None:
        assert worker.stdout is not None
        try:
            while True:
                (length,) = _LENGTH.unpack(await worker.stdout.readexactly(_LENGTH.size))
                verdicts = await worker.stdout.readexactly(length)
                waiting, expected = self._waiting.popleft()
                if len(verdicts) != expected:
                    raise ValueError(f"{len(verdicts)} verdicts for {expected} items")
                if not waiting.done():
                    waiting.set_result(verdicts)
        except (OSError, EOFError, ValueError, IndexError) as exc:
            self._give_up(exc)
            worker.kill()

    def _give_up(self, exc: BaseException) -> None:
        log.warning("verify_ahead.stopped", error=repr(exc),
                    note="signatures are verified in the event loop from now on")
        self._failed = True
        self._worker = None
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        while self._waiting:
            waiting, _ = self._waiting.popleft()
            if not waiting.done():
                waiting.set_result(b"")


async def _signers(verdicts: asyncio.Future[bytes], entries: list[KeyEntry | None]) -> Verified:
    """Each entry whose item the worker found verified; None for the rest (and for all of
    them when the worker gave no verdicts)."""
    found = iter(await verdicts or b"\0" * sum(e is not None for e in entries))
    return [entry if entry is not None and next(found) == 1 else None for entry in entries]


def _done(value: Verified) -> asyncio.Future[Verified]:
    future: asyncio.Future[Verified] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


# ---------------------------------------------------------------- the frames


def encode_frame(items: Sequence[tuple[bytes, bytes, bytes]]) -> bytes:
    parts = [_LENGTH.pack(len(items))]
    for fields in items:
        for value in fields:
            parts += (_LENGTH.pack(len(value)), value)
    body = b"".join(parts)
    return _LENGTH.pack(len(body)) + body


def decode_frame(body: bytes) -> list[tuple[bytes, bytes, bytes]]:
    view = memoryview(body)
    (count,), at = _LENGTH.unpack_from(view), _LENGTH.size
    items = []
    for _ in range(count):
        fields = []
        for _ in range(3):
            (length,) = _LENGTH.unpack_from(view, at)
            at += _LENGTH.size
            fields.append(bytes(view[at : at + length]))
            at += length
        items.append((fields[0], fields[1], fields[2]))
    return items


# ---------------------------------------------------------------- the worker


def verdicts(items: Sequence[tuple[bytes, bytes, bytes]]) -> bytes:
    """One byte per (public key DER, signature, document): 1 if it verifies, else 0."""
    out = bytearray()
    for der, signature, document in items:
        try:
            _public_key(der).verify(signature, document)
        except (CryptoError, ValueError):
            out.append(0)
        else:
            out.append(1)
    return bytes(out)


@functools.lru_cache(maxsize=4096)
def _public_key(der: bytes) -> SM2PublicKey:
    return SM2PublicKey.from_der(der)


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answers frames until the gateway closes the pipe."""
    while header := requests.read(_LENGTH.size):
        (length,) = _LENGTH.unpack(header)
        answer = verdicts(decode_frame(requests.read(length)))
        answers.write(_LENGTH.pack(len(answer)) + answer)
        answers.flush()
