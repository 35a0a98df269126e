"""`portgw replay ...`: the auditor's commands. The gateway's CLI finds them through the
entry-point group `port_exchange_gateway.commands`, so that nothing below replay imports it."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crypto import Keyring
from gateway.cli.support import EXIT_FAILED, EXIT_OK, config_args, link_of, load_config, topics_of
from gateway.errors import TRAIL_START_MISSING, GatewayError
from gateway.parts import GatewayParts
from message_formats import AvroSchemas
from replay.archive import verify_archive
from replay.bundle_cli import run_check_bundle, run_export, run_trace
from replay.checkpoint import (
    Checkpoint,
    archive_checkpoints,
    kafka_checkpoints,
    latest_verified,
    load_checkpoints,
    save_checkpoints,
    with_checkpoints,
)
from replay.container import write_archive_container
from replay.redeliver import describe_redeliveries, redeliver
from replay.verify import Progress, VerifyReport, describe, unreported, verify_kafka

START_MISSING_HINT = (
    "hint: the trail topic no longer holds its chains from their start, as after a restart of "
    "a broker that keeps nothing (the local broker keeps its topics in memory); the gateway's "
    "archive holds every record: portgw replay verify --source archive")
_TIME_HELP = "ISO 8601 time, e.g. 2026-11-21T08:00+08:00 (no offset: UTC)"


def add_replay_commands(commands: Any) -> None:
    replay = commands.add_parser("replay", help="the auditor's tools")
    sub = replay.add_subparsers(dest="replay_command", required=True, metavar="COMMAND")
    _add_verify(sub)
    _add_checkpoint(sub)
    _add_archive_avro(sub)
    _add_trace(sub)
    _add_export(sub)
    _add_check_bundle(sub)
    _add_redeliver(sub)


def _add_verify(sub: Any) -> None:
    verify = sub.add_parser(
        "verify", help="verify the trail: chains, seals, delivered events",
        description="Reads the trail back, from the broker or from the archive files, and "
        "checks every chain (sequence, SM3 hashes, links), every seal (signed by one of the "
        "gateway's sealing keys, role seal, valid at the seal's time; SM2 signature; Merkle "
        "root) and, on the broker, that every event, "
        "delivery and dead letter the trail names still has the digest recorded. Exits 0 when "
        "all verifies, 1 naming each break, 2 on usage or connection errors.",
    )
    _source_args(verify)
    verify.add_argument("--from", dest="since", type=parse_time, help=_TIME_HELP)
    verify.add_argument("--to", dest="until", type=parse_time, help=_TIME_HELP)
    verify.add_argument("--trail-topic",
                        help="default: px.trail.v1 under the configuration's topic_prefix")
    verify.add_argument("--mirror-prefix", default="",
                        help="verify a mirrored copy whose topics carry this prefix")
    verify.add_argument("--checkpoint", type=Path, metavar="FILE",
                        help="a checkpoint file (portgw replay checkpoint): the trail must "
                        "reach, unchanged, every seal it names, else TRAIL_CUT or "
                        "TRAIL_CHECKPOINT_DIFFERS")
    verify.add_argument("--unsealed-after", type=float, default=600.0, metavar="SECONDS",
                        help="on the broker, records after a chain's last seal that are older "
                        "than this are a break, TRAIL_UNSEALED_TAIL (default 600; 0: never)")
    verify.add_argument("--progress", action="store_true",
                        help="on the broker, print a line 'progress: phase=… read=N "
                        "verified=N chains=D/T' after each fetch, every 5,000 records and each "
                        "chain checked (the console's job shows it)")
    verify.set_defaults(run=_verify)


def _add_checkpoint(sub: Any) -> None:
    checkpoint = sub.add_parser(
        "checkpoint", help="fetch and keep the trail's latest signed checkpoint",
        description="Reads the gateway's checkpoints (from px.checkpoint.v1, or from the "
        "archive directory), keeps the latest per chain whose signature is a gateway sealing "
        "key's, valid at its time, and writes them to FILE. Keep that file: `replay verify "
        "--checkpoint FILE` then tells a trail cut at its end. Exits 1 when a checkpoint is "
        "refused or none is found.")
    _source_args(checkpoint)
    checkpoint.add_argument("--out", type=Path, required=True, help="the file to write")
    checkpoint.set_defaults(run=_checkpoint)


def _add_archive_avro(sub: Any) -> None:
    container = sub.add_parser(
        "archive-avro", help="the trail archive as one Avro object container file",
        description="Writes the trail archive (DIR, default: the config's trail archive) to "
        "FILE as an Avro object container file whose schema is the union of "
        "px.trail.SegmentHeader, px.trail.TrailRecord and px.trail.Seal, frames in archive "
        "order, for tools that read .avro files. Refuses an archive with a frame that does "
        "not read (TRAIL_ARCHIVE_CORRUPT); `replay verify --source archive` checks the "
        "archive itself.")
    config_args(container)
    container.add_argument("directory", nargs="?", type=Path, metavar="DIR")
    container.add_argument("--out", type=Path, required=True, help="the .avro file to write")
    container.set_defaults(run=_archive_avro)


def _source_args(parser: Any) -> None:
    """Where to read (the broker or the archive) and the keyring to check against."""
    config_args(parser)
    parser.add_argument("--source", nargs="+", default=["kafka"], metavar="kafka|archive [DIR]",
                        help="where to read: the broker (default), or the archive directory "
                        "(default: the config's trail archive)")
    parser.add_argument("--keyring", type=Path,
                        help="keyring TOML with the gateway's public keys (default: the "
                        "config's)")


def _add_trace(sub: Any) -> None:
    trace = sub.add_parser("trace", help="the history of one document (单证追溯)",
                           description="Every version of the document with this business "
                           "key: who sent it, what was decided, who received what under which "
                           "contract, and when.")
    config_args(trace)
    trace.add_argument("key", metavar="DOC-KEY", help="the document's business key")
    trace.add_argument("--sender", help="only the documents of this sender")
    trace.set_defaults(run=_trace)


def _add_export(sub: Any) -> None:
    export = sub.add_parser("export", help="an evidence bundle for one document",
                            description="Writes a zip with the original bytes and signature, "
                            "the canonical event, the trail records, the seals with inclusion "
                            "proofs and the public keys, and a README showing how to check "
                            "each seal with the openssl command line alone.")
    config_args(export)
    export.add_argument("key", metavar="DOC-KEY", help="the document's business key")
    export.add_argument("--out", type=Path, required=True, help="the zip file to write")
    export.add_argument("--sender", help="only the documents of this sender")
    export.set_defaults(run=_export)


def _add_check_bundle(sub: Any) -> None:
    check = sub.add_parser("check-bundle", help="verify an evidence bundle offline")
    check.add_argument("bundle", type=Path)
    check.add_argument("--keyring", type=Path,
                       help="also require each seal key to be one of the gateway's sealing "
                       "keys in this keyring (role seal), valid at the seal's time, and each "
                       "sender key that agency's own")
    check.set_defaults(run=_check_bundle)


def _add_redeliver(sub: Any) -> None:
    again = sub.add_parser("redeliver", help="deliver accepted documents again to one agency",
                           description="Re-publishes the documents accepted in the window to "
                           "AGENCY under the contracts as they are now, marked as replays "
                           "(header px-replay-of) and recorded in the trail as REDELIVERED.")
    config_args(again)
    again.add_argument("--to", dest="recipient", required=True, metavar="AGENCY")
    again.add_argument("--from", dest="since", type=parse_time, required=True, help=_TIME_HELP)
    again.add_argument("--until", type=parse_time, help=_TIME_HELP + " (default: now)")
    again.set_defaults(run=_redeliver)


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _keyring(args: argparse.Namespace) -> Keyring:
    return Keyring.from_toml(args.keyring or load_config(args).keyring_file)


def _archive_source(args: argparse.Namespace) -> Path | None:
    """The archive directory `--source archive [DIR]` names; None for `--source kafka`."""
    source, *rest = args.source
    if source == "archive" and len(rest) <= 1:
        return Path(rest[0]) if rest else _configured_archive(args)
    if source == "kafka" and not rest:
        return None
    raise GatewayError("--source is 'kafka' or 'archive [DIR]'", code="USAGE")


def _configured_archive(args: argparse.Namespace) -> Path:
    directory = load_config(args).archive_dir
    if directory is None:
        raise GatewayError("no archive directory: name one or configure trail.archive_dir",
                           code="CONFIG_NO_ARCHIVE")
    return directory


def _verify(args: argparse.Namespace) -> int:
    directory = _archive_source(args)
    schemas, keyring = AvroSchemas(), _keyring(args)
    held: list[Checkpoint] | None = None
    if args.checkpoint is not None:
        if args.since is not None or args.until is not None:
            raise GatewayError("--checkpoint checks the whole trail: not with --from/--to",
                               code="USAGE")
        held = load_checkpoints(args.checkpoint, schemas)
    report: VerifyReport
    if directory is not None:
        report = verify_archive(directory, schemas, keyring, since=args.since, until=args.until)
        source = f"archive {directory}"
    else:
        unsealed_before = (datetime.now(UTC) - timedelta(seconds=args.unsealed_after)
                           if args.unsealed_after > 0 else None)
        trail_topic = args.trail_topic or topics_of(args).trail
        report = asyncio.run(verify_kafka(
            link_of(args), schemas, keyring, trail_topic=trail_topic,
            since=args.since, until=args.until, mirror_prefix=args.mirror_prefix,
            unsealed_before=unsealed_before,
            progress=_print_progress if args.progress else unreported))
        source = args.mirror_prefix + trail_topic
    if held is not None:
        report = with_checkpoints(report, held, keyring)
    print(describe(report, source, checkpoints=None if held is None else len(held)))
    if directory is None and any(b.code == TRAIL_START_MISSING for b in report.breaks):
        print(START_MISSING_HINT)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_progress(progress: Progress) -> None:
    print(progress.line(), flush=True)


def _checkpoint(args: argparse.Namespace) -> int:
    directory = _archive_source(args)
    schemas = AvroSchemas()
    found = (archive_checkpoints(directory, schemas) if directory is not None
             else asyncio.run(kafka_checkpoints(link_of(args), schemas,
                                                topics_of(args).checkpoint)))
    fetched = latest_verified(found, _keyring(args))
    for checkpoint, refusal in fetched.refused:
        print(f"refused: {checkpoint.name}: {refusal.code}: {refusal.message}")
    if fetched.latest:
        save_checkpoints(args.out, fetched.latest)
    for checkpoint in fetched.latest:
        print(f"kept: {checkpoint.name}, seal hash {checkpoint.body['seal_hash']}")
    print(f"{len(fetched.latest)} checkpoint(s) written to {args.out}" if fetched.latest
          else "no checkpoint verifies: nothing written")
    return EXIT_OK if fetched.latest and not fetched.refused else EXIT_FAILED


def _archive_avro(args: argparse.Namespace) -> int:
    directory = args.directory or _configured_archive(args)
    partial = args.out.with_name(args.out.name + ".partial")  # never a half file at --out
    try:
        with partial.open("wb") as out:
            written = write_archive_container(directory, AvroSchemas(), out)
        partial.replace(args.out)
    except OSError as exc:
        raise GatewayError(f"cannot write {args.out}: {exc.strerror or exc}",
                           code="IO_ERROR") from exc
    finally:
        partial.unlink(missing_ok=True)
    print(f"{written} frame(s) of {directory} written to {args.out}")
    return EXIT_OK


def _trace(args: argparse.Namespace) -> int:
    return run_trace(link_of(args), args.key, trail_topic=topics_of(args).trail,
                     sender=args.sender)


def _export(args: argparse.Namespace) -> int:
    keyring = Keyring.from_toml(load_config(args).keyring_file)
    return run_export(link_of(args), keyring, args.key, args.out,
                      trail_topic=topics_of(args).trail, sender=args.sender)


def _check_bundle(args: argparse.Namespace) -> int:
    keyring = Keyring.from_toml(args.keyring) if args.keyring else None
    return run_check_bundle(args.bundle, keyring=keyring)


def _redeliver(args: argparse.Namespace) -> int:
    config = load_config(args)
    parts = GatewayParts.load(config)
    outcomes = asyncio.run(redeliver(config, parts, link_of(args), recipient=args.recipient,
                                     since=args.since, until=args.until))
    print(describe_redeliveries(outcomes, args.recipient))
    return EXIT_OK
