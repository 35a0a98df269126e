"""SM2 / SM3 / SM4, digital envelopes, Merkle batch seals and the agency keyring (DESIGN.md §6).

Everything public is exported here; the modules behind it are private.
"""

from ._backend import (
    BACKEND_ENV_VAR,
    BACKEND_NAMES,
    CryptoBackend,
    default_backend,
    get_backend,
)
from ._sm2codec import (
    CiphertextOrder,
    convert_ciphertext,
    signature_from_raw,
    signature_to_raw,
)
from .batch import BatchSeal, BatchSigner, BatchVerifier, InclusionProof, SignedBatch
from .envelope import ENVELOPE_VERSION, Envelope, envelope_recipient, open_envelope, seal_envelope
from .errors import (
    BackendUnavailable,
    CryptoError,
    DecryptionFailed,
    KeyInvalid,
    KeyNotValidAt,
    KeyRevoked,
    KeyringError,
    SignatureInvalid,
    UnknownSigner,
)
from .keyring import KeyEntry, Keyring
from .merkle import (
    MerkleTree,
    merkle_leaf_hash,
    merkle_proof,
    merkle_root,
    merkle_tree,
    verify_merkle_proof,
)
from .sm2 import DEFAULT_SM2_ID, SM2PrivateKey, SM2PublicKey
from .sm3 import hmac_sm3, sm3, sm3_hex
from .sm4 import (
    GCM_NONCE_SIZE,
    GCM_TAG_SIZE,
    SM4_BLOCK_SIZE,
    SM4_KEY_SIZE,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

__all__ = [
    "BACKEND_ENV_VAR",
    "BACKEND_NAMES",
    "DEFAULT_SM2_ID",
    "ENVELOPE_VERSION",
    "GCM_NONCE_SIZE",
    "GCM_TAG_SIZE",
    "SM4_BLOCK_SIZE",
    "SM4_KEY_SIZE",
    "BackendUnavailable",
    "BatchSeal",
    "BatchSigner",
    "BatchVerifier",
    "CiphertextOrder",
    "CryptoBackend",
    "CryptoError",
    "DecryptionFailed",
    "Envelope",
    "InclusionProof",
    "KeyEntry",
    "KeyInvalid",
    "KeyNotValidAt",
    "KeyRevoked",
    "Keyring",
    "KeyringError",
    "MerkleTree",
    "SM2PrivateKey",
    "SM2PublicKey",
    "SignatureInvalid",
    "SignedBatch",
    "UnknownSigner",
    "convert_ciphertext",
    "default_backend",
    "envelope_recipient",
    "get_backend",
    "hmac_sm3",
    "merkle_leaf_hash",
    "merkle_proof",
    "merkle_root",
    "merkle_tree",
    "open_envelope",
    "seal_envelope",
    "signature_from_raw",
    "signature_to_raw",
    "sm3",
    "sm3_hex",
    "sm4_cbc_decrypt",
    "sm4_cbc_encrypt",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
    "verify_merkle_proof",
]
