"""The ingress loop's account of a document it could not finish."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.decide.ahead import ParseUnavailable
from gateway.ingress.desk import SubmitOutcome
from gateway.ingress.serving import IngressLoop
from gateway.kafka.names import Topics
from gateway.kafka.wire import OffsetProgress


def finished_with(exc: Exception) -> list[MutableMapping[str, Any]]:
    """The log events of an ingress loop whose document ended with `exc`."""
    gateway: Any = SimpleNamespace(config=SimpleNamespace(max_in_flight=4),
                                   parts=SimpleNamespace(topics=Topics()),
                                   health=SimpleNamespace(failed=lambda exc: None))

    async def failing() -> SubmitOutcome:
        raise exc

    async def run() -> None:
        loop = IngressLoop(gateway)
        await loop._slots.acquire()
        await loop._finish(OffsetProgress(0), 0, failing())

    with capture_logs() as logs:
        asyncio.run(run())
    return logs


def test_a_document_left_undecided_by_a_stopping_gateway_is_no_error() -> None:
    """Stopping under load leaves the documents whose parse was not answered to the next
    start (said at info level): an operator sees no error on a clean stop."""
    logs = finished_with(ParseUnavailable("the gateway stopped before the document was read"))
    assert not [e for e in logs if e["log_level"] in ("warning", "error", "critical")]


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), KeyError("x")])
def test_a_document_that_failed_otherwise_is_logged_as_an_error(exc: Exception) -> None:
    logs = finished_with(exc)
    assert [(e["event"], e["log_level"]) for e in logs] == [("ingress.document_failed", "error")]
