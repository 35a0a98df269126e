"""What the receipt book's index on disk costs a document, against the dicts it replaced.

Per document the gateway asks whether the same sender brought the same bytes before (a miss,
mostly), files its own receipt (with the accepted document's key), and sees the receipt again
when its follower reads it back. The bench does that for RECEIPTS documents on an index on
disk (committing every COMMIT_EVERY_S, as the follower does), then the same on the two dicts
the book kept before (the reference, same run), and reports the time per document, the index's
bytes on disk per receipt, and how long a start takes to open the full index.

Run: .venv/bin/python bench/receipt_index.py [--tiny]

`--tiny` does it for 2,000 documents: a check that the bench still runs, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from gateway.receipts.index import IndexEntry, ReceiptIndex  # noqa: E402

RECEIPTS = 200_000
TINY_RECEIPTS = 2_000
SENDERS = 20


def documents(count: int) -> list[tuple[str, str, str]]:
    """(submission id, sender, SM3 hex) of each document."""
    return [(str(uuid.uuid4()), f"cn.agency.{n % SENDERS}", uuid.uuid4().hex * 2)
            for n in range(count)]


def through_index(index: ReceiptIndex, docs: list[tuple[str, str, str]]) -> float:
    started = time.perf_counter()
    for offset, (submission_id, sender, digest) in enumerate(docs):
        partition = offset % 4
        if index.first_accepted(sender, digest) is not None:
            raise AssertionError("no document is sent twice here")
        index.file(submission_id, IndexEntry(partition, offset, None), (sender, digest))
        index.advance(partition, offset, submission_id.encode())
        if index.entry(submission_id) is None:  # read back by the follower
            raise AssertionError("filed, not found")
        index.commit_if_due()
    index.commit()
    return time.perf_counter() - started


def through_dicts(docs: list[tuple[str, str, str]]) -> float:
    """The book before the index: every receipt's place and every accepted document's key in
    two dicts, for ever."""
    entries: dict[str, IndexEntry] = {}
    accepted: dict[tuple[str, str], str] = {}
    started = time.perf_counter()
    for offset, (submission_id, sender, digest) in enumerate(docs):
        if accepted.get((sender, digest)) is not None:
            raise AssertionError("no document is sent twice here")
        entries[submission_id] = IndexEntry(offset % 4, offset, None)
        accepted.setdefault((sender, digest), submission_id)
        if entries.get(submission_id) is None:
            raise AssertionError("filed, not found")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="very few documents, same code: checks that the bench runs")
    receipts = TINY_RECEIPTS if parser.parse_args(argv).tiny else RECEIPTS
    docs = documents(receipts)
    with tempfile.TemporaryDirectory() as directory:
        index = ReceiptIndex.open(Path(directory))
        index_s = through_index(index, docs)
        index.close()
        size = sum(path.stat().st_size for path in Path(directory).glob("receipts-1.sqlite*"))
        started = time.perf_counter()
        reopened = ReceiptIndex.open(Path(directory))
        open_ms = (time.perf_counter() - started) * 1000
        found = reopened.entry(docs[receipts // 2][0])
        reopened.close()
        assert found is not None
    dicts_s = through_dicts(docs)

    index_us, dicts_us = index_s / receipts * 1e6, dicts_s / receipts * 1e6
    print(f"{receipts:,} documents, each: a duplicate check, its receipt filed, read back")
    print(f"reference  two dicts in memory (the book before)   {dicts_us:6.2f} us/document")
    print(f"index      SQLite on disk                          {index_us:6.2f} us/document")
    print(f"index on disk: {size / receipts:.0f} bytes per receipt; opened in {open_ms:.1f} ms")
    print(json.dumps({"index_us_per_doc": round(index_us, 2),
                      "dicts_us_per_doc": round(dicts_us, 2),
                      "disk_bytes_per_receipt": round(size / receipts),
                      "open_ms": round(open_ms, 1), "receipts": receipts}))


if __name__ == "__main__":
    main()
