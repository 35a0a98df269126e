"""The keyring: which public keys speak for which agency, when, and for what.

Keys have roles (DESIGN.md §6). An agency's key signs that agency's documents (`document`)
and acknowledgements (`ack`); only the gateway's sealing keys (`seal`) seal trails, receipts
and deliveries. Who may hold which role is fixed by the key's owner: the keys of the
keyring's gateway identity (`gateway`, default ``px.gateway``) are sealing keys and nothing
else; every other key is an agency's and never seals. A `roles` list in an entry may narrow
that (an agency key for acknowledgements only), never widen it.

Keys are SM2 (`KeyEntry`), or RSA from a legacy E-Port certificate (`RsaKeyEntry`). An RSA
key verifies the XML signatures of the conventions that name RSA (`rsa-sha1`) and nothing
else: its entry has role `document` only, is never the gateway's, and is not among the
entries the SM2 uses see (`entries`, `keys_for`, `verify`, `current_key`, `by_key_id`...):
they refuse a key id, or an agency that has only RSA keys, with AUTH_KEY_NOT_SM2 (a seal
naming one: SEAL_KEY_NOT_SEALING). Only the certificate lookups (`certificate_signer`,
`usable_certificates`, `certificate_entries`) give either kind, typed `SignerEntry`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Self, TypeVar

import structlog

from .batch import BatchSeal, BatchVerifier, InclusionProof
from .client_certs import ClientBinding, binding_from_table, index_bindings
from .errors import (
    CertificateRefused,
    CryptoError,
    KeyKindRefused,
    KeyNotValidAt,
    KeyRevoked,
    KeyringError,
    KeyRoleInvalid,
    KeyRoleRefused,
    SealKeyRefused,
    SignatureInvalid,
    UnknownSigner,
)
from .rsa_keys import LEGACY_RSA_MIN_BITS, RSA_MIN_BITS, RsaPublicKey
from .sm2 import DEFAULT_SM2_ID, SM2PublicKey
from .sm3 import sm3_hex
from .x509 import (
    CERT_EXPIRED,
    CERT_INVALID,
    CERT_NOT_YET_VALID,
    CERT_REVOKED,
    CERT_UNTRUSTED,
    Certificate,
    CertificateKey,
    TrustStore,
    certificates_from_bytes,
    revocation_lists_from_bytes,
    serial_from_key_name,
)

BEGINNING_OF_TIME = datetime.min.replace(tzinfo=UTC)
AUTH_SIGNATURE_INVALID = "AUTH_SIGNATURE_INVALID"
DEFAULT_GATEWAY_ID = "px.gateway"

# Why a seal is refused; the stable codes of SealKeyRefused and of a seal's bad signature.
SEAL_KEY_UNKNOWN = "SEAL_KEY_UNKNOWN"
SEAL_KEY_NOT_SEALING = "SEAL_KEY_NOT_SEALING"
SEAL_KEY_NOT_VALID = "SEAL_KEY_NOT_VALID"
SEAL_KEY_REVOKED = "SEAL_KEY_REVOKED"
SEAL_SIGNATURE_INVALID = "SEAL_SIGNATURE_INVALID"

SEAL_RULE = "only the gateway's sealing keys (role seal) seal; an agency's key never does"

_ENTRY_FIELDS = frozenset({"agency", "public_key", "certificate", "valid_from", "valid_to",
                           "revoked_at", "roles"})
_TOP_LEVEL = frozenset({"key", "gateway", "client", "trust", "crls", "rsa_min_bits"})
_DATES = ("valid_from", "valid_to", "revoked_at")


class KeyRole(StrEnum):
    """What a key may sign."""

    DOCUMENT = "document"  # its agency's submitted documents
    ACK = "ack"  # its agency's acknowledgements of what it received
    SEAL = "seal"  # the gateway's trail seals, receipts and deliveries


AGENCY_ROLES = frozenset({KeyRole.DOCUMENT, KeyRole.ACK})
GATEWAY_ROLES = frozenset({KeyRole.SEAL})
RSA_RULE = ("an RSA key (a legacy E-Port certificate) only verifies rsa-sha1 XML signatures "
            "of its agency's documents; seals, acknowledgements and envelopes need SM2")

_log = structlog.get_logger(__name__)


def require_utc(value: datetime, name: str) -> datetime:
    """Return ``value`` in UTC; ValueError for a naive datetime."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SignerEntry:
    """One key of one agency (or of the gateway); valid on [valid_from, valid_to) and until
    it is revoked, for its `roles`. Roles None: those its owner has (`Keyring` fills them
    in; an entry outside a keyring may do nothing). Made as one of its two kinds,
    `KeyEntry` (SM2) or `RsaKeyEntry`, whose `ROLES` are the roles its kind may have.

    A key may come with the X.509 `certificate` that vouches for it (its public key must be
    the certificate's): the window is then narrowed to the certificate's validity
    (notAfter is the window's exclusive end), and `certificate_revoked_at` is when a CRL
    revoked the certificate."""

    ROLES: ClassVar[frozenset[KeyRole]] = frozenset()

    agency_id: str
    public_key: CertificateKey
    valid_from: datetime = BEGINNING_OF_TIME
    valid_to: datetime | None = None
    revoked_at: datetime | None = None
    roles: frozenset[KeyRole] | None = None
    certificate: Certificate | None = None
    certificate_revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        if type(self) is SignerEntry:
            raise TypeError("make a KeyEntry (SM2) or an RsaKeyEntry, not a SignerEntry")
        if not self.agency_id:
            raise ValueError("agency_id must not be empty")
        object.__setattr__(self, "valid_from", require_utc(self.valid_from, "valid_from"))
        for name in ("valid_to", "revoked_at", "certificate_revoked_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, require_utc(value, name))
        if self.certificate is not None:
            self._narrow_to(self.certificate)
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be later than valid_from")
        if self.roles is not None:
            object.__setattr__(self, "roles", _roles_of(self.roles))

    def _narrow_to(self, certificate: Certificate) -> None:
        if certificate.public_key != self.public_key:
            raise ValueError("public_key must be the certificate's public key")
        start = max(self.valid_from, certificate.not_before)
        end = min(self.valid_to or certificate.not_after, certificate.not_after)
        if end <= start:
            raise ValueError("the entry's window [valid_from, valid_to) must overlap its "
                             "certificate's validity [notBefore, notAfter)")
        object.__setattr__(self, "valid_from", start)
        object.__setattr__(self, "valid_to", end)

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def in_window(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def revoked_by(self, at: datetime) -> bool:
        return ((self.revoked_at is not None and self.revoked_at <= at)
                or (self.certificate_revoked_at is not None
                    and self.certificate_revoked_at <= at))

    def refusal(self, at: datetime) -> str | None:
        """The code of why this key may not be used at `at`, the certificate's reasons
        first; None when it may."""
        certificate = self.certificate
        if certificate is not None:
            if at < certificate.not_before:
                return CERT_NOT_YET_VALID
            if at >= certificate.not_after:
                return CERT_EXPIRED
            if self.certificate_revoked_at is not None and self.certificate_revoked_at <= at:
                return CERT_REVOKED
        if not self.in_window(at):
            return KeyNotValidAt.code
        return KeyRevoked.code if self.revoked_by(at) else None

    def usable_at(self, at: datetime) -> bool:
        return self.in_window(at) and not self.revoked_by(at)

    def may(self, role: KeyRole) -> bool:
        return self.roles is not None and role in self.roles

    def window(self) -> str:
        """The validity window, for messages: `[from, to)`."""
        start = ("the beginning" if self.valid_from == BEGINNING_OF_TIME
                 else self.valid_from.isoformat())
        end = "no end" if self.valid_to is None else self.valid_to.isoformat()
        return f"[{start}, {end})"


@dataclass(frozen=True, slots=True)
class KeyEntry(SignerEntry):
    """An SM2 key: the kind every use of the keyring takes."""

    ROLES: ClassVar[frozenset[KeyRole]] = frozenset(KeyRole)

    public_key: SM2PublicKey


@dataclass(frozen=True, slots=True)
class RsaKeyEntry(SignerEntry):
    """An RSA key of a legacy E-Port certificate: verifies its agency's rsa-sha1 XML
    signatures, nothing else (RSA_RULE)."""

    ROLES: ClassVar[frozenset[KeyRole]] = frozenset({KeyRole.DOCUMENT})

    public_key: RsaPublicKey


def certificate_entry(agency_id: str, certificate: Certificate,
                      certificate_revoked_at: datetime | None = None) -> SignerEntry:
    """The entry of `agency_id` for the key of `certificate`, of the kind its key is."""
    key = certificate.public_key
    if isinstance(key, RsaPublicKey):
        return RsaKeyEntry(agency_id, key, certificate=certificate,
                           certificate_revoked_at=certificate_revoked_at)
    return KeyEntry(agency_id, key, certificate=certificate,
                    certificate_revoked_at=certificate_revoked_at)


def _roles_of(values: Iterable[str]) -> frozenset[KeyRole]:
    if isinstance(values, str):
        raise ValueError("roles must be a collection of role names, not one string")
    try:
        roles = frozenset(KeyRole(value) for value in values)
    except ValueError:
        raise ValueError(f"roles must be among {_names(KeyRole)}") from None
    if not roles:
        raise ValueError("roles must name at least one role")
    return roles


def _iso(at: datetime | None) -> str:
    return "never" if at is None else at.isoformat()


def _names(roles: Iterable[KeyRole]) -> str:
    return ", ".join(sorted(role.value for role in roles))


_Entry = TypeVar("_Entry", bound=SignerEntry)


def with_roles(entry: _Entry, gateway_id: str) -> _Entry:
    """The entry with its roles filled in from its owner and its kind; KeyRoleInvalid when
    it is given a role its owner may not give it, KeyKindRefused (AUTH_KEY_NOT_SM2) for an RSA
    key of the gateway or given a role only SM2 keys have."""
    is_gateway = entry.agency_id == gateway_id
    allowed = (GATEWAY_ROLES if is_gateway else AGENCY_ROLES) & entry.ROLES
    if not allowed:
        raise KeyKindRefused(f"key {entry.key_id} of the gateway identity {gateway_id!r} is "
                             f"RSA: {RSA_RULE}")
    if entry.roles is None:
        return replace(entry, roles=allowed)
    refused = entry.roles - allowed
    if not refused:
        return entry
    if not refused <= entry.ROLES:
        raise KeyKindRefused(f"key {entry.key_id} of {entry.agency_id!r} is RSA and is given "
                             f"role(s) {_names(refused - entry.ROLES)}: {RSA_RULE}")
    if is_gateway:
        rule = (f"keys of the gateway identity {gateway_id!r} only seal (role seal); "
                "documents and acknowledgements are signed with agencies' keys")
    else:
        rule = (f"only keys of the gateway identity {gateway_id!r} seal; an agency's key "
                f"may have roles {_names(AGENCY_ROLES)}")
    raise KeyRoleInvalid(f"key {entry.key_id} of {entry.agency_id!r} is given role(s) "
                         f"{_names(refused)}: {rule}")


class Keyring:
    """An immutable set of key entries, indexed by agency and by key id. `gateway_id` is the
    identity whose keys are the gateway's sealing keys; every other key is an agency's.
    `version` names what it was loaded from: the lowercase hex SM3 of the keyring file's
    bytes (`from_toml`), None for a keyring made in memory. `clients`: the TLS client
    certificates bound to their holders (crypto.client_certs). RSA entries are kept apart
    from the SM2 ones (the module's docstring)."""

    __slots__ = ("_by_agency", "_by_key_id", "_by_serial", "_certified", "_clients",
                 "_entries", "_gateway_id", "_rsa_entries", "_rsa_key_ids", "_version")

    def __init__(self, entries: Iterable[SignerEntry], *,
                 gateway_id: str = DEFAULT_GATEWAY_ID, version: str | None = None,
                 clients: Iterable[ClientBinding] = ()) -> None:
        if not gateway_id:
            raise KeyringError("the gateway identity must not be empty")
        self._gateway_id = gateway_id
        self._version = version
        self._clients = index_bindings(clients)
        listed = tuple(with_roles(entry, gateway_id) for entry in entries)
        _require_distinct_keys(listed)
        self._entries = tuple(entry for entry in listed if isinstance(entry, KeyEntry))
        self._rsa_entries = tuple(entry for entry in listed if isinstance(entry, RsaKeyEntry))
        self._rsa_key_ids = frozenset(entry.key_id for entry in self._rsa_entries)
        self._by_key_id: Mapping[str, KeyEntry] = MappingProxyType(
            {entry.key_id: entry for entry in self._entries})
        self._by_agency = _by_agency(self._entries)
        self._certified = _by_agency(entry for entry in listed if entry.certificate is not None)
        self._by_serial = _index_by_serial(listed)

    @property
    def entries(self) -> tuple[KeyEntry, ...]:
        """The SM2 entries."""
        return self._entries

    @property
    def rsa_entries(self) -> tuple[RsaKeyEntry, ...]:
        return self._rsa_entries

    @property
    def gateway_id(self) -> str:
        return self._gateway_id

    @property
    def version(self) -> str | None:
        return self._version

    def __len__(self) -> int:
        """How many SM2 entries (as `entries` and iterating); RSA ones: `rsa_entries`."""
        return len(self._entries)

    def __iter__(self) -> Iterator[KeyEntry]:
        return iter(self._entries)

    def keys_for(self, agency_id: str) -> tuple[KeyEntry, ...]:
        """The agency's SM2 entries."""
        return self._by_agency.get(agency_id, ())

    def certificate_entries(self, agency_id: str) -> tuple[SignerEntry, ...]:
        """The agency's entries given as certificates, SM2 and RSA, in the keyring's order."""
        return self._certified.get(agency_id, ())

    def client(self, fingerprint: str, at: datetime) -> ClientBinding | None:
        """The binding of the client certificate with this SHA-256 fingerprint if it is
        usable at `at`; None for a certificate bound to nobody, or no longer (or not yet)."""
        return self._binding(fingerprint, at, token=False)

    def console_user(self, digest: str, at: datetime) -> ClientBinding | None:
        """The binding of the console token with this SHA-256 digest (`token_digest`) if it
        is usable at `at`; None for a token bound to nobody, or no longer."""
        return self._binding(digest, at, token=True)

    def _binding(self, digest: str, at: datetime, *, token: bool) -> ClientBinding | None:
        binding = self._clients.get(digest)
        usable = binding is not None and binding.token is token and binding.usable_at(at)
        return binding if usable else None

    def by_key_id(self, key_id: str) -> KeyEntry:
        """The SM2 entry of `key_id`; UnknownSigner, or KeyKindRefused for an RSA key."""
        try:
            return self._by_key_id[key_id]
        except KeyError:
            if key_id in self._rsa_key_ids:
                raise KeyKindRefused(f"key {key_id} is RSA: {RSA_RULE}") from None
            raise UnknownSigner(f"no key with id {key_id} in the keyring") from None

    def by_certificate_serial(self, serial: int | str) -> SignerEntry:
        """The entry whose certificate has this serial: an int, or the hex of an E-Port
        KeyName (any case, padded or not). UnknownSigner if there is none; whether it may
        sign now is `certificate_signer`'s question."""
        number = serial if isinstance(serial, int) else serial_from_key_name(serial)
        try:
            return self._by_serial[number]
        except KeyError:
            raise UnknownSigner("no certificate with the serial KeyName names in the "
                                "keyring") from None

    def certificate_signer(self, serial: int | str, at: datetime,
                           role: KeyRole = KeyRole.DOCUMENT) -> SignerEntry:
        """The entry whose certificate has this serial (see `by_certificate_serial`) if it
        has `role` and is usable at `at`; else the refusal with its code: CERT_NOT_YET_VALID,
        CERT_EXPIRED, CERT_REVOKED, AUTH_KEY_NOT_VALID, AUTH_KEY_REVOKED, AUTH_KEY_ROLE."""
        entry = self.by_certificate_serial(serial)
        at = require_utc(at, "at")
        if not entry.may(role):
            raise KeyRoleRefused(f"{_certificate_of(entry)} of {entry.agency_id!r} lacks "
                                 f"role {role.value}: {_role_rule(role)}")
        if not entry.usable_at(at):
            what = f"{_certificate_of(entry)} of {entry.agency_id!r}"
            raise _refusal([entry], at, revoked=f"{what} is revoked at {at.isoformat()}",
                           not_valid=f"{what} is not valid at {at.isoformat()}")
        return entry

    def verify(
        self,
        agency_id: str,
        signature: bytes,
        data: bytes,
        *,
        at: datetime,
        user_id: bytes = DEFAULT_SM2_ID,
        role: KeyRole = KeyRole.DOCUMENT,
    ) -> KeyEntry:
        """Return the entry of ``agency_id`` whose key, usable at ``at`` and having ``role``,
        verifies. A sealing key never verifies a document: the gateway submits none, and a
        stolen sealing key must not let anyone speak for an agency (KeyRoleRefused)."""
        at = require_utc(at, "at")
        for entry in self._usable_keys(agency_id, at, role):
            try:
                entry.public_key.verify(signature, data, user_id=user_id)
            except SignatureInvalid:
                continue
            return entry
        _log.debug("keyring_signature_invalid", agency_id=agency_id, at=at.isoformat())
        raise SignatureInvalid(
            f"no key of {agency_id!r} valid at {at.isoformat()} verifies the signature",
            code=AUTH_SIGNATURE_INVALID,
        )

    def usable_entry(self, key_id: str, agency_id: str, at: datetime,
                     role: KeyRole = KeyRole.DOCUMENT) -> KeyEntry | None:
        """This keyring's entry for key `key_id` if it is `agency_id`'s, has `role` and is
        usable at `at`; None if not. A signature verified under another keyring (an earlier
        one, or ahead in a worker) counts under this one only if this holds: a key revoked,
        ended or removed since is not taken on the earlier keyring's word."""
        entry = self._by_key_id.get(key_id)
        if (entry is None or entry.agency_id != agency_id or not entry.may(role)
                or not entry.usable_at(require_utc(at, "at"))):
            return None
        return entry

    def current_key(self, agency_id: str, at: datetime,
                    role: KeyRole = KeyRole.DOCUMENT) -> KeyEntry:
        """The agency's newest key with `role` usable at `at`: the one to encrypt to."""
        return self._usable_keys(agency_id, require_utc(at, "at"), role)[0]

    def sealing_key(self, key_id: str, at: datetime) -> KeyEntry:
        """The sealing key `key_id`, usable at `at`: the only kind of key a seal may name.
        SealKeyRefused, its code naming the rule, for any other."""
        at = require_utc(at, "at")
        entry = self._by_key_id.get(key_id)
        if entry is None and key_id in self._rsa_key_ids:
            raise SealKeyRefused(f"key {key_id} is RSA: {RSA_RULE}", code=SEAL_KEY_NOT_SEALING)
        if entry is None:
            raise SealKeyRefused(f"key {key_id} is not in the keyring: {SEAL_RULE}",
                                 code=SEAL_KEY_UNKNOWN)
        if not entry.may(KeyRole.SEAL):
            raise SealKeyRefused(
                f"key {key_id} is a key of {entry.agency_id!r} with role(s) "
                f"{_names(entry.roles or ())}, not seal: {SEAL_RULE}", code=SEAL_KEY_NOT_SEALING)
        if entry.revoked_by(at):
            raise SealKeyRefused(
                f"sealing key {key_id} was revoked at {_iso(entry.revoked_at)}, not later "
                f"than the seal's time {at.isoformat()}: a seal made once its key is revoked "
                "does not count", code=SEAL_KEY_REVOKED)
        if not entry.in_window(at):
            raise SealKeyRefused(
                f"sealing key {key_id} was not valid at {at.isoformat()}, the seal's time "
                f"(valid {entry.window()}): a seal counts only when made inside its key's "
                "validity window", code=SEAL_KEY_NOT_VALID)
        return entry

    def verify_seal(self, signature: bytes, data: bytes, *, key_id: str, at: datetime,
                    user_id: bytes = DEFAULT_SM2_ID) -> KeyEntry:
        """The sealing key `key_id` (see `sealing_key`) if its SM2 signature over `data`
        verifies; SignatureInvalid (SEAL_SIGNATURE_INVALID) if it does not."""
        entry = self.sealing_key(key_id, at)
        try:
            entry.public_key.verify(signature, data, user_id=user_id)
        except SignatureInvalid:
            raise SignatureInvalid(
                f"the SM2 signature does not verify with sealing key {key_id} "
                f"({entry.agency_id}): a seal's signature must cover exactly its body",
                code=SEAL_SIGNATURE_INVALID) from None
        return entry

    def verify_batch_seal(self, message: bytes, proof: InclusionProof, seal: BatchSeal, *,
                          at: datetime, verifier: BatchVerifier | None = None) -> KeyEntry:
        """The sealing key that sealed `message` in the batch `seal` (see `sealing_key`), if
        the seal's signature and the message's inclusion `proof` hold; SignatureInvalid
        (SEAL_SIGNATURE_INVALID) if they do not. `verifier` remembers good seals."""
        entry = self.sealing_key(seal.key_id, at)
        try:
            (verifier or BatchVerifier(cache_size=0)).verify(message, proof, seal,
                                                             entry.public_key)
        except SignatureInvalid as exc:
            raise SignatureInvalid(
                f"the seal does not cover this message with sealing key {seal.key_id} "
                f"({exc.message})", code=SEAL_SIGNATURE_INVALID) from None
        return entry

    def usable_certificates(self, agency_id: str, at: datetime,
                            role: KeyRole = KeyRole.DOCUMENT) -> tuple[SignerEntry, ...]:
        """The agency's certificate entries (SM2 or RSA) with `role` usable at `at`, newest
        first (those an E-Port XML signature may name); when there is none, the refusal
        `verify` gives (UnknownSigner, CERT_EXPIRED, CERT_REVOKED...), over its certificate
        entries."""
        owned = self.certificate_entries(agency_id)
        if not owned:
            raise UnknownSigner(f"agency {agency_id!r} has no certificate in the keyring")
        return tuple(self._usable(owned, agency_id, require_utc(at, "at"), role))

    def _usable_keys(self, agency_id: str, at: datetime, role: KeyRole) -> list[KeyEntry]:
        owned = self.keys_for(agency_id)
        if not owned and agency_id in self._certified:  # certificates, none of them SM2
            raise KeyKindRefused(f"agency {agency_id!r} has only RSA keys: {RSA_RULE}")
        if not owned:
            raise UnknownSigner(f"agency {agency_id!r} has no keys in the keyring")
        return self._usable(owned, agency_id, at, role)

    @staticmethod
    def _usable(owned: tuple[_Entry, ...], agency_id: str, at: datetime,
                role: KeyRole) -> list[_Entry]:
        keys = [entry for entry in owned if entry.may(role)]
        if not keys:
            raise KeyRoleRefused(f"no key of {agency_id!r} has role {role.value}: "
                                 f"{_role_rule(role)}")
        usable = [entry for entry in keys if entry.usable_at(at)]
        if usable:
            # Newest first: during a key rollover the new key is the likely signer.
            return sorted(usable, key=lambda entry: entry.valid_from, reverse=True)
        raise _refusal(keys, at,
                       revoked=f"every key of {agency_id!r} valid at {at.isoformat()} is revoked",
                       not_valid=f"agency {agency_id!r} has no key valid at {at.isoformat()}")

    @classmethod
    def from_toml(cls, path: Path) -> Self:
        """Load ``[[key]]`` tables; key files are SPKI PEM, certificates PEM or DER, all
        relative to the TOML's directory. A `certificate` must be issued by a CA of the
        top-level `trust` list of files; `crls` are its CAs' revocation lists. An RSA key
        (of a certificate or a CA) under `rsa_min_bits` bits (default RSA_MIN_BITS; at least
        LEGACY_RSA_MIN_BITS, for the E-Port's RSA-1024 certificates) is refused with
        RSA_KEY_TOO_SHORT. The TOML file is read once: its bytes are both what is parsed
        and what `version` names."""
        path = Path(path)
        data = _read_file(path)
        document = _parse_toml(path, data)
        unknown = set(document) - _TOP_LEVEL
        if unknown:
            raise KeyringError(f"{path}: unknown top-level keys {sorted(unknown)}")
        gateway_id = document.get("gateway", DEFAULT_GATEWAY_ID)
        if not isinstance(gateway_id, str) or not gateway_id:
            raise KeyringError(f"{path}: 'gateway' must be a non-empty string (the identity "
                               "whose keys are the gateway's sealing keys)")
        tables = document.get("key", [])
        if not isinstance(tables, list):
            raise KeyringError(f"{path}: 'key' must be an array of tables ([[key]])")
        rsa_min_bits = _rsa_min_bits(path, document)
        trust = _trust_store(path, document, rsa_min_bits)
        entries = [_entry_from_table(path, number, table, gateway_id, trust, rsa_min_bits)
                   for number, table in enumerate(tables, 1)]
        clients = document.get("client", [])
        if not isinstance(clients, list):
            raise KeyringError(f"{path}: 'client' must be an array of tables ([[client]])")
        bindings = [_client_from_table(path, number, table)
                    for number, table in enumerate(clients, 1)]
        try:
            keyring = cls(entries, gateway_id=gateway_id, version=sm3_hex(data),
                          clients=bindings)
        except KeyringError as exc:
            raise KeyringError(f"{path}: {exc.message}", code=exc.code) from exc
        _log.info("keyring_loaded", path=str(path), keys=len(keyring),
                  rsa_keys=len(keyring.rsa_entries), version=keyring.version)
        return keyring


_CERTIFICATE_RULES = {
    CERT_NOT_YET_VALID: "its certificate's notBefore is later",
    CERT_EXPIRED: "its certificate's notAfter has passed",
    CERT_REVOKED: "its certificate is revoked by its CA's CRL",
}


def _refusal(entries: Iterable[SignerEntry], at: datetime, *, revoked: str,
             not_valid: str) -> KeyringError:
    """Why none of `entries` is usable at `at`: KeyRevoked when one is in its window, else
    KeyNotValidAt; its code is the certificates' reason when every entry has the same one
    (CERT_EXPIRED...), else the class's own."""
    codes = {entry.refusal(at) for entry in entries}
    code = next(iter(codes)) if len(codes) == 1 else None
    rule = _CERTIFICATE_RULES.get(code or "")
    because, code = (f": {rule}", code) if rule else ("", None)
    if any(entry.in_window(at) for entry in entries):
        return KeyRevoked(revoked + because, code=code)
    return KeyNotValidAt(not_valid + because, code=code)


def _certificate_of(entry: SignerEntry) -> str:
    return entry.certificate.describe() if entry.certificate is not None else "key"


def _require_distinct_keys(entries: Iterable[SignerEntry]) -> None:
    owners: dict[str, str] = {}
    for entry in entries:
        if entry.key_id in owners:
            raise KeyringError(f"key {entry.key_id} is listed twice "
                               f"({owners[entry.key_id]!r} and {entry.agency_id!r})")
        owners[entry.key_id] = entry.agency_id


def _by_agency(entries: Iterable[_Entry]) -> Mapping[str, tuple[_Entry, ...]]:
    by_agency: dict[str, list[_Entry]] = {}
    for entry in entries:
        by_agency.setdefault(entry.agency_id, []).append(entry)
    return MappingProxyType({agency: tuple(keys) for agency, keys in by_agency.items()})


def _index_by_serial(entries: Iterable[SignerEntry]) -> Mapping[int, SignerEntry]:
    by_serial: dict[int, SignerEntry] = {}
    for entry in entries:
        if entry.certificate is None:
            continue
        serial = entry.certificate.serial
        if serial in by_serial:
            raise KeyringError(f"{entry.certificate.describe()}: two certificates have the "
                               "serial it has; E-Port signatures name their signer by serial, "
                               "so a keyring's certificate serials must differ")
        by_serial[serial] = entry
    return MappingProxyType(by_serial)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyringError(f"{path}: cannot read keyring file: {exc.strerror or exc}") from exc


def _parse_toml(path: Path, data: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise KeyringError(f"{path}: not valid TOML: not UTF-8 at byte {exc.start}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise KeyringError(f"{path}: not valid TOML: {exc}") from exc


def _role_rule(role: KeyRole) -> str:
    if role is KeyRole.SEAL:
        return SEAL_RULE
    what = "documents" if role is KeyRole.DOCUMENT else "acknowledgements"
    return f"only an agency's own keys sign its {what}; the gateway's sealing keys never do"


def _rsa_min_bits(path: Path, document: dict[str, Any]) -> int:
    value = document.get("rsa_min_bits", RSA_MIN_BITS)
    if type(value) is not int or value < LEGACY_RSA_MIN_BITS:
        raise KeyringError(f"{path}: 'rsa_min_bits' must be an integer of at least "
                           f"{LEGACY_RSA_MIN_BITS} (the shortest RSA key accepted; default "
                           f"{RSA_MIN_BITS})")
    return value


def _trust_store(path: Path, document: dict[str, Any], rsa_min_bits: int) -> TrustStore:
    """The CAs of `trust` and the CRLs of `crls` (lists of files); KeyringError naming the
    file and, with a certificate's code, the rule it breaks."""
    files = {name: _file_list(path, document, name) for name in ("trust", "crls")}
    try:
        anchors = [certificate for file in files["trust"]
                   for certificate in certificates_from_bytes(_read_listed(file))]
        for anchor in anchors:
            anchor.require_rsa_bits(rsa_min_bits)
        crls = [(file, crl) for file in files["crls"]
                for crl in revocation_lists_from_bytes(_read_listed(file))]
        store = TrustStore(anchors, (crl for _, crl in crls))
    except KeyringError as exc:
        raise KeyringError(f"{path}: {exc.message}", code=exc.code) from exc
    now = datetime.now(UTC)
    for file, crl in crls:
        if crl.next_update is not None and crl.next_update <= now:
            # Still used: an old list still revokes what it names. The CA has a newer one.
            _log.warning("keyring_crl_stale", path=str(file),
                         next_update=crl.next_update.isoformat())
    return store


def _file_list(path: Path, document: dict[str, Any], name: str) -> list[Path]:
    value = document.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item
                                              for item in value):
        raise KeyringError(f"{path}: '{name}' must be a list of file paths")
    return [path.parent / item for item in value]


def _read_listed(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise KeyringError(f"cannot read {file}: {exc.strerror or exc}") from exc


def _entry_from_table(path: Path, number: int, table: object, gateway_id: str,
                      trust: TrustStore, rsa_min_bits: int) -> SignerEntry:
    where = f"{path}: [[key]] entry #{number}"
    if not isinstance(table, dict):
        raise KeyringError(f"{where}: must be a table")
    agency = table.get("agency")
    if agency:
        where += f" (agency {agency!r})"
    try:
        unknown = set(table) - _ENTRY_FIELDS
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        if not isinstance(agency, str) or not agency:
            raise ValueError("'agency' must be a non-empty string")
        if ("public_key" in table) == ("certificate" in table):
            raise ValueError("give the key as exactly one of 'public_key' (an SPKI PEM file) "
                             "and 'certificate' (an X.509 certificate file)")
        listed = replace(
            (certificate_entry(agency, *_trusted_certificate(path.parent, table["certificate"],
                                                              trust, rsa_min_bits))
             if "certificate" in table
             else KeyEntry(agency, _load_public_key(path.parent, table.get("public_key")))),
            valid_from=_toml_datetime(table, "valid_from") or BEGINNING_OF_TIME,
            valid_to=_toml_datetime(table, "valid_to"),
            revoked_at=_toml_datetime(table, "revoked_at"),
            roles=_toml_roles(table),
        )
        return with_roles(listed, gateway_id)
    except (ValueError, TypeError, OSError, CryptoError) as exc:
        code = exc.code if isinstance(exc, KeyringError) else None
        raise KeyringError(f"{where}: {_describe(exc)}", code=code) from exc


def _client_from_table(path: Path, number: int, table: Any) -> ClientBinding:
    try:
        dates = ({name: _toml_datetime(table, name) for name in _DATES}
                 if isinstance(table, dict) else {})
        return binding_from_table(table, dates, BEGINNING_OF_TIME)
    except ValueError as exc:
        raise KeyringError(f"{path}: [[client]] entry #{number}: {exc}") from exc


def _toml_roles(table: dict[str, Any]) -> frozenset[KeyRole] | None:
    value = table.get("roles")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'roles' must be a list of role names among {_names(KeyRole)}")
    return _roles_of(value)


def _trusted_certificate(base: Path, relative: object, trust: TrustStore,
                         rsa_min_bits: int) -> tuple[Certificate, datetime | None]:
    """The certificate of a file, issued by a CA of `trust`, its key long enough, and when
    its CA's CRLs revoked it (None: not revoked)."""
    if not isinstance(relative, str) or not relative:
        raise ValueError("'certificate' must be a path to an X.509 certificate file (PEM or "
                         "DER)")
    certificates = certificates_from_bytes(_read_listed(base / relative))
    if len(certificates) != 1:
        raise CertificateRefused("'certificate' must hold exactly one certificate",
                                 code=CERT_INVALID)
    certificate = certificates[0]
    certificate.require_rsa_bits(rsa_min_bits)
    if not trust.anchors:
        raise CertificateRefused(f"{certificate.describe()}: no CA is trusted (the keyring's "
                                 "'trust' list is empty)", code=CERT_UNTRUSTED)
    return certificate, trust.revoked_at(certificate, trust.issuer_of(certificate))


def _load_public_key(base: Path, relative: object) -> SM2PublicKey:
    if not isinstance(relative, str) or not relative:
        raise ValueError("'public_key' must be a path to an SPKI PEM file")
    key_path = base / relative
    try:
        pem = key_path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read public key {key_path}: {exc.strerror or exc}") from exc
    return SM2PublicKey.from_pem(pem)


def _toml_datetime(table: dict[str, Any], name: str) -> datetime | None:
    value = table.get(name)
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"'{name}' must be a TOML offset date-time such as 2026-01-01T00:00:00Z")
    return require_utc(value, name)


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, CryptoError) else str(exc)
