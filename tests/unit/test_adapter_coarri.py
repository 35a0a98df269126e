"""COARRI shares its layout, reader and writer with COPRAR (tests/unit/test_adapter_coprar.py
covers them, round trips of reports included); here what a report has of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.coarri import ContainerReportAdapter

REPORT = Path(__file__).parent.parent / "data" / "container-report" / "coarri_discharge_report.edi"


@pytest.fixture(scope="module")
def report_adapter() -> ContainerReportAdapter:
    return ContainerReportAdapter()


def test_coarri_sample_reads_a_report(report_adapter: ContainerReportAdapter) -> None:
    result = report_adapter.parse(REPORT.read_bytes())
    assert (result.business_key, result.document_version) == ("VRAB7:026N:DR2612080001", 2)
    assert [w.split(":")[0] for w in result.warnings] == ["WARN_UN_NUMBER_UNKNOWN"]
    record = result.record
    assert (record["kind"], record["document_name_code"], record["message_version"]) == (
        "Report", "98", "D:00B:ITG13")
    assert record["vessel"] == {"name": "EXAMPLE CARRIER", "imo_number": None,
                                "call_sign": "VRAB7", "flag_state": "PA"}
    reefer, tank = record["containers"]
    assert (reefer["handled_at"], reefer["seals"], reefer["bill_of_lading_number"]) == (
        "202612081415", ["EXS0007788", "CU0001"], "EXLSIN0004567")
    assert (tank["handled_at"], tank["equipment_status"]) == ("202612081440", "3")
