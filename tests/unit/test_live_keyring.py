"""The keyring reloaded while the gateway runs (gateway/home/live_keyring.py): a good file is put in
force at once and everything that needs a key reads it; a bad file keeps the old keyring and
says why in one line; a key revoked by a reload authenticates nothing from then on, not even
a signature the parse worker verified with it under the old keyring."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from crypto import CryptoError, SM2PrivateKey, envelope_recipient
from gateway.decide.pipeline import Authenticate, Context, Submission, new_context
from gateway.home.config import GatewayConfig
from gateway.home.create import Home, create_home
from gateway.home.live_keyring import LiveKeyring
from gateway.parts import GatewayParts
from gateway.publish.plan import received_reason
from tests.unit.keyring_support import (
    PROVIDER,
    add_second_key,
    first_key_file,
    keyring_path,
    keyring_text,
    keyring_version,
    revoked,
    second_key_file,
    with_second_key,
    write_keyring,
)

AT = datetime(2026, 6, 1, tzinfo=UTC)
REVOKED_AT = datetime(2026, 5, 1, tzinfo=UTC)
DOCUMENT = b"<GeneralDeclaration>arrival</GeneralDeclaration>"


@pytest.fixture
def home(tmp_path: Any) -> Home:
    return create_home(tmp_path / "home")


def context(key: SM2PrivateKey, *, sender: str = PROVIDER, document: bytes = DOCUMENT
            ) -> Context:
    submission = Submission("s-1", sender, "fal1-xml", document, key.sign(document), AT)
    return new_context(submission, "e-1")


def refusal_code(live: LiveKeyring, ctx: Context) -> str | None:
    """The code the authenticate stage refuses the context with; None if it passes."""
    try:
        Authenticate(live)(ctx)
    except CryptoError as exc:
        return exc.code
    return None


def test_a_reload_puts_a_revocation_in_force_and_the_revoked_key_authenticates_nothing(
        home: Home) -> None:
    second = add_second_key(home)
    first = home.agency_keys[PROVIDER]
    live = LiveKeyring.load(keyring_path(home))
    stage = Authenticate(live)
    before = live.version
    assert stage(context(first)).signer is not None
    assert stage(context(second)).signer is not None

    write_keyring(home, revoked(keyring_text(home), first_key_file(), REVOKED_AT))
    with capture_logs() as logs:
        assert live.reload()

    assert live.version == keyring_version(home) != before
    assert not [e for e in logs if e["log_level"] in ("warning", "error")]
    assert refusal_code(live, context(first)) == "AUTH_SIGNATURE_INVALID"
    ctx = stage(context(second))
    assert ctx.signer is not None and ctx.signer.key_id == second.public_key().key_id
    assert ctx.keyring is live.current  # the keyring that decided, for the trail


def test_an_agency_whose_only_key_is_revoked_is_refused_with_auth_key_revoked(
        home: Home) -> None:
    live = LiveKeyring.load(keyring_path(home))
    key = home.agency_keys[PROVIDER]
    assert refusal_code(live, context(key)) is None
    write_keyring(home, revoked(keyring_text(home), first_key_file(), REVOKED_AT))
    assert live.reload()
    assert refusal_code(live, context(key)) == "AUTH_KEY_REVOKED"


def test_a_signature_verified_ahead_under_the_old_keyring_is_refused_after_the_reload(
        home: Home) -> None:
    """The worker verified it with the key CheckAhead chose before the reload; the key is
    revoked by the time the loop begins the document: the loop does not take the worker's
    word for it."""
    second = add_second_key(home)
    live = LiveKeyring.load(keyring_path(home))
    verified_ahead = live.current.current_key(PROVIDER, AT)
    assert verified_ahead.key_id == second.public_key().key_id  # the newest key

    write_keyring(home, revoked(keyring_text(home), second_key_file(), REVOKED_AT))
    assert live.reload()

    from_worker = replace(context(second), signer=verified_ahead)
    assert refusal_code(live, from_worker) == "AUTH_SIGNATURE_INVALID"
    first = home.agency_keys[PROVIDER]
    ahead_with_first = replace(context(first),
        signer=live.current.current_key(PROVIDER, AT))
    assert Authenticate(live)(ahead_with_first).signer == live.current.current_key(PROVIDER, AT)


def test_a_document_is_judged_under_the_keyring_its_context_holds(home: Home) -> None:
    """The gateway reads the keyring once per document (Gateway.begin): a reload meanwhile
    does not split the document's authentication from its RECEIVED record."""
    live = LiveKeyring.load(keyring_path(home))
    ctx = new_context(context(home.agency_keys[PROVIDER]).submission, "e-1",
                      keyring=live.current)
    write_keyring(home, revoked(keyring_text(home), first_key_file(), REVOKED_AT))
    assert live.reload()
    assert Authenticate(live)(ctx).keyring is ctx.keyring
    assert refusal_code(live, context(home.agency_keys[PROVIDER])) == "AUTH_KEY_REVOKED"


def bad_files(home: Home) -> dict[str, tuple[bytes, str]]:
    """Keyring files that do not load, each with the revocation of the provider's key in it
    (which must therefore not be taken), and the code they are refused with."""
    good = revoked(keyring_text(home), first_key_file(), REVOKED_AT)
    seal_line = 'roles = ["document", "ack"]\nvalid_from = 2026-01-01T00:00:00Z\n'
    return {
        "not TOML": ((good + "[[key]\nagency = ").encode(), "KEYRING_ERROR"),
        "not UTF-8": (good.encode() + b"\n# \xff\xfe\n", "KEYRING_ERROR"),
        "role error": (good.replace(seal_line, 'roles = ["seal"]\n', 1).encode(),
                       "KEYRING_ROLE_INVALID"),
        "missing key file": (with_second_key(good, file="keys/nobody.pub").encode(),
                             "KEYRING_ERROR"),
    }


@pytest.mark.parametrize("problem", ["not TOML", "not UTF-8", "role error",
                                     "missing key file", "file removed"])
def test_a_bad_file_keeps_the_old_keyring_in_force_and_says_why_in_one_line(
        home: Home, problem: str) -> None:
    live = LiveKeyring.load(keyring_path(home))
    before = live.current
    if problem == "file removed":
        keyring_path(home).unlink()
        expected = "KEYRING_ERROR"
    else:
        content, expected = bad_files(home)[problem]
        write_keyring(home, content)

    with capture_logs() as logs:
        assert not live.reload()

    assert live.current is before
    [line] = logs
    assert line["event"] == "keyring.reload_refused" and line["log_level"] == "warning"
    assert line["code"] == expected
    assert line["kept_version"] == before.version
    assert str(keyring_path(home)) in line["error"]
    assert refusal_code(live, context(home.agency_keys[PROVIDER])) is None


def test_the_watcher_reloads_when_the_file_changes_and_reports_a_bad_file_once(
        home: Home) -> None:
    live = LiveKeyring.load(keyring_path(home))
    key = home.agency_keys[PROVIDER]
    good = revoked(keyring_text(home), first_key_file(), REVOKED_AT)

    async def until(done: Any) -> None:
        for _ in range(200):
            if done():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the watcher did not act in 4 s")

    async def scenario() -> list[MutableMapping[str, Any]]:
        stop = asyncio.Event()
        with capture_logs() as logs:
            watching = asyncio.create_task(live.watch(stop, 0.02))
            await asyncio.sleep(0.1)
            write_keyring(home, bad_files(home)["role error"][0])
            await until(lambda: any(e["event"] == "keyring.reload_refused" for e in logs))
            await asyncio.sleep(0.2)  # ten more looks at the same bad file
            assert refusal_code(live, context(key)) is None
            write_keyring(home, good)
            await until(lambda: live.version == keyring_version(home))
            stop.set()
            await watching
        return logs

    logs = asyncio.run(scenario())
    assert [e["event"] for e in logs if e["log_level"] in ("warning", "error")] == [
        "keyring.reload_refused"]
    assert refusal_code(live, context(key)) == "AUTH_KEY_REVOKED"


def test_sighup_reloads_the_keyring_every_part_of_the_gateway_reads(home: Home) -> None:
    """GatewayParts.reload (what SIGHUP runs): the keyring in force changes for the parts
    built at start too, e.g. SM4 envelopes go to the recipient's newest key."""
    parts = GatewayParts.load(GatewayConfig.load(home.config_file))
    payloads = parts.payloads  # as the gateway holds it from start
    customs = "cn.customs.sh"
    first = home.agency_keys[customs].public_key().key_id
    assert envelope_recipient(payloads._seal(customs, b"data", AT)) == first

    second = add_second_key(home, customs)
    with capture_logs() as logs:
        parts.reload()

    assert logs == []  # nothing refused
    assert parts.keyring.version == keyring_version(home)
    assert envelope_recipient(payloads._seal(customs, b"data", AT)) == \
        second.public_key().key_id


def test_the_received_record_names_the_keyring_version(home: Home) -> None:
    live = LiveKeyring.load(keyring_path(home))
    ctx = Authenticate(live)(context(home.agency_keys[PROVIDER]))
    assert received_reason(ctx) == f"{len(DOCUMENT)} bytes as fal1-xml; keyring " \
        f"{keyring_version(home)}"
    assert received_reason(context(home.agency_keys[PROVIDER])) == \
        f"{len(DOCUMENT)} bytes as fal1-xml"
