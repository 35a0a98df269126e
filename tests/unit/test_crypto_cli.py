"""`portgw keys`: generate / sign / verify / show, exit codes, and openssl interop."""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crypto import SM2PrivateKey, SM2PublicKey
from gateway.cli.keys import add_keys_commands, main

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command line not installed")
DOCUMENT = b"<FAL1 voyage='V042'>crew 12</FAL1>\n"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "doc.xml").write_bytes(DOCUMENT)
    assert main(["keys", "generate", "--out", str(tmp_path / "agency")]) == 0
    return tmp_path


def test_generate_writes_pkcs8_and_spki(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path / "agency")]) == 0
    key_pem = (tmp_path / "agency.key").read_bytes()
    pub_pem = (tmp_path / "agency.pub").read_bytes()
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert pub_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    key = SM2PrivateKey.from_pem(key_pem)
    assert key.public_key() == SM2PublicKey.from_pem(pub_pem)
    assert stat.S_IMODE((tmp_path / "agency.key").stat().st_mode) == 0o600
    assert key.public_key().key_id in capsys.readouterr().out


def test_generate_refuses_to_overwrite_without_force(files: Path) -> None:
    before = (files / "agency.key").read_bytes()
    assert main(["keys", "generate", "--out", str(files / "agency")]) == 2
    assert (files / "agency.key").read_bytes() == before
    (files / "agency.key").chmod(0o644)
    assert main(["keys", "generate", "--out", str(files / "agency"), "--force"]) == 0
    assert (files / "agency.key").read_bytes() != before
    assert stat.S_IMODE((files / "agency.key").stat().st_mode) == 0o600


def test_sign_then_verify(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--in", str(files / "doc.xml")]
    assert main(["keys", "sign", "--key", str(files / "agency.key"), *args,
                 "--out", str(files / "doc.sig")]) == 0  # fmt: skip
    signature = (files / "doc.sig").read_bytes()
    assert signature[0] == 0x30
    SM2PublicKey.from_pem((files / "agency.pub").read_bytes()).verify(signature, DOCUMENT)
    verify = ["keys", "verify", "--pub", str(files / "agency.pub"), "--sig", str(files / "doc.sig")]
    assert main([*verify, *args]) == 0
    assert "valid" in capsys.readouterr().out

    (files / "doc.xml").write_bytes(DOCUMENT + b" ")
    assert main([*verify, *args]) == 1
    assert "INVALID" in capsys.readouterr().out
    (files / "doc.sig").write_bytes(b"garbage")
    assert main([*verify, *args]) == 1


def test_user_id_option(files: Path) -> None:
    sign = ["keys", "sign", "--key", str(files / "agency.key"), "--in", str(files / "doc.xml"),
            "--out", str(files / "doc.sig")]  # fmt: skip
    verify = ["keys", "verify", "--pub", str(files / "agency.pub"), "--in",
              str(files / "doc.xml"), "--sig", str(files / "doc.sig")]  # fmt: skip
    assert main([*sign, "--id", "ALICE123@YAHOO.COM"]) == 0
    assert main([*verify, "--id", "ALICE123@YAHOO.COM"]) == 0
    assert main(verify) == 1


def test_encrypted_keys_with_password_file_and_env(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files / "pw").write_text("s3cret\n")
    assert main(["keys", "generate", "--out", str(files / "locked"),
                 "--password-file", str(files / "pw")]) == 0  # fmt: skip
    pem = (files / "locked.key").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    SM2PrivateKey.from_pem(pem, b"s3cret")
    sign = ["keys", "sign", "--key", str(files / "locked.key"), "--in", str(files / "doc.xml"),
            "--out", str(files / "doc.sig")]  # fmt: skip
    assert main(sign) == 2  # no password
    monkeypatch.setenv("PORTGW_KEY_PASSWORD", "s3cret")
    assert main([*sign, "--password-env", "PORTGW_KEY_PASSWORD"]) == 0
    monkeypatch.setenv("PORTGW_KEY_PASSWORD", "wrong")
    assert main([*sign, "--password-env", "PORTGW_KEY_PASSWORD"]) == 2
    assert main([*sign, "--password-env", "PORTGW_UNSET_VARIABLE"]) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["keys"],
        ["keys", "sign", "--key", "k"],
        ["keys", "verify", "--pub", "p", "--in", "f"],
        ["keys", "generate"],
        ["keys", "show"],
        ["keys", "sign", "--backend", "gmssl", "--key", "k", "--in", "f", "--out", "s"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    assert main(argv) == 2


def test_missing_or_bad_files_exit_2(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    verify = ["keys", "verify", "--in", str(files / "doc.xml"), "--sig", str(files / "doc.xml")]
    assert main([*verify, "--pub", str(files / "nope.pub")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main([*verify, "--pub", str(files / "doc.xml")]) == 2
    sign = ["keys", "sign", "--key", str(files / "agency.pub"), "--in", str(files / "doc.xml"),
            "--out", str(files / "doc.sig")]  # fmt: skip
    assert main(sign) == 2
    assert main(["keys", "show", str(files / "nope")]) == 2


def test_show_never_prints_the_private_key(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_pem = (files / "agency.key").read_bytes()
    key = SM2PrivateKey.from_pem(key_pem)
    assert main(["keys", "show", str(files / "agency.key")]) == 0
    out = capsys.readouterr().out
    assert "SM2 private key (PKCS#8 PEM)" in out
    assert key.public_key().key_id in out
    assert key.public_key().point.hex() in out
    assert key.public_key().to_pem().decode() in out
    body = b"".join(key_pem.splitlines()[1:-1]).decode()
    assert body[20:60] not in out

    assert main(["keys", "show", str(files / "agency.pub")]) == 0
    out = capsys.readouterr().out
    assert "SM2 public key" in out and key.public_key().key_id in out


def test_show_encrypted_key(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = SM2PrivateKey.from_pem((files / "agency.key").read_bytes())
    (files / "locked.key").write_bytes(key.to_pem(b"pw"))
    (files / "pw").write_text("pw")
    assert main(["keys", "show", str(files / "locked.key")]) == 0
    out = capsys.readouterr().out
    assert "encrypted PKCS#8" in out and "unknown" in out
    assert main(["keys", "show", str(files / "locked.key"),
                 "--password-file", str(files / "pw")]) == 0  # fmt: skip
    assert key.public_key().key_id in capsys.readouterr().out


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_backend_option(files: Path, backend: str) -> None:
    assert main(["keys", "sign", "--backend", backend, "--key", str(files / "agency.key"),
                 "--in", str(files / "doc.xml"), "--out", str(files / "doc.sig")]) == 0  # fmt: skip
    assert main(["keys", "verify", "--backend", backend, "--pub", str(files / "agency.pub"),
                 "--in", str(files / "doc.xml"), "--sig", str(files / "doc.sig")]) == 0  # fmt: skip


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("generate", "sign", "verify", "show"):
        assert main(["keys", command, "--help"]) == 0
        assert len(capsys.readouterr().out) > 200


def test_add_keys_commands_plugs_into_a_parser() -> None:
    parser = argparse.ArgumentParser(prog="portgw")
    add_keys_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["keys", "show", "x.pem"])
    assert callable(args.run)
    assert args.file == Path("x.pem")


# -- interop ------------------------------------------------------------------------------------


@needs_openssl
def test_cli_signature_verifies_with_openssl_and_back(files: Path) -> None:
    assert OPENSSL is not None
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    signed = subprocess.run(
        [sys.executable, "-m", "gateway.cli.keys", "keys", "sign", "--key",
         str(files / "agency.key"), "--in", str(files / "doc.xml"),
         "--out", str(files / "doc.sig")],
        capture_output=True, env=env, check=False,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    verified = subprocess.run(
        [OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", str(files / "agency.pub"),
         "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
         "-in", str(files / "doc.xml"), "-sigfile", str(files / "doc.sig")],
        capture_output=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr

    theirs = subprocess.run(
        [OPENSSL, "pkeyutl", "-sign", "-inkey", str(files / "agency.key"), "-rawin",
         "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
         "-in", str(files / "doc.xml"), "-out", str(files / "openssl.sig")],
        capture_output=True, check=False,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    assert main(["keys", "verify", "--pub", str(files / "agency.pub"), "--in",
                 str(files / "doc.xml"), "--sig", str(files / "openssl.sig")]) == 0  # fmt: skip
