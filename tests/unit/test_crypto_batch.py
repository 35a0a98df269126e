"""Batch seals: one signature over a Merkle root, one message verified alone, the seal cache."""

from __future__ import annotations

import dataclasses
import importlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from crypto import (
    BatchSeal,
    BatchSigner,
    BatchVerifier,
    InclusionProof,
    SignatureInvalid,
    SignedBatch,
    SM2PrivateKey,
    SM2PublicKey,
    merkle_leaf_hash,
    merkle_root,
    verify_merkle_proof,
)
from crypto.batch import SEAL_DOMAIN, seal_message

MESSAGES = [f"<Declaration seq='{i}'/>".encode() * (i % 5 + 1) for i in range(37)]


@pytest.fixture(scope="module")
def key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


@pytest.fixture(scope="module")
def batch(key: SM2PrivateKey) -> SignedBatch:
    return BatchSigner(key).sign(MESSAGES)


class CountingKey:
    """A real public key that counts its SM2 verifications."""

    def __init__(self, public: SM2PublicKey) -> None:
        self.public = public
        self.calls = 0
        self.key_id = public.key_id

    def verify(self, signature: bytes, data: bytes, *, user_id: bytes) -> None:
        self.calls += 1
        self.public.verify(signature, data, user_id=user_id)


def test_seal_covers_domain_count_and_root(key: SM2PrivateKey, batch: SignedBatch) -> None:
    seal = batch.seal
    leaves = [merkle_leaf_hash(message) for message in MESSAGES]
    assert seal.root == merkle_root(leaves)
    assert seal.count == len(MESSAGES)
    assert seal.key_id == key.public_key().key_id
    assert seal.signed_bytes == SEAL_DOMAIN + len(MESSAGES).to_bytes(8, "big") + seal.root
    key.public_key().verify(seal.signature, seal.signed_bytes)
    with pytest.raises(SignatureInvalid):  # not a signature over the bare root
        key.public_key().verify(seal.signature, seal.root)


def test_every_message_verifies_alone(key: SM2PrivateKey, batch: SignedBatch) -> None:
    verifier = BatchVerifier()
    proofs = batch.proofs()
    assert len(proofs) == len(MESSAGES)
    for index, message in enumerate(MESSAGES):
        assert proofs[index] == batch.proof(index)
        verifier.verify(message, proofs[index], batch.seal, key.public_key())
        leaf = merkle_leaf_hash(message)
        assert verify_merkle_proof(leaf, index, len(MESSAGES), proofs[index].path, batch.seal.root)


def test_seal_signature_is_verified_once(key: SM2PrivateKey, batch: SignedBatch) -> None:
    verifier = BatchVerifier()
    counting = CountingKey(key.public_key())
    for index, message in enumerate(MESSAGES):
        verifier.verify(message, batch.proof(index), batch.seal, counting)  # type: ignore[arg-type]  # a counting fake of the key
    assert counting.calls == 1


def test_wrong_message_index_or_proof_is_rejected(key: SM2PrivateKey, batch: SignedBatch) -> None:
    verifier = BatchVerifier()
    public = key.public_key()
    proof = batch.proof(5)
    cases = [
        (MESSAGES[6], proof),
        (MESSAGES[5] + b" ", proof),
        (MESSAGES[5], dataclasses.replace(proof, index=6)),
        (MESSAGES[5], dataclasses.replace(proof, count=proof.count + 1)),
        (MESSAGES[5], dataclasses.replace(proof, path=proof.path[:-1])),
        (MESSAGES[5], dataclasses.replace(proof, path=(*proof.path, proof.path[0]))),
        (MESSAGES[5], dataclasses.replace(proof, path=(bytes(32), *proof.path[1:]))),
    ]
    for message, bad in cases:
        with pytest.raises(SignatureInvalid, match="inclusion proof"):
            verifier.verify(message, bad, batch.seal, public)


def test_forged_or_foreign_seals_are_rejected(key: SM2PrivateKey, batch: SignedBatch) -> None:
    verifier = BatchVerifier()
    public, proof = key.public_key(), batch.proof(0)
    verifier.verify(MESSAGES[0], proof, batch.seal, public)  # now cached
    stranger = SM2PrivateKey.generate()
    with pytest.raises(SignatureInvalid):
        verifier.verify(MESSAGES[0], proof, batch.seal, stranger.public_key())
    other = BatchSigner(key).sign([b"a", b"b"])
    spliced = dataclasses.replace(batch.seal, signature=other.seal.signature)
    with pytest.raises(SignatureInvalid):
        verifier.verify(MESSAGES[0], proof, spliced, public)
    flipped = bytearray(batch.seal.signature)
    flipped[-1] ^= 1
    with pytest.raises(SignatureInvalid):
        verifier.verify(
            MESSAGES[0], proof, dataclasses.replace(batch.seal, signature=bytes(flipped)), public
        )
    with pytest.raises(SignatureInvalid, match="impossible leaf count"):
        verifier.verify_seal(dataclasses.replace(batch.seal, count=0), public)


def test_user_id_is_part_of_the_seal(key: SM2PrivateKey) -> None:
    sealed = BatchSigner(key, user_id=b"gateway-01").sign(MESSAGES[:3])
    BatchVerifier(user_id=b"gateway-01").verify(
        MESSAGES[1], sealed.proof(1), sealed.seal, key.public_key()
    )
    with pytest.raises(SignatureInvalid):
        BatchVerifier().verify(MESSAGES[1], sealed.proof(1), sealed.seal, key.public_key())


def test_single_message_batch_and_empty_batch(key: SM2PrivateKey) -> None:
    single = BatchSigner(key).sign([b"only"])
    assert single.proof(0) == InclusionProof(0, 1, ())
    BatchVerifier().verify(b"only", single.proof(0), single.seal, key.public_key())
    with pytest.raises(ValueError):
        BatchSigner(key).sign([])


def test_cache_is_bounded(key: SM2PrivateKey) -> None:
    verifier = BatchVerifier(cache_size=2)
    counting = CountingKey(key.public_key())
    batches = [BatchSigner(key).sign([bytes([i])]) for i in range(3)]
    for sealed in (*batches, batches[0]):
        verifier.verify_seal(sealed.seal, counting)  # type: ignore[arg-type]  # a counting fake of the key
    assert counting.calls == 4  # the first seal was evicted by the third
    uncached = BatchVerifier(cache_size=0)
    for _ in range(2):
        uncached.verify_seal(batches[0].seal, counting)  # type: ignore[arg-type]  # a counting fake of the key
    assert counting.calls == 6
    with pytest.raises(ValueError):
        BatchVerifier(cache_size=-1)


def test_reference_backend_verifies_fast_seals(key: SM2PrivateKey, batch: SignedBatch) -> None:
    public = SM2PublicKey.from_der(key.public_key().to_der(), backend="reference")
    BatchVerifier().verify(MESSAGES[3], batch.proof(3), batch.seal, public)


def test_verifier_is_thread_safe(key: SM2PrivateKey, batch: SignedBatch) -> None:
    verifier = BatchVerifier(cache_size=1)
    seals = [batch.seal, BatchSigner(key).sign(MESSAGES[:4]).seal]
    proofs = [batch.proofs(), BatchSigner(key).sign(MESSAGES[:4]).proofs()]

    def work(n: int) -> None:
        for index in range(4):
            which = (n + index) % 2
            seal: BatchSeal = seals[which]
            if which == 0:
                verifier.verify(MESSAGES[index], proofs[0][index], seal, key.public_key())
            else:
                verifier.verify_seal(seal, key.public_key())

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(16)))


def test_same_roots_and_proofs_without_hashlib_sm3(
    monkeypatch: pytest.MonkeyPatch, batch: SignedBatch
) -> None:
    """Where hashlib has no SM3 the cryptography wheel's is used; nothing may change."""
    sm3_module = importlib.import_module("crypto.sm3")  # `crypto.sm3` is also the function
    monkeypatch.setattr(sm3_module, "HASHLIB_HAS_SM3", False)
    assert isinstance(sm3_module.new_sm3(), sm3_module._CryptographySM3)
    hasher = sm3_module.new_sm3(b"ab")
    clone = hasher.copy()
    hasher.update(b"c")
    assert hasher.digest() == sm3_module.sm3(b"abc") == sm3_module.cryptography_sm3(b"abc")
    assert clone.digest() == sm3_module.sm3(b"ab")
    leaves = [merkle_leaf_hash(message) for message in MESSAGES]
    assert merkle_root(leaves) == batch.seal.root
    proof = batch.proof(11)
    assert verify_merkle_proof(leaves[11], 11, len(MESSAGES), proof.path, batch.seal.root)


def test_seal_message_is_fixed_width() -> None:
    assert len(seal_message(bytes(32), 1)) == len(SEAL_DOMAIN) + 8 + 32
