from __future__ import annotations

import ast
import json
import operator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import ContractError, ContractInvalid
from contracts.expr import Condition, ConditionError, compile_condition

FAL1: dict[str, Any] = {
    "document_number": "GD-2026-0001",
    "arrival_or_departure": "Arrival",
    "ship": {
        "name": "EVER GIVEN",
        "imo_number": "9811000",
        "call_sign": "H3RC",
        "flag_state": "PA",
        "gross_tonnage": 220940,
        "net_tonnage": None,
    },
    "voyage_number": "V2611",
    "port_of_arrival_departure": "CNSHA",
    "date_time_of_arrival_departure": datetime(2026, 6, 1, 6, 30, tzinfo=UTC),
    "utc_offset_minutes": 480,
    "last_port_of_call": "SGSIN",
    "next_port_of_call": None,
    "master_name": "Kumar",
    "ship_agent": {"name": "Penavico Shanghai", "contact": None},
    "brief_cargo_description": "containers, some DANGEROUS goods",
    "crew_count": 25,
    "passenger_count": 0,
    "remarks": None,
}


def holds(source: str, record: dict[str, Any] = FAL1) -> bool:
    return compile_condition(source)(record)


# --- grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    ("true or false and false", True),  # and binds tighter than or
    ("(true or false) and false", False),
    ("not false and false", False),  # not binds tighter than and
    ("not (false and false)", True),
    ("not not true", True),
    ("false or false or true", True),
    ("true and true and true and false", False),
    ("false or false or false or true", True),
    ("not crew_count == 25", False),  # not applies to the whole comparison
    ("(crew_count) == 25", True),  # parentheses around a lone operand only group
    ("(crew_count == 25) == true", True),  # a parenthesised condition is a boolean value
    ("((((true))))", True),
])
def test_precedence_and_parentheses(source: str, expected: bool) -> None:
    assert holds(source) is expected


@pytest.mark.parametrize(("source", "expected"), [
    ("crew_count == 25", True),
    ("crew_count != 25", False),
    ("crew_count < 26", True),
    ("crew_count <= 25", True),
    ("crew_count > 25", False),
    ("crew_count >= 25", True),
    ("crew_count == 25.0", True),
    ("crew_count > 24.5", True),
    ("utc_offset_minutes > -60", True),
    ('ship.flag_state == "PA"', True),
    ("ship.flag_state == 'PA'", True),
    ('ship.flag_state != "LR"', True),
    ('ship.name < "F"', True),
    ('ship.name >= "EVER"', True),
    ('"PA" == ship.flag_state', True),  # literal on the left
    ("26 > crew_count", True),
    ("25 <= crew_count", True),
    ("crew_count > passenger_count", True),  # path against path
    ("ship.gross_tonnage >= crew_count", True),
    ("crew_count == crew_count", True),
    ("1 < 2", True),
    ('"a" < "b"', True),
])
def test_each_comparison(source: str, expected: bool) -> None:
    assert holds(source) is expected


@pytest.mark.parametrize(("source", "expected"), [
    ("remarks == null", True),
    ("remarks != null", False),
    ("ship.name == null", False),
    ("ship.name != null", True),
    ("null == remarks", True),
    ("ship.no_such_field == null", True),  # missing yields null
    ("no_such.deeper.path == null", True),  # null along the way yields null
    ("ship.name.first == null", True),  # a string along the way is not a record
    ("ship.net_tonnage.x.y == null", True),
    ("remarks < 1", False),  # ordering with null is false either way
    ("remarks >= 1", False),
    ("remarks <= null", False),
    ("remarks == remarks", True),  # null equals null
    ("remarks != next_port_of_call", False),
    ("remarks == 0", False),
    ('remarks == ""', False),
    ("remarks == false", False),
])
def test_null_semantics(source: str, expected: bool) -> None:
    assert holds(source) is expected


@pytest.mark.parametrize(("source", "expected"), [
    ('crew_count < "30"', False),
    ('crew_count > "3"', False),
    ('crew_count == "25"', False),
    ('crew_count != "25"', True),  # != is the negation of ==
    ('ship.name > 3', False),
    ("ship.name == 3", False),
    ("crew_count == true", False),  # booleans are not numbers
    ("passenger_count == false", False),
    ("crew_count > ship", False),  # a number against a record
    ("ship == ship", True),
    ("date_time_of_arrival_departure > 3", False),
    ("ship.name < crew_count", False),
    ("ship.name != crew_count", True),
])
def test_comparisons_between_kinds_are_false_not_errors(source: str, expected: bool) -> None:
    assert holds(source) is expected


@pytest.mark.parametrize(("source", "expected"), [
    ('ship.flag_state in ["PA", "LR", "MH"]', True),
    ('ship.flag_state in ["LR"]', False),
    ('ship.flag_state not in ["LR", "MH"]', True),
    ('ship.flag_state not in ["PA"]', False),
    ("ship.flag_state in []", False),
    ("ship.flag_state not in []", True),
    ("crew_count in [1, 25, 3.5]", True),
    ('crew_count in ["25"]', False),
    ("crew_count in [true]", False),
    ("passenger_count in [false]", False),  # 0 is not false
    ("passenger_count in [0]", True),
    ("remarks in [null]", True),
    ('remarks in ["x"]', False),
    ('remarks not in ["x"]', True),
    ("ship in [1]", False),  # a record is never a literal
    ('"DANGEROUS" in brief_cargo_description', True),  # substring of a string
    ('"explosives" in brief_cargo_description', False),
    ('"explosives" not in brief_cargo_description', True),
    ("1 in brief_cargo_description", False),
    ('"x" in remarks', False),  # null is no container
    ('"x" not in remarks', True),
])
def test_membership(source: str, expected: bool) -> None:
    assert holds(source) is expected


def test_membership_in_an_array_field() -> None:
    record = {"flags": ["PA", 3, None, True], "nested": {"codes": ("a", "b")}}
    assert compile_condition('"PA" in flags')(record)
    assert compile_condition("3 in flags")(record)
    assert compile_condition("null in flags")(record)
    assert compile_condition("true in flags")(record)
    assert not compile_condition("1 in flags")(record)  # True is not 1
    assert not compile_condition('"3" in flags')(record)
    assert compile_condition('"b" in nested.codes')(record)
    assert compile_condition('"c" not in nested.codes')(record)


def test_truth_of_a_bare_operand() -> None:
    record = {"empty": "", "zero": 0, "text": "x", "items": [], "one": 1, "none": None}
    for source, expected in [("text", True), ("empty", False), ("zero", False),
                             ("items", False), ("one", True), ("none", False),
                             ("missing", False), ("not missing", True), ('"x"', True),
                             ("0", False), ("null", False), ("text and one", True)]:
        assert compile_condition(source)(record) is expected, source


def test_dates_compare_with_iso_literals() -> None:
    record = {
        "at": datetime(2026, 6, 1, 6, 30, tzinfo=UTC),
        "born": date(1987, 3, 4),
        "code": "2026-06-01",
    }
    cases = [
        ('at >= "2026-06-01"', True),  # a date literal is midnight UTC for a date-time
        ('at < "2026-06-01"', False),
        ('at < "2026-06-01T07:00Z"', True),
        ('at == "2026-06-01T06:30:00+00:00"', True),
        ('at == "2026-06-01T14:30:00+08:00"', True),  # the same instant
        ('at > "2026-06-01T14:00:00+08:00"', True),
        ('at < "2026-06-01T06:31"', True),  # no offset: UTC
        ('at != "2026-06-01T06:30Z"', False),
        ('born < "1990-01-01"', True),
        ('born == "1987-03-04"', True),
        ('born > "1987-03-04"', False),
        ('born < "1987-03-04T00:00:01Z"', True),  # a date meets a date-time as midnight UTC
        ('born in ["1987-03-04", "2000-01-01"]', True),
        ('born not in ["1987-03-05"]', True),
        ('code == "2026-06-01"', True),  # a string field compares as a string
        ('code < "2026-06-02"', True),
        ('code > "2026-06-01T00:00Z"', False),
        ('"2026-06-01" <= at', True),
        ("at > born", True),  # path against path: the date is midnight UTC
        ('missing < "2026-06-01"', False),
        ('missing != "2026-06-01"', True),
    ]
    for source, expected in cases:
        assert compile_condition(source)(record) is expected, source


def test_a_naive_record_datetime_is_not_comparable_with_an_instant() -> None:
    record = {"at": datetime(2026, 6, 1, 6, 30)}
    assert compile_condition('at > "2026-01-01T00:00Z"')(record) is False
    assert compile_condition('at != "2026-01-01T00:00Z"')(record) is True


def test_string_escapes() -> None:
    record = {"text": 'a"b\'c\\d\ne\tf—g'}
    assert compile_condition(r'text == "a\"b\'c\\d\ne\tf\u2014g"')(record)
    assert compile_condition(r"text == 'a\"b\'c\\d\ne\tf\u2014g'")(record)
    assert compile_condition('"船" in name')({"name": "中远船舶"})


@given(st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"])))
def test_any_string_literal_round_trips(text: str) -> None:
    condition = compile_condition(f"value == {json.dumps(text)}")
    assert condition({"value": text})
    assert not condition({"value": text + "x"})


def test_condition_value_reports_paths_once_in_order_and_hides_the_closure() -> None:
    condition = compile_condition(
        'crew_count > 3 and (ship.flag_state in ["PA"] or crew_count < 100) '
        'and "x" in remarks'
    )
    assert condition.paths == ("crew_count", "ship.flag_state", "remarks")
    assert condition.source.startswith("crew_count > 3")
    assert condition == compile_condition(condition.source)
    assert "evaluate" not in repr(condition)
    assert isinstance(condition, Condition)
    assert condition.evaluate(FAL1) is condition(FAL1) is False


def test_a_condition_reads_any_mapping() -> None:
    from types import MappingProxyType

    record = MappingProxyType({"ship": MappingProxyType({"flag_state": "PA"})})
    assert compile_condition('ship.flag_state == "PA"')(record)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "position", "reason"), [
    ("", 0, "empty condition"),
    ("   ", 3, "empty condition"),
    ("crew_count ==", 13, "expected a field, a literal or '(', found end of condition"),
    ("crew_count = 3", 11, "unexpected character '='; did you mean '=='?"),
    ("crew_count == 3 3", 16, "unexpected '3' after a complete condition"),
    ("crew_count == 3 and", 19, "found end of condition"),
    ("a == 1 b", 7, "unexpected 'b' after a complete condition"),
    ("(a == 1", 7, "expected ')', found end of condition"),
    ("a == 1)", 6, "unexpected ')' after a complete condition"),
    ('ship.name == "EVER', 13, "unterminated string"),
    ("ship.name == 'EVER\\'", 13, "unterminated string"),
    ('name == "a\\', 8, "unterminated string"),
    ('name == "a\\qb"', 10, "unknown escape '\\q'"),
    ('name == "\\u12"', 9, "unknown escape '\\u'"),
    ("a in 3", 5, "expected a list '[...]' or a field path after 'in', found '3'"),
    ("a in [1, 2", 10, "expected ',' or ']', found end of condition"),
    ("a in [1 2]", 8, "expected ',' or ']', found '2'"),
    ("a in [1, b]", 9, "expected a literal in the list, found 'b'"),
    ("a in [1,]", 8, "expected a literal in the list, found ']'"),
    ("a not b", 2, "unexpected 'not' after a complete condition"),
    ("not", 3, "found end of condition"),
    ("and a", 0, "expected a field, a literal or '(', found 'and'"),
    ("a == == 1", 5, "found '=='"),
    ("a == 1 == 2", 7, "unexpected '==' after a complete condition"),
    ("a < b < c", 6, "unexpected '<' after a complete condition"),
    ("ship. == 1", 5, "expected a field name after '.'"),
    ("a & b", 2, "unexpected character '&'"),
    ("a == -x", 5, "unexpected character '-'"),
    ('at > "2026-13-01"', 5, '"2026-13-01" is not a valid ISO 8601 date or date-time'),
    ('at > "2026-02-30T00:00Z"', 5, "is not a valid ISO 8601 date"),
    ("crew[].nationality == 'KP'", 4,
     "array paths such as 'crew[]' cannot be used in conditions"),
    ("x == 1 and crew[] in ['KP']", 15, "array paths such as 'crew[]'"),
])
def test_syntax_errors_name_their_position(source: str, position: int, reason: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(source)
    error = caught.value
    assert error.code == "CONDITION_SYNTAX"
    assert error.position == position
    assert reason in error.reason
    assert f"at position {position}" in error.message


def test_nesting_is_bounded() -> None:
    assert compile_condition("(" * 64 + "true" + ")" * 64)({})
    assert compile_condition("not " * 63 + "false")({})  # an odd number of nots
    for source, position in [("(" * 65 + "true" + ")" * 65, 64),
                             ("not " * 65 + "false", 256),
                             ("(not " * 40 + "true" + ")" * 40, 160)]:
        with pytest.raises(ConditionError) as caught:
            compile_condition(source)
        assert caught.value.position == position
        assert "nested more than 64 deep" in caught.value.reason


def test_only_ascii_digits_make_numbers() -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition("crew_count == \u0663")
    assert caught.value.position == 14


def test_the_message_shows_the_line_and_a_caret() -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition("crew_count > 3 and\nship.flag_state = 'PA'")
    assert caught.value.message == (
        "unexpected character '='; did you mean '=='? at position 35\n"
        "  ship.flag_state = 'PA'\n"
        "                  ^"
    )
    assert str(caught.value).startswith("CONDITION_SYNTAX: unexpected character '='")


def test_the_caret_allows_for_wide_characters_and_tabs() -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition('name == "中远" ?')
    assert caught.value.message.splitlines()[2] == "  " + " " * 9 + "    " + "  ^"
    with pytest.raises(ConditionError) as caught:
        compile_condition("\ta ?")
    assert caught.value.message.splitlines()[2] == "  \t  ^"


def test_errors_are_contract_errors_and_can_be_located_in_a_file() -> None:
    with pytest.raises(ContractError) as caught:
        compile_condition("a ==")
    error = caught.value
    assert isinstance(error, ConditionError) and isinstance(error, ContractInvalid)
    located = error.located(Path("contracts/fal1.toml"), 12)
    assert (located.path, located.line, located.position) == (Path("contracts/fal1.toml"), 12,
                                                              4)
    assert str(located).startswith("contracts/fal1.toml:12: CONDITION_SYNTAX: expected")


KNOWN = frozenset({"ship", "ship.flag_state", "ship.imo_number", "crew_count", "remarks"})


def test_known_paths_accept_the_fields_they_list() -> None:
    condition = compile_condition('ship.flag_state == "PA" and crew_count > 1 and ship',
                                  known_paths=KNOWN)
    assert condition(FAL1)


@pytest.mark.parametrize(("source", "field", "position", "hint"), [
    ("ship.imo == '9811000'", "ship.imo", 0, "did you mean 'ship.imo_number'?"),
    ("crew_count > 1 and crew_cnt > 2", "crew_cnt", 19, "did you mean 'crew_count'?"),
    ('"x" in passengers', "passengers", 7, ""),
])
def test_an_unknown_field_is_reported_where_it_stands(source: str, field: str, position: int,
                                                      hint: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(source, known_paths=KNOWN)
    error = caught.value
    assert error.code == "CONDITION_UNKNOWN_FIELD"
    assert error.position == position
    assert f"unknown field '{field}'" in error.message
    assert hint in error.message


# --- properties ---------------------------------------------------------------------------

BOOL_FIELDS = ("b0", "b1", "b2")
NUMBER_FIELDS = ("n0", "n1")


def _atoms() -> st.SearchStrategy[str]:
    comparison = st.tuples(
        st.sampled_from(NUMBER_FIELDS),
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        st.integers(-3, 3),
    ).map(lambda parts: f"{parts[0]} {parts[1]} {parts[2]}")
    return st.one_of(st.sampled_from(BOOL_FIELDS), st.sampled_from(["true", "false"]),
                     comparison)


def _formulas() -> st.SearchStrategy[str]:
    """Conditions over booleans and integers, with parentheses sometimes left out, so that
    precedence decides."""
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        grouped = inner.map(lambda text: f"({text})")
        operand = st.one_of(inner, grouped)
        return st.one_of(
            operand.map(lambda text: f"not {text}"),
            st.tuples(operand, st.sampled_from(["and", "or"]), operand).map(" ".join),
        )

    return st.recursive(_atoms(), extend, max_leaves=12)


def _python_value(node: ast.AST, record: dict[str, Any]) -> Any:
    """An independent oracle: Python's own parser gives the precedence, and this walks its
    tree (no eval)."""
    if isinstance(node, ast.Expression):
        return _python_value(node.body, record)
    if isinstance(node, ast.BoolOp):
        values = [_python_value(v, record) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _python_value(node.operand, record)
    if isinstance(node, ast.Compare):
        ops = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
               ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
        (op,), (right,) = node.ops, node.comparators
        return ops[type(op)](_python_value(node.left, record), _python_value(right, record))
    if isinstance(node, ast.Name):
        return {"true": True, "false": False}.get(node.id, record.get(node.id))
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_python_value(node.operand, record)
    raise AssertionError(ast.dump(node))


@given(
    _formulas(),
    st.fixed_dictionaries({
        **{name: st.booleans() for name in BOOL_FIELDS},
        **{name: st.integers(-4, 4) for name in NUMBER_FIELDS},
    }),
)
def test_precedence_agrees_with_python(source: str, record: dict[str, Any]) -> None:
    expected = bool(_python_value(ast.parse(source, mode="eval"), record))
    assert compile_condition(source)(record) is expected


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.integers(-20, 20).map(lambda i: i / 4),
    st.text(alphabet="abcXY", max_size=3),
)


def _literal_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _kind(value: Any) -> str:
    if value is None or isinstance(value, bool | str):
        return type(value).__name__
    return "number"


@given(SCALARS, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), SCALARS,
       st.booleans())
def test_comparisons_follow_the_documented_semantics(
    value: Any, op: str, literal: Any, literal_first: bool
) -> None:
    source = f"{_literal_text(literal)} {op} x" if literal_first else \
        f"x {op} {_literal_text(literal)}"
    left, right = (literal, value) if literal_first else (value, literal)
    python_op = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
                 ">": operator.gt, ">=": operator.ge}[op]
    if _kind(left) != _kind(right):
        expected = op == "!="
    elif left is None:
        expected = op == "=="
    else:
        expected = python_op(left, right)
    assert compile_condition(source)({"x": value}) is expected
    assert compile_condition(f"x {op} y")({"x": left, "y": right}) is expected


@given(SCALARS, st.lists(SCALARS, max_size=4), st.booleans())
def test_membership_is_equality_with_some_member(value: Any, members: list[Any],
                                                 negated: bool) -> None:
    listed = ", ".join(_literal_text(m) for m in members)
    source = f"x {'not in' if negated else 'in'} [{listed}]"
    found = any(_kind(value) == _kind(m) and value == m for m in members)
    assert compile_condition(source)({"x": value}) is (found != negated)
    assert compile_condition("x in y")({"x": value, "y": members}) is found


TOKENS = ["a", "b.c", "1", "-2", "3.5", '"s"', "'t'", "(", ")", "[", "]", ",", "==", "!=",
          "<", "<=", ">", ">=", "and", "or", "not", "in", "true", "false", "null", '"', "\\",
          "=", ".", "[]", "!", "\n", "中"]


@given(st.one_of(st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join),
                 st.lists(st.sampled_from(TOKENS), max_size=12).map("".join),
                 st.text(max_size=30)))
def test_any_text_compiles_or_fails_with_a_position(source: str) -> None:
    try:
        condition = compile_condition(source)
    except ConditionError as error:
        assert 0 <= error.position <= len(source)
        assert error.code == "CONDITION_SYNTAX"
        assert error.message.endswith("^")
    else:
        record = {"a": 1, "b": {"c": "s"}}
        assert condition(record) in (True, False)
        assert condition({}) in (True, False)


def test_an_aware_datetime_in_another_zone_compares_by_instant() -> None:
    shanghai = timezone(timedelta(hours=8))
    record = {"at": datetime(2026, 6, 1, 8, 0, tzinfo=shanghai)}
    assert compile_condition('at == "2026-06-01T00:00Z"')(record)
    assert compile_condition('at < "2026-06-01"')(record) is False


def test_a_negated_condition_passes_an_absent_field_unless_it_checks_for_null() -> None:
    """As docs/contracts.md says for lists that lack a field (a PAXLST crew list has no flag)."""
    record = {"ship": {"flag_state": None}}
    assert compile_condition('ship.flag_state not in ["PA"]')(record)
    assert not compile_condition('ship.flag_state != null and ship.flag_state not in ["PA"]')(
        record)
