"""The receipt book's index on disk (gateway.receipts.index), on real SQLite files."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.errors import ReceiptIndexError
from gateway.kafka.names import StoredMessage, Topics
from gateway.receipts.book import _continues
from gateway.receipts.index import COMMIT_EVERY_S, IndexEntry, Position, ReceiptIndex

TOPICS = Topics()  # the production names, no prefix
ROOT = Path(__file__).resolve().parents[2]


def filed(index: ReceiptIndex, submission_id: str, offset: int, *, partition: int = 0,
          accepted: tuple[str, str] | None = None, duplicate_of: str | None = None) -> None:
    index.file(submission_id, IndexEntry(partition, offset, duplicate_of), accepted)
    index.advance(partition, offset, submission_id.encode())


def test_what_is_filed_is_found_at_once_and_after_reopening(tmp_path: Path) -> None:
    index = ReceiptIndex.open(tmp_path)
    filed(index, "s-1", 0, accepted=("cn.msa", "ab" * 32))
    filed(index, "s-2", 1, duplicate_of="s-1")
    filed(index, "s-3", 7, partition=3)
    assert index.entry("s-2") == IndexEntry(0, 1, "s-1")
    assert index.first_accepted("cn.msa", "ab" * 32) == "s-1"
    index.close()

    reopened = ReceiptIndex.open(tmp_path)
    assert reopened.path == tmp_path / "receipts-1.sqlite"
    assert reopened.entry("s-1") == IndexEntry(0, 0, None)
    assert reopened.entry("s-3") == IndexEntry(3, 7, None)
    assert reopened.entry("s-4") is None
    assert reopened.first_accepted("cn.msa", "ab" * 32) == "s-1"
    assert reopened.first_accepted("cn.msa", "cd" * 32) is None
    assert reopened.positions() == {0: Position(2, b"s-2"), 3: Position(8, b"s-3")}
    reopened.close()


def test_the_first_accepted_submission_of_a_document_stays_the_first(tmp_path: Path) -> None:
    index = ReceiptIndex.open(tmp_path)
    filed(index, "s-1", 0, accepted=("cn.msa", "ab" * 32))
    filed(index, "s-9", 5, accepted=("cn.msa", "ab" * 32))
    assert index.first_accepted("cn.msa", "ab" * 32) == "s-1"
    index.close()


def test_positions_only_move_forward(tmp_path: Path) -> None:
    """A receipt this process published may be filed before older ones are read back."""
    index = ReceiptIndex.open(tmp_path)
    index.advance(0, 9, b"late")
    index.advance(0, 4, b"early")
    assert index.positions() == {0: Position(10, b"late")}
    index.close()


def killed_after(directory: Path, steps: str) -> None:
    """Runs `steps` on an index in a process of its own, which is then SIGKILLed."""
    script = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from gateway.receipts.index import IndexEntry, ReceiptIndex
        index = ReceiptIndex.open(Path({str(directory)!r}))
        def filed(submission_id, offset):
            index.file(submission_id, IndexEntry(0, offset, None), None)
            index.advance(0, offset, submission_id.encode())
        {steps}
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=60)
    assert done.returncode == -signal.SIGKILL


def test_a_killed_process_loses_what_it_had_not_committed_with_its_position(
    tmp_path: Path
) -> None:
    """The next start then reads those receipts again from the topic."""
    killed_after(tmp_path, "filed('s-1', 0); index.commit(); filed('s-2', 1)")
    index = ReceiptIndex.open(tmp_path)
    assert index.entry("s-1") is not None and index.entry("s-2") is None
    assert index.positions() == {0: Position(1, b"s-1")}
    index.close()


def test_the_follower_commits_once_the_interval_has_passed(tmp_path: Path) -> None:
    killed_after(tmp_path, f"filed('s-1', 0); index.commit_if_due(); filed('s-2', 1); "
                           f"time.sleep({COMMIT_EVERY_S}); index.commit_if_due()")
    index = ReceiptIndex.open(tmp_path)
    assert index.entry("s-2") is not None
    assert index.positions() == {0: Position(2, b"s-2")}
    index.close()


def test_clear_forgets_everything(tmp_path: Path) -> None:
    index = ReceiptIndex.open(tmp_path)
    filed(index, "s-1", 0, accepted=("cn.msa", "ab" * 32))
    index.clear()
    assert (index.entry("s-1"), index.positions()) == (None, {})
    assert index.first_accepted("cn.msa", "ab" * 32) is None
    index.close()
    reopened = ReceiptIndex.open(tmp_path)
    assert (reopened.entry("s-1"), reopened.positions()) == (None, {})
    reopened.close()


def test_processes_sharing_a_home_take_a_slot_each(tmp_path: Path) -> None:
    first, second = ReceiptIndex.open(tmp_path), ReceiptIndex.open(tmp_path)
    assert (first.path, second.path) == (tmp_path / "receipts-1.sqlite",
                                         tmp_path / "receipts-2.sqlite")
    filed(first, "s-1", 0)
    assert second.entry("s-1") is None
    first.close()
    third = ReceiptIndex.open(tmp_path)  # the first slot is free again
    assert third.path == tmp_path / "receipts-1.sqlite"
    assert third.entry("s-1") is not None
    second.close()
    third.close()


def test_without_a_directory_the_index_is_in_memory() -> None:
    index = ReceiptIndex.open(None)
    filed(index, "s-1", 0)
    assert index.path is None
    assert index.entry("s-1") == IndexEntry(0, 0, None)
    index.close()


def receipt_at(partition: int, offset: int, key: bytes) -> StoredMessage:
    return StoredMessage(TOPICS.receipt, partition, offset, key, b"", (), 0)


def test_an_index_continues_a_partition_whose_last_indexed_receipt_is_still_there() -> None:
    assert _continues(Position(3, b"s-3"), receipt_at(0, 2, b"s-3"))
    assert _continues(None, receipt_at(1, 0, b"s-1"))  # a partition the index never read
    assert _continues(Position(0, None), receipt_at(0, 0, b"s-1"))


def test_an_index_does_not_continue_a_partition_that_lost_or_changed_it() -> None:
    assert not _continues(Position(3, b"s-3"), receipt_at(0, 0, b"s-1"))  # began again
    assert not _continues(Position(3, b"s-3"), receipt_at(0, 2, b"other"))  # another topic's


def test_a_failing_database_gives_a_coded_error_and_marks_the_index_failed(
    tmp_path: Path
) -> None:
    index = ReceiptIndex.open(tmp_path)
    filed(index, "s-1", 0)
    index._db.close()  # as a failing disk leaves it
    with pytest.raises(ReceiptIndexError) as raised:
        index.entry("s-1")
    assert raised.value.code == "RECEIPT_INDEX_FAILED"
    assert index.failed
    index.close()  # does not raise; releases the slot
    reopened = ReceiptIndex.open(tmp_path)
    assert reopened.path == tmp_path / "receipts-1.sqlite"
    reopened.close()


def test_a_failed_index_reopened_knows_only_what_was_committed_and_stays_failed(
    tmp_path: Path
) -> None:
    index = ReceiptIndex.open(tmp_path)
    filed(index, "s-1", 0)
    index.commit()
    filed(index, "s-2", 1)  # not committed when the disk fails
    index._db.close()
    with pytest.raises(ReceiptIndexError):
        index.commit()
    index.reopen()
    assert index.failed  # until the book has read the topic again
    assert index.entry("s-1") == IndexEntry(0, 0, None)
    assert index.entry("s-2") is None
    assert index.positions() == {0: Position(1, b"s-1")}
    filed(index, "s-2", 1)
    index.commit()
    assert index.failed  # a commit alone does not say that nothing was lost
    index.recovered()
    assert not index.failed
    index.close()
    again = ReceiptIndex.open(tmp_path)
    assert again.entry("s-2") == IndexEntry(0, 1, None)
    again.close()
