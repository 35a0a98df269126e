"""The EDIFACT interchange layer reading what real senders write (docs/edifact.md): UNA with
any separators, the defaults, BOMs and line breaks, groups, syntax 4 repetitions, the
character repertoires; and every envelope defect refused with its code and CONTRL facts."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from message_formats import FormatError
from message_formats.edifact import (
    EdifactError,
    Level,
    Limits,
    Segment,
    Separators,
    decimal_value,
    read_interchange,
)
from message_formats.edifact.writer import OutgoingMessage, render_interchange, segment
from tests.unit.edifact_support import (
    BASIC,
    DEFECTS,
    PAXLST,
    header,
    interchange_with,
    lines,
    paxlst,
)


def refused(data: bytes) -> EdifactError:
    with pytest.raises(EdifactError) as caught:
        read_interchange(data)
    return caught.value


def test_an_interchange_is_read_with_its_envelope_facts_and_released_characters() -> None:
    interchange = read_interchange(lines(*BASIC))
    assert (interchange.syntax_id, interchange.syntax_version) == ("UNOA", "3")
    assert (interchange.sender, interchange.sender_qualifier) == ("CARRIER", "ZZ")
    assert (interchange.recipient, interchange.prepared) == ("PORTGW", "240131:1405")
    assert interchange.control_reference == "ICR1"
    assert interchange.acknowledgement_requested and not interchange.test
    [message] = interchange.messages
    assert message.reference == "M1" and message.identifier == PAXLST
    nad = message.body()[1]
    assert nad.tag == "NAD" and nad.number == 3
    assert nad.value(0) == "FL" and nad.value(1) == "" and nad.value(9) == ""
    assert nad.components(3) == ("HILL'S+ROAD", "A:B?")
    assert [s.tag for s in message.segments] == ["UNH", "BGM", "NAD", "UNT"]


@pytest.mark.parametrize("una, body", [
    ("UNA:*.? $", "UNB*UNOA:4*SDT:ZZ*PORTGW*20240131:1405*R$UNH*1*PAXLST:D:05B:UN:IATA$"
                  "FTX*AAA***A?*B?$C$UNT*3*1$UNZ*1*R$"),
    ("UNA:(.) -", "UNB(UNOA:3(SDT(PORTGW(240131:1405(R-UNH(1(PAXLST:D:05B:UN-"
                  "FTX(AAA(((A)(B)-C-UNT(3(1-UNZ(1(R-"),
])
def test_any_separators_the_una_declares_are_honoured(una: str, body: str) -> None:
    [message] = read_interchange((una + body).encode()).messages
    assert message.body()[0].value(3) == "A(B-C" if "(" in una else "A*B$C"


def test_without_una_the_defaults_apply_and_decimal_marks_are_read() -> None:
    data = lines(*BASIC[1:3], "MEA+AAE+G+KGM:12,5'", "UNT+3+M1'", BASIC[-1])
    interchange = read_interchange(data)
    assert interchange.separators == Separators()
    assert decimal_value(interchange.messages[0].body()[0].value(2, 1)) == decimal_value("12.5")
    assert decimal_value("1e5") is None and decimal_value("") is None


def test_una_with_a_decimal_comma_is_kept() -> None:
    interchange = read_interchange(lines("UNA:+,? '", *BASIC[1:]))
    assert interchange.separators.decimal == ","


@pytest.mark.parametrize("between", ["", "\n", "\r\n", "\r", "\r\n "])
def test_line_breaks_and_indents_between_segments_and_a_bom_are_passed_by(between: str) -> None:
    data = b"\xef\xbb\xbf " + between.join(BASIC).encode() + b"\r\n"
    assert read_interchange(data).messages[0].body()[1].value(3) == "HILL'S+ROAD"


def test_groups_and_several_messages_are_read_in_order() -> None:
    data = lines(BASIC[1], "UNG+PAXLST+CARRIER+PORTGW+240131:1405+G1+UN+D:05B'",
                 "UNH+M1+PAXLST:D:05B:UN:IATA'", "BGM+745'", "UNT+3+M1'",
                 "UNH+M2+PAXLST:D:05B:UN:IATA'", "BGM+250'", "UNT+3+M2'", "UNE+2+G1'",
                 "UNG+CUSCAR+CARRIER+PORTGW+240131:1405+G2+UN+D:95B'",
                 "UNH+M3+CUSCAR:D:95B:UN:LOT10'", "BGM+85'", "UNT+3+M3'", "UNE+1+G2'",
                 "UNZ+2+ICR1'")
    interchange = read_interchange(data)
    assert [m.reference for m in interchange.messages] == ["M1", "M2", "M3"]
    assert [m.group_reference for m in interchange.messages] == ["G1", "G1", "G2"]
    assert interchange.messages[2].identifier.association == "LOT10"
    assert interchange.message_types() == {"PAXLST", "CUSCAR"}
    assert [g.message_count for g in interchange.groups] == [2, 1]


def test_syntax_4_splits_repetitions_and_syntax_3_keeps_the_character() -> None:
    v4 = lines("UNB+UNOA:4+CARRIER+PORTGW+20240131:1405+R'", "UNH+1+PAXLST:D:05B:UN'",
               "ATT+2++M*F?*X'", "UNT+3+1'", "UNZ+1+R'")
    att = read_interchange(v4).messages[0].body()[0]
    assert att.value(2) == "M" and att.repeats(2) == (("M",), ("F*X",))
    assert att.repeats(0) == (("2",),) and att.repeats(7) == ()
    v3 = v4.replace(b"UNOA:4", b"UNOA:3").replace(b"?*", b"*")
    assert read_interchange(v3).messages[0].body()[0].repeats(2) == (("M*F*X",),)


def test_level_b_information_separators_are_read_without_una() -> None:
    text = "\x1c".join(s.replace("+", "\x1d").replace(":", "\x1f") for s in (
        "UNB+UNOB:3+CARRIER+PORTGW+240131:1405+R", "UNH+1+PAXLST:D:05B:UN", "FTX+AAA+++a'b?c",
        "UNT+3+1", "UNZ+1+R")) + "\x1c"
    ftx = read_interchange(text.encode()).messages[0].body()[0]
    assert ftx.tag == "FTX" and ftx.components(3) == ("a'b?c",)


@pytest.mark.parametrize("syntax_id, text, encoding", [
    ("UNOC", "Müller", "latin-1"), ("UNOD", "Dvořák", "iso8859-2"),
    ("UNOE", "Иванов", "iso8859-5"), ("UNOY", "李雷", "utf-8"), ("UNOW", "Ærø", "utf-8"),
    ("UNOA", "lower case", "ascii"),
])
def test_each_repertoire_is_decoded_with_its_character_set(syntax_id: str, text: str,
                                                           encoding: str) -> None:
    data = (f"UNB+{syntax_id}:3+CARRIER+PORTGW+240131:1405+R'UNH+1+PAXLST:D:05B:UN'"
            f"NAD+FL+++{text}'UNT+3+1'UNZ+1+R'")
    interchange = read_interchange(data.encode(encoding))
    assert interchange.messages[0].body()[0].value(3) == text


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data, code, level, syntax_error, service, element", DEFECTS)
def test_each_defect_is_refused_with_its_code_and_contrl_facts(
        data: bytes, code: str, level: Level, syntax_error: int, service: str,
        element: int) -> None:
    error = refused(data)
    assert isinstance(error, FormatError)
    assert error.code == code
    assert (error.where.level, error.where.syntax_error) == (level, syntax_error)
    assert (error.where.service_segment, error.where.element) == (service, element)


def test_a_message_refusal_names_the_message_and_carries_the_unb_facts() -> None:
    error = refused(interchange_with("UNH+M1+PAXLST:D:05B:UN:IATA'", "BGM+745'",
                                     "UNT+9+M1'"))
    assert error.where.message_reference == "M1"
    assert error.where.message_type == ("PAXLST", "D", "05B", "UN", "IATA")
    assert error.header is not None and error.header.control_reference == "ICR1"
    assert error.header.acknowledgement_requested


def test_a_bad_tag_names_its_position_in_the_message() -> None:
    error = refused(interchange_with("UNH+M1+PAXLST:D:05B:UN'", "BGM+745'", "N?D+FL'",
                                     "UNT+4+M1'"))
    assert (error.where.segment_number, error.where.message_reference) == (3, "M1")


def test_invalid_utf8_in_unoy_is_refused_as_a_charset_error() -> None:
    data = lines("UNB+UNOY:4+CARRIER+PORTGW+20240131:1405+R'", "UNH+1+PAXLST:D:05B:UN'",
                 "NAD+FL'", "UNT+3+1'", "UNZ+1+R'").replace(b"NAD+FL", b"NAD+\xff")
    assert refused(data).code == "EDI_CHARSET"


def test_a_refusal_survives_pickling_with_its_facts() -> None:
    error = refused(interchange_with("UNH+M1+PAXLST:D:05B:UN'", "UNT+9+M1'"))
    again = pickle.loads(pickle.dumps(error))
    assert (again.code, again.where, again.header) == (error.code, error.where, error.header)


@pytest.mark.parametrize("limits, data, code", [
    (Limits(max_bytes=100), lines(*BASIC), "EDI_TOO_LARGE"),
    (Limits(max_segments=3), lines(*BASIC), "EDI_TOO_MANY_SEGMENTS"),
    (Limits(max_elements=3), lines(*BASIC), "EDI_TOO_MANY_ELEMENTS"),
    (Limits(max_components=2), lines(*BASIC), "EDI_TOO_MANY_COMPONENTS"),
])
def test_limits_refuse_before_the_interchange_is_built(limits: Limits, data: bytes,
                                                       code: str) -> None:
    with pytest.raises(EdifactError) as caught:
        read_interchange(data, limits)
    assert caught.value.code == code


@pytest.mark.parametrize("hostile", [
    b"UNB+UNOA:3+A+B+1:1+R'" + b"?" * 200_001,
    b"UNB+UNOA:3+A+B+1:1+R'" + b"?'" * 100_000,
    b"UNB+UNOA:3+A+B+1:1+R'UNH+1+X:D:1:UN'" + b"A+" * 100 + b"'",
    b"UNB+UNOA:3+A+B+1:1+R'" + b"'" * 600_000,
])
def test_hostile_input_is_refused(hostile: bytes) -> None:
    assert refused(hostile).code.startswith("EDI_")


# -- round trips -------------------------------------------------------------------------------

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)


@st.composite
def separators(draw: st.DrawFn) -> Separators:
    chars = draw(st.permutations(PUNCTUATION).map(lambda p: p[:5]))
    return Separators(component=chars[0], element=chars[1], release=chars[2],
                      repetition=chars[3], terminator=chars[4],
                      decimal=draw(st.sampled_from(".,")))


def trimmed(components: list[str]) -> tuple[str, ...]:
    while components and not components[-1]:
        components.pop()
    return tuple(components) or ("",)


@st.composite
def segments(draw: st.DrawFn) -> Segment:
    tag = draw(st.sampled_from(["NAD", "FTX", "LOC", "DTM", "RFF"]))
    elements = draw(st.lists(st.lists(VALUES, min_size=1, max_size=4).map(trimmed),
                             min_size=1, max_size=6))
    while len(elements) > 1 and elements[-1] == ("",):
        elements.pop()
    if elements[-1] == ("",):
        elements[-1] = ("X",)
    return segment(tag, *elements)


@settings(max_examples=150, deadline=None)
@given(separators(), st.lists(segments(), min_size=1, max_size=8), st.sampled_from("34"),
       st.booleans())
def test_rendered_segments_are_read_back_equal(chosen: Separators, body: list[Segment],
                                                version: str, line_breaks: bool) -> None:
    data = render_interchange(header("UNOA", version), [OutgoingMessage("M1", PAXLST, body)],
                              chosen, line_breaks=line_breaks)
    interchange = read_interchange(data)
    assert interchange.separators.component == chosen.component
    assert interchange.separators.terminator == chosen.terminator
    read = interchange.messages[0].body()
    assert [(s.tag, s.elements) for s in read] == [(s.tag, s.elements) for s in body]


def test_a_rendered_paxlst_reads_back_with_its_counts() -> None:
    message = paxlst("M7", count=3)
    data = render_interchange(header("UNOC", "4"), [message, paxlst("M8", 1)])
    interchange = read_interchange(data)
    assert [m.reference for m in interchange.messages] == ["M7", "M8"]
    assert len(interchange.messages[0].segments) == len(message.body) + 2


UNICODE_VALUES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(UNICODE_VALUES, min_size=1, max_size=3).map(trimmed), min_size=1,
                max_size=5))
def test_utf8_values_private_use_characters_included_are_read_back_equal(
        elements: list[tuple[str, ...]]) -> None:
    if elements[-1] == ("",):
        elements[-1] = ("X",)
    body = [segment("FTX", *elements), segment("FTX", "\ue000\ue001?'+:", "\U000f0000")]
    data = render_interchange(header("UNOY", "4"), [OutgoingMessage("M1", PAXLST, body)],
                              Separators(repetition="*"))
    read = read_interchange(data).messages[0].body()
    assert [s.elements for s in read] == [s.elements for s in body]


def test_an_interchange_using_every_private_use_character_is_refused_not_stalled() -> None:
    every = "".join(chr(c) for area in (range(0xE000, 0xF900), range(0xF0000, 0xFFFFE),
                                        range(0x100000, 0x10FFFE)) for c in area)
    data = lines("UNB+UNOY:4+CARRIER+PORTGW+20240131:1405+R'", "UNH+1+PAXLST:D:05B:UN'",
                 "UNT+2+1'", "UNZ+1+R'").replace(b"UNT", f"FTX+A?+{every}'UNT".encode())
    assert refused(data).code == "EDI_CHARSET"
