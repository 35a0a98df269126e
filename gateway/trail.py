"""The gateway's trail: every decision as a record, SM3-chained per chain, sealed in batches
by an SM2 signature over the batch's Merkle root.

One chain per ingress partition, written to the trail partition of the same number, so no
lock spans gateway instances.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from crypto import SM2PrivateKey, merkle_leaf_hash, merkle_root, sm3_hex
from gateway.clock import utc_now
from gateway.config import TrailSettings
from gateway.errors import BrokerUnavailable
from gateway.kafka import H_RECORD, TRAIL_TOPIC, new_reader, read_until_end
from message_formats import AvroSchemas

log = structlog.get_logger(__name__)

GENESIS_HASH = "0" * 64
ENTRY_SCHEMA = "px.trail.TrailEntry"
RECORD_SCHEMA = "px.trail.TrailRecord"
SEAL_BODY_SCHEMA = "px.trail.SealBody"
SEAL_SCHEMA = "px.trail.Seal"
RECORD_KIND = b"trail-record"
SEAL_KIND = b"seal"

ENTRY_DEFAULTS: dict[str, Any] = {
    "document_type": None,
    "business_key": None,
    "document_version": None,
    "signature_key_id": None,
    "error_code": None,
    "recipient": None,
    "contract_id": None,
    "contract_version": None,
    "ref_topic": None,
    "ref_partition": None,
    "ref_offset": None,
    "ref_digest": None,
}


def chain_id(partition: int) -> str:
    return f"p{partition}"


class TrailCodec:
    """How records are hashed and seals signed: one definition for writer and verifier."""

    __slots__ = ("schemas",)

    def __init__(self, schemas: AvroSchemas) -> None:
        self.schemas = schemas

    def entry_hash(self, entry: Mapping[str, Any]) -> str:
        """SM3 over the entry's Avro binary encoding; the entry holds the previous hash."""
        return sm3_hex(self.schemas.encode_body(ENTRY_SCHEMA, entry))

    def seal_message(self, body: Mapping[str, Any]) -> bytes:
        """The exact bytes a seal's SM2 signature covers."""
        return self.schemas.encode_body(SEAL_BODY_SCHEMA, body)

    def encode_record(self, entry: Mapping[str, Any], record_hash: str) -> bytes:
        return self.schemas.encode(RECORD_SCHEMA, {"entry": entry, "hash": record_hash})

    def encode_seal(self, body: Mapping[str, Any], signature: bytes) -> bytes:
        return self.schemas.encode(SEAL_SCHEMA, {"body": body, "signature": signature})


def seal_root(record_hashes: list[str]) -> str:
    return merkle_root([merkle_leaf_hash(bytes.fromhex(h)) for h in record_hashes]).hex()


@dataclass(frozen=True, slots=True)
class TrailPosition:
    chain: str
    seq: int
    hash: str
    partition: int
    offset: int


class TrailWriter:
    """Appends records to one chain and seals them every `seal_every` records or
    `seal_interval_ms`, whichever comes first."""

    def __init__(
        self,
        *,
        producer: AIOKafkaProducer,
        codec: TrailCodec,
        key: SM2PrivateKey,
        partition: int,
        settings: TrailSettings,
        topic: str = TRAIL_TOPIC,
    ) -> None:
        self._producer = producer
        self._codec = codec
        self._key = key
        self._key_id = key.public_key().key_id
        self.partition = partition
        self.chain = chain_id(partition)
        self._settings = settings
        self._topic = topic
        self._lock = asyncio.Lock()
        self._next_seq = 0
        self._last_hash = GENESIS_HASH
        self._next_seal_seq = 0
        self._pending: list[str] = []
        self._pending_since = 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def recover(self, bootstrap_servers: str) -> None:
        """Continues the chain where the trail partition ends (after a restart)."""
        consumer = new_reader(bootstrap_servers)
        try:
            await consumer.start()
            start = {TopicPartition(self._topic, self.partition): 0}
            stored = await read_until_end(consumer, start)
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot read the trail to recover: {exc}") from exc
        finally:
            await consumer.stop()
        hashes: list[str] = []
        sealed_through = -1
        for message in stored:
            name, value = self._codec.schemas.decode(message.value)
            if name == RECORD_SCHEMA and value["entry"]["chain"] == self.chain:
                hashes.append(value["hash"])
                self._next_seq = value["entry"]["seq"] + 1
                self._last_hash = value["hash"]
            elif name == SEAL_SCHEMA and value["body"]["chain"] == self.chain:
                sealed_through = value["body"]["last_seq"]
                self._next_seal_seq = value["body"]["seal_seq"] + 1
        self._pending = hashes[sealed_through + 1 :] if hashes else []
        self._pending_since = time.monotonic()
        log.info("trail.recovered", chain=self.chain, next_seq=self._next_seq,
                 unsealed=len(self._pending))

    async def append(self, **fields: Any) -> TrailPosition:
        async with self._lock:
            entry = {
                **ENTRY_DEFAULTS,
                "time": utc_now(),
                **fields,
                "chain": self.chain,
                "seq": self._next_seq,
                "prev_hash": self._last_hash,
            }
            record_hash = self._codec.entry_hash(entry)
            metadata = await self._send(self._codec.encode_record(entry, record_hash), RECORD_KIND)
            self._next_seq += 1
            self._last_hash = record_hash
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append(record_hash)
            position = TrailPosition(self.chain, entry["seq"], record_hash,
                                     metadata.partition, metadata.offset)
            if len(self._pending) >= self._settings.seal_every:
                await self._seal_pending()
            return position

    async def seal_if_due(self) -> None:
        age_ms = (time.monotonic() - self._pending_since) * 1000
        if self._pending and age_ms >= self._settings.seal_interval_ms:
            await self.seal()

    async def seal(self) -> None:
        async with self._lock:
            if self._pending:
                await self._seal_pending()

    async def _seal_pending(self) -> None:
        first_seq = self._next_seq - len(self._pending)
        body = {
            "chain": self.chain,
            "seal_seq": self._next_seal_seq,
            "first_seq": first_seq,
            "last_seq": self._next_seq - 1,
            "root": seal_root(self._pending),
            "time": utc_now(),
            "key_id": self._key_id,
        }
        signature = self._key.sign(self._codec.seal_message(body))
        await self._send(self._codec.encode_seal(body, signature), SEAL_KIND)
        self._next_seal_seq += 1
        self._pending = []
        log.debug("trail.sealed", chain=self.chain, first_seq=first_seq, last_seq=body["last_seq"])

    async def _send(self, value: bytes, kind: bytes) -> Any:
        try:
            return await self._producer.send_and_wait(
                self._topic,
                value,
                key=self.chain.encode(),
                partition=self.partition,
                headers=[(H_RECORD, kind)],
            )
        except KafkaError as exc:
            raise BrokerUnavailable(f"trail write failed: {exc}") from exc
