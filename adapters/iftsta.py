"""UN/EDIFACT IFTSTA, the multimodal status report a carrier sends its customer (directories
D.99B, D.00B and later), read into px.canonical.TransportStatusReport and rendered back
("iftsta-edifact"; docs/adapters.md, "IFTSTA").

No canonical record held transport events (px.gateway.StatusEvent is the gateway's own
submission status): the report is a record of its own, one event per STS, each naming the
transport document, booking, containers, place and local time it concerns.

The message, as read (groups by their trigger segment; others are passed by):
  BGM 1004 report number [C106 1056 version] 1225 function
  CNI+n consignment [RFF+BM, RFF+BN]
    STS event (C556 9011 code :: 3055 agency : 4405 text), RFF+BM/BN, DTM+334, LOC+175, EQD+CN
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import groupby
from typing import Any, ClassVar

from message_formats.edifact import Interchange, Message, Segment, segment

from .base import ParseResult
from .edi_text import (
    REQUIRED,
    UNDATED,
    EdifactAdapter,
    Envelope,
    bgm_version,
    date_time_segment,
    first,
    interchange_bytes,
    local_time,
    local_value,
    location,
    qualified,
    refused,
    split_groups,
    text_or_none,
)
from .fal2 import CONTAINER_CHECK_DIGIT_RULE
from .iso6346 import is_valid_container_number

MESSAGE_TYPE = "IFTSTA"
STATUS_REPORT = "23"  # UNCL 1001, what render writes in BGM
EVENT_TIME, EVENT_PLACE, CONTAINER = "334", "175", "CN"
SEQUENCE = "RULE_SEQUENCE"


def business_key(record: Mapping[str, Any]) -> str:
    """The sender and its report number: every change of a report is a new version."""
    return f"{MESSAGE_TYPE}:{record['sender_id']}:{record['report_number']}"


class IftstaAdapter(EdifactAdapter):
    format_id = "iftsta-edifact"
    document_type = "transport-status"
    schema_name = "px.canonical.TransportStatusReport"
    edifact_message_types: ClassVar[frozenset[str]] = frozenset({MESSAGE_TYPE})
    label = MESSAGE_TYPE
    cannot_carry = "consignments out of order"
    __slots__ = ()

    @staticmethod
    def read(interchange: Interchange, message: Message) -> ParseResult:
        record, version = _read(interchange, message)
        return ParseResult(record, business_key(record), version)

    @staticmethod
    def write(record: Mapping[str, Any], version: int) -> bytes:
        return _render(record, version)


# ---------------------------------------------------------------- IFTSTA -> canonical record


def _read(interchange: Interchange, message: Message) -> tuple[dict[str, Any], int]:
    header, consignments = split_groups(message.body(), "CNI")
    bgm = first(header, "BGM")
    if bgm is None or not bgm.value(1) or not bgm.value(2):
        raise refused(REQUIRED, bgm or message.segments[0], "BGM 1004 1225", "the report "
                      "number and the message function are required")
    events = [event for number, group in enumerate(consignments, start=1)
              for event in _consignment(number, group)]
    if not events:
        raise refused(REQUIRED, message.segments[-1], "STS", "a status report holds at "
                      "least one status (STS)")
    identifier = message.identifier
    version = ":".join(p for p in (identifier.version, identifier.release, identifier.agency,
                                   identifier.association) if p)
    return {"report_number": bgm.value(1), "function_code": bgm.value(2),
            "sender_id": interchange.sender, "receiver_id": interchange.recipient,
            "message_version": version, "events": events}, bgm_version(bgm)


def _consignment(number: int, group: Sequence[Segment]) -> Iterator[dict[str, Any]]:
    cni = group[0]
    if cni.value(0) != str(number):
        raise refused(SEQUENCE, cni, "1490", f"must be {number}: the consignments are "
                      "numbered 1, 2, 3 and on, in message order")
    own, statuses = split_groups(group[1:], "STS")
    document = _reference(own, "BM") or text_or_none(cni.value(1))
    booking = _reference(own, "BN")
    for status in statuses:
        yield _event(number, status, document, booking)


def _reference(segments: Sequence[Segment], qualifier: str) -> str | None:
    rff = next((s for s in segments if s.tag == "RFF" and s.value(0) == qualifier), None)
    return None if rff is None else text_or_none(rff.value(0, 1))


def _event(number: int, group: Sequence[Segment], document: str | None,
           booking: str | None) -> dict[str, Any]:
    sts = group[0]
    code = sts.value(1)
    if not code:
        raise refused(REQUIRED, sts, "C556 9011", "the status event code is required")
    time = qualified(group, "DTM", EVENT_TIME)
    place = qualified(group, "LOC", EVENT_PLACE)
    return {
        "consignment_number": number,
        "transport_document_number": _reference(group, "BM") or document,
        "booking_reference": _reference(group, "BN") or booking,
        "status_code": code,
        "status_code_agency": text_or_none(sts.value(1, 2)),
        "status_text": text_or_none(sts.value(1, 3)),
        "event_time_local": None if time is None else local_time(time)["local_date_time"],
        "location_un_locode": None if place is None else location(place),
        "location_name": None if place is None else text_or_none(place.value(1, 3)),
        "container_numbers": [_container(eqd) for eqd in group
                              if eqd.tag == "EQD" and eqd.value(0) == CONTAINER],
    }


def _container(eqd: Segment) -> str:
    number = eqd.value(1)
    if not is_valid_container_number(number):
        raise refused("RULE_CONTAINER_CHECK_DIGIT", eqd, "C237 8260",
                      CONTAINER_CHECK_DIGIT_RULE)
    return number


# ---------------------------------------------------------------- canonical record -> IFTSTA


def _render(record: Mapping[str, Any], version: int) -> bytes:
    envelope = Envelope(record["sender_id"], record["receiver_id"], UNDATED, "1",
                        MESSAGE_TYPE, record["message_version"])
    return interchange_bytes(envelope, _body(record, version))


def _body(record: Mapping[str, Any], version: int) -> Iterator[Segment]:
    yield segment("BGM", STATUS_REPORT, (record["report_number"],
                                         str(version) if version != 1 else None),
                  record["function_code"])
    for number, events in groupby(record["events"], key=lambda e: e["consignment_number"]):
        yield segment("CNI", str(number))
        for event in events:
            yield from _event_segments(event)


def _event_segments(event: Mapping[str, Any]) -> Iterator[Segment]:
    yield segment("STS", "1", (event["status_code"], None, event["status_code_agency"],
                               event["status_text"]))
    if event["transport_document_number"] is not None:
        yield segment("RFF", ("BM", event["transport_document_number"]))
    if event["booking_reference"] is not None:
        yield segment("RFF", ("BN", event["booking_reference"]))
    if event["event_time_local"] is not None:
        yield date_time_segment(EVENT_TIME, local_value(event["event_time_local"]))
    if event["location_un_locode"] is not None:
        yield segment("LOC", EVENT_PLACE, (event["location_un_locode"], "139", "6",
                                           event["location_name"]))
    elif event["location_name"] is not None:
        raise ValueError("a place name without its UN/LOCODE is not written")
    for number in event["container_numbers"]:
        yield segment("EQD", CONTAINER, number)
