"""The keyring of a running `portgw serve`, changed as an operator changes it: a key revoked in
keyring.toml and SIGHUP sent (or the file watched) is refused from then on while the agency's
other key goes on being accepted; a keyring file that does not load keeps the old keyring in
force, logs why once, and stops nothing. The trail's RECEIVED records name the keyring
version each document was judged under."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from crypto import SM2PrivateKey
from gateway.clock import utc_now
from gateway.home.create import Home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import read_topics
from gateway.receipts.receipt import ACCEPTED, REJECTED, Receipt
from tests.built_in_schemas import built_in_schemas
from tests.integration.service_support import (
    PROVIDER,
    Document,
    GatewayProcess,
    ReceiptWatcher,
    numbered_arrival,
    produce_ingress,
    wait_ready,
)
from tests.unit.keyring_support import (
    add_second_key,
    first_key_file,
    keyring_text,
    keyring_version,
    revoked,
    second_key_file,
    write_keyring,
)

pytestmark = pytest.mark.integration

WATCH_ENV = "PORTGW__GATEWAY__CONTRACTS_WATCH_S"
SCHEMAS = built_in_schemas()


def signed_by(key: SM2PrivateKey, number: int) -> Document:
    """A distinct arrival (its own business key and digest) signed with `key`."""
    document = numbered_arrival(number)
    return Document(f"kr-{number:04d}", PROVIDER, document, key.sign(document))


async def decided(bootstrap: str, topics: Topics, watcher: ReceiptWatcher,
                  docs: Sequence[Document]) -> list[Receipt]:
    """The receipts of `docs`, put on the ingress topic as an agency system does."""
    acked: list[str] = []
    await produce_ingress(bootstrap, topics, docs, acked=acked)
    receipts = await watcher.wait_for(acked)
    return [receipts[doc.submission_id].receipt for doc in docs]


async def logged(gateway: GatewayProcess, event: str, count: int = 1,
                 timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The gateway's log lines of `event`, once it has logged `count` of them."""
    deadline = time.monotonic() + timeout_s
    while len(found := [e for e in gateway.log_entries() if e.get("event") == event]) < count:
        assert gateway.alive(), gateway.log_tail()
        assert time.monotonic() < deadline, f"no {event} in the log:\n{gateway.log_tail()}"
        await asyncio.sleep(0.05)
    return found


async def received_reasons(bootstrap: str, topics: Topics) -> dict[str, str]:
    """The reason of each RECEIVED trail record, by submission id."""
    reasons = {}
    for message in await read_topics(bootstrap, [topics.trail]):
        _, value = SCHEMAS.decode(message.value)
        entry = value.get("entry")
        if entry is not None and entry["kind"] == "RECEIVED":
            reasons[entry["submission_id"]] = entry["reason"]
    return reasons


def outcome(receipt: Receipt) -> tuple[str, str | None]:
    return receipt.status, receipt.error_code


def test_a_key_revoked_in_the_keyring_is_refused_after_sighup(
        broker: LocalBroker, home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        topics: Topics
) -> None:
    monkeypatch.setenv(WATCH_ENV, "0")  # no watcher: only SIGHUP reloads
    asyncio.run(_revoked_after_sighup(broker, topics, home, tmp_path))


async def _revoked_after_sighup(broker: LocalBroker, topics: Topics, home: Home,
                                tmp_path: Path) -> None:
    first, second = home.agency_keys[PROVIDER], add_second_key(home)
    bootstrap = broker.bootstrap_servers
    old_version = keyring_version(home)
    with GatewayProcess(home, bootstrap, tmp_path / "gateway.log") as gateway:
        async with aiohttp.ClientSession() as session, \
                ReceiptWatcher(bootstrap, topics, SCHEMAS) as watcher:
            await wait_ready(session, gateway.url, alive=gateway.alive)
            before = [signed_by(first, 1), signed_by(second, 2)]
            assert [outcome(r) for r in await decided(bootstrap, topics, watcher, before)] == [
                (ACCEPTED, None), (ACCEPTED, None)]

            # The agency's newest key (the one checked ahead in the worker) is revoked.
            write_keyring(home, revoked(keyring_text(home), second_key_file(), utc_now()))
            new_version = keyring_version(home)
            assert gateway.process is not None
            gateway.process.send_signal(signal.SIGHUP)
            await logged(gateway, "contracts.reloaded")  # SIGHUP's last step: it is done

            after = [signed_by(second, 3), signed_by(first, 4)]
            assert [outcome(r) for r in await decided(bootstrap, topics, watcher, after)] == [
                (REJECTED, "AUTH_SIGNATURE_INVALID"), (ACCEPTED, None)]
            [reloaded] = await logged(gateway, "keyring.reloaded", timeout_s=0)
            assert reloaded["version"] == new_version
        assert gateway.stop() == 0, gateway.log_tail()

    reasons = await received_reasons(bootstrap, topics)
    for doc in before:
        assert reasons[doc.submission_id].endswith(f"; keyring {old_version}")
    for doc in after:
        assert reasons[doc.submission_id].endswith(f"; keyring {new_version}")


def test_a_bad_keyring_file_keeps_the_old_one_until_a_good_one_is_written(
        broker: LocalBroker, home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        topics: Topics
) -> None:
    monkeypatch.setenv(WATCH_ENV, "0.2")
    asyncio.run(_bad_then_good(broker, topics, home, tmp_path))


async def _bad_then_good(broker: LocalBroker, topics: Topics, home: Home,
                         tmp_path: Path) -> None:
    first, second = home.agency_keys[PROVIDER], add_second_key(home)
    bootstrap = broker.bootstrap_servers
    old_version = keyring_version(home)
    good = revoked(keyring_text(home), first_key_file(), utc_now())
    # The same revocation, in a file with a role error: an agency key given `seal`.
    bad = good.replace('roles = ["document", "ack"]', 'roles = ["seal"]', 1)
    with GatewayProcess(home, bootstrap, tmp_path / "gateway.log") as gateway:
        async with aiohttp.ClientSession() as session, \
                ReceiptWatcher(bootstrap, topics, SCHEMAS) as watcher:
            await wait_ready(session, gateway.url, alive=gateway.alive)

            write_keyring(home, bad)
            [refused] = await logged(gateway, "keyring.reload_refused")
            assert refused["code"] == "KEYRING_ROLE_INVALID"
            assert refused["kept_version"] == old_version
            await asyncio.sleep(1.0)  # five more looks at the same bad file: no more lines
            assert gateway.process is not None
            gateway.process.send_signal(signal.SIGHUP)  # tried again on SIGHUP: refused again
            assert len(await logged(gateway, "keyring.reload_refused", 2)) == 2
            during = [signed_by(first, 11)]
            assert [outcome(r) for r in await decided(bootstrap, topics, watcher, during)] == [
                (ACCEPTED, None)]  # the old keyring is in force: the key is not revoked

            write_keyring(home, good)
            new_version = keyring_version(home)
            [reloaded] = await logged(gateway, "keyring.reloaded")
            assert reloaded["version"] == new_version

            after = [signed_by(first, 12), signed_by(second, 13)]
            assert [outcome(r) for r in await decided(bootstrap, topics, watcher, after)] == [
                (REJECTED, "AUTH_SIGNATURE_INVALID"), (ACCEPTED, None)]
            assert len([e for e in gateway.log_entries()
                        if e.get("event") == "keyring.reload_refused"]) == 2
        assert gateway.stop() == 0, gateway.log_tail()

    reasons = await received_reasons(bootstrap, topics)
    assert reasons[during[0].submission_id].endswith(f"; keyring {old_version}")
    for doc in after:
        assert reasons[doc.submission_id].endswith(f"; keyring {new_version}")
