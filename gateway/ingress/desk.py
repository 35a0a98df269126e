"""The front door's view of the gateway: hand over a submission, learn its receipt.

The HTTP ingress (gateway/ingress/http_api.py) talks only to a `Desk`. The service's desk puts each
submission on the ingress topic (acks=all) before anything else, so an accepted submission
survives a crash of any gateway process, and waits for its receipt from whichever process
owns the partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.errors import GatewayError
from gateway.receipts.receipt import SignedReceipt
from message_formats.dxp import DxpTransInfo


class IdempotencyKeyReused(GatewayError):
    """A submission id (its sender's Idempotency-Key) that names another document already:
    other bytes, another format, or another sender's submission."""

    code = "IDEMPOTENCY_KEY_REUSED"


@dataclass(frozen=True, slots=True)
class IngressRequest:
    submission_id: str
    sender: str
    format_id: str
    document: bytes
    signature: bytes  # detached DER SM2 signature over `document`


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """Where a submission stands. `receipt` None: not decided yet, and on the ingress topic
    unless `unconfirmed`."""

    submission_id: str
    receipt: SignedReceipt | None = None
    # The first submission's id, when this one carried the same document from the same
    # sender: its receipt is the first one's, and nothing is delivered again.
    duplicate_of: str | None = None
    # Not decided, and the broker has not confirmed that it took the document: it may be on
    # the ingress topic (a receipt follows) or not (sending it again with the same id is safe).
    unconfirmed: bool = False
    # A DXP envelope's TransInfo, when the gateway read it: what the door's DxpRep echoes.
    trans_info: DxpTransInfo | None = None

    @property
    def pending(self) -> bool:
        return self.receipt is None


class Desk(Protocol):
    async def submit(self, request: IngressRequest, *, wait_s: float) -> SubmitOutcome:
        """Puts the submission on the ingress topic, then waits up to `wait_s` for its
        receipt. Raises gateway.errors.BrokerUnavailable only when the submission is certainly
        not on the ingress topic (answered `unconfirmed` when that is not known), and
        IdempotencyKeyReused when its id names another document."""
        ...

    async def status(self, submission_id: str) -> SubmitOutcome | None:
        """The submission's receipt or pending state; None when the id is unknown."""
        ...

    def broker_up(self) -> bool:
        """False while the broker cannot be reached (ingress answers 503)."""
        ...
