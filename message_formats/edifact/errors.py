"""The coded refusals of the EDIFACT interchange layer, each carrying what a CONTRL needs.

Every refusal names the level it concerns (the interchange, a functional group, a message,
a segment of a message, or a data element of one), the ISO 9735-4 syntax error code (data
element 0085) to report there, and where: the message reference, the segment position and
tag, the element and component positions. ``header`` holds the UNB facts when the UNB was
read, so a negative CONTRL can be addressed even though the interchange was not."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from message_formats.errors import FormatError


class Level(StrEnum):
    """Where a refusal is reported in a CONTRL: UCI, UCF, UCM, UCM+UCS, UCM+UCS+UCD."""

    INTERCHANGE = "interchange"
    GROUP = "group"
    MESSAGE = "message"
    SEGMENT = "segment"
    ELEMENT = "element"


@dataclass(frozen=True, slots=True)
class InterchangeHeader:
    """The UNB facts (and the UNA separators) a CONTRL answer is addressed with."""

    syntax_id: str
    syntax_version: str
    sender: str
    sender_qualifier: str
    recipient: str
    recipient_qualifier: str
    prepared: str
    control_reference: str
    acknowledgement_requested: bool
    test: bool


@dataclass(frozen=True, slots=True)
class Where:
    """The place of a refusal inside an interchange, as a CONTRL reports it."""

    level: Level
    syntax_error: int  # ISO 9735-4 data element 0085
    service_segment: str = ""  # 0013: UNB/UNZ/UNA (UCI), UNG/UNE (UCF), UNH/UNT (UCM)
    group_reference: str = ""
    message_reference: str = ""
    message_type: tuple[str, ...] = ()  # S009 as written: type, version, release, agency[, code]
    segment_number: int = 0  # 0096: position in the message, UNH = 1
    segment_tag: str = ""
    element: int = 0  # S011 data element position (1-based, 0 = none)
    component: int = 0  # S011 component position (1-based, 0 = none)


class EdifactError(FormatError):
    """An interchange refused by the layer: `code` is EDI_..., `where` says how a CONTRL
    reports it, `header` the UNB facts when they were read."""

    code = "EDI_SYNTAX"

    def __init__(self, message: str, *, code: str, where: Where,
                 header: InterchangeHeader | None = None) -> None:
        super().__init__(message, code=code)
        self.where = where
        self.header = header

    def with_header(self, header: InterchangeHeader | None) -> EdifactError:
        """The same refusal, addressed: the reader learns the UNB before most refusals."""
        if self.header is None:
            self.header = header
        return self
