"""Batch signing: many messages, one SM2 signature over their Merkle root (DESIGN.md §6).

Leaves are SM3(0x00 ‖ message), nodes SM3(0x01 ‖ left ‖ right) (see ``merkle``). The seal's
signature covers

    b"portgw-batch-seal/1\\x00" ‖ count (8 bytes, big-endian) ‖ root (32 bytes)

so a signature made for something else, or a root presented with another leaf count, never
passes for a seal. One message then verifies alone with its inclusion proof and the seal;
a verifier remembers the seals it has checked, so the next message of the same batch costs
only its leaf hash and the hashes up its path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from .errors import SignatureInvalid
from .merkle import MerkleTree, merkle_leaf_hash, merkle_tree, verify_merkle_proof
from .sm2 import DEFAULT_SM2_ID, SM2PrivateKey, SM2PublicKey

SEAL_DOMAIN: Final = b"portgw-batch-seal/1\x00"
_COUNT_SIZE: Final = 8


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Audit path of leaf ``index`` in a tree of ``count`` leaves, leaf's sibling first."""

    index: int
    count: int
    path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class BatchSeal:
    root: bytes
    count: int
    signature: bytes
    key_id: str

    @property
    def signed_bytes(self) -> bytes:
        return seal_message(self.root, self.count)


@dataclass(frozen=True, slots=True)
class SignedBatch:
    seal: BatchSeal
    tree: MerkleTree = field(repr=False)

    def proof(self, index: int) -> InclusionProof:
        return InclusionProof(index, self.tree.count, self.tree.proof(index))

    def proofs(self) -> tuple[InclusionProof, ...]:
        return tuple(self.proof(index) for index in range(self.tree.count))


def seal_message(root: bytes, count: int) -> bytes:
    return SEAL_DOMAIN + count.to_bytes(_COUNT_SIZE, "big") + root


class BatchSigner:
    """Seals batches of messages with one key."""

    __slots__ = ("_key", "_user_id")

    def __init__(self, key: SM2PrivateKey, *, user_id: bytes = DEFAULT_SM2_ID) -> None:
        self._key = key
        self._user_id = user_id

    def sign(self, messages: Sequence[bytes]) -> SignedBatch:
        if not messages:
            raise ValueError("a batch needs at least one message")
        tree = merkle_tree([merkle_leaf_hash(message) for message in messages])
        signature = self._key.sign(seal_message(tree.root, tree.count), user_id=self._user_id)
        seal = BatchSeal(tree.root, tree.count, signature, self._key.public_key().key_id)
        return SignedBatch(seal, tree)


class BatchVerifier:
    """Verifies one message of a sealed batch; remembers up to ``cache_size`` good seals.

    Only seals whose signature verified are remembered, keyed by everything the check
    depended on (root, count, signature, verifying key), so the cache cannot make a bad
    seal pass. Safe to share between threads.
    """

    __slots__ = ("_cache_size", "_lock", "_user_id", "_verified")

    def __init__(self, *, user_id: bytes = DEFAULT_SM2_ID, cache_size: int = 4096) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must not be negative")
        self._user_id = user_id
        self._cache_size = cache_size
        self._verified: OrderedDict[tuple[bytes, int, bytes, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def verify(
        self,
        message: bytes,
        proof: InclusionProof,
        seal: BatchSeal,
        public_key: SM2PublicKey,
    ) -> None:
        """SignatureInvalid unless ``message`` is in the batch ``seal`` signed by ``public_key``."""
        if proof.count != seal.count or not verify_merkle_proof(
            merkle_leaf_hash(message), proof.index, proof.count, proof.path, seal.root
        ):
            raise SignatureInvalid("message is not in the sealed batch (inclusion proof fails)")
        self.verify_seal(seal, public_key)

    def verify_seal(self, seal: BatchSeal, public_key: SM2PublicKey) -> None:
        if not 0 < seal.count < 1 << (8 * _COUNT_SIZE):
            raise SignatureInvalid(f"batch seal has an impossible leaf count {seal.count}")
        cache_key = (seal.root, seal.count, seal.signature, public_key.key_id)
        with self._lock:
            if cache_key in self._verified:
                return
        public_key.verify(seal.signature, seal.signed_bytes, user_id=self._user_id)
        self._remember(cache_key)

    def _remember(self, cache_key: tuple[bytes, int, bytes, str]) -> None:
        if not self._cache_size:
            return
        with self._lock:
            self._verified[cache_key] = None
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
