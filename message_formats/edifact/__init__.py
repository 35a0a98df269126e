"""The UN/EDIFACT interchange layer (ISO 9735): UNA, UNB/UNZ, UNG/UNE, UNH/UNT, the
character repertoires, control counts and references, and CONTRL acknowledgements
(docs/edifact.md)."""

from .errors import EdifactError, InterchangeHeader, Level, Where
from .model import (
    DEFAULT_SEPARATORS,
    Group,
    Interchange,
    Message,
    MessageId,
    Segment,
    Separators,
    decimal_value,
)
from .reader import read_interchange
from .tokens import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_SEPARATORS",
    "EdifactError",
    "Group",
    "Interchange",
    "InterchangeHeader",
    "Level",
    "Limits",
    "Message",
    "MessageId",
    "Segment",
    "Separators",
    "Where",
    "decimal_value",
    "read_interchange",
]
