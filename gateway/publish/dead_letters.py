"""Dead letters: the refused documents the gateway keeps on px.dlq.v1 (gateway.publish.plan
writes them), read back, and put back on the ingress topic once their cause is fixed. What
`portgw dlq` and the operators' console (gateway/console) share.

A dead letter keeps a refused document whole: its original bytes and the sender's
signature. A re-submission hands the document to the gateway again exactly as the agency sent
it, under a new submission id and marked with the dead letter it came from (`px-retry-of`)
and, when an operator asked for it, who did (`px-retried-by`).

A document that was never authenticated (unknown sender, bad signature, too large) is kept
cut: its first bytes (gateway.publish.plan.KEPT_PREFIX_BYTES), its whole size and its SM3; it
cannot be re-submitted (DLQ_ORIGINAL_CUT): the agency has to send it again. So is a message
refused in an interchange of several (header px-part-of) once the interchange is larger than
that: its other messages were accepted, the whole is on the ingress topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka.errors import KafkaError

from crypto import sm3_hex
from gateway.errors import BrokerUnavailable, GatewayError
from gateway.kafka.names import (
    H_DIGEST,
    H_RETRIED_BY,
    H_RETRY_OF,
    StoredMessage,
    Topics,
    submission_headers,
)
from gateway.kafka.wire import Broker, Published, new_producer, partitions_of, read_at, read_topics
from gateway.publish.plan import DEAD_LETTER_SCHEMA, H_ORIGINAL_SIZE
from message_formats import AvroSchemas, FormatError

log = structlog.get_logger(__name__)

DLQ_NOT_FOUND = "DLQ_NOT_FOUND"
DLQ_NOT_A_DEAD_LETTER = "DLQ_NOT_A_DEAD_LETTER"
DLQ_LOCATION_INVALID = "DLQ_LOCATION_INVALID"
DLQ_USAGE = "DLQ_USAGE"
DLQ_ORIGINAL_CUT = "DLQ_ORIGINAL_CUT"

class DlqError(GatewayError):
    code = "DLQ_ERROR"


class DlqNotFound(DlqError):
    """Locations that hold no dead letter (exit 1)."""

    code = DLQ_NOT_FOUND


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """Where a dead letter sits on the dead-letter topic (px.dlq.v1 under the topic prefix)."""

    partition: int
    offset: int

    @classmethod
    def parse(cls, text: str) -> Location:
        """`PARTITION:OFFSET`, or `TOPIC:PARTITION:OFFSET` as `px-retry-of` names it."""
        body = text.split(":", 1)[1] if text.count(":") == 2 else text  # no ':' in a topic
        partition, sep, offset = body.partition(":")
        if not (sep and partition.isdigit() and offset.isdigit()):
            raise DlqError(f"bad location {text!r}: expected PARTITION:OFFSET, e.g. 0:17",
                           code=DLQ_LOCATION_INVALID)
        return cls(int(partition), int(offset))

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    location: Location
    submission_id: str
    event_id: str
    sender: str
    format_id: str
    received_at: datetime
    error_code: str
    error_message: str
    error_line: int | None
    original: bytes  # the whole document, or its first bytes when `cut`
    signature: bytes
    # What the gateway found out before refusing it: the type once its format was known, the
    # business key and version once it was parsed.
    document_type: str | None = None
    business_key: str | None = None
    document_version: int | None = None
    # A document never authenticated: the whole one's size and SM3 (dead letter headers).
    whole_size: int | None = None
    whole_digest: str | None = None

    @classmethod
    def from_message(cls, message: StoredMessage, schemas: AvroSchemas) -> DeadLetter:
        where = Location(message.partition, message.offset)
        try:
            name, value = schemas.decode(message.value)
        except FormatError as exc:
            raise DlqError(f"{where}: not a dead letter: {exc.message}",
                           code=DLQ_NOT_A_DEAD_LETTER) from exc
        if name != DEAD_LETTER_SCHEMA:
            raise DlqError(f"{where}: not a dead letter but a {name}", code=DLQ_NOT_A_DEAD_LETTER)
        return cls(
            topic=message.topic,
            location=where,
            submission_id=value["submission_id"],
            event_id=value["event_id"],
            sender=value["sender"],
            format_id=value["format_id"],
            received_at=value["received_at"].astimezone(UTC),
            error_code=value["error_code"],
            error_message=value["error_message"],
            error_line=value["error_line"],
            original=value["original"],
            signature=value["signature"],
            document_type=value["document_type"],
            business_key=value["business_key"],
            document_version=value["document_version"],
            **_cut_of(message),
        )

    @property
    def reference(self) -> str:
        """`TOPIC:PARTITION:OFFSET`, as a re-submission's `px-retry-of` names it."""
        return f"{self.topic}:{self.location}"

    @property
    def cut(self) -> bool:
        return self.whole_size is not None

    @property
    def size(self) -> int:
        """The whole document's size, whether it is kept whole or cut."""
        return len(self.original) if self.whole_size is None else self.whole_size

    @property
    def digest_sm3(self) -> str:
        """The SM3 of the whole document."""
        return sm3_hex(self.original) if self.whole_digest is None else self.whole_digest

    def summary(self) -> dict[str, Any]:
        """Everything but the original bytes and the signature, for JSON lines."""
        return {
            "location": str(self.location),
            "partition": self.location.partition,
            "offset": self.location.offset,
            "received_at": iso_instant(self.received_at),
            "sender": self.sender,
            "format_id": self.format_id,
            "document_type": self.document_type,
            "business_key": self.business_key,
            "document_version": self.document_version,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "error_line": self.error_line,
            "submission_id": self.submission_id,
            "event_id": self.event_id,
            "size": self.size,
            "digest_sm3": self.digest_sm3,
            "kept_bytes": len(self.original),
            "cut": self.cut,
        }


def _cut_of(message: StoredMessage) -> dict[str, Any]:
    size, digest = message.header(H_ORIGINAL_SIZE), message.header(H_DIGEST)
    if size is None or digest is None or not size.isdigit():
        return {}
    return {"whole_size": int(size), "whole_digest": digest.decode("ascii", "replace")}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command is about; None matches anything."""

    sender: str | None = None
    code: str | None = None
    since: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return ((self.sender is None or letter.sender == self.sender)
                and (self.code is None or letter.error_code == self.code)
                and (self.since is None or letter.received_at >= self.since))


@dataclass(frozen=True, slots=True)
class Resubmission:
    letter: DeadLetter
    submission_id: str
    published: Published | None  # None on a dry run


async def read_dead_letters(
    bootstrap_servers: Broker, topics: Topics, schemas: AvroSchemas
) -> tuple[list[DeadLetter], list[DlqError]]:
    """Every dead letter from the start of the topic to its current end, and the records
    there that are not dead letters."""
    letters: list[DeadLetter] = []
    unreadable: list[DlqError] = []
    for message in await read_topics(bootstrap_servers, [topics.dlq]):
        try:
            letters.append(DeadLetter.from_message(message, schemas))
        except DlqError as exc:
            unreadable.append(exc)
    return letters, unreadable


async def dead_letters_at(
    bootstrap_servers: Broker, topics: Topics, locations: Sequence[Location],
    schemas: AvroSchemas
) -> list[DeadLetter]:
    """The dead letters at `locations`, in that order; DlqNotFound naming every missing one."""
    topic = topics.dlq
    partitions = {tp.partition for tp in await partitions_of(bootstrap_servers, [topic])}
    wanted = [(topic, at.partition, at.offset) for at in locations
              if at.partition in partitions]
    found = await read_at(bootstrap_servers, wanted) if wanted else {}
    missing = [at for at in locations if (topic, at.partition, at.offset) not in found]
    if missing:
        names = ", ".join(str(at) for at in missing)
        raise DlqNotFound(f"no dead letter at {names} on {topic}")
    return [DeadLetter.from_message(found[(topic, at.partition, at.offset)], schemas)
            for at in locations]


async def already_retried(bootstrap_servers: Broker, topics: Topics) -> set[str]:
    """The dead letters (`px.dlq.v1:P:O`) some ingress record names as its origin."""
    marks = (m.header(H_RETRY_OF)
             for m in await read_topics(bootstrap_servers, [topics.ingress]))
    return {mark.decode("utf-8", "replace") for mark in marks if mark is not None}


def retry_submission_id(letter: DeadLetter) -> str:
    return f"retry-{letter.submission_id}-{uuid.uuid4().hex[:8]}"


def ingress_headers(letter: DeadLetter, submission_id: str, *, by: str | None = None
                    ) -> list[tuple[str, bytes]]:
    """What an agency's submission carries (see gateway.ingress.client.submit), plus the
    origin and, when given, who asked for the re-submission."""
    retried_by = [] if by is None else [(H_RETRIED_BY, by.encode())]
    return [*submission_headers(submission_id, letter.sender, letter.format_id,
                                letter.signature),
            (H_RETRY_OF, letter.reference.encode()), *retried_by]


def refuse_cut(letters: Sequence[DeadLetter]) -> None:
    """DlqError (DLQ_ORIGINAL_CUT) naming the letters kept cut: they cannot be re-submitted."""
    cut = [str(letter.location) for letter in letters if letter.cut]
    if cut:
        raise DlqError(f"{', '.join(cut)}: only the first bytes of a document never "
                       "authenticated are kept; it cannot be re-submitted (the agency "
                       "sends it again)", code=DLQ_ORIGINAL_CUT)


async def resubmit(
    bootstrap_servers: Broker, topics: Topics, letters: Iterable[DeadLetter], *,
    dry_run: bool = False, by: str | None = None
) -> list[Resubmission]:
    """Puts each original document back on the ingress topic, keyed by its sender; `by`:
    the operator who asked, recorded on each (`px-retried-by`)."""
    planned = [(letter, retry_submission_id(letter)) for letter in letters]
    if dry_run or not planned:
        return [Resubmission(letter, submission_id, None) for letter, submission_id in planned]
    producer = new_producer(bootstrap_servers)
    done: list[Resubmission] = []
    try:
        await producer.start()
        for letter, submission_id in planned:
            md = await producer.send_and_wait(
                topics.ingress, letter.original, key=letter.sender.encode(),
                headers=ingress_headers(letter, submission_id, by=by))
            done.append(Resubmission(letter, submission_id,
                                     Published(md.topic, md.partition, md.offset)))
            log.info("dlq.resubmitted", dead_letter=letter.reference,
                     submission_id=submission_id, sender=letter.sender, offset=md.offset,
                     by=by)
    except KafkaError as exc:
        sent = ", ".join(f"{item.letter.location} as {item.submission_id}" for item in done)
        after = f" after re-submitting {sent}" if sent else " before anything was re-submitted"
        raise BrokerUnavailable(f"re-submitting to {topics.ingress} failed{after}: {exc}") from exc
    finally:
        await producer.stop()
    return done



def iso_instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
