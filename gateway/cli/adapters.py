"""`portgw adapters`: what integrators use to try a format by hand."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from adapters import AdapterError, AdapterRegistry, Detection, FormatDetector, ParseResult
from adapters.detect import IN_DATA
from adapters.kit import check_adapter
from message_formats import AvroSchemas, FormatError
from message_formats.dxp import DxpEnvelope
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
        usage="%(prog)s [-h] [--format FORMAT] [FORMAT] FILE",
        description="Parses and validates FILE (XML safety, XSD, business rules) and prints "
        "the canonical record as JSON; warnings go to stderr. Without a format, the format "
        "is detected from the content (see `portgw adapters detect`); a document in a DXP "
        "envelope is then printed as {\"envelope\": ..., \"format\": ..., \"record\": ...}. "
        "On a refusal prints FILE:LINE: CODE: message and exits 1 (FORMAT_UNKNOWN, "
        "FORMAT_AMBIGUOUS, FORMAT_NO_ADAPTER when no one format is detected).",
    )
    parse.add_argument("operands", nargs="+", metavar="[FORMAT] FILE",
                       help="format id (e.g. fal1-xml), optional, and the document")
    parse.add_argument("--format", dest="format_option", metavar="FORMAT",
                       help="format id, e.g. fal1-xml")
    parse.set_defaults(run=_parse)
    detect = sub.add_parser(
        "detect", help="say which format a document is in",
        description="Reads FILE safely and names its format from the content: a DXP "
        "envelope (and the business message inside), the root element and namespace an "
        "installed adapter declares, or the customs manifest family (message type and mode, "
        "even without an adapter). Exits 0 when one installed format is found, 1 otherwise.",
    )
    detect.add_argument("file", type=Path)
    detect.add_argument("--json", action="store_true", help="print the detection as JSON")
    detect.set_defaults(run=_detect)
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
    new = sub.add_parser(
        "new", help="write an adapter plug-in from a format's XML Schema and samples",
        description="Reads SCHEMA (and the local schemas it imports or includes; no DTD, no "
        "network) and writes into OUT a plug-in project: the adapter package (reading and "
        "building every element and attribute the schema declares), its canonical Avro "
        "record, the schemas, the samples, a test that runs the conformance kit on them, and "
        "a pyproject.toml declaring the entry point. Then runs the kit on the samples and "
        "prints its findings. What identifies a document and the business rules are left to "
        "you, marked in the code (docs/adapters.md). Exits 0 when the kit passes, 1 when it "
        "has findings or the skeleton cannot be written (SCAFFOLD_... codes).",
    )
    new.add_argument("out", type=Path, help="the project folder to create")
    new.add_argument("--xsd", required=True, type=Path, help="the format's main XML Schema")
    new.add_argument("--sample", required=True, type=Path, action="append", dest="samples",
                     help="a real document of the format (repeatable; at least one)")
    new.add_argument("--format-id", required=True, help="e.g. berth-xml")
    new.add_argument("--root", help="the documents' root element, when the schema has several")
    new.add_argument("--document-type", help="what contracts name (default: from the format id)")
    new.add_argument("--package", help="the Python package (default: DOCUMENT_TYPE_adapter)")
    new.add_argument("--avro-namespace", default="px.plugin",
                     help="namespace of the canonical record (default px.plugin)")
    new.add_argument("--label", help="how messages name the format (default: the format id)")
    new.set_defaults(run=_new)


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


class FormatNotNamedOnce(AdapterError):
    code = "CLI_USAGE"


def _parse(args: argparse.Namespace) -> int:
    format_id, file = _parse_operands(args)
    registry = _registry()
    adapter = registry.get(format_id) if format_id is not None else None
    data = file.read_bytes()
    detection: Detection | None = None
    try:
        if adapter is None:
            detection = FormatDetector(registry).detect(data)
            adapter = registry.get(detection.require_format())
            data = detection.envelope.data if detection.envelope is not None else data
    except (AdapterError, FormatError) as exc:
        print(_refusal_line(file, exc, enveloped=False), file=sys.stderr)
        return EXIT_INVALID
    try:
        result = adapter.parse(data)
    except (AdapterError, FormatError) as exc:
        enveloped = detection is not None and detection.envelope is not None
        print(_refusal_line(file, exc, enveloped), file=sys.stderr)
        return EXIT_INVALID
    for warning in result.warnings:
        print(f"{file}: warning: {warning}", file=sys.stderr)
    if result.parts:
        return _print_parts(file, result)
    print(json.dumps(_parsed_view(result, adapter.format_id, detection), ensure_ascii=False,
                     indent=2))
    return EXIT_OK


def _print_parts(file: Path, result: ParseResult) -> int:
    """An interchange of several messages, each a document of its own: a JSON list of them
    in order, each with its place and UNH reference and its record or its refusal (also on
    stderr, as a refused document's is); exit 1 when any was refused."""
    view: list[dict[str, Any]] = []
    refused = False
    for part in result.parts:
        named = {"message": part.number, "reference": part.reference}
        parsed = result if part.own else part.parsed
        if parsed is not None:
            for warning in () if part.own else parsed.warnings:
                print(f"{file}: message {part.number}: warning: {warning}", file=sys.stderr)
            view.append({**named, "business_key": parsed.business_key,
                         "record": to_json(parsed.record)})
            continue
        assert part.refusal is not None
        refused, exc = True, part.refusal
        print(f"{file}:{exc.line or 0}: {exc.code}: message {part.number}: {exc.message}",
              file=sys.stderr)
        view.append({**named, "refused": {"code": exc.code, "message": exc.message,
                                          "line": exc.line}})
    print(json.dumps(view, ensure_ascii=False, indent=2))
    return EXIT_INVALID if refused else EXIT_OK


def _refusal_line(file: Path, exc: AdapterError | FormatError, enveloped: bool) -> str:
    if not enveloped:
        return f"{file}:{exc.line or 0}: {exc.code}: {exc.message}"
    where = f", line {exc.line}" if exc.line is not None else ""
    return f"{file}: {exc.code}: {IN_DATA}{where}: {exc.message}"


def _parse_operands(args: argparse.Namespace) -> tuple[str | None, Path]:
    operands: list[str] = args.operands
    if len(operands) > 2 or (len(operands) == 2 and args.format_option is not None):
        raise FormatNotNamedOnce("name the format once: FORMAT FILE, --format FORMAT FILE "
                                 "or FILE alone")
    if len(operands) == 2:
        return operands[0], Path(operands[1])
    return args.format_option, Path(operands[0])


def _parsed_view(result: ParseResult, format_id: str, detection: Detection | None) -> Any:
    record = to_json(result.record)
    if detection is None or detection.envelope is None:
        return record
    return {"envelope": _envelope_view(detection.envelope, detection.envelope_signed),
            "format": format_id, "record": record}


def _envelope_view(envelope: DxpEnvelope, signed: bool) -> dict[str, Any]:
    info = envelope.trans_info
    view: dict[str, Any] = {
        "kind": "dxp", "id": envelope.id, "cop_msg_id": info.cop_msg_id,
        "sender_id": info.sender_id, "receiver_ids": list(info.receiver_ids),
        "creat_time": info.created_text, "msg_type": info.msg_type,
        "zipped": envelope.zipped, "signed": signed,
    }
    add = envelope.add_info
    if add is not None:
        view["add_info"] = {
            "file_name": add.file_name, "ic_card": add.ic_card,
            "biz_keys": {key.name: key.value for key in add.biz_keys},
            "text_encoding": add.text_encoding, "rec_map_id": add.rec_map_id,
        }
    return view


def _detect(args: argparse.Namespace) -> int:
    registry = _registry()
    try:
        detection = FormatDetector(registry).detect(args.file.read_bytes())
    except (AdapterError, FormatError) as exc:
        print(_refusal_line(args.file, exc, enveloped=False), file=sys.stderr)
        return EXIT_INVALID
    view = _detection_view(detection)
    if args.json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
    else:
        for name, value in view.items():
            if value is not None and name != "envelope":
                print(f"{name}: {_shown(value)}")
        if detection.envelope is not None:
            envelope = view["envelope"]
            print("envelope: " + ", ".join(f"{key} {_shown(value)}" for key, value
                                           in envelope.items() if key != "add_info"))
    return EXIT_OK if detection.format_id is not None else EXIT_INVALID


def _detection_view(detection: Detection) -> dict[str, Any]:
    envelope = detection.envelope
    return {
        "format": detection.format_id, "confidence": str(detection.confidence),
        "root": detection.root, "namespace": detection.namespace,
        "message_type": detection.message_type, "mode": detection.mode,
        "candidates": list(detection.candidates) or None, "why": detection.why,
        "envelope": None if envelope is None else _envelope_view(envelope,
                                                                 detection.envelope_signed),
    }


def _shown(value: object) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)


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


def _new(args: argparse.Namespace) -> int:
    from adapters import scaffold  # reads schemas with xmlschema: loaded for this command only

    document_type = args.document_type or scaffold.snake(
        args.format_id.removesuffix("-xml"))
    names = scaffold.Names(
        format_id=args.format_id, document_type=document_type,
        package=args.package or f"{document_type}_adapter",
        avro_namespace=args.avro_namespace, label=args.label or args.format_id)
    try:
        skeleton = scaffold.write_skeleton(args.xsd, args.out, names, args.samples, args.root)
        adapter, schemas = scaffold.load_written(skeleton, names)
    except (AdapterError, FormatError) as exc:
        print(f"portgw adapters new: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_INVALID
    for path in skeleton.files:
        print(f"wrote {path}")
    report = check_adapter(adapter, samples_dir=args.out / "samples", schemas=schemas)
    if not report.ok:
        print(report.describe(), file=sys.stderr)
        return EXIT_INVALID
    print(f"the conformance kit passes on {len(args.samples)} sample(s); next: the business "
          f"key and rules in {skeleton.adapter_module}")
    return EXIT_OK
