"""Every bench in bench/ still runs: its `--tiny` mode (the same code on very small sizes),
run as a subprocess with this virtualenv's python, exits 0, ends with one JSON object that
carries its figures and the reference it measured, and leaves no process behind (some start
a broker or `portgw serve`). The figures themselves are never asserted: timings on a shared
machine say nothing here, and a tiny run is no measurement."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench"
TIMEOUT_S = 100  # under pytest's own 120 s, so that a hung bench is reported and killed here

# The keys each bench's last line must have: its figures and its reference's.
EXPECTED_KEYS = {
    "adapters.py": {"fal5_docs_per_s", "lxml_docs_per_s", "ratio_to_lxml", "crew",
                    "document_bytes", "dxp_manifest_docs_per_s", "dxp_manifest_lxml_docs_per_s",
                    "dxp_manifest_ratio_to_lxml", "dxp_manifest_floor_docs_per_s",
                    "dxp_manifest_stage_ms",
                    "consignments", "envelope_bytes", "paxlst_docs_per_s",
                    "paxlst_tokenise_docs_per_s", "paxlst_read_interchange_docs_per_s",
                    "paxlst_ratio_to_tokenise", "paxlst_passengers", "paxlst_bytes"},
    "avro.py": {"records_per_s", "fastavro_records_per_s", "speedup", "crew", "avro_bytes"},
    "crypto.py": {"sm2_sign_per_s", "sm2_verify_per_s", "openssl_sign_per_s",
                  "openssl_verify_per_s", "sm2_sign_vs_openssl", "sm2_verify_vs_openssl",
                  "batch_sign_msgs_per_s", "proof_verify_per_s", "reference_sm2_sign_per_s",
                  "reference_sm2_verify_per_s", "reference_batch_sign_msgs_per_s",
                  "reference_proof_verify_per_s", "targets_met", "cpu"},
    "edifact.py": {"read_docs_per_s", "bare_split_docs_per_s", "ratio_to_bare_split",
                   "released_read_docs_per_s", "passengers", "segments", "interchange_bytes"},
    "console_trail.py": {"documents", "trail_records", "filing_us_per_message", "history_ms",
                         "chains_ms", "reference_dead_letters_first_page_ms",
                         "series_us_per_trail_record", "series_us_per_decision",
                         "series_latencies_in_window", "plots_ms",
                         "documents_hour_first_page_ms",
                         "documents_hour_and_sender_first_page_ms",
                         "reference_documents_first_page_ms"},
    "deliveries.py": {"pulled_per_s", "pushed_per_s", "kafka_per_s", "ratio_to_kafka",
                      "push_ratio_to_kafka", "deliveries", "pushed", "page_size", "pull_s",
                      "push_s", "kafka_s"},
    "e2e.py": {"docs_per_s", "latency_rate_per_s", "p50_ms", "p99_ms", "broker_hop_p50_ms",
               "broker_hop_p99_ms",
               "cpu_ms_per_doc", "broker_cpu_share_first_quarter",
               "broker_cpu_share_last_quarter", "broker_alone_cpu_share_first_quarter",
               "broker_alone_cpu_share_last_quarter", "pipeline_only_docs_per_s"},
    "receipt_index.py": {"index_us_per_doc", "dicts_us_per_doc", "disk_bytes_per_receipt",
                         "open_ms", "receipts"},
    "receipt_lookup.py": {"read_to_end_ms", "read_at_ms", "place_reader_ms", "burst_ms",
                          "receipts"},
    "replay.py": {"records_per_s", "records", "seals", "chains", "verify_s", "verify_cpu_s",
                  "reference_trailverifier_records_per_s", "sm3_only_records_per_s",
                  "archive_mib", "cpu"},
    "router.py": {"decisions_per_s", "contracts", "agencies", "decisions", "granted_share",
                  "contracts_per_decision", "decisions_per_cpu_s", "lookup_only_per_s",
                  "index_build_s"},
}
NEEDS_OPENSSL = {"crypto.py"}  # it runs `openssl speed sm2` as its reference


def test_every_bench_is_covered() -> None:
    """A new bench gets its line in EXPECTED_KEYS, and so its tiny run below."""
    assert sorted(p.name for p in BENCH.glob("*.py")) == sorted(EXPECTED_KEYS)


def session_processes(session: int) -> dict[int, str]:
    """The live processes of a session (pid → command line), zombies left out."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[3]) != session:
                continue
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):  # ended meanwhile
            continue
        found[int(stat.parent.name)] = command.decode(errors="replace").strip()
    return found


def left_behind(session: int, grace_s: float = 5.0) -> dict[int, str]:
    """What of the bench's session still runs after `grace_s` (a broker ends on its parent's
    death, not at the same instant); anything found is killed, then reported."""
    deadline = time.monotonic() + grace_s
    while (alive := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive


@pytest.mark.parametrize("bench", sorted(EXPECTED_KEYS))
def test_tiny_run_ends_with_its_figures_as_json(bench: str, tmp_path: Path) -> None:
    if bench in NEEDS_OPENSSL and shutil.which("openssl") is None:
        pytest.skip("openssl command line not installed")
    # Output to files, not pipes: a process left behind holding them cannot stall the wait.
    # A session of its own: whatever the bench starts can be found, and killed, afterwards.
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, str(BENCH / bench), "--tiny"], cwd=BENCH.parent,
            stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
    started = time.monotonic()
    try:
        process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    took = time.monotonic() - started
    leftovers = left_behind(process.pid)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")

    assert took < TIMEOUT_S, f"{bench} --tiny still ran after {TIMEOUT_S} s:\n{stdout[-2000:]}"
    assert process.returncode == 0, (
        f"{bench} --tiny exited {process.returncode} after {took:.1f} s:\n"
        f"{stdout[-2000:]}\n{stderr[-3000:]}")
    assert not leftovers, f"{bench} --tiny left processes running: {leftovers}"
    lines = stdout.rstrip("\n").splitlines()
    assert lines, f"{bench} --tiny printed nothing; stderr:\n{stderr[-2000:]}"
    try:
        figures = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        pytest.fail(f"{bench} --tiny: its last line is no JSON ({exc}): {lines[-1][:300]!r}")
    assert isinstance(figures, dict), f"{bench} --tiny: its last line is no JSON object"
    missing = EXPECTED_KEYS[bench] - figures.keys()
    assert not missing, f"{bench} --tiny: keys missing from its last line: {sorted(missing)}"
