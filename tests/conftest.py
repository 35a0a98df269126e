import logging
from collections.abc import Iterator

import pytest
import structlog

from gateway.observe.logs import configure_logging
from message_formats import AvroSchemas
from tests.built_in_schemas import built_in_schemas

# The library logs through structlog; in tests only warnings and errors are worth reading.
configure_logging("warning")


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
