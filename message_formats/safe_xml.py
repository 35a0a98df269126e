"""Parsing of untrusted XML: size-limited, no entities, no DTDs, no network."""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import cast

from lxml import etree

from .errors import (
    FormatError,
    XmlDtdForbiddenError,
    XmlEncodingInvalidError,
    XmlEncodingMismatchError,
    XmlEncodingUnsupportedError,
    XmlExternalReferenceError,
    XmlLimitExceededError,
    XmlMalformedError,
    XmlTooLargeError,
)

DEFAULT_MAX_BYTES = 4 * 1024 * 1024

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_LE_BOM = b"\xff\xfe\x00\x00"
_XML_SPACE = (b" ", b"\t", b"\r", b"\n")
# The XML declaration, as far as its closing "?>" (which cannot occur inside it).
_DECLARATION = re.compile(rb"\A<\?xml[ \t\r\n][^?]{0,1000}\?>")
_ENCODING = re.compile(rb"""[ \t\r\n]encoding[ \t\r\n]*=[ \t\r\n]*(["'])(.*?)\1""", re.DOTALL)
# The encodings a port document may be in. Each keeps ASCII's bytes for ASCII's characters
# and never uses "<" or "!" as the second byte of a character, so a DOCTYPE is found in the
# raw bytes. Any other encoding libxml2 knows could hide one (UTF-7 writes "<!" as
# "+ADwAIQ-"), so it is refused before the parser sees the bytes.
_ACCEPTED_ENCODINGS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "ascii", "gb18030", "gbk", "gb2312", "big5", "big5hkscs",
        "shift_jis", "euc_jp", "euc_kr",
        *(f"iso-8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)),
        *(f"cp{n}" for n in range(1250, 1259)),
    )
)
# Encodings where UTF-8 bytes decode "successfully" into mojibake, so a document that
# declares one of them but holds UTF-8 would be read wrong without a word.
_DOUBLE_BYTE = frozenset(
    codecs.lookup(name).name
    for name in ("gbk", "gb2312", "gb18030", "big5", "big5hkscs", "shift_jis", "euc_jp",
                 "euc_kr")
)
_UTF8 = codecs.lookup("utf-8").name
_UTF16 = frozenset(codecs.lookup(name).name for name in ("utf-16", "utf-16-le", "utf-16-be"))
_XINCLUDE = "http://www.w3.org/2001/XInclude"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_SCHEMA_LOCATION = f"{{{_XSI}}}schemaLocation"
_XSI_NO_NAMESPACE = f"{{{_XSI}}}noNamespaceSchemaLocation"
_XSI_LOCATIONS = frozenset({_XSI_SCHEMA_LOCATION, _XSI_NO_NAMESPACE})
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/|\\\\")
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:|[/\\]")
_MOST_ATTRIBUTES = 256
# A start tag holds no "<" (XML forbids it in attribute values) and spends at least five bytes
# on each attribute ( a=""): one with more than _MOST_ATTRIBUTES of them is a run of that
# many bytes after a "<" without another.
_LONG_RUN_BYTES = 5 * _MOST_ATTRIBUTES
_LONG_RUN = re.compile(rb"<[^<]{%d}" % _LONG_RUN_BYTES)
# Such a run holds a whole window of half its length, of those that tile the bytes from the
# start: bytes with a "<" in every window have no such run.
_RUN_WINDOW = _LONG_RUN_BYTES // 2
_CJK = re.compile("[\u3400-\u9fff]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# A letter with a diacritic (as UTF-8 spells ship and family names) touching a plain
# letter: É in ÉTOILE. Read as GB text, its bytes give a rare ideograph inside a Latin word.
_ACCENTED_IN_WORD = re.compile("[A-Za-z][\u00c0-\u024f]|[\u00c0-\u024f][A-Za-z]")
# An encoding name as XML writes one (EncName); another declared "encoding" is not named back.
_ENCODING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,39}")

# What libxml2's well-formedness errors may repeat. Its text is kept (the rule, and names of
# tags and attributes, which are not personal), but not what it quotes of the document: the
# errors below quote a comment, a CDATA section, a namespace name, a version or an entity
# name written in the text, and are said again as their rule alone. Any other error keeps
# its first line without quoted text (the document's, except for a few characters of markup
# such as '<' or ']]>') and without an excerpt after "<!--" or "<![CDATA[".
_ERRORS = etree.ErrorTypes
_QUOTING_ERRORS: Mapping[int, str] = MappingProxyType({
    _ERRORS.ERR_HYPHEN_IN_COMMENT: "Double hyphen within comment",
    _ERRORS.ERR_COMMENT_NOT_FINISHED: "Comment not terminated",
    _ERRORS.ERR_CDATA_NOT_FINISHED: "CData section not finished",
    _ERRORS.WAR_NS_URI: "a namespace name (xmlns) is not a valid URI",
    _ERRORS.WAR_NS_URI_RELATIVE: "a namespace name (xmlns) is not an absolute URI",
    _ERRORS.NS_ERR_ATTRIBUTE_REDEFINED: "Namespaced attribute redefined",
    _ERRORS.ERR_UNSUPPORTED_ENCODING: "Unsupported encoding",
    _ERRORS.ERR_UNKNOWN_VERSION: "Unsupported XML version",
    _ERRORS.ERR_UNDECLARED_ENTITY: "Entity not defined (write & in text as &amp;)",
    _ERRORS.WAR_UNDECLARED_ENTITY: "Entity not defined (write & in text as &amp;)",
    _ERRORS.ERR_STANDALONE_VALUE: "standalone accepts only 'yes' or 'no'",
})
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
_MARKUP = re.compile(r"""['"][<>/!?\[\]&;=-]{1,3}['"]""")
_EXCERPT = re.compile(r":?\s*<!(?:--|\[CDATA\[).*")
_WHERE = re.compile(r", line \d+, column \d+\Z")  # what lxml adds to libxml2's message


def _new_lxml_parser() -> etree.XMLParser:
    # Comments are dropped so that an element's .text is its whole simple-type value (a
    # comment inside <Name> would otherwise split the text); processing instructions are
    # kept to be looked at, then dropped for the same reason (_refuse_outside_references).
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        collect_ids=False,
        huge_tree=False,
        remove_blank_text=False,
        remove_comments=True,
        remove_pis=False,
    )


class SafeXmlParser:
    """One lxml parser for untrusted documents. lxml parsers are not thread-safe: hold one
    SafeXmlParser per thread."""

    __slots__ = ("_crowded", "_locations", "_max_bytes", "_parser")

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._parser = _new_lxml_parser()
        # The walks over all elements, in libxml2 (compiled XPath, held per parser as the
        # lxml parser is): elements with too many attributes, and xsi schema locations.
        self._crowded = etree.XPath(f"descendant-or-self::*[@*[{_MOST_ATTRIBUTES + 1}]]")
        self._locations = etree.XPath("descendant-or-self::*/@xsi:*", namespaces={"xsi": _XSI})

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def parse(self, data: bytes | bytearray | memoryview) -> etree._Element:
        if not isinstance(data, bytes):
            data = bytes(data)
        self._admit(data)
        try:
            root = etree.fromstring(data, self._parser)
        except etree.XMLSyntaxError as exc:
            raise _refusal(exc) from None
        _refuse_doctype(root)  # cannot happen after the checks; kept as a second wall
        _refuse_outside_references(root)
        self._refuse_crowded_elements(root, data)
        self._refuse_schema_locations(root, data)
        return root

    def _admit(self, data: bytes) -> None:
        """What every reading checks first: the size, then the raw bytes (no DTD, a known
        encoding), before any parser sees them."""
        if len(data) > self._max_bytes:
            raise XmlTooLargeError(f"document is {len(data)} bytes, limit is {self._max_bytes}")
        check_before_parsing(data)

    def _refuse_crowded_elements(self, root: etree._Element, data: bytes) -> None:
        """An element with more attributes than any port document has (200,000 of them take
        a second to validate) is refused. Looked for only when the raw bytes can hold one."""
        if not data.startswith(_UTF16_BOMS) and not _may_hold_a_crowded_tag(data):
            return
        crowded = cast(list[etree._Element], self._crowded(root))
        if crowded:
            raise XmlLimitExceededError(
                f"an element has more than {_MOST_ATTRIBUTES} attributes",
                line=crowded[0].sourceline)

    def _refuse_schema_locations(self, root: etree._Element, data: bytes) -> None:
        """An `xsi:schemaLocation` or `xsi:noNamespaceSchemaLocation` naming an absolute URI
        is refused. Looked for only when the raw bytes name one; on the root alone when
        every name the bytes hold is one of the root's attributes (where real files put it)."""
        named = -1 if data.startswith(_UTF16_BOMS) else data.count(b"chemaLocation")
        if not named:
            return
        found = [(root, name) for name in root.attrib if name in _XSI_LOCATIONS]
        if len(found) != named:
            found = [(value.getparent(), value.attrname)
                     for value in cast(list[etree._ElementUnicodeResult], self._locations(root))
                     if value.attrname in _XSI_LOCATIONS]
        for element, name in found:
            _check_location(element, name)

    def root_tag(self, data: bytes) -> str:
        """The root element's name, ``{namespace}LocalName``, read no further than its start
        tag (a few kilobytes of a large document) after the same checks as `parse`: what
        format detection needs. The rest of the document is not checked: `parse` does that."""
        self._admit(data)
        events = etree.iterparse(
            io.BytesIO(data), events=("start",), resolve_entities=False, no_network=True,
            load_dtd=False, dtd_validation=False, huge_tree=False)
        try:
            for _event, element in events:
                return str(element.tag)
        except etree.XMLSyntaxError as exc:
            raise _refusal(exc) from None
        raise XmlMalformedError("not well-formed XML: no root element", line=1)


def _refusal(exc: etree.XMLSyntaxError) -> FormatError | MemoryError:
    """The refusal for libxml2's well-formedness error, its text without the document's."""
    line, column = exc.position if exc.position else (exc.lineno, None)
    rule = _well_formedness_rule(exc.code, exc.msg)
    if "memory allocation failed" in rule.lower():
        return MemoryError("libxml2 ran out of memory")
    where = f", line {line}, column {column}" if column is not None else ""
    if "encoding" in rule.lower():
        return XmlEncodingInvalidError(
            f"bytes are not in the declared encoding ({rule}{where}); declare the encoding "
            "the document is really in (UTF-8, UTF-16, GB18030, GBK)",
            line=line,
        )
    return XmlMalformedError(f"not well-formed XML: {rule}{where}", line=line)


def _well_formedness_rule(code: int, message: str) -> str:
    """libxml2's error `message` (of error type `code`) with the rule and the names of tags
    and attributes kept, and nothing it quotes of the document: no comment, CDATA, value,
    namespace name, entity name or bytes. lxml's ", line N, column M" is left out."""
    fixed = _QUOTING_ERRORS.get(code)
    if fixed is not None:
        return fixed
    first = _EXCERPT.sub("", _WHERE.sub("", message).split("\n", 1)[0])
    kept = _QUOTED.sub(lambda quoted: quoted.group() if _MARKUP.fullmatch(quoted.group())
                       else "", first)
    return " ".join(kept.split()) or "not well-formed"


def check_before_parsing(data: bytes) -> None:
    """Refuses, from the raw bytes and before any XML parser sees them, what no port document
    needs and what would make libxml2 open a file or the network: a DOCTYPE (internal subset
    or external; parameter entities are read even with entity resolution off), an encoding
    other than the accepted ones, NUL bytes, and a declaration that lies about the bytes."""
    if data.startswith(_UTF8_BOM):
        _check_ascii_family(data, data[len(_UTF8_BOM):])
    elif data.startswith(_UTF16_BOMS) and not data.startswith(_UTF32_LE_BOM):
        _check_utf16(data)
    elif b"\x00" in data[:4] or data.startswith(b"\x4c\x6f\xa7\x94"):
        raise XmlEncodingUnsupportedError(
            "the document is in UTF-16 or UTF-32 without a byte order mark, or in EBCDIC; "
            "send UTF-8, GB18030 or GBK, or UTF-16 with its byte order mark", line=1)
    else:
        _check_ascii_family(data, data)


def _check_ascii_family(data: bytes, body: bytes) -> None:
    nul = body.find(b"\x00")
    if nul >= 0:
        raise XmlMalformedError("a NUL byte is not allowed in XML",
                                line=body.count(b"\n", 0, nul) + 1)
    declared = _declared_encoding(body)
    name = _accepted_encoding(declared) if declared is not None else _UTF8
    if declared is not None and data is not body and name != _UTF8:
        raise XmlEncodingMismatchError(
            "the document starts with a UTF-8 byte order mark but declares "
            f'{_named(declared)}; declare encoding="UTF-8"', line=1)
    if b"<!DOCTYPE" in body:
        raise XmlDtdForbiddenError("DOCTYPE declarations are not accepted",
                                   line=body.count(b"\n", 0, body.find(b"<!DOCTYPE")) + 1)
    if declared is not None and name != _UTF8 and not body.isascii():
        _refuse_utf8_under_legacy_label(body, declared, name)


def _check_utf16(data: bytes) -> None:
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError:
        raise XmlEncodingInvalidError("the bytes after the UTF-16 byte order mark are not "
                                      "UTF-16", line=1) from None
    if "\x00" in text:
        raise XmlMalformedError("a NUL character is not allowed in XML",
                                line=text.count("\n", 0, text.find("\x00")) + 1)
    declared = _declared_encoding(text[:1100].encode("utf-8", "replace"))
    if declared is not None and _lookup(declared) not in _UTF16:
        raise XmlEncodingMismatchError(
            f"the document is UTF-16 (it starts with a byte order mark) but declares "
            f"{_named(declared)}; declare encoding=\"UTF-16\"", line=1)
    if "<!DOCTYPE" in text:
        raise XmlDtdForbiddenError("DOCTYPE declarations are not accepted",
                                   line=text.count("\n", 0, text.find("<!DOCTYPE")) + 1)


def _declared_encoding(body: bytes) -> str | None:
    """The encoding named by the XML declaration, None when there is none (or it names
    none). A declaration that does not end within 1000 bytes is refused: a parser would
    read an encoding this check had not seen."""
    if not body.startswith(b"<?xml") or body[5:6] not in _XML_SPACE:
        return None  # no declaration (<?xml-stylesheet is an instruction)
    found = _DECLARATION.match(body)
    if found is None:
        raise XmlMalformedError("the XML declaration is malformed or longer than 1000 bytes",
                                line=1)
    encoding = _ENCODING.search(found.group())
    if encoding is None:
        return None
    return encoding.group(2).decode("ascii", "replace")


def _named(declared: str) -> str:
    """The declared encoding as a message names it: quoted if it is an encoding name (XML's
    EncName, at most 40 characters), else not repeated, since it is then any text at all."""
    if _ENCODING_NAME.fullmatch(declared):
        return repr(declared)
    return "a text that is no encoding name"


def _lookup(declared: str) -> str:
    try:
        return codecs.lookup(declared).name
    except LookupError:
        raise XmlEncodingInvalidError(f"unknown encoding {_named(declared)} declared",
                                      line=1) from None


def _accepted_encoding(declared: str) -> str:
    name = _lookup(declared)
    if name not in _ACCEPTED_ENCODINGS:
        raise XmlEncodingUnsupportedError(
            f"encoding {_named(declared)} is not accepted; send UTF-8, GB18030, GBK or UTF-16",
            line=1)
    return name


def _refuse_utf8_under_legacy_label(body: bytes, declared: str, name: str) -> None:
    """Refuses a declaration that lies about the bytes instead of decoding them into
    mojibake: UTF-8 text declared as Latin-1 or GBK decodes without error, wrongly.

    Bytes that are not UTF-8 are taken to be in the declared encoding (the parser checks
    that). For single-byte encodings any multi-byte UTF-8 sequence gives the lie away. Double-
    byte text is sometimes valid UTF-8 by accident (一 is D2 BB in GBK, also U+04BB), so there
    the lie is called when the UTF-8 reading shows what UTF-8 text does and accidental
    UTF-8 practically never does: two or more ideographs, or an accented letter inside a
    Latin word. A lone accented letter between non-letters under a double-byte label stays
    undecidable (its bytes are a valid ideograph too) and is read as the label says.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return
    if name in _DOUBLE_BYTE and not _reads_as_utf8(text):
        return
    first = _NON_ASCII.search(text)
    line = text.count("\n", 0, first.start()) + 1 if first else 1
    raise XmlEncodingMismatchError(
        f"the XML declaration says {_named(declared)} but the bytes are UTF-8 (a multi-byte UTF-8 "
        f'sequence on line {line}); declare encoding="UTF-8"',
        line=line,
    )


def _reads_as_utf8(text: str) -> bool:
    first = _CJK.search(text)
    if first is not None and _CJK.search(text, first.end()) is not None:
        return True
    return _ACCENTED_IN_WORD.search(text) is not None


def _refuse_outside_references(root: etree._Element) -> None:
    """Refuses a document that asks for something outside itself (the parser never follows
    any of these; a document that asks is refused rather than half-read): a processing
    instruction naming a URI (`<?xml-stylesheet href="http://…"?>`), an XInclude (an
    `xsi:schemaLocation` naming an absolute URI is SafeXmlParser's to find: it holds the
    compiled XPath). Other processing instructions are dropped."""
    instructions = [*root.itersiblings(etree.PI, preceding=True),
                    *root.itersiblings(etree.PI), *root.iter(etree.PI)]
    for pi in instructions:
        if _URI.search(pi.text or ""):
            raise XmlExternalReferenceError(
                f"processing instruction {pi.target!r} names a URI; the gateway never "
                "follows one", line=pi.sourceline)
    if instructions:
        etree.strip_elements(root, etree.PI, with_tail=False)
    xinclude = next(root.iter(f"{{{_XINCLUDE}}}*"), None)
    if xinclude is not None:
        raise XmlExternalReferenceError("XInclude is not accepted", line=xinclude.sourceline)


def _may_hold_a_crowded_tag(data: bytes) -> bool:
    """Whether the bytes have a run without "<" that holds more than _MOST_ATTRIBUTES "=":
    a few C-level searches, where a walk over the elements costs a microsecond each."""
    if data.count(b"=") <= _MOST_ATTRIBUTES:
        return False
    if all(data.find(b"<", start, start + _RUN_WINDOW) >= 0
           for start in range(0, len(data) - _RUN_WINDOW + 1, _RUN_WINDOW)):
        return False  # a window's search is memchr; the regex's tries, one per "<", are not
    for run in _LONG_RUN.finditer(data):
        end = data.find(b"<", run.start() + 1)
        if data.count(b"=", run.start(), end if end >= 0 else len(data)) > _MOST_ATTRIBUTES:
            return True
    return False


def _check_location(element: etree._Element, name: str) -> None:
    tokens = (element.get(name) or "").split()
    locations = tokens[1::2] if name == _XSI_SCHEMA_LOCATION else tokens
    if any(_ABSOLUTE_URI.match(location) for location in locations):
        raise XmlExternalReferenceError(
            f"xsi:{name.rpartition('}')[2]} names an absolute URI; the gateway validates "
            "against its own schemas and never fetches one", line=element.sourceline)


def _refuse_doctype(root: etree._Element) -> None:
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlDtdForbiddenError("DOCTYPE declarations are not accepted")


def parse_untrusted_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """One-off form; hot paths should hold a SafeXmlParser instead of building one per call."""
    return SafeXmlParser(max_bytes=max_bytes).parse(data)
