"""Merkle trees for batch seals: RFC 6962 / RFC 9162 §2.1 shape, hashed with SM3.

leaf = SM3(0x00 || data), node = SM3(0x01 || left || right); a tree of n > 1 leaves splits at
the largest power of two smaller than n. Building the levels bottom-up, pairing left to right
and lifting an unpaired last node unchanged, gives exactly that tree, so all proofs of a batch
come from one O(n) pass.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from .sm3 import SM3_DIGEST_SIZE, SM3Hasher, new_sm3, sm3

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

Level = tuple[bytes, ...]


def merkle_leaf_hash(data: bytes) -> bytes:
    return sm3(_LEAF_PREFIX + data)


def _node_hasher() -> SM3Hasher:
    """SM3 already fed the node prefix; copying it is cheaper than starting afresh."""
    return new_sm3(_NODE_PREFIX)


def _node_hash(base: SM3Hasher, left: bytes, right: bytes) -> bytes:
    hasher = base.copy()
    hasher.update(left)
    hasher.update(right)
    return hasher.digest()


@dataclass(frozen=True, slots=True)
class MerkleTree:
    """All levels of one tree; ``levels[0]`` are the leaf hashes, ``levels[-1]`` the root."""

    levels: tuple[Level, ...] = field(repr=False)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    @property
    def count(self) -> int:
        return len(self.levels[0])

    def proof(self, index: int) -> tuple[bytes, ...]:
        """Audit path of leaf ``index``, from the leaf's sibling up to the root's child."""
        if not 0 <= index < self.count:
            raise IndexError(f"leaf index {index} outside a tree of {self.count} leaves")
        path: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return tuple(path)

    def __repr__(self) -> str:
        return f"MerkleTree(count={self.count}, root={self.root.hex()!r})"


def merkle_tree(leaf_hashes: Sequence[bytes]) -> MerkleTree:
    level = _checked_leaves(leaf_hashes)
    levels = [level]
    while len(level) > 1:
        level = _parent_level(level)
        levels.append(level)
    return MerkleTree(tuple(levels))


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    return merkle_tree(leaf_hashes).root


def merkle_proof(leaf_hashes: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    return merkle_tree(leaf_hashes).proof(index)


def verify_merkle_proof(
    leaf_hash: bytes,
    index: int,
    count: int,
    proof: Sequence[bytes],
    root: bytes,
) -> bool:
    """RFC 9162 §2.1.3.2 inclusion check; False (never an exception) for any bad input."""
    if not 0 <= index < count or not _is_hash(leaf_hash) or not _is_hash(root):
        return False
    node, last, computed = index, count - 1, leaf_hash
    base = _node_hasher()
    for sibling in proof:
        if last == 0 or not _is_hash(sibling):
            return False
        if node & 1 or node == last:
            computed = _node_hash(base, sibling, computed)
            while not node & 1 and node != 0:
                node >>= 1
                last >>= 1
        else:
            computed = _node_hash(base, computed, sibling)
        node >>= 1
        last >>= 1
    return last == 0 and hmac.compare_digest(computed, root)


def _parent_level(level: Level) -> Level:
    base = _node_hasher()
    parents = [_node_hash(base, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        parents.append(level[-1])
    return tuple(parents)


def _checked_leaves(leaf_hashes: Sequence[bytes]) -> Level:
    if not leaf_hashes:
        raise ValueError("a Merkle tree needs at least one leaf")
    leaves = tuple(leaf_hashes)
    for position, leaf in enumerate(leaves):
        if not _is_hash(leaf):
            raise ValueError(f"leaf {position} is not a {SM3_DIGEST_SIZE}-byte SM3 hash")
    return leaves


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == SM3_DIGEST_SIZE
