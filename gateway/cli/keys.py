"""`portgw keys`: make SM2 key pairs, sign and verify detached signatures, inspect key files;
make a console token (docs/console.md).

Signatures are DER over SM3(Z(ID) ‖ file) with the ID 1234567812345678 unless --id says
otherwise, exactly what `openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:ID`
makes. Exit codes: 0 done (or signature valid), 1 signature invalid, 2 usage or I/O error.
Passwords come from a file or an environment variable, never from the command line.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from crypto import (
    BACKEND_NAMES,
    DEFAULT_SM2_ID,
    CryptoError,
    SignatureInvalid,
    SM2PrivateKey,
    SM2PublicKey,
)
from gateway.home.create import console_binding

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
_PRIVATE_KEY_MODE = 0o600


class UsageError(Exception):
    """A problem with the command line or the files it names: exit code 2."""


def add_keys_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    keys = subparsers.add_parser(
        "keys",
        help="generate, sign with, verify with and inspect SM2 keys",
        description="SM2 keys (GB/T 32918) as PKCS#8 / SPKI PEM, and detached DER "
        "signatures over SM3 with the Z value of a user ID (default 1234567812345678). "
        "Exit codes: 0 done or valid, 1 signature invalid, 2 usage or I/O error.",
    )
    commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    _add_generate(commands)
    _add_sign(commands)
    _add_verify(commands)
    _add_show(commands)
    _add_console_token(commands)


def main(argv: Sequence[str] | None = None) -> int:
    """`portgw keys ...` on its own, for tests and for `python -m gateway.cli.keys keys ...`."""
    parser = argparse.ArgumentParser(prog="portgw")
    add_keys_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 after --help
        return int(exc.code or 0)
    return int(args.run(args))


# -- generate ----------------------------------------------------------------------------------


def _add_generate(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "generate",
        help="make a key pair: PREFIX.key (PKCS#8 PEM) and PREFIX.pub (SPKI PEM)",
        description="Generates an SM2 key pair and writes PREFIX.key (the private key, PKCS#8 "
        "PEM, mode 0600, encrypted with PBES2/AES-256-CBC when a password is given) and "
        "PREFIX.pub (the public key, SubjectPublicKeyInfo PEM). Prints the key id (SM3 of "
        "the SPKI DER). Refuses to overwrite existing files unless --force.",
    )
    parser.add_argument("--out", required=True, metavar="PREFIX", help="path prefix to write")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    _password_args(parser, "encrypt the private key with the password")
    _backend_arg(parser)
    parser.set_defaults(run=_run(_generate))


def _generate(args: argparse.Namespace) -> int:
    key_path, pub_path = Path(f"{args.out}.key"), Path(f"{args.out}.pub")
    key = SM2PrivateKey.generate(backend=args.backend)
    _write(key_path, key.to_pem(_password(args)), force=args.force, mode=_PRIVATE_KEY_MODE)
    _write(pub_path, key.public_key().to_pem(), force=args.force)
    print(f"wrote {key_path} (private key) and {pub_path} (public key)")
    print(f"key id: {key.public_key().key_id}")
    return EXIT_OK


# -- sign / verify -----------------------------------------------------------------------------


def _add_sign(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "sign",
        help="sign a file: a detached DER SM2 signature",
        description="Signs the exact bytes of FILE with the private key K and writes the DER "
        "signature to SIG. Equivalent to `openssl pkeyutl -sign -rawin -digest sm3 "
        "-pkeyopt distid:ID`.",
    )
    parser.add_argument("--key", required=True, type=Path, metavar="K", help="private key PEM")
    parser.add_argument("--in", dest="input", required=True, type=Path, metavar="FILE",
                        help="the file to sign")  # fmt: skip
    parser.add_argument("--out", required=True, type=Path, metavar="SIG",
                        help="where to write the DER signature")  # fmt: skip
    _id_arg(parser)
    _password_args(parser, "the private key's password, if it is encrypted")
    _backend_arg(parser)
    parser.set_defaults(run=_run(_sign))


def _sign(args: argparse.Namespace) -> int:
    key = SM2PrivateKey.from_pem(_read(args.key), _password(args), backend=args.backend)
    signature = key.sign(_read(args.input), user_id=args.user_id)
    _write(args.out, signature, force=True)
    print(f"signed {args.input} with key {key.public_key().key_id}: {args.out}")
    return EXIT_OK


def _add_verify(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "verify",
        help="verify a detached DER SM2 signature (exit 0 valid, 1 invalid)",
        description="Verifies the DER signature SIG over the exact bytes of FILE with the "
        "public key P. Exit 0 if valid, 1 if invalid, 2 on a usage or I/O error.",
    )
    parser.add_argument("--pub", required=True, type=Path, metavar="P", help="public key PEM")
    parser.add_argument("--in", dest="input", required=True, type=Path, metavar="FILE",
                        help="the signed file")  # fmt: skip
    parser.add_argument("--sig", required=True, type=Path, metavar="SIG",
                        help="the DER signature")  # fmt: skip
    _id_arg(parser)
    _backend_arg(parser)
    parser.set_defaults(run=_run(_verify))


def _verify(args: argparse.Namespace) -> int:
    public = SM2PublicKey.from_pem(_read(args.pub), backend=args.backend)
    signature, data = _read(args.sig), _read(args.input)
    try:
        public.verify(signature, data, user_id=args.user_id)
    except SignatureInvalid:
        print(f"INVALID: {args.sig} is not a signature of {args.input} by key {public.key_id}")
        return EXIT_INVALID
    print(f"valid: {args.sig} is a signature of {args.input} by key {public.key_id}")
    return EXIT_OK


# -- show --------------------------------------------------------------------------------------


def _add_show(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "show",
        help="describe a key file: kind, key id, public point (never the private key)",
        description="Prints what FILE holds (SM2 public or private key, its format), the key "
        "id and the public point, and for a private key its public key PEM. An encrypted "
        "private key needs its password for anything beyond its format.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="a PEM key file")
    _password_args(parser, "the private key's password, if it is encrypted")
    _backend_arg(parser)
    parser.set_defaults(run=_run(_show))


_PRIVATE_LABELS = {
    b"-----BEGIN ENCRYPTED PRIVATE KEY-----": "encrypted PKCS#8 PEM",
    b"-----BEGIN PRIVATE KEY-----": "PKCS#8 PEM",
    b"-----BEGIN EC PRIVATE KEY-----": "RFC 5915 PEM",
    b"-----BEGIN SM2 PRIVATE KEY-----": "RFC 5915 PEM",
}


def _show(args: argparse.Namespace) -> int:
    pem = _read(args.file)
    password = _password(args)
    print(f"file: {args.file}")
    private_format = next((name for tag, name in _PRIVATE_LABELS.items() if tag in pem), None)
    if private_format is None:
        public = SM2PublicKey.from_pem(pem, backend=args.backend)
        print("kind: SM2 public key (SubjectPublicKeyInfo PEM)")
        _describe_public(public)
        return EXIT_OK
    print(f"kind: SM2 private key ({private_format})")
    if private_format.startswith("encrypted") and password is None:
        print("key id: unknown (encrypted; give --password-file or --password-env)")
        return EXIT_OK
    public = SM2PrivateKey.from_pem(pem, password, backend=args.backend).public_key()
    _describe_public(public)
    sys.stdout.write(public.to_pem().decode("ascii"))
    return EXIT_OK


def _describe_public(public: SM2PublicKey) -> None:
    print(f"key id: {public.key_id}")
    print(f"point: {public.point.hex()}")


# -- shared ------------------------------------------------------------------------------------


Handler = Callable[[argparse.Namespace], int]


def _run(handler: Handler) -> Handler:
    """Wrap a handler so key and file problems print one line and exit 2, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (UsageError, CryptoError, ValueError) as exc:
            message = exc.message if isinstance(exc, CryptoError) else str(exc)
            print(f"portgw keys: error: {message}", file=sys.stderr)
            return EXIT_USAGE

    return run


def _id_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--id",
        dest="user_id",
        type=lambda text: text.encode("utf-8"),
        default=DEFAULT_SM2_ID,
        metavar="ID",
        help=f"SM2 user ID for the Z value (UTF-8; default {DEFAULT_SM2_ID.decode()})",
    )


def _password_args(parser: argparse.ArgumentParser, purpose: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password-file", type=Path, metavar="PATH",
                       help=f"{purpose}: the first line of PATH")  # fmt: skip
    group.add_argument("--password-env", metavar="VAR",
                       help=f"{purpose}: the value of environment variable VAR")  # fmt: skip


def _backend_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default=None,
        help="crypto backend (default: $PORTGW_CRYPTO_BACKEND, else fast)",
    )


def _password(args: argparse.Namespace) -> bytes | None:
    if args.password_file is not None:
        lines = _read(args.password_file).splitlines()
        password = lines[0] if lines else b""
    elif args.password_env is not None:
        if args.password_env not in os.environ:
            raise UsageError(f"environment variable {args.password_env} is not set")
        password = os.environ[args.password_env].encode("utf-8")
    else:
        return None
    if not password:
        raise UsageError("the password is empty")
    return password


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _write(path: Path, data: bytes, *, force: bool, mode: int = 0o644) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, mode)
        os.fchmod(descriptor, mode)  # an overwritten file keeps its old mode otherwise
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except FileExistsError:
        raise UsageError(f"{path} exists; use --force to overwrite it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


# -- console token -----------------------------------------------------------------------------


def _add_console_token(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "console-token",
        help="make a console token: the token to a file, its [[client]] binding to stdout",
        description="Draws a random console token (256 bits), writes it to FILE (mode 0600; "
        "hand it to its holder) and prints the [[client]] table that binds its SHA-256 to "
        "NAME with ROLE, to add to keyring.toml. The keyring never holds the token itself. "
        "Refuses to overwrite FILE unless --force.",
    )
    parser.add_argument("--role", required=True, choices=("operator", "auditor"),
                        help="operator: reads and retries; auditor: reads")
    parser.add_argument("--name", required=True, help="who holds it, as the console shows")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE",
                        help="where to write the token (mode 0600)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE")
    parser.set_defaults(run=_run(_console_token))


def _console_token(args: argparse.Namespace) -> int:
    if not args.name.strip() or '"' in args.name or "\\" in args.name:
        raise UsageError("--name must be a non-empty name without quotes or backslashes")
    token = secrets.token_urlsafe(32)
    _write(args.out, f"{token}\n".encode(), force=args.force, mode=_PRIVATE_KEY_MODE)
    print(console_binding(token, args.role, args.name), end="")
    print(f"wrote the token to {args.out}; add the table above to keyring.toml",
          file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
