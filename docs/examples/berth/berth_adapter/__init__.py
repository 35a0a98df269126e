"""A berth application adapter: the worked example of docs/adapters.md, and the template to
copy for a new format. It lives outside the gateway, as an integrator's package would: its
canonical record in avro/, its XML Schema in xsd/, both beside this module, where the gateway
finds them when the package is installed (pyproject.toml one folder up)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from adapters import is_valid_imo_number
from adapters.toolkit import (
    Children,
    XmlAdapter,
    add_text,
    format_int,
    new_root,
    token,
    violation,
)

NS = "urn:example:berth:1"
ROOT = f"{{{NS}}}BerthApplication"
APPLICATION_NUMBER = f"{{{NS}}}ApplicationNumber"
IMO_NUMBER = f"{{{NS}}}ImoNumber"
PORT = f"{{{NS}}}Port"
BERTH = f"{{{NS}}}Berth"
LENGTH_OVERALL = f"{{{NS}}}LengthOverallMetres"


class BerthAdapter(XmlAdapter):
    """Parsing (safe parser, then the XSD) and rendering (build, then the XSD) come from
    XmlAdapter; the format supplies its names and the four hooks."""

    format_id = "berth-xml"  # what senders name when they submit
    document_type = "berth"  # what contracts name
    schema_name = "px.example.BerthApplication"
    xsd_name = "berth"
    root_elements = (ROOT,)  # how format detection recognises a berth application
    xsd_dir = Path(__file__).parent / "xsd"  # used alone; the gateway passes a store
    label = "berth application"
    __slots__ = ()

    def read(self, root: etree._Element) -> dict[str, Any]:
        children = Children(root)  # in the order the XSD fixes: no lookups
        return {
            "application_number": token(children.text()),
            "imo_number": children.text(),
            "port": children.text(),
            "berth": token(children.text()),
            "length_overall_metres": int(children.text()),
        }

    def business_key(self, record: Mapping[str, Any]) -> str:
        return f"{record['imo_number']}:{record['port']}:{record['application_number']}"

    def check(self, record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        if not is_valid_imo_number(record["imo_number"]):
            # The field and the rule, never the value: messages reach receipts, dead
            # letters, logs and the trail, which is never erased.
            raise violation("RULE_IMO_CHECK_DIGIT", "the IMO number fails its check digit",
                            root, IMO_NUMBER)
        return ()  # no warnings

    def build(self, record: Mapping[str, Any], version: int) -> etree._Element:
        root = new_root(ROOT, NS, version)
        add_text(root, APPLICATION_NUMBER, record["application_number"])
        add_text(root, IMO_NUMBER, record["imo_number"])
        add_text(root, PORT, record["port"])
        add_text(root, BERTH, record["berth"])
        add_text(root, LENGTH_OVERALL, format_int(record["length_overall_metres"]))
        return root
