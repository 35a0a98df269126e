"""What the adapter tests share: hypothesis strategies for values the XSDs accept, a record
with one value changed, the settings of their property tests, and an event header."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import jsonschema
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from adapters import Adapter, AdapterError
from adapters.iso6346 import with_check_digit
from message_formats import AvroSchemas, FormatError
from message_formats.safe_json import JSON_SCHEMA_DIR

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


def bounded_decimal(places: int, low: str, high: str) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=places,
                       allow_nan=False, allow_infinity=False)


# Canonical waybill parts that DCSA eBL documents (transport documents and shipping
# instructions) can state.
DCSA_CONTAINER_NUMBER = pattern(r"[A-Z]{3}[UJZ][0-9]{6}").map(with_check_digit)
DCSA_ADDRESS = st.fixed_dictionaries({
    "street": dcsa_text(70), "street_number": optional(dcsa_text(50)),
    "post_code": optional(dcsa_text(10)), "city": dcsa_text(35),
    "country_code": pattern(r"[A-Z]{2}")})
_DCSA_CODE = st.fixed_dictionaries({
    "code_list_provider": dcsa_text(100), "party_code": dcsa_text(150),
    "code_list_name": optional(dcsa_text(100))})
DCSA_CONTACT = st.fixed_dictionaries({"name": dcsa_text(35)}).flatmap(
    lambda c: st.one_of(
        st.fixed_dictionaries({"phone": dcsa_text(30), "email": st.none()}),
        st.fixed_dictionaries({"phone": optional(dcsa_text(30)),
                               "email": pattern(r"[a-z]{1,8}@[a-z]{1,8}\.example")}),
    ).map(lambda rest: {**c, **rest}))


def dcsa_party(min_codes: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "name": dcsa_text(70), "contact": st.none(), "address": optional(DCSA_ADDRESS),
        "identifying_codes": st.lists(_DCSA_CODE, min_size=min_codes, max_size=2)})


def dcsa_cargo_item(equipment: list[str], *, packaged: bool) -> st.SearchStrategy[dict[str, Any]]:
    """A cargo item in one of `equipment`; with its packages, or (not `packaged`) with or
    without them, as shipping instructions may give it."""
    packages = st.fixed_dictionaries({
        "number_of_packages": st.integers(1, 99_999_999),
        "kind_of_packages": optional(pattern(r"[A-Z0-9]{2}")),
        "package_description": dcsa_text(100)})
    unpackaged = st.just(dict.fromkeys(
        ("number_of_packages", "kind_of_packages", "package_description")))
    return st.fixed_dictionaries({
        "description": st.lists(dcsa_text(35), max_size=3).map("\n".join),
        "gross_weight_kg": bounded_decimal(3, "0.001", "999999999.999"),
        "volume_m3": optional(bounded_decimal(3, "0.001", "99999999.999")),
        "booking_reference": dcsa_text(35),
        "hs_codes": st.lists(pattern(r"[0-9]{6,10}"), min_size=1, max_size=2),
        "equipment_reference": st.sampled_from(equipment),
        "packaging": packages if packaged else packages | unpackaged,
    }).map(_with_packaging_spread)


def _with_packaging_spread(item: dict[str, Any]) -> dict[str, Any]:
    packaging = item.pop("packaging")
    return {**item, **packaging}


def json_schema_reference(name: str) -> jsonschema.Draft202012Validator:
    """The `jsonschema` package's validator of a schema file of message_formats/jsonschema."""
    schema = json.loads((JSON_SCHEMA_DIR / f"{name}.json").read_text("utf-8"))
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def assert_schema_verdicts_agree(adapter: Adapter, reference: Any, data: bytes, *,
                                 hostile: bool) -> None:
    """The adapter's schema checker and the `jsonschema` package's validator `reference`
    give the same verdict on `data` if it is JSON at all (a hostile document may be refused
    before any schema is read): the schema file means what it says."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return  # not JSON, not UTF-8, or too deep: refused before any schema is read
    reference_valid = reference.is_valid(document)
    try:
        adapter.parse(data)
    except (FormatError, AdapterError) as exc:
        if exc.code == "JSON_SCHEMA_INVALID":
            assert not reference_valid
            return
    if not hostile:
        assert reference_valid
