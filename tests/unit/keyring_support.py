"""Editing a gateway home's keyring as an operator does while the gateway runs: a second key
for an agency, a key revoked, a file that does not load. Each edit replaces the file at once
(a watcher never sees half of it)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from crypto import SM2PrivateKey, sm3_hex
from gateway.home.create import Home

PROVIDER = "cn.port.sh"
# The second key's valid_from: a day after the first's, so it is the agency's newest key.
SECOND_KEY_FROM = "2026-01-02T00:00:00Z"


def keyring_path(home: Home) -> Path:
    return home.path / "keyring.toml"


def keyring_text(home: Home) -> str:
    return keyring_path(home).read_text(encoding="utf-8")


def keyring_version(home: Home) -> str:
    """What the keyring file's version is: the SM3 of its bytes."""
    return sm3_hex(keyring_path(home).read_bytes())


def write_keyring(home: Home, text: str | bytes) -> None:
    path = keyring_path(home)
    staged = path.with_suffix(".staged")
    staged.write_bytes(text.encode() if isinstance(text, str) else text)
    os.replace(staged, path)


def with_second_key(text: str, agency: str = PROVIDER, *, file: str | None = None) -> str:
    """The keyring text with a second document key of `agency` (its newest), read from
    `keys/<agency>-2.pub` unless `file` names another."""
    public_key = file or f"keys/{agency}-2.pub"
    return text + (f'\n[[key]]\nagency = "{agency}"\npublic_key = "{public_key}"\n'
                   f'roles = ["document", "ack"]\nvalid_from = {SECOND_KEY_FROM}\n')


def add_second_key(home: Home, agency: str = PROVIDER) -> SM2PrivateKey:
    """A new key for `agency`, written to keys/ and listed in the keyring after its first."""
    key = SM2PrivateKey.generate()
    (home.path / "keys" / f"{agency}-2.pub").write_bytes(key.public_key().to_pem())
    write_keyring(home, with_second_key(keyring_text(home), agency))
    return key


def revoked(text: str, public_key: str, at: datetime) -> str:
    """The keyring text with the entry of key file `public_key` revoked at `at`."""
    line = f'public_key = "{public_key}"\n'
    assert text.count(line) == 1, f"{public_key} is not listed once"
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return text.replace(line, f"{line}revoked_at = {stamp}\n")


def first_key_file(agency: str = PROVIDER) -> str:
    return f"keys/{agency}.pub"


def second_key_file(agency: str = PROVIDER) -> str:
    return f"keys/{agency}-2.pub"
