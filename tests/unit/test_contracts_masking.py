from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import ContractError
from contracts.masking import MASK_KINDS, MaskRule
from crypto import hmac_sm3

KEY = b"gateway-mask-key-2026"
OTHER_KEY = b"gateway-mask-key-2027"
PARTIAL_3_2 = MaskRule.parse({"rule": "partial", "keep_start": 3, "keep_end": 2},
                             path="crew[].identity_document_number")


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["drop", "pseudonym", "year"])
def test_a_rule_by_name(name: str) -> None:
    assert MaskRule.parse(name, path="x") == MaskRule(name)
    assert MaskRule.parse({"rule": name}, path="x") == MaskRule(name)


def test_partial_from_a_table() -> None:
    assert MaskRule("partial", keep_start=3, keep_end=2) == PARTIAL_3_2
    assert str(PARTIAL_3_2) == "partial(keep_start=3, keep_end=2)"
    assert str(MaskRule("drop")) == "drop"
    assert MaskRule("drop").drops and not PARTIAL_3_2.drops
    assert {"drop", "pseudonym", "partial", "year"} == MASK_KINDS


@pytest.mark.parametrize(("spec", "fragment"), [
    ("hash", "unknown rule 'hash'"),
    ("partial", "partial needs its counts"),
    ({"rule": "partial", "keep_start": 3}, "partial needs keep_end"),
    ({"rule": "partial"}, "partial needs keep_end, keep_start"),
    ({"rule": "partial", "keep_start": -1, "keep_end": 2}, "keep_start must be a whole number"),
    ({"rule": "partial", "keep_start": 1, "keep_end": "2"}, "keep_end must be a whole number"),
    ({"rule": "partial", "keep_start": True, "keep_end": 2}, "keep_start must be a whole"),
    ({"rule": "partial", "keep_start": 1.5, "keep_end": 2}, "keep_start must be a whole"),
    ({"rule": "partial", "keep_start": 1, "keep_end": 2, "fill": "#"}, "partial takes no fill"),
    ({"rule": "drop", "keep_start": 1}, "drop takes no keep_start"),
    ({"keep_start": 1}, "'rule' must be one of"),
    ({"rule": "shuffle"}, "'rule' must be one of"),
    ({"rule": 3}, "'rule' must be one of"),
    (3, "must be a rule name or a table"),
    (None, "must be a rule name or a table"),
    (["drop"], "must be a rule name or a table"),
])
def test_bad_masks_are_contract_errors_naming_the_field(spec: object, fragment: str) -> None:
    with pytest.raises(ContractError) as caught:
        MaskRule.parse(spec, path="crew[].identity_document_number")
    assert caught.value.code == "CONTRACT_BAD_MASK"
    assert fragment in caught.value.message
    assert "crew[].identity_document_number" in caught.value.message


def test_a_rule_checks_itself_when_built_directly() -> None:
    with pytest.raises(ContractError, match="unknown mask rule"):
        MaskRule("hash")
    with pytest.raises(ContractError, match="only the partial rule keeps characters"):
        MaskRule("year", keep_start=2)


# --- partial ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("E12345678", "E12****78"),
    ("E123456", "E12**56"),
    ("E12345", "E12*45"),  # K + L + 1 characters: one star
    ("E1234", "*****"),  # K + L characters or fewer: all stars
    ("E12", "***"),
    ("", ""),
    (123456789, "123****89"),  # a number is masked as its text
])
def test_partial_keeps_the_ends(value: Any, expected: str) -> None:
    assert PARTIAL_3_2.apply(value, KEY) == expected


def test_partial_with_nothing_kept_at_one_end() -> None:
    assert MaskRule("partial", keep_start=0, keep_end=4).apply("6222021234567890", KEY) == (
        "************7890")
    assert MaskRule("partial", keep_start=2, keep_end=0).apply("张伟明", KEY) == "张伟*"


@given(st.text(max_size=40), st.integers(0, 6), st.integers(0, 6))
def test_partial_keeps_length_and_never_the_whole_value(text: str, start: int,
                                                        end: int) -> None:
    masked = MaskRule("partial", keep_start=start, keep_end=end).apply(text, KEY)
    assert len(masked) == len(text)
    if len(text) <= start + end:
        assert masked == "*" * len(text)
    else:
        assert masked[:start] == text[:start]
        assert masked[len(text) - end :] == text[len(text) - end :]
        assert set(masked[start : len(text) - end]) == {"*"}
        assert masked != text or set(text[start : len(text) - end]) == {"*"}


# --- pseudonym ----------------------------------------------------------------------------


def test_a_pseudonym_is_a_truncated_keyed_hmac_sm3() -> None:
    rule = MaskRule("pseudonym")
    expected = hmac_sm3(KEY, b"E12345678").hex()[:32]
    assert rule.apply("E12345678", KEY) == expected
    assert re.fullmatch(r"[0-9a-f]{32}", expected)


def test_a_pseudonym_is_stable_under_one_key_and_unrelated_under_another() -> None:
    rule = MaskRule("pseudonym")
    assert rule.apply("E12345678", KEY) == rule.apply("E12345678", KEY)
    assert rule.apply("E12345678", KEY) != rule.apply("E12345678", OTHER_KEY)
    assert rule.apply("E12345678", KEY) != rule.apply("E12345679", KEY)


@given(st.text(max_size=30), st.text(max_size=30))
def test_distinct_values_get_distinct_pseudonyms(first: str, second: str) -> None:
    rule = MaskRule("pseudonym")
    assert (rule.apply(first, KEY) == rule.apply(second, KEY)) is (first == second)


def test_pseudonyms_of_other_scalars_use_their_text() -> None:
    rule = MaskRule("pseudonym")
    assert rule.apply(9811000, KEY) == rule.apply("9811000", KEY)
    assert rule.apply(date(1987, 3, 4), KEY) == rule.apply("1987-03-04", KEY)
    assert rule.apply(True, KEY) == rule.apply("true", KEY)
    assert rule.apply(Decimal("1.50"), KEY) == rule.apply("1.50", KEY)
    assert rule.apply(b"\x01\x02", KEY) == hmac_sm3(KEY, b"\x01\x02").hex()[:32]


# --- year ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (date(1987, 3, 4), "1987"),
    (datetime(1987, 12, 31, 23, 59, tzinfo=UTC), "1987"),
    (datetime(2001, 1, 1), "2001"),
    ("1987-03-04", "1987"),
    ("1987-03-04T10:00:00Z", "1987"),
    ("born in 1987", None),  # cannot tell: fail closed
    (1987, None),
])
def test_year(value: Any, expected: str | None) -> None:
    assert MaskRule("year").apply(value, KEY) == expected


# --- null, arrays, fail closed ------------------------------------------------------------


@pytest.mark.parametrize("rule", [MaskRule("drop"), MaskRule("pseudonym"), PARTIAL_3_2,
                                  MaskRule("year")])
def test_null_stays_null(rule: MaskRule) -> None:
    assert rule.apply(None, KEY) is None


def test_an_array_is_masked_element_by_element() -> None:
    assert PARTIAL_3_2.apply(["E12345678", None, "AB"], KEY) == ["E12****78", None, "**"]
    assert MaskRule("year").apply((date(1990, 1, 1), date(1991, 1, 1)), KEY) == ["1990",
                                                                                  "1991"]


@pytest.mark.parametrize("rule", [MaskRule("pseudonym"), PARTIAL_3_2, MaskRule("year")])
def test_a_value_a_rule_cannot_mask_becomes_null(rule: MaskRule) -> None:
    assert rule.apply({"name": "EVER GIVEN"}, KEY) is None
    assert rule.apply(object(), KEY) is None


def test_drop_gives_null_when_applied_directly() -> None:
    assert MaskRule("drop").apply("E12345678", KEY) is None
