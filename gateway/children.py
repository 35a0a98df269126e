"""What the gateway's child processes (the local broker, the parse worker) share: they end
when the gateway does."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def end_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux sends this process `sig` when its parent dies, so a killed gateway leaves no
    child behind. Elsewhere this does nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        pass
