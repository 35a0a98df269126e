"""The values an interchange is read into (docs/edifact.md, "The interchange layer")."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from decimal import Decimal

from .errors import InterchangeHeader

Components = tuple[str, ...]
_NUMBER = re.compile(r"-?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")
# The longest numeric data element of the directories is n..35; its sign and decimal mark
# are not counted (ISO 9735-1 §10). A longer one is no number: a Decimal of a million digits
# is read at once, but turned into an int (a count, Avro's decimal) in quadratic time.
MAX_NUMBER_DIGITS = 35
MAX_WHOLE_NUMBER = 2**31 - 1  # Avro's int


@dataclass(frozen=True, slots=True)
class Separators:
    """The service characters of an interchange (UNA, or the defaults). ``repetition`` is
    empty below syntax version 4, where UNA's fifth character is reserved."""

    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"
    repetition: str = ""
    terminator: str = "'"

    def service_characters(self) -> str:
        """The characters that must be released when they occur in data."""
        return (self.component + self.element + self.release + self.repetition
                + self.terminator)

    def una(self) -> str:
        """The UNA service string advice that declares these separators."""
        return (f"UNA{self.component}{self.element}{self.decimal}{self.release}"
                f"{self.repetition or ' '}{self.terminator}")


DEFAULT_SEPARATORS = Separators()


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its tag and data elements, release characters resolved. An element
    holds its first repetition; ``repeats`` gives them all (syntax 4)."""

    tag: str
    elements: tuple[Components, ...]
    number: int
    repetitions: tuple[tuple[Components, ...], ...] = ()  # per element, only when repeated

    def value(self, element: int, component: int = 0) -> str:
        """The text of a component, "" when absent; element 0 is the first after the tag."""
        if element >= len(self.elements):
            return ""
        components = self.elements[element]
        return components[component] if component < len(components) else ""

    def components(self, element: int) -> Components:
        return self.elements[element] if element < len(self.elements) else ()

    def repeats(self, element: int) -> tuple[Components, ...]:
        """Every repetition of a data element (one for an element without repetitions)."""
        if element >= len(self.elements):
            return ()
        if self.repetitions:
            return self.repetitions[element]
        return (self.elements[element],)


@dataclass(frozen=True, slots=True)
class MessageId:
    """S009, the message identifier of UNH."""

    type: str
    version: str
    release: str
    agency: str
    association: str = ""

    def components(self) -> Components:
        parts = (self.type, self.version, self.release, self.agency, self.association)
        return parts if self.association else parts[:4]


@dataclass(frozen=True, slots=True)
class Message:
    reference: str  # 0062
    identifier: MessageId
    segments: tuple[Segment, ...]  # UNH .. UNT inclusive
    group_reference: str = ""  # 0048 of the UNG around it, "" outside a group

    def body(self) -> tuple[Segment, ...]:
        return self.segments[1:-1]


@dataclass(frozen=True, slots=True)
class Group:
    """A functional group's envelope (UNG); its messages stay in Interchange.messages."""

    reference: str  # 0048
    group_id: str  # 0038
    sender: str
    recipient: str
    message_count: int


@dataclass(frozen=True, slots=True)
class Interchange(InterchangeHeader):
    """The UNB facts (an InterchangeHeader), the separators, and every message, groups
    flattened, in order."""

    separators: Separators
    messages: tuple[Message, ...]
    groups: tuple[Group, ...] = ()

    @property
    def header(self) -> InterchangeHeader:
        """The UNB facts alone."""
        return InterchangeHeader(**{f.name: getattr(self, f.name)
                                    for f in fields(InterchangeHeader)})

    def message_types(self) -> frozenset[str]:
        return frozenset(message.identifier.type for message in self.messages)



def whole_number(text: str) -> bool:
    """ASCII digits that fit Avro's int (a version, a count, a sequence number): no value
    too large for the records, and int() never given more than ten digits."""
    return (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_WHOLE_NUMBER))
            and int(text) <= MAX_WHOLE_NUMBER)


def decimal_value(text: str) -> Decimal | None:
    """A numeric data value (ISO 9735 "n" type), None when it is not one. Either decimal
    mark is read: UNA declares one, and senders that declare "." still write "," (and the
    other way round), which cannot be confused in a number without group separators."""
    if len(text) > MAX_NUMBER_DIGITS + 2 or _NUMBER.fullmatch(text) is None:
        return None
    if sum(c.isdigit() for c in text) > MAX_NUMBER_DIGITS:
        return None
    return Decimal(text.replace(",", "."))
