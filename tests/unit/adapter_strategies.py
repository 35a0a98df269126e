"""What the adapter tests share: hypothesis strategies for values the XSDs accept, and a
record with one value changed."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

XML_TEXT_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc", "Cn"), exclude_characters=" "
)


def tokens(max_size: int) -> st.SearchStrategy[str]:
    """Values an xs:token keeps as they are: no XML whitespace but single inner spaces."""
    words = st.lists(st.text(XML_TEXT_CHARS, min_size=1, max_size=12), min_size=1, max_size=6)
    return words.map(lambda w: " ".join(w)[:max_size].rstrip(" "))


def pattern(regex: str) -> st.SearchStrategy[str]:
    return st.from_regex(regex, fullmatch=True)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def imo_with_check_digit(first_six: int) -> str:
    digits = f"{first_six:06d}"
    check = sum(int(d) * w for d, w in zip(digits, (7, 6, 5, 4, 3, 2), strict=True)) % 10
    return f"{digits}{check}"


def broken(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `record` with the value at `path` replaced (`KeyError`: removed)."""
    changed = copy.deepcopy(record)
    target = changed
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed
