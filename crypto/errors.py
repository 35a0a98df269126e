"""Exception hierarchy of the crypto package; every error carries a stable ``code``."""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error raised by ``crypto``."""

    code: str = "CRYPTO_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


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


class DecryptionFailed(CryptoError):
    """Wrong key, tampered or malformed ciphertext; deliberately not more specific."""

    code = "CRYPTO_DECRYPTION_FAILED"
