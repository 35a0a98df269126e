"""The gateway's seals on what it gives: one SM2 signature for many messages decided together.

Receipts and deliveries are sealed alike (DESIGN.md §6): the messages asked for within
`linger_ms` of each other, or while the previous batch was being signed, become one batch;
its Merkle root is signed once (`crypto.BatchSigner`), and each message gets the seal and
its own inclusion proof, so that it verifies alone. Signing each message alone would cost an
SM2 signature (about half a millisecond here) per receipt and per delivery.

What a message is, and so which kind of seal it can pass for, is the caller's affair: a
delivery's message starts with its own domain (gateway.deliveries.proof), a receipt's is its
Avro body.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crypto import BatchSeal, BatchSigner, InclusionProof, SM2PrivateKey
from gateway.clock import utc_now
from gateway.deliveries.proof import DELIVERY_SEAL_SCHEMA, H_SEAL, delivery_leaf, epoch_ms
from gateway.kafka.names import Outbound
from gateway.receipts.receipt import RECEIPT_SCHEMA, Receipt, SignedReceipt
from gateway.trail.writer import avro_bytes, avro_string
from message_formats import SINGLE_OBJECT_MAGIC, AvroSchemas

Send = Callable[[Outbound], Awaitable[asyncio.Future[Any]]]


@dataclass(frozen=True, slots=True)
class Sealed:
    """A message's seal (shared with its batch) and its place in the batch."""

    seal: BatchSeal
    proof: InclusionProof


class BatchSealer:
    """Seals messages in batches with the gateway's sealing key. For one event loop."""

    def __init__(self, key: SM2PrivateKey, *, linger_ms: float = 2.0) -> None:
        self._signer = BatchSigner(key)
        self._linger_s = linger_ms / 1000
        self._waiting: list[_Asked] = []
        self._signing: asyncio.Task[None] | None = None

    def request_all(self, messages: Sequence[bytes]) -> asyncio.Future[list[Sealed]]:
        """Puts `messages` in the next batch, in order; one future holds their seals once
        signed (the signing error, when the key cannot sign)."""
        sealed: asyncio.Future[list[Sealed]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Asked(messages, sealed))
        if self._signing is None or self._signing.done():
            self._signing = asyncio.create_task(self._seal_waiting(), name="batch-sealer")
        return sealed

    async def seal(self, message: bytes) -> Sealed:
        (sealed,) = await self.request_all((message,))
        return sealed

    async def _seal_waiting(self) -> None:
        while self._waiting:
            await asyncio.sleep(self._linger_s)
            batch, self._waiting = self._waiting, []
            try:
                signed = await asyncio.to_thread(
                    self._signer.sign, [m for asked in batch for m in asked.messages])
            except Exception as exc:  # a key that cannot sign fails each message, loudly
                for asked in batch:
                    if not asked.sealed.done():
                        asked.sealed.set_exception(exc)
                continue
            index = 0
            for asked in batch:
                seals = [Sealed(signed.seal, signed.proof(index + n))
                         for n in range(len(asked.messages))]
                index += len(seals)
                if not asked.sealed.done():
                    asked.sealed.set_result(seals)


@dataclass(frozen=True, slots=True)
class _Asked:
    """Messages asked to be sealed together, and who waits for their seals."""

    messages: Sequence[bytes]
    sealed: asyncio.Future[list[Sealed]]


def sealed_now(key: SM2PrivateKey, outs: Sequence[Outbound], schemas: AvroSchemas
               ) -> list[Outbound]:
    """The deliveries with their proofs, sealed at once as one batch (for tools that
    publish deliveries outside the service: a re-delivery)."""
    if not outs:
        return []
    sealed_at = utc_now()
    signed = BatchSigner(key).sign([delivery_leaf(out.value, sealed_at) for out in outs])
    headers = ProofHeaders(schemas)
    return [with_proof(out, headers.encode(sealed_at, Sealed(signed.seal, signed.proof(index))))
            for index, out in enumerate(outs)]


def with_proof(out: Outbound, header: bytes) -> Outbound:
    """The delivery with its `px-seal` header."""
    return Outbound(out.topic, out.key, out.value, (*out.headers, (H_SEAL, header)))


class ProofHeaders:
    """The `px-seal` header of each delivery (a DeliverySeal, the very bytes
    `DeliveryProof.encode` gives), with what the deliveries of one batch share, its key id,
    root, count and signature, encoded once for the batch: the header is made per delivery,
    on the hot path."""

    __slots__ = ("_at", "_head", "_middle", "_prefix", "_seal")

    def __init__(self, schemas: AvroSchemas) -> None:
        self._prefix = SINGLE_OBJECT_MAGIC + schemas.fingerprint(DELIVERY_SEAL_SCHEMA)
        self._seal: BatchSeal | None = None
        self._head = self._middle = b""
        self._at = (-1, b"")  # the last sealed_at (milliseconds) and its encoding

    def encode(self, sealed_at: datetime, sealed: Sealed) -> bytes:
        seal = sealed.seal
        if seal is not self._seal:
            self._seal = seal
            self._head = self._prefix + avro_string(seal.key_id)
            self._middle = (avro_bytes(seal.root) + avro_long(seal.count)
                            + avro_bytes(seal.signature))
        at_ms = epoch_ms(sealed_at)
        if at_ms != self._at[0]:  # deliveries put within a millisecond share it
            self._at = (at_ms, avro_long(at_ms))
        proof = sealed.proof
        path = b"".join([HASH_LENGTH + h if len(h) == 32 else avro_bytes(h) for h in proof.path])
        return b"".join((self._head, self._at[1], self._middle, avro_long(proof.index),
                         avro_long(len(proof.path)) + path if path else b"", b"\x00"))


HASH_LENGTH = b"\x40"  # Avro's length of a 32-byte hash, what a proof's path holds
SMALL_LONGS = tuple(bytes((n << 1,)) for n in range(64))  # 0..63: one byte each


def avro_long(n: int) -> bytes:
    """Avro's binary encoding of a long: zig-zag, then a varint."""
    if 0 <= n < 64:
        return SMALL_LONGS[n]
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


Handed = asyncio.Future[list[asyncio.Future[Any]]]


@dataclass(frozen=True, slots=True)
class _Pending:
    outs: Sequence[Outbound]
    marks: Sequence[bool]  # which of `outs` are sealed
    sealed_at: datetime
    sealed: asyncio.Future[list[Sealed]]
    handed: Handed


class DeliverySealer:
    """Hands messages to `send` in the order they were put, the deliveries among them sealed,
    each with its proof: the caller goes on at once (a document's messages wait for their
    batch's seal, the next document does not), and versions of one document still reach
    their recipients in the order they came."""

    def __init__(self, sealer: BatchSealer, schemas: AvroSchemas, send: Send) -> None:
        self._sealer = sealer
        self._headers = ProofHeaders(schemas)
        self._send = send
        self._queue: deque[_Pending] = deque()
        self._sending: asyncio.Task[None] | None = None

    def put_all(self, outs: Sequence[Outbound], *, sealed: Sequence[bool] | None = None
                ) -> Handed:
        """Sends `outs` after those put before, those `sealed` marks (all, when None) sealed
        together (one waiter for all); the future holds, once they are handed over, what
        `send` gave for each (the producer's futures, done when the broker has each), or the
        error that kept them from it. The messages of a document that need no seal go with
        those that do, back to back: one produce request, not one before the seal and one
        after it."""
        marks = [True] * len(outs) if sealed is None else list(sealed)
        sealed_at = utc_now()
        leaves = [delivery_leaf(out.value, sealed_at)
                  for out, mark in zip(outs, marks, strict=True) if mark]
        loop = asyncio.get_running_loop()
        if leaves:
            seals = self._sealer.request_all(leaves)
        else:
            seals = loop.create_future()
            seals.set_result([])
        handed: Handed = loop.create_future()
        self._queue.append(_Pending(outs, marks, sealed_at, seals, handed))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_sealed(), name="delivery-sealer")
        return handed

    def put(self, out: Outbound) -> asyncio.Future[Any]:
        """`put_all` of one delivery; the future is done when the broker has it (as the
        producer's own)."""
        sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.put_all([out]).add_done_callback(functools.partial(_pass_on_first, sent))
        return sent

    async def _send_sealed(self) -> None:
        while self._queue:
            pending = self._queue.popleft()
            try:
                seals = iter(await pending.sealed)
                handed = [await self._send(self._proven(out, pending.sealed_at, next(seals))
                                           if mark else out)
                          for out, mark in zip(pending.outs, pending.marks, strict=True)]
            except Exception as exc:  # the waiter hears of it
                pending.handed.set_exception(exc)
                continue
            pending.handed.set_result(handed)

    def _proven(self, out: Outbound, sealed_at: datetime, sealed: Sealed) -> Outbound:
        return with_proof(out, self._headers.encode(sealed_at, sealed))


def _pass_on_first(into: asyncio.Future[Any], handed: Handed) -> None:
    if handed.cancelled():
        into.cancel()
    elif (failed := handed.exception()) is not None:
        into.set_exception(failed)
    else:
        handed.result()[0].add_done_callback(functools.partial(_pass_on, into))


def _pass_on(into: asyncio.Future[Any], done: asyncio.Future[Any]) -> None:
    if into.done():
        return
    if done.cancelled():
        into.cancel()
    elif (failed := done.exception()) is not None:
        into.set_exception(failed)
    else:
        into.set_result(done.result())


class ReceiptSigner:
    """Signs receipts in batches: the leaf of a receipt is its Avro body."""

    def __init__(self, sealer: BatchSealer, schemas: AvroSchemas) -> None:
        self._sealer = sealer
        self._schemas = schemas

    def request(self, receipt: Receipt) -> asyncio.Future[SignedReceipt]:
        """Asks for the receipt's seal now, in the batch being gathered (with the deliveries
        of its document, when they were put just before); the future holds the signed
        receipt, or the signing error."""
        body = self._schemas.encode_body(RECEIPT_SCHEMA, receipt.to_avro())
        signed: asyncio.Future[SignedReceipt] = asyncio.get_running_loop().create_future()
        self._sealer.request_all([body]).add_done_callback(
            functools.partial(_receipt_signed, signed, receipt, body))
        return signed


def _receipt_signed(signed: asyncio.Future[SignedReceipt], receipt: Receipt, body: bytes,
                    sealed: asyncio.Future[list[Sealed]]) -> None:
    if signed.cancelled():
        return
    if sealed.cancelled():
        signed.cancel()
        return
    if (failed := sealed.exception()) is not None:
        signed.set_exception(failed)
        signed.exception()  # raised where it is awaited; a plan failing before must not warn
        return
    (seal,) = sealed.result()
    signed.set_result(SignedReceipt(receipt, body, seal.seal, seal.proof))
