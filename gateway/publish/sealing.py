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
from gateway.kafka.wire import Outbound
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
        self._waiting: list[tuple[bytes, asyncio.Future[Sealed]]] = []
        self._signing: asyncio.Task[None] | None = None

    def request(self, message: bytes) -> asyncio.Future[Sealed]:
        """Puts `message` in the next batch; the future holds its seal once signed (the
        signing error, when the key cannot sign)."""
        sealed: asyncio.Future[Sealed] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, sealed))
        if self._signing is None or self._signing.done():
            self._signing = asyncio.create_task(self._seal_waiting(), name="batch-sealer")
        return sealed

    async def seal(self, message: bytes) -> Sealed:
        return await self.request(message)

    async def _seal_waiting(self) -> None:
        while self._waiting:
            await asyncio.sleep(self._linger_s)
            batch, self._waiting = self._waiting, []
            try:
                signed = await asyncio.to_thread(self._signer.sign, [m for m, _ in batch])
            except Exception as exc:  # a key that cannot sign fails each message, loudly
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for index, (_, future) in enumerate(batch):
                if not future.done():
                    future.set_result(Sealed(signed.seal, signed.proof(index)))


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


@dataclass(frozen=True, slots=True)
class _Pending:
    out: Outbound
    sealed_at: datetime
    sealed: asyncio.Future[Sealed]
    sent: asyncio.Future[Any]


class DeliverySealer:
    """Seals deliveries and hands them to `send` in the order they were put, each with its
    proof: the caller goes on at once (a document's deliveries wait for their batch's seal,
    the next document does not), and versions of one document still reach their recipients
    in the order they came."""

    def __init__(self, sealer: BatchSealer, schemas: AvroSchemas, send: Send) -> None:
        self._sealer = sealer
        self._headers = ProofHeaders(schemas)
        self._send = send
        self._queue: deque[_Pending] = deque()
        self._sending: asyncio.Task[None] | None = None

    def put(self, out: Outbound) -> asyncio.Future[Any]:
        """Seals `out` and sends it after those put before; the future is done when the
        broker has it (as the producer's own), or with the error that kept it from it."""
        loop = asyncio.get_running_loop()
        sealed_at = utc_now()
        self._queue.append(_Pending(out, sealed_at,
                                    self._sealer.request(delivery_leaf(out.value, sealed_at)),
                                    loop.create_future()))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_sealed(), name="delivery-sealer")
        return self._queue[-1].sent

    async def _send_sealed(self) -> None:
        while self._queue:
            pending = self._queue.popleft()
            try:
                header = self._headers.encode(pending.sealed_at, await pending.sealed)
                sent = await self._send(with_proof(pending.out, header))
            except Exception as exc:  # each delivery's waiter hears of it
                pending.sent.set_exception(exc)
                continue
            sent.add_done_callback(functools.partial(_pass_on, pending.sent))


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

    async def sign(self, receipt: Receipt) -> SignedReceipt:
        body = self._schemas.encode_body(RECEIPT_SCHEMA, receipt.to_avro())
        sealed = await self._sealer.seal(body)
        return SignedReceipt(receipt, body, sealed.seal, sealed.proof)
