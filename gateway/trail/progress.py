"""How far a trail verification has got, as `portgw replay verify --progress` prints it and
the console's verify job reads it back: one type for both sides of that line."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(rb"progress: phase=(\w+) read=(\d+) verified=(\d+) chains=(\d+)/(\d+)\s*")


@dataclass(frozen=True, slots=True)
class Progress:
    """The messages read, then the records verified and the chains done, then the referenced
    messages being checked (phase read, chains, references)."""

    phase: str
    read: int
    verified: int = 0
    chains_done: int = 0
    chains: int = 0

    def line(self) -> str:
        return (f"progress: phase={self.phase} read={self.read} verified={self.verified} "
                f"chains={self.chains_done}/{self.chains}")


def progress_of(line: bytes) -> Progress | None:
    """The progress a line of the command's output reports; None for any other line."""
    found = _LINE.fullmatch(line)
    if found is None:
        return None
    phase, *numbers = found.groups()
    read, verified, done, chains = (int(n) for n in numbers)
    return Progress(phase.decode(), read, verified, done, chains)
