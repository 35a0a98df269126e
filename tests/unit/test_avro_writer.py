"""The schema-compiled Avro writer (message_formats/_avro_writer.py) against fastavro: the same
bytes for every value it takes, and fastavro's own outcome (bytes or error) for every value it
leaves, for every schema of the store."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from message_formats import AvroSchemas, FormatError
from message_formats._avro_writer import compile_writer, generate_source
from tests.unit.adapter_strategies import broken

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
ZONES = (UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5, minutes=30)))
FAL5 = "px.canonical.Fal5CrewList"
SCHEMAS = AvroSchemas()
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# ---------------------------------------------------------------- values of a schema


def values(schema: Any, named: dict[str, Any], canonical: bool = False) -> st.SearchStrategy[Any]:
    """Values fastavro encodes under schema. canonical: only the forms it decodes back to an
    equal value (all fields present, date objects, aware datetimes to the unit, ...)."""
    if isinstance(schema, list):
        return st.one_of(*(values(branch, named, canonical) for branch in schema))
    if isinstance(schema, str):
        if schema in named:
            return values(named[schema], named, canonical)
        return values({"type": schema}, named, canonical)
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "date":
        dates = st.dates()
        return dates if canonical else dates | st.integers(INT_MIN, INT_MAX)
    if logical in ("timestamp-millis", "timestamp-micros"):
        return _timestamps(logical, canonical)
    if logical == "decimal":
        return _decimals(schema["precision"], schema.get("scale", 0), canonical)
    simple = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(INT_MIN, INT_MAX),
        "long": st.integers(LONG_MIN, LONG_MAX),
        "double": st.floats(allow_nan=not canonical),  # NaN never equals itself
        "string": st.text(max_size=12),
        "bytes": st.binary(max_size=12),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "array":
        return st.lists(values(schema["items"], named, canonical), max_size=2)
    if kind == "map":
        return st.dictionaries(st.text(max_size=4), values(schema["values"], named, canonical),
                               max_size=2)
    assert kind == "record", kind
    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for field in schema["fields"]:
        strategy = values(field["type"], named, canonical)
        (optional if "default" in field and not canonical else required)[field["name"]] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def _timestamps(logical: str, canonical: bool) -> st.SearchStrategy[Any]:
    unit = 1000 if logical == "timestamp-millis" else 1
    moments = st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(ZONES),
    )
    if canonical:
        return moments.map(lambda t: t.replace(microsecond=t.microsecond // unit * unit))
    return moments | st.integers(LONG_MIN, LONG_MAX)


def _decimals(precision: int, scale: int, canonical: bool) -> st.SearchStrategy[Decimal]:
    unscaled = st.integers(-(10**precision) + 1, 10**precision - 1)
    places = st.just(scale) if canonical else st.integers(0, scale)
    return st.builds(lambda n, k: Decimal(n).scaleb(-k), unscaled, places)


def named_of(name: str) -> dict[str, Any]:
    return SCHEMAS.schema(name).get("__named_schemas", {})


# Each schema's strategies, built once: one built afresh for every example is validated
# afresh, which costs more than drawing from it.
VALUES = {name: values(SCHEMAS.schema(name), named_of(name)) for name in SCHEMAS.names()}
CANONICAL_VALUES = {name: values(SCHEMAS.schema(name), named_of(name), canonical=True)
                    for name in SCHEMAS.names()}


# ---------------------------------------------------------------- outcomes


def fastavro_body(parsed: Any, value: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, value, strict_allow_default=True)
    return buffer.getvalue()


def outcome(encode: Any, *args: Any) -> Any:
    """The bytes, or the error as (type, message) for comparing two paths."""
    try:
        return encode(*args)
    except Exception as exc:
        return type(exc).__name__, str(exc), getattr(exc, "code", None)


def fastavro_only(schemas: AvroSchemas, name: str, value: Any) -> Any:
    """AvroSchemas.encode_body as it was before the compiled writer: fastavro alone."""
    try:
        return fastavro_body(schemas.schema(name), value)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        return ("AvroRecordInvalidError", f"AVRO_RECORD_INVALID: record does not fit {name}: {exc}",
                "AVRO_RECORD_INVALID")
    except Exception as exc:
        return type(exc).__name__, str(exc), getattr(exc, "code", None)


def assert_same_as_fastavro(schemas: AvroSchemas, name: str, value: Any) -> Any:
    before = copy.deepcopy(value)
    result = outcome(schemas.encode_body, name, value)
    assert result == fastavro_only(schemas, name, value)
    assert value == before or value != value  # untouched (NaN is not equal to itself)
    return result


def fast(name: str) -> Any:
    writer = SCHEMAS.loaded(name).writer.function
    assert writer is not None
    return writer


# ---------------------------------------------------------------- every schema of the store


def test_every_schema_of_the_store_compiles() -> None:
    assert len(SCHEMAS.names()) > 40
    for name in SCHEMAS.names():
        assert SCHEMAS.loaded(name).writer.function is not None, name


@pytest.mark.parametrize("name", SCHEMAS.names())
@PROPERTY
@given(data=st.data())
def test_the_same_bytes_as_fastavro(name: str, data: st.DataObject) -> None:
    value = data.draw(VALUES[name])
    expected = fastavro_body(SCHEMAS.schema(name), value)
    assert fast(name)(value) == expected  # taken by the fast path, not left to fastavro
    assert SCHEMAS.encode_body(name, value) == expected


@pytest.mark.parametrize("name", SCHEMAS.names())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(name: str, data: st.DataObject) -> None:
    value = data.draw(CANONICAL_VALUES[name])
    assert SCHEMAS.decode(SCHEMAS.encode(name, value)) == (name, value)


ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(LONG_MIN * 2, LONG_MAX * 2), st.floats(),
    st.text(max_size=3), st.binary(max_size=3), st.dates(), st.datetimes(),
    st.datetimes(timezones=st.sampled_from(ZONES)), st.decimals(allow_nan=False, places=2),
    st.lists(st.integers(), max_size=2).map(tuple), st.just({}), st.just([]),
    st.sampled_from(["Arrival", "Passport", "\ud800", str.__new__(type("S", (str,), {}), "x")]),
)


def _containers(value: Any, found: list[Any]) -> list[Any]:
    if isinstance(value, dict | list):
        found.append(value)
        for child in value.values() if isinstance(value, dict) else value:
            _containers(child, found)
    return found


@pytest.mark.parametrize("name", SCHEMAS.names())
@PROPERTY
@given(data=st.data())
def test_values_that_do_not_fit_get_what_fastavro_gives(name: str, data: st.DataObject) -> None:
    """A valid value with one thing changed: a value replaced by one of any type, a field
    dropped or added. Whether fastavro takes it or not, encode_body says the same."""
    value = data.draw(VALUES[name])
    containers = _containers(value, [])
    if containers:
        target = data.draw(st.sampled_from(containers))
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        change = data.draw(st.sampled_from(["replace", "drop", "add"]))
        if change == "add" and isinstance(target, dict):
            target[data.draw(st.sampled_from(["extra", "-type", *keys]))] = data.draw(ODD_VALUES)
        elif keys and change == "drop":
            del target[data.draw(st.sampled_from(keys))]
        elif keys:
            target[data.draw(st.sampled_from(keys))] = data.draw(ODD_VALUES)
    else:
        value = data.draw(ODD_VALUES)
    assert_same_as_fastavro(SCHEMAS, name, value)


# ---------------------------------------------------------------- what the fast path leaves


def crew_list() -> dict[str, Any]:
    member = {
        "family_name": "王", "given_names": "建国", "rank_or_rating": "Master 船长",
        "nationality": "CN", "date_of_birth": date(1968, 5, 14), "place_of_birth": "大连",
        "identity_document": {"document_type": "Passport", "number": "EJ4821937",
                              "issuing_state": "CN", "expiry_date": date(2031, 8, 19)},
    }
    return {
        "header": {
            "event_id": "01a1fd64-09f3-709e-bad0-6223bca3693d", "document_type": "fal5",
            "format_id": "fal5-xml", "schema_version": 1, "sender": "cn.port.sh",
            "business_key": "9456783:0312E:A:CNSHA", "document_version": 1,
            "received_at": datetime(2026, 3, 15, 1, 2, 3, 456789, tzinfo=UTC),
            "digest_sm3": "0" * 64, "signature_key_id": None,
        },
        "arrival_or_departure": "Arrival",
        "ship": {"name": "PX EASTERN DAWN", "imo_number": "9456783", "call_sign": "VRQD4",
                 "flag_state": "HK", "gross_tonnage": 40541, "net_tonnage": None},
        "voyage_number": "0312E", "port_of_arrival_departure": "CNSHA",
        "date_time_of_arrival_departure": datetime(2026, 3, 14, 22, 30, tzinfo=UTC),
        "utc_offset_minutes": 480, "local_date_time_of_arrival_departure": None,
        "last_port_of_call": "KRPUS", "crew_count": 3,
        "crew": [copy.deepcopy(member) for _ in range(3)],
    }


def changed(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """The crew list with the value at path replaced (KeyError: removed)."""
    return broken(crew_list(), path, value)


class _NoOffset(tzinfo):
    """No offset, so a naive time; only utcoffset is ever asked (tzinfo is abstract)."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


NAIVE = datetime(2026, 3, 14, 22, 30)
STR_SUBCLASS = type("S", (str,), {})  # encoded as fastavro does: what .encode() gives


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("unexpected",), "x"),  # extra field
        (("ship", "tonnage"), 1),  # extra field in a sub-record
        (("crew", 1, "identity_document", "valid"), True),
        (("header", "sender"), KeyError),  # missing field without a default
        (("crew", 2, "family_name"), KeyError),
        (("voyage_number",), 312),  # wrong type
        (("voyage_number",), b"0312E"),
        (("voyage_number",), "x" * 5000),  # a length beyond the precomputed table
        (("voyage_number",), "\ud800"),  # not encodable as UTF-8
        (("crew",), tuple(crew_list()["crew"])),
        (("crew", 0), [("family_name", "王")]),
        (("ship",), None),
        (("arrival_or_departure",), "Anchored"),
        (("arrival_or_departure",), 0),
        (("crew_count",), True),  # bool for int
        (("crew_count",), 3.0),
        (("crew_count",), INT_MAX + 1),  # out of the int range: fastavro writes it as a long
        (("crew_count",), INT_MIN - 1),
        (("ship", "gross_tonnage"), INT_MAX + 1),  # ... but not in a union
        (("ship", "gross_tonnage"), False),
        (("header", "received_at"), LONG_MAX + 1),  # out of the long range
        (("header", "received_at"), True),
        (("header", "received_at"), NAIVE),  # naive: fastavro takes it as local time
        (("header", "received_at"), datetime(2026, 3, 14, tzinfo=_NoOffset())),  # type: ignore[abstract]  # see _NoOffset
        (("header", "received_at"), "2026-03-14T22:30:00Z"),
        (("crew", 0, "date_of_birth"), "1968-05-14"),  # fastavro parses ISO dates
        (("crew", 0, "date_of_birth"), datetime(1968, 5, 14, 12, tzinfo=UTC)),
        (("crew", 0, "date_of_birth"), INT_MAX + 1),
        (("crew", 0, "given_names"), ("string", "建国")),  # union tuple notation
        (("crew", 0, "given_names"), 42),
    ],
)
def test_values_left_to_fastavro(path: tuple[str | int, ...], value: Any) -> None:
    record = changed(path, value)
    with pytest.raises(Exception):  # noqa: B017 - any exception hands the value to fastavro
        fast(FAL5)(record)
    assert_same_as_fastavro(SCHEMAS, FAL5, record)


def test_errors_are_fastavros() -> None:
    cases = {
        ("unexpected",): "record contains more fields than the schema specifies: unexpected",
        ("header", "sender"): "Field sender is specified in the schema but missing from the record",
    }
    for path, message in cases.items():
        with pytest.raises(FormatError) as caught:
            SCHEMAS.encode_body(FAL5, changed(path, "x" if path == ("unexpected",) else KeyError))
        assert caught.value.code == "AVRO_RECORD_INVALID"
        assert caught.value.message == f"record does not fit {FAL5}: {message}"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("header", "signature_key_id"), KeyError),  # missing, with a default
        (("crew", 0, "given_names"), KeyError),
        (("ship", "net_tonnage"), KeyError),
        (("crew", 0, "given_names"), None),
        (("header", "received_at"), datetime(2026, 3, 15, 9, tzinfo=ZONES[1])),  # not UTC
        (("header", "received_at"), datetime(1969, 12, 31, 23, 59, 59, 999, tzinfo=ZONES[2])),
        (("header", "received_at"), 1_773_532_800_123),  # milliseconds as an int
        (("header", "received_at"), -1),
        (("crew", 0, "date_of_birth"), -25_000),  # days as an int
        (("crew", 0, "date_of_birth"), date(1, 1, 1)),
        (("crew_count",), INT_MIN),
        (("crew",), []),
        (("voyage_number",), STR_SUBCLASS("0312E")),
        (("crew", 0, "identity_document", "document_type"), STR_SUBCLASS("Passport")),
    ],
)
def test_values_the_fast_path_takes(path: tuple[str | int, ...], value: Any) -> None:
    record = changed(path, value)
    assert fast(FAL5)(record) == fastavro_body(SCHEMAS.schema(FAL5), record)
    assert_same_as_fastavro(SCHEMAS, FAL5, record)


def test_the_crew_list_decodes_back() -> None:
    record = crew_list()
    _, decoded = SCHEMAS.decode(SCHEMAS.encode(FAL5, record))
    assert decoded["header"]["received_at"] == datetime(2026, 3, 15, 1, 2, 3, 456000, tzinfo=UTC)
    decoded["header"]["received_at"] = record["header"]["received_at"]
    assert decoded == record


# ---------------------------------------------------------------- schema shapes


EVERY_SHAPE = {
    "type": "record", "name": "t.Shapes",
    "fields": [
        {"name": "n", "type": "null"},
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "d", "type": "double"},
        {"name": "dd", "type": ["double", "null"]},
        {"name": "s", "type": {"type": "string"}},
        {"name": "by", "type": "bytes"},
        {"name": "fx", "type": {"type": "fixed", "name": "t.Four", "size": 4}},
        {"name": "fx2", "type": ["null", "t.Four"]},
        {"name": "e", "type": {"type": "enum", "name": "t.E", "symbols": ["A", "B", "C"]}},
        {"name": "a", "type": {"type": "array", "items": {"type": "array", "items": "long"}}},
        {"name": "m", "type": {"type": "map", "values": ["null", "t.E"]}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "tu", "type": [{"type": "long", "logicalType": "timestamp-micros"}, "null"]},
        {"name": "dt", "type": {"type": "int", "logicalType": "date"}},
        {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 5,
                                 "scale": 2}},
        {"name": "other", "type": {"type": "string", "logicalType": "not-known-to-fastavro"}},
        {"name": "r", "type": ["null", {
            "type": "record", "name": "t.Inner",
            "fields": [{"name": "x", "type": "int", "default": 7},
                       {"name": "y", "type": ["null", "string"], "default": None},
                       {"name": "z", "type": "string", "default": "zed"}],
        }]},
        {"name": "rs", "type": {"type": "array", "items": "t.Inner"}},
        {"name": "opt", "type": ["null", "string"], "default": None},
        {"name": "quote's", "type": "string", "default": "\"'\\"},
    ],
}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> AvroSchemas:
    directory: Path = tmp_path_factory.mktemp("shapes")
    (directory / "t.Shapes.avsc").write_text(json.dumps(EVERY_SHAPE), encoding="utf-8")
    return AvroSchemas.from_dirs(directory, builtin=False)


@PROPERTY
@given(data=st.data())
def test_every_supported_shape(shapes: AvroSchemas, data: st.DataObject) -> None:
    parsed = shapes.schema("t.Shapes")
    value = data.draw(values(parsed, parsed.get("__named_schemas", {})))
    writer = shapes.loaded("t.Shapes").writer.function
    assert writer is not None
    expected = fastavro_body(parsed, value)
    assert writer(value) == expected
    assert shapes.encode_body("t.Shapes", value) == expected


@pytest.mark.parametrize("text", [
    "0.00", "-0.00", "1.27", "-1.28", "1.28", "-1.29", "327.67", "-327.68", "999.99",
    "-999.99",  # the scale's exponent: converted by the compiled writer itself
    "1000.00", "-1000.00",  # more digits than the precision: refused, as fastavro refuses
    "5", "-7.5", "1E+2", "0E+3",  # other exponents: through fastavro's conversion
    "1.005", "NaN", "Infinity",  # refused by fastavro
])
def test_decimals_as_fastavro_writes_them(text: str) -> None:
    """A bytes decimal (precision 5, scale 2) takes fastavro's bytes or its refusal, with the
    thread's decimal context at a precision too low to scale it exactly."""
    schema = fastavro.parse_schema({"type": "record", "name": "t.Dec", "fields": [
        {"name": "d", "type": {"type": "bytes", "logicalType": "decimal", "precision": 5,
                               "scale": 2}}]})
    writer = compile_writer(schema)
    assert writer is not None
    value = {"d": Decimal(text)}
    with localcontext(prec=2):
        expected, got = outcome(fastavro_body, schema, value), outcome(writer, value)
    if isinstance(expected, bytes):
        assert got == expected
    else:  # raised: left to fastavro, which refuses it
        assert not isinstance(got, bytes)


@pytest.mark.parametrize(
    ("field_type", "value"),
    [
        (["null", "string", "int"], 1),
        (["string", "int"], "x"),
        ("float", 1.5),
        ({"type": "string", "logicalType": "uuid"}, "x"),
        ({"type": "fixed", "name": "t.D", "size": 8, "logicalType": "decimal", "precision": 4},
         Decimal(12)),
        ({"type": "long", "logicalType": "local-timestamp-millis"}, datetime(2026, 3, 14)),
        ({"type": "record", "name": "t.Node", "fields": [
            {"name": "next", "type": ["null", "t.Node"], "default": None}]}, {"next": None}),
    ],
)
def test_shapes_left_to_fastavro(tmp_path: Path, field_type: Any, value: Any) -> None:
    schema = {"type": "record", "name": "t.Other", "fields": [{"name": "f", "type": field_type}]}
    (tmp_path / "t.Other.avsc").write_text(json.dumps(schema), encoding="utf-8")
    schemas = AvroSchemas.from_dirs(tmp_path, builtin=False)
    assert schemas.loaded("t.Other").writer.function is None
    assert schemas.encode_body("t.Other", {"f": value}) == fastavro_body(
        schemas.schema("t.Other"), {"f": value}
    )
    for other in ({"f": None}, {"f": "x"}, {"f": 1}, {"f": 1.5}, {"f": {"next": None}}, {}):
        assert_same_as_fastavro(schemas, "t.Other", other)


def test_generated_source_quotes_schema_text() -> None:
    """Field names reach the source only as string literals: a name that would be code if
    pasted in unquoted is still just a key."""
    name = "a'] + 1 / 0 + v0['"
    schema = fastavro.parse_schema(
        {"type": "record", "name": "t.Q", "fields": [{"name": name, "type": "string"}]}
    )
    source, _ = generate_source(schema)
    assert f"v0[{name!r}]" in source
    writer = compile_writer(schema)
    assert writer is not None
    assert writer({name: "v"}) == fastavro_body(schema, {name: "v"}) == b"\x02v"
