"""A recipient's signed acknowledgement of the deliveries it took (DESIGN.md §6, §12):
non-repudiation of receipt, as AS4 has it.

The recipient names each delivery it took by its id and the SM3 of its payload exactly as
handed over, says when (its own clock, UTC, to the millisecond) and signs that with an SM2 key
of its own that has role `ack` in the gateway's keyring (user id 1234567812345678, DER). What
is signed is the canonical JSON of the agency, the deliveries taken and the time: keys
sorted, no spaces, UTF-8 (`Acknowledgement.signed_bytes`), so any toolkit that can write JSON
and sign with SM2 can make one. The wire form adds the signature in base64:

    {"agency": "cn.customs.sh",
     "taken": [{"delivery_id": "0190…", "digest": "9f8e…"}],
     "taken_at": "2026-12-07T08:00:00.000Z",
     "signature": "MEUCIQ…"}

The gateway verifies it with `AcknowledgementVerifier` (the agency must be the one the
acknowledgement is expected from, its key must have role `ack` and be valid now) and keeps
its canonical wire form, so an auditor can verify the signature again from the trail
(gateway.trail.taken).

The gateway takes an acknowledgement only while it is fresh: its `taken_at` at most
`ACK_MAX_AGE` behind the gateway's clock and `ACK_MAX_AHEAD` ahead of it (`check_fresh`,
ACK_STALE otherwise). Within that window a repeat of one (the same signed statement,
`Acknowledgement.statement_digest`, whatever its signature) is answered as the first was,
without recording anything again (gateway.trail.taken); past it, a repeat is refused as
stale, so the gateway remembers only a window's worth of statements.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from crypto import (
    DEFAULT_SM2_ID,
    CryptoError,
    KeyEntry,
    Keyring,
    KeyRole,
    SignatureInvalid,
    SM2PrivateKey,
    sm3_hex,
)
from gateway.clock import utc_now
from gateway.deliveries.proof import Delivery
from gateway.errors import GatewayError
from gateway.home.live_keyring import LiveKeyring

ACK_MALFORMED: Final = "ACK_MALFORMED"
ACK_TOO_LARGE: Final = "ACK_TOO_LARGE"
ACK_SIGNATURE_INVALID: Final = "ACK_SIGNATURE_INVALID"
ACK_AGENCY_MISMATCH: Final = "ACK_AGENCY_MISMATCH"
ACK_KEY_REFUSED: Final = "ACK_KEY_REFUSED"
ACK_DELIVERY_UNKNOWN: Final = "ACK_DELIVERY_UNKNOWN"
ACK_DIGEST_MISMATCH: Final = "ACK_DIGEST_MISMATCH"
ACK_STALE: Final = "ACK_STALE"

# How far an acknowledgement's signed time may be from the gateway's clock when it comes.
ACK_MAX_AGE: Final = timedelta(minutes=10)
ACK_MAX_AHEAD: Final = timedelta(minutes=1)

# Bounds on what is read before the signature is checked.
MAX_ACK_BYTES: Final = 512 * 1024
MAX_TAKEN: Final = 1000
MAX_AGENCY: Final = 256
MAX_SIGNATURE: Final = 128  # an SM2 DER signature is at most 72 bytes

_FIELDS: Final = frozenset({"agency", "taken", "taken_at", "signature"})
_TAKEN_FIELDS: Final = frozenset({"delivery_id", "digest"})
_DELIVERY_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")
_DIGEST: Final = re.compile(r"[0-9a-f]{64}\Z")
_TAKEN_AT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")


class AcknowledgementRefused(GatewayError):
    """An acknowledgement the gateway does not take; `code` says why. The message names the
    field and rule, never a value."""

    code = ACK_MALFORMED


@dataclass(frozen=True, slots=True)
class Taken:
    """One delivery the recipient says it took."""

    delivery_id: str
    digest: str  # SM3 hex of the delivery's payload bytes as handed over

    @classmethod
    def of(cls, delivery_id: str, payload: bytes) -> Taken:
        return cls(delivery_id, sm3_hex(payload))


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    agency: str
    taken: tuple[Taken, ...]
    taken_at: datetime  # the recipient's clock, UTC, to the millisecond
    signature: bytes  # SM2 DER by the agency's ack key, user id 1234567812345678

    def signed_bytes(self) -> bytes:
        """What the signature covers: canonical JSON of agency, taken and taken_at."""
        return canonical_json(self._unsigned())

    def statement_digest(self) -> str:
        """SM3 of the signed bytes: what a repeat of this acknowledgement is known by (its
        signature left out, as another signature over the same statement says nothing new)."""
        return sm3_hex(self.signed_bytes())

    def to_json(self) -> bytes:
        """The wire form: the signed fields and the signature in base64."""
        return canonical_json({**self._unsigned(),
                               "signature": base64.b64encode(self.signature).decode("ascii")})

    def _unsigned(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "taken": [{"delivery_id": t.delivery_id, "digest": t.digest} for t in self.taken],
            "taken_at": format_taken_at(self.taken_at),
        }

    @classmethod
    def from_json(cls, data: bytes) -> Acknowledgement:
        """The acknowledgement `data` holds; AcknowledgementRefused (ACK_TOO_LARGE,
        ACK_MALFORMED) naming the field and rule unless it is one, within the bounds."""
        if len(data) > MAX_ACK_BYTES:
            raise AcknowledgementRefused(f"an acknowledgement is at most {MAX_ACK_BYTES} bytes",
                                         code=ACK_TOO_LARGE)
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _malformed("the acknowledgement is not JSON in UTF-8") from None
        return cls.from_object(document)

    @classmethod
    def from_object(cls, document: object) -> Acknowledgement:
        """As `from_json`, from the JSON value already parsed (an acknowledgement inside a
        larger body)."""
        if not isinstance(document, dict) or set(document) != _FIELDS:
            raise _malformed("the acknowledgement is an object with exactly agency, taken, "
                             "taken_at and signature")
        return cls(_agency(document["agency"]), _taken(document["taken"]),
                   parse_taken_at(document["taken_at"]), _signature(document["signature"]))


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 (not \\u escapes): the bytes a signature covers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def format_taken_at(at: datetime) -> str:
    """UTC to the millisecond, with a Z: `2026-12-07T08:00:00.000Z`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_taken_at(value: object) -> datetime:
    if not isinstance(value, str) or not _TAKEN_AT.match(value):
        raise _malformed("taken_at is a UTC time to the millisecond, as "
                         "YYYY-MM-DDTHH:MM:SS.mmmZ")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise _malformed("taken_at is not a valid date and time") from None


def sign_acknowledgement(agency: str, taken: Sequence[Taken], taken_at: datetime,
                         key: SM2PrivateKey) -> Acknowledgement:
    """The acknowledgement of `taken`, signed with the agency's `key` (role ack).
    `taken_at` is kept to the millisecond, as the wire form carries it."""
    at = parse_taken_at(format_taken_at(taken_at))
    unsigned = Acknowledgement(agency, tuple(taken), at, b"")
    return Acknowledgement(agency, tuple(taken), at,
                           key.sign(unsigned.signed_bytes(), user_id=DEFAULT_SM2_ID))


def check_fresh(ack: Acknowledgement, now: datetime) -> None:
    """That `ack` was signed within the window the gateway takes acknowledgements in
    (ACK_MAX_AGE before `now`, ACK_MAX_AHEAD after): ACK_STALE otherwise."""
    if not now - ACK_MAX_AGE <= ack.taken_at <= now + ACK_MAX_AHEAD:
        raise AcknowledgementRefused(
            f"taken_at is within {int(ACK_MAX_AGE.total_seconds())} s before the gateway's "
            f"clock and {int(ACK_MAX_AHEAD.total_seconds())} s after it",
            code=ACK_STALE)


class AcknowledgementVerifier:
    """Checks acknowledgements against the agencies' keys with role `ack` in `keyring` (a
    LiveKeyring: the one in force at each check)."""

    __slots__ = ("_keyring",)

    def __init__(self, keyring: Keyring | LiveKeyring) -> None:
        self._keyring = keyring

    def verify(self, ack: Acknowledgement, *, expected_agency: str,
               at: datetime | None = None) -> KeyEntry:
        """The key entry that verified `ack`, signed by `expected_agency` with a key usable
        at `at` (now by default); AcknowledgementRefused: ACK_AGENCY_MISMATCH,
        ACK_SIGNATURE_INVALID, ACK_KEY_REFUSED (no such key, not an ack key, revoked, not
        valid), ACK_MALFORMED (nothing taken)."""
        if ack.agency != expected_agency:
            raise AcknowledgementRefused("the acknowledgement's agency is not the one it is "
                                         "expected from", code=ACK_AGENCY_MISMATCH)
        if not ack.taken:
            raise _malformed("taken names at least one delivery")
        keyring = (self._keyring.current if isinstance(self._keyring, LiveKeyring)
                   else self._keyring)
        try:
            return keyring.verify(ack.agency, ack.signature, ack.signed_bytes(),
                                  at=at or utc_now(), user_id=DEFAULT_SM2_ID,
                                  role=KeyRole.ACK)
        except SignatureInvalid as exc:
            raise AcknowledgementRefused("no ack key of the agency verifies the signature over "
                                         "the acknowledgement's signed bytes",
                                         code=ACK_SIGNATURE_INVALID) from exc
        except CryptoError as exc:
            raise AcknowledgementRefused(f"the agency's ack key: {exc.message} ({exc.code})",
                                         code=ACK_KEY_REFUSED) from exc


def check_taken(ack: Acknowledgement, deliveries: Sequence[Delivery | None]) -> None:
    """That `deliveries` (verified, in the order of `ack.taken`; None where the gateway found
    none under that id) are the ones the acknowledgement names, for its agency, with the
    payload digests it signed: ACK_DELIVERY_UNKNOWN, ACK_DIGEST_MISMATCH otherwise."""
    if len(deliveries) != len(ack.taken):
        raise AcknowledgementRefused("each delivery the acknowledgement names is looked up",
                                     code=ACK_DELIVERY_UNKNOWN)
    for taken, delivery in zip(ack.taken, deliveries, strict=True):
        if (delivery is None or delivery.delivery_id != taken.delivery_id
                or delivery.recipient != ack.agency):
            raise AcknowledgementRefused("taken.delivery_id names no delivery to the agency "
                                         "at the place given", code=ACK_DELIVERY_UNKNOWN)
        if sm3_hex(delivery.payload) != taken.digest:
            raise AcknowledgementRefused("taken.digest is not the SM3 of the delivery's "
                                         "payload", code=ACK_DIGEST_MISMATCH)


class Recorded(Protocol):
    """What recording an acknowledgement gave (gateway.trail.taken.TakenReceipt)."""

    @property
    def repeated(self) -> bool:
        """The acknowledgement had been recorded before: nothing was recorded now."""


class RecordsTaken(Protocol):
    """What records verified acknowledgements in the trail (gateway.trail.taken.TakenRecorder),
    for a wing below the trail that is handed one."""

    async def record(self, ack: Acknowledgement, ack_key_id: str,
                     deliveries: Sequence[Delivery]) -> Recorded: ...


def _malformed(rule: str) -> AcknowledgementRefused:
    return AcknowledgementRefused(rule, code=ACK_MALFORMED)


def _agency(value: object) -> str:
    if (not isinstance(value, str) or not value or len(value) > MAX_AGENCY
            or not value.isprintable()):
        raise _malformed(f"agency is a printable agency id of 1-{MAX_AGENCY} characters")
    return value


def _taken(value: object) -> tuple[Taken, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TAKEN:
        raise _malformed(f"taken is a list of 1-{MAX_TAKEN} deliveries")
    taken = tuple(_one_taken(item) for item in value)
    if len({t.delivery_id for t in taken}) != len(taken):
        raise _malformed("taken names each delivery once")
    return taken


def _one_taken(item: object) -> Taken:
    if not isinstance(item, dict) or set(item) != _TAKEN_FIELDS:
        raise _malformed("each of taken is an object with exactly delivery_id and digest")
    delivery_id, digest = item["delivery_id"], item["digest"]
    if not isinstance(delivery_id, str) or not _DELIVERY_ID.match(delivery_id):
        raise _malformed("taken.delivery_id is a delivery id (1-128 of A-Z a-z 0-9 . _ : -)")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise _malformed("taken.digest is the payload's SM3 in 64 lowercase hex digits")
    return Taken(delivery_id, digest)


def _signature(value: object) -> bytes:
    try:
        signature = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        signature = b""
    if not signature or len(signature) > MAX_SIGNATURE:
        raise _malformed("signature is the base64 of the DER SM2 signature")
    return signature
