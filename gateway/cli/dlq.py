"""`portgw dlq`: look at dead letters and put their documents back on the ingress topic.

A dead letter (`px.gateway.DeadLetter` on px.dlq.v1) keeps a refused document whole: its
original bytes and the sender's signature. Once the cause is fixed (a missing contract or
key added), `retry` hands the document to the gateway again exactly as the agency sent it,
under a new submission id and marked with the dead letter it came from (`px-retry-of`).

A document that was never authenticated (unknown sender, bad signature, too large) is kept
cut: its first bytes (gateway.publish.plan.KEPT_PREFIX_BYTES), its whole size and its SM3. `show`
says so; `retry` refuses it (DLQ_ORIGINAL_CUT): the agency has to send it again.

Exit codes: 0 done, 1 a location holds no dead letter, 2 usage, broker or I/O error.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiokafka.errors import KafkaError

from crypto import sm3_hex
from gateway.cli.private_files import save_private
from gateway.cli.support import config_args, link_of, topics_of
from gateway.errors import BrokerUnavailable, GatewayError
from gateway.kafka.names import H_DIGEST, H_RETRY_OF, StoredMessage, Topics, submission_headers
from gateway.kafka.wire import Broker, Published, new_producer, partitions_of, read_at, read_topics
from gateway.publish.plan import DEAD_LETTER_SCHEMA, H_ORIGINAL_SIZE
from message_formats import AvroSchemas, FormatError

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2
DLQ_NOT_FOUND = "DLQ_NOT_FOUND"
DLQ_NOT_A_DEAD_LETTER = "DLQ_NOT_A_DEAD_LETTER"
DLQ_LOCATION_INVALID = "DLQ_LOCATION_INVALID"
DLQ_USAGE = "DLQ_USAGE"
DLQ_ORIGINAL_CUT = "DLQ_ORIGINAL_CUT"
_SHORT_MESSAGE = 60


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
            "received_at": _iso(self.received_at),
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


# -- reading and re-submitting -----------------------------------------------------------------


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


def ingress_headers(letter: DeadLetter, submission_id: str) -> list[tuple[str, bytes]]:
    """What an agency's submission carries (see gateway.ingress.client.submit), plus the origin."""
    return [*submission_headers(submission_id, letter.sender, letter.format_id,
                                letter.signature),
            (H_RETRY_OF, letter.reference.encode())]


async def resubmit(
    bootstrap_servers: Broker, topics: Topics, letters: Iterable[DeadLetter], *,
    dry_run: bool = False
) -> list[Resubmission]:
    """Puts each original document back on the ingress topic, keyed by its sender."""
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
                headers=ingress_headers(letter, submission_id))
            done.append(Resubmission(letter, submission_id,
                                     Published(md.topic, md.partition, md.offset)))
            log.info("dlq.resubmitted", dead_letter=letter.reference,
                     submission_id=submission_id, sender=letter.sender, offset=md.offset)
    except KafkaError as exc:
        sent = ", ".join(f"{item.letter.location} as {item.submission_id}" for item in done)
        after = f" after re-submitting {sent}" if sent else " before anything was re-submitted"
        raise BrokerUnavailable(f"re-submitting to {topics.ingress} failed{after}: {exc}") from exc
    finally:
        await producer.stop()
    return done


# -- the commands ------------------------------------------------------------------------------


def add_dlq_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    dlq = commands.add_parser(
        "dlq", help="list, show and retry dead letters (refused documents)",
        description="Dead letters on px.dlq.v1 keep each refused document whole, with its "
        "signature and why it was refused. Exit codes: 0 done, 1 a location holds no dead "
        "letter, 2 usage, broker or I/O error.",
    )
    sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")

    listing = sub.add_parser(
        "list", help="one line per dead letter",
        description="Reads the dead-letter topic from its start to its current end and prints "
        "one line per dead letter: PARTITION:OFFSET, received at, sender, format, error code, "
        "error message (shortened), size.",
    )
    listing.add_argument("--sender", help="only dead letters of this agency")
    listing.add_argument("--code", help="only dead letters with this error code")
    listing.add_argument("--since", type=_instant, metavar="ISO",
                         help="only dead letters received at or after this time (ISO 8601)")
    listing.add_argument("--json", action="store_true", help="JSON lines instead")
    config_args(listing)
    listing.set_defaults(run=_guarded(_list))

    show = sub.add_parser(
        "show", help="every field of one dead letter; --out writes its original bytes",
        description="Prints every field of the dead letter at LOCATION (PARTITION:OFFSET): "
        "the error, ids, sender, format, size, the SM3 digest of the original document and "
        "the signature (base64). --out FILE writes the original bytes exactly, readable by "
        "its owner alone (mode 0600).",
    )
    show.add_argument("location", type=_location, metavar="LOCATION")
    show.add_argument("--out", type=Path, metavar="FILE",
                      help="write the original bytes here (mode 0600)")
    config_args(show)
    show.set_defaults(run=_guarded(_show))

    retry = sub.add_parser(
        "retry", help="put dead documents back on the ingress topic",
        description="Puts each dead letter's original document back on px.ingress.v1 as "
        "its agency sent it (same bytes, signature, sender and format) under a new "
        f"submission id, marked {H_RETRY_OF}. Give LOCATIONs, or --code (and --sender) to "
        "select; a selection leaves out dead letters that were already retried (name one "
        "by its LOCATION to retry it again).",
    )
    retry.add_argument("locations", nargs="*", type=_location, metavar="LOCATION")
    retry.add_argument("--code", help="every dead letter with this error code")
    retry.add_argument("--sender", help="with --code: only this agency's dead letters")
    retry.add_argument("--dry-run", action="store_true",
                       help="print what would be re-submitted, send nothing")
    config_args(retry)
    retry.set_defaults(run=_guarded(_retry))


def main(argv: Sequence[str] | None = None) -> int:
    """`portgw dlq ...` on its own (for tests, and `python -m gateway.cli.dlq dlq ...`)."""
    parser = argparse.ArgumentParser(prog="portgw")
    add_dlq_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 after --help
        return int(exc.code or 0)
    try:
        return int(args.run(args))
    except GatewayError as exc:
        print(f"portgw: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE


def _list(args: argparse.Namespace) -> int:
    letters, unreadable = asyncio.run(read_dead_letters(link_of(args), topics_of(args),
                                                        AvroSchemas()))
    for problem in unreadable:
        print(f"portgw dlq: {problem.code}: {problem.message}", file=sys.stderr)
    selection = Selection(sender=args.sender, code=args.code, since=args.since)
    chosen = [letter for letter in letters if selection.matches(letter)]
    for letter in chosen:
        print(json.dumps(letter.summary(), ensure_ascii=False) if args.json else _line(letter))
    if not args.json:
        print(f"{len(chosen)} of {len(letters)} dead letter(s)", file=sys.stderr)
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    [letter] = asyncio.run(dead_letters_at(link_of(args), topics_of(args), [args.location],
                                           AvroSchemas()))
    for line in _details(letter):
        print(line)
    if args.out is not None:
        save_private(args.out, letter.original)  # what the agency sent: mode 0600
        what = f"the first {len(letter.original)} bytes of the original" if letter.cut \
            else f"original: {letter.size} bytes"
        print(f"{what} written to {args.out}")
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    if bool(args.locations) == (args.code is not None):
        raise DlqError("give either LOCATIONs or --code", code=DLQ_USAGE)
    if args.sender is not None and args.code is None:
        raise DlqError("--sender selects together with --code", code=DLQ_USAGE)
    done = asyncio.run(_retry_selected(link_of(args), args))
    for item in done:
        print(_resubmitted_line(item))
    verb = "would re-submit" if args.dry_run else "re-submitted"
    print(f"{verb} {len(done)} document(s)", file=sys.stderr)
    return EXIT_OK


async def _retry_selected(bootstrap: Broker, args: argparse.Namespace) -> list[Resubmission]:
    topics = topics_of(args)
    letters = await _retry_candidates(bootstrap, topics, args)
    return await resubmit(bootstrap, topics, letters, dry_run=args.dry_run)


async def _retry_candidates(bootstrap: Broker, topics: Topics, args: argparse.Namespace
                            ) -> list[DeadLetter]:
    schemas = AvroSchemas()
    if args.locations:
        named = await dead_letters_at(bootstrap, topics, list(dict.fromkeys(args.locations)),
                                      schemas)
        cut = [str(letter.location) for letter in named if letter.cut]
        if cut:
            raise DlqError(f"{', '.join(cut)}: only the first bytes of a document never "
                           "authenticated are kept; it cannot be re-submitted (the agency "
                           "sends it again)", code=DLQ_ORIGINAL_CUT)
        return named
    letters, _ = await read_dead_letters(bootstrap, topics, schemas)
    selection = Selection(sender=args.sender, code=args.code)
    matching = [letter for letter in letters if selection.matches(letter)]
    chosen = [letter for letter in matching if not letter.cut]
    if len(chosen) < len(matching):
        print(f"left out {len(matching) - len(chosen)} dead letter(s) kept cut "
              f"({DLQ_ORIGINAL_CUT}): never authenticated, they cannot be re-submitted",
              file=sys.stderr)
    retried = await already_retried(bootstrap, topics) if chosen else set()
    fresh = [letter for letter in chosen if letter.reference not in retried]
    if len(fresh) < len(chosen):
        print(f"left out {len(chosen) - len(fresh)} dead letter(s) already retried",
              file=sys.stderr)
    return fresh


# -- output ------------------------------------------------------------------------------------


def _line(letter: DeadLetter) -> str:
    return "  ".join((str(letter.location), _iso(letter.received_at), letter.sender,
                      letter.format_id or "-", letter.error_code,
                      _shortened(letter.error_message), f"{letter.size} B"))


def _details(letter: DeadLetter) -> list[str]:
    at_line = f" (line {letter.error_line})" if letter.error_line is not None else ""
    return [
        f"location: {letter.reference}",
        f"error: {letter.error_code}{at_line}: {letter.error_message}",
        f"submission id: {letter.submission_id}",
        f"event id: {letter.event_id}",
        f"sender: {letter.sender}",
        f"format: {letter.format_id}",
        *_facts(letter),
        f"received at: {_iso(letter.received_at)}",
        f"size: {letter.size} bytes" + (f" (cut: only the first {len(letter.original)} "
                                        "kept, never authenticated; cannot be retried)"
                                        if letter.cut else ""),
        f"digest (SM3): {letter.digest_sm3}",
        f"signature (base64): {base64.b64encode(letter.signature).decode('ascii')}",
    ]


def _facts(letter: DeadLetter) -> list[str]:
    """The document's type, business key and version, as far as the gateway got."""
    facts = (("document type", letter.document_type), ("business key", letter.business_key),
             ("document version", letter.document_version))
    return [f"{label}: {value}" for label, value in facts if value is not None]


def _resubmitted_line(item: Resubmission) -> str:
    letter = item.letter
    where = f"{item.published.topic}:{item.published.partition}:{item.published.offset}" \
        if item.published else "(dry run)"
    return (f"{letter.location} -> {where} as {item.submission_id} "
            f"({letter.sender}, {letter.format_id}, was {letter.error_code})")


def _shortened(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHORT_MESSAGE else flat[: _SHORT_MESSAGE - 1] + "…"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- shared ------------------------------------------------------------------------------------


Handler = Callable[[argparse.Namespace], int]


def _guarded(handler: Handler) -> Handler:
    """A location without a dead letter exits 1, a usage problem 2, each as one line rather
    than a traceback; other errors reach `portgw`'s own handler (exit 2)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except DlqError as exc:
            print(f"portgw dlq: {exc.code}: {exc.message}", file=sys.stderr)
            missing = exc.code in (DLQ_NOT_FOUND, DLQ_NOT_A_DEAD_LETTER)
            return EXIT_NOT_FOUND if missing else EXIT_USAGE

    return run


def _location(text: str) -> Location:
    try:
        return Location.parse(text)
    except DlqError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


if __name__ == "__main__":
    sys.exit(main())
