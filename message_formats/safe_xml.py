"""Parsing of untrusted XML: size-limited, no entities, no DTDs, no network."""

from __future__ import annotations

from lxml import etree

from .errors import XmlDtdForbiddenError, XmlMalformedError, XmlTooLargeError

DEFAULT_MAX_BYTES = 4 * 1024 * 1024

# Markers of a DOCTYPE in the encodings a parser auto-detects without a declaration.
_DOCTYPE_MARKERS = tuple("<!DOCTYPE".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be"))


def _new_lxml_parser() -> etree.XMLParser:
    # Comments and processing instructions are dropped so that an element's .text is its
    # whole simple-type value (a comment inside <Name> would otherwise split the text).
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=True,
        remove_pis=True,
    )


class SafeXmlParser:
    """One lxml parser for untrusted documents. lxml parsers are not thread-safe: hold one
    SafeXmlParser per thread."""

    __slots__ = ("_max_bytes", "_parser")

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._parser = _new_lxml_parser()

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def parse(self, data: bytes) -> etree._Element:
        if not isinstance(data, bytes):
            data = bytes(data)
        if len(data) > self._max_bytes:
            raise XmlTooLargeError(f"document is {len(data)} bytes, limit is {self._max_bytes}")
        try:
            root = etree.fromstring(data, self._parser)
        except etree.XMLSyntaxError as exc:
            if _mentions_doctype(data):
                raise XmlDtdForbiddenError("DOCTYPE declarations are not accepted") from None
            line = exc.position[0] if exc.position else exc.lineno
            raise XmlMalformedError(f"not well-formed XML: {exc.msg}", line=line) from None
        _refuse_doctype(root)
        return root


def _mentions_doctype(data: bytes) -> bool:
    return any(marker in data for marker in _DOCTYPE_MARKERS)


def _refuse_doctype(root: etree._Element) -> None:
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlDtdForbiddenError("DOCTYPE declarations are not accepted")


def parse_untrusted_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """One-off form; hot paths should hold a SafeXmlParser instead of building one per call."""
    return SafeXmlParser(max_bytes=max_bytes).parse(data)
