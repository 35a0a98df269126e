"""The worker process of gateway/verify_ahead.py: `python -m gateway.verify_worker`.

Its standard output carries the verdicts, so before anything that might print or log is
imported, file descriptor 1 is kept for them and pointed at standard error instead. It
leaves interrupts to the gateway, and ends when the gateway closes its standard input (or
dies)."""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    from gateway.verify_ahead import serve  # imported after the redirection, on purpose

    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
