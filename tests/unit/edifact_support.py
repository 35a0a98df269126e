"""What the EDIFACT tests share: synthetic interchanges written from the facts in
docs/edifact-research.md (no public sample is kept in the repository)."""

from __future__ import annotations

from message_formats.edifact import InterchangeHeader, MessageId, Segment
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
