"""The UN/EDIFACT interchange layer (ISO 9735): UNA, UNB/UNZ, UNG/UNE, UNH/UNT, the
character repertoires, control counts and references, and CONTRL acknowledgements
(docs/edifact.md)."""

from .contrl import (
    CONTRL,
    Acknowledgement,
    Action,
    GroupReport,
    MessageReport,
    Report,
    acknowledged_contrl,
    message_rejected,
    negative_contrl,
    only_contrl,
    per_message_contrl,
    positive_contrl,
    read_contrl,
    rejection_contrl,
)
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
    whole_number,
)
from .reader import interchange_header, read_interchange
from .sniff import document_names, message_types, starts_as_edifact, starts_as_text
from .tokens import DEFAULT_LIMITS, Limits
from .writer import OutgoingMessage, render_interchange, segment

__all__ = [
    "CONTRL",
    "DEFAULT_LIMITS",
    "DEFAULT_SEPARATORS",
    "Acknowledgement",
    "Action",
    "EdifactError",
    "Group",
    "GroupReport",
    "Interchange",
    "InterchangeHeader",
    "Level",
    "Limits",
    "Message",
    "MessageId",
    "MessageReport",
    "OutgoingMessage",
    "Report",
    "Segment",
    "Separators",
    "Where",
    "acknowledged_contrl",
    "decimal_value",
    "document_names",
    "interchange_header",
    "message_rejected",
    "message_types",
    "negative_contrl",
    "only_contrl",
    "per_message_contrl",
    "positive_contrl",
    "read_contrl",
    "read_interchange",
    "rejection_contrl",
    "render_interchange",
    "segment",
    "starts_as_edifact",
    "starts_as_text",
    "whole_number",
]
