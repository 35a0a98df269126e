"""What the adapter tests share: hypothesis strategies for values the XSDs accept, a record
with one value changed, the settings of their property tests, and an event header."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from adapters import Adapter
from message_formats import AvroSchemas

# The adapter fixtures are function-scoped, and the adapters hold no state between examples.
PROPERTY = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
RECEIVED_AT = datetime(2026, 3, 15, 1, 31, 2, 125_000, tzinfo=UTC)

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


def warning_codes(warnings: tuple[str, ...]) -> list[str]:
    """The codes of a parse result's warnings, without their texts."""
    return [warning.split(":", 1)[0] for warning in warnings]


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


@runtime_checkable
class VersionedAdapter(Adapter, Protocol):
    """An adapter that names its canonical schema's version, as the built-ins do."""

    @property
    def schema_version(self) -> int: ...


def assert_survives_avro(schemas: AvroSchemas, adapter: VersionedAdapter,
                         record: dict[str, Any], version: int) -> None:
    """The record, as an event of `version`, decodes from Avro as it was encoded, and what
    decodes renders and parses back to the record."""
    event = {"header": event_header(adapter, version), **record}
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, event))
    assert (name, decoded) == (adapter.schema_name, event)
    assert adapter.parse(adapter.render(decoded)).record == record


def event_header(adapter: VersionedAdapter, version: int, *, received_at: datetime = RECEIVED_AT
                 ) -> dict[str, Any]:
    """A px.canonical.Header for an event of `adapter`'s document type."""
    return {
        "event_id": "01890a5d-ac96-774b-bcce-b302099a8057",
        "document_type": adapter.document_type,
        "format_id": adapter.format_id,
        "schema_version": adapter.schema_version,
        "sender": "cn.customs.sh",
        "business_key": "k",
        "document_version": version,
        "received_at": received_at,
        "digest_sm3": "0" * 64,
        "signature_key_id": None,
    }


# Characters a DCSA text keeps as it is: letters, digits and punctuation with no white space
# of any kind at either end (DCSA's pattern ^\S(?:.*\S)?$ counts U+00A0 and its kin as space).
_DCSA_WORD = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P")), min_size=1, max_size=10)


def dcsa_text(max_size: int) -> st.SearchStrategy[str]:
    """Texts DCSA's "^\\S(?:.*\\S)?$" patterns accept, of at most `max_size` characters."""
    words = st.lists(_DCSA_WORD, min_size=1, max_size=5)
    return words.map(lambda w: " ".join(w)[:max_size].rstrip(" ")).filter(bool)
