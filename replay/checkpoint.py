"""Signed checkpoints: the gateway's statement of each chain's last seal, which an auditor
keeps so that a trail cut at its end (its last batches and seals removed, on the broker or in
the archive) is told from a trail that really ends there.

The gateway publishes them on px.checkpoint.v1 and keeps the latest per chain in its trail
archive (gateway.trail.writer.TrailWriter). `fetch` takes the latest that verifies per chain;
`save` writes them to a file the auditor holds; `checkpoint_breaks` checks a verified trail
against them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from crypto import Keyring
from gateway.errors import (
    TRAIL_CHECKPOINT_DIFFERS,
    TRAIL_CHECKPOINT_UNREADABLE,
    TRAIL_CUT,
    GatewayError,
)
from gateway.kafka.wire import Broker, read_topics
from gateway.trail.writer import CHECKPOINT_SCHEMA, signed_body
from message_formats import AvroSchemas, FormatError
from replay.verify import Break, SealRefusal, VerifyReport, seal_signature_problem

FILE_FORMAT = "px-trail-checkpoints-1"
_ARCHIVE_PATTERN = "checkpoint-*.avro"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A px.trail.Checkpoint message: its exact bytes and what they say."""

    value: bytes
    body: Mapping[str, Any]
    signature: bytes
    chain: str
    seal_seq: int
    time: datetime

    @property
    def name(self) -> str:
        return (f"checkpoint of chain {self.chain} at {self.time.isoformat()} (seal "
                f"{self.seal_seq}, seq ..{self.body['last_seq']})")

    def refusal(self, keyring: Keyring) -> SealRefusal | None:
        """Why its signature does not stand: the rules of a seal (a gateway sealing key,
        valid at the checkpoint's time; the SM2 signature over the body as written)."""
        return seal_signature_problem(keyring, self.body, signed_body(self.value, self.signature),
                                      self.signature)


def decode_checkpoint(schemas: AvroSchemas, value: bytes) -> Checkpoint:
    try:
        name, decoded = schemas.decode(value)
    except FormatError as exc:
        raise GatewayError(f"not a checkpoint: {exc.message}",
                           code=TRAIL_CHECKPOINT_UNREADABLE) from None
    if name != CHECKPOINT_SCHEMA:
        raise GatewayError(f"a {name}, not a {CHECKPOINT_SCHEMA}", code=TRAIL_CHECKPOINT_UNREADABLE)
    body = decoded["body"]
    return Checkpoint(value, body, decoded["signature"], body["chain"], body["seal_seq"],
                      body["time"])


async def kafka_checkpoints(bootstrap_servers: Broker, schemas: AvroSchemas,
                            topic: str) -> list[Checkpoint]:
    """Every checkpoint on the topic, in the order published; what is no checkpoint is
    skipped (a reader of this topic trusts only what verifies)."""
    return _decodable(schemas, (m.value for m in await read_topics(bootstrap_servers, [topic])))


def archive_checkpoints(directory: Path, schemas: AvroSchemas) -> list[Checkpoint]:
    """The checkpoint each chain's archive keeps (its latest)."""
    return _decodable(schemas, (p.read_bytes() for p in sorted(directory.glob(_ARCHIVE_PATTERN))))


def _decodable(schemas: AvroSchemas, values: Iterable[bytes]) -> list[Checkpoint]:
    found = []
    for value in values:
        try:
            found.append(decode_checkpoint(schemas, value))
        except GatewayError:
            continue
    return found


@dataclass(frozen=True, slots=True)
class Fetched:
    """The latest checkpoint that verifies per chain, and those refused on the way."""

    latest: tuple[Checkpoint, ...]
    refused: tuple[tuple[Checkpoint, SealRefusal], ...]


def latest_verified(checkpoints: Iterable[Checkpoint], keyring: Keyring) -> Fetched:
    latest: dict[str, Checkpoint] = {}
    refused: list[tuple[Checkpoint, SealRefusal]] = []
    for checkpoint in checkpoints:
        refusal = checkpoint.refusal(keyring)
        if refusal is not None:
            refused.append((checkpoint, refusal))
            continue
        held = latest.get(checkpoint.chain)
        if held is None or (checkpoint.seal_seq, checkpoint.time) >= (held.seal_seq, held.time):
            latest[checkpoint.chain] = checkpoint
    return Fetched(tuple(latest[c] for c in sorted(latest)), tuple(refused))


def save_checkpoints(path: Path, checkpoints: Sequence[Checkpoint]) -> None:
    """The auditor's file: each checkpoint's exact message (base64), and what it says for a
    person to read; only the messages count when the file is loaded."""
    document = {"format": FILE_FORMAT, "checkpoints": [{
        "chain": c.chain, "seal_seq": c.seal_seq, "last_seq": c.body["last_seq"],
        "seal_hash": c.body["seal_hash"], "time": c.time.isoformat(),
        "key_id": c.body["key_id"], "message": base64.b64encode(c.value).decode(),
    } for c in checkpoints]}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def load_checkpoints(path: Path, schemas: AvroSchemas) -> list[Checkpoint]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FILE_FORMAT:
            raise ValueError(f"format is not {FILE_FORMAT}")
        values = [base64.b64decode(item["message"], validate=True)
                  for item in document["checkpoints"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GatewayError(f"cannot read checkpoint file {path}: {exc}",
                           code=TRAIL_CHECKPOINT_UNREADABLE) from None
    return [decode_checkpoint(schemas, value) for value in values]


def checkpoint_breaks(report: VerifyReport, checkpoints: Iterable[Checkpoint],
                      keyring: Keyring) -> list[Break]:
    """Where the verified trail does not reach, or differs at, the seal each checkpoint
    names: TRAIL_CUT when the chain ends before it, TRAIL_CHECKPOINT_DIFFERS when that seal
    is missing or another; a checkpoint whose signature does not stand is refused with the
    seal rules' code."""
    breaks = []
    for checkpoint in checkpoints:
        where = "checkpoint"
        refusal = checkpoint.refusal(keyring)
        if refusal is not None:
            breaks.append(Break(where, f"{checkpoint.name} is refused: {refusal.message}",
                                checkpoint.chain, code=refusal.code))
            continue
        seals = report.seal_hashes.get(checkpoint.chain, {})
        found = seals.get(checkpoint.seal_seq)
        last = max(seals, default=None)
        if last is None or last < checkpoint.seal_seq:
            ends = "has no seal" if last is None else f"ends at seal {last}"
            breaks.append(Break(where, f"the trail is cut: the chain {ends}, but the "
                                       f"{checkpoint.name} names seal {checkpoint.seal_seq}",
                                checkpoint.chain, code=TRAIL_CUT))
        elif found != checkpoint.body["seal_hash"]:
            what = "is missing" if found is None else f"has hash {found[:16]}…"
            breaks.append(Break(where, f"seal {checkpoint.seal_seq} {what}, but the "
                                       f"{checkpoint.name} names hash "
                                       f"{checkpoint.body['seal_hash'][:16]}…",
                                checkpoint.chain, code=TRAIL_CHECKPOINT_DIFFERS))
    return breaks


def with_checkpoints(report: VerifyReport, checkpoints: Sequence[Checkpoint],
                     keyring: Keyring) -> VerifyReport:
    return replace(report, breaks=report.breaks + tuple(
        checkpoint_breaks(report, checkpoints, keyring)))


__all__ = [
    "Checkpoint", "Fetched", "archive_checkpoints", "checkpoint_breaks", "decode_checkpoint",
    "kafka_checkpoints", "latest_verified", "load_checkpoints", "save_checkpoints",
    "with_checkpoints",
]
