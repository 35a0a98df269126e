"""FAL 5 Crew List adapter. The hypothesis strategies for the parts FAL 3 to 6 share (ship,
voyage block, identity documents, event header) are defined here and imported by the tests of
FAL 3, 4 and 6."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from adapters import AdapterError, ParseResult
from adapters.fal5 import Fal5Adapter, attribute_rows
from adapters.toolkit import token as _token
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import (
    PROPERTY,
    VersionedAdapter,
    broken,
    event_header,
    imo_with_check_digit,
    optional,
    pattern,
    tokens,
    warning_codes,
)

DATA = Path(__file__).parent.parent / "data" / "fal5"


@pytest.fixture(scope="module")
def adapter() -> Fal5Adapter:
    return Fal5Adapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- samples


def test_valid_arrival_maps_the_list(adapter: Fal5Adapter) -> None:
    result = adapter.parse(_sample("valid_arrival.xml"))
    record = result.record
    assert result.business_key == "9456783:0312E:A:CNSHA"
    assert result.warnings == ()
    assert {k: v for k, v in record.items() if k != "crew"} == {
        "arrival_or_departure": "Arrival",
        "ship": {
            "name": "PX EASTERN DAWN",
            "imo_number": "9456783",
            "call_sign": "VRQD4",
            "flag_state": "HK",
            "gross_tonnage": None,
            "net_tonnage": None,
        },
        "voyage_number": "0312E",
        "port_of_arrival_departure": "CNSHA",
        "date_time_of_arrival_departure": datetime(2026, 3, 14, 22, 30, tzinfo=UTC),
        "utc_offset_minutes": 480,
        "local_date_time_of_arrival_departure": None,
        "last_port_of_call": "KRPUS",
        "crew_count": 25,
    }
    crew = record["crew"]
    assert len(crew) == 25
    assert crew[0] == {
        "family_name": "王",
        "given_names": "建国",
        "rank_or_rating": "Master 船长",
        "nationality": "CN",
        "date_of_birth": date(1968, 5, 14),
        "place_of_birth": "大连",
        "identity_document": {
            "document_type": "Passport",
            "number": "EJ4821937",
            "issuing_state": "CN",
            "expiry_date": date(2031, 8, 19),
        },
    }
    assert crew[9]["family_name"] == "DELA CRUZ"
    assert crew[9]["identity_document"]["document_type"] == "SeafarersIdentityDocument"
    assert crew[18] == {
        "family_name": "MURUGAN",
        "given_names": None,  # a single-name passport
        "rank_or_rating": "Oiler",
        "nationality": "IN",
        "date_of_birth": date(1992, 1, 6),
        "place_of_birth": "Madurai",
        "identity_document": {
            "document_type": "Passport",
            "number": "T8821405",
            "issuing_state": "IN",
            "expiry_date": date(2030, 12, 12),
        },
    }
    assert {member["nationality"] for member in crew} == {"CN", "UA", "IN", "PH"}


def test_valid_departure_collapses_tokens_and_trims_dates(adapter: Fal5Adapter) -> None:
    result = adapter.parse(_sample("valid_departure.xml"))
    assert result == ParseResult(
        record={
            "arrival_or_departure": "Departure",
            "ship": {
                "name": "JADE PEARL",
                "imo_number": "9321483",
                "call_sign": "3EBY9",
                "flag_state": "PA",
                "gross_tonnage": 9957,
                "net_tonnage": None,
            },
            "voyage_number": "026S",
            "port_of_arrival_departure": "CNYTN",
            "date_time_of_arrival_departure": datetime(
                2026, 3, 16, 14, 15, 30, 250_000, tzinfo=UTC
            ),
            "utc_offset_minutes": 480,
            "local_date_time_of_arrival_departure": None,
            "last_port_of_call": None,
            "crew_count": 2,
            "crew": [
                {
                    "family_name": "SANTOS",
                    "given_names": "Rodrigo Miguel",
                    "rank_or_rating": "Master",
                    "nationality": "PH",
                    "date_of_birth": date(1971, 6, 30),
                    "place_of_birth": "Manila",
                    "identity_document": {
                        "document_type": "Passport",
                        "number": "P1180432A",
                        "issuing_state": "PH",
                        "expiry_date": date(2030, 2, 28),
                    },
                },
                {
                    "family_name": "黄",
                    "given_names": "晓明",
                    "rank_or_rating": "Chief Engineer 轮机长",
                    "nationality": "CN",
                    "date_of_birth": date(1980, 2, 29),
                    "place_of_birth": "厦门",
                    "identity_document": {
                        "document_type": "SeafarersIdentityDocument",
                        "number": "S21077315",
                        "issuing_state": "CN",
                        "expiry_date": date(2027, 11, 30),
                    },
                },
            ],
        },
        business_key="9321483:026S:D:CNYTN",
        document_version=2,
        warnings=(),
    )


def test_expired_documents_are_warnings_that_name_no_one(adapter: Fal5Adapter) -> None:
    result = adapter.parse(_sample("valid_expired_document.xml"))
    assert result.warnings == (
        "RULE_DOCUMENT_EXPIRED: CrewMember[3]/@expiryDate (line 18): the identity document "
        "expired before the date of arrival (DateTimeOfArrivalDeparture)",
        "RULE_DOCUMENT_EXPIRED: CrewMember[13]/@expiryDate (line 28): the identity document "
        "expired before the date of arrival (DateTimeOfArrivalDeparture)",
    )
    assert not any("KOVALENKO" in w or "FX318265" in w for w in result.warnings)


def test_rule_messages_name_no_one(adapter: Fal5Adapter) -> None:
    with pytest.raises(AdapterError) as caught:
        adapter.parse(_sample("birth_after_voyage.xml"))
    assert "CrewMember[15]/@dateOfBirth" in str(caught.value)
    assert "MENDOZA" not in str(caught.value)
    assert "2026-03-16" not in str(caught.value)
    assert "2026-03-15" not in str(caught.value)  # nor the voyage's date


def test_dates_compare_with_the_port_local_day(adapter: Fal5Adapter) -> None:
    # 06:30 at +08:00 on the 15th is the 14th in UTC: the local day decides.
    born_on_arrival_day = _sample("valid_arrival.xml").replace(
        b'dateOfBirth="2001-02-14"', b'dateOfBirth="2026-03-15"'
    )
    assert adapter.parse(born_on_arrival_day).record["crew"][14]["date_of_birth"] == date(
        2026, 3, 15
    )
    expires_on_arrival_day = _sample("valid_arrival.xml").replace(
        b'expiryDate="2031-08-19"', b'expiryDate="2026-03-15"'
    )
    assert adapter.parse(expires_on_arrival_day).warnings == ()
    expired_the_day_before = _sample("valid_arrival.xml").replace(
        b'expiryDate="2031-08-19"', b'expiryDate="2026-03-14"'
    )
    assert warning_codes(adapter.parse(expired_the_day_before).warnings) == [
        "RULE_DOCUMENT_EXPIRED"
    ]


def test_zero_crew_count_is_a_count_mismatch(adapter: Fal5Adapter) -> None:
    with pytest.raises(AdapterError) as caught:
        adapter.parse(_sample("valid_departure.xml").replace(b">2</CrewCount>", b">0</CrewCount>"))
    assert caught.value.code == "RULE_CREW_COUNT"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'dateOfBirth="1968-05-14"', b'dateOfBirth="1968-02-30"'),  # no such day
        (b'dateOfBirth="1968-05-14"', b'dateOfBirth="1968-05-14+08:00"'),  # a zone
        (b'documentType="Passport"', b'documentType="passport"'),
        (b'documentNumber="EJ4821937"', b'documentNumber="EJ 4821937"'),
        (b'issuingState="CN"', b'issuingState="CHN"'),
        ('familyName="王"'.encode(), b'familyName=" "'),  # a token of no characters
        (b'rankOrRating="Master', b'rankOrRating="' + b"M" * 33),  # 36 characters
        (b' placeOfBirth="Odesa"', b""),  # a required attribute missing
        (b' nationality="UA"', b' nationality="UA" remarks="none"'),  # not declared
        (b'"2031-08-19"/>', b'"2031-08-19"><Note/></CrewMember>'),  # a child element
        (b"<CrewCount>25<", b"<CrewCount>-1<"),
        (b"<PortOfArrivalDeparture>CNSHA<", b"<PortOfArrivalDeparture>CNSH1<"),
    ],
)
def test_malformed_values_are_schema_invalid(adapter: Fal5Adapter, old: bytes, new: bytes) -> None:
    data = _sample("valid_arrival.xml")
    assert old in data
    with pytest.raises(FormatError) as caught:
        adapter.parse(data.replace(old, new, 1))
    assert caught.value.code == "XSD_INVALID"


def test_another_root_element_is_invalid(adapter: Fal5Adapter) -> None:
    with pytest.raises(FormatError) as caught:
        adapter.parse(b'<GeneralDeclaration xmlns="urn:px:fal:1" version="1"/>')
    assert caught.value.code == "XSD_INVALID"


def test_token_attributes_are_collapsed(adapter: Fal5Adapter) -> None:
    """The parser turns a literal tab or line break in an attribute value into a space but
    keeps runs of spaces and the characters written as references; xs:token collapses all,
    and only those: other white space, such as the ideographic space, is text."""
    data = (
        _sample("valid_arrival.xml")
        .replace('familyName="王"'.encode(), 'familyName="&#9;王&#10;&#13; "'.encode())
        .replace('givenNames="建国"'.encode(), 'givenNames="建\u3000国"'.encode())
        .replace(b'rankOrRating="Master ', b'rankOrRating="\tMaster \n ')
        .replace('placeOfBirth="大连"'.encode(), 'placeOfBirth="大连  市 "'.encode())
    )
    member = adapter.parse(data).record["crew"][0]
    assert member["family_name"] == "王"
    assert member["given_names"] == "建\u3000国"
    assert member["rank_or_rating"] == "Master 船长"
    assert member["place_of_birth"] == "大连 市"


# Mostly values whose only whitespace is spaces, where the quick check must see runs and ends.
_ATTRIBUTE_TEXT = st.text(alphabet=st.sampled_from(["a", "王", " ", "\u3000"])) | st.text(
    alphabet=st.sampled_from(["a", " ", "\t", "\n", "\r"])
)


@given(st.lists(st.lists(st.none() | _ATTRIBUTE_TEXT, min_size=1, max_size=4), max_size=4))
@example([["a  b", "c"]])
@example([["a", "b "], ["c"]])
@example([[None, " a"]])
def test_persons_values_are_tokens_whether_or_not_the_quick_check_passes(
    rows: list[list[str | None]],
) -> None:
    """attribute_rows checks all persons' values for whitespace at once and collapses only
    when the check asks for it; every value must come out as an xs:token all the same."""
    names = [f"a{index}" for index in range(max(map(len, rows), default=0))]
    parent = etree.Element("list")
    for row in rows:
        element = etree.SubElement(parent, "person")
        for name, value in zip(names, row, strict=False):
            if value is not None:
                element.set(name, value)
    read = attribute_rows(list(parent), names)
    expected = [
        [None if index >= len(row) or (value := row[index]) is None else _token(value)
         for index in range(len(names))]
        for row in rows
    ]
    assert [list(values) for values in read] == expected


def test_attribute_order_is_free(adapter: Fal5Adapter) -> None:
    sample = _sample("valid_arrival.xml").decode()
    reversed_attributes = re.sub(
        r"<CrewMember ([^>]*?)/>",
        lambda m: "<CrewMember " + " ".join(reversed(re.findall(r'\w+="[^"]*"', m[1]))) + "/>",
        sample,
    )
    assert reversed_attributes != sample
    assert adapter.parse(reversed_attributes.encode()) == adapter.parse(sample.encode())


XSD_DIR = Path(__file__).parent.parent.parent / "message_formats" / "xsd"
_XS = "{http://www.w3.org/2001/XMLSchema}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def undocumented(xsd: Path) -> list[str]:
    """The names of the elements and attributes an XSD declares without xs:documentation in
    both English and Chinese."""
    missing = []
    for declaration in etree.parse(str(xsd)).iter(f"{_XS}element", f"{_XS}attribute"):
        if declaration.get("ref") is not None:
            continue
        languages = {
            doc.get(_XML_LANG) for doc in declaration.findall(f"{_XS}annotation/{_XS}documentation")
        }
        if not {"en", "zh"} <= languages:
            missing.append(declaration.get("name"))
    return missing


@pytest.mark.parametrize("name", ["fal5", "fal6"])
def test_every_element_and_attribute_is_documented_in_english_and_chinese(name: str) -> None:
    assert undocumented(XSD_DIR / f"{name}.xsd") == []


# ---------------------------------------------------------------- render


def test_render_is_utf8_xml_with_declaration(adapter: Fal5Adapter) -> None:
    record = adapter.parse(_sample("valid_arrival.xml")).record
    rendered = adapter.render(record)
    assert rendered.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert '<CrewMember familyName="王" givenNames="建国" rankOrRating="Master 船长"'.encode() in (
        rendered
    )
    assert b' dateOfBirth="1968-05-14" ' in rendered
    assert rendered.count(b' givenNames="') == 24


def test_render_writes_each_crew_member_as_one_line(adapter: Fal5Adapter) -> None:
    """One empty element per person, its attributes in the order the XSD declares them (the
    order the reader takes in one call), one line each, so that lines name persons."""
    rendered = adapter.render(adapter.parse(_sample("valid_arrival.xml")).record)
    members = etree.fromstring(rendered).findall("{urn:px:fal:5}CrewMember")
    assert len(members) == 25
    assert all(len(member) == 0 and member.text is None for member in members)
    assert members[0].keys() == [
        "familyName",
        "givenNames",
        "rankOrRating",
        "nationality",
        "dateOfBirth",
        "placeOfBirth",
        "documentType",
        "documentNumber",
        "issuingState",
        "expiryDate",
    ]
    assert members[18].get("givenNames") is None
    assert [member.sourceline for member in members] == list(range(15, 40))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("crew",), KeyError),
        (("crew",), "王建国"),
        (("crew_count",), 2.0),
        (("crew", 0, "date_of_birth"), "1971-06-30"),
        (("crew", 0, "date_of_birth"), datetime(1971, 6, 30, tzinfo=UTC)),
        (("crew", 0, "date_of_birth"), date(1850, 1, 1)),
        (("crew", 1, "given_names"), 42),
        (("crew", 1, "identity_document", "document_type"), "passport"),
        (("crew", 1, "identity_document", "expiry_date"), None),
        (("crew", 1, "nationality"), "CHN"),
        (("ship", "imo_number"), 9321483),
        (("utc_offset_minutes",), 15 * 60),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: Fal5Adapter, path: tuple[str | int, ...], value: Any
) -> None:
    record = adapter.parse(_sample("valid_departure.xml")).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- strategies shared by FAL 3-6

LOCODE = pattern(r"[A-Z]{2}[A-Z2-9]{3}")
COUNTRY = pattern(r"[A-Z]{2}")
# Voyages from 2000 on and births before it: records valid by construction.
VOYAGE_INSTANT = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2098, 12, 31), timezones=st.just(UTC)
).map(lambda dt: dt.replace(microsecond=dt.microsecond // 1000 * 1000))
BIRTH_DATE = st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31))
ANY_DATE = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))

SHIP = st.fixed_dictionaries(
    {
        "name": tokens(70),
        "imo_number": st.integers(0, 999_999).map(imo_with_check_digit),
        "call_sign": pattern(r"[A-Z0-9]{2,10}"),
        "flag_state": COUNTRY,
        "gross_tonnage": optional(st.integers(0, 999_999)),
        "net_tonnage": optional(st.integers(0, 999_999)),
    }
)

VOYAGE = {
    "arrival_or_departure": st.sampled_from(["Arrival", "Departure"]),
    "ship": SHIP,
    "voyage_number": pattern(r"[A-Za-z0-9][A-Za-z0-9/.\-]{0,16}"),
    "port_of_arrival_departure": LOCODE,
    "date_time_of_arrival_departure": VOYAGE_INSTANT,
    "utc_offset_minutes": st.integers(-14 * 60, 14 * 60),
}

IDENTITY_DOCUMENT = st.fixed_dictionaries(
    {
        "document_type": st.sampled_from(
            [
                "Passport",
                "SeafarersIdentityDocument",
                "IdentityCard",
                "ResidencePermit",
                "TravelDocument",
                "Other",
            ]
        ),
        "number": pattern(r"[A-Z0-9][A-Z0-9/\-]{0,34}"),
        "issuing_state": COUNTRY,
        "expiry_date": ANY_DATE,  # an expired document is only a warning
    }
)


def with_count(
    body: st.SearchStrategy[dict[str, Any]], list_key: str, count_key: str
) -> st.SearchStrategy[dict[str, Any]]:
    """Records whose count field equals the length of their list."""
    return body.map(lambda record: {**record, count_key: len(record[list_key])})


def event(adapter: VersionedAdapter, record: dict[str, Any], received: datetime, version: int
          ) -> dict[str, Any]:
    return {"header": event_header(adapter, version, received_at=received), **record}


RECEIVED = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2098, 12, 31), timezones=st.just(UTC)
).map(lambda dt: dt.replace(microsecond=dt.microsecond // 1000 * 1000))


# ---------------------------------------------------------------- property: round trips

CREW_MEMBER = st.fixed_dictionaries(
    {
        "family_name": tokens(70),
        "given_names": optional(tokens(70)),
        "rank_or_rating": tokens(35),
        "nationality": COUNTRY,
        "date_of_birth": BIRTH_DATE,
        "place_of_birth": tokens(70),
        "identity_document": IDENTITY_DOCUMENT,
    }
)

CANONICAL_FAL5 = with_count(
    st.fixed_dictionaries(
        {
            **VOYAGE,
            "local_date_time_of_arrival_departure": st.none(),
            "last_port_of_call": optional(LOCODE),
            "crew": st.lists(CREW_MEMBER, min_size=1, max_size=8),
        }
    ),
    "crew",
    "crew_count",
)


@PROPERTY
@given(record=CANONICAL_FAL5)
def test_parse_inverts_render(adapter: Fal5Adapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    assert result.business_key.startswith(record["ship"]["imo_number"] + ":")


@PROPERTY
@given(record=CANONICAL_FAL5, received=RECEIVED, version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas,
    adapter: Fal5Adapter,
    record: dict[str, Any],
    received: datetime,
    version: int,
) -> None:
    full = event(adapter, record, received, version)
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, full))
    assert name == adapter.schema_name
    assert decoded == full
    assert adapter.parse(adapter.render(decoded)).document_version == version


def test_avro_schemas_document_every_field(schemas: AvroSchemas) -> None:
    names = [
        "px.canonical.Fal5CrewList",
        "px.canonical.CrewMember",
        "px.canonical.IdentityDocument",
        "px.canonical.IdentityDocumentType",
    ]
    for name in names:
        schema = json.loads(_avsc(name))
        assert schema.get("doc"), name
        assert all(f.get("doc") for f in schema.get("fields", [])), name


def _avsc(name: str) -> str:
    root = Path(__file__).parent.parent.parent / "message_formats" / "avro"
    return (root / f"{name}.avsc").read_text(encoding="utf-8")
