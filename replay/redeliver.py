"""Re-delivery: the documents accepted in a time window, delivered again to one agency under
the contracts as they are now, each marked as a replay and recorded in the trail.

The canonical events are read back from the broker (the trail names where each one is), routed
afresh with today's contracts (a contract that has since ended or narrowed its fields applies
as it now reads), delivered with a `px-replay-of` header naming the original decision, and
recorded as REDELIVERED on the trail chain `replay`. One re-delivery runs at a time per gateway
home: a lock file keeps two from forking that chain.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts import Grant
from gateway.clock import utc_now
from gateway.errors import BrokerUnavailable, GatewayError
from gateway.home.config import GatewayConfig
from gateway.ids import Uuid7Generator
from gateway.kafka.names import Outbound, StoredMessage
from gateway.kafka.wire import Broker, new_producer, publish, read_at, read_topics
from gateway.parts import GatewayParts
from gateway.publish.deliveries import delivery_message
from gateway.publish.sealing import sealed_now
from gateway.trail.archive import ArchiveWriter
from gateway.trail.writer import RECORD_SCHEMA, TrailCodec, TrailWriter, reference

REPLAY_CHAIN = "replay"
REPLAY_PARTITION = 0
H_REPLAY_OF = "px-replay-of"
_LOCK_FILE = ".replay.lock"

# The trail fields a REDELIVERED record copies from the ACCEPTED record it replays.
_COPIED = ("submission_id", "event_id", "sender", "format_id", "document_type", "business_key",
           "document_version", "digest_sm3", "signature_key_id")


@dataclass(frozen=True, slots=True)
class Redelivery:
    """What happened to one accepted document: re-delivered under a contract, or why not."""

    event_id: str
    business_key: str
    contract: str | None
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class _Accepted:
    entry: dict[str, Any]
    chain_position: str


async def redeliver(
    config: GatewayConfig,
    parts: GatewayParts,
    bootstrap_servers: Broker,
    *,
    recipient: str,
    since: datetime,
    until: datetime | None = None,
) -> list[Redelivery]:
    parts.agencies.get(recipient)  # an unknown agency is a usage error, before any reading
    with _exclusive(config.home / _LOCK_FILE):
        trail = await read_topics(bootstrap_servers, [parts.topics.trail])
        accepted = list(_accepted_between(trail, parts, since, until or utc_now()))
        events = await read_at(bootstrap_servers, [_event_location(a) for a in accepted])
        return await _republish(config, parts, bootstrap_servers, recipient, accepted, events)


def _accepted_between(
    trail: Sequence[StoredMessage], parts: GatewayParts, since: datetime, until: datetime
) -> Iterator[_Accepted]:
    for message in trail:
        name, value = parts.schemas.decode(message.value)
        if name != RECORD_SCHEMA:
            continue
        entry = value["entry"]
        if entry["kind"] == "ACCEPTED" and since <= entry["time"] < until:
            yield _Accepted(entry, f"{entry['chain']}/{entry['seq']}")


def _event_location(accepted: _Accepted) -> tuple[str, int, int]:
    e = accepted.entry
    return (e["ref_topic"], e["ref_partition"], e["ref_offset"])


async def _republish(
    config: GatewayConfig,
    parts: GatewayParts,
    bootstrap_servers: Broker,
    recipient: str,
    accepted: Sequence[_Accepted],
    events: dict[tuple[str, int, int], StoredMessage],
) -> list[Redelivery]:
    producer = new_producer(bootstrap_servers)
    try:
        await producer.start()
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot reach {bootstrap_servers}: {exc}") from exc
    archive = None
    if config.archive_dir is not None:
        archive = ArchiveWriter(config.archive_dir, REPLAY_CHAIN, schemas=parts.schemas,
                                max_segment_bytes=config.trail.archive_segment_bytes)
    writer = TrailWriter(producer=producer, codec=TrailCodec(parts.schemas), key=parts.key,
                         partition=REPLAY_PARTITION, settings=config.trail, topics=parts.topics,
                         chain=REPLAY_CHAIN,
                         archive=archive)
    try:
        await writer.recover(bootstrap_servers)
        ids = Uuid7Generator()
        plans = [_plan(parts, recipient, item, events.get(_event_location(item)), ids)
                 for item in accepted]
        # One seal for all of them, in the order they are planned and published.
        sealed = iter(sealed_now(parts.key, [p.out for p in plans if isinstance(p, _Granted)],
                                 parts.schemas))
        outcomes = [plan if isinstance(plan, Redelivery)
                    else await _publish(writer, producer, recipient, plan, next(sealed))
                    for plan in plans]
        await writer.seal()
        return outcomes
    finally:
        await producer.stop()
        if archive is not None:
            archive.close()


@dataclass(frozen=True, slots=True)
class _Granted:
    """A document a contract in force lets the recipient have again, and its delivery."""

    item: _Accepted
    grant: Grant
    out: Outbound


def _plan(
    parts: GatewayParts,
    recipient: str,
    item: _Accepted,
    event: StoredMessage | None,
    ids: Uuid7Generator,
) -> _Granted | Redelivery:
    """The delivery to make again, or why there is none."""
    entry = item.entry
    key = entry["business_key"] or ""
    if event is None:
        return Redelivery(entry["event_id"], key, None,
                          refused=f"its canonical event {_event_location(item)} is gone")
    _, record = parts.schemas.decode(event.value)
    body = {name: value for name, value in record.items() if name != "header"}
    now = utc_now()
    decision = parts.router.index.decide(entry["sender"], entry["document_type"], body, now)
    grant = next((g for g in decision.grants if g.recipient == recipient), None)
    if grant is None:
        why = next((d.reason for d in decision.denials if d.recipient == recipient),
                   f"no contract in force shares {entry['document_type']} from "
                   f"{entry['sender']} with {recipient}")
        return Redelivery(entry["event_id"], key, None, refused=why)
    out = delivery_message(grant, record, event.value, parts.payloads, parts.schemas, ids.new(),
                           now, extra_headers=((H_REPLAY_OF, item.chain_position.encode()),),
                           dxp=parts.dxp)
    return _Granted(item, grant, out)


async def _publish(writer: TrailWriter, producer: AIOKafkaProducer, recipient: str,
                   plan: _Granted, out: Outbound) -> Redelivery:
    """Publishes the sealed delivery and records it as REDELIVERED."""
    entry = plan.item.entry
    at = await publish(producer, out)
    contract = plan.grant.contract
    await writer.append(
        **{name: entry[name] for name in _COPIED}, kind="REDELIVERED", recipient=recipient,
        contract_id=contract.id, contract_version=contract.version,
        reason=f"replay of {plan.item.chain_position} under {contract.label}: "
               f"{contract.purpose}",
        **reference(at, out.value),
    )
    return Redelivery(entry["event_id"], entry["business_key"] or "", contract.label)


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GatewayError(f"another re-delivery holds {path}",
                               code="REPLAY_BUSY") from None
        yield


def describe_redeliveries(outcomes: Sequence[Redelivery], recipient: str) -> str:
    done = [o for o in outcomes if o.refused is None]
    lines = [f"{len(done)} of {len(outcomes)} accepted document(s) re-delivered to {recipient}"]
    lines += [f"  {o.business_key} ({o.event_id}): under {o.contract}" for o in done]
    lines += [f"  {o.business_key} ({o.event_id}): not re-delivered: {o.refused}"
              for o in outcomes if o.refused is not None]
    return "\n".join(lines)


__all__ = ["H_REPLAY_OF", "REPLAY_CHAIN", "Redelivery", "describe_redeliveries", "redeliver"]

