"""What `portgw replay trace | export | check-bundle` run, given parsed arguments: each prints
for a terminal (`out`, else the standard output at the time of the call) and returns the exit
code (0 verified / found, 1 not)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from crypto import Keyring
from gateway.kafka.wire import Broker
from message_formats import AvroSchemas
from replay.bundle import check_bundle, export_bundle_kafka
from replay.history import describe_history, trace_kafka

EXIT_OK, EXIT_FAILED = 0, 1


def run_trace(
    bootstrap_servers: Broker,
    business_key: str,
    *,
    trail_topic: str,
    sender: str | None = None,
    out: TextIO | None = None,
) -> int:
    history = asyncio.run(trace_kafka(bootstrap_servers, AvroSchemas(), business_key,
                                      sender=sender, trail_topic=trail_topic))
    print(describe_history(history), file=out)
    return EXIT_OK if history.found else EXIT_FAILED


def run_export(
    bootstrap_servers: Broker,
    keyring: Keyring,
    business_key: str,
    path: Path,
    *,
    trail_topic: str,
    sender: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Exports, then checks what was written against the same keyring, so a bundle that
    would not convince an auditor is known at once."""
    schemas = AvroSchemas()
    bundle = asyncio.run(export_bundle_kafka(bootstrap_servers, schemas, keyring, business_key,
                                             path, sender=sender, trail_topic=trail_topic))
    print(f"wrote {path}", file=out)
    print(bundle.describe(), file=out)
    report = check_bundle(path, keyring=keyring, schemas=schemas)
    print(report.describe(), file=out)
    return EXIT_OK if report.ok else EXIT_FAILED


def run_check_bundle(
    path: Path, *, keyring: Keyring | None = None, out: TextIO | None = None
) -> int:
    report = check_bundle(path, keyring=keyring)
    print(report.describe(), file=out)
    return EXIT_OK if report.ok else EXIT_FAILED


__all__ = ["run_check_bundle", "run_export", "run_trace"]
