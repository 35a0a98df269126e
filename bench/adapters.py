"""FAL 5 crew lists through the adapter, against raw lxml on the same bytes, on one core.

What is timed for the adapter: safe parse, XSD validation, mapping to the canonical record,
business rules and the Avro single-object encoding of the event (header included). The
reference is lxml alone parsing and validating the same document with the same XSD, in the
same run. Prints the figures, then one JSON line.
"""

from __future__ import annotations

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


def rate(work: Callable[[], object], seconds: float = SECONDS) -> float:
    for _ in range(200):  # warm up
        work()
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            work()
        done += 100
    return done / elapsed


def main() -> None:
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
        return schema.validate(etree.fromstring(document, parser))

    crew = len(adapter.parse(document).record["crew"])
    print(f"FAL 5 crew list: {crew} crew, {len(document):,} bytes; one core (CPU 0)")
    lxml_rate = rate(lxml_alone)
    print(f"reference  lxml parse + XSD validate   {lxml_rate:10,.0f} docs/s")
    adapter_rate = rate(through_adapter)
    print(f"adapter    parse+validate+map+Avro     {adapter_rate:10,.0f} docs/s "
          f"({adapter_rate / lxml_rate:.2f} of lxml alone; target 5,000)")
    print(json.dumps({"fal5_docs_per_s": round(adapter_rate), "lxml_docs_per_s": round(lxml_rate),
                      "ratio_to_lxml": round(adapter_rate / lxml_rate, 3), "crew": crew,
                      "document_bytes": len(document)}))


if __name__ == "__main__":
    main()
