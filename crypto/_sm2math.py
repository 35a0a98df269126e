"""SM2 curve parameters and the few curve formulas both backends share (GB/T 32918).

Scalar multiplication is each backend's business; this module has only what is cheap in
Python and must be identical everywhere: the curve constants, point validation and encoding,
affine addition (for the reference verifier's final s·G + t·P), the Z value and the KDF.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Point = tuple[int, int]
HashFunction = Callable[[bytes], bytes]

UNCOMPRESSED = 0x04
# ENTL, the bit length of the user ID, is two bytes (GB/T 32918.2 §5.5).
MAX_USER_ID_BITS = 0xFFFF


@dataclass(frozen=True, slots=True)
class Curve:
    """A short Weierstrass curve y² = x³ + ax + b over F_p with a base point of prime order n
    and cofactor 1."""

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    @property
    def size(self) -> int:
        """Bytes per coordinate or scalar."""
        return (self.p.bit_length() + 7) // 8

    @property
    def generator(self) -> Point:
        return (self.gx, self.gy)

    def contains(self, point: Point) -> bool:
        x, y = point
        if not (0 <= x < self.p and 0 <= y < self.p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0

    def encode_point(self, point: Point) -> bytes:
        x, y = point
        return bytes([UNCOMPRESSED]) + x.to_bytes(self.size, "big") + y.to_bytes(self.size, "big")

    def decode_point(self, data: bytes) -> Point:
        """An uncompressed point that is on the curve; ValueError for anything else."""
        if len(data) != 1 + 2 * self.size or data[0] != UNCOMPRESSED:
            raise ValueError("not an uncompressed SM2 point (04 || x || y)")
        point = (
            int.from_bytes(data[1 : 1 + self.size], "big"),
            int.from_bytes(data[1 + self.size :], "big"),
        )
        if not self.contains(point):
            raise ValueError("point is not on the SM2 curve")
        return point

    def add(self, first: Point | None, second: Point | None) -> Point | None:
        """Affine addition with every special case; None is the point at infinity."""
        if first is None:
            return second
        if second is None:
            return first
        p = self.p
        (x1, y1), (x2, y2) = first, second
        if x1 == x2:
            if (y1 + y2) % p == 0:
                return None
            slope = (3 * x1 * x1 + self.a) * pow(2 * y1, -1, p) % p
        else:
            slope = (y2 - y1) * pow(x2 - x1, -1, p) % p
        x3 = (slope * slope - x1 - x2) % p
        return x3, (slope * (x1 - x3) - y1) % p


# GB/T 32918.5-2017 §3 / GM/T 0003.5-2012: the recommended 256-bit curve (OID 1.2.156.10197.1.301).
SM2_CURVE = Curve(
    name="sm2p256v1",
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
)


def z_value(curve: Curve, user_id: bytes, public: Point, hash_function: HashFunction) -> bytes:
    """Z = H(ENTL || ID || a || b || xG || yG || xA || yA), GB/T 32918.2-2016 §5.5."""
    bits = 8 * len(user_id)
    if bits > MAX_USER_ID_BITS:
        raise ValueError("SM2 user ID is longer than 8191 bytes")
    size = curve.size
    fields = (curve.a, curve.b, curve.gx, curve.gy, *public)
    return hash_function(
        bits.to_bytes(2, "big") + user_id + b"".join(v.to_bytes(size, "big") for v in fields)
    )


def kdf(shared: bytes, length: int, hash_function: HashFunction) -> bytes:
    """The key derivation function of GB/T 32918.4-2016 §5.4.3 (a 32-bit counter from 1)."""
    blocks = []
    produced = 0
    counter = 1
    while produced < length:
        block = hash_function(shared + counter.to_bytes(4, "big"))
        blocks.append(block)
        produced += len(block)
        counter += 1
    return b"".join(blocks)[:length]
