"""What the EDIFACT tests share: synthetic interchanges written from the facts in
docs/edifact-research.md (no public sample is kept in the repository)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import ParseResult, RenderError
from message_formats.edifact import (
    InterchangeHeader,
    Level,
    MessageId,
    Segment,
    read_interchange,
)
from message_formats.edifact.writer import OutgoingMessage, segment

PAXLST = MessageId("PAXLST", "D", "05B", "UN", "IATA")


def header(syntax_id: str = "UNOA", version: str = "3", *, reference: str = "ICR1",
           ack: bool = False) -> InterchangeHeader:
    return InterchangeHeader(
        syntax_id=syntax_id, syntax_version=version, sender="CARRIER", sender_qualifier="ZZ",
        recipient="PORTGW", recipient_qualifier="ZZ",
        prepared="20240131:1405" if version == "4" else "240131:1405",
        control_reference=reference, acknowledgement_requested=ack, test=False)


def passenger_body(count: int = 2) -> list[Segment]:
    body = [segment("BGM", "745"), segment("NAD", "MS", "", "", "JOHN SMITH"),
            segment("TDT", "20", "UA123", "", "", "UA"), segment("LOC", "125", "FRA"),
            segment("DTM", ("189", "2401311405", "201")), segment("LOC", "87", "IAD")]
    for n in range(count):
        body += [segment("NAD", "FL", "", "", ("CLARK", f"MICHAEL {n}")),
                 segment("ATT", "2", "", "M"), segment("DTM", ("329", "720907")),
                 segment("NAT", "2", "USA"), segment("DOC", ("P", "110", "111"), f"X{n:07}"),
                 segment("DTM", ("36", "310218")), segment("LOC", "91", "USA")]
    body.append(segment("CNT", ("42", str(count))))
    return body


def paxlst(reference: str = "M1", count: int = 2) -> OutgoingMessage:
    return OutgoingMessage(reference, PAXLST, passenger_body(count))


def lines(*segments: str) -> bytes:
    """An interchange written by hand, one segment a line (CRLF)."""
    return "\r\n".join(segments).encode("latin-1")


BASIC = ("UNA:+.? '", "UNB+UNOA:3+CARRIER:ZZ+PORTGW:ZZ+240131:1405+ICR1++++1'",
         "UNH+M1+PAXLST:D:05B:UN:IATA'", "BGM+745'", "NAD+FL+++HILL?'S?+ROAD:A?:B??'",
         "UNT+4+M1'", "UNZ+1+ICR1'")


def interchange_with(*message: str, unz: str = "UNZ+1+ICR1'") -> bytes:
    return lines(BASIC[1], *message, unz)


# Defective interchanges: (data, code, CONTRL level, 0085, 0013, S011 element position).
DEFECTS = [
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "BGM+745'", "UNT+56+M1'"),
     "EDI_UNT_SEGMENT_COUNT", Level.MESSAGE, 29, "UNT", 1),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "BGM+745'", "UNT+X+M1'"),
     "EDI_UNT_SEGMENT_COUNT", Level.MESSAGE, 12, "UNT", 1),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "BGM+745'", "UNT+3+M 1'"),
     "EDI_UNT_REFERENCE", Level.MESSAGE, 28, "UNT", 2),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "BGM+745'", "UNT+3+M1'", unz="UNZ+2+ICR1'"),
     "EDI_UNZ_MESSAGE_COUNT", Level.INTERCHANGE, 29, "UNZ", 1),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "BGM+745'", "UNT+3+M1'", unz="UNZ+1+ICR2'"),
     "EDI_UNZ_REFERENCE", Level.INTERCHANGE, 28, "UNZ", 2),
    (interchange_with("UNG+PAXLST+A+B+240131:1405+G1+UN+D:05B'", "UNH+M1+PAXLST:D:05B:UN'",
                      "UNT+2+M1'", "UNE+2+G1'"),
     "EDI_UNE_MESSAGE_COUNT", Level.GROUP, 29, "UNE", 1),
    (interchange_with("UNG+PAXLST+A+B+240131:1405+G1+UN+D:05B'", "UNH+M1+PAXLST:D:05B:UN'",
                      "UNT+2+M1'", "UNE+1+G2'"),
     "EDI_UNE_REFERENCE", Level.GROUP, 28, "UNE", 2),
    (interchange_with("UNG+PAXLST+A+B+240131:1405+G1+UN+D:05B'", "UNH+M1+PAXLST:D:05B:UN'",
                      "UNT+2+M1'", "UNE+1+G1'", unz="UNZ+2+ICR1'"),
     "EDI_UNZ_GROUP_COUNT", Level.INTERCHANGE, 29, "UNZ", 1),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "BGM+745'", "UNH+M2+PAXLST:D:05B:UN'",
                      "UNT+2+M2'", unz="UNZ+2+ICR1'"),
     "EDI_UNT_MISSING", Level.MESSAGE, 13, "UNT", 0),
    (interchange_with("UNH+M1+PAXLST:D:05B'", "UNT+2+M1'"),
     "EDI_UNH_INVALID", Level.MESSAGE, 13, "UNH", 2),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "UNT+2+M1'", "BGM+745'"),
     "EDI_SEGMENT_OUTSIDE_MESSAGE", Level.INTERCHANGE, 33, "", 0),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "UNT+2+M1'",
                      "UNG+PAXLST+A+B+240131:1405+G1+UN+D:05B'"),
     "EDI_GROUPS_MIXED", Level.INTERCHANGE, 30, "", 0),
    (interchange_with(), "EDI_NO_MESSAGE", Level.INTERCHANGE, 32, "", 0),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "UNT+2+M1'", unz="UNZ+1+ICR1'13Nov09"),
     "EDI_AFTER_UNZ", Level.INTERCHANGE, 33, "", 0),
    (lines(BASIC[1], "UNH+M1+PAXLST:D:05B:UN'", "UNT+2+M1'"),
     "EDI_UNZ_MISSING", Level.INTERCHANGE, 13, "UNZ", 0),
    (lines(BASIC[1], "UNH+M1+PAXLST:D:05B:UN'", "UNT+2+M1'", "UNZ+1+IC"),
     "EDI_UNZ_MISSING", Level.INTERCHANGE, 13, "UNZ", 0),
    (lines("UNB+UNOA:3+CARRIER+PORTGW+240131:1405'", "UNH+M1+PAXLST:D:05B:UN'", "UNT+2+M1'"),
     "EDI_UNB_INVALID", Level.INTERCHANGE, 13, "UNB", 5),
    (lines("UNH+M1+PAXLST:D:05B:UN'", "UNT+2+M1'"),
     "EDI_UNB_MISSING", Level.INTERCHANGE, 13, "UNB", 0),
    (lines("UNB+UNOZ:3+CARRIER+PORTGW+240131:1405+R'"),
     "EDI_SYNTAX_UNSUPPORTED", Level.INTERCHANGE, 2, "UNB", 1),
    (lines("UNB+UNOA:5+CARRIER+PORTGW+240131:1405+R'"),
     "EDI_SYNTAX_UNSUPPORTED", Level.INTERCHANGE, 2, "UNB", 1),
    (lines("UNA:+.?+'", *BASIC[1:]), "EDI_UNA_INVALID", Level.INTERCHANGE, 20, "UNA", 0),
    (lines("UNA:+A? '", *BASIC[1:]), "EDI_UNA_INVALID", Level.INTERCHANGE, 20, "UNA", 0),
    (b"UNA:+", "EDI_UNA_INVALID", Level.INTERCHANGE, 20, "UNA", 0),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "'", "UNT+3+M1'"),
     "EDI_EMPTY_SEGMENT", Level.INTERCHANGE, 13, "", 0),
    (lines(BASIC[1], "UNH+M1+PAXLST:D:05B:UN'", "UNT+2+M1'", "UNZ+1+ICR1?"),
     "EDI_RELEASE_UNTERMINATED", Level.INTERCHANGE, 22, "", 0),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "nad+FL'", "UNT+3+M1'"),
     "EDI_SEGMENT_TAG", Level.SEGMENT, 12, "", 0),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "NAD+FL+++Nov\x87k'", "UNT+3+M1'"),
     "EDI_CHARSET", Level.INTERCHANGE, 21, "", 0),
    (interchange_with("UNH+M1+PAXLST:D:05B:UN'", "NAD+FL+++No\x00k'", "UNT+3+M1'"),
     "EDI_CHARSET", Level.INTERCHANGE, 21, "", 0),
]


@dataclass(frozen=True, slots=True)
class EdifactProbeAdapter:
    """A test-only adapter of EDIFACT message types (no real one is needed to test the
    layer, detection and CONTRL): it reads the interchange with the layer and keeps its
    message references."""

    format_id: str = "probe-edifact"
    document_type: str = "ProbeEdifact"
    schema_name: str = "px.test.ProbeEdifact"
    media_type: str = "application/EDIFACT"
    edifact_message_types: frozenset[str] = frozenset({"PAXLST"})

    def parse(self, data: bytes) -> ParseResult:
        interchange = read_interchange(data)
        references = [message.reference for message in interchange.messages]
        return ParseResult({"references": references}, interchange.control_reference, 1)

    def render(self, record: Mapping[str, Any]) -> bytes:
        raise RenderError("the probe renders nothing")
