"""No personal value in a message that is kept. A refusal's message (and a warning's) goes
into the signed receipt, the sealed trail (never erased), the dead letter and the logs, so
it names the field and the rule broken, never the value: not for XSD errors, not for
libxml2's well-formedness errors, not for the adapters' business rules. The rewriting of XSD
errors itself is tested in test_xsd_messages.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters import AdapterError, Fal5Adapter, Fal6Adapter
from adapters.registry import builtin_adapters
from adapters.toolkit import XmlAdapter
from message_formats import FormatError, SafeXmlParser, XsdStore

DATA = Path(__file__).parent.parent / "data"
FAL5 = (DATA / "fal5" / "valid_arrival.xml").read_bytes()


def _xsd_refusal(old: bytes, new: bytes) -> FormatError:
    assert old in FAL5
    root = SafeXmlParser().parse(FAL5.replace(old, new, 1))
    with pytest.raises(FormatError) as caught:
        XsdStore().validate("fal5", root)
    assert caught.value.code == "XSD_INVALID"
    return caught.value


# ---------------------------------------------------------------- XSD errors


@pytest.mark.parametrize(
    ("old", "new", "expected", "value"),
    [
        (b'dateOfBirth="1968-05-14"', b'dateOfBirth="1968-13-14"',
         "line 16: element CrewMember, attribute dateOfBirth: is not a valid value of its "
         "type DateType", "1968-13-14"),
        (b'dateOfBirth="1968-05-14"', b'dateOfBirth="WANG JIANGUO"',
         "line 16: element CrewMember, attribute dateOfBirth: is not a valid value of its "
         "type DateType", "WANG JIANGUO"),
        (b'documentNumber="EJ4821937"', b'documentNumber="ej 4821937"',
         "line 16: element CrewMember, attribute documentNumber: does not match the pattern "
         "'[A-Z0-9][A-Z0-9/\\-]*'", "ej 4821937"),
        (b'documentNumber="EJ4821937"', b'documentNumber="EJ4821937EJ4821937EJ4821937EJ4821937"',
         "line 16: element CrewMember, attribute documentNumber: is longer than the maximum "
         "length 35", "EJ4821937"),
        (b'familyName="\xe7\x8e\x8b"', b'familyName=""',
         "line 16: element CrewMember, attribute familyName: is shorter than the minimum "
         "length 1", None),
        (b'documentType="Passport"', b'documentType="Passeport"',
         "line 16: element CrewMember, attribute documentType: is not one of the values its "
         "type allows: 'Passport', 'SeafarersIdentityDocument', 'IdentityCard', "
         "'ResidencePermit', 'TravelDocument', 'Other'", "Passeport"),
        (b'nationality="CN"', b'nationality="CHN"',
         "line 16: element CrewMember, attribute nationality: does not match the pattern "
         "'[A-Z]{2}'", "CHN"),
        (b"<CrewCount>25</CrewCount>", b"<CrewCount>-25</CrewCount>",
         "line 15: element CrewCount: is less than the minimum 0", "-25"),
        (b"<ImoNumber>9456783</ImoNumber>", b"<ImoNumber>945678</ImoNumber>",
         "line 7: element ImoNumber: does not match the pattern '[0-9]{7}'", "945678"),
        (b' documentType="Passport"', b"",
         "line 16: element CrewMember: is missing the required attribute documentType", None),
        (b'familyName="\xe7\x8e\x8b"', b'familyName="x" passengerOf="KOVALENKO"',
         "line 16: element CrewMember, an attribute the schema does not declare: is not "
         "allowed here", "KOVALENKO"),
        (b"<CallSign>", b"<Remark>KOVALENKO</Remark><CallSign>",
         "line 8: an element the schema does not declare: is not expected here; expected "
         "CallSign", "KOVALENKO"),
        (b"<Name>PX EASTERN DAWN</Name>", b"",
         "line 7: element ImoNumber: is not expected here; expected Name", None),
        (b'expiryDate="2031-08-19"/>', b'expiryDate="2031-08-19">KOVALENKO</CrewMember>',
         "line 16: element CrewMember: must be empty: no text and no child elements",
         "KOVALENKO"),
        (b'xmlns="urn:px:fal:5"', b'xmlns="urn:px:fal:5:KOVALENKO"',
         "line 3: an element the schema does not declare: is not a root element the schema "
         "declares (check the root element's name and namespace)", "KOVALENKO"),
    ],
)
def test_xsd_errors_name_the_field_and_rule_not_the_value(
    old: bytes, new: bytes, expected: str, value: str | None
) -> None:
    refusal = _xsd_refusal(old, new)
    assert refusal.message.startswith(f"not valid against fal5.xsd: {expected}")
    if value is not None:
        assert value not in refusal.message


def test_a_missing_child_is_named_with_what_the_schema_expects() -> None:
    data = (DATA / "fal4" / "member_without_effects.xml").read_bytes()
    with pytest.raises(FormatError) as caught:
        XsdStore().validate("fal4", SafeXmlParser().parse(data))
    assert caught.value.message == (
        "not valid against fal4.xsd: line 64: element CrewMember: is missing a child element; "
        "expected Effect"
    )
    assert caught.value.line == 64


def test_the_lines_and_the_count_of_further_errors_stay() -> None:
    refusal = _xsd_refusal(b' documentType="Passport" documentNumber="EJ4821937" '
                           b'issuingState="CN" expiryDate="2031-08-19"', b"")
    assert refusal.line == 16
    assert refusal.message.count("line 16: element CrewMember: is missing the required "
                                 "attribute ") == 3
    assert refusal.message.endswith("; and 1 more")


def test_a_value_that_imitates_libxml2_is_not_repeated() -> None:
    # libxml2 quotes the value before the pattern; the pattern named is the schema's.
    forged = b"documentNumber=\"X' is not accepted by the pattern 'KOVALENKO\""
    refusal = _xsd_refusal(b'documentNumber="EJ4821937"', forged)
    assert "KOVALENKO" not in refusal.message
    assert "does not match the pattern '[A-Z0-9][A-Z0-9/\\-]*'" in refusal.message


# ---------------------------------------------------------------- well-formedness

SECRETS = ("KOVALENKO", "Oleksandr", "FX318265", "1986-02-27")
PERSON = " ".join(SECRETS)
# A document, and the refusal's code, line and message: libxml2's rule and the names of tags
# stay, and so do the few characters of markup it quotes; the document's text goes.
MALFORMED = [
    (f'<?xml version="1.0"?>\n<!-- FAL 5: {PERSON} -- checked -->\n<a/>', "XML_MALFORMED", 2,
     "not well-formed XML: Double hyphen within comment, line 2, column 53"),
    (f'<?xml version="1.0"?>\n<a>\n<!-- {PERSON} </a>', "XML_MALFORMED", 3,
     "not well-formed XML: Comment not terminated, line 3, column 50"),
    (f"<a>\n<![CDATA[{PERSON}", "XML_MALFORMED", 2,
     "not well-formed XML: CData section not finished, line 2, column 49"),
    (f'<a xmlns="urn:{PERSON}"/>', "XML_MALFORMED", 1,
     "not well-formed XML: a namespace name (xmlns) is not a valid URI, line 1, column 55"),
    (f'<a xmlns:p="urn:x:{SECRETS[0]}" xmlns:q="urn:x:{SECRETS[0]}" p:n="1" q:n="2"/>',
     "XML_MALFORMED", 1, "not well-formed XML: Namespaced attribute redefined, line 1, column 71"),
    (f"<a>{SECRETS[0]}&{SECRETS[1]};</a>", "XML_MALFORMED", 1,
     "not well-formed XML: Entity not defined (write & in text as &amp;), line 1, column 24"),
    (f'<?xml version="1.0" encoding="{PERSON}"?><a/>', "XML_ENCODING_INVALID", 1,
     "unknown encoding a text that is no encoding name declared"),
    (f'<a b="{PERSON} < 2"/>', "XML_MALFORMED", 1,
     "not well-formed XML: Unescaped '<' not allowed in attributes values, line 1, column 47"),
    (f"<a>{PERSON} ]]> </a>", "XML_MALFORMED", 1,
     "not well-formed XML: Sequence ']]>' not allowed in content, line 1, column 44"),
    (f"<Ship>\n{PERSON}\n</Shp>", "XML_MALFORMED", 3,
     "not well-formed XML: Opening and ending tag mismatch: Ship line 1 and Shp, line 3, "
     "column 7"),
]


def test_well_formedness_messages_keep_the_rule_and_tag_names_not_the_text() -> None:
    wrong = []
    for data, code, line, message in MALFORMED:
        with pytest.raises(FormatError) as caught:
            SafeXmlParser().parse(data.encode())
        if (caught.value.code, caught.value.line, caught.value.message) != (code, line, message):
            wrong.append((data, caught.value.code, caught.value.line, caught.value.message))
    assert wrong == []


def test_the_comment_of_a_crew_list_is_not_repeated() -> None:
    data = FAL5.replace(b"<!-- FAL 5 Crew List:", b"<!-- FAL 5 Crew List -- KOVALENKO FX318265:")
    with pytest.raises(FormatError) as caught:
        SafeXmlParser().parse(data)
    assert caught.value.message == (
        "not well-formed XML: Double hyphen within comment, line 2, column 22"
    )
    assert caught.value.line == 2


# ---------------------------------------------------------------- every adapter's refusals

ADAPTERS = {adapter.format_id: adapter
            for adapter in builtin_adapters(XsdStore(), SafeXmlParser())}
# Each directory of samples (a format family keeps one per document type below its own,
# tests/data/paxlst/fal5/), by its path under tests/data.
EXPECTED = {path.parent.relative_to(DATA).as_posix(): json.loads(path.read_text())
            for path in sorted({*DATA.glob("*/expected.json"), *DATA.glob("*/*/expected.json")})}
REFUSED = [(directory, name, outcome["code"])
           for directory, expected in EXPECTED.items() if "_adapter" in expected
           for name, outcome in expected.items()
           if not name.startswith("_") and "code" in outcome]
_STEP = r"(?:[A-Z][A-Za-z]*(?:\[[0-9]+\])?|@[a-z][A-Za-z]*)"
FIELD_PATH = re.compile(rf"{_STEP}(?:/{_STEP})*: ")
# A JSON document's fields are its members, by name (mostly lowerCamelCase) and position.
_MEMBER = r"[A-Za-z]+(?:\[[0-9]+\])?"
JSON_FIELD_PATH = re.compile(rf"{_MEMBER}(?:/{_MEMBER})*: ")


def _json_texts(data: bytes) -> set[str]:
    """Every string and number of a JSON document, as text."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return set()
    texts: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None and not isinstance(item, bool):
            texts.add(str(item))
    return texts
# How a UN/EDIFACT adapter names its field: the message and segment (adapters/paxlst.py).
SEGMENT_PLACE = re.compile(
    r"[A-Z]{6} message [0-9]+, segment [0-9]+ \([A-Z0-9]{3}\): "
    # ... or the segment with its qualifier, its position and the data element (adapters/smdg.py)
    r"|[A-Z0-9]{3}(?:\+[A-Z0-9]+)? \(segment [0-9]+\)(?: C[0-9]{3} [0-9]{4})?: "
    # ... or the segment, the data element or the segment missing, then its position
    # (adapters/edi_text.py)
    r"|[A-Z0-9]{3}(?: (?:C[0-9]{3} )?[0-9]{4}| [A-Z0-9]{3}\+[A-Z0-9]+)? \(segment [0-9]+\): ")
_ENVELOPE = frozenset({"UNA", "UNB", "UNG", "UNH", "UNT", "UNE", "UNZ"})


def _texts(data: bytes) -> set[str]:
    """Every text and attribute value of a well-formed document, whitespace collapsed (of
    an EDIFACT interchange, the values of its segments)."""
    if data.lstrip()[:3] in (b"UNA", b"UNB"):
        return _edifact_texts(data.decode("utf-8", errors="replace").lstrip())
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return set()
    values = [*root.itertext(), *(v for element in root.iter() for v in element.values())]
    return {" ".join(value.split()) for value in values} - {""}


def _edifact_texts(text: str) -> set[str]:
    """The component values of an interchange's segments (the envelopes', which carry no
    person, left out), split at the separators its UNA declares or the default ones."""
    una, text = (text[:9], text[9:]) if text.startswith("UNA") else ("UNA:+.? '", text)
    component, element, terminator = una[3], una[4], una[8]
    values: set[str] = set()
    for segment in text.split(terminator):
        tag, *elements = segment.strip().split(element)
        if tag not in _ENVELOPE:
            values.update(c for e in elements[1:] for c in e.split(component))
    return {" ".join(value.split()) for value in values} - {""}


def _schema_values(document_type: str) -> frozenset[str]:
    """The enumeration values of the format's XSD, if it has one: codes a rule may name (a
    FILE step)."""
    xsd = Path(__file__).parents[2] / "message_formats" / "xsd" / f"{document_type}.xsd"
    if not xsd.is_file():
        return frozenset()
    return frozenset(e.get("value", "") for e in etree.parse(str(xsd)).iter(
        "{http://www.w3.org/2001/XMLSchema}enumeration"))


def _refusal(parse: Callable[[bytes], object], data: bytes) -> FormatError | AdapterError:
    try:
        parse(data)
    except (FormatError, AdapterError) as exc:
        return exc
    raise AssertionError("the document was accepted")


def _problems(directory: str, name: str, code: str) -> list[str]:
    """`directory` is the folder of the samples (the document type's, or the format's
    where several formats carry one document type)."""
    data = (DATA / directory / name).read_bytes()
    adapter = ADAPTERS[EXPECTED[directory]["_adapter"]["format_id"]]
    refusal = _refusal(adapter.parse, data)
    message = refusal.message
    is_json = adapter.media_type == "application/json"
    problems = [f"code {refusal.code}"] if refusal.code != code else []
    texts = _json_texts(data) if is_json else _texts(data)
    problems += [f"repeats {value!r}" for value in texts - _schema_values(adapter.document_type)
                 if len(value) >= 4 and value in message]
    named = (JSON_FIELD_PATH.match(message) if is_json
             else FIELD_PATH.match(message) or SEGMENT_PLACE.match(message))
    if code.startswith("RULE_") and not named:
        problems.append("names no field")
    return [f"{directory}/{name}: {problem}: {message}" for problem in problems]


def test_refusals_of_the_samples_repeat_no_value_and_rules_name_their_field() -> None:
    assert len(REFUSED) > 80
    assert [problem for case in REFUSED for problem in _problems(*case)] == []


# ---------------------------------------------------------------- property: crew lists


@dataclass(frozen=True, slots=True)
class Form:
    """A person list (FAL 5 crew, FAL 6 passengers) and what the property needs of it."""

    adapter: XmlAdapter
    sample: str
    person: str  # the person element's tag
    voyage_date: date  # the port-local date of arrival of the sample
    imo_number: str

    @property
    def first_person(self) -> str:
        found = re.search(rf"<{self.person} [^\n]*/>", self.sample)
        assert found is not None
        return found.group()


FORMS = {
    "fal5": Form(Fal5Adapter(), FAL5.decode(), "CrewMember", date(2026, 3, 15), "9456783"),
    "fal6": Form(Fal6Adapter(), (DATA / "fal6" / "valid_arrival.xml").read_text("utf-8"),
                 "Passenger", date(2026, 3, 20), "9702352"),
}

# Personal values long enough, and written in letters (capitals, CJK), that no fixed text of
# a message holds one by chance.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZÉÖŁ王李张陈刘洋"
NAME = st.text(st.sampled_from(LETTERS), min_size=6, max_size=20)
DOCUMENT_NUMBER = st.from_regex(r"[A-Z0-9]{6,12}", fullmatch=True)
ISO_DATE = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)).map(date.isoformat)
NOT_A_DATE = st.one_of(
    st.builds("{:04d}-{:02d}-{:02d}".format, st.integers(1900, 2099), st.integers(13, 99),
              st.integers(1, 28)),
    st.builds("{:04d}-02-{:02d}".format, st.integers(1900, 2099), st.integers(30, 99)),
    NAME,
)


@dataclass(frozen=True, slots=True)
class Person:
    family_name: str
    given_names: str
    place_of_birth: str
    document_number: str
    date_of_birth: str
    expiry_date: str

    def attributes(self) -> dict[str, str]:
        return {"familyName": self.family_name, "givenNames": self.given_names,
                "placeOfBirth": self.place_of_birth, "documentNumber": self.document_number,
                "dateOfBirth": self.date_of_birth, "expiryDate": self.expiry_date}


PERSONS = st.builds(Person, NAME, NAME, NAME, DOCUMENT_NUMBER,
                    st.dates(date(1900, 1, 1), date(2008, 12, 31)).map(date.isoformat),
                    ISO_DATE)


def _person_line(form: Form, attributes: dict[str, str]) -> str:
    element = etree.fromstring(form.first_person)
    for name, value in attributes.items():
        element.set(name, value)
    return etree.tostring(element, encoding="unicode")


def _list(form: Form, attributes: dict[str, str], *, before: str = "", end: str | None = None,
          text: tuple[str, str] | None = None) -> str:
    """The form's sample with its first person made of `attributes`, `before` it, the root's
    end tag replaced by `end`, and `text` (old, new) replaced once."""
    line = _person_line(form, attributes)
    if text is not None:
        line = line.replace(*text, 1)
    document = form.sample.replace(form.first_person, before + line, 1)
    if end is not None:
        document = document[: document.rindex("</")] + end
    return document


# A list that breaks one rule with the person in it, the code expected, and the values
# written besides the person's that a message must not repeat.
Violation = tuple[str, str, tuple[str, ...]]
Draw = Callable[[st.SearchStrategy[Any]], Any]


def _with(form: Form, person: Person, attribute: str, value: str) -> Violation:
    """The person with one attribute the XSD refuses."""
    return _list(form, {**person.attributes(), attribute: value}), "XSD_INVALID", (value,)


def _number_pattern(form: Form, person: Person, draw: Draw) -> Violation:
    value = f"{person.document_number.lower()} {person.family_name}"
    return _with(form, person, "documentNumber", value)


def _number_too_long(form: Form, person: Person, draw: Draw) -> Violation:
    value = person.document_number * (36 // len(person.document_number) + 1)
    return _with(form, person, "documentNumber", value)


def _birth_no_date(form: Form, person: Person, draw: Draw) -> Violation:
    return _with(form, person, "dateOfBirth", draw(NOT_A_DATE))


def _expiry_no_date(form: Form, person: Person, draw: Draw) -> Violation:
    return _with(form, person, "expiryDate", draw(NOT_A_DATE))


def _name_too_long(form: Form, person: Person, draw: Draw) -> Violation:
    value = person.family_name * (71 // len(person.family_name) + 1)
    return _with(form, person, "familyName", value)


def _comment(form: Form, person: Person, draw: Draw) -> Violation:
    comment = (f"<!-- {person.family_name} {person.given_names} -- {person.document_number} "
               f"{person.date_of_birth} -->\n  ")
    return _list(form, person.attributes(), before=comment), "XML_MALFORMED", ()


def _cdata(form: Form, person: Person, draw: Draw) -> Violation:
    end = f"<![CDATA[{person.family_name} {person.document_number} {person.date_of_birth}"
    return _list(form, person.attributes(), end=end), "XML_MALFORMED", ()


def _ampersand(form: Form, person: Person, draw: Draw) -> Violation:
    text = (f'familyName="{person.family_name}"',
            f'familyName="{person.family_name}&{person.given_names};"')
    return _list(form, person.attributes(), text=text), "XML_MALFORMED", ()


def _born_after_voyage(form: Form, person: Person, draw: Draw) -> Violation:
    born = (form.voyage_date + timedelta(days=draw(st.integers(1, 20_000)))).isoformat()
    document = _list(form, {**person.attributes(), "dateOfBirth": born})
    return document, "RULE_BIRTH_AFTER_VOYAGE", (born,)


def _imo_check_digit(form: Form, person: Person, draw: Draw) -> Violation:
    wrong = form.imo_number[:6] + str((int(form.imo_number[6]) + 1) % 10)
    document = _list(form, person.attributes()).replace(form.imo_number, wrong, 1)
    return document, "RULE_IMO_CHECK_DIGIT", (wrong,)


VIOLATIONS: dict[str, Callable[[Form, Person, Draw], Violation]] = {
    "document number pattern": _number_pattern,
    "document number too long": _number_too_long,
    "date of birth no date": _birth_no_date,
    "expiry date no date": _expiry_no_date,
    "family name too long": _name_too_long,
    "comment with a double hyphen": _comment,
    "unfinished CDATA": _cdata,
    "ampersand in a name": _ampersand,
    "born after the voyage": _born_after_voyage,
    "IMO check digit": _imo_check_digit,
}


@pytest.mark.parametrize("form", list(FORMS))
@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(sorted(VIOLATIONS)), person=PERSONS, data=st.data())
def test_a_refused_person_list_repeats_no_personal_value(
    form: str, kind: str, person: Person, data: st.DataObject
) -> None:
    chosen = FORMS[form]
    document, code, written = VIOLATIONS[kind](chosen, person, data.draw)
    refusal = _refusal(chosen.adapter.parse, document.encode("utf-8"))
    assert refusal.code == code
    values = (*person.attributes().values(), *written, chosen.voyage_date.isoformat(),
              chosen.imo_number)
    said = str(refusal)
    assert [value for value in values if value in said] == []
