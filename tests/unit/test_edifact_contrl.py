"""CONTRL rendered for each outcome and read back: a refusal reported at its level (UCI,
UCF, UCM, UCS, UCD) with its ISO 9735-4 code; an acceptance acknowledged per message."""

from __future__ import annotations

from datetime import datetime

import pytest

from message_formats.edifact import (
    CONTRL,
    Acknowledgement,
    Action,
    EdifactError,
    Level,
    Where,
    message_rejected,
    negative_contrl,
    only_contrl,
    positive_contrl,
    read_contrl,
    read_interchange,
    rejection_contrl,
    render_interchange,
)
from tests.unit.edifact_support import DEFECTS, header, interchange_with, lines, paxlst

AT = datetime(2024, 1, 31, 14, 6)


def acknowledgement(contrl: bytes) -> Acknowledgement:
    interchange = read_interchange(contrl)
    [message] = interchange.messages
    assert message.identifier.type == CONTRL
    return read_contrl(message)


def rejection_of(data: bytes) -> EdifactError:
    with pytest.raises(EdifactError) as caught:
        read_interchange(data)
    return caught.value


@pytest.mark.parametrize("data, code, level, syntax_error, service, element", [
    defect for defect in DEFECTS if defect[1] not in {"EDI_UNB_MISSING", "EDI_UNA_INVALID",
                                                      "EDI_SYNTAX_UNSUPPORTED", "EDI_UNB_INVALID"}])
def test_each_defect_is_answered_with_a_rejecting_contrl_at_its_level(
        data: bytes, code: str, level: Level, syntax_error: int, service: str,
        element: int) -> None:
    error = rejection_of(data)
    contrl = negative_contrl(error, reference="C1", prepared=AT)
    assert contrl is not None, code
    read = acknowledgement(contrl)
    assert read.interchange.reference == "ICR1" and read.interchange.action == Action.REJECTED
    assert (read.subject_sender, read.subject_recipient) == ("CARRIER", "PORTGW")
    reported = {
        Level.INTERCHANGE: read.interchange,
        Level.GROUP: next(iter(read.reports("UCF")), None),
        Level.MESSAGE: next(iter(read.reports("UCM")), None),
        Level.SEGMENT: next(iter(read.reports("UCS")), None),
    }[level]
    assert reported is not None
    assert reported.syntax_error == syntax_error
    assert (reported.service_segment, reported.element) == (service, element)
    if level is Level.MESSAGE:
        assert read.reports("UCM")[0].action == Action.REJECTED


def test_a_contrl_is_addressed_back_to_the_sender() -> None:
    error = rejection_of(interchange_with("UNH+M1+PAXLST:D:05B:UN'", "UNT+9+M1'"))
    contrl = read_interchange(negative_contrl(error, reference="C9", prepared=AT) or b"")
    assert (contrl.sender, contrl.sender_qualifier) == ("PORTGW", "ZZ")
    assert (contrl.recipient, contrl.control_reference) == ("CARRIER", "C9")
    assert contrl.prepared == "240131:1406" and not contrl.acknowledgement_requested
    assert contrl.messages[0].identifier.components() == ("CONTRL", "D", "3", "UN")


def test_a_segment_defect_names_the_segment_position() -> None:
    error = rejection_of(interchange_with("UNH+M1+PAXLST:D:05B:UN'", "BGM+745'", "n d+FL'",
                                          "UNT+4+M1'"))
    read = acknowledgement(negative_contrl(error, reference="C1", prepared=AT) or b"")
    [ucm] = read.reports("UCM")
    [ucs] = read.reports("UCS")
    assert (ucm.reference, ucm.action, ucm.syntax_error) == ("M1", Action.REJECTED, 0)
    assert (ucs.reference, ucs.syntax_error) == ("3", 12)


def test_an_element_defect_is_reported_in_ucd() -> None:
    where = Where(Level.ELEMENT, 12, message_reference="318",
                  message_type=("IFTMIN", "D", "99B", "UN"), segment_number=4, element=3,
                  component=2)
    read = acknowledgement(rejection_contrl(header(), where, reference="C1", prepared=AT))
    assert [tag for tag, _ in read.details] == ["UCM", "UCS", "UCD"]
    [ucd] = read.reports("UCD")
    assert (ucd.syntax_error, ucd.element, ucd.component) == (12, 3, 2)
    assert read.reports("UCS")[0].reference == "4"
    assert read.reports("UCM")[0].message_type == ("IFTMIN", "D", "99B", "UN")


def test_a_business_rule_refusal_rejects_the_message_with_invalid_value() -> None:
    interchange = read_interchange(render_interchange(header(), [paxlst("M1"), paxlst("M2")]))
    where = message_rejected(interchange.messages[1])
    read = acknowledgement(rejection_contrl(interchange.header, where, reference="C1",
                                            prepared=AT))
    [ucm] = read.reports("UCM")
    assert (ucm.reference, ucm.action, ucm.syntax_error) == ("M2", Action.REJECTED, 12)


def test_an_accepted_interchange_is_acknowledged_per_group_and_message() -> None:
    data = lines("UNB+UNOA:4+CARRIER:ZZ+PORTGW:ZZ+20240131:1405+ICR1++++1'",
                 "UNG+PAXLST+CARRIER+PORTGW+20240131:1405+G1+UN+D:05B'",
                 "UNH+M1+PAXLST:D:05B:UN:IATA'", "BGM+745'", "UNT+3+M1'",
                 "UNH+M2+PAXLST:D:05B:UN:IATA'", "BGM+745'", "UNT+3+M2'", "UNE+2+G1'",
                 "UNZ+1+ICR1'")
    contrl = positive_contrl(read_interchange(data), reference="C1", prepared=AT)
    answer = read_interchange(contrl)
    assert answer.prepared == "20240131:1406"
    assert answer.messages[0].identifier.components() == ("CONTRL", "4", "1", "UN")
    read = read_contrl(answer.messages[0])
    assert read.interchange.action == Action.ACKNOWLEDGED
    assert [(tag, r.reference, r.action) for tag, r in read.details] == [
        ("UCF", "G1", 7), ("UCM", "M1", 7), ("UCM", "M2", 7)]


@pytest.mark.parametrize("data", [
    lines("UNB+UNOZ:3+CARRIER+PORTGW+240131:1405+R'"),
    lines("UNB+UNOA:3+CARRIER+PORTGW+240131:1405'", "UNH+M1+PAXLST:D:05B:UN'", "UNT+2+M1'"),
    lines("UNB+UNOA:3+CARRIER+PORTGW+240131:1405+R?'"),
])
def test_a_refusal_whose_unb_cannot_be_read_has_no_one_to_answer(data: bytes) -> None:
    error = rejection_of(data)
    assert error.header is None
    assert negative_contrl(error, reference="C1", prepared=AT) is None


def test_a_refusal_while_splitting_is_still_addressed_from_unb() -> None:
    error = rejection_of(lines("UNA:+.? '", "UNB+UNOA:3+CAR?+RIER+PORTGW+240131:1405+R?'1'",
                               "UNH+M1+PAXLST:D:05B:UN'", "''"))
    assert error.code == "EDI_EMPTY_SEGMENT" and error.header is not None
    assert (error.header.sender, error.header.control_reference) == ("CAR+RIER", "R'1")


def test_an_interchange_of_contrl_messages_is_recognised_as_such() -> None:
    error = rejection_of(interchange_with("UNH+M1+PAXLST:D:05B:UN'", "UNT+9+M1'"))
    contrl = read_interchange(negative_contrl(error, reference="C1", prepared=AT) or b"")
    assert only_contrl(contrl)
    assert not only_contrl(read_interchange(render_interchange(header(), [paxlst()])))


def test_a_message_that_is_no_contrl_is_refused_as_one() -> None:
    interchange = read_interchange(render_interchange(header(), [paxlst()]))
    with pytest.raises(EdifactError) as caught:
        read_contrl(interchange.messages[0])
    assert caught.value.code == "EDI_CONTRL_INVALID"
