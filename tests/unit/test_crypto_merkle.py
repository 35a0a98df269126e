from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import (
    MerkleTree,
    merkle_leaf_hash,
    merkle_proof,
    merkle_root,
    merkle_tree,
    sm3,
    verify_merkle_proof,
)


def leaves(count: int) -> list[bytes]:
    return [merkle_leaf_hash(i.to_bytes(4, "big")) for i in range(count)]


# An independent, literal transcription of RFC 6962 §2.1 (MTH and PATH), SM3 instead of SHA-256.
def split_point(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_root(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = split_point(len(hashes))
    return sm3(b"\x01" + reference_root(hashes[:k]) + reference_root(hashes[k:]))


def reference_path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = split_point(len(hashes))
    if m < k:
        return [*reference_path(m, hashes[:k]), reference_root(hashes[k:])]
    return [*reference_path(m - k, hashes[k:]), reference_root(hashes[:k])]


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


# -- shape ----------------------------------------------------------------------------------


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b, c = (merkle_leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert a == sm3(b"\x00a")
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == sm3(b"\x01" + a + b)
    assert merkle_root([a, b, c]) == sm3(b"\x01" + sm3(b"\x01" + a + b) + c)
    assert merkle_leaf_hash(b"") == sm3(b"\x00")


def test_five_leaves_split_at_four() -> None:
    h = leaves(5)
    left = sm3(b"\x01" + sm3(b"\x01" + h[0] + h[1]) + sm3(b"\x01" + h[2] + h[3]))
    assert merkle_root(h) == sm3(b"\x01" + left + h[4])
    assert merkle_proof(h, 4) == (left,)
    assert merkle_proof(h, 2) == (h[3], sm3(b"\x01" + h[0] + h[1]), h[4])


@pytest.mark.parametrize("count", range(1, 65))
def test_tree_matches_rfc6962_reference(count: int) -> None:
    hashes = leaves(count)
    tree = merkle_tree(hashes)
    assert tree.count == count
    assert tree.root == reference_root(hashes) == merkle_root(hashes)
    for index in range(count):
        assert list(tree.proof(index)) == reference_path(index, hashes)
        assert merkle_proof(hashes, index) == tree.proof(index)


def test_every_proof_verifies_for_every_size_up_to_300() -> None:
    hashes = leaves(300)
    for count in range(1, 301):
        tree = merkle_tree(hashes[:count])
        for index in range(count):
            assert verify_merkle_proof(hashes[index], index, count, tree.proof(index), tree.root)


# -- properties -----------------------------------------------------------------------------

sizes_and_index = st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n - 1))
)


@settings(max_examples=150, deadline=None)
@given(sizes_and_index)
def test_proof_verifies(case: tuple[int, int]) -> None:
    count, index = case
    hashes = leaves(count)
    tree = merkle_tree(hashes)
    assert verify_merkle_proof(hashes[index], index, count, tree.proof(index), tree.root)


@settings(max_examples=150, deadline=None)
@given(sizes_and_index, st.data())
def test_wrong_index_fails(case: tuple[int, int], data: st.DataObject) -> None:
    count, index = case
    hashes = leaves(count)
    tree = merkle_tree(hashes)
    other = data.draw(st.integers(min_value=0, max_value=count + 3).filter(lambda i: i != index))
    assert not verify_merkle_proof(hashes[index], other, count, tree.proof(index), tree.root)


@settings(max_examples=150, deadline=None)
@given(sizes_and_index)
def test_wrong_leaf_or_root_fails(case: tuple[int, int]) -> None:
    count, index = case
    hashes = leaves(count)
    tree = merkle_tree(hashes)
    proof = tree.proof(index)
    assert not verify_merkle_proof(flip(hashes[index]), index, count, proof, tree.root)
    assert not verify_merkle_proof(hashes[index], index, count, proof, flip(tree.root))
    other_leaf = merkle_leaf_hash(b"not in the batch")
    assert not verify_merkle_proof(other_leaf, index, count, proof, tree.root)


@settings(max_examples=150, deadline=None)
@given(sizes_and_index, st.data())
def test_tampered_proof_fails(case: tuple[int, int], data: st.DataObject) -> None:
    count, index = case
    hashes = leaves(count)
    tree = merkle_tree(hashes)
    proof = list(tree.proof(index))
    leaf, root = hashes[index], tree.root
    assert not verify_merkle_proof(leaf, index, count, [*proof, hashes[0]], root)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        changed = [*proof]
        changed[position] = flip(changed[position])
        assert not verify_merkle_proof(leaf, index, count, changed, root)
        assert not verify_merkle_proof(leaf, index, count, proof[:-1], root)


# -- edges ----------------------------------------------------------------------------------


def test_empty_batch_is_an_error() -> None:
    with pytest.raises(ValueError):
        merkle_root([])
    with pytest.raises(ValueError):
        merkle_tree([])


def test_leaves_must_be_sm3_hashes() -> None:
    with pytest.raises(ValueError, match="leaf 1"):
        merkle_tree([leaves(1)[0], b"short"])


def test_proof_index_out_of_range() -> None:
    tree = merkle_tree(leaves(3))
    for index in (-1, 3):
        with pytest.raises(IndexError):
            tree.proof(index)


def test_verify_returns_false_for_malformed_input() -> None:
    hashes = leaves(4)
    tree = merkle_tree(hashes)
    proof = tree.proof(1)
    assert verify_merkle_proof(hashes[1], 1, 4, proof, tree.root)
    assert not verify_merkle_proof(hashes[1], -1, 4, proof, tree.root)
    assert not verify_merkle_proof(hashes[1], 4, 4, proof, tree.root)
    assert not verify_merkle_proof(hashes[1], 1, 0, proof, tree.root)
    assert not verify_merkle_proof(hashes[1][:31], 1, 4, proof, tree.root)
    assert not verify_merkle_proof(hashes[1], 1, 4, [proof[0][:31], proof[1]], tree.root)
    assert not verify_merkle_proof(hashes[1], 1, 4, proof, tree.root[:31])


def test_tree_is_frozen_and_repr_is_short() -> None:
    tree = merkle_tree(leaves(1000))
    assert isinstance(tree, MerkleTree)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tree.levels = ()  # type: ignore[misc]  # frozen on purpose
    assert len(repr(tree)) < 120 and tree.root.hex() in repr(tree)
