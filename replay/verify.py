"""Offline-grade verification of the gateway's trail, as an auditor runs it.

Checks, per chain: sequence without gaps or repeats, each record's SM3 hash over its content,
each link to the previous hash; per seal: the signing key one of the gateway's sealing keys
(role seal) and valid at the seal's time, the SM2 signature, the Merkle root over the records
it covers; and that every message a record refers to (canonical event, delivery, dead letter)
is still there with the digest recorded; that each seal names the one before it
(`previous_seal`), so that no seal is removed from the middle, reordered or replaced unseen;
and that no record after the last seal is older than the caller says a seal should have come.

Records and seals are read whatever released schema version wrote them, and hashes and
signatures are checked over the bytes as written (gateway.trail.writer.entry_bytes, signed_body).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from crypto import CryptoError, KeyEntry, Keyring, sm3_hex
from gateway.errors import TRAIL_SEAL_CHAIN_BROKEN, TRAIL_START_MISSING, TRAIL_UNSEALED_TAIL
from gateway.kafka.names import StoredMessage
from gateway.kafka.wire import Broker, own_reader, pages_until_end, partitions_of, read_at
from gateway.trail.progress import Progress
from gateway.trail.writer import (
    GENESIS_HASH,
    RECORD_SCHEMA,
    SEAL_SCHEMA,
    entry_bytes,
    seal_hash,
    seal_root,
    signed_body,
)
from message_formats import AvroSchemas, FormatError


@dataclass(frozen=True, slots=True)
class Break:
    """One place where the trail is not what the gateway wrote. `where` locates it in the
    source read: `topic[partition]@offset` on a broker, `file@byte` in an archive."""

    where: str
    problem: str
    chain: str | None = None
    seq: int | None = None
    code: str | None = None  # the rule broken, for those that have a stable code

    def __str__(self) -> str:
        where = self.where
        if self.chain is not None:
            what = f"chain {self.chain} seq {self.seq}" if self.seq is not None else self.chain
            where = f"{where} {what}"
        if self.code is not None:
            where = f"{where}: {self.code}"
        return f"{where}: {self.problem}"


# Within a chain, how many records between two progress reports.
PROGRESS_EVERY = 5000
READ_TIMEOUT_S = 30.0


Report = Callable[[Progress], None]


def unreported(_: Progress) -> None:
    return None


def kafka_location(topic: str, partition: int, offset: int) -> str:
    return f"{topic}[{partition}]@{offset}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    records: int
    seals: int
    chains: int
    sealed_records: int
    references: int
    breaks: tuple[Break, ...]
    # Messages that repeat an earlier one byte for byte (a producer retrying a send whose
    # acknowledgement was lost): skipped, counted, not a break.
    duplicates: int = 0
    # Each chain's seals as read: seal_seq -> seal_hash (what a checkpoint is checked against).
    seal_hashes: Mapping[str, Mapping[int, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def unsealed(self) -> int:
        return self.records - self.sealed_records


@dataclass(frozen=True, slots=True)
class _Located:
    message: StoredMessage
    value: dict[str, Any]

    def at(self, problem: str, *, chain: str | None = None, seq: int | None = None,
           code: str | None = None) -> Break:
        m = self.message
        return Break(kafka_location(m.topic, m.partition, m.offset), problem, chain, seq, code)


@dataclass(slots=True)
class _ChainState:
    records: list[_Located] = field(default_factory=list)
    seals: list[_Located] = field(default_factory=list)
    hashes: dict[int, str] = field(default_factory=dict)
    start_seq: int = 0
    start_hash: str | None = GENESIS_HASH  # None: the link before start_seq is not checked
    duplicates: int = 0


def _window(
    chains: Mapping[str, _ChainState], since: datetime | None, until: datetime | None
) -> dict[str, _ChainState]:
    """Each chain cut to the records decided in [since, until) and the rest of their sealed
    batches, starting from the stored hash of the record before them."""
    cut: dict[str, _ChainState] = {}
    for chain, state in chains.items():
        inside = [r.value["entry"]["seq"] for r in state.records
                  if (since is None or r.value["entry"]["time"] >= since)
                  and (until is None or r.value["entry"]["time"] < until)]
        if not inside:
            continue
        low, high = min(inside), max(inside)
        seals = [s for s in state.seals
                 if s.value["body"]["first_seq"] <= high and s.value["body"]["last_seq"] >= low]
        low = min([low, *(s.value["body"]["first_seq"] for s in seals)])
        high = max([high, *(s.value["body"]["last_seq"] for s in seals)])
        before = [r.value["hash"] for r in state.records if r.value["entry"]["seq"] == low - 1]
        cut[chain] = _ChainState(
            records=[r for r in state.records if low <= r.value["entry"]["seq"] <= high],
            seals=seals,
            start_seq=low,
            start_hash=GENESIS_HASH if low == 0 else (before[0] if before else None),
        )
    return cut


@dataclass(slots=True)
class SealChain:
    """One chain's seals in seal_seq order: each must name the one before it by its hash
    (`previous_seal`), the first 64 zeros. Seals written before seals were chained name none;
    once one does, every later one must."""

    # hash of the seal read just before: 64 zeros when the chain is read from its start,
    # None when what came before is not known
    previous: str | None = GENESIS_HASH
    hashes: dict[int, str] = field(default_factory=dict)
    chained: bool = False

    def follow(self, body: Mapping[str, Any], sealed_hash: str) -> str | None:
        """Takes the next seal; why it breaks the chain of seals, or None."""
        named, seal_seq = body["previous_seal"], body["seal_seq"]
        expected = GENESIS_HASH if seal_seq == 0 else self.previous
        problem = None
        if named is None and self.chained:
            problem = "names no previous seal, though the seals before it are chained"
        elif named is not None and expected is not None and named != expected:
            what = "the chain's start" if expected == GENESIS_HASH else "the seal before it"
            problem = (f"names previous seal {named[:16]}…, not {what} ({expected[:16]}…): a "
                       "seal was removed, reordered or replaced")
        elif named == GENESIS_HASH and seal_seq != 0:
            problem = "names the chain's start as its previous seal, but is not seal 0"
        self.hashes[seal_seq] = sealed_hash
        self.previous, self.chained = sealed_hash, self.chained or named is not None
        return problem

    def forget(self) -> None:
        """The seal before the next one is not known (a window, a resync)."""
        self.previous = None


def key_valid_at(entry: KeyEntry, at: datetime) -> str | None:
    """Why the key was not valid at `at`, or None when it was."""
    if entry.revoked_by(at):
        return f"key {entry.key_id[:16]}… was revoked at {entry.revoked_at}"
    if not entry.in_window(at):
        return f"key {entry.key_id[:16]}… was not valid at {at.isoformat()}"
    return None


@dataclass(frozen=True, slots=True)
class SealRefusal:
    """Why a seal does not stand: the rule's stable code (crypto's SEAL_KEY_UNKNOWN,
    SEAL_KEY_NOT_SEALING, SEAL_KEY_NOT_VALID, SEAL_KEY_REVOKED, SEAL_SIGNATURE_INVALID) and
    what was found, naming the key."""

    code: str
    message: str


def seal_signature_problem(
    keyring: Keyring, body: Mapping[str, Any], signed: bytes, signature: bytes
) -> SealRefusal | None:
    """Why a signature over `signed` (a seal's or checkpoint's body bytes as written) does
    not stand (a key that is not one of the gateway's sealing keys, or not valid at the
    body's time; SM2 signature wrong), or None when it does."""
    try:
        keyring.verify_seal(signature, signed, key_id=body["key_id"], at=body["time"])
    except CryptoError as exc:
        return SealRefusal(exc.code, exc.message)
    return None


class TrailVerifier:
    def __init__(self, schemas: AvroSchemas, keyring: Keyring, *,
                 progress: Report = unreported) -> None:
        """`progress` is told, as `check_trail` goes, the records verified and each chain
        done."""
        self._schemas = schemas
        self._keyring = keyring
        self._progress = progress

    def check_trail(
        self,
        messages: Iterable[StoredMessage],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        unsealed_before: datetime | None = None,
    ) -> tuple[VerifyReport, dict[tuple[str, int, int], tuple[str, _Located]]]:
        """Checks chains and seals; returns the report and the references still to check.

        With `since` / `until`, only the records decided in that window are checked, together
        with the rest of the sealed batches they are in (a seal covers its whole batch); the
        first checked record's link is to the stored hash of the record before it. With
        `unsealed_before`, a record after a chain's last seal decided before then is a break
        (TRAIL_UNSEALED_TAIL): the gateway seals within its seal interval."""
        breaks: list[Break] = []
        chains: dict[str, _ChainState] = defaultdict(_ChainState)
        read = 0
        for message in messages:
            read += 1
            located = self._decode(message, breaks)
            if located is None:
                continue
            name, value = located
            if name == RECORD_SCHEMA:
                chains[value["entry"]["chain"]].records.append(_Located(message, value))
            elif name == SEAL_SCHEMA:
                chains[value["body"]["chain"]].seals.append(_Located(message, value))
            else:
                breaks.append(Break(kafka_location(message.topic, message.partition,
                                                   message.offset),
                                    f"a {name} record does not belong on the trail"))
        if since is not None or until is not None:
            chains = _window(chains, since, until)
        references: dict[tuple[str, int, int], tuple[str, _Located]] = {}
        sealed = verified = 0
        seal_hashes: dict[str, Mapping[int, str]] = {}
        for done, (chain, state) in enumerate(sorted(chains.items())):
            tick = partial(_chain_progress, self._progress, read, verified, done, len(chains))
            breaks.extend(self._check_chain(chain, state, references, tick))
            verified += len(state.records)
            self._progress(Progress("chains", read, verified, done + 1, len(chains)))
            seal_breaks, covered, seals = self._check_seals(chain, state)
            breaks.extend(seal_breaks)
            if unsealed_before is not None:
                breaks.extend(_unsealed_tail(chain, state, seals, unsealed_before))
            sealed += covered
            seal_hashes[chain] = seals.hashes
        report = VerifyReport(
            records=sum(len(s.records) for s in chains.values()),
            seals=sum(len(s.seals) for s in chains.values()),
            chains=len(chains),
            sealed_records=sealed,
            references=len(references),
            breaks=tuple(breaks),
            duplicates=sum(s.duplicates for s in chains.values()),
            seal_hashes=seal_hashes,
        )
        return report, references

    def _decode(
        self, message: StoredMessage, breaks: list[Break]
    ) -> tuple[str, dict[str, Any]] | None:
        try:
            return self._schemas.decode(message.value)
        except FormatError as exc:
            breaks.append(Break(kafka_location(message.topic, message.partition, message.offset),
                                f"cannot be decoded: {exc.message}"))
            return None

    def _check_chain(
        self,
        chain: str,
        state: _ChainState,
        references: dict[tuple[str, int, int], tuple[str, _Located]],
        tick: Callable[[int], None],
    ) -> list[Break]:
        """The chain's breaks; `tick` is told every PROGRESS_EVERY records how many are
        done."""
        breaks: list[Break] = []
        expected_seq = state.start_seq
        previous_hash = state.start_hash
        seen: dict[int, bytes] = {}
        for done, rec in enumerate(state.records):
            if done and done % PROGRESS_EVERY == 0:
                tick(done)
            entry, stored_hash = rec.value["entry"], rec.value["hash"]
            seq = entry["seq"]
            at = partial(rec.at, chain=chain, seq=seq)
            if seq < expected_seq and seen.get(seq) == rec.message.value:
                state.duplicates += 1  # the same bytes again: a producer's retry
                continue
            if seq < expected_seq:
                breaks.append(at(f"seq {seq} appears again after seq {expected_seq - 1}: "
                                 "a record was inserted or replayed"))
                continue
            if seq > expected_seq == 0:
                breaks.append(at(f"records seq 0..{seq - 1} are missing: the chain does not "
                                 "start here", code=TRAIL_START_MISSING))
            elif seq > expected_seq:
                breaks.append(at(f"records seq {expected_seq}..{seq - 1} are missing"))
            elif previous_hash is not None and entry["prev_hash"] != previous_hash:
                breaks.append(at(f"prev_hash {entry['prev_hash'][:16]}… does not link to the "
                                 f"hash of seq {seq - 1} ({previous_hash[:16]}…)"))
            computed = sm3_hex(entry_bytes(rec.message.value, stored_hash))
            if computed != stored_hash:
                breaks.append(at(f"record altered: stored hash {stored_hash[:16]}…, its "
                                 f"content hashes to {computed[:16]}…"))
            state.hashes[seq] = stored_hash
            seen[seq] = rec.message.value
            previous_hash = stored_hash
            expected_seq = seq + 1
            if entry["ref_topic"] is not None:
                location = (entry["ref_topic"], entry["ref_partition"], entry["ref_offset"])
                references[location] = (entry["ref_digest"], rec)
        return breaks

    def _check_seals(self, chain: str, state: _ChainState
                     ) -> tuple[list[Break], int, SealChain]:
        breaks: list[Break] = []
        next_first = state.start_seq
        covered = 0
        previous: bytes | None = None
        from_start = state.start_seq == 0 and state.start_hash == GENESIS_HASH
        seals = SealChain(GENESIS_HASH if from_start else None)
        for seal in sorted(state.seals, key=lambda s: s.value["body"]["seal_seq"]):
            if seal.message.value == previous:
                state.duplicates += 1
                continue
            previous = seal.message.value
            body = seal.value["body"]
            first, last = body["first_seq"], body["last_seq"]
            at = partial(seal.at, chain=chain)
            name = f"seal {body['seal_seq']} (seq {first}..{last})"
            if first != next_first:
                breaks.append(at(f"{name} does not follow the previous seal, which ended "
                                 f"at seq {next_first - 1}"))
            next_first = last + 1
            signature = seal.value["signature"]
            broken = seals.follow(body, seal_hash(seal.message.value, signature))
            if broken:
                breaks.append(at(f"{name} {broken}", code=TRAIL_SEAL_CHAIN_BROKEN))
            refusal = seal_signature_problem(self._keyring, body,
                                             signed_body(seal.message.value, signature),
                                             signature)
            if refusal:
                breaks.append(at(f"{name}: {refusal.message}", code=refusal.code))
                continue
            hashes = [state.hashes.get(seq) for seq in range(first, last + 1)]
            if any(h is None for h in hashes):
                missing = [first + i for i, h in enumerate(hashes) if h is None]
                breaks.append(at(f"{name} covers records that are missing: seq {missing[:5]}"))
                continue
            root = seal_root([h for h in hashes if h is not None])
            if root != body["root"]:
                breaks.append(at(f"{name}: Merkle root {body['root'][:16]}… does not match "
                                 f"the records, which give {root[:16]}…"))
                continue
            covered += last - first + 1
        return breaks, covered, seals

    def check_references(
        self,
        references: Mapping[tuple[str, int, int], tuple[str, _Located]],
        found: Mapping[tuple[str, int, int], StoredMessage],
    ) -> list[Break]:
        breaks: list[Break] = []
        for location, (digest, rec) in references.items():
            entry = rec.value["entry"]
            at = partial(rec.at, chain=entry["chain"], seq=entry["seq"])
            topic, partition, offset = location
            message = found.get(location)
            if message is None:
                breaks.append(at(f"the {entry['kind'].lower()} message it names, "
                                 f"{topic}[{partition}]@{offset}, is missing"))
            elif sm3_hex(message.value) != digest:
                breaks.append(at(f"the message at {topic}[{partition}]@{offset} was changed: "
                                 f"its SM3 is {sm3_hex(message.value)[:16]}…, the trail "
                                 f"recorded {digest[:16]}…"))
        return breaks


def _chain_progress(progress: Report, read: int, before: int, done: int, chains: int,
                    records: int) -> None:
    progress(Progress("chains", read, before + records, done, chains))


def _unsealed_tail(chain: str, state: _ChainState, seals: SealChain, before: datetime
                   ) -> list[Break]:
    """The records after the chain's last seal that were decided before `before`, as one
    break at the first of them."""
    sealed_through = max((s.value["body"]["last_seq"] for s in state.seals), default=-1)
    late = [r for r in state.records if r.value["entry"]["seq"] > sealed_through
            and r.value["entry"]["time"] < before]
    if not late:
        return []
    first, last = (r.value["entry"]["seq"] for r in (late[0], late[-1]))
    return [late[0].at(
        f"records seq {first}..{last} after the last seal were decided before "
        f"{before.isoformat()} and are still not sealed: the gateway seals within its seal "
        "interval, so either it stopped before sealing them (it seals them when it starts "
        "again) or they were not written by the gateway", chain=chain, seq=first,
        code=TRAIL_UNSEALED_TAIL)]


async def verify_kafka(
    bootstrap_servers: Broker,
    schemas: AvroSchemas,
    keyring: Keyring,
    *,
    trail_topic: str,
    since: datetime | None = None,
    until: datetime | None = None,
    mirror_prefix: str = "",
    unsealed_before: datetime | None = None,
    progress: Report = unreported,
) -> VerifyReport:
    """Verifies the trail on a broker (`trail_topic`: `Topics.trail` of the gateway's
    configuration) and the messages it names. `mirror_prefix` reads a
    mirrored copy instead (every topic named with that prefix, as MirrorMaker 2 names the
    topics it copies, offsets kept), which is how an auditor checks a copy handed over.
    `progress` is told how far it has got (`Progress`)."""
    verifier = TrailVerifier(schemas, keyring, progress=progress)
    messages = await _read_trail(bootstrap_servers, mirror_prefix + trail_topic, progress)
    checked, references = verifier.check_trail(messages, since=since, until=until,
                                               unsealed_before=unsealed_before)
    progress(Progress("references", len(messages), checked.records, checked.chains,
                    checked.chains))
    wanted = {(mirror_prefix + topic, partition, offset): (topic, partition, offset)
              for topic, partition, offset in references}
    found = await read_at(bootstrap_servers, sorted(wanted)) if wanted else {}
    extra = verifier.check_references(
        references, {wanted[location]: message for location, message in found.items()})
    return replace(checked, breaks=checked.breaks + tuple(extra))


async def _read_trail(broker: Broker, topic: str, progress: Report) -> list[StoredMessage]:
    """Every message of the trail topic, in topic, partition and offset order, as
    `read_topics` reads them; `progress` is told the count after each fetch."""
    messages: list[StoredMessage] = []
    async with own_reader(broker, f"from {broker}") as consumer:
        starts = {tp: 0 for tp in await partitions_of(broker, [topic])}
        async for page in pages_until_end(consumer, starts, timeout_s=READ_TIMEOUT_S):
            messages.extend(page)
            progress(Progress("read", len(messages)))
    messages.sort(key=lambda m: (m.topic, m.partition, m.offset))
    return messages


def describe(report: VerifyReport, source: str, *,
             checkpoints: int | None = None) -> str:
    """The report for a terminal; `source` names what was read (a topic, an archive);
    `checkpoints`, how many checkpoints it was checked against (None: none was given)."""
    lines = [
        f"trail {source}: {report.records} records in {report.chains} chain(s), "
        f"{report.seals} seal(s) covering {report.sealed_records} record(s), "
        f"{report.unsealed} not yet sealed; {report.references} referenced message(s) checked"
    ]
    if checkpoints is None:
        lines.append("no checkpoint given: a trail cut at its end (its last batches and seals "
                     "removed) cannot be told from one that ends there; keep the latest "
                     "checkpoint (portgw replay checkpoint) and verify with --checkpoint")
    else:
        lines.append(f"checked against {checkpoints} checkpoint(s)")
    if report.duplicates:
        lines.append(f"{report.duplicates} exact duplicate message(s) skipped (resent by a "
                     "producer retry)")
    if report.ok:
        lines.append("OK: chains, seal signatures, Merkle roots and referenced messages verify")
    else:
        lines.append(f"BROKEN: {len(report.breaks)} problem(s):")
        lines.extend(f"  {b}" for b in report.breaks[:20])
    return "\n".join(lines)


__all__ = [
    "Break", "Progress", "Report", "SealChain", "SealRefusal", "TrailVerifier", "VerifyReport",
    "describe", "kafka_location", "key_valid_at", "seal_signature_problem", "unreported",
    "verify_kafka",
]


