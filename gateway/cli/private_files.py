"""Files holding what agencies sent (original documents, dead letters): crew lists with names,
dates of birth and passport numbers. They are written readable by their owner alone."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from gateway.errors import GatewayError

PRIVATE_MODE = 0o600


def write_private(path: Path, data: bytes) -> None:
    """Writes `data` to `path` as a file of mode 0600, whole or not at all.

    The bytes go into a new file beside `path`, created with mode 0600 (so never more open,
    not even for a moment), which then replaces `path`: a file already there, whatever its
    mode, is replaced rather than written through, and a symbolic link is replaced rather than
    followed. Something at `path` that is not a regular file (a terminal, a pipe,
    /dev/stdout) is written as it is. Raises OSError."""
    if _is_special(path):
        _write_through(path, data)
        return
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.partial")
    _write_new(partial, data)
    try:
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def save_private(path: Path, data: bytes) -> None:
    """`write_private`, its failure a GatewayError (IO_ERROR) naming the file, for commands."""
    try:
        write_private(path, data)
    except OSError as exc:
        raise GatewayError(f"cannot write {path}: {exc.strerror or exc}", code="IO_ERROR") from exc


def _is_special(path: Path) -> bool:
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def _write_new(path: Path, data: bytes) -> None:
    """Creates `path` (which must not exist) with mode 0600 and writes `data`; removes it
    again if the writing fails."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags, PRIVATE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _write_through(path: Path, data: bytes) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)), "wb") as handle:
        handle.write(data)
