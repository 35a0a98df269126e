"""Parsing of untrusted XML: size-limited, no entities, no DTDs, no network."""

from __future__ import annotations

import codecs
import re

from lxml import etree

from .errors import (
    XmlDtdForbiddenError,
    XmlEncodingInvalidError,
    XmlEncodingMismatchError,
    XmlMalformedError,
    XmlTooLargeError,
)

DEFAULT_MAX_BYTES = 4 * 1024 * 1024

_DECLARED_ENCODING = re.compile(
    rb"""\A(?:\xef\xbb\xbf)?<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']"""
)
# Encodings where UTF-8 bytes decode "successfully" into mojibake, so a document that
# declares one of them but holds UTF-8 would be read wrong without a word.
_SINGLE_BYTE = frozenset(
    codecs.lookup(name).name
    for name in ("latin-1", "iso-8859-2", "iso-8859-15", "cp1250", "cp1251", "cp1252", "ascii")
)
_DOUBLE_BYTE_CHINESE = frozenset(
    codecs.lookup(name).name for name in ("gbk", "gb2312", "gb18030", "big5")
)
_CJK = re.compile("[\u3400-\u9fff]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")

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
        collect_ids=False,
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
        _check_declared_encoding(data)
        try:
            root = etree.fromstring(data, self._parser)
        except etree.XMLSyntaxError as exc:
            if _mentions_doctype(data):
                raise XmlDtdForbiddenError("DOCTYPE declarations are not accepted") from None
            line = exc.position[0] if exc.position else exc.lineno
            if "encoding" in exc.msg.lower():
                raise XmlEncodingInvalidError(
                    f"bytes are not in the declared encoding ({exc.msg}); declare the "
                    "encoding the document is really in (UTF-8, UTF-16, GB18030, GBK)",
                    line=line,
                ) from None
            raise XmlMalformedError(f"not well-formed XML: {exc.msg}", line=line) from None
        _refuse_doctype(root)
        return root


def _check_declared_encoding(data: bytes) -> None:
    """Refuses a declaration that lies about the bytes instead of decoding them into
    mojibake: UTF-8 text declared as Latin-1 or GBK decodes without error, wrongly.

    For single-byte encodings any multi-byte UTF-8 sequence gives the lie away. GB and Big5
    bytes are sometimes valid UTF-8 by accident (一 is D2 BB, also U+04BB), so there the lie
    is called only when the UTF-8 reading holds two or more CJK ideographs, which UTF-8
    Chinese always does and genuine GB text practically never does.
    """
    if data.isascii():
        return
    found = _DECLARED_ENCODING.match(data)
    if found is None:
        return
    declared = found.group(1).decode("ascii")
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        raise XmlEncodingInvalidError(f"unknown encoding {declared!r} declared", line=1) from None
    if name not in _SINGLE_BYTE and name not in _DOUBLE_BYTE_CHINESE:
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # not UTF-8: the declared encoding is plausible; lxml checks the rest
    if name in _DOUBLE_BYTE_CHINESE:
        first = _CJK.search(text)
        if first is None or _CJK.search(text, first.end()) is None:
            return  # fewer than two ideographs
    first_non_ascii = _NON_ASCII.search(text)
    if first_non_ascii is None:  # cannot be: the bytes are not all ASCII
        return
    sample = first_non_ascii.group()
    line = text.count("\n", 0, first_non_ascii.start()) + 1
    raise XmlEncodingMismatchError(
        f"the XML declaration says {declared} but the bytes are UTF-8 (e.g. {sample!r} on "
        f"line {line}); declare encoding=\"UTF-8\"",
        line=line,
    )


def _mentions_doctype(data: bytes) -> bool:
    return any(marker in data for marker in _DOCTYPE_MARKERS)


def _refuse_doctype(root: etree._Element) -> None:
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlDtdForbiddenError("DOCTYPE declarations are not accepted")


def parse_untrusted_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """One-off form; hot paths should hold a SafeXmlParser instead of building one per call."""
    return SafeXmlParser(max_bytes=max_bytes).parse(data)
