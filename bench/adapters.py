"""FAL 5 crew lists through the adapter, against raw lxml on the same bytes, on one core.

What is timed for the adapter: safe parse, XSD validation, mapping to the canonical record,
business rules and the Avro single-object encoding of the event (header included). The
reference is lxml alone parsing and validating the same document with the same XSD, in the
same run, timed in turns with the adapter. Prints the figures, then one JSON line.

Run: .venv/bin/python bench/adapters.py [--tiny]

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
from datetime import UTC, datetime
from pathlib import Path

# This file shares its name with the package it measures: import the package, not itself.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from lxml import etree  # noqa: E402

from adapters import AdapterRegistry  # noqa: E402
from message_formats import AvroSchemas, XsdStore  # noqa: E402

SAMPLE = Path(__file__).parents[1] / "tests" / "data" / "fal5" / "valid_arrival.xml"
SECONDS = 3.0
SLICE = 0.25
TINY_SECONDS, TINY_SLICE = 0.2, 0.05


def rates(*works: Callable[[], object], seconds: float = SECONDS,
          slice_s: float = SLICE) -> list[float]:
    """Documents per second of each of `works`, timed in turns of `slice_s` until each
    has had `seconds`: a load that comes and goes while the bench runs weighs on all of
    them alike, so their ratio holds better than with one timed after the other."""
    for work in works:
        for _ in range(200):  # warm up
            work()
    done, spent = [0] * len(works), [0.0] * len(works)
    while min(spent) < seconds:
        for index, work in enumerate(works):
            count, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < slice_s:
                for _ in range(50):
                    work()
                count += 50
            done[index] += count
            spent[index] += elapsed
    return [count / elapsed for count, elapsed in zip(done, spent, strict=True)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="very short timings, same code: checks that the bench runs")
    args = parser.parse_args(argv)
    seconds, slice_s = (TINY_SECONDS, TINY_SLICE) if args.tiny else (SECONDS, SLICE)
    os.sched_setaffinity(0, {0})
    document = SAMPLE.read_bytes()
    schemas = AvroSchemas()
    adapter = AdapterRegistry.default(schemas).get("fal5-xml")
    header = {
        "event_id": "01a1fd64-09f3-709e-bad0-6223bca3693d", "document_type": "fal5",
        "format_id": "fal5-xml", "schema_version": 1, "sender": "cn.port.sh",
        "business_key": "", "document_version": 1,
        "received_at": datetime(2026, 3, 15, tzinfo=UTC), "digest_sm3": "0" * 64,
        "signature_key_id": None,
    }

    def through_adapter() -> bytes:
        parsed = adapter.parse(document)
        return schemas.encode(adapter.schema_name, {"header": header, **parsed.record})

    # The same parser settings SafeXmlParser uses, without the gateway's checks around them.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             collect_ids=False, remove_comments=True, remove_pis=True)
    schema = XsdStore().schema("fal5")

    def lxml_alone() -> bool:
        valid: bool = schema.validate(etree.fromstring(document, parser))
        return valid

    crew = len(adapter.parse(document).record["crew"])
    print(f"FAL 5 crew list: {crew} crew, {len(document):,} bytes; one core (CPU 0)")
    lxml_rate, adapter_rate = rates(lxml_alone, through_adapter, seconds=seconds,
                                    slice_s=slice_s)
    print(f"reference  lxml parse + XSD validate   {lxml_rate:10,.0f} docs/s")
    print(f"adapter    parse+validate+map+Avro     {adapter_rate:10,.0f} docs/s "
          f"({adapter_rate / lxml_rate:.2f} of lxml alone; target 5,000)")
    print(json.dumps({"fal5_docs_per_s": round(adapter_rate), "lxml_docs_per_s": round(lxml_rate),
                      "ratio_to_lxml": round(adapter_rate / lxml_rate, 3), "crew": crew,
                      "document_bytes": len(document)}))


if __name__ == "__main__":
    main()
