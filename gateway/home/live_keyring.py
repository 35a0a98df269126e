"""The keyring in force, reloaded while the gateway runs: on SIGHUP and when its file changes.

Every user of the keyring inside the gateway (the authenticate stage, the parse worker's
choice of each sender's newest key, the SM4 envelopes to recipients, the contracts' check of
recipient keys) holds this one `LiveKeyring` and reads `current` when it needs a key, never a
keyring captured at start. A reload builds a complete new keyring from the file and only then
replaces the old one (one attribute assignment), so a key is judged either entirely under the
old keyring or entirely under the new one. A file that does not load (unreadable, not TOML,
a role error, a missing or bad key file) leaves the old keyring in force and logs one line
with the problem's code; it never stops the gateway.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from crypto import CryptoError, Keyring, sm3_hex
from gateway.home.watching import reload_on_change

log = structlog.get_logger(__name__)


class LiveKeyring:
    """Holds the keyring loaded from `path`; `current` is the one in force now."""

    __slots__ = ("_current", "_path")

    def __init__(self, path: Path, current: Keyring) -> None:
        self._path = path
        self._current = current

    @classmethod
    def load(cls, path: Path) -> LiveKeyring:
        """The keyring file loaded; crypto.KeyringError (with its code) if it does not load:
        at start there is no old keyring to keep."""
        return cls(path, Keyring.from_toml(path))

    @property
    def path(self) -> Path:
        return self._path

    @property
    def current(self) -> Keyring:
        return self._current

    @property
    def version(self) -> str | None:
        """The version of the keyring in force (the SM3 of its file's bytes)."""
        return self._current.version

    def reload(self) -> bool:
        """True if the file's keyring is now in force; False (old keyring kept) if not."""
        try:
            keyring = Keyring.from_toml(self._path)
        except CryptoError as exc:
            log.warning("keyring.reload_refused", code=exc.code, error=exc.message,
                        kept_version=self.version)
            return False
        self._current = keyring
        log.info("keyring.reloaded", version=keyring.version, keys=len(keyring))
        return True

    async def watch(self, stop: asyncio.Event, interval_s: float) -> None:
        """Reloads whenever the file's bytes change, looking every `interval_s` seconds
        until `stop` is set. A file that fails to load is reported once, not at every look;
        it is tried again when it changes again (or on SIGHUP)."""
        await reload_on_change(stop, interval_s, lambda: file_digest(self._path),
                               self.reload)


def file_digest(path: Path) -> str | None:
    """The SM3 of the file's bytes (a keyring's version when it loads); None when it cannot
    be read."""
    try:
        return sm3_hex(path.read_bytes())
    except OSError:
        return None
