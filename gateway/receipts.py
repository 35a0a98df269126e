"""Receipts: the gateway's answer to each submission, accepted or rejected with a code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

RECEIPT_SCHEMA = "px.gateway.Receipt"
ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Receipt:
    submission_id: str
    event_id: str
    sender: str
    format_id: str
    digest_sm3: str
    status: str
    time: datetime
    recipients: tuple[str, ...] = ()
    document_type: str | None = None
    business_key: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_line: int | None = None

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    def to_avro(self) -> dict[str, Any]:
        record = asdict(self)
        record["recipients"] = list(self.recipients)
        return record

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> Receipt:
        return cls(**{**record, "recipients": tuple(record["recipients"])})

    def to_json(self) -> dict[str, Any]:
        record = self.to_avro()
        record["time"] = self.time.isoformat()
        return {k: v for k, v in record.items() if v is not None}
