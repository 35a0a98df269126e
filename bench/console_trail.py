"""What the console's trail index costs: filing the trail records of DOCUMENTS documents of
AGENCIES agencies (received, accepted, delivered to two recipients, one of them acknowledging:
five records each, a seal every 64 records, on 4 chains and `taken`), then the queries its
pages make — one document's history (单证追溯) and the chains' table of the trail page —
against the dead-letter index's first page on as many dead letters (the reference, same run:
the query a page of the first console slice makes). Then the overview's series: what filing a
trail record and a decision into it costs (on top of the index's filing), and drawing its
plots; and the documents' search by time range (an hour, an hour and a sender; each its first
page, with its count) on as many documents, one a second.

Run: .venv/bin/python bench/console_trail.py [--tiny]

`--tiny` does it for 2,000 documents: a check that the bench still runs, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parents[1])

from gateway.console.documents import DocumentIndex, Found, Search  # noqa: E402
from gateway.console.letters import Filter, LetterIndex, Listed  # noqa: E402
from gateway.console.plots import draw_plots  # noqa: E402
from gateway.console.series import Series  # noqa: E402
from gateway.console.trail import TrailIndex  # noqa: E402
from gateway.console.words import Lang, Words  # noqa: E402
from gateway.kafka.names import StoredMessage  # noqa: E402
from gateway.publish.dead_letters import Location, iso_instant  # noqa: E402
from gateway.trail.writer import ENTRY_DEFAULTS, TrailCodec  # noqa: E402
from message_formats import AvroSchemas  # noqa: E402

DOCUMENTS = 100_000
TINY_DOCUMENTS = 2_000
AGENCIES = 200
CHAINS = 4
SEAL_EVERY = 64
QUERIES = 200
START = datetime(2026, 12, 1, tzinfo=UTC)


def trail(codec: TrailCodec, documents: int) -> Iterator[StoredMessage]:
    """Each document's records, in time order, and the seals of each chain."""
    seqs: dict[str, int] = {}
    offset = 0
    for n in range(documents):
        chain = f"p{n % CHAINS}"
        sender, first, second = (f"cn.agency.{(n + k) % AGENCIES}" for k in (0, 1, 2))
        at = START + timedelta(milliseconds=10 * n)
        common = {"event_id": f"event-{n}", "sender": sender, "submission_id": f"sub-{n}",
                  "format_id": "fal1-xml", "digest_sm3": "ab" * 32, "time": at}
        known = {"document_type": "fal1", "business_key": f"{n:07d}:V1:A:CNSHA",
                 "document_version": 1}
        for kind, on, fields in (
                ("RECEIVED", chain, {}), ("ACCEPTED", chain, known),
                ("DELIVERED", chain, {**known, "recipient": first, "contract_id": "c",
                                      "contract_version": 1}),
                ("DELIVERED", chain, {**known, "recipient": second, "contract_id": "c",
                                      "contract_version": 1}),
                ("TAKEN", "taken", {**known, "recipient": first, "contract_id": "c",
                                    "contract_version": 1})):
            seq = seqs.get(on, 0)
            seqs[on] = seq + 1
            entry = {**ENTRY_DEFAULTS, **common, **fields, "chain": on, "seq": seq,
                     "prev_hash": "0" * 64, "kind": kind, "reason": "the rule"}
            offset += 1
            yield StoredMessage("px.trail.v1", 0, offset, None,
                                codec.encode_record(entry, "00" * 32), (), 0)
            if (seq + 1) % SEAL_EVERY == 0:
                body = {"chain": on, "seal_seq": seq // SEAL_EVERY,
                        "first_seq": seq + 1 - SEAL_EVERY, "last_seq": seq, "root": "00" * 32,
                        "time": at, "key_id": "k", "previous_seal": None}
                offset += 1
                yield StoredMessage("px.trail.v1", 0, offset, None,
                                    codec.encode_seal(body, b"s"), (), 0)


def per_query_ms(query: Callable[[int], Any], times: int) -> float:
    started = time.perf_counter()
    for n in range(times):
        query(n)
    return 1000 * (time.perf_counter() - started) / times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    documents = TINY_DOCUMENTS if parser.parse_args().tiny else DOCUMENTS
    schemas = AvroSchemas()
    messages = list(trail(TrailCodec(schemas), documents))
    index = TrailIndex(schemas)
    started = time.perf_counter()
    entries = [entry for message in messages if (entry := index.file(message)) is not None]
    filing_s = time.perf_counter() - started
    records = sum(state.records for state in index.chains())
    series = Series()
    started = time.perf_counter()
    for entry in entries:
        series.record(entry)
    series_record_s = time.perf_counter() - started
    decided_at = [START + timedelta(milliseconds=10 * n) for n in range(documents)]
    started = time.perf_counter()
    for at in decided_at:
        series.decided(at, accepted=True)
    series_decided_s = time.perf_counter() - started
    last = decided_at[-1]
    window = series.window(last)
    latencies = sum(minute.latencies for minute in window)

    letters = LetterIndex(schemas)
    for n in range(documents):
        letters.add(Listed(Location(0, n), f"2026-12-01T00:{n // 60000 % 60:02d}:"
                           f"{n // 1000 % 60:02d}.{n % 1000:03d}Z",
                           f"cn.agency.{n % AGENCIES}", "fal1-xml", "fal1", f"key-{n}",
                           f"CODE_{n % 40}", "the rule", None, cut=False))
    found = DocumentIndex(schemas)
    for n in range(documents):
        found.add(Found(f"sub-{n}", iso_instant(START + timedelta(seconds=n)),
                        f"cn.agency.{n % AGENCIES}", "fal1", f"{n:07d}:V1:A:CNSHA",
                        "accepted", None, 2, None))
    hours = max(1, documents // 3600)

    def hour(n: int) -> Search:
        since = START + timedelta(hours=n % hours)
        return Search(since=since, until=since + timedelta(hours=1))
    step = max(1, documents // QUERIES)
    print(json.dumps({
        "documents": documents,
        "trail_records": records,
        "filing_us_per_message": round(1e6 * filing_s / len(messages), 1),
        "history_ms": round(per_query_ms(
            lambda n: index.history(f"{n * step % documents:07d}:V1:A:CNSHA"), QUERIES), 3),
        "chains_ms": round(per_query_ms(lambda _: index.chains(), 20), 2),
        "reference_dead_letters_first_page_ms": round(per_query_ms(
            lambda _: letters.page(Filter(), 1, 50), QUERIES), 3),
        "series_us_per_trail_record": round(1e6 * series_record_s / len(entries), 2),
        "series_us_per_decision": round(1e6 * series_decided_s / documents, 2),
        "series_latencies_in_window": latencies,
        "plots_ms": round(per_query_ms(lambda _: draw_plots(series.window(last),
                                                            Words(Lang.EN)), 20), 2),
        "documents_hour_first_page_ms": round(per_query_ms(
            lambda n: found.page(hour(n), 1, 50), QUERIES), 3),
        "documents_hour_and_sender_first_page_ms": round(per_query_ms(
            lambda n: found.page(Search(sender=f"cn.agency.{n % AGENCIES}",
                                        since=hour(n).since, until=hour(n).until), 1, 50),
            QUERIES), 3),
        "reference_documents_first_page_ms": round(per_query_ms(
            lambda _: found.page(Search(), 1, 50), QUERIES), 3),
    }))


if __name__ == "__main__":
    main()
