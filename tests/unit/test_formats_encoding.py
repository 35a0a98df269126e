"""Documents arrive in UTF-8, UTF-16 with a BOM, GB18030 or GBK, as their declaration says.
A declaration that lies about the bytes is an error, never silent mojibake."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import Fal1Adapter
from message_formats import FormatError, SafeXmlParser

SAMPLE = (Path(__file__).parents[1] / "data" / "fal1" / "valid_arrival.xml").read_text("utf-8")
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def declared_as(encoding: str, codec: str | None = None) -> bytes:
    text = SAMPLE.replace(DECLARATION, f'<?xml version="1.0" encoding="{encoding}"?>')
    return text.encode(codec or encoding)


@pytest.fixture(scope="module")
def adapter() -> Fal1Adapter:
    return Fal1Adapter()


@pytest.mark.parametrize(("declared", "codec"), [
    ("UTF-8", "utf-8"), ("UTF-16", "utf-16"), ("GB18030", "gb18030"), ("GBK", "gbk"),
])
def test_each_supported_encoding_gives_the_same_record(adapter: Fal1Adapter, declared: str,
                                                        codec: str) -> None:
    assert SAMPLE.startswith(DECLARATION)
    expected = adapter.parse(SAMPLE.encode("utf-8")).record
    assert adapter.parse(declared_as(declared, codec)).record == expected
    assert "张伟" in adapter.parse(declared_as(declared, codec)).record["master_name"]


@pytest.mark.parametrize("declared", ["ISO-8859-1", "GBK", "GB18030", "windows-1252"])
def test_utf8_bytes_under_another_declaration_are_refused(adapter: Fal1Adapter,
                                                          declared: str) -> None:
    with pytest.raises(FormatError) as caught:
        adapter.parse(declared_as(declared, "utf-8"))
    assert caught.value.code == "XML_ENCODING_MISMATCH"
    assert declared in caught.value.message and "UTF-8" in caught.value.message
    assert caught.value.line is not None


def test_gbk_bytes_declared_as_utf8_are_refused_with_the_line(adapter: Fal1Adapter) -> None:
    with pytest.raises(FormatError) as caught:
        adapter.parse(declared_as("UTF-8", "gb18030"))
    assert caught.value.code == "XML_ENCODING_INVALID"
    assert caught.value.line is not None


def test_an_unknown_encoding_is_named() -> None:
    with pytest.raises(FormatError) as caught:
        SafeXmlParser().parse('<?xml version="1.0" encoding="X-NOPE"?><a>é</a>'.encode())
    assert caught.value.code == "XML_ENCODING_INVALID"
    assert "X-NOPE" in caught.value.message


def test_real_latin1_still_parses() -> None:
    data = '<?xml version="1.0" encoding="ISO-8859-1"?><a>Séverine Müller</a>'.encode("latin-1")
    assert SafeXmlParser().parse(data).text == "Séverine Müller"


@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1,
               max_size=40))
def test_chinese_text_survives_gb18030(text: str) -> None:
    data = f'<?xml version="1.0" encoding="GB18030"?><a>{text}</a>'.encode("gb18030")
    assert SafeXmlParser().parse(data).text == text


@pytest.mark.parametrize("declared", ["GBK", "GB18030", "GB2312", "ISO-8859-1", "Big5"])
def test_a_latin_name_in_utf8_under_a_legacy_label_is_refused_without_its_value(
        declared: str) -> None:
    data = (f'<?xml version="1.0" encoding="{declared}"?>\n<a>\n<Name>ÉTOILE DU NORD</Name>'
            '</a>').encode()
    with pytest.raises(FormatError) as caught:
        SafeXmlParser().parse(data)
    assert (caught.value.code, caught.value.line) == ("XML_ENCODING_MISMATCH", 3)
    assert "ÉTOILE" not in str(caught.value) and "É" not in str(caught.value)


@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1,
               max_size=40))
def test_chinese_text_survives_gbk_beside_latin_words(text: str) -> None:
    try:
        encoded = f"MV PEARL {text} LINE".encode("gbk")
    except UnicodeEncodeError:
        return
    data = b'<?xml version="1.0" encoding="GBK"?><a>' + encoded + b"</a>"
    assert SafeXmlParser().parse(data).text == f"MV PEARL {text} LINE"
