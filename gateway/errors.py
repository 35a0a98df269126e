"""The gateway's exceptions. Every one carries a stable code that reaches receipts,
dead letters and the trail."""

from __future__ import annotations

import traceback
from pathlib import Path

from message_formats.errors import CodedError


class GatewayError(CodedError):
    """Its text is the message alone: callers print the code beside it."""

    code = "GATEWAY_ERROR"

    def __str__(self) -> str:
        return self.message


class BrokerUnavailable(GatewayError):
    code = "BROKER_UNAVAILABLE"


class ReceiptIndexError(GatewayError):
    """The receipt index (gateway.receipts.index) could not be read or written."""

    code = "RECEIPT_INDEX_FAILED"


class ConfigError(GatewayError):
    code = "CONFIG_INVALID"


class SubmissionRejected(GatewayError):
    """A submission the pipeline refused; `code` says why."""

    code = "SUBMISSION_REJECTED"


TRAIL_ARCHIVE_GAP = "TRAIL_ARCHIVE_GAP"
TRAIL_ARCHIVE_LINK = "TRAIL_ARCHIVE_LINK"
TRAIL_ARCHIVE_BATCH_INVALID = "TRAIL_ARCHIVE_BATCH_INVALID"
TRAIL_ARCHIVE_CORRUPT = "TRAIL_ARCHIVE_CORRUPT"
TRAIL_ARCHIVE_CLOSED = "TRAIL_ARCHIVE_CLOSED"
TRAIL_ARCHIVE_IO = "TRAIL_ARCHIVE_IO"
TRAIL_ARCHIVE_NOT_FOUND = "TRAIL_ARCHIVE_NOT_FOUND"
# What trail verification finds about the trail's seals and its end (codes of Breaks).
TRAIL_SEAL_CHAIN_BROKEN = "TRAIL_SEAL_CHAIN_BROKEN"
TRAIL_CUT = "TRAIL_CUT"
# A chain read from the broker does not begin at seq 0: the topic no longer holds its start.
TRAIL_START_MISSING = "TRAIL_START_MISSING"
TRAIL_CHECKPOINT_DIFFERS = "TRAIL_CHECKPOINT_DIFFERS"
TRAIL_UNSEALED_TAIL = "TRAIL_UNSEALED_TAIL"
TRAIL_CHECKPOINT_UNREADABLE = "TRAIL_CHECKPOINT_UNREADABLE"


class ArchiveError(GatewayError):
    """The trail archive cannot be written or read as asked; `code` says why (TRAIL_ARCHIVE_*).
    What verification finds in an archive is a Break in its report, never this."""

    code = "TRAIL_ARCHIVE_ERROR"


class ArchiveIOError(ArchiveError, OSError):
    """The file system failed a write; nothing of the batch was left behind. Also an OSError,
    so that what retries on I/O errors (the trail's sealer) retries this."""

    code = TRAIL_ARCHIVE_IO


def crash_site(exc: BaseException) -> str:
    """An unexpected exception as its type and where it was raised, without its message:
    the message of a bug's exception may quote a document's value, and what is said of a
    crash is kept (logs, receipts, the trail, dead letters)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno} in {last.name}"
