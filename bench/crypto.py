"""Crypto benchmark on one core: SM2 next to `openssl speed sm2`, batch seals, proofs.

Run: .venv/bin/python bench/crypto.py [--seconds S] [--tiny]

`--tiny` times each figure for 0.1 s (`openssl speed` for its least, 1 s) with batches of 64
messages: a check that the bench still runs, not a measurement.

Everything runs pinned to CPU 0 (the `openssl speed` child inherits the pinning, and is also
started under `taskset -c 0` where that exists). Human-readable lines come first, the
reference backend's figures before the fast one's; the very last line is one JSON object.
Targets: fast SM2 sign and verify >= 90 % of `openssl speed`; batch signing >= 50,000
messages/s (1 KiB messages: leaf hashes, the Merkle tree and one signature per 1,000);
proof verification >= 50,000/s (one message, its proof, its seal's signature cached).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and its own name would
# shadow the `crypto` package; put the project root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import structlog  # noqa: E402

from crypto import (  # noqa: E402
    BatchSigner,
    BatchVerifier,
    SM2PrivateKey,
    get_backend,
)

CORE = 0
BATCH_SIZE = 1_000
TINY_BATCH_SIZE, TINY_SECONDS = 64, 0.1
MESSAGE_SIZE = 1_024
SPEED_MESSAGE = bytes(20)  # `openssl speed` signs 20 bytes
SPEED_LINE = re.compile(
    r"^\s*256 bits SM2 \([^)]*\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)\s*$", re.MULTILINE
)
TARGET_VS_OPENSSL = 0.90
TARGET_BATCH = 50_000
TARGET_PROOFS = 50_000


@dataclass(frozen=True, slots=True)
class Figures:
    sign_per_s: float
    verify_per_s: float
    batch_sign_msgs_per_s: float
    proof_verify_per_s: float


def rate(operation: Callable[[], object], seconds: float, per_call: int = 1) -> float:
    """Operations per second of wall time over at least ``seconds`` (one warm-up call first)."""
    operation()
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        operation()
        count += per_call
    return count / elapsed


def openssl_speed(seconds: int) -> tuple[float, float]:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("bench/crypto.py: the openssl command line is needed")
    command = [openssl, "speed", "-seconds", str(seconds), "sm2"]
    taskset = shutil.which("taskset")
    if taskset:
        command = [taskset, "-c", str(CORE), *command]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    match = SPEED_LINE.search(result.stdout)
    if match is None:
        raise SystemExit(f"bench/crypto.py: no SM2 line in `openssl speed`:\n{result.stdout}")
    return float(match.group(1)), float(match.group(2))


def measure(backend_name: str, seconds: float, messages: list[bytes]) -> Figures:
    key = SM2PrivateKey.generate(backend=backend_name)
    public = key.public_key()
    signature = key.sign(SPEED_MESSAGE)
    sign = rate(lambda: key.sign(SPEED_MESSAGE), seconds)
    verify = rate(lambda: public.verify(signature, SPEED_MESSAGE), seconds)

    signer = BatchSigner(key)
    batch = rate(lambda: signer.sign(messages), seconds, per_call=len(messages))

    sealed = signer.sign(messages)
    proofs = sealed.proofs()
    verifier = BatchVerifier()
    verifier.verify_seal(sealed.seal, public)  # the seal's signature is now cached

    def verify_all() -> None:
        for message, proof in zip(messages, proofs, strict=True):
            verifier.verify(message, proof, sealed.seal, public)

    proofs_per_s = rate(verify_all, seconds, per_call=len(messages))
    return Figures(sign, verify, batch, proofs_per_s)


def describe(name: str, figures: Figures) -> list[str]:
    return [
        f"{name:<9} SM2 sign           {figures.sign_per_s:>12,.1f} /s",
        f"{name:<9} SM2 verify         {figures.verify_per_s:>12,.1f} /s",
        f"{name:<9} batch sign (1 KiB) {figures.batch_sign_msgs_per_s:>12,.0f} messages/s",
        f"{name:<9} proof verify       {figures.proof_verify_per_s:>12,.0f} /s (seal cached)",
    ]


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    seconds = float(args[args.index("--seconds") + 1]) if "--seconds" in args else 3.0
    tiny = "--tiny" in args
    batch_size = TINY_BATCH_SIZE if tiny else BATCH_SIZE
    if tiny:
        seconds = TINY_SECONDS
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    os.sched_setaffinity(0, {CORE})
    messages = [os.urandom(MESSAGE_SIZE) for _ in range(batch_size)]
    fast_backend = get_backend("fast")
    if fast_backend.name != "fast":
        raise SystemExit("bench/crypto.py: libcrypto 3 is not available, nothing fast to measure")

    openssl_sign, openssl_verify = openssl_speed(max(1, round(seconds)))
    reference = measure("reference", seconds / 2, messages)
    fast = measure("fast", seconds, messages)

    lines = [
        f"pinned to CPU {CORE}; {batch_size:,} messages of {MESSAGE_SIZE} bytes per batch",
        "reference = SM2 by gmssl (wrapped); Merkle hashing is the same SM3 code for both",
    ]
    lines += describe("reference", reference)
    lines += [
        f"openssl   SM2 sign           {openssl_sign:>12,.1f} /s  (openssl speed sm2)",
        f"openssl   SM2 verify         {openssl_verify:>12,.1f} /s  (openssl speed sm2)",
    ]
    lines += describe("fast", fast)
    sign_ratio = fast.sign_per_s / openssl_sign
    verify_ratio = fast.verify_per_s / openssl_verify
    targets = {
        "sm2_sign_vs_openssl": sign_ratio >= TARGET_VS_OPENSSL,
        "sm2_verify_vs_openssl": verify_ratio >= TARGET_VS_OPENSSL,
        "batch_sign_msgs_per_s": fast.batch_sign_msgs_per_s >= TARGET_BATCH,
        "proof_verify_per_s": fast.proof_verify_per_s >= TARGET_PROOFS,
    }
    lines.append(
        f"fast/openssl: sign {sign_ratio:.1%}, verify {verify_ratio:.1%} "
        f"(target {TARGET_VS_OPENSSL:.0%}); targets met: {all(targets.values())}"
    )
    print("\n".join(lines))
    result = {
        "sm2_sign_per_s": round(fast.sign_per_s, 1),
        "sm2_verify_per_s": round(fast.verify_per_s, 1),
        "openssl_sign_per_s": openssl_sign,
        "openssl_verify_per_s": openssl_verify,
        "sm2_sign_vs_openssl": round(sign_ratio, 3),
        "sm2_verify_vs_openssl": round(verify_ratio, 3),
        "batch_sign_msgs_per_s": round(fast.batch_sign_msgs_per_s),
        "proof_verify_per_s": round(fast.proof_verify_per_s),
        "reference_sm2_sign_per_s": round(reference.sign_per_s, 1),
        "reference_sm2_verify_per_s": round(reference.verify_per_s, 1),
        "reference_batch_sign_msgs_per_s": round(reference.batch_sign_msgs_per_s),
        "reference_proof_verify_per_s": round(reference.proof_verify_per_s),
        "targets_met": targets,
        "cpu": CORE,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
