"""The worker process of gateway/ahead.py: `python -m gateway.ahead_worker`.

Its standard output carries the answers, so before anything that might print or log is
imported, file descriptor 1 is kept for them and pointed at standard error instead. It
leaves interrupts to the gateway, and ends when the gateway closes its standard input (or
dies). Its adapters are the gateway's: the built-ins and the installed plug-ins."""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # imported after the redirection, on purpose
    from adapters import AdapterRegistry
    from gateway.ahead import Checker, serve
    from message_formats import AvroSchemas

    serve(sys.stdin.buffer, answers, Checker(AdapterRegistry.default(AvroSchemas())))


if __name__ == "__main__":
    main()
