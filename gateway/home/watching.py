"""Polling a file or folder for changes while the gateway runs (the keyring, the contracts)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable


async def reload_on_change(stop: asyncio.Event, interval_s: float,
                           fingerprint: Callable[[], Hashable],
                           reload: Callable[[], object]) -> None:
    """Calls `reload` whenever `fingerprint()` differs from the last one seen, looking every
    `interval_s` seconds until `stop` is set. A reload that fails is not retried until the
    fingerprint changes again."""
    seen = fingerprint()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        now = fingerprint()
        if now != seen and not stop.is_set():
            seen = now
            reload()
