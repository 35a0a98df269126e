"""A berth application adapter: the worked example of docs/adapters.md, and the template to
copy for a new format. It lives outside the gateway, as an integrator's package would: its
canonical record in avro/, its XML Schema in xsd/, both beside this module, where the gateway
finds them when the package is installed (pyproject.toml one folder up)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from adapters import ParseResult, RuleViolationError, is_valid_imo_number
from message_formats import SafeXmlParser, XsdStore

HERE = Path(__file__).parent
NS = "urn:example:berth:1"
FIELDS = (  # XML element, canonical field, type: in the order the XSD fixes
    ("ApplicationNumber", "application_number", str),
    ("ImoNumber", "imo_number", str),
    ("Port", "port", str),
    ("Berth", "berth", str),
    ("LengthOverallMetres", "length_overall_metres", int),
)


class BerthAdapter:
    format_id = "berth-xml"
    document_type = "berth"
    schema_name = "px.example.BerthApplication"
    schema_version = 1
    media_type = "application/xml"

    def __init__(self, *, xsd_store: XsdStore | None = None,
                 xml_parser: SafeXmlParser | None = None) -> None:
        # The gateway passes a store that knows xsd/; used on its own, the adapter makes one.
        self._xsd = xsd_store or XsdStore(HERE / "xsd")
        self._parser = xml_parser or SafeXmlParser()

    def parse(self, data: bytes) -> ParseResult:
        root = self._parser.parse(data)  # size limit, no DTD, no entities, no network
        self._xsd.validate("berth", root)  # XSD_INVALID with the line
        record = {field: kind(" ".join((element.text or "").split()))
                  for element, (_, field, kind) in zip(root, FIELDS, strict=True)}
        if not is_valid_imo_number(record["imo_number"]):
            # The field and the rule, never the value: messages reach receipts, dead
            # letters, logs and the trail, which is never erased.
            raise RuleViolationError("ImoNumber: the IMO number fails its check digit",
                                     code="RULE_IMO_CHECK_DIGIT", line=root[1].sourceline)
        return ParseResult(
            record=record,
            business_key=f"{record['imo_number']}:{record['port']}:{record['application_number']}",
            document_version=int(root.get("version", "1")),
            warnings=(),
        )

    def render(self, record: Mapping[str, Any]) -> bytes:
        version = (record.get("header") or {}).get("document_version", 1)
        root = etree.Element(f"{{{NS}}}BerthApplication", nsmap={None: NS},
                             version=str(version))
        for tag, field, _ in FIELDS:
            etree.SubElement(root, f"{{{NS}}}{tag}").text = str(record[field])
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
