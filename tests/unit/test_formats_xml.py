from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from message_formats import (
    FormatError,
    SafeXmlParser,
    XmlDtdForbiddenError,
    XsdStore,
    parse_untrusted_xml,
)

DATA = Path(__file__).parent.parent / "data" / "fal1"
NS = "urn:px:fal:1"


def _codes(data: bytes, parser: SafeXmlParser | None = None) -> tuple[str, int | None]:
    with pytest.raises(FormatError) as caught:
        (parser or SafeXmlParser()).parse(data)
    return caught.value.code, caught.value.line


# ---------------------------------------------------------------- safe parsing


def test_parses_a_plain_document() -> None:
    root = parse_untrusted_xml(b"<a><b>x &amp; y</b></a>")
    assert root.tag == "a"
    assert root[0].text == "x & y"


def test_accepts_bytes_like_input() -> None:
    assert SafeXmlParser().parse(bytearray(b"<a/>")).tag == "a"


def test_refuses_documents_over_the_limit_before_parsing() -> None:
    parser = SafeXmlParser(max_bytes=17)
    assert parser.parse(b"<a>0123456789</a>").tag == "a"
    assert _codes(b"<a>01234567890</a>", parser) == ("XML_TOO_LARGE", None)


def test_rejects_a_non_positive_limit() -> None:
    with pytest.raises(ValueError):
        SafeXmlParser(max_bytes=0)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"", 1),
        (b"<a>", 1),
        (b"<a>\n<b>\n</a>", 3),
        (b"not xml at all", 1),
        (b"<a/><b/>", 1),
    ],
)
def test_malformed_documents_report_their_line(data: bytes, line: int) -> None:
    assert _codes(data) == ("XML_MALFORMED", line)


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_sample_attacks_are_refused_as_dtd(name: str) -> None:
    assert _codes((DATA / name).read_bytes())[0] == "XML_DTD_FORBIDDEN"


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE a><a/>",
        b'<!DOCTYPE a SYSTEM "http://127.0.0.1:9/a.dtd"><a/>',
        b'<!DOCTYPE a PUBLIC "-//x//y//EN" "a.dtd"><a/>',
        b'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
        b'<!DOCTYPE a [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><a/>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16"),
        b'<!DOCTYPE a [<!ENTITY e "&e;">]><a>&e;</a>',
        b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a',
    ],
)
def test_any_doctype_is_refused(data: bytes) -> None:
    assert _codes(data)[0] == "XML_DTD_FORBIDDEN"


def test_external_entity_is_never_read() -> None:
    with pytest.raises(XmlDtdForbiddenError) as caught:
        parse_untrusted_xml((DATA / "external_entity.xml").read_bytes())
    assert "root:" not in caught.value.message


def test_comments_and_processing_instructions_are_dropped() -> None:
    root = parse_untrusted_xml(b"<a>PX <!-- hidden -->HAR<?pi x?>MONY</a>")
    assert root.text == "PX HARMONY"
    assert len(root) == 0


def test_one_parser_survives_errors() -> None:
    parser = SafeXmlParser()
    for _ in range(3):
        assert _codes(b"<a>", parser)[0] == "XML_MALFORMED"
        assert parser.parse(b"<a/>").tag == "a"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=100).map(lambda s: f"<a>{s}</a>".encode()))
def test_arbitrary_bytes_give_an_element_or_a_format_error(data: bytes) -> None:
    try:
        root = SafeXmlParser().parse(data)
    except FormatError as exc:
        assert exc.code in {"XML_MALFORMED", "XML_DTD_FORBIDDEN", "XML_ENCODING_INVALID",
                            "XML_ENCODING_MISMATCH", "XML_ENCODING_UNSUPPORTED"}
    else:
        assert isinstance(root.tag, str)


# ---------------------------------------------------------------- errors


def test_format_error_carries_code_message_and_line() -> None:
    error = FormatError("boom", code="XML_MALFORMED", line=4)
    assert (error.code, error.message, error.line) == ("XML_MALFORMED", "boom", 4)
    assert str(error) == "XML_MALFORMED: boom (line 4)"
    assert FormatError("x").code == "FORMAT_ERROR"


def test_format_errors_survive_pickling() -> None:
    error = XmlDtdForbiddenError("no", line=2)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is XmlDtdForbiddenError
    assert (copy.code, copy.message, copy.line) == ("XML_DTD_FORBIDDEN", "no", 2)


# ---------------------------------------------------------------- XSD store


def test_store_lists_and_compiles_the_builtin_schema_once() -> None:
    store = XsdStore()
    assert "fal1" in store.names()
    schema = store.schema("fal1")
    assert isinstance(schema, etree.XMLSchema)
    assert store.schema("fal1") is schema


def test_valid_sample_passes_the_xsd() -> None:
    root = parse_untrusted_xml((DATA / "valid_arrival.xml").read_bytes())
    XsdStore().validate("fal1", root)


def test_invalid_document_reports_lines_and_code() -> None:
    root = parse_untrusted_xml((DATA / "missing_ship_name.xml").read_bytes())
    with pytest.raises(FormatError) as caught:
        XsdStore().validate("fal1", root)
    assert caught.value.code == "XSD_INVALID"
    assert caught.value.line == 7
    assert "line 7:" in caught.value.message
    assert "Name" in caught.value.message


def test_report_is_limited_to_the_first_errors() -> None:
    body = "".join(f"<Junk{i}/>" for i in range(10))
    root = parse_untrusted_xml(
        f'<GeneralDeclaration xmlns="{NS}">{body}</GeneralDeclaration>'.encode()
    )
    with pytest.raises(FormatError) as caught:
        XsdStore().validate("fal1", root)
    assert caught.value.message.count("line 1:") <= 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ImoNumber", "907472"),
        ("ImoNumber", "９０７４７２９"),  # full-width digits are not ASCII digits
        ("PortOfArrivalDeparture", "CNSH1"),
        ("DateTimeOfArrivalDeparture", "2026-03-15T06:30:00"),  # no UTC offset
        ("DateTimeOfArrivalDeparture", "2026-03-15T06:30:00.1234+08:00"),  # below 1 ms
        ("DateTimeOfArrivalDeparture", "2026-03-15T24:00:00Z"),
        ("FlagState", "hk"),
        ("CrewCount", "-1"),
        ("VoyageNumber", "V26:11"),
    ],
)
def test_xsd_constraints(field: str, value: str) -> None:
    text = (DATA / "valid_arrival.xml").read_text(encoding="utf-8")
    start = text.index(f"<{field}>") + len(field) + 2
    end = text.index(f"</{field}>")
    changed = text[:start] + value + text[end:]
    root = parse_untrusted_xml(changed.encode())
    with pytest.raises(FormatError) as caught:
        XsdStore().validate("fal1", root)
    assert caught.value.code == "XSD_INVALID"


def test_version_attribute_is_required() -> None:
    text = (DATA / "valid_arrival.xml").read_text(encoding="utf-8")
    root = parse_untrusted_xml(text.replace(' version="1"', "").encode())
    with pytest.raises(FormatError, match="version"):
        XsdStore().validate("fal1", root)


@pytest.mark.parametrize("name", ["nope", "../xsd/fal1", "", ".hidden"])
def test_unknown_schema_names(name: str) -> None:
    with pytest.raises(FormatError) as caught:
        XsdStore().schema(name)
    assert caught.value.code == "XSD_UNKNOWN_SCHEMA"


def test_extra_directories_are_searched(tmp_path: Path) -> None:
    (tmp_path / "note.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:element name="note" type="xs:string"/></xs:schema>'
    )
    store = XsdStore(tmp_path)
    assert set(store.names()) >= {"fal1", "note"}
    store.validate("note", parse_untrusted_xml(b"<note>hi</note>"))
    with pytest.raises(FormatError):
        store.validate("note", parse_untrusted_xml(b"<other/>"))


@pytest.mark.parametrize(
    "data",
    [
        # UTF-7 spells "<!DOCTYPE" without a "<": refused before any parser reads it
        b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE a+AD4-<a/>',
        b'<?xml version="1.0" encoding="cp037"?><a/>',
        b'<?xml version="1.0" encoding="UTF-32"?><a/>',
        "<a>x</a>".encode("utf-16-le"),
        "<a>x</a>".encode("utf-16-be"),
        "<a>x</a>".encode("utf-32"),
    ],
)
def test_encodings_that_could_hide_markup_are_refused(data: bytes) -> None:
    assert _codes(data) == ("XML_ENCODING_UNSUPPORTED", 1)


def test_a_declaration_that_does_not_end_soon_is_refused() -> None:
    data = b'<?xml version="1.0"' + b" " * 2000 + b'encoding="UTF-7"?><a/>'
    assert _codes(data) == ("XML_MALFORMED", 1)


@pytest.mark.parametrize(
    ("data", "line"),
    [(b"<a>\n\x00</a>", 2), ("\ufeff<a>\n\n\x00</a>".encode("utf-16"), 3)],
)
def test_nul_is_refused_with_its_line(data: bytes, line: int) -> None:
    assert _codes(data) == ("XML_MALFORMED", line)


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf<!DOCTYPE a><a/>",
        b'<?xml version="1.0" encoding="GBK"?>\n<!DOCTYPE a [<!ENTITY % p SYSTEM "x"> %p;]><a/>',
        b"<a><![CDATA[ ]]></a>\n<!DOCTYPE a>",
    ],
)
def test_a_doctype_anywhere_is_refused_before_parsing(data: bytes) -> None:
    assert _codes(data)[0] == "XML_DTD_FORBIDDEN"


def test_a_fifo_named_by_a_parameter_entity_is_never_opened(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: a parser that opened it
    would hang here. Nobody must have it open afterwards either."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data = f'<!DOCTYPE a [<!ENTITY % p SYSTEM "file://{fifo}"> %p;]><a/>'.encode()
    assert _codes(data)[0] == "XML_DTD_FORBIDDEN"
    with pytest.raises(OSError) as caught:
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert caught.value.errno == errno.ENXIO  # no reader has it open


def test_utf16_with_a_lying_declaration_is_refused() -> None:
    data = '<?xml version="1.0" encoding="UTF-7"?><a/>'.encode("utf-16")
    assert _codes(data) == ("XML_ENCODING_MISMATCH", 1)


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?>\n<?xml-stylesheet href="http://127.0.0.1:9/x.xsl"?><a/>',
        b'<a><?px file:///etc/passwd?></a>',
        b'<a xmlns:xi="http://www.w3.org/2001/X&#73;nclude"><xi:include href="x"/></a>',
        b'<a xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:schemaLocation="urn:px:fal:1 http://127.0.0.1:9/evil.xsd"/>',
        b'<a xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:noNamespaceSchemaLocation="file:///etc/passwd"/>',
        # A harmless location on the root does not hide another one deeper.
        b'<a xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:schemaLocation="urn:a a.xsd"><b xsi:schemaLocation="urn:b http://x/b.xsd"/></a>',
        '<a xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><b><c '
        'i:noNamespaceSchemaLocation="/etc/b.xsd"/></b></a>'.encode("utf-16"),
    ],
)
def test_documents_that_point_outside_themselves_are_refused(data: bytes) -> None:
    assert _codes(data)[0] == "XML_EXTERNAL_REFERENCE"


def test_a_schema_location_naming_a_local_file_and_a_harmless_instruction_are_accepted() -> None:
    root = parse_untrusted_xml(
        b'<?xml-stylesheet type="text/xsl" href="view.xsl"?>'
        b'<a xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:schemaLocation="http://www.chinaport.gov.cn/dxp DxpMsg.xsd">x<?p y?>z</a>')
    assert root.text == "xz"


def test_an_element_with_thousands_of_attributes_is_refused_with_its_line() -> None:
    attributes = " ".join(f'a{n}="1"' for n in range(5000)).encode()
    assert _codes(b"<r>\n<e " + attributes + b"/></r>") == ("XML_LIMIT_EXCEEDED", 2)


@pytest.mark.parametrize(("count", "value", "refused"), [
    (256, "1", False), (257, "1", True), (257, "", True), (257, "&gt;=>", True)])
def test_more_than_256_attributes_on_one_element_are_refused_however_short_or_odd(
        count: int, value: str, refused: bool) -> None:
    """The shortest attributes, and values holding ">" and "=", are found all the same; many
    attributes spread over many elements are not one crowded element."""
    one = " ".join(f'a{n}="{value}"' for n in range(count)).encode()
    many = b"".join(b'<i a="1" b="2"/>' for _ in range(300))
    data = b"<r>" + many + b"\n<e " + one + b"/>" + many + b"</r>"
    if refused:
        assert _codes(data) == ("XML_LIMIT_EXCEEDED", 2)
    else:
        assert len(parse_untrusted_xml(data)) == 601
