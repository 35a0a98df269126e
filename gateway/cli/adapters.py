"""`portgw adapters`: what integrators use to try a format by hand."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from adapters import AdapterError, AdapterRegistry
from adapters.kit import check_adapter
from message_formats import AvroSchemas, FormatError
from message_formats.json_view import from_json, to_json

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def add_adapters_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    adapters = commands.add_parser(
        "adapters", help="list, try and render document formats",
        description="The formats the gateway reads and writes, built in or added by an "
        "installed package through the entry-point group port_exchange_gateway.adapters.",
    )
    sub = adapters.add_subparsers(dest="adapters_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="the formats known, with their document types",
                             description="Lists every adapter: format id, document type, "
                             "canonical Avro record and media type. An installed plug-in "
                             "that cannot be used is named on stderr with its code "
                             "(ADAPTER_PLUGIN_...) and the exit status is 1.")
    listing.set_defaults(run=_list)
    parse = sub.add_parser(
        "parse", help="parse a document into its canonical record (JSON)",
        description="Parses and validates FILE (XML safety, XSD, business rules) and prints "
        "the canonical record as JSON; warnings go to stderr. On a refusal prints "
        "FILE:LINE: CODE: message and exits 1.",
    )
    parse.add_argument("format", help="format id, e.g. fal1-xml")
    parse.add_argument("file", type=Path)
    parse.set_defaults(run=_parse)
    render = sub.add_parser(
        "render", help="render a canonical record (JSON) in a format",
        description="Reads a canonical record as `portgw adapters parse` prints it and "
        "writes the document in FORMAT to stdout. Exits 1 when the record does not fit.",
    )
    render.add_argument("format", help="format id, e.g. fal1-xml")
    render.add_argument("json_file", type=Path)
    render.set_defaults(run=_render)
    check = sub.add_parser(
        "check", help="run the conformance kit on an adapter with your samples",
        description="Runs the integrator's kit (docs/adapters.md) on FORMAT with the samples "
        "in DIR: valid ones parse, fit the Avro schema, render and parse back the same, twice "
        "alike; refused ones (named with their code in DIR/expected.json) give that code; "
        "mutated and hostile bytes are refused without a crash; no network; bounded time. "
        "Exits 0 with no findings, 1 otherwise.",
    )
    check.add_argument("format", help="format id")
    check.add_argument("samples_dir", type=Path)
    check.add_argument("--avro-dir", type=Path, action="append", default=[],
                       help="directory with the adapter's own .avsc files (repeatable)")
    check.add_argument("--time-limit", type=float, default=1.0,
                       help="seconds one document may take (default 1)")
    check.set_defaults(run=_check)


def _registry(schemas: AvroSchemas | None = None) -> AdapterRegistry:
    """The gateway's adapters; each plug-in it skips is named on stderr with its code."""
    registry = AdapterRegistry.default(schemas if schemas is not None else AvroSchemas())
    for problem in registry.problems:
        print(f"portgw adapters: {problem}", file=sys.stderr)
    return registry


def _list(args: argparse.Namespace) -> int:
    registry = _registry()
    rows = [(a.format_id, a.document_type, a.schema_name, a.media_type) for a in registry]
    for row in sorted(rows):
        print("  ".join(row))
    return EXIT_INVALID if registry.problems else EXIT_OK


def _parse(args: argparse.Namespace) -> int:
    adapter = _registry().get(args.format)
    try:
        result = adapter.parse(args.file.read_bytes())
    except (AdapterError, FormatError) as exc:
        print(f"{args.file}:{exc.line or 0}: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_INVALID
    for warning in result.warnings:
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    print(json.dumps(to_json(result.record), ensure_ascii=False, indent=2))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    schemas = AvroSchemas(*args.avro_dir)
    adapter = _registry(schemas).get(args.format)
    report = check_adapter(adapter, samples_dir=args.samples_dir, schemas=schemas,
                           time_limit_s=args.time_limit)
    print(report.describe())
    return EXIT_OK if report.ok else EXIT_INVALID


def _render(args: argparse.Namespace) -> int:
    schemas = AvroSchemas()
    adapter = _registry(schemas).get(args.format)
    try:
        data = json.loads(args.json_file.read_text(encoding="utf-8"))
        record = from_json(schemas.schema(adapter.schema_name), data, omit=("header",))
        sys.stdout.buffer.write(adapter.render(record))
    except json.JSONDecodeError as exc:
        print(f"{args.json_file}:{exc.lineno}: JSON_MALFORMED: {exc.msg}", file=sys.stderr)
        return EXIT_INVALID
    except (AdapterError, FormatError) as exc:
        print(f"{args.json_file}: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK
