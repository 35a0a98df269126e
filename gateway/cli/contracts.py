"""`portgw contracts`: checking contract files and asking the router what it would do."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from adapters import AdapterError, AdapterRegistry, ParseResult
from contracts import AgencyRegistry, explain, lint_contract_dir
from gateway.clock import utc_now
from gateway.decide.router import document_catalog, format_table
from gateway.errors import GatewayError
from gateway.home.config import GatewayConfig
from gateway.parts import GatewayParts
from message_formats import AvroSchemas, FormatError

EXIT_OK, EXIT_INVALID = 0, 1


def add_contracts_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    contracts = commands.add_parser(
        "contracts", help="lint sharing contracts; explain a routing decision",
        description="Sharing contracts decide who receives which documents, which part of "
        "them and how protected. Default deny.",
    )
    sub = contracts.add_subparsers(dest="contracts_command", required=True, metavar="COMMAND")
    lint = sub.add_parser(
        "lint", help="check every contract file of a directory",
        description="Reads every *.toml of DIR and checks it on its own (keys, types, "
        "scopes, masks, dates) and against the agency registry and the canonical schemas "
        "(scope consistency, export assessment, personal fields across the border, unknown "
        "agencies, document types and field paths, conditions). Prints each problem as "
        "FILE:LINE: CODE: message; exits 1 if there is any.",
    )
    lint.add_argument("directory", type=Path, metavar="DIR")
    lint.add_argument("--agencies", type=Path,
                      help="agency registry TOML (default: the one --config names)")
    lint.add_argument("--config", type=Path, default=Path("gateway.toml"),
                      help="gateway configuration (default ./gateway.toml)")
    lint.set_defaults(run=_lint)

    why = sub.add_parser(
        "explain", help="what the router would do with one document",
        description="Parses FILE as the gateway would, then shows which contracts are on the "
        "route of its sender and type, what each recipient would get (format, fields, masks, "
        "encryption) and why every other agency would get nothing.",
    )
    why.add_argument("file", type=Path, metavar="FILE")
    why.add_argument("--sender", required=True, help="agency id of the sender")
    why.add_argument("--format", help="format id of FILE (default: the first that parses it)")
    why.add_argument("--at", type=_instant, help="decision time, ISO 8601 (default: now)")
    why.add_argument("--config", type=Path, default=Path("gateway.toml"),
                     help="gateway configuration (default ./gateway.toml)")
    why.set_defaults(run=_explain)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _lint(args: argparse.Namespace) -> int:
    agencies_file = args.agencies or GatewayConfig.load(args.config).agencies_file
    agencies = AgencyRegistry.from_toml(agencies_file)
    schemas = AvroSchemas()
    adapters = AdapterRegistry.default(schemas)
    for skipped in adapters.problems:
        print(f"warning: {skipped}", file=sys.stderr)
    report = lint_contract_dir(args.directory, agencies, document_catalog(adapters, schemas),
                               format_table(adapters))
    for problem in report.problems:
        print(problem)
    if report.problems:
        print(f"{len(report.problems)} problem(s) in {args.directory}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{len(report.contracts)} contract(s) in {report.files} file(s): no problems")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    parts = GatewayParts.load(GatewayConfig.load(args.config))
    document = _read(args.file)
    document_type, parsed = _parse(parts.adapters, document, args.format, args.file)
    at = args.at or utc_now()
    for line in explain(parts.router.index, args.sender, document_type, parsed.record, at):
        print(line)
    return EXIT_OK


def _parse(
    adapters: AdapterRegistry, document: bytes, format_id: str | None, path: Path
) -> tuple[str, ParseResult]:
    candidates = [adapters.get(format_id)] if format_id else list(adapters)
    refusals = []
    for adapter in candidates:
        try:
            return adapter.document_type, adapter.parse(document)
        except (AdapterError, FormatError) as exc:
            refusals.append(f"{adapter.format_id}: {exc.code}: {exc.message}")
    raise GatewayError(f"{path} is not a valid document of "
                       + ("; ".join(refusals) if format_id else "any known format"),
                       code="DOCUMENT_UNREADABLE")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GatewayError(f"cannot read {path}: {exc.strerror}", code="IO_ERROR") from exc
