"""The EDIFACT interchange layer reading a 100-passenger PAXLST interchange, against the
bare tokenising of the same bytes, on one core.

What is timed for the layer is `read_interchange`: UNA, the repertoire (UNOA) check and
decoding, the split honouring the release character, the envelopes, control counts and
references, the Segment values. The reference is the least any reader does with the same
bytes: decode them and split segments, elements and components with str.split (no release
character, no check, no value objects). Both are timed in turns, in the same run.

A second figure reads the same interchange with a released character in every passenger's
name (the slower path of the split).

Prints the figures, then one JSON line.

Run: .venv/bin/python bench/edifact.py [--tiny]

`--tiny` times each side for 0.2 s in slices of 0.05 s: a check that the bench still runs,
not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from message_formats.edifact import read_interchange  # noqa: E402

PASSENGERS = 100
SECONDS, SLICE = 3.0, 0.25
TINY_SECONDS, TINY_SLICE = 0.2, 0.05


def passenger_list(passengers: int, name: str = "MICHAEL") -> bytes:
    """A PAXLST D.05B interchange as an airline sends it (UNA, UNG group, one segment a
    line), synthetic, from the segment usage in docs/edifact-research.md §4."""
    segments = ["BGM+745", "NAD+MS+++JOHN SMITH", "TDT+20+UA123+++UA", "LOC+125+FRA",
                "DTM+189:2401311405:201", "LOC+87+IAD", "DTM+232:2401311905:201"]
    for n in range(passengers):
        segments += [f"NAD+FL+++CLARK:{name}:{n:03}", "ATT+2++M", "DTM+329:720907",
                     "LOC+178+FRA", "LOC+179+IAD", "NAT+2+USA", f"RFF+AVF:ABC{n:04}",
                     f"DOC+P:110:111+X{n:07}", "DTM+36:310218", "LOC+91+USA"]
    segments.append(f"CNT+42:{passengers}")
    body = "'\n".join(["UNH+1+PAXLST:D:05B:UN:IATA", *segments,
                       f"UNT+{len(segments) + 2}+1"])
    return (f"UNA:+.? '\nUNB+UNOA:4+CARRIER:ZZ+PORTGW:ZZ+20240131:1405+ICR1++++1'\n"
            f"UNG+PAXLST+CARRIER+PORTGW+20240131:1405+G1+UN+D:05B'\n{body}'\n"
            f"UNE+1+G1'\nUNZ+1+ICR1'\n").encode("ascii")


def bare_split(data: bytes) -> list[list[list[str]]]:
    return [[element.split(":") for element in segment.split("+")]
            for segment in data.decode("ascii").split("'")]


def in_turns(works: list[Callable[[], object]], seconds: float,
             slice_s: float) -> list[float]:
    """Calls per second of each work, timed in alternating slices so that a load that comes
    and goes weighs on all of them alike."""
    for work in works:
        work()
    calls, spent = [0] * len(works), [0.0] * len(works)
    while min(spent) < seconds:
        for index, work in enumerate(works):
            started = time.perf_counter()
            while time.perf_counter() - started < slice_s:
                work()
                calls[index] += 1
            spent[index] += time.perf_counter() - started
    return [count / elapsed for count, elapsed in zip(calls, spent, strict=True)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)
    seconds, slice_s = (TINY_SECONDS, TINY_SLICE) if args.tiny else (SECONDS, SLICE)
    os.sched_setaffinity(0, {0})
    data = passenger_list(PASSENGERS)
    released = passenger_list(PASSENGERS, name="O?'NEIL")
    [message] = read_interchange(released).messages
    assert len(message.segments) == len(read_interchange(data).messages[0].segments)
    assert message.segments[8].value(3, 1) == "O'NEIL"
    layer, bare, layer_released = in_turns(
        [lambda: read_interchange(data), lambda: bare_split(data),
         lambda: read_interchange(released)], seconds, slice_s)
    figures = {
        "read_docs_per_s": round(layer, 1), "bare_split_docs_per_s": round(bare, 1),
        "ratio_to_bare_split": round(layer / bare, 3),
        "released_read_docs_per_s": round(layer_released, 1),
        "passengers": PASSENGERS, "segments": data.count(b"'") - 1,
        "interchange_bytes": len(data),
    }
    print(f"100-passenger PAXLST ({len(data)} bytes, {figures['segments']} segments): "
          f"read_interchange {layer:.0f}/s, bare str.split {bare:.0f}/s "
          f"(ratio {layer / bare:.2f}); with released characters {layer_released:.0f}/s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
