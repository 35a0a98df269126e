"""The worker process of gateway/decide/ahead.py: `python -P -m gateway.decide.ahead_worker`.

Its standard output carries the messages, so before anything that might print or log is
imported, file descriptor 1 is kept for them and pointed at standard error instead. It
leaves interrupts to the gateway, dies with it (even while parsing, when it reads no
input), and limits its own address space, so that a document that needs more memory is
refused instead of the machine's memory taken. Its adapters are the gateway's: the built-ins
and the installed plug-ins."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import resource
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters import AdapterRegistry

_PAGE = os.sysconf("SC_PAGE_SIZE")
_MB = 1024 * 1024


def main(rig: Callable[[AdapterRegistry], AdapterRegistry] | None = None) -> None:
    """`rig`: wraps the adapters (tests make a worker that spins or crashes on cue)."""
    args = _arguments()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from gateway.children import end_with_parent

    end_with_parent()
    if os.getppid() != args.parent:  # the gateway died before this process could tell
        sys.exit(1)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # imported after the redirection, on purpose
    from adapters import AdapterRegistry
    from gateway.decide.ahead import Checker, serve
    from message_formats import AvroSchemas

    adapters = AdapterRegistry.default(AvroSchemas())
    checker = Checker(rig(adapters) if rig is not None else adapters)
    _limit_address_space(args.memory_limit_mb * _MB)
    # Kept open: asked after every document, read again from its start each time.
    statm = os.open("/proc/self/statm", os.O_RDONLY)
    started = _resident_bytes(statm)
    recycle_above: int = args.recycle_above_mb * _MB

    def grown_too_much() -> bool:
        """Past the limit, the C heap's free memory is first handed back (a large document
        leaves much of it); the worker leaves only if that is not enough."""
        if _resident_bytes(statm) - started <= recycle_above:
            return False
        _trim_heap()
        return _resident_bytes(statm) - started > recycle_above

    serve(sys.stdin.buffer, answers, checker, grown_too_much=grown_too_much)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gateway.decide.ahead_worker")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--memory-limit-mb", type=int, required=True)
    parser.add_argument("--recycle-above-mb", type=int, required=True)
    return parser.parse_args()


def _limit_address_space(more_bytes: int) -> None:
    """What the process has mapped now, plus `more_bytes`."""
    with open("/proc/self/statm", "rb") as statm:
        size = int(statm.read().split()[0]) * _PAGE
    resource.setrlimit(resource.RLIMIT_AS, (size + more_bytes, size + more_bytes))


def _trim_heap() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(None).malloc_trim(0)


def _resident_bytes(statm: int) -> int:
    """From /proc/self/statm, open as `statm`: one system call, not three."""
    return int(os.pread(statm, 128, 0).split()[1]) * _PAGE


if __name__ == "__main__":
    main()
