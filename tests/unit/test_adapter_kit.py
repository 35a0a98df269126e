"""The integrator's kit: it passes good adapters and names what is wrong with bad ones."""

from __future__ import annotations

import importlib.util
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters import Fal1Adapter, ParseResult
from adapters.kit import Samples, check_adapter
from message_formats import AvroSchemas

ROOT = Path(__file__).parents[2]
FAL1 = ROOT / "tests" / "data" / "fal1"
BERTH = ROOT / "docs" / "examples" / "berth"


def load_berth_adapter() -> Any:
    spec = importlib.util.spec_from_file_location(
        "berth_adapter", BERTH / "berth_adapter" / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BerthAdapter()


def test_the_worked_example_in_the_docs_passes_the_kit() -> None:
    report = check_adapter(load_berth_adapter(), samples_dir=BERTH / "samples",
                           schemas=AvroSchemas(BERTH / "berth_adapter" / "avro"))
    assert report.ok, report.describe()
    assert report.checks > 40


def test_the_fal1_adapter_passes_the_kit() -> None:
    report = check_adapter(Fal1Adapter(), samples_dir=FAL1)
    assert report.ok, report.describe()


class Broken(Fal1Adapter):
    """FAL 1 with one defect switched on."""

    def __init__(self, defect: str) -> None:
        super().__init__()
        self.defect = defect
        self.calls = 0

    def parse(self, data: bytes) -> ParseResult:
        self.calls += 1
        if self.defect == "crash" and not data.startswith(b"<?xml"):
            raise KeyError("boom")
        if self.defect == "network":
            socket.create_connection(("registry.example", 443))
        if self.defect == "slow":
            time.sleep(0.03)
        result = super().parse(data)
        if self.defect == "nondeterministic":
            return ParseResult({**result.record, "remarks": f"call {self.calls}"},
                               result.business_key, result.document_version, result.warnings)
        return result

    def render(self, record: Mapping[str, Any]) -> bytes:
        if self.defect == "lossy":
            record = {**record, "passenger_count": record["passenger_count"] + 1}
        return super().render(record)


@pytest.mark.parametrize(("defect", "check"), [
    ("crash", "garbage"),
    ("network", "parse"),
    ("slow", "bounded-time"),
    ("nondeterministic", "determinism"),
    ("lossy", "round-trip"),
])
def test_each_defect_is_named(defect: str, check: str) -> None:
    report = check_adapter(Broken(defect), samples_dir=FAL1, time_limit_s=0.01,
                           garbage_per_sample=5)
    assert not report.ok
    assert any(f.check == check for f in report.findings), report.describe()


def test_a_wrong_code_for_a_refused_sample_is_named() -> None:
    valid = (FAL1 / "valid_arrival.xml").read_bytes()
    samples = Samples(valid=(("valid_arrival.xml", valid),),
                      refused=(("bad_imo.xml", (FAL1 / "bad_imo_check_digit.xml").read_bytes(),
                                "RULE_SOMETHING_ELSE"),))
    report = check_adapter(Fal1Adapter(), samples=samples, garbage_per_sample=1)
    assert [str(f) for f in report.findings] == [
        "[refusal] bad_imo.xml: gave RULE_IMO_CHECK_DIGIT; expected RULE_SOMETHING_ELSE"
    ]


def test_the_network_is_usable_again_after_the_kit() -> None:
    check_adapter(Fal1Adapter(), samples_dir=FAL1, garbage_per_sample=1)
    assert socket.getaddrinfo("127.0.0.1", 9)
