from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import (
    CryptoError,
    KeyEntry,
    KeyNotValidAt,
    KeyRevoked,
    Keyring,
    KeyringError,
    KeyRole,
    KeyRoleInvalid,
    KeyRoleRefused,
    SealKeyRefused,
    SignatureInvalid,
    SM2PrivateKey,
    UnknownSigner,
    sm3_hex,
)

CUSTOMS = "cn.customs.gz"
BORDER = "cn.border.gz"
DOC = b"<ClearanceStatus>released</ClearanceStatus>"

JAN = datetime(2026, 1, 1, tzinfo=UTC)
APR = datetime(2026, 4, 1, tzinfo=UTC)
JUL = datetime(2026, 7, 1, tzinfo=UTC)
OCT = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def keys() -> dict[str, SM2PrivateKey]:
    return {name: SM2PrivateKey.generate() for name in ("old", "new", "border", "revoked")}


@pytest.fixture(scope="module")
def keyring(keys: dict[str, SM2PrivateKey]) -> Keyring:
    return Keyring(
        [
            # Customs rolls its key over: old key until July, new key from April.
            KeyEntry(CUSTOMS, keys["old"].public_key(), valid_from=JAN, valid_to=JUL),
            KeyEntry(CUSTOMS, keys["new"].public_key(), valid_from=APR),
            KeyEntry(BORDER, keys["border"].public_key()),
            KeyEntry(BORDER, keys["revoked"].public_key(), valid_from=JAN, revoked_at=APR),
        ]
    )


def test_indexes(keyring: Keyring, keys: dict[str, SM2PrivateKey]) -> None:
    assert [e.key_id for e in keyring.keys_for(CUSTOMS)] == [
        keys["old"].public_key().key_id,
        keys["new"].public_key().key_id,
    ]
    assert keyring.keys_for("cn.nobody") == ()
    entry = keyring.by_key_id(keys["border"].public_key().key_id)
    assert entry.agency_id == BORDER and entry.public_key == keys["border"].public_key()
    assert len(keyring) == 4 and list(keyring) == list(keyring.entries)


def test_by_unknown_key_id(keyring: Keyring) -> None:
    with pytest.raises(UnknownSigner) as info:
        keyring.by_key_id("00" * 32)
    assert info.value.code == "AUTH_UNKNOWN_SENDER"


def test_verify_returns_the_entry_that_verified(
    keyring: Keyring, keys: dict[str, SM2PrivateKey]
) -> None:
    during_overlap = datetime(2026, 5, 1, tzinfo=UTC)
    for name in ("old", "new"):
        entry = keyring.verify(CUSTOMS, keys[name].sign(DOC), DOC, at=during_overlap)
        assert entry.public_key == keys[name].public_key()


def test_window_is_inclusive_at_start_and_exclusive_at_end(
    keyring: Keyring, keys: dict[str, SM2PrivateKey]
) -> None:
    signature = keys["old"].sign(DOC)
    assert keyring.verify(CUSTOMS, signature, DOC, at=JAN).key_id == keys["old"].public_key().key_id
    just_before_end = JUL - timedelta(microseconds=1)
    keyring.verify(CUSTOMS, signature, DOC, at=just_before_end)
    # At JUL the new key is still valid, so the old key's signature is simply not accepted.
    with pytest.raises(SignatureInvalid):
        keyring.verify(CUSTOMS, signature, DOC, at=JUL)


def test_no_key_in_window(keyring: Keyring, keys: dict[str, SM2PrivateKey]) -> None:
    before_everything = JAN - timedelta(seconds=1)
    with pytest.raises(KeyNotValidAt) as info:
        keyring.verify(CUSTOMS, keys["old"].sign(DOC), DOC, at=before_everything)
    assert info.value.code == "AUTH_KEY_NOT_VALID"


def test_revoked_key(keys: dict[str, SM2PrivateKey]) -> None:
    only_revoked = Keyring(
        [KeyEntry(BORDER, keys["revoked"].public_key(), valid_from=JAN, revoked_at=APR)]
    )
    signature = keys["revoked"].sign(DOC)
    only_revoked.verify(BORDER, signature, DOC, at=APR - timedelta(microseconds=1))
    for at in (APR, OCT):
        with pytest.raises(KeyRevoked) as info:
            only_revoked.verify(BORDER, signature, DOC, at=at)
        assert info.value.code == "AUTH_KEY_REVOKED"
    with pytest.raises(KeyNotValidAt):
        only_revoked.verify(BORDER, signature, DOC, at=JAN - timedelta(days=1))


def test_revoked_key_beside_a_valid_one_is_a_bad_signature(
    keyring: Keyring, keys: dict[str, SM2PrivateKey]
) -> None:
    signature = keys["revoked"].sign(DOC)
    keyring.verify(BORDER, signature, DOC, at=JAN)
    with pytest.raises(SignatureInvalid) as info:
        keyring.verify(BORDER, signature, DOC, at=OCT)
    assert info.value.code == "AUTH_SIGNATURE_INVALID"


def test_unknown_agency(keyring: Keyring, keys: dict[str, SM2PrivateKey]) -> None:
    with pytest.raises(UnknownSigner) as info:
        keyring.verify("cn.nobody", keys["old"].sign(DOC), DOC, at=APR)
    assert info.value.code == "AUTH_UNKNOWN_SENDER"


def test_another_agencys_key_does_not_speak_for_customs(
    keyring: Keyring, keys: dict[str, SM2PrivateKey]
) -> None:
    with pytest.raises(SignatureInvalid) as info:
        keyring.verify(CUSTOMS, keys["border"].sign(DOC), DOC, at=APR)
    assert info.value.code == "AUTH_SIGNATURE_INVALID"
    assert isinstance(info.value, CryptoError)


@pytest.mark.parametrize("signature", [b"", b"\x30\x00", b"garbage" * 10])
def test_garbage_signature(keyring: Keyring, signature: bytes) -> None:
    with pytest.raises(SignatureInvalid) as info:
        keyring.verify(CUSTOMS, signature, DOC, at=APR)
    assert info.value.code == "AUTH_SIGNATURE_INVALID"


def test_tampered_document(keyring: Keyring, keys: dict[str, SM2PrivateKey]) -> None:
    with pytest.raises(SignatureInvalid):
        keyring.verify(CUSTOMS, DOC + b" ", keys["new"].sign(DOC), at=OCT)


def test_user_id(keyring: Keyring, keys: dict[str, SM2PrivateKey]) -> None:
    signature = keys["new"].sign(DOC, user_id=b"customs-gz")
    keyring.verify(CUSTOMS, signature, DOC, at=OCT, user_id=b"customs-gz")
    with pytest.raises(SignatureInvalid):
        keyring.verify(CUSTOMS, signature, DOC, at=OCT)


def test_naive_datetimes_are_refused(keyring: Keyring, keys: dict[str, SM2PrivateKey]) -> None:
    naive = datetime(2026, 5, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        keyring.verify(CUSTOMS, keys["new"].sign(DOC), DOC, at=naive)
    public = keys["new"].public_key()
    for field in ("valid_from", "valid_to", "revoked_at"):
        with pytest.raises(ValueError):
            KeyEntry(CUSTOMS, public, **{field: naive})  # type: ignore[arg-type]  # the wrong type on purpose


def test_entry_normalises_to_utc_and_checks_window(keys: dict[str, SM2PrivateKey]) -> None:
    public = keys["new"].public_key()
    beijing_8am = datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    entry = KeyEntry(CUSTOMS, public, valid_from=beijing_8am)
    assert entry.valid_from == JAN and entry.valid_from.tzinfo is UTC
    assert entry.valid_from.utcoffset() == timedelta(0)
    assert entry.key_id == public.key_id
    assert KeyEntry(CUSTOMS, public).valid_from == datetime.min.replace(tzinfo=UTC)
    with pytest.raises(ValueError, match="later"):
        KeyEntry(CUSTOMS, public, valid_from=JUL, valid_to=JUL)
    with pytest.raises(ValueError):
        KeyEntry("", public)


def test_same_key_twice_is_refused(keys: dict[str, SM2PrivateKey]) -> None:
    public = keys["new"].public_key()
    with pytest.raises(KeyringError, match="twice"):
        Keyring([KeyEntry(CUSTOMS, public), KeyEntry(BORDER, public)])


# -- from_toml --------------------------------------------------------------------------------


def write_keyring(tmp_path: Path, keys: dict[str, SM2PrivateKey]) -> Path:
    (tmp_path / "keys").mkdir()
    for name in ("old", "new", "revoked"):
        (tmp_path / "keys" / f"{name}.pub").write_bytes(keys[name].public_key().to_pem())
    config = tmp_path / "keyring.toml"
    config.write_text(
        f"""
[[key]]
agency = "{CUSTOMS}"
public_key = "keys/old.pub"
valid_from = 2026-01-01T08:00:00+08:00
valid_to = 2026-07-01T00:00:00Z

[[key]]
agency = "{CUSTOMS}"
public_key = "keys/new.pub"
valid_from = 2026-04-01T00:00:00Z

[[key]]
agency = "{BORDER}"
public_key = "keys/revoked.pub"
revoked_at = 2026-04-01T00:00:00Z
""",
        encoding="utf-8",
    )
    return config


def test_from_toml(tmp_path: Path, keys: dict[str, SM2PrivateKey]) -> None:
    keyring = Keyring.from_toml(write_keyring(tmp_path, keys))
    old, new = keyring.keys_for(CUSTOMS)
    assert old.public_key == keys["old"].public_key()
    assert (old.valid_from, old.valid_to, old.revoked_at) == (JAN, JUL, None)
    assert (new.valid_from, new.valid_to) == (APR, None)
    (border,) = keyring.keys_for(BORDER)
    assert border.valid_from == datetime.min.replace(tzinfo=UTC) and border.revoked_at == APR
    assert keyring.verify(CUSTOMS, keys["new"].sign(DOC), DOC, at=OCT) == new
    with pytest.raises(KeyRevoked):
        keyring.verify(BORDER, keys["revoked"].sign(DOC), DOC, at=OCT)


def test_from_toml_resolves_key_paths_against_the_toml_directory(
    tmp_path: Path, keys: dict[str, SM2PrivateKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_keyring(tmp_path, keys)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert len(Keyring.from_toml(config)) == 3


def p256_pem() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


GOOD = '[[key]]\nagency = "cn.customs.gz"\npublic_key = "good.pub"\n'
BORDER_KEY = 'agency = "cn.border.gz"\npublic_key = "good2.pub"\n'


@pytest.mark.parametrize(
    ("second_entry", "expected"),
    [
        ('agency = "cn.border.gz"\npublic_key = "missing.pub"', "cannot read public key"),
        ('agency = "cn.border.gz"\npublic_key = "notakey.pub"', "PEM"),
        ('agency = "cn.border.gz"\npublic_key = "p256.pub"', "not an SM2 key"),
        ('public_key = "good2.pub"', "'agency'"),
        ('agency = "cn.border.gz"', "'public_key'"),
        (BORDER_KEY + "valid_from = 2026-01-01T00:00:00", "timezone-aware"),
        (BORDER_KEY + "valid_from = 2026-01-01", "offset date-time"),
        (BORDER_KEY + "valid_until = 2026-01-01T00:00:00Z", "unknown fields"),
        (BORDER_KEY + 'agency_id = "x"', "unknown fields"),
        (
            BORDER_KEY + "valid_from = 2026-07-01T00:00:00Z\nvalid_to = 2026-01-01T00:00:00Z",
            "later",
        ),
        (BORDER_KEY + "revoked_at = 17", "offset date-time"),
        ('agency = "cn.border.gz"\npublic_key = "good.pub"', "twice"),
    ],
)
def test_from_toml_bad_entry_names_file_and_entry(
    tmp_path: Path, keys: dict[str, SM2PrivateKey], second_entry: str, expected: str
) -> None:
    (tmp_path / "good.pub").write_bytes(keys["old"].public_key().to_pem())
    (tmp_path / "good2.pub").write_bytes(keys["new"].public_key().to_pem())
    (tmp_path / "notakey.pub").write_text("hello\n")
    (tmp_path / "p256.pub").write_bytes(p256_pem())
    config = tmp_path / "keyring.toml"
    config.write_text(f"{GOOD}\n[[key]]\n{second_entry}\n", encoding="utf-8")
    with pytest.raises(KeyringError) as info:
        Keyring.from_toml(config)
    message = info.value.message
    assert str(config) in message
    assert expected in message
    if expected != "twice":
        assert "entry #2" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read keyring file"),
        ("[[key]\nagency = ", "not valid TOML"),
        ('key = "x"', "array of tables"),
        ('[[keys]]\nagency = "a"', "unknown top-level keys"),
        ("[[key]]\n[key.nested]\n", "unknown fields"),
    ],
)
def test_from_toml_bad_file(tmp_path: Path, content: str | None, expected: str) -> None:
    config = tmp_path / "keyring.toml"
    if content is not None:
        config.write_text(content, encoding="utf-8")
    with pytest.raises(KeyringError) as info:
        Keyring.from_toml(config)
    assert str(config) in info.value.message and expected in info.value.message
    assert info.value.code == "KEYRING_ERROR"


# -- roles ------------------------------------------------------------------------------------

GATEWAY = "px.gateway"
SEAL_RULE = "only the gateway's sealing keys (role seal) seal; an agency's key never does"


@pytest.fixture(scope="module")
def roles_ring(keys: dict[str, SM2PrivateKey]) -> Keyring:
    """The gateway's sealing key (rolled over in July) and an agency's key."""
    return Keyring([
        KeyEntry(GATEWAY, keys["old"].public_key(), valid_from=JAN, valid_to=JUL),
        KeyEntry(GATEWAY, keys["new"].public_key(), valid_from=JUL, revoked_at=OCT),
        KeyEntry(CUSTOMS, keys["border"].public_key(), valid_from=JAN),
    ])


def test_roles_come_from_the_owner_when_not_given(roles_ring: Keyring) -> None:
    gateway_key, _ = roles_ring.keys_for(GATEWAY)
    (agency_key,) = roles_ring.keys_for(CUSTOMS)
    assert roles_ring.gateway_id == GATEWAY
    assert gateway_key.roles == {KeyRole.SEAL}
    assert agency_key.roles == {KeyRole.DOCUMENT, KeyRole.ACK}
    assert gateway_key.may(KeyRole.SEAL) and not gateway_key.may(KeyRole.DOCUMENT)
    assert not agency_key.may(KeyRole.SEAL)
    assert KeyEntry(CUSTOMS, agency_key.public_key).roles is None  # outside a keyring


def test_the_gateway_identity_is_the_keyrings_to_name(keys: dict[str, SM2PrivateKey]) -> None:
    ring = Keyring([KeyEntry("cn.gateway.sh", keys["old"].public_key()),
                    KeyEntry(GATEWAY, keys["new"].public_key())], gateway_id="cn.gateway.sh")
    assert ring.by_key_id(keys["old"].public_key().key_id).roles == {KeyRole.SEAL}
    assert ring.by_key_id(keys["new"].public_key().key_id).roles == {KeyRole.DOCUMENT,
                                                                      KeyRole.ACK}


def test_a_sealing_key_is_returned_inside_its_window(
    roles_ring: Keyring, keys: dict[str, SM2PrivateKey]
) -> None:
    old, new = (keys[name].public_key().key_id for name in ("old", "new"))
    assert roles_ring.sealing_key(old, APR).key_id == old
    assert roles_ring.sealing_key(new, JUL).key_id == new


@pytest.mark.parametrize(("name", "at", "code", "rule"), [
    ("border", APR, "SEAL_KEY_NOT_SEALING", f"is a key of '{CUSTOMS}' with role(s) ack, document, "
                                            f"not seal: {SEAL_RULE}"),
    ("revoked", APR, "SEAL_KEY_UNKNOWN", f"is not in the keyring: {SEAL_RULE}"),
    ("old", JUL, "SEAL_KEY_NOT_VALID", "a seal counts only when made inside its key's "
                                       "validity window"),
    ("old", JAN - timedelta(seconds=1), "SEAL_KEY_NOT_VALID", "was not valid at"),
    ("new", OCT, "SEAL_KEY_REVOKED", "a seal made once its key is revoked does not count"),
])
def test_a_seal_by_any_other_key_is_refused_with_its_rule(
    roles_ring: Keyring, keys: dict[str, SM2PrivateKey], name: str, at: datetime, code: str,
    rule: str,
) -> None:
    key_id = keys[name].public_key().key_id
    with pytest.raises(SealKeyRefused) as info:
        roles_ring.sealing_key(key_id, at)
    assert info.value.code == code
    assert key_id in info.value.message and rule in info.value.message


def test_verify_seal_names_a_bad_signature(
    roles_ring: Keyring, keys: dict[str, SM2PrivateKey]
) -> None:
    key_id = keys["old"].public_key().key_id
    assert roles_ring.verify_seal(keys["old"].sign(DOC), DOC, key_id=key_id, at=APR).key_id \
        == key_id
    with pytest.raises(SignatureInvalid) as info:
        roles_ring.verify_seal(keys["border"].sign(DOC), DOC, key_id=key_id, at=APR)
    assert info.value.code == "SEAL_SIGNATURE_INVALID" and key_id in info.value.message
    with pytest.raises(SealKeyRefused) as refused:  # the agency's own, valid signature
        roles_ring.verify_seal(keys["border"].sign(DOC), DOC,
                               key_id=keys["border"].public_key().key_id, at=APR)
    assert refused.value.code == "SEAL_KEY_NOT_SEALING"


def test_a_sealing_key_never_signs_a_document(
    roles_ring: Keyring, keys: dict[str, SM2PrivateKey]
) -> None:
    with pytest.raises(KeyRoleRefused) as info:
        roles_ring.verify(GATEWAY, keys["old"].sign(DOC), DOC, at=APR)
    assert info.value.code == "AUTH_KEY_ROLE"
    assert "has role document" in info.value.message
    with pytest.raises(KeyRoleRefused):
        roles_ring.current_key(GATEWAY, APR)
    assert roles_ring.verify(CUSTOMS, keys["border"].sign(DOC), DOC, at=APR).agency_id == CUSTOMS


def test_roles_given_narrow_what_a_key_may_sign(keys: dict[str, SM2PrivateKey]) -> None:
    ring = Keyring([KeyEntry(CUSTOMS, keys["border"].public_key(),
                             roles=frozenset({KeyRole.ACK}))])
    signature = keys["border"].sign(DOC)
    assert ring.verify(CUSTOMS, signature, DOC, at=APR, role=KeyRole.ACK).agency_id == CUSTOMS
    with pytest.raises(KeyRoleRefused):
        ring.verify(CUSTOMS, signature, DOC, at=APR)


@pytest.mark.parametrize(("owner", "roles", "refused"), [
    (CUSTOMS, {KeyRole.SEAL}, "seal"),
    (CUSTOMS, {KeyRole.DOCUMENT, KeyRole.SEAL}, "seal"),
    (GATEWAY, {KeyRole.DOCUMENT}, "document"),
    (GATEWAY, {KeyRole.SEAL, KeyRole.ACK}, "ack"),
])
def test_a_role_the_owner_may_not_have_is_refused(
    keys: dict[str, SM2PrivateKey], owner: str, roles: set[KeyRole], refused: str
) -> None:
    with pytest.raises(KeyRoleInvalid) as info:
        Keyring([KeyEntry(owner, keys["new"].public_key(), roles=frozenset(roles))])
    assert info.value.code == "KEYRING_ROLE_INVALID"
    assert f"is given role(s) {refused}:" in info.value.message


def test_roles_must_be_known_and_not_empty(keys: dict[str, SM2PrivateKey]) -> None:
    public = keys["new"].public_key()
    with pytest.raises(ValueError, match="at least one"):
        KeyEntry(CUSTOMS, public, roles=frozenset())
    with pytest.raises(ValueError, match="among ack, document, seal"):
        KeyEntry(CUSTOMS, public, roles=frozenset({"sign"}))  # type: ignore[arg-type]  # the wrong type on purpose


ROLE_NAMES = ("document", "ack", "seal", "sign", "SEAL")


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


@given(
    owner_is_gateway=st.booleans(),
    gateway_line=st.sampled_from([None, GATEWAY, "cn.gateway.sh"]),
    roles=st.none() | st.lists(st.sampled_from(ROLE_NAMES), max_size=4),
)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_roles_in_toml_are_loaded_exactly_when_the_owner_may_have_them(
    tmp_path: Path, keys: dict[str, SM2PrivateKey], owner_is_gateway: bool,
    gateway_line: str | None, roles: list[str] | None,
) -> None:
    gateway_id = gateway_line or GATEWAY
    owner = gateway_id if owner_is_gateway else CUSTOMS
    (tmp_path / "k.pub").write_bytes(keys["new"].public_key().to_pem())
    config = tmp_path / "keyring.toml"
    config.write_text(
        (f'gateway = "{gateway_line}"\n' if gateway_line else "")
        + f'[[key]]\nagency = "{owner}"\npublic_key = "k.pub"\n'
        + (f"roles = {_toml_list(roles)}\n" if roles is not None else ""),
        encoding="utf-8")
    allowed = {"seal"} if owner_is_gateway else {"document", "ack"}
    if roles is None:
        (entry,) = Keyring.from_toml(config)
        assert {r.value for r in entry.roles or ()} == allowed
        return
    if roles and set(roles) <= allowed:
        (entry,) = Keyring.from_toml(config)
        assert {r.value for r in entry.roles or ()} == set(roles)
        assert Keyring.from_toml(config).gateway_id == gateway_id
        return
    with pytest.raises(KeyringError) as info:
        Keyring.from_toml(config)
    assert str(config) in info.value.message and "entry #1" in info.value.message
    known = set(roles) <= {"document", "ack", "seal"}
    assert info.value.code == ("KEYRING_ROLE_INVALID" if roles and known else "KEYRING_ERROR")


@pytest.mark.parametrize(("content", "expected"), [
    ('gateway = ""\n', "'gateway' must be a non-empty string"),
    ("gateway = 7\n", "'gateway' must be a non-empty string"),
    ('[[key]]\nagency = "cn.customs.gz"\npublic_key = "k.pub"\nroles = "seal"\n',
     "'roles' must be a list"),
])
def test_a_bad_gateway_identity_or_roles_value_is_named(
    tmp_path: Path, keys: dict[str, SM2PrivateKey], content: str, expected: str
) -> None:
    (tmp_path / "k.pub").write_bytes(keys["new"].public_key().to_pem())
    config = tmp_path / "keyring.toml"
    config.write_text(content, encoding="utf-8")
    with pytest.raises(KeyringError) as info:
        Keyring.from_toml(config)
    assert expected in info.value.message


# -- versions and re-checks (the keyring reloaded while the gateway runs) --------------------


def test_a_keyring_from_a_file_is_versioned_by_the_sm3_of_its_bytes(
    tmp_path: Path, keys: dict[str, SM2PrivateKey], keyring: Keyring
) -> None:
    (tmp_path / "k.pub").write_bytes(keys["new"].public_key().to_pem())
    config = tmp_path / "keyring.toml"
    config.write_text(f'[[key]]\nagency = "{CUSTOMS}"\npublic_key = "k.pub"\n',
                      encoding="utf-8")
    first = Keyring.from_toml(config).version
    assert first == sm3_hex(config.read_bytes())
    config.write_text(config.read_text(encoding="utf-8") + "revoked_at = 2026-04-01T00:00:00Z\n",
                      encoding="utf-8")
    assert Keyring.from_toml(config).version == sm3_hex(config.read_bytes()) != first
    assert keyring.version is None  # made in memory


def test_a_keyring_file_that_is_not_utf8_is_a_keyring_error(tmp_path: Path) -> None:
    config = tmp_path / "keyring.toml"
    config.write_bytes(b'gateway = "px.gateway"\n# \xff\n')
    with pytest.raises(KeyringError) as info:
        Keyring.from_toml(config)
    assert info.value.code == "KEYRING_ERROR"
    assert str(config) in info.value.message and "not valid TOML" in info.value.message


def test_usable_entry_confirms_a_key_only_while_this_keyring_lets_it_sign(
    keyring: Keyring, keys: dict[str, SM2PrivateKey]
) -> None:
    new, revoked = keys["new"].public_key().key_id, keys["revoked"].public_key().key_id
    old = keys["old"].public_key().key_id
    assert keyring.usable_entry(new, CUSTOMS, OCT) == keyring.by_key_id(new)
    assert keyring.usable_entry(new, BORDER, OCT) is None  # another agency's key
    assert keyring.usable_entry(old, CUSTOMS, OCT) is None  # its window has ended
    assert keyring.usable_entry(revoked, BORDER, JAN) is not None
    assert keyring.usable_entry(revoked, BORDER, APR) is None  # revoked at APR
    assert keyring.usable_entry("00" * 32, CUSTOMS, OCT) is None  # not in this keyring
    assert keyring.usable_entry(new, CUSTOMS, OCT, role=KeyRole.SEAL) is None
