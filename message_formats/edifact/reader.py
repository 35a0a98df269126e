"""Raw segments to an Interchange: the envelopes (UNB/UNZ, UNG/UNE, UNH/UNT), their
mandatory elements, and the control counts and references, each lie refused with a code
that names the segment (docs/edifact.md, "Refusals")."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import asdict, dataclass, field

from .errors import EdifactError, InterchangeHeader, Level, Where
from .model import Group, Interchange, Message, MessageId, Segment
from .sniff import no_message
from .tokens import (
    DEFAULT_LIMITS,
    Limits,
    RawSegment,
    Tokens,
    interchange_error,
    tokenise,
    unb_probe,
)

_TAG = re.compile(r"[A-Z0-9]{3}")
_COUNT = re.compile(r"[0-9]{1,10}")
_ENVELOPE_TAGS = frozenset({"UNB", "UNG", "UNE", "UNH", "UNT", "UNZ"})


def read_interchange(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Interchange:
    """The interchange in `data`, or EdifactError naming the first defect."""
    try:
        tokens = tokenise(data, limits)
    except EdifactError as error:
        raise error.with_header(interchange_header(data)) from None
    header = read_header(tokens.segments[0] if tokens.segments else None,
                         tokens.syntax_id, tokens.syntax_version)
    try:
        return EnvelopeReader(tokens, header).interchange()
    except EdifactError as error:
        raise error.with_header(header) from None


def interchange_header(data: bytes) -> InterchangeHeader | None:
    """The UNB facts of an interchange, read from its first bytes alone (UNA and UNB, at most
    a few KiB), None when they cannot be read: whom its CONTRL is addressed to."""
    probe = unb_probe(data)
    if probe is None:
        return None
    try:
        return read_header(*probe)
    except EdifactError:
        return None


def read_header(unb: RawSegment | None, syntax_id: str,
                syntax_version: str) -> InterchangeHeader:
    if unb is None or unb.tag != "UNB":
        raise interchange_error("the interchange must begin with UNB (after UNA)",
                                "EDI_UNB_MISSING", 13, service_segment="UNB")
    segment = Segment(unb.tag, unb.elements, unb.position)
    for element, component, name in ((2, 1, "S002 0004 sender"),
                                     (3, 1, "S003 0010 recipient"),
                                     (4, 1, "S004 0017 date"), (4, 2, "S004 0019 time"),
                                     (5, 1, "0020 control reference")):
        if not segment.value(element - 1, component - 1):
            raise interchange_error(f"UNB {name} is mandatory", "EDI_UNB_INVALID", 13,
                                    service_segment="UNB", element=element,
                                    component=component)
    date, time = segment.value(3, 0), segment.value(3, 1)
    return InterchangeHeader(
        syntax_id=syntax_id, syntax_version=syntax_version,
        sender=segment.value(1), sender_qualifier=segment.value(1, 1),
        recipient=segment.value(2), recipient_qualifier=segment.value(2, 1),
        prepared=f"{date}:{time}", control_reference=segment.value(4),
        acknowledgement_requested=segment.value(8) == "1", test=segment.value(10) == "1")


@dataclass(slots=True)
class EnvelopeReader:
    """One pass over the raw segments after UNB, in envelope order."""

    tokens: Tokens
    header: InterchangeHeader
    position: int = 1  # index into tokens.segments of the next segment
    boundaries: list[int] = field(default_factory=list)  # where envelope segments stand
    messages: list[Message] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    def interchange(self) -> Interchange:
        self.boundaries = [index for index, raw in enumerate(self.tokens.segments)
                           if raw.tag in _ENVELOPE_TAGS]
        self.read_contents()
        self.read_unz()
        return Interchange(**asdict(self.header), separators=self.tokens.separators,
                           messages=tuple(self.messages), groups=tuple(self.groups))

    def peek(self) -> RawSegment | None:
        segments = self.tokens.segments
        return segments[self.position] if self.position < len(segments) else None

    def read_contents(self) -> None:
        while (segment := self.peek()) is not None and segment.tag != "UNZ":
            if segment.tag == "UNG":
                if self.messages and not self.groups:
                    raise mixed(segment)
                self.read_group(segment)
            elif segment.tag == "UNH":
                if self.groups:
                    raise mixed(segment)
                self.messages.append(self.read_message(segment, ""))
            else:
                raise interchange_error(
                    f"segment {segment.position} of the interchange ({tag_of(segment)}) stands "
                    "outside any message", "EDI_SEGMENT_OUTSIDE_MESSAGE", 33)
        if not self.messages:
            raise no_message()

    def read_group(self, ung: RawSegment) -> None:
        reference = value(ung, 4)
        if not reference:
            raise group_error("UNG 0048 group reference is mandatory", "EDI_UNG_INVALID", 13,
                              "UNG", reference, element=5)
        self.position += 1
        count = 0
        while (segment := self.peek()) is not None and segment.tag == "UNH":
            self.messages.append(self.read_message(segment, reference))
            count += 1
        if segment is None or segment.tag != "UNE":
            raise group_error(f"functional group {len(self.groups) + 1} has no UNE trailer",
                              "EDI_UNE_MISSING", 13, "UNE", reference)
        if count == 0:
            raise group_error(f"functional group {len(self.groups) + 1} holds no message",
                              "EDI_NO_MESSAGE", 32, "UNG", reference)
        check_count(segment, count, group_error("UNE 0060 must count the group's messages",
                                                "EDI_UNE_MESSAGE_COUNT", 29, "UNE", reference,
                                                element=1))
        if value(segment, 1) != reference:
            raise group_error("UNE 0048 must repeat the UNG group reference",
                              "EDI_UNE_REFERENCE", 28, "UNE", reference, element=2)
        self.groups.append(Group(reference=reference, group_id=value(ung, 0),
                                 sender=value(ung, 1), recipient=value(ung, 2),
                                 message_count=count))
        self.position += 1

    def read_message(self, unh: RawSegment, group: str) -> Message:
        reference = value(unh, 0)
        written = unh.elements[1] if len(unh.elements) > 1 else ()
        for component, name in enumerate(("0065 type", "0052 version", "0054 release",
                                          "0051 agency"), start=1):
            if component > len(written) or not written[component - 1]:
                raise message_error(f"UNH S009 {name} is mandatory", "EDI_UNH_INVALID", 13,
                                    "UNH", reference, written, element=2, component=component)
        if not reference:
            raise message_error("UNH 0062 message reference is mandatory", "EDI_UNH_INVALID",
                                13, "UNH", reference, written, element=1)
        identifier = MessageId(type=written[0], version=written[1], release=written[2],
                               agency=written[3],
                               association=written[4] if len(written) > 4 else "")
        segments = self.message_segments(reference, written)
        unt = segments[-1]
        if not _COUNT.fullmatch(unt.value(0)) or int(unt.value(0)) != len(segments):
            raise message_error(
                "UNT 0074 must count the message's segments, UNH and UNT included",
                "EDI_UNT_SEGMENT_COUNT", 29 if _COUNT.fullmatch(unt.value(0)) else 12, "UNT",
                reference, written, element=1)
        if unt.value(1) != reference:
            raise message_error("UNT 0062 must repeat the UNH message reference",
                                "EDI_UNT_REFERENCE", 28, "UNT", reference, written, element=2)
        return Message(reference=reference, identifier=identifier, segments=tuple(segments),
                       group_reference=group)

    def message_segments(self, reference: str, written: tuple[str, ...]) -> list[Segment]:
        """UNH .. UNT, numbered from 1; a message without UNT is refused."""
        segments = self.tokens.segments
        start = self.position
        following = bisect_right(self.boundaries, start)
        end = self.boundaries[following] if following < len(self.boundaries) else len(segments)
        if end == len(segments) or segments[end].tag != "UNT":
            raise message_error(f"message {self.ordinal()} has no UNT trailer", "EDI_UNT_MISSING",
                                13, "UNT", reference, written)
        raws = segments[start:end + 1]
        tags, elements, repetitions, _ = zip(*raws, strict=True)
        for tag in set(tags):
            if _TAG.fullmatch(tag) is None:
                raise segment_error(tags.index(tag) + 1, self.ordinal(), reference, written)
        self.position = end + 1
        return list(map(Segment, tags, elements, range(1, len(raws) + 1), repetitions))

    def ordinal(self) -> int:
        """The position in the interchange of the message being read: what a refusal's text
        names it by (its reference, the sender's to write, stays in `where` for the CONTRL)."""
        return len(self.messages) + 1

    def read_unz(self) -> None:
        unz = self.peek()
        if unz is None:
            raise interchange_error("the interchange has no UNZ trailer (truncated)",
                                    "EDI_UNZ_MISSING", 13, service_segment="UNZ")
        counted = len(self.groups) if self.groups else len(self.messages)
        code = "EDI_UNZ_GROUP_COUNT" if self.groups else "EDI_UNZ_MESSAGE_COUNT"
        check_count(unz, counted, interchange_error(
            "UNZ 0036 must count the interchange's messages (or groups)", code, 29,
            service_segment="UNZ", element=1))
        if value(unz, 1) != self.header.control_reference:
            raise interchange_error("UNZ 0020 must repeat the UNB control reference",
                                    "EDI_UNZ_REFERENCE", 28, service_segment="UNZ", element=2)
        if self.position + 1 < len(self.tokens.segments) or self.tokens.trailing:
            raise interchange_error("nothing may follow UNZ", "EDI_AFTER_UNZ", 33)


def value(raw: RawSegment, element: int, component: int = 0) -> str:
    if element >= len(raw.elements):
        return ""
    components = raw.elements[element]
    return components[component] if component < len(components) else ""


def tag_of(raw: RawSegment) -> str:
    return raw.tag if _TAG.fullmatch(raw.tag) else "an invalid tag"


def check_count(raw: RawSegment, expected: int, lie: EdifactError) -> None:
    written = value(raw, 0)
    if not _COUNT.fullmatch(written):
        raise EdifactError(lie.message, code=lie.code, where=Where(
            lie.where.level, 12, service_segment=lie.where.service_segment,
            group_reference=lie.where.group_reference, element=lie.where.element))
    if int(written) != expected:
        raise lie


def mixed(raw: RawSegment) -> EdifactError:
    return interchange_error(f"segment {raw.position} of the interchange mixes functional "
                             "groups and messages", "EDI_GROUPS_MIXED", 30)


def group_error(text: str, code: str, syntax_error: int, service_segment: str,
                reference: str, *, element: int = 0) -> EdifactError:
    return EdifactError(text, code=code, where=Where(
        Level.GROUP, syntax_error, service_segment=service_segment,
        group_reference=reference, element=element))


def message_error(text: str, code: str, syntax_error: int, service_segment: str,
                  reference: str, written: tuple[str, ...], *, element: int = 0,
                  component: int = 0) -> EdifactError:
    return EdifactError(text, code=code, where=Where(
        Level.MESSAGE, syntax_error, service_segment=service_segment,
        message_reference=reference, message_type=written, element=element,
        component=component))


def segment_error(number: int, ordinal: int, reference: str,
                  written: tuple[str, ...]) -> EdifactError:
    return EdifactError(f"segment {number} of message {ordinal} has no valid tag",
                        code="EDI_SEGMENT_TAG", where=Where(
                            Level.SEGMENT, 12, message_reference=reference,
                            message_type=written, segment_number=number))
