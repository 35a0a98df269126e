from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.home.create import Home, create_home
from gateway.kafka.local_broker import LocalBroker
from tests.integration.service_support import S3_STORAGE, moto_s3

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A fresh broker process per test: it starts in milliseconds and isolates topics."""
    with LocalBroker(log_path=tmp_path / "broker.log") as running:
        yield running


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return create_home(tmp_path / "home", seal_every=4, seal_interval_ms=100)


@pytest.fixture
def s3_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker keeping its topics and offsets in S3 (moto), so that it can be restarted."""
    with moto_s3(tmp_path / "moto.log") as env, \
            LocalBroker(storage_engine=S3_STORAGE, env=env,
                        log_path=tmp_path / "broker.log") as running:
        yield running
