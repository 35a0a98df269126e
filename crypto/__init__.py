"""SM2 / SM3 signing, Merkle batch proofs and the agency keyring (DESIGN.md §6).

Everything public is exported here; the modules behind it are private.
"""

from .errors import (
    BackendUnavailable,
    CryptoError,
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

__all__ = [
    "DEFAULT_SM2_ID",
    "BackendUnavailable",
    "CryptoError",
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
    "UnknownSigner",
    "hmac_sm3",
    "merkle_leaf_hash",
    "merkle_proof",
    "merkle_root",
    "merkle_tree",
    "sm3",
    "sm3_hex",
    "verify_merkle_proof",
]
