"""Segments to bytes: the release character put before service characters in data, trailing
empty components and elements left out, UNT/UNZ counts computed (docs/edifact.md)."""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import EdifactError, InterchangeHeader, Level, Where
from .model import DEFAULT_SEPARATORS, Components, MessageId, Segment, Separators
from .tokens import CODECS

# An element: its text, its components, or None (as a component, too) for one left empty.
Element = str | Sequence[str | None] | None


def segment(tag: str, *elements: Element) -> Segment:
    """A segment to render: each element a string or a sequence of components, None standing
    for an empty element or component (trailing empty ones are left out when written)."""
    return Segment(tag, tuple(("" if e is None else e,) if e is None or isinstance(e, str)
                              else tuple(c or "" for c in e) for e in elements), 0)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    reference: str
    identifier: MessageId
    body: Sequence[Segment]  # without UNH and UNT
    # UNH S010 status of the transfer: 0070 sequence of transfers[, 0073 first/last (C/F)]
    status_of_transfer: Components = ()


def released(text: str, separators: Separators) -> str:
    """`text` with the release character before each service character, in one pass at C
    speed (str.translate): a value of megabytes costs milliseconds."""
    service = separators.service_characters()
    if not any(char in text for char in service):
        return text
    release = separators.release
    if not release:
        raise render_error("a data value holds a service character and the "
                           "separators have no release character")
    return text.translate({ord(char): release + char for char in service})


def rendered_components(components: Components, separators: Separators) -> str:
    values = list(components)
    while values and not values[-1]:
        values.pop()
    return separators.component.join(released(v, separators) for v in values)


def rendered_segment(item: Segment, separators: Separators) -> str:
    if item.repetitions and separators.repetition:
        elements = [separators.repetition.join(rendered_components(r, separators)
                                               for r in reps)
                    for reps in item.repetitions]
    else:
        elements = [rendered_components(e, separators) for e in item.elements]
    while elements and not elements[-1]:
        elements.pop()
    return separators.element.join((item.tag, *elements)) + separators.terminator


def render_message(message: OutgoingMessage, separators: Separators) -> list[str]:
    unh = segment("UNH", message.reference, message.identifier.components(), "",
                  message.status_of_transfer)
    unt = segment("UNT", str(len(message.body) + 2), message.reference)
    return [rendered_segment(s, separators) for s in (unh, *message.body, unt)]


def unb_segment(header: InterchangeHeader) -> Segment:
    date, _, time = header.prepared.partition(":")
    return segment("UNB", (header.syntax_id, header.syntax_version),
                   (header.sender, header.sender_qualifier),
                   (header.recipient, header.recipient_qualifier), (date, time),
                   header.control_reference, "", "", "",
                   "1" if header.acknowledgement_requested else "", "",
                   "1" if header.test else "")


def render_interchange(header: InterchangeHeader, messages: Sequence[OutgoingMessage],
                       separators: Separators = DEFAULT_SEPARATORS, *,
                       line_breaks: bool = False) -> bytes:
    """An interchange (UNA, UNB, the messages, UNZ) in the repertoire UNB names."""
    if header.syntax_version != "4" and separators.repetition:
        separators = Separators(separators.component, separators.element, separators.decimal,
                                separators.release, "", separators.terminator)
    lines = [separators.una(), rendered_segment(unb_segment(header), separators)]
    for message in messages:
        lines.extend(render_message(message, separators))
    lines.append(rendered_segment(
        segment("UNZ", str(len(messages)), header.control_reference), separators))
    text = ("\r\n" if line_breaks else "").join(lines)
    try:
        return codecs.encode(text, CODECS[header.syntax_id])
    except (UnicodeEncodeError, KeyError) as error:
        raise render_error("a value is outside the repertoire UNB S001 names") from error


def render_error(message: str) -> EdifactError:
    return EdifactError(message, code="EDI_RENDER", where=Where(Level.INTERCHANGE, 18))
