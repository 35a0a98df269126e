"""Format detection: which format a document is in, from its content alone (docs/adapters.md,
"Format detection").

The bytes are read with the SafeXmlParser (no DTD, size budget; of a document that is no
envelope only as far as its root's start tag), then recognised by their root element,
namespace and name:

- a China E-Port ``DxpMsg`` envelope is opened (message_formats.dxp: lengths, cardinalities,
  base64, zip budgets) and the business message inside it is recognised in turn, again
  only through the SafeXmlParser;
- a format whose adapter declares the root (``root_elements``, adapters.base.RecognisesRoot)
  is that format; when several adapters declare it, the detection is ambiguous;
- the customs manifest family (root ``Manifest`` in ``urn:Declaration:datamodel:standard:
  CN:<type>:<version>``) is named with its message type and transport mode even when no
  adapter for it is installed.

Content that is no XML is told before the XML parser sees it: a UN/EDIFACT interchange (UNA
or UNB first) is the format of the one adapter that declares every message type its UNH
segments name (``edifact_message_types``, adapters.base.RecognisesEdifact); other text
(JSON, plain text) and an interchange no one adapter reads are FORMAT_UNSUPPORTED.

Detection never guesses beyond that: an undeclared root is unknown."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from lxml import etree

from message_formats import FormatError, SafeXmlParser
from message_formats.dxp import DEFAULT_LIMITS, DXP_MSG, DxpEnvelope, DxpLimits, parse_dxp_msg
from message_formats.edifact import message_types, starts_as_edifact, starts_as_text

from .base import AdapterError
from .cn_manifest import ROOT_NAME, manifest_namespace
from .registry import AdapterRegistry

FORMAT_UNKNOWN = "FORMAT_UNKNOWN"
FORMAT_AMBIGUOUS = "FORMAT_AMBIGUOUS"
FORMAT_NO_ADAPTER = "FORMAT_NO_ADAPTER"
FORMAT_UNSUPPORTED = "FORMAT_UNSUPPORTED"
EDIFACT_ROOT = "UNB"  # Detection.root of an EDIFACT interchange
DXP_NESTED_ENVELOPE = "DXP_NESTED_ENVELOPE"

IN_DATA = "the business message in DxpMsg/Data"
_MT_CODE = re.compile(r"(?:[A-Za-z0-9]+_)?MT([0-9])([0-9])[0-9]{2}")
# The type code's first digit is the message, its second the mode (docs/eport-research.md §4).
_MANIFEST_KINDS = {
    "1": "original manifest", "2": "pre-manifest", "3": "arrival report",
    "4": "loading manifest", "5": "tally report", "9": "receipt",
}
_MODES = {"1": "sea", "2": "air", "4": "road"}


class FormatNotDetectedError(AdapterError):
    """No one format could be told from the content: unknown, ambiguous, or known but with
    no adapter installed (the code says which)."""

    code = FORMAT_UNKNOWN


class Confidence(StrEnum):
    DECLARED = "declared"  # exactly one installed adapter declares the root
    AMBIGUOUS = "ambiguous"  # several installed adapters declare it
    KNOWN_NO_ADAPTER = "known-no-adapter"  # a known family, no adapter installed for it
    UNSUPPORTED = "unsupported"  # no XML, and no format installed reads it
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Detection:
    """What detection saw: the business document's root and namespace, the format found
    (None unless exactly one adapter declares the root), the candidates, and, for the
    customs manifest family, the message type and mode. ``envelope`` is the DXP envelope the
    document came in, if any (``envelope_signed``: it carries its own ds:Signature)."""

    format_id: str | None
    root: str
    namespace: str | None
    confidence: Confidence
    why: str
    candidates: tuple[str, ...] = ()
    message_type: str | None = None
    mode: str | None = None
    envelope: DxpEnvelope | None = None
    envelope_signed: bool = False

    def require_format(self) -> str:
        """The format id, or FormatNotDetectedError with a code naming why there is none."""
        if self.format_id is not None:
            return self.format_id
        code = {Confidence.AMBIGUOUS: FORMAT_AMBIGUOUS,
                Confidence.KNOWN_NO_ADAPTER: FORMAT_NO_ADAPTER,
                Confidence.UNSUPPORTED: FORMAT_UNSUPPORTED}.get(self.confidence,
                                                                FORMAT_UNKNOWN)
        raise FormatNotDetectedError(f"{self.why}; name the format", code=code)


@dataclass(frozen=True, slots=True)
class ManifestType:
    code: str  # the type as the namespace writes it, e.g. MT2101
    kind: str | None  # e.g. "pre-manifest"
    mode: str | None  # sea, air or road

    def describe(self) -> str:
        what = " ".join(part for part in (self.mode, self.kind) if part)
        return f"customs manifest {self.code}" + (f" ({what})" if what else "")


def customs_manifest_type(namespace: str | None, local_name: str) -> ManifestType | None:
    """The manifest family's message type named by a root's namespace, or None when the root
    is not a customs ``Manifest``."""
    named = manifest_namespace(namespace)
    if local_name != ROOT_NAME or named is None:
        return None
    code = named[0]
    digits = _MT_CODE.fullmatch(code)
    if digits is None:
        return ManifestType(code, None, None)
    return ManifestType(code, _MANIFEST_KINDS.get(digits.group(1)), _MODES.get(digits.group(2)))


class FormatDetector:
    """Detects formats against one registry. Holds a SafeXmlParser, which is not thread-safe:
    one detector per thread."""

    __slots__ = ("_limits", "_parser", "_registry")

    def __init__(self, registry: AdapterRegistry, *, parser: SafeXmlParser | None = None,
                 limits: DxpLimits = DEFAULT_LIMITS) -> None:
        self._registry = registry
        self._parser = parser if parser is not None else SafeXmlParser()
        self._limits = limits

    @property
    def registry(self) -> AdapterRegistry:
        return self._registry

    def detect(self, data: bytes) -> Detection:
        """The detection, or the refusal (XML_*, DXP_*) of bytes that cannot be read. Only the
        root's start tag is read of a document that is no envelope; an envelope is read
        whole, and the business message inside it as far as its root."""
        not_xml = self.of_content(data)
        if not_xml is not None:
            return not_xml
        tag = self._parser.root_tag(data)
        if tag != DXP_MSG:
            return self.of_root(tag)
        parsed = parse_dxp_msg(data, self._parser, self._limits)
        found = self.detect_business(parsed.envelope.data)
        return replace(found, envelope=parsed.envelope,
                       envelope_signed=parsed.signature_present,
                       why=f"DXP envelope holding: {found.why}")

    def of_content(self, data: bytes) -> Detection | None:
        """The detection of content that is no XML (EDIFACT, or other text), None for
        content the XML parser is to read. EdifactError for an interchange whose UNA or UNB
        cannot be read."""
        if starts_as_edifact(data):
            return self.of_edifact(message_types(data))
        if starts_as_text(data):
            return Detection(format_id=None, root="", namespace=None,
                             confidence=Confidence.UNSUPPORTED,
                             why="the content is neither XML nor a UN/EDIFACT interchange")
        return None

    def of_edifact(self, types: frozenset[str]) -> Detection:
        """An interchange holding messages of `types`: the format of the one adapter that
        reads them all."""
        named = " ".join(sorted(types))
        readers = [set(self._registry.formats_with_edifact_type(t)) for t in sorted(types)]
        candidates = tuple(sorted(set.intersection(*readers)))
        seen = f"UN/EDIFACT interchange of {named}"
        if len(candidates) == 1:
            confidence, why = Confidence.DECLARED, f"{seen}, read by format {candidates[0]}"
        elif candidates:
            confidence = Confidence.AMBIGUOUS
            why = f"{seen}, read by several formats ({', '.join(candidates)})"
        else:
            confidence, why = Confidence.UNSUPPORTED, f"{seen}: no installed format reads it"
        return Detection(format_id=candidates[0] if len(candidates) == 1 else None,
                         root=EDIFACT_ROOT, namespace=None, confidence=confidence, why=why,
                         candidates=candidates, message_type=named)

    def detect_business(self, data: bytes) -> Detection:
        """The business message an envelope holds, from its root's start tag alone: an
        envelope inside an envelope is refused without being read further."""
        inner = self._business_root(data)
        if inner == DXP_MSG:
            raise FormatError("DxpMsg/Data holds another DxpMsg; envelopes are not nested",
                              code=DXP_NESTED_ENVELOPE)
        return self.of_root(inner)

    def _business_root(self, data: bytes) -> str:
        try:
            return self._parser.root_tag(data)
        except FormatError as exc:  # its line is the business message's, not the file's
            raise type(exc)(f"{IN_DATA}: {exc.message}", code=exc.code) from None

    def of_root(self, tag: str) -> Detection:
        """The detection of a document whose root element is `tag` (Clark notation)."""
        name = etree.QName(tag)
        candidates = self._registry.formats_with_root(tag)
        manifest = customs_manifest_type(name.namespace, name.localname)
        seen = manifest.describe() if manifest is not None else f"root {tag}"
        if len(candidates) == 1:
            confidence, why = Confidence.DECLARED, f"{seen}, declared by format {candidates[0]}"
        elif candidates:
            confidence = Confidence.AMBIGUOUS
            why = f"{seen}, declared by several formats ({', '.join(candidates)})"
        elif manifest is not None:
            confidence, why = Confidence.KNOWN_NO_ADAPTER, f"{seen}; no adapter is installed"
        else:
            confidence, why = Confidence.UNKNOWN, f"{seen} is declared by no installed format"
        return Detection(
            format_id=candidates[0] if len(candidates) == 1 else None,
            root=name.localname, namespace=name.namespace, confidence=confidence, why=why,
            candidates=candidates,
            message_type=manifest.code if manifest is not None else None,
            mode=manifest.mode if manifest is not None else None)
