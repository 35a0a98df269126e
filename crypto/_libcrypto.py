"""SM2 through the system's OpenSSL 3 ``libcrypto``, called with ctypes.

The ``cryptography`` wheel cannot load or use SM2 keys, so key generation, PEM, SPKI,
signatures and encryption go straight to libcrypto (SM3 and SM4: see sm3.py, sm4.py).
Every pointer-returning function is declared with ``c_void_p`` (the default ``int``
restype would truncate 64-bit pointers), every return value is checked, and the thread's
OpenSSL error queue is emptied after each operation so a stale error never leaks into the
next message.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from ctypes import POINTER, c_char_p, c_int, c_long, c_size_t, c_ulong, c_void_p
from types import MappingProxyType
from typing import NoReturn, cast

from . import sm4 as _sm4
from ._sm2codec import CiphertextOrder, SM2Ciphertext, format_ciphertext, parse_ciphertext
from .errors import BackendUnavailable, CryptoError, DecryptionFailed, KeyInvalid
from .sm3 import hmac_sm3, sm3

_MIN_VERSION = 0x30000000
_BIO_CTRL_INFO = 3  # BIO_get_mem_data is the macro BIO_ctrl(bio, BIO_CTRL_INFO, 0, &ptr)
_ERR_BUF = 256
# DER SEQUENCE { INTEGER r, INTEGER s } with 33-byte integers: 2 + 2 * (2 + 33). Sizing the
# buffer up front saves EVP_DigestSign's size query, one of the few costs of going via ctypes.
_MAX_SIGNATURE_SIZE = 72

# int pem_password_cb(char *buf, int size, int rwflag, void *userdata)
_PEM_PASSWORD_CB = ctypes.CFUNCTYPE(c_int, c_void_p, c_int, c_int, c_void_p)

_SIGNATURES: Mapping[str, tuple[object, list[object]]] = MappingProxyType(
    {
        "OpenSSL_version_num": (c_ulong, []),
        "ERR_get_error": (c_ulong, []),
        "ERR_error_string_n": (None, [c_ulong, c_char_p, c_size_t]),
        "ERR_clear_error": (None, []),
        "BIO_s_mem": (c_void_p, []),
        "BIO_new": (c_void_p, [c_void_p]),
        "BIO_new_mem_buf": (c_void_p, [c_char_p, c_int]),
        "BIO_ctrl": (c_long, [c_void_p, c_int, c_long, c_void_p]),
        "BIO_free": (c_int, [c_void_p]),
        "EVP_sm3": (c_void_p, []),
        "EVP_aes_256_cbc": (c_void_p, []),
        "EVP_PKEY_free": (None, [c_void_p]),
        "EVP_PKEY_is_a": (c_int, [c_void_p, c_char_p]),
        "EVP_PKEY_CTX_new": (c_void_p, [c_void_p, c_void_p]),
        "EVP_PKEY_CTX_new_from_name": (c_void_p, [c_void_p, c_char_p, c_char_p]),
        "EVP_PKEY_CTX_free": (None, [c_void_p]),
        "EVP_PKEY_CTX_set1_id": (c_int, [c_void_p, c_char_p, c_int]),
        "EVP_PKEY_keygen_init": (c_int, [c_void_p]),
        "EVP_PKEY_generate": (c_int, [c_void_p, POINTER(c_void_p)]),
        "EVP_PKEY_public_check": (c_int, [c_void_p]),
        "EVP_MD_CTX_new": (c_void_p, []),
        "EVP_MD_CTX_free": (None, [c_void_p]),
        "EVP_MD_CTX_set_pkey_ctx": (None, [c_void_p, c_void_p]),
        "EVP_DigestSignInit": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p]),
        "EVP_DigestSign": (c_int, [c_void_p, c_void_p, POINTER(c_size_t), c_char_p, c_size_t]),
        "EVP_DigestVerifyInit": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p]),
        "EVP_DigestVerify": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t]),
        "EVP_PKEY_encrypt_init": (c_int, [c_void_p]),
        "EVP_PKEY_encrypt": (c_int, [c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t]),
        "EVP_PKEY_decrypt_init": (c_int, [c_void_p]),
        "EVP_PKEY_decrypt": (c_int, [c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t]),
        "PEM_read_bio_PrivateKey": (c_void_p, [c_void_p, c_void_p, _PEM_PASSWORD_CB, c_void_p]),
        "PEM_write_bio_PKCS8PrivateKey": (
            c_int,
            [c_void_p, c_void_p, c_void_p, c_char_p, c_int, _PEM_PASSWORD_CB, c_void_p],
        ),
        "i2d_PUBKEY": (c_int, [c_void_p, POINTER(c_void_p)]),
        "d2i_PUBKEY": (c_void_p, [c_void_p, POINTER(c_void_p), c_long]),
    }
)


def _candidate_names() -> Iterator[str]:
    yield "libcrypto.so.3"
    found = ctypes.util.find_library("crypto")
    if found:
        yield found


def declare(lib: ctypes.CDLL, signatures: Mapping[str, tuple[object, list[object]]]) -> None:
    """Gives each function of `signatures` its result and argument types (a pointer result
    must be c_void_p: ctypes' default int would truncate it)."""
    for symbol, (restype, argtypes) in signatures.items():
        function = getattr(lib, symbol)
        function.restype = restype
        function.argtypes = argtypes


def _open(name: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(name)
    declare(lib, _SIGNATURES)
    if lib.OpenSSL_version_num() < _MIN_VERSION:
        raise OSError(f"{name} is older than OpenSSL 3.0")
    return lib


@functools.cache
def load_library() -> ctypes.CDLL:
    """Load and declare libcrypto once per process; BackendUnavailable if impossible."""
    problems: list[str] = []
    for name in _candidate_names():
        try:
            return _open(name)
        except (OSError, AttributeError) as exc:
            problems.append(f"{name}: {exc}")
    raise BackendUnavailable("cannot load OpenSSL 3 libcrypto (" + "; ".join(problems) + ")")


def der_of(i2d: Callable[..., int], ptr: int) -> bytes | None:
    """The DER an OpenSSL ``i2d_*`` function writes of the object `ptr` (asked for its size
    first); None when it writes none."""
    size = i2d(ptr, None)
    if size <= 0:
        return None
    buf = ctypes.create_string_buffer(size)
    cursor = c_void_p(ctypes.addressof(buf))
    if i2d(ptr, ctypes.byref(cursor)) != size:
        return None
    return buf.raw


def from_der(d2i: Callable[..., int | None], der: bytes) -> tuple[int | None, bool]:
    """The object an OpenSSL ``d2i_*`` function decodes of `der` (None when none), and
    whether it read all of `der`. The caller owns (frees) the object."""
    buf = ctypes.create_string_buffer(der, len(der))
    start = ctypes.addressof(buf)
    cursor = c_void_p(start)
    ptr = d2i(None, ctypes.byref(cursor), len(der))
    return ptr or None, cursor.value == start + len(der)


@contextmanager
def memory_bio(lib: ctypes.CDLL) -> Iterator[int]:
    """A memory BIO to write into, freed afterwards."""
    bio = lib.BIO_new(lib.BIO_s_mem())
    if not bio:
        raise MemoryError("BIO_new")
    try:
        yield bio
    finally:
        lib.BIO_free(bio)


def bio_contents(lib: ctypes.CDLL, bio: int) -> bytes | None:
    """What was written into the memory BIO (BIO_get_mem_data); None when unreadable."""
    data = c_void_p()
    length = lib.BIO_ctrl(bio, _BIO_CTRL_INFO, 0, ctypes.byref(data))
    if length < 0 or (length and not data.value):
        return None
    # data.value is not None when length is not 0: checked just above
    return ctypes.string_at(cast(int, data.value), length) if length else b""


class EvpPkey:
    """Owns one ``EVP_PKEY*`` and frees it when the key object is collected."""

    __slots__ = ("_free", "ptr")

    def __init__(self, ptr: int, free: Callable[[int], None]) -> None:
        self.ptr = ptr
        # Keep the free function itself so __del__ works even during interpreter shutdown.
        self._free = free

    def __del__(self) -> None:
        ptr, self.ptr = self.ptr, 0
        if ptr:
            self._free(ptr)


class _PasswordCallback:
    """A pem_password_cb that never prompts on a terminal (OpenSSL's default would)."""

    def __init__(self, password: bytes | None) -> None:
        self._password = password
        self.c_function = _PEM_PASSWORD_CB(self._fill)

    def _fill(self, buf: int, size: int, _rwflag: int, _userdata: int) -> int:
        if self._password is None or len(self._password) > size:
            return -1
        ctypes.memmove(buf, self._password, len(self._password))
        return len(self._password)


class OpenSSLBackend:
    """SM2 in libcrypto; SM3 and SM4 in the ``cryptography`` wheel (which cannot do SM2)."""

    name = "fast"

    def __init__(self) -> None:
        self._lib = load_library()

    @property
    def library_version(self) -> str:
        version = self._lib.OpenSSL_version_num()
        return f"{version >> 28}.{(version >> 20) & 0xFF}.{(version >> 4) & 0xFF}"

    # -- SM3 / SM4 (cryptography) -----------------------------------------------------------

    sm3 = staticmethod(sm3)
    hmac_sm3 = staticmethod(hmac_sm3)
    sm4_block_encryptor = staticmethod(_sm4.sm4_block_encryptor)
    sm4_cbc_encrypt = staticmethod(_sm4.sm4_cbc_encrypt)
    sm4_cbc_decrypt = staticmethod(_sm4.sm4_cbc_decrypt)
    sm4_gcm_encrypt = staticmethod(_sm4.sm4_gcm_encrypt)
    sm4_gcm_decrypt = staticmethod(_sm4.sm4_gcm_decrypt)

    # -- keys -------------------------------------------------------------------------------

    def generate_private_key(self) -> EvpPkey:
        lib = self._lib
        with self._error_scope():
            pctx = lib.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
            if not pctx:
                self._fail(CryptoError, "EVP_PKEY_CTX_new_from_name(SM2)")
            try:
                pkey = c_void_p()
                if lib.EVP_PKEY_keygen_init(pctx) != 1:
                    self._fail(CryptoError, "EVP_PKEY_keygen_init")
                if lib.EVP_PKEY_generate(pctx, ctypes.byref(pkey)) != 1 or not pkey.value:
                    self._fail(CryptoError, "EVP_PKEY_generate")
                return self._own(pkey.value)
            finally:
                lib.EVP_PKEY_CTX_free(pctx)

    def load_private_key_pem(self, pem: bytes, password: bytes | None) -> EvpPkey:
        lib = self._lib
        callback = _PasswordCallback(password)
        with self._error_scope(), self._read_bio(pem) as bio:
            ptr = lib.PEM_read_bio_PrivateKey(bio, None, callback.c_function, None)
            if not ptr:
                self._fail(KeyInvalid, "cannot read SM2 private key PEM")
            key = self._own(ptr)
            self._require_sm2(key, "private key")
            return key

    def private_key_to_pem(self, key: object, password: bytes | None) -> bytes:
        lib = self._lib
        pkey = self._ptr(key)
        cipher = lib.EVP_aes_256_cbc() if password is not None else None
        callback = _PasswordCallback(password)
        klen = len(password) if password is not None else 0
        with self._error_scope(), memory_bio(lib) as bio:
            written = lib.PEM_write_bio_PKCS8PrivateKey(
                bio, pkey, cipher, password, klen, callback.c_function, None
            )
            if written != 1:
                self._fail(CryptoError, "PEM_write_bio_PKCS8PrivateKey")
            return self._bio_contents(bio)

    def public_key_der(self, key: object) -> bytes:
        lib = self._lib
        pkey = self._ptr(key)
        with self._error_scope():
            der = der_of(lib.i2d_PUBKEY, pkey)
            if der is None:
                self._fail(CryptoError, "i2d_PUBKEY")
            return der

    def load_public_key_der(self, der: bytes) -> EvpPkey:
        with self._error_scope():
            ptr, whole = from_der(self._lib.d2i_PUBKEY, der)
            if ptr is None:
                self._fail(KeyInvalid, "cannot decode SM2 SubjectPublicKeyInfo DER")
            key = self._own(ptr)
            if not whole:
                raise KeyInvalid("trailing bytes after SubjectPublicKeyInfo DER")
            self._require_sm2(key, "public key")
            self._check_public(key)
            return key

    # -- signatures -------------------------------------------------------------------------

    def sign(self, key: object, data: bytes, user_id: bytes) -> bytes:
        lib = self._lib
        pkey = self._ptr(key)
        with self._error_scope(), self._digest_context(pkey, user_id) as mctx:
            if lib.EVP_DigestSignInit(mctx, None, lib.EVP_sm3(), None, pkey) != 1:
                self._fail(CryptoError, "EVP_DigestSignInit")
            size = c_size_t(_MAX_SIGNATURE_SIZE)
            buf = ctypes.create_string_buffer(_MAX_SIGNATURE_SIZE)
            if lib.EVP_DigestSign(mctx, buf, ctypes.byref(size), data, len(data)) != 1:
                self._fail(CryptoError, "EVP_DigestSign")
            return buf.raw[: size.value]

    def verify(self, key: object, signature: bytes, data: bytes, user_id: bytes) -> bool:
        lib = self._lib
        pkey = self._ptr(key)
        with self._error_scope(), self._digest_context(pkey, user_id) as mctx:
            if lib.EVP_DigestVerifyInit(mctx, None, lib.EVP_sm3(), None, pkey) != 1:
                self._fail(CryptoError, "EVP_DigestVerifyInit")
            result: int = lib.EVP_DigestVerify(mctx, signature, len(signature), data, len(data))
            return result == 1

    # -- encryption -------------------------------------------------------------------------

    def encrypt(self, key: object, plaintext: bytes) -> SM2Ciphertext:
        """OpenSSL 3 writes the GM/T 0009 SM2Cipher DER; it is parsed here, never passed on."""
        produced = self._pkey_crypt(key, plaintext, encrypt=True)
        try:
            return parse_ciphertext(produced, CiphertextOrder.ASN1)
        except ValueError as exc:
            raise CryptoError(f"libcrypto produced an unreadable SM2 ciphertext: {exc}") from exc

    def decrypt(self, key: object, ciphertext: SM2Ciphertext) -> bytes:
        return self._pkey_crypt(
            key, format_ciphertext(ciphertext, CiphertextOrder.ASN1), encrypt=False
        )

    def _pkey_crypt(self, key: object, data: bytes, *, encrypt: bool) -> bytes:
        lib = self._lib
        pkey = self._ptr(key)
        init, run = (
            (lib.EVP_PKEY_encrypt_init, lib.EVP_PKEY_encrypt)
            if encrypt
            else (lib.EVP_PKEY_decrypt_init, lib.EVP_PKEY_decrypt)
        )
        error = CryptoError if encrypt else DecryptionFailed
        with self._error_scope():
            pctx = lib.EVP_PKEY_CTX_new(pkey, None)
            if not pctx:
                self._fail(CryptoError, "EVP_PKEY_CTX_new")
            try:
                if init(pctx) != 1:
                    self._fail(error, "SM2 encrypt/decrypt init")
                size = c_size_t(0)
                if run(pctx, None, ctypes.byref(size), data, len(data)) != 1:
                    self._fail(error, "SM2 encrypt/decrypt (size query)")
                buf = ctypes.create_string_buffer(size.value)
                if run(pctx, buf, ctypes.byref(size), data, len(data)) != 1:
                    self._fail(
                        error, "SM2 encryption failed" if encrypt else "SM2 decryption failed"
                    )
                return buf.raw[: size.value]
            finally:
                lib.EVP_PKEY_CTX_free(pctx)

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _digest_context(self, pkey: int, user_id: bytes) -> Iterator[int]:
        """An EVP_MD_CTX whose EVP_PKEY_CTX carries the SM2 distinguishing ID.

        With EVP_MD_CTX_set_pkey_ctx the caller keeps ownership of the EVP_PKEY_CTX, so it is
        freed here, after the EVP_MD_CTX that refers to it.
        """
        lib = self._lib
        pctx = lib.EVP_PKEY_CTX_new(pkey, None)
        if not pctx:
            self._fail(CryptoError, "EVP_PKEY_CTX_new")
        mctx = lib.EVP_MD_CTX_new()
        try:
            if not mctx:
                self._fail(CryptoError, "EVP_MD_CTX_new")
            if lib.EVP_PKEY_CTX_set1_id(pctx, user_id, len(user_id)) != 1:
                self._fail(CryptoError, "EVP_PKEY_CTX_set1_id")
            lib.EVP_MD_CTX_set_pkey_ctx(mctx, pctx)
            yield mctx
        finally:
            if mctx:
                lib.EVP_MD_CTX_free(mctx)
            lib.EVP_PKEY_CTX_free(pctx)

    @contextmanager
    def _error_scope(self) -> Iterator[None]:
        self._lib.ERR_clear_error()
        try:
            yield
        finally:
            self._lib.ERR_clear_error()

    @contextmanager
    def _read_bio(self, data: bytes) -> Iterator[int]:
        bio = self._lib.BIO_new_mem_buf(data, len(data))
        if not bio:
            self._fail(CryptoError, "BIO_new_mem_buf")
        try:
            yield bio
        finally:
            self._lib.BIO_free(bio)

    def _bio_contents(self, bio: int) -> bytes:
        contents = bio_contents(self._lib, bio)
        if contents is None:
            self._fail(CryptoError, "BIO_get_mem_data")
        return contents

    def _own(self, ptr: int) -> EvpPkey:
        return EvpPkey(ptr, self._lib.EVP_PKEY_free)

    def _ptr(self, key: object) -> int:
        if not isinstance(key, EvpPkey) or not key.ptr:
            raise CryptoError("key handle does not belong to the OpenSSL backend")
        return key.ptr

    def _require_sm2(self, key: EvpPkey, what: str) -> None:
        if self._lib.EVP_PKEY_is_a(key.ptr, b"SM2") != 1:
            raise KeyInvalid(f"{what} is not an SM2 key")

    def _check_public(self, key: EvpPkey) -> None:
        pctx = self._lib.EVP_PKEY_CTX_new(key.ptr, None)
        if not pctx:
            self._fail(CryptoError, "EVP_PKEY_CTX_new")
        try:
            if self._lib.EVP_PKEY_public_check(pctx) != 1:
                self._fail(KeyInvalid, "SM2 public key fails the public key check")
        finally:
            self._lib.EVP_PKEY_CTX_free(pctx)

    def _fail(self, error: type[CryptoError], what: str) -> NoReturn:
        raise error(f"{what}: {self._drain_errors()}")

    def _drain_errors(self) -> str:
        lib = self._lib
        messages: list[str] = []
        buf = ctypes.create_string_buffer(_ERR_BUF)
        while code := lib.ERR_get_error():
            lib.ERR_error_string_n(code, buf, _ERR_BUF)
            messages.append(buf.value.decode("ascii", "replace"))
        # OpenSSL 3 often queues the same error once per decoder it tried.
        return "; ".join(dict.fromkeys(messages)) or "no OpenSSL error reported"
