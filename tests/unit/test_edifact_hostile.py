"""Hostile interchanges: what a sender writes never reaches the texts the gateway keeps
(refusal messages go to receipts, dead letters and the trail), and what it echoes back in a
CONTRL is bounded by the syntax, not by what the sender wrote."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.baplie import BayPlanAdapter
from adapters.base import RuleViolationError
from adapters.paxlst import PaxlstCrewListAdapter
from message_formats.edifact import (
    EdifactError,
    decimal_value,
    negative_contrl,
    read_contrl,
    read_interchange,
)
from tests.unit.edifact_support import BASIC, interchange_with
from tests.unit.smdg_support import interchange_around

SECRET = "JANE<script>DOE"  # a value no kept text may carry


def refusal_of(data: bytes) -> EdifactError:
    with pytest.raises(EdifactError) as caught:
        read_interchange(data)
    return caught.value


@pytest.mark.parametrize("data, code", [
    (interchange_with(f"UNH+{SECRET}+PAXLST:D:05B:UN'", "BGM+745'"), "EDI_UNT_MISSING"),
    (interchange_with(f"UNH+{SECRET}+PAXLST:D:05B:UN'", "bgm+745'", f"UNT+3+{SECRET}'"),
     "EDI_SEGMENT_TAG"),
    (interchange_with(f"UNG+PAXLST+S+R+240131:1405+{SECRET}+UN+D:05B'",
                      "UNH+M1+PAXLST:D:05B:UN'", "BGM+745'", "UNT+3+M1'"),
     "EDI_UNE_MISSING"),
    (interchange_with(f"UNG+PAXLST+S+R+240131:1405+{SECRET}+UN+D:05B'",
                      f"UNE+0+{SECRET}'"), "EDI_NO_MESSAGE"),
])
def test_a_refusal_names_the_place_not_the_senders_reference(data: bytes, code: str) -> None:
    refusal = refusal_of(data)
    assert refusal.code == code
    assert SECRET not in refusal.message
    where = refusal.where
    assert SECRET in (where.message_reference, where.group_reference)  # the CONTRL's to echo


def test_the_second_message_without_unt_is_named_by_its_position() -> None:
    refusal = refusal_of(interchange_with(*BASIC[2:6], f"UNH+{SECRET}+PAXLST:D:05B:UN'"))
    assert refusal.code == "EDI_UNT_MISSING"
    assert refusal.message == "message 2 has no UNT trailer"


def test_a_contrl_echoes_no_more_of_a_reference_than_the_syntax_allows() -> None:
    """A message reference of megabytes of released separators: its CONTRL stays small."""
    reference = "AB?:" * 500_000
    refusal = refusal_of(interchange_with(f"UNH+{reference}+PAXLST:D:05B:UN:IATA:LONGEST'",
                                          "BGM+745'"))
    assert refusal.code == "EDI_UNT_MISSING"
    contrl = negative_contrl(refusal, reference="C1", prepared=datetime(2024, 1, 31, tzinfo=UTC))
    assert contrl is not None and len(contrl) < 400
    [message] = read_interchange(contrl).messages
    [ucm] = read_contrl(message).reports("UCM")
    assert ucm.reference == "AB:AB:AB:AB:AB"
    assert ucm.message_type == ("PAXLST", "D", "05B", "UN", "IATA")


@pytest.mark.parametrize("separator, code, syntax_error", [
    ("*", "EDI_TOO_MANY_REPETITIONS", 35),
    (":", "EDI_TOO_MANY_COMPONENTS", 16),
])
def test_a_segment_of_separators_is_refused_before_it_is_split(
        separator: str, code: str, syntax_error: int) -> None:
    """A megabyte of repetition separators would be a million tuples (60 bytes each)."""
    data = (f"UNB+UNOC:4+S+R+20240131:1405+R1'UNH+1+PAXLST:D:05B:UN'FTX+"
            f"{separator * 1_000_000}'UNT+3+1'UNZ+1+R1'").encode("latin-1")
    refusal = refusal_of(data)
    assert (refusal.code, refusal.where.syntax_error) == (code, syntax_error)
    assert refusal.message == f"segment 3 holds more {code.split('_')[-1].lower()} than the limit"


def test_repetitions_up_to_the_limit_are_read() -> None:
    data = ("UNB+UNOC:4+S+R+20240131:1405+R1'UNH+1+PAXLST:D:05B:UN'FTX+"
            + "A*" * 512 + "B'UNT+3+1'UNZ+1+R1'").encode("latin-1")
    [message] = read_interchange(data).messages
    assert len(message.segments[1].repetitions[0]) == 513


@pytest.mark.parametrize("text, value", [
    ("9" * 35, Decimal("9" * 35)),
    ("-" + "9" * 34 + ",5", Decimal("-" + "9" * 34 + ".5")),
    ("9" * 36, None),  # longer than any numeric data element (n..35)
    ("1" * 1_000_000, None),  # would take a minute to turn into an int
])
def test_a_number_has_at_most_35_digits(text: str, value: Decimal | None) -> None:
    assert decimal_value(text) == value


# -- numbers in the adapters: too long a version or count is a rule refusal, never a crash

CREW_LIST = (Path(__file__).parents[1] / "data" / "paxlst" / "fal5" / "crew_list.edi"
             ).read_bytes()


@pytest.mark.parametrize("segment, written, code", [
    (rb"BGM\+250[^']*", b"BGM+250+X:2147483648", "RULE_DOCUMENT_VERSION"),  # beyond Avro's int
    (rb"BGM\+250[^']*", b"BGM+250+X:" + b"9" * 5000, "RULE_DOCUMENT_VERSION"),
    (rb"CNT\+41:[0-9]*", b"CNT+41:" + b"9" * 5000, "RULE_CREW_COUNT"),
])
def test_a_paxlst_number_too_long_is_refused_by_its_rule(segment: bytes, written: bytes,
                                                         code: str) -> None:
    data = re.sub(segment, written, CREW_LIST)
    assert data != CREW_LIST
    with pytest.raises(RuleViolationError) as caught:
        PaxlstCrewListAdapter().parse(data)
    assert caught.value.code == code


def test_a_baplie_transfer_sequence_too_long_is_refused_by_its_rule() -> None:
    header = ("UNB+UNOA:2+LINE+TERMINAL+261207:1530+REF1'"
              "UNH+M1+BAPLIE:D:95B:UN:SMDG22++2147483648'")
    body = ("BGM++DOC1+9'TDT+20+V1+++EXL:172:20+++9074729:146::EXAMPLE SHIP'LOC+5+CNSHA:139:6'"
            "LOC+147+0010182::5'EQD+CN+EXMU1234569+22G1:102:5+++5'")
    with pytest.raises(RuleViolationError) as caught:
        BayPlanAdapter().parse(interchange_around(header, body))
    assert caught.value.code == "RULE_DOCUMENT_VERSION"
