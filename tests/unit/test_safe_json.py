"""Untrusted JSON within bounds, exact numbers out and back, and the JSON Schema subset."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from message_formats import FormatError
from message_formats.safe_json import (
    JsonLimits,
    JsonSchema,
    dump_json,
    json_path,
    read_untrusted_json,
)

SMALL = JsonLimits(max_bytes=200, max_depth=3, max_values=10, max_number_chars=5)


@pytest.mark.parametrize(("data", "code"), [
    (b"{" + b" " * 200 + b"}", "JSON_TOO_LARGE"),
    (b'{"a": "\xff"}', "JSON_ENCODING_INVALID"),
    ('{"a": "\u00e9"}'.encode("utf-16"), "JSON_ENCODING_INVALID"),
    (b'{"a": "\\udc00"}', "JSON_ENCODING_INVALID"),
    (b'{"\\ud800": 1}', "JSON_ENCODING_INVALID"),
    (b'{"a": 1, "a": 2}', "JSON_DUPLICATE_KEY"),
    (b'{"a": {"b": 1, "b": 1}}', "JSON_DUPLICATE_KEY"),
    (b'{"a": 123456}', "JSON_NUMBER_TOO_LONG"),
    (b'{"a": 1.2345}', "JSON_NUMBER_TOO_LONG"),
    (b'{"a": Infinity}', "JSON_MALFORMED"),
    (b'{"a": -Infinity}', "JSON_MALFORMED"),
    (b'{"a": 1,}', "JSON_MALFORMED"),
    (b'{"a": [[[1]]]}', "JSON_TOO_DEEP"),
    (b"[" * 100 + b"]" * 100, "JSON_TOO_DEEP"),
    (b"[1,2,3,4,5,6,7,8,9,10]", "JSON_TOO_MANY_VALUES"),
])
def test_each_bound_and_rule_has_its_code(data: bytes, code: str) -> None:
    with pytest.raises(FormatError) as caught:
        read_untrusted_json(data, SMALL)
    assert caught.value.code == code


def test_the_interpreter_recursion_limit_is_a_depth_refusal_too() -> None:
    with pytest.raises(FormatError) as caught:
        read_untrusted_json(b"[" * 100_000 + b"]" * 100_000)
    assert caught.value.code == "JSON_TOO_DEEP"


def test_within_bounds_the_value_is_read_with_exact_decimals() -> None:
    value = read_untrusted_json(b'\xef\xbb\xbf{"a": [1, 2.50, -3e2], "b": {"c": null}}')
    assert value == {"a": [1, Decimal("2.50"), Decimal("-3E+2")], "b": {"c": None}}
    assert str(value["a"][1]) == "2.50"


def test_a_duplicate_key_is_named_only_when_it_looks_like_a_field_name() -> None:
    with pytest.raises(FormatError) as named:
        read_untrusted_json(b'{"carrierCode": 1, "carrierCode": 2}')
    assert "carrierCode" in named.value.message
    with pytest.raises(FormatError) as unnamed:
        read_untrusted_json(b'{"Jane Doe 1970-01-01": 1, "Jane Doe 1970-01-01": 2}')
    assert "Jane" not in unnamed.value.message


def test_the_line_of_malformed_json_is_given() -> None:
    with pytest.raises(FormatError) as caught:
        read_untrusted_json(b'{\n"a": 1\n"b": 2}')
    assert (caught.value.code, caught.value.line) == ("JSON_MALFORMED", 3)


def test_paths_name_members_and_positions() -> None:
    assert json_path(()) == "(document)"
    assert json_path(("a", 0, "b", 2)) == "a[0]/b[2]"
    assert json_path((1, "x")) == "[1]/x"


def test_a_path_names_a_key_only_when_it_looks_like_a_field_name() -> None:
    path = ("parties", 0, "Jane Doe 1970-01-01", "x" * 65)
    assert json_path(path) == "parties[0]/(a key)/(a key)"
    with pytest.raises(FormatError) as deep:
        read_untrusted_json(b'{"<b>Jane Doe</b>": [[[1]]]}', SMALL)
    assert deep.value.code == "JSON_TOO_DEEP" and "Jane" not in deep.value.message


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False, places=4,
                  min_value=-10**9, max_value=10**9),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@given(value=_JSON)
def test_dump_then_read_gives_the_value(value: Any) -> None:
    assert read_untrusted_json(dump_json(value)) == value


def test_dump_refuses_what_json_cannot_say() -> None:
    with pytest.raises(ValueError):
        dump_json({"a": Decimal("NaN")})
    with pytest.raises(TypeError):
        dump_json({"a": object()})


# ---------------------------------------------------------------- the schema subset

SCHEMA = {
    "$defs": {"Code": {"type": "string", "pattern": "^[A-Z]{2}$"}},
    "type": "object",
    "required": ["code", "n"],
    "properties": {
        "code": {"$ref": "#/$defs/Code"},
        "n": {"type": "integer", "minimum": 1, "maximum": 9},
        "w": {"type": "number", "exclusiveMinimum": 0},
        "kind": {"type": "string", "enum": ["A", "B"]},
        "day": {"type": "string", "format": "date", "maxLength": 10},
        "lines": {"type": "array", "minItems": 1, "maxItems": 2,
                  "items": {"type": "string", "minLength": 1}},
        "at": {"oneOf": [
            {"type": "object", "properties": {"u": {"type": "string"}}, "required": ["u"]},
            {"type": "object", "properties": {"t": {"type": "string"}}, "required": ["t"]}]},
        "who": {"anyOf": [{"required": ["p"]}, {"required": ["e"]}]},
    },
}
CHECKER = JsonSchema(SCHEMA, "test")
REFERENCE = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize(("document", "rule"), [
    ({"code": "AB", "n": 1}, None),
    ({"n": 1}, "code: is required"),
    ({"code": "AB", "n": True}, "n: must be of type integer"),
    ({"code": "AB", "n": 1.0}, None),
    ({"code": "AB", "n": 10}, "n: is more than 9"),
    ({"code": "AB", "n": 1, "w": 0}, "w: is not more than 0"),
    ({"code": "AB", "n": 1, "kind": "C"}, "kind: is not one of the allowed codes"),
    ({"code": "AB", "n": 1, "day": "2026-02-30"}, "day: is not a date (YYYY-MM-DD)"),
    ({"code": "AB", "n": 1, "lines": []}, "lines: needs at least 1 items"),
    ({"code": "AB", "n": 1, "lines": ["a", ""]}, "lines[1]: is shorter than 1 characters"),
    ({"code": "AB", "n": 1, "at": {"u": "x", "t": "y"}},
     "at: must match exactly one of its alternatives"),
    ({"code": "AB", "n": 1, "at": {"t": "y"}}, None),
    ({"code": "AB", "n": 1, "who": {}}, "who: must match at least one of its alternatives"),
    ({"code": "AB", "n": 1, "who": {"e": 1}}, None),
])
def test_the_subset_checks_as_json_schema_does(document: dict[str, Any], rule: str | None
                                               ) -> None:
    value = read_untrusted_json(dump_json(document))
    first = CHECKER.first_violation(value)
    assert (None if first is None else str(first)) == rule
    assert REFERENCE.is_valid(document) == (rule is None)


def test_a_final_dollar_ends_the_text_as_in_ecma_262() -> None:
    """Python's `$` also matches before a final line break, and the jsonschema package
    inherits that; JSON Schema patterns are ECMA-262 regular expressions, where it does not."""
    document = {"code": "AB\n", "n": 1}
    assert str(CHECKER.first_violation(document)) == "code: does not match its pattern"
    assert REFERENCE.is_valid(document)  # the reference's deviation, kept in view


def test_a_schema_using_keywords_outside_the_subset_is_refused(tmp_path: Path) -> None:
    (tmp_path / "wide.json").write_text('{"type": "object", "additionalProperties": false}',
                                        encoding="utf-8")
    with pytest.raises(FormatError) as caught:
        JsonSchema.load("wide", tmp_path)
    assert caught.value.code == "JSON_SCHEMA_LOAD_FAILED"
