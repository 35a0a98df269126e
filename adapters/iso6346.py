"""ISO 6346 freight container identification: a three-letter owner code, an equipment
category identifier (U freight container, J detachable equipment, Z trailer or chassis), a
six-digit serial number and a check digit, e.g. CSQU3054383.

The check digit catches most mistyped container numbers, the commonest error on cargo
documents, so the adapters of cargo documents verify it as a business rule."""

from __future__ import annotations

import re
import string
from types import MappingProxyType

_CONTAINER_NUMBER = re.compile(r"[A-Z]{3}[UJZ][0-9]{7}")
_CHECKED_PART = re.compile(r"[A-Z]{4}[0-9]{6}")


def _letter_values() -> dict[str, int]:
    """A=10, B=12, ... Z=38: consecutive numbers from 10 that skip the multiples of 11 (11,
    22, 33), so that no letter is worth the modulus."""
    values: dict[str, int] = {}
    value = 10
    for letter in string.ascii_uppercase:
        if value % 11 == 0:
            value += 1
        values[letter] = value
        value += 1
    return values


LETTER_VALUES = MappingProxyType(_letter_values())


def check_digit(owner_category_serial: str) -> int:
    """The check digit of the first ten characters (four letters, six digits): each
    character's value weighted by 2**position, the sum modulo 11, then modulo 10 (a
    remainder of 10 gives 0; ISO 6346 advises owners not to issue such serials)."""
    if _CHECKED_PART.fullmatch(owner_category_serial) is None:
        raise ValueError(
            f"expected four capital letters and six digits, not {owner_category_serial!r}"
        )
    total = sum(
        (LETTER_VALUES[char] if char.isalpha() else int(char)) << position
        for position, char in enumerate(owner_category_serial)
    )
    return total % 11 % 10


def is_valid_container_number(number: str) -> bool:
    """An ISO 6346 container number (owner code, category U/J/Z, serial, check digit) whose
    check digit is right."""
    if _CONTAINER_NUMBER.fullmatch(number) is None:
        return False
    return check_digit(number[:10]) == int(number[10])


def with_check_digit(owner_category_serial: str) -> str:
    """The full eleven-character container number for the first ten characters."""
    return f"{owner_category_serial}{check_digit(owner_category_serial)}"
