"""`portgw schemas export DIR`: every Avro schema a consumer of the gateway may meet, as files
an agency reads with any Avro library and no code of ours.

What is written: the canonical documents and the gateway's own records (deliveries, receipts,
status events, dead letters, the trail), the installed adapter plug-ins' schemas, the
projected and masked records of the sharing contracts in force (which the gateway makes at
start-up and publishes nowhere else), and the schemas of earlier releases that values written
before an upgrade carry. Each is one standalone `.avsc` (every named type defined where it is
first used), named `<full name>-<fingerprint>.avsc`, so a file never changes its content and
exports of successive contract versions add up in one directory.

`index.json` maps each fingerprint to its file. The fingerprint is the Avro specification's
CRC-64-AVRO (`fingerprint64`) of the schema's Parsing Canonical Form, as the 8 little-endian
bytes that follow `C3 01` in Avro single-object encoding, written in hex: the bytes 2-9 of every
Kafka value the gateway writes (a delivery's `px.gateway.Delivery` and, for Avro payloads, its
payload too), and the `px-schema-fingerprint` header. Entries of an earlier export into the same
directory are kept (`current` false when this gateway no longer writes with them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from gateway.cli.support import EXIT_OK
from gateway.errors import GatewayError
from gateway.home.config import GatewayConfig
from gateway.parts import GatewayParts
from message_formats import WriterSchema

INDEX_FILE: Final = "index.json"
INDEX_FORMAT: Final = "px-avro-schema-index/1"
FINGERPRINT_RULE: Final = (
    "CRC-64-AVRO (the Avro specification's fingerprint64) of the schema's Parsing Canonical "
    "Form, as the 8 little-endian bytes after C3 01 in Avro single-object encoding, in hex; "
    "the same as the px-schema-fingerprint header")


def add_schemas_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    schemas = commands.add_parser(
        "schemas", help="publish the Avro schemas consumers meet",
        description="The Avro schemas of what the gateway writes, for agencies that read "
        "its topics with their own tools.",
    )
    sub = schemas.add_subparsers(dest="schemas_command", required=True, metavar="COMMAND")
    export = sub.add_parser(
        "export", help="write every schema a consumer may meet, and an index by fingerprint",
        description="Writes to DIR every Avro schema a consumer may meet (canonical, "
        "gateway, plug-in adapters', the projected and masked delivery schemas of the "
        "contracts in force, earlier releases'), each a standalone .avsc, and index.json "
        "mapping each fingerprint (the 8 bytes after C3 01 in a single-object encoded "
        "value, in hex) to its file. Entries of an earlier export into DIR are kept.",
    )
    export.add_argument("directory", type=Path, metavar="DIR")
    export.add_argument("--config", type=Path, default=Path("gateway.toml"),
                        help="gateway configuration (default ./gateway.toml)")
    export.set_defaults(run=_export)


def _export(args: argparse.Namespace) -> int:
    parts = GatewayParts.load(GatewayConfig.load(args.config))
    written = export_schemas(parts.schemas.writer_schemas(), args.directory)
    print(f"{written} schema(s) written to {args.directory}; index: "
          f"{args.directory / INDEX_FILE}", file=sys.stderr)
    return EXIT_OK


def export_schemas(writers: Iterable[WriterSchema], directory: Path) -> int:
    """Writes each schema's file and the index; the number of schemas written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        entries = _earlier_entries(directory)
        written = 0
        for writer in writers:
            fingerprint = writer.fingerprint.hex()
            name = f"{writer.full_name}-{fingerprint}.avsc"
            text = json.dumps(writer.schema, indent=2, ensure_ascii=False) + "\n"
            (directory / name).write_text(text, encoding="utf-8")
            entries[fingerprint] = {"name": writer.full_name, "file": name,
                                    "current": writer.current}
            written += 1
        index = {"format": INDEX_FORMAT, "fingerprint": FINGERPRINT_RULE,
                 "schemas": dict(sorted(entries.items()))}
        (directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n",
                                            encoding="utf-8")
    except OSError as exc:
        raise GatewayError(f"cannot write schemas to {directory}: {exc.strerror or exc}",
                           code="IO_ERROR") from exc
    return written


def _earlier_entries(directory: Path) -> dict[str, dict[str, Any]]:
    """An earlier export's entries whose files are still there, no longer current."""
    path = directory / INDEX_FILE
    if not path.exists():
        return {}
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        earlier = None
    schemas = earlier.get("schemas") if isinstance(earlier, dict) else None
    if not isinstance(schemas, dict) or earlier.get("format") != INDEX_FORMAT:
        raise GatewayError(f"{path}: index.json must be one written by `portgw schemas "
                           f"export` ({INDEX_FORMAT})", code="SCHEMA_INDEX_INVALID")
    return {fingerprint: {**entry, "current": False}
            for fingerprint, entry in schemas.items()
            if isinstance(entry, dict) and _is_file_in(directory, entry.get("file"))}


def _is_file_in(directory: Path, name: object) -> bool:
    return isinstance(name, str) and Path(name).name == name and (directory / name).is_file()


__all__ = ["INDEX_FILE", "add_schemas_commands", "export_schemas"]
