from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.broker import LocalBroker
from gateway.home import Home, create_home

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A fresh broker process per test: it starts in milliseconds and isolates topics."""
    with LocalBroker(log_path=tmp_path / "broker.log") as running:
        yield running


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return create_home(tmp_path / "home", seal_every=4, seal_interval_ms=100)
