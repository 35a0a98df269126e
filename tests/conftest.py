import logging
import os
from collections.abc import Iterator

import pytest
import structlog

from gateway.observe.logs import configure_logging
from message_formats import AvroSchemas
from tests.built_in_schemas import built_in_schemas
from tests.overrun import tasks_dumped_on_overrun

# The library logs through structlog; in tests only warnings and errors are worth reading.
configure_logging("warning")


_REAL_STDERR = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REAL_STDERR] = os.dup(2)  # as pytest's faulthandler does, before capturing


def pytest_unconfigure(config: pytest.Config) -> None:
    os.close(config.stash[_REAL_STDERR])


@pytest.fixture(autouse=True)
def _tasks_on_overrun(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test still running near its time limit writes its asyncio tasks (tests/overrun.py)."""
    with tasks_dumped_on_overrun(request.node.nodeid, request.config.stash[_REAL_STDERR]):
        yield


@pytest.fixture
def info_logs() -> Iterator[None]:
    """The info level for one test that reads info lines."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="session")
def schemas() -> AvroSchemas:
    """The gateway's Avro schemas, for tests that encode or decode events."""
    return built_in_schemas()
