from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.iso6346 import (
    LETTER_VALUES,
    check_digit,
    is_valid_container_number,
    with_check_digit,
)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("CSQU3054383", True),  # the worked example of ISO 6346 (and Wikipedia)
        ("BICU1234565", True),  # the example the BIC gives for its own owner code
        ("CSQU3054384", False),
        ("CSQU3054380", False),
        ("BICU1234566", False),
        ("TGHU4012347", True),
        ("TGHU4012374", False),  # two digits swapped
        ("BMOU4311770", True),  # sum % 11 == 10: the check digit is 0
        ("csqu3054383", False),
        ("CSQA3054383", False),  # category must be U, J or Z
        ("CSQJ3054383", False),  # same digits, other category: other check digit
        ("CSQU305438", False),
        ("CSQU30543833", False),
        ("CSQU 3054383", False),
        ("ＣＳＱＵ3054383", False),
        ("CSQU３０５４３８３", False),
        ("", False),
    ],
)
def test_container_numbers(number: str, valid: bool) -> None:
    assert is_valid_container_number(number) is valid


def test_textbook_check_digit() -> None:
    assert check_digit("CSQU305438") == 3
    assert with_check_digit("CSQU305438") == "CSQU3054383"


def test_letter_values_skip_multiples_of_eleven() -> None:
    assert LETTER_VALUES["A"] == 10
    assert LETTER_VALUES["B"] == 12
    assert LETTER_VALUES["K"] == 21
    assert LETTER_VALUES["L"] == 23
    assert LETTER_VALUES["U"] == 32
    assert LETTER_VALUES["V"] == 34
    assert LETTER_VALUES["Z"] == 38
    assert set(LETTER_VALUES) == set(string.ascii_uppercase)
    assert all(value % 11 for value in LETTER_VALUES.values())
    with pytest.raises(TypeError):
        LETTER_VALUES["A"] = 11  # type: ignore[index]  # read-only on purpose


@pytest.mark.parametrize(
    "bad", ["CSQU30543", "CSQU3054383", "csqu305438", "CSQ1305438", "CSQU30543X"]
)
def test_check_digit_needs_four_letters_and_six_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        check_digit(bad)


_PREFIX = st.from_regex(r"[A-Z]{3}[UJZ][0-9]{6}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(prefix=_PREFIX, other=st.integers(0, 9))
def test_exactly_one_check_digit_is_valid(prefix: str, other: int) -> None:
    number = with_check_digit(prefix)
    assert is_valid_container_number(number)
    assert is_valid_container_number(f"{prefix}{other}") is (f"{prefix}{other}" == number)


def _reference_check_digit(prefix: str) -> int:
    """ISO 6346 spelt out the long way: the equivalent-value table written down by hand."""
    table = dict(
        zip(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            (
                10,
                12,
                13,
                14,
                15,
                16,
                17,
                18,
                19,
                20,
                21,
                23,
                24,
                25,
                26,
                27,
                28,
                29,
                30,
                31,
                32,
                34,
                35,
                36,
                37,
                38,
            ),
            strict=True,
        )
    )
    values = [table[c] for c in prefix[:4]] + [int(c) for c in prefix[4:]]
    return sum(v * 2**i for i, v in enumerate(values)) % 11 % 10


@settings(max_examples=200, deadline=None)
@given(prefix=_PREFIX)
def test_check_digit_matches_the_reference(prefix: str) -> None:
    assert check_digit(prefix) == _reference_check_digit(prefix)
