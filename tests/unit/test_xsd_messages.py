"""The rewriting of libxml2's XSD errors (message_formats/xsd_messages.py): a message repeats
only words of the schema, so no value of the document can come through, not even one that
imitates libxml2's wording or a message libxml2 cut short. The messages as refusals give them
are tested in test_refusal_messages.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree

from message_formats.xsd_messages import SchemaWords, describe

FAL5_XSD = Path(__file__).parents[2] / "message_formats" / "xsd" / "fal5.xsd"


@pytest.fixture(scope="module")
def words() -> SchemaWords:
    return SchemaWords.of(etree.parse(str(FAL5_XSD)).getroot())


def _entry(type_name: str, message: str, line: int = 16) -> Any:
    """What describe reads of an lxml log entry."""
    return SimpleNamespace(type_name=type_name, message=message, line=line)


def test_schema_words_are_the_names_types_and_facets_of_the_schema(words: SchemaWords) -> None:
    assert words.namespace == "urn:px:fal:5"
    assert {"CrewList", "CrewMember", "documentNumber", "dateOfBirth"} <= words.names
    assert {"DateType", "CrewListType"} <= words.types
    assert {"[A-Z]{2}", "Passport", "35"} <= words.facets


@pytest.mark.parametrize(
    ("type_name", "message", "expected"),
    [
        # cut short: what follows the last "pattern '" is no pattern of the schema
        ("SCHEMAV_CVC_PATTERN_VALID",
         "Element '{urn:px:fal:5}CrewMember', attribute 'documentNumber': [facet 'pattern'] "
         "The value 'X' is not accepted by the pattern 'KOVALENKO'.",
         "line 16: element CrewMember, attribute documentNumber: does not match the pattern "
         "of its type"),
        ("SCHEMAV_CVC_ENUMERATION_VALID",
         "Element '{urn:px:fal:5}CrewMember', attribute 'documentType': [facet 'enumeration'] "
         "The value 'X' is not an element of the set {'Passport', 'KOVALENKO'}.",
         "line 16: element CrewMember, attribute documentType: is not one of the values its "
         "type allows"),
        ("SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
         "Element '{urn:px:fal:5}CrewMember', attribute 'dateOfBirth': 'KOVALENKO' is not a "
         "valid value of the atomic type '{urn:px:fal:5}KOVALENKO'.",
         "line 16: element CrewMember, attribute dateOfBirth: is not a valid value of its type"),
        ("SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
         "Element '{urn:px:fal:5}CrewCount': 'KOVALENKO' is not a valid value of the atomic "
         "type 'xs:integer'.",
         "line 16: element CrewCount: is not a valid value of its type xs:integer"),
        ("SCHEMAV_ELEMENT_CONTENT",
         "Element '{urn:px:fal:5}KOVALENKO': This element is not expected. Expected is one of "
         "( {urn:px:fal:5}CallSign, {urn:px:fal:5}KOVALENKO ).",
         "line 16: an element the schema does not declare: is not expected here"),
        ("SCHEMAV_CVC_COMPLEX_TYPE_4",
         "Element '{urn:px:fal:5}CrewMember': The attribute 'KOVALENKO' is required but "
         "missing.",
         "line 16: element CrewMember: is missing a required attribute"),
        ("SCHEMAV_SOMETHING_NEW",
         "Element '{urn:px:fal:5}CrewMember': 'KOVALENKO' is wrong.",
         "line 16: element CrewMember: is not valid (SCHEMAV_SOMETHING_NEW)"),
        ("SCHEMAV_CVC_PATTERN_VALID", "KOVALENKO",
         "line 16: the document: does not match the pattern of its type"),
    ],
)
def test_only_words_of_the_schema_are_repeated(
    words: SchemaWords, type_name: str, message: str, expected: str
) -> None:
    described = describe(_entry(type_name, message), words)
    assert described == expected
    assert "KOVALENKO" not in described
