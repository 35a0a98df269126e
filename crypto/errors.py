"""Exception hierarchy of the crypto package; every error carries a stable ``code``."""

from __future__ import annotations

from message_formats.errors import CodedError


class CryptoError(CodedError):
    """Base of every error raised by ``crypto``. Its text is the message alone: callers
    print the code beside it."""

    code = "CRYPTO_ERROR"

    def __str__(self) -> str:
        return self.message


class SignatureInvalid(CryptoError):
    code = "CRYPTO_SIGNATURE_INVALID"


class KeyInvalid(CryptoError):
    code = "CRYPTO_KEY_INVALID"


class BackendUnavailable(CryptoError):
    code = "CRYPTO_BACKEND_UNAVAILABLE"


class KeyringError(CryptoError):
    code = "KEYRING_ERROR"


class UnknownSigner(KeyringError):
    code = "AUTH_UNKNOWN_SENDER"


class KeyNotValidAt(KeyringError):
    code = "AUTH_KEY_NOT_VALID"


class KeyRevoked(KeyringError):
    code = "AUTH_KEY_REVOKED"


class KeyRoleInvalid(KeyringError):
    """A keyring entry gives a key a role its owner may not give it (an agency key that
    seals, a gateway key that signs documents)."""

    code = "KEYRING_ROLE_INVALID"


class KeyRoleRefused(KeyringError):
    """The key (or every key of the agency) lacks the role the signature needs."""

    code = "AUTH_KEY_ROLE"


class KeyKindRefused(KeyringError):
    """An RSA key (a legacy E-Port certificate's) asked for what only an SM2 key does: it
    verifies rsa-sha1 XML signatures and nothing else (crypto/keyring.py)."""

    code = "AUTH_KEY_NOT_SM2"


class SealKeyRefused(KeyringError):
    """A seal (trail seal, signed receipt) names a key that may not seal at its time; the
    code says which rule: SEAL_KEY_UNKNOWN, SEAL_KEY_NOT_SEALING, SEAL_KEY_NOT_VALID,
    SEAL_KEY_REVOKED."""

    code = "SEAL_KEY_REFUSED"


class DecryptionFailed(CryptoError):
    """Wrong key, tampered or malformed ciphertext; deliberately not more specific."""

    code = "CRYPTO_DECRYPTION_FAILED"


class CertificateRefused(KeyringError):
    """An X.509 certificate or revocation list that may not vouch for a key; the code says
    which rule: CERT_INVALID, CERT_UNTRUSTED, CERT_EXPIRED, CERT_NOT_YET_VALID, CERT_REVOKED,
    CRL_INVALID."""

    code = "CERT_INVALID"
