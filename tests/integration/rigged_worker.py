"""A parse worker for the supervision tests, rigged by a marker in the document: it spins
(`<!--spin-->`), swells until its address space runs out (`<!--swell-->`), kills itself
(`<!--crash-->`, or `<!--crash-once:PATH-->`: only while PATH does not exist, which it
creates), or waits SECONDS without using CPU before it parses (`<!--wait:SECONDS-->`), as a
worker does that a busy machine runs seldom. Everything else is the real worker:
`python -P -m tests.integration.rigged_worker`."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from adapters import Adapter, AdapterRegistry, ParseResult
from gateway.decide import ahead_worker

_CRASH_ONCE = re.compile(rb"<!--crash-once:([^>]+?)-->")
_WAIT = re.compile(rb"<!--wait:([0-9.]+)-->")


class _Rigged:
    def __init__(self, adapter: Adapter) -> None:
        self._adapter = adapter

    def parse(self, document: bytes) -> ParseResult:
        if b"<!--spin-->" in document:
            while True:
                pass
        if b"<!--swell-->" in document:
            hoard = []
            while True:
                hoard.append(bytearray(16 * 1024 * 1024))
        wait = _WAIT.search(document)
        if wait:
            time.sleep(float(wait.group(1)))
        once = _CRASH_ONCE.search(document)
        if b"<!--crash-->" in document or (once and _first_time(Path(once.group(1).decode()))):
            os.kill(os.getpid(), signal.SIGKILL)
        return self._adapter.parse(document)


class _RiggedRegistry:
    def __init__(self, registry: AdapterRegistry) -> None:
        self._registry = registry

    def get(self, format_id: str) -> Any:
        return _Rigged(self._registry.get(format_id))

    def __getattr__(self, name: str) -> Any:  # what format detection asks of a registry
        return getattr(self._registry, name)


def _rig(registry: AdapterRegistry) -> AdapterRegistry:
    return _RiggedRegistry(registry)  # type: ignore[return-value]  # a stand-in with the calls the worker makes


def _first_time(path: Path) -> bool:
    try:
        path.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


if __name__ == "__main__":
    ahead_worker.main(rig=_rig)
