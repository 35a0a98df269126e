"""The Avro schema files of px.canonical.CustomsManifest as the element table of the customs
manifest adapter implies them: the test holds the committed files to this, and
`python -m tests.unit.cn_manifest_schema` rewrites them after a change to the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.cn_manifest_tree import MANIFEST
from adapters.xml_tree import ALWAYS, DECIMAL, GROUP, TIME, Node

AVRO_DIR = Path(__file__).parents[2] / "message_formats" / "avro"
NAMESPACE = "px.canonical"
TIME_RECORD = {
    "type": "record", "name": "CustomsManifestTime", "namespace": NAMESPACE,
    "doc": "A time of a customs manifest as written: digits in China Standard Time (UTC+08:00) "
           "in the E-Port messages; a local time without its zone in UN/EDIFACT (DTM, UNB).",
    "fields": [
        {"name": "instant", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
         "default": None,
         "doc": "The instant the digits name, reading them in China Standard Time; null when "
                "the source names no zone (UN/EDIFACT), which local_date_time then holds."},
        {"name": "digits", "type": "int",
         "doc": "How many digits were written: 8 (date), 12 (minute), 14 (second) or 17 "
                "(millisecond); the time is rendered with as many."},
        {"name": "local_date_time", "type": ["null", "string"], "default": None,
         "doc": "The date or date and time as written, on the clock of the place, when the "
                "source names no zone (UN/EDIFACT DTM and UNB times): ISO 8601 without a zone, "
                "to the day, minute or second as digits says (2026-12-03, 2026-12-03T18:00, "
                "2026-12-03T18:00:30); null when instant is given."},
    ],
}
DECIMAL_TYPE = {"type": "bytes", "logicalType": "decimal", "precision": 24, "scale": 6}
ENUMS = (
    {"type": "enum", "name": "CustomsManifestMode", "namespace": NAMESPACE,
     "doc": "Transport mode of a manifest, the second digit of its type: 1 sea, 2 air, 4 road.",
     "symbols": ["SEA", "AIR", "ROAD"]},
    {"type": "enum", "name": "CustomsManifestStage", "namespace": NAMESPACE,
     "doc": "What a manifest is, the first digit of its type: 1 original manifest (原始舱单), "
            "2 pre-manifest (预配舱单), 3 arrival report (运抵报告).",
     "symbols": ["ORIGINAL", "PRE_MANIFEST", "ARRIVAL_REPORT"]},
)
ROOT = {
    "type": "record", "name": "CustomsManifest", "namespace": NAMESPACE,
    "classification": "important",
    "doc": "A customs manifest message (舱单) of any transport mode on the WCO data model: "
           "original manifest, pre-manifest or arrival report as filed through China E-Port "
           "(urn:Declaration:datamodel:standard:CN:<type>:1), or a UN/EDIFACT customs cargo "
           "report (CUSCAR).",
    "fields": [
        {"name": "header", "type": "px.canonical.Header",
         "doc": "Event header shared by all canonical documents."},
        {"name": "mode", "type": "px.canonical.CustomsManifestMode",
         "doc": "Transport mode, from the message type (E-Port) or the main carriage's mode "
                "of transport (UN/EDIFACT CUSCAR TDT 8067)."},
        {"name": "stage", "type": ["null", "px.canonical.CustomsManifestStage"], "default": None,
         "doc": "Original manifest, pre-manifest or arrival report, from the message type; "
                "null when the message type does not say (UN/EDIFACT CUSCAR)."},
        {"name": "sender_code", "type": "string",
         "doc": "The sender's enterprise code: head.sender_id up to its first _."},
    ],
}


def schemas() -> dict[str, dict[str, Any]]:
    """Every named type's schema by full name."""
    named: dict[str, dict[str, Any]] = {}
    root = {**ROOT, "fields": [*ROOT["fields"], *(_field(n, named) for n in MANIFEST)]}
    for schema in (root, TIME_RECORD, *ENUMS):
        named[f"{NAMESPACE}.{schema['name']}"] = schema
    return named


def _field(node: Node, named: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kind = _type(node, named)
    if node.repeats:
        kind = {"type": "array", "items": kind}
    out: dict[str, Any] = {"name": node.field}
    if node.personal:
        out["personal"] = True
    if node.repeats or node.required is ALWAYS:
        out["type"] = kind
    else:
        out["type"], out["default"] = ["null", kind], None
    out["doc"] = node.doc
    return out


def _type(node: Node, named: dict[str, dict[str, Any]]) -> Any:
    if node.kind == GROUP:
        fields = [_field(child, named) for child in node.children]
        return _named(node.record, node.doc, fields, named)
    value: Any = {TIME: f"{NAMESPACE}.CustomsManifestTime", DECIMAL: DECIMAL_TYPE}.get(
        node.kind, "string")
    if node.attr is None:
        return value
    fields = [{"name": "value", "type": value, "doc": "The value."},
              {"name": node.attr.field, "type": ["null", "string"], "default": None,
               "doc": node.attr.doc}]
    return _named(node.record, f"A value with its {node.attr.field}.", fields, named)


def _named(name: str, doc: str, fields: list[dict[str, Any]],
           named: dict[str, dict[str, Any]]) -> str:
    full = f"{NAMESPACE}.{name}"
    schema = {"type": "record", "name": name, "namespace": NAMESPACE, "doc": doc,
              "fields": fields}
    if full in named and named[full]["fields"] != fields:
        raise ValueError(f"{full} is used with two shapes")
    named.setdefault(full, schema)
    return full


def file_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    for full_name, schema in schemas().items():
        (AVRO_DIR / f"{full_name}.avsc").write_text(file_text(schema), encoding="utf-8")
