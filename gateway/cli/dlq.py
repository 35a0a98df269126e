"""`portgw dlq`: look at dead letters and put their documents back on the ingress topic.

The dead letters are read and re-submitted by gateway.publish.dead_letters, which the
operators' console uses too. A dead letter (`px.gateway.DeadLetter` on px.dlq.v1) keeps a
refused document whole: its original bytes and the sender's signature. Once the cause is
fixed (a missing contract or key added), `retry` hands the document to the gateway again
exactly as the agency sent it, under a new submission id and marked with the dead letter it
came from (`px-retry-of`).

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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from gateway.cli.private_files import save_private
from gateway.cli.support import config_args, link_of, topics_of
from gateway.errors import GatewayError
from gateway.kafka.names import H_RETRY_OF, Topics
from gateway.kafka.wire import Broker
from gateway.publish.dead_letters import (
    DLQ_NOT_A_DEAD_LETTER,
    DLQ_NOT_FOUND,
    DLQ_ORIGINAL_CUT,
    DLQ_USAGE,
    DeadLetter,
    DlqError,
    Location,
    Resubmission,
    Selection,
    already_retried,
    dead_letters_at,
    iso_instant,
    read_dead_letters,
    refuse_cut,
    resubmit,
)
from message_formats import AvroSchemas

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2
_SHORT_MESSAGE = 60


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
        refuse_cut(named)
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
    return "  ".join((str(letter.location), iso_instant(letter.received_at), letter.sender,
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
        f"received at: {iso_instant(letter.received_at)}",
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
