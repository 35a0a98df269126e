"""Avro encoding of the FAL 5 canonical event: fastavro directly against AvroSchemas.encode_body
(the schema-compiled writer), on one core.

The record is the canonical record the fal5-xml adapter makes of tests/data/fal5/valid_arrival.xml
plus a header like the one bench/adapters.py builds; both sides encode the very same value, and
the bench checks first that they give the same bytes. Prints the figures, then one JSON line.

Run: .venv/bin/python bench/avro.py [--tiny]

`--tiny` times each side for 0.2 s: a check that the bench still runs, not a measurement.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

# Run as a script, sys.path[0] is bench/: put the repository first instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from fastavro import schemaless_writer  # noqa: E402

from adapters import AdapterRegistry  # noqa: E402
from message_formats import AvroSchemas  # noqa: E402

SAMPLE = Path(__file__).parents[1] / "tests" / "data" / "fal5" / "valid_arrival.xml"
SECONDS = 3.0
TINY_SECONDS = 0.2


def rate(work: Callable[[], object], seconds: float = SECONDS) -> float:
    for _ in range(200):  # warm up
        work()
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            work()
        done += 100
    return done / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="very short timings, same code: checks that the bench runs")
    args = parser.parse_args(argv)
    seconds = TINY_SECONDS if args.tiny else SECONDS
    os.sched_setaffinity(0, {0})
    schemas = AvroSchemas()
    adapter = AdapterRegistry.default(schemas).get("fal5-xml")
    header = {
        "event_id": "01a1fd64-09f3-709e-bad0-6223bca3693d", "document_type": "fal5",
        "format_id": "fal5-xml", "schema_version": 1, "sender": "cn.port.sh",
        "business_key": "", "document_version": 1,
        "received_at": datetime(2026, 3, 15, tzinfo=UTC), "digest_sm3": "0" * 64,
        "signature_key_id": None,
    }
    record = {"header": header, **adapter.parse(SAMPLE.read_bytes()).record}
    name = adapter.schema_name
    parsed = schemas.schema(name)

    def with_fastavro() -> bytes:
        buffer = io.BytesIO()
        schemaless_writer(buffer, parsed, record, strict_allow_default=True)
        return buffer.getvalue()

    def with_encode_body() -> bytes:
        return schemas.encode_body(name, record)

    body = with_fastavro()
    if with_encode_body() != body:
        raise SystemExit("encode_body and fastavro give different bytes")
    if schemas.loaded(name).writer.function is None:
        raise SystemExit(f"no compiled writer for {name}: the bench would measure fastavro twice")

    crew = len(record["crew"])
    print(f"{name}: {crew} crew, {len(body):,} bytes of Avro; one core (CPU 0)")
    fastavro_rate = rate(with_fastavro, seconds)
    print(f"fastavro.schemaless_writer   {fastavro_rate:10,.0f} records/s "
          f"({1e6 / fastavro_rate:6.1f} µs/record)")
    compiled_rate = rate(with_encode_body, seconds)
    print(f"AvroSchemas.encode_body      {compiled_rate:10,.0f} records/s "
          f"({1e6 / compiled_rate:6.1f} µs/record, {compiled_rate / fastavro_rate:.2f}x)")
    print(json.dumps({"records_per_s": round(compiled_rate),
                      "fastavro_records_per_s": round(fastavro_rate),
                      "speedup": round(compiled_rate / fastavro_rate, 2), "crew": crew,
                      "avro_bytes": len(body)}))


if __name__ == "__main__":
    main()
