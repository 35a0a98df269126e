from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.home.create import Home, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import new_admin
from tests.integration.service_support import S3_STORAGE, moto_s3

pytestmark = pytest.mark.integration

# How a configuration read from the environment (a `portgw` command, `portgw serve`, a
# GatewayConfig loaded with the process's environment) learns the test's topic prefix.
PREFIX_VARIABLE = "PORTGW__KAFKA__TOPIC_PREFIX"


@pytest.fixture(scope="session")
def session_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """One broker process for the whole session (each pytest-xdist worker is a session of
    its own), shared by the tests that neither restart nor specially configure it (each under
    its own topic prefix: see `topics`)."""
    with LocalBroker(log_path=tmp_path_factory.mktemp("session-broker") / "broker.log"
                     ) as running:
        yield running


@pytest.fixture
def topics(monkeypatch: pytest.MonkeyPatch) -> Topics:
    """This test's topic names and consumer group: a prefix of its own, in the `home`
    fixture's configuration and in the environment of the test and the processes it starts,
    so that tests sharing a broker never meet."""
    own = Topics(f"t{uuid.uuid4().hex[:12]}.")
    monkeypatch.setenv(PREFIX_VARIABLE, own.prefix)
    return own


@pytest.fixture
def broker(session_broker: LocalBroker, topics: Topics) -> Iterator[LocalBroker]:
    """The session's broker, under this test's topic prefix; the test's topics are deleted
    after it. Every client's start reads the metadata of every topic the broker holds: with
    the thousand or so topics a session's tests made, that cost ~45 ms of CPU per client
    (against ~1 ms), and the later tests of a session start hundreds of clients."""
    yield session_broker
    asyncio.run(delete_topics(session_broker.bootstrap_servers, topics.prefix))


async def delete_topics(bootstrap_servers: str, prefix: str) -> None:
    admin = new_admin(bootstrap_servers)
    await admin.start()
    try:
        own = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if own:
            await admin.delete_topics(own)
    finally:
        await admin.close()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker process of the test's own, for a test that stops, kills or restarts it."""
    with LocalBroker(log_path=tmp_path / "broker.log") as running:
        yield running


@pytest.fixture
def home(tmp_path: Path, topics: Topics) -> Home:
    return create_home(tmp_path / "home", seal_every=4, seal_interval_ms=100,
                       topic_prefix=topics.prefix)


@pytest.fixture
def s3_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker keeping its topics and offsets in S3 (moto), so that it can be restarted."""
    with moto_s3(tmp_path / "moto.log") as env, \
            LocalBroker(storage_engine=S3_STORAGE, env=env,
                        log_path=tmp_path / "broker.log") as running:
        yield running
