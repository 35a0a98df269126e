"""The conformance kit an adapter author runs against their own adapter and samples.

    report = check_adapter(MyAdapter(), samples_dir=Path("tests/data/my-format"),
                           schemas=AvroSchemas(Path("my_package/avro")))
    assert report.ok, report.describe()

Samples: a directory of documents and an `expected.json` naming, for each refused sample,
the error code it must give ({"bad.xml": {"code": "RULE_X"}}); every other file is valid,
except notes (`*.md`, e.g. a SOURCES.md saying where the samples come from).
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from message_formats import AvroSchemas, FormatError

from .base import Adapter, AdapterError

REFUSALS = (AdapterError, FormatError)
NOTES_SUFFIX = ".md"  # notes beside the samples (where they come from), not samples
Refusal = AdapterError | FormatError
T = TypeVar("T")
PLACEHOLDER_HEADER = {
    "event_id": "00000000-0000-7000-8000-000000000000",
    "document_type": "",
    "format_id": "",
    "schema_version": 1,
    "sender": "kit",
    "business_key": "kit",
    "document_version": 1,
    "received_at": datetime(2026, 1, 1, tzinfo=UTC),
    "digest_sm3": "0" * 64,
    "signature_key_id": None,
}
HOSTILE = (
    b"",
    b"\x00\xff" * 64,
    b"<" * 1000,
    b"<a>" * 5000,
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>',
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "http://127.0.0.1:9/">]><a>&x;</a>',
    "\ufeff<a>\u202e</a>".encode(),
)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    sample: str
    problem: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.sample}: {self.problem}"


@dataclass(frozen=True, slots=True)
class KitReport:
    format_id: str
    checks: int
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings

    def describe(self) -> str:
        head = f"{self.format_id}: {self.checks} checks, {len(self.findings)} finding(s)"
        return "\n".join([head, *(f"  {f}" for f in self.findings)])


@dataclass(frozen=True, slots=True)
class Samples:
    valid: tuple[tuple[str, bytes], ...]
    refused: tuple[tuple[str, bytes, str], ...]

    @classmethod
    def from_dir(cls, directory: Path) -> Samples:
        expected_file = directory / "expected.json"
        expected = json.loads(expected_file.read_text("utf-8")) if expected_file.exists() else {}
        valid, refused = [], []
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            if path.name == "expected.json" or path.suffix == NOTES_SUFFIX:
                continue
            code = expected.get(path.name, {}).get("code")
            if code:
                refused.append((path.name, path.read_bytes(), str(code)))
            else:
                valid.append((path.name, path.read_bytes()))
        return cls(tuple(valid), tuple(refused))


class _Run:
    """Collects findings while the checks run."""

    def __init__(self, adapter: Adapter, time_limit_s: float) -> None:
        self.adapter = adapter
        self.time_limit_s = time_limit_s
        self.checks = 0
        self.findings: list[Finding] = []

    def finding(self, check: str, sample: str, problem: str) -> None:
        self.findings.append(Finding(check, sample, problem))

    def timed(self, check: str, sample: str, call: Callable[[], T]) -> T | Refusal | None:
        """Runs one adapter call: within the time limit, and failing only with a coded
        refusal. Returns the result, a refusal exception, or None after a crash."""
        self.checks += 1
        started = time.perf_counter()
        try:
            return call()
        except REFUSALS as exc:
            return exc
        except Exception as exc:  # the kit's purpose is to catch exactly this
            self.finding(check, sample, f"crashed with {type(exc).__name__}: {exc}")
            return None
        finally:
            spent = time.perf_counter() - started
            if spent > self.time_limit_s:
                self.finding("bounded-time", sample,
                             f"took {spent:.3f} s, more than {self.time_limit_s} s")


def check_adapter(
    adapter: Adapter,
    *,
    samples: Samples | None = None,
    samples_dir: Path | None = None,
    schemas: AvroSchemas | None = None,
    time_limit_s: float = 1.0,
    garbage_per_sample: int = 40,
    seed: int = 20261121,
) -> KitReport:
    if samples is None:
        if samples_dir is None:
            raise ValueError("give samples or samples_dir")
        samples = Samples.from_dir(samples_dir)
    schemas = schemas or AvroSchemas()
    run = _Run(adapter, time_limit_s)
    with _network_refused():
        _check_shape(run, schemas)
        if not samples.valid:
            run.finding("samples", "-", "no valid sample to check against")
        for name, data in samples.valid:
            _check_valid_sample(run, schemas, name, data)
        for name, data, code in samples.refused:
            _check_refused_sample(run, name, data, code)
        for name, data in _garbage(samples, garbage_per_sample, random.Random(seed)):
            run.timed("garbage", name, partial(adapter.parse, data))
    return KitReport(getattr(adapter, "format_id", "?"), run.checks, tuple(run.findings))


def _check_shape(run: _Run, schemas: AvroSchemas) -> None:
    run.checks += 1
    candidate: object = run.adapter  # whatever the author passed, not yet known to conform
    if not isinstance(candidate, Adapter):
        run.finding("protocol", "-", "does not have format_id, document_type, schema_name, "
                    "media_type, parse and render")
        return
    if run.adapter.schema_name not in schemas:
        run.finding("protocol", "-", f"Avro schema {run.adapter.schema_name} is not loaded")


def _check_valid_sample(run: _Run, schemas: AvroSchemas, name: str, data: bytes) -> None:
    adapter = run.adapter
    first = run.timed("parse", name, lambda: adapter.parse(data))
    if first is None or isinstance(first, Exception):
        if first is not None:
            run.finding("parse", name, f"refused a valid sample: {first.code}: {first}")
        return
    second = run.timed("determinism", name, lambda: adapter.parse(data))
    if second != first:
        run.finding("determinism", name, "two parses of the same bytes differ")
    run.checks += 1
    try:
        schemas.encode(adapter.schema_name, {"header": PLACEHOLDER_HEADER, **first.record})
    except FormatError as exc:
        run.finding("avro", name, f"record does not fit {adapter.schema_name}: {exc.message}")
    rendered = run.timed("render", name, lambda: adapter.render(first.record))
    if not isinstance(rendered, bytes):
        run.finding("render", name, f"render failed: {rendered}")
        return
    if run.timed("determinism", name, lambda: adapter.render(first.record)) != rendered:
        run.finding("determinism", name, "two renders of the same record differ")
    again = run.timed("round-trip", name, lambda: adapter.parse(rendered))
    if getattr(again, "record", None) != first.record:
        run.finding("round-trip", name, "parse(render(record)) is not the record")


def _check_refused_sample(run: _Run, name: str, data: bytes, code: str) -> None:
    outcome = run.timed("refusal", name, lambda: run.adapter.parse(data))
    if outcome is None:
        return
    if not isinstance(outcome, Exception):
        run.finding("refusal", name, f"was accepted; expected {code}")
    elif outcome.code != code:
        run.finding("refusal", name, f"gave {outcome.code}; expected {code}")


def _garbage(samples: Samples, per_sample: int, rng: random.Random
             ) -> Iterator[tuple[str, bytes]]:
    for n, data in enumerate(HOSTILE):
        yield f"hostile#{n}", data
    for name, data in samples.valid:
        for n in range(per_sample):
            yield f"{name}~{n}", _mutate(data, rng)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buffer = bytearray(data)
    choice = rng.randrange(4)
    if choice == 0 and buffer:
        return bytes(buffer[: rng.randrange(len(buffer))])
    if choice == 1 and buffer:
        for _ in range(rng.randint(1, 8)):
            buffer[rng.randrange(len(buffer))] = rng.randrange(256)
        return bytes(buffer)
    if choice == 2 and buffer:
        start = rng.randrange(len(buffer))
        return bytes(buffer[:start] + buffer[start:][: rng.randrange(64)] * 3 + buffer[start:])
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 512)))


@contextmanager
def _network_refused() -> Iterator[None]:
    """Adapters must never reach the network; any attempt fails loudly during the run."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"adapter tried to use the network: {args[:2]!r}")

    saved = (socket.socket.connect, socket.create_connection, socket.getaddrinfo)
    # Patching the class's method for the run is the point; mypy forbids it by default.
    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.create_connection, socket.getaddrinfo = saved  # type: ignore[method-assign]


__all__ = ["Finding", "KitReport", "Samples", "check_adapter"]
