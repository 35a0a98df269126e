"""The China customs manifest messages (进出境舱单) as carriers and agents file them through
China E-Port: root `Manifest` in namespace `urn:Declaration:datamodel:standard:CN:<type>:1`,
`Head` + `Declaration` on the WCO data model ("cn-manifest"; docs/eport.md, "Customs
manifests"). One adapter reads every supported type (original manifest MT1101/MT1201/MT1401,
pre-manifest MT2101/MT2201/MT2401, arrival report MT3101/MT3201) into one canonical record,
px.canonical.CustomsManifest, and renders a record back as the message type it names.

No XSD is public: the structure is checked in code, from the element table in
cn_manifest_tree, and the quirks of real files are accepted where they are unambiguous
(docs/eport-research.md §5): the namespace with or without `CN:`, any element order, dates
of 8, 12, 14 or 17 digits, sender ids with suffixes, `currencyID` or `CurrencyTypeCode`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from lxml import etree

from message_formats.dxp import DS_NS

from .base import RenderError, RuleViolationError
from .cn_manifest_tree import MANIFEST, MESSAGE_TYPES, ROAD_TYPES
from .toolkit import RENDER_ERRORS, XmlAdapter, document_version, field_path, nth, violation
from .xml_tree import ATTRIBUTE_UNKNOWN, Plan, TreeReader, build_children, refusal

NAMESPACE_PREFIX = "urn:Declaration:datamodel:standard:"
ROOT_NAME = "Manifest"
# "CN:" is left out by some senders; local types such as WLJK_MT3101 exist beside MTxxxx.
_NAMESPACE = re.compile(r"urn:Declaration:datamodel:standard:(?:CN:)?([A-Za-z0-9_]+):([0-9]+)")
PLAN = Plan(MANIFEST)
_SENDER_CODE = re.compile(r"[0-9A-Za-z]{4,18}")
_VERSION_ATTRIBUTE = "version"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
DS_SIGNATURE = f"{{{DS_NS}}}Signature"

ROOT_UNKNOWN = "MANIFEST_ROOT_UNKNOWN"
NAMESPACE_UNKNOWN = "MANIFEST_NAMESPACE_UNKNOWN"
TYPE_UNSUPPORTED = "MANIFEST_TYPE_UNSUPPORTED"
TYPE_MISMATCH = "MANIFEST_TYPE_MISMATCH"
SENDER_INVALID = "MANIFEST_SENDER_INVALID"
VERSION_INVALID = "MANIFEST_VERSION_INVALID"
DOCUMENT_DUPLICATE = "MANIFEST_DOCUMENT_DUPLICATE"
SEQUENCE = "RULE_SEQUENCE"
WARN_MODE_CODE = "WARN_MANIFEST_MODE_CODE"

MODES = {"1": "SEA", "2": "AIR", "4": "ROAD"}
STAGES = {"1": "ORIGINAL", "2": "PRE_MANIFEST", "3": "ARRIVAL_REPORT"}
# BorderTransportMeans/TypeCode by mode: CN012 gives 3 road and 4 air; sea is 1 by UN Rec. 19.
MODE_TYPE_CODES = {"SEA": "1", "AIR": "4", "ROAD": "3"}
ROAD_SPELLING, SEA_SPELLING = 1, 0


def namespace_of(message_type: str) -> str:
    return f"{NAMESPACE_PREFIX}CN:{message_type}:1"


def manifest_namespace(namespace: str | None) -> tuple[str, str] | None:
    """The message type and major version a customs manifest namespace names (any type,
    read here or not), or None when it is no manifest namespace."""
    found = _NAMESPACE.fullmatch(namespace or "")
    return None if found is None else (found.group(1), found.group(2))


def accepted_namespaces() -> frozenset[str]:
    """Every namespace the adapter reads: each type with and without `CN:`."""
    return frozenset(ns for t in MESSAGE_TYPES
                     for ns in (namespace_of(t), f"{NAMESPACE_PREFIX}{t}:1"))


def sender_code(sender_id: str) -> str:
    """The enterprise code of a SenderID: its first `_`-separated part."""
    return sender_id.split("_", 1)[0]


def business_key(record: Mapping[str, Any]) -> str:
    """Message type, the sender's enterprise code, the transport means and what names the
    filing: the journey (voyage, flight), else the filer's manifest id, else the first
    master document. Stable across the changes and deletions of one filing."""
    declaration = record["declaration"]
    means = declaration["transport_means"] or {}
    filing = (means.get("journey_id") or declaration["id"]
              or declaration["consignments"][0]["transport_contract_document"]["id"])
    return ":".join((record["head"]["message_type"], record["sender_code"],
                     means.get("id") or "", filing))


class CnManifestAdapter(XmlAdapter):
    format_id = "cn-manifest-xml"
    document_type = "cn-manifest"
    schema_name = "px.canonical.CustomsManifest"
    xsd_name = ""  # no public XSD: the structure is checked in code
    label = "customs manifest"
    # For format detection: the root element, by Clark name, of every namespace read.
    root_elements: ClassVar[tuple[str, ...]] = tuple(
        f"{{{ns}}}{ROOT_NAME}" for ns in accepted_namespaces())
    __slots__ = ()

    def render(self, record: Mapping[str, Any]) -> bytes:
        """The message of the type the record names. With no XSD to hold it to, the tree is
        read back and checked as parse would, so that render never writes what parse
        refuses or reads as another record."""
        try:
            root = self.build(record, document_version(record))
        except RENDER_ERRORS as exc:
            raise RenderError(f"cannot render {self.label} record: {type(exc).__name__}: "
                              f"{exc}") from None
        try:
            again = self.read_typed(root, record["head"]["message_type"])
            self.check(again, root)
        except RuleViolationError as exc:
            raise RenderError(f"rendered {self.label} is not valid: {exc.code}: "
                              f"{exc.message}") from None
        if any(again[name] != record[name] for name in again):
            raise RenderError(f"rendered {self.label} does not read back as the record: a "
                              "derived field (mode, stage, sender_code) disagrees with the "
                              "head, or a text is not whitespace-collapsed")
        return cast(bytes, etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                          pretty_print=True))

    # ------------------------------------------------------------ the hooks

    @staticmethod
    def read_typed(root: etree._Element, message_type: str) -> dict[str, Any]:
        reader = TreeReader(etree.QName(root).namespace or "", message_type)
        body = reader.read_group(root, PLAN, (), passed=enveloped_signature(root))
        head, declaration = body["head"], body["declaration"]
        if head["message_type"] != message_type:
            raise violation(TYPE_MISMATCH, "is not the type the namespace names", root,
                            *_at(root, "Head", "MessageType"))
        code = sender_code(head["sender_id"])
        if not _SENDER_CODE.fullmatch(code):
            raise violation(SENDER_INVALID, "must begin with an enterprise or customs code of "
                            "4 to 18 letters and digits before any _ suffix", root,
                            *_at(root, "Head", "SenderID"))
        return {
            "mode": MODES[message_type[3]],
            "stage": STAGES[message_type[2]],
            "sender_code": code,
            "head": head,
            "declaration": declaration,
        }

    def document_version(self, root: etree._Element) -> int:
        """The gateway's own `version` attribute (absent: 1), once the root is known to be a
        manifest of a type read here."""
        _message_type(root)
        return _document_version(root)

    def read(self, root: etree._Element) -> dict[str, Any]:
        return self.read_typed(root, _message_type(root))

    business_key = staticmethod(business_key)

    @staticmethod
    def check(record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        consignments = record["declaration"]["consignments"]
        _check_documents_unique(consignments, root)
        _check_item_sequence(consignments, root)
        return _mode_code_warnings(record)

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        message_type = record["head"]["message_type"]
        if message_type not in MESSAGE_TYPES:
            raise ValueError("head.message_type is not a supported manifest type")
        namespace = namespace_of(message_type)
        root = etree.Element(f"{{{namespace}}}{ROOT_NAME}", nsmap={None: namespace})
        if version != 1:
            root.set(_VERSION_ATTRIBUTE, str(version))
        spelling = ROAD_SPELLING if message_type in ROAD_TYPES else SEA_SPELLING
        build_children(root, {"head": record["head"], "declaration": record["declaration"]},
                       MANIFEST, namespace, spelling)
        return root


# ---------------------------------------------------------------- reading the root


def _message_type(root: etree._Element) -> str:
    name = etree.QName(root)
    where = [name.localname]
    if name.localname != ROOT_NAME:
        raise refusal(ROOT_UNKNOWN, "is not the root of a customs manifest (Manifest)", where,
                      root.sourceline)
    named = manifest_namespace(name.namespace)
    if named is None:
        raise refusal(NAMESPACE_UNKNOWN, "is not in a manifest namespace "
                      "(urn:Declaration:datamodel:standard:[CN:]<type>:1)", where,
                      root.sourceline)
    message_type, major = named
    if message_type not in MESSAGE_TYPES or major != "1":
        raise refusal(TYPE_UNSUPPORTED, "names a manifest type or major version this adapter "
                      "does not read (docs/eport.md lists those it reads)", where,
                      root.sourceline)
    return message_type


def enveloped_signature(root: etree._Element) -> etree._Element | None:
    """The root's last child when it is a ds:Signature: the enveloped signature E-Port
    systems put on a manifest (docs/eport.md). It is the crypto layer's to check (the
    envelope's stage, crypto.xmldsig), not part of the manifest: the reader passes it by.
    A ds:Signature anywhere else is an unknown element."""
    last = root[-1] if len(root) else None
    return last if last is not None and last.tag == DS_SIGNATURE else None


def _document_version(root: etree._Element) -> int:
    """The gateway's own `version` attribute (absent: 1): the E-Port messages carry no
    document version, so only a document rendered from a later version has one."""
    for name in root.attrib:
        if name != _VERSION_ATTRIBUTE and etree.QName(name).namespace != _XSI:
            raise refusal(ATTRIBUTE_UNKNOWN, f"@{etree.QName(name).localname} is "
                          "not an attribute of this element", [ROOT_NAME], root.sourceline)
    text = root.get(_VERSION_ATTRIBUTE)
    if text is None:
        return 1
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and int(text) >= 1):
        raise refusal(VERSION_INVALID, "@version must be a positive whole number",
                      [ROOT_NAME], root.sourceline)
    return int(text)


def _at(root: etree._Element, *steps: str) -> tuple[str, ...]:
    """ElementPath steps (local names, possibly with [n]) in the message's namespace."""
    namespace = etree.QName(root).namespace
    return tuple(f"{{{namespace}}}{step}" for step in steps)


# ---------------------------------------------------------------- business rules


def _check_documents_unique(consignments: list[dict[str, Any]], root: etree._Element) -> None:
    """Master plus house transport document is unique within one message ([S20][S21])."""
    seen: set[tuple[str, str | None]] = set()
    for index, consignment in enumerate(consignments):
        pair = (consignment["transport_contract_document"]["id"],
                consignment["associated_transport_document_id"])
        if pair in seen:
            raise violation(DOCUMENT_DUPLICATE, "repeats the master and house transport "
                            "document numbers of an earlier consignment", root,
                            *_at(root, "Declaration", nth("Consignment", index),
                                 "TransportContractDocument", "ID"))
        seen.add(pair)


def _check_item_sequence(consignments: list[dict[str, Any]], root: etree._Element) -> None:
    for index, consignment in enumerate(consignments):
        for position, item in enumerate(consignment["items"]):
            if item["sequence_numeric"] != str(position + 1):
                raise violation(SEQUENCE, f"must be {position + 1}: the goods items of a "
                                "consignment are numbered 1, 2, 3 and on, in document order",
                                root, *_at(root, "Declaration", nth("Consignment", index),
                                           nth("ConsignmentItem", position),
                                           "SequenceNumeric"))


def _mode_code_warnings(record: Mapping[str, Any]) -> tuple[str, ...]:
    """A transport mode code that disagrees with the message type's mode is a known data
    quirk (a sea sample carries 4): reported, not refused."""
    means = record["declaration"]["transport_means"]
    code = None if means is None else means["type_code"]
    if code is None or code == MODE_TYPE_CODES[record["mode"]]:
        return ()
    where = field_path("Declaration", "BorderTransportMeans", "TypeCode")
    return (f"{WARN_MODE_CODE}: {where}: the transport mode code is not the one of the "
            "message type's mode",)
