"""The overview's series over time (per-minute buckets in a ring, latencies in log bins) and its
plots; documents searched by time; a verification's progress, as `replay verify --progress`
prints it and the console's job shows it."""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.console.documents import (
    DocumentIndex,
    Found,
    Search,
    minute_of,
    until_end_of,
)
from gateway.console.history import trail_body
from gateway.console.jobs import VERIFY, Command, Job, Jobs
from gateway.console.markup import load_templates
from gateway.console.plots import draw_plots, duration, nice_ceiling, path_of
from gateway.console.series import Series, bin_middle, latency_bin, quantile
from gateway.console.words import Lang, Words
from gateway.trail.progress import Progress, progress_of
from replay.verify import TrailVerifier
from tests.unit.seal_support import SCHEMAS
from tests.unit.test_console import receipt_message
from tests.unit.test_trail import keyring, write_trail

NOW = datetime(2026, 12, 7, 10, 30, 20, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def entry(kind: str, event_id: str, at: datetime, recipient: str | None = None
          ) -> dict[str, Any]:
    return {"kind": kind, "event_id": event_id, "time": at, "recipient": recipient}


def delivered_after(series: Series, event_id: str, at: datetime, seconds: float,
                    recipients: int = 1) -> None:
    series.record(entry("RECEIVED", event_id, at))
    series.record(entry("ACCEPTED", event_id, at))
    for n in range(recipients):
        series.record(entry("DELIVERED", event_id, at + timedelta(seconds=seconds),
                            f"cn.r{n}"))


# -- the series --------------------------------------------------------------------------------


def test_decisions_are_counted_in_the_minute_they_were_made_and_the_window_ends_now() -> None:
    series = Series(minutes=10)
    series.decided(NOW, accepted=True)
    series.decided(NOW - timedelta(seconds=15), accepted=True)  # 10:30:05: the same minute
    series.decided(NOW - MINUTE, accepted=False)
    window = series.window(NOW)
    assert len(window) == 10
    assert window[-1].start == datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
    assert window[0].start == datetime(2026, 12, 7, 10, 21, tzinfo=UTC)
    assert [(m.accepted, m.refused) for m in window[-2:]] == [(0, 1), (2, 0)]
    assert all(m.empty for m in window[:-2])


def test_a_minute_leaves_the_window_when_a_later_one_takes_its_slot() -> None:
    series = Series(minutes=10)
    series.decided(NOW - 10 * MINUTE, accepted=True)  # just before the window
    series.decided(NOW, accepted=True)  # its slot now holds NOW's minute
    series.decided(NOW - 10 * MINUTE, accepted=True)  # late: older than its slot's minute
    window = series.window(NOW)
    assert sum(m.accepted for m in window) == 1 and window[-1].accepted == 1
    # Read later, the minutes that have passed hold nothing of the past hour.
    assert sum(m.accepted for m in series.window(NOW + 10 * MINUTE)) == 0


def test_a_documents_latency_is_from_received_to_its_first_delivery() -> None:
    series = Series(minutes=10)
    delivered_after(series, "e1", NOW - timedelta(seconds=20), 0.2, recipients=3)
    last = series.window(NOW)[-1]
    assert (last.delivered, last.latencies) == (3, 1)  # three deliveries, one document
    assert last.p50_s == last.p99_s
    assert last.p50_s is not None and abs(last.p50_s - 0.2) / 0.2 < 0.1


def test_p50_and_p99_per_minute_are_read_within_a_bin_of_the_true_ones() -> None:
    series = Series(minutes=10)
    start = NOW.replace(second=0)
    for n in range(1, 101):  # 1 ms .. 100 ms
        delivered_after(series, f"e{n}", start, n / 1000)
    last = series.window(NOW)[-1]
    assert last.latencies == 100
    assert last.p50_s is not None and abs(last.p50_s - 0.050) / 0.050 < 0.1
    assert last.p99_s is not None and abs(last.p99_s - 0.099) / 0.099 < 0.1


@pytest.mark.parametrize("seconds", [0.00015, 0.0009, 0.013, 0.25, 1.7, 42.0, 900.0])
def test_a_latency_bin_holds_its_value_within_nine_percent(seconds: float) -> None:
    middle = bin_middle(latency_bin(seconds))
    assert abs(middle - seconds) / seconds < 0.091


def test_a_quantile_of_nothing_is_none_and_of_one_bin_its_middle() -> None:
    assert quantile([0, 0, 0], 0.5) is None
    assert quantile([0, 3, 0], 0.99) == bin_middle(1)


def test_a_refused_document_or_one_pushed_out_waits_for_no_delivery() -> None:
    series = Series(minutes=10, pending_most=2)
    at = NOW - timedelta(seconds=5)
    series.record(entry("RECEIVED", "refused", at))
    series.record(entry("REJECTED", "refused", at))
    series.record(entry("DELIVERED", "refused", at, "cn.r"))  # none waits: not a latency
    for event_id in ("a", "b", "c"):  # "a" is pushed out by "c"
        series.record(entry("RECEIVED", event_id, at))
    for event_id in ("a", "c"):
        series.record(entry("DELIVERED", event_id, at + timedelta(seconds=1), "cn.r"))
    last = series.window(NOW)[-1]
    assert (last.delivered, last.latencies) == (3, 1)


def test_a_minute_keeps_the_most_ingress_lag_sampled_in_it() -> None:
    series = Series(minutes=10)
    for seconds, lag in ((1, 4), (11, 9), (15, 2)):
        series.lag(NOW.replace(second=seconds), lag)
    window = series.window(NOW)
    assert window[-1].lag == 9 and window[-2].lag is None


# -- the plots ---------------------------------------------------------------------------------


def filled_window() -> Series:
    series = Series(minutes=60)
    for n in range(5):
        at = NOW - n * MINUTE
        series.decided(at, accepted=True)
        delivered_after(series, f"e{n}", at, 0.05 * (n + 1), recipients=2)
    series.decided(NOW - 2 * MINUTE, accepted=False)
    series.lag(NOW, 7)
    return series


@pytest.mark.parametrize("lang", list(Lang))
def test_each_plot_is_an_image_with_words_and_its_figures_are_a_table(lang: Lang) -> None:
    words = Words(lang)
    drawn = draw_plots(filled_window().window(NOW), words)
    for plot in ("throughput-plot", "latency-plot", "lag-plot"):
        assert f'aria-labelledby="{plot}-title {plot}-desc"' in drawn
    assert drawn.count('role="img"') == 3 and "style=" not in drawn
    assert words("throughput_h") in drawn and words("latency_h") in drawn
    points = dict(re.findall(r'class="line-(\w+)" data-points="(\d+)"', drawn))
    assert points == {"accepted": "60", "refused": "60", "delivered": "60", "p50": "5",
                      "p99": "5", "lag": "1"}
    rows = re.findall(r'<tr data-minute="([^"]+)">', drawn)
    assert rows == [f"2026-12-07T10:{30 - n}:00.000Z" for n in range(5)]  # newest first
    assert 'href="/console/documents?from=2026-12-07T10:28&amp;to=2026-12-07T10:28"' in drawn


def test_a_plot_of_nothing_says_so() -> None:
    words = Words(Lang.EN)
    drawn = draw_plots(Series(minutes=30).window(NOW), words)
    assert words("latency_none") in drawn and words("lag_none") in drawn
    assert words("no_minutes") in drawn


def test_a_line_breaks_where_a_minute_was_not_measured_and_a_lone_value_is_a_dot() -> None:
    path, alone = path_of([1.0, 2.0, None, 4.0, 5.0, None, 3.0], lambda v: v)
    assert path.count("M") == 2 and path.count("L") == 2
    assert [y for _, y in alone] == [3.0]


def test_scales_and_durations_read_as_people_write_them() -> None:
    assert [nice_ceiling(v) for v in (0, 3, 7, 10, 11, 4500)] == [1, 5, 10, 10, 20, 5000]
    assert [duration(s) for s in (0.0004, 0.012, 0.5, 1.5, 250)] == [
        "0.4 ms", "12 ms", "500 ms", "1.5 s", "250 s"]


# -- documents by time -------------------------------------------------------------------------


def found(n: int, at: datetime, sender: str) -> Found:
    return Found(f"s-{n}", at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                 sender, "fal1", f"key-{n}", "accepted", None, 1, None)


def test_documents_are_found_by_time_range_alone_or_with_a_sender() -> None:
    index = DocumentIndex(SCHEMAS)
    start = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    for n in range(10):  # one a minute, 08:00 .. 08:09, two senders in turn
        index.add(found(n, start + n * MINUTE + timedelta(seconds=30),
                        "cn.port.sh" if n % 2 else "cn.msa.sh"))
    since, last = minute_of("2026-12-07T08:03"), minute_of("2026-12-07T08:05")
    ranged = index.page(Search(since=since, until=until_end_of(last)), 1, 50)
    assert [row.submission_id for row in ranged.rows] == ["s-5", "s-4", "s-3"]
    with_sender = index.page(Search(sender="cn.port.sh", since=since), 1, 2)
    assert [row.submission_id for row in with_sender.rows] == ["s-9", "s-7"]
    assert with_sender.total == 4  # 3, 5, 7, 9
    assert index.page(Search(until=start), 1, 50).total == 0
    index.close()


def test_a_forms_time_is_its_minute_in_utc_and_anything_else_is_refused() -> None:
    assert minute_of("2026-12-07T08:03") == datetime(2026, 12, 7, 8, 3, tzinfo=UTC)
    assert minute_of("2026-12-07T16:03:59+08:00") == datetime(2026, 12, 7, 8, 3, tzinfo=UTC)
    for text in ("yesterday", "2026-13-01T00:00", ""):
        with pytest.raises(ValueError):
            minute_of(text)


def test_a_receipt_is_given_to_the_series_once_and_never_a_duplicates() -> None:
    index = DocumentIndex(SCHEMAS)
    first = index.file(receipt_message(0, "9074729:V1", "cn.port.sh"))
    assert first is not None and first.accepted
    assert index.file(receipt_message(0, "9074729:V1", "cn.port.sh")) is None  # again
    assert index.file(receipt_message(1, "9074729:V1", "cn.port.sh",
                                      duplicate_of="cn.port.sh~0")) is None
    assert index.page(Search(), 1, 10).total == 2
    index.close()


# -- a verification's progress -----------------------------------------------------------------


def test_what_replay_verify_prints_as_progress_is_what_the_console_reads() -> None:
    line = Progress("chains", 1200, 800, 2, 5).line()
    assert progress_of(f"{line}\n".encode()) == Progress("chains", 1200, 800, 2, 5)
    assert progress_of(b"OK: chains, seal signatures ... verify\n") is None


def test_the_verifier_reports_each_chain_done() -> None:
    told: list[Progress] = []
    report, _ = TrailVerifier(SCHEMAS, keyring(), progress=told.append).check_trail(
        write_trail(6))
    assert report.ok
    assert told[-1] == Progress("chains", len(write_trail(6)), 6, 1, 1)


class Scripted(Command):
    """The job runner's unit of logic on its own: a child that prints what `replay verify
    --progress` prints, then waits for the test's word before it ends."""

    def replay(self, subcommand: str, *arguments: str) -> list[str]:
        script = ("import pathlib, sys, time\n"
                  "print('progress: phase=chains read=40 verified=30 chains=1/2', flush=True)\n"
                  "go = pathlib.Path(sys.argv[1])\n"
                  "while not go.exists():\n"
                  "    time.sleep(0.05)\n"
                  "print('OK: the end')\n")
        return [sys.executable, "-c", script, str(self.config_file)]


def test_a_running_job_shows_its_progress_and_keeps_no_progress_line(tmp_path: Path) -> None:
    go = tmp_path / "go"

    async def run() -> tuple[Job, Job]:
        jobs = Jobs(Scripted(go, "127.0.0.1:1"))
        assert jobs.verify("ops") is not None
        while (running := jobs.last(VERIFY)) is None or running.progress is None:
            await asyncio.sleep(0.05)
        go.touch()
        while jobs.busy:
            await asyncio.sleep(0.05)
        done = jobs.last(VERIFY)
        assert done is not None
        await jobs.stop()
        return running, done
    running, done = asyncio.run(asyncio.wait_for(run(), 120))
    assert running.running and running.progress == Progress("chains", 40, 30, 1, 2)
    body = trail_body(load_templates(), Words(Lang.EN), [], running, busy=True,
                      form_token="t")
    assert "30 records verified, 1 of 2 chains done" in body
    assert '<progress id="verify-progress" max="2" value="1"' in body
    assert done.ok and done.output == "OK: the end\n"
