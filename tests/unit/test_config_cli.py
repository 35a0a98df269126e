"""`portgw config check`: a valid home passes; each broken piece is named with its code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crypto import Keyring, KeyRole, SM2PrivateKey
from gateway.cli.config import directory_problem, listen_problem, main
from gateway.cli.main import main as cli_main
from gateway.home.config import GatewayConfig
from gateway.home.create import Home, create_home
from gateway.kafka.local_broker import free_loopback_port
from tests.unit.sm2_ca import OpensslCA


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTGW_BOOTSTRAP_SERVERS", raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return create_home(tmp_path / "home")


def check(home: Home, *extra: str) -> int:
    return main(["config", "check", "--config", str(home.config_file), *extra])


def problems(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_a_valid_home_is_ok_with_a_summary(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(home) == 0
    [line] = problems(capsys)
    key_id = home.gateway_key.public_key().key_id[:16]
    listen = GatewayConfig.load(home.config_file).http.listen
    assert line == (f"config OK: gateway px.gateway, key {key_id}, 5 key(s) in the keyring, "
                    f"4 agencies, 1 contract(s), http {listen}, "
                    f"trail archive {home.path.resolve() / 'trail-archive'}, "
                    f"receipt index {home.path.resolve() / 'receipt-index'}, "
                    "broker local (started by portgw serve)")


def test_a_missing_key_file_is_named(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    (home.path / "gateway.key").unlink()
    assert check(home) == 1
    assert problems(capsys) == [
        f"CONFIG_FILE_MISSING: key_file {home.path.resolve() / 'gateway.key'} does not exist"]


def test_a_garbage_key_is_named(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    (home.path / "gateway.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n")
    assert check(home) == 1
    [line] = problems(capsys)
    assert line.startswith("CONFIG_KEY_INVALID: key_file ")
    assert "is not an SM2 private key PEM" in line


def test_a_gateway_key_missing_from_the_keyring_is_named(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    (home.path / "gateway.key").write_bytes(SM2PrivateKey.generate().to_pem())
    assert check(home) == 1
    [line] = problems(capsys)
    assert line.startswith("CONFIG_GATEWAY_KEY_NOT_IN_KEYRING: the public key of ")
    assert line.endswith("under 'px.gateway'")


def test_a_gateway_key_listed_for_an_agency_says_so(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    (home.path / "gateway.key").write_bytes(home.agency_keys["cn.msa.sh"].to_pem())
    assert check(home) == 1
    assert problems(capsys)[0].endswith("under 'px.gateway'; it is listed for 'cn.msa.sh'")


def test_a_home_lists_its_gateway_key_as_a_sealing_key_and_agency_keys_as_not(
    home: Home,
) -> None:
    keyring = Keyring.from_toml(home.path / "keyring.toml")
    assert keyring.gateway_id == "px.gateway"
    gateway = keyring.by_key_id(home.gateway_key.public_key().key_id)
    assert (gateway.agency_id, gateway.roles) == ("px.gateway", {KeyRole.SEAL})
    for agency, key in home.agency_keys.items():
        entry = keyring.by_key_id(key.public_key().key_id)
        assert (entry.agency_id, entry.roles) == (agency, {KeyRole.DOCUMENT, KeyRole.ACK})


def test_a_gateway_key_that_is_not_a_sealing_key_is_named(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    """The keyring names another gateway identity, so the key under px.gateway is an agency's
    key: auditors would refuse every seal it makes."""
    keyring = home.path / "keyring.toml"
    keyring.write_text(keyring.read_text(encoding="utf-8")
                       .replace('gateway = "px.gateway"', 'gateway = "cn.gateway.other"')
                       .replace('roles = ["seal"]', 'roles = ["document"]'), encoding="utf-8")
    assert check(home) == 1
    [line] = problems(capsys)
    assert line.startswith("CONFIG_GATEWAY_KEY_NOT_SEALING: the keyring entry of 'px.gateway' ")
    assert "names 'cn.gateway.other' as the gateway identity" in line


def test_a_bad_contract_is_named_with_its_file_line_and_lint_code(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    path = home.path / "contracts" / "fal1-port-to-clearance.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('"cn.msa.sh"', '"cn.nobody"'),
                    encoding="utf-8")
    assert check(home) == 1
    assert problems(capsys) == [
        f"CONTRACT_UNKNOWN_AGENCY: {path.resolve()}:4: unknown agency 'cn.nobody'"]


def test_an_unknown_setting_stops_the_check_there(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    text = home.config_file.read_text(encoding="utf-8")
    home.config_file.write_text(text.replace("[gateway]\n", '[gateway]\ncolour = "blue"\n'),
                                encoding="utf-8")
    (home.path / "gateway.key").unlink()  # not reached
    assert check(home) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "CONFIG_INVALID: unknown [gateway] settings: colour"]
    assert "nothing else checked" in captured.err


def test_an_environment_override_is_checked_too(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTGW__GATEWAY__INGRESS_PARTITIONS", "0")
    assert check(home) == 1
    [line] = problems(capsys)
    assert line.startswith("CONFIG_INVALID: ingress_partitions and max_in_flight must be")


def test_broken_toml_is_reported(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    with home.config_file.open("a", encoding="utf-8") as handle:
        handle.write("[http\n")
    assert check(home) == 1
    assert problems(capsys)[0].startswith("CONFIG_INVALID: ")


def test_a_bad_listen_address_is_named(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTGW__HTTP__LISTEN", "localhost")
    assert check(home) == 1
    assert problems(capsys) == [
        "CONFIG_HTTP_LISTEN_INVALID: [http] listen = 'localhost': expected HOST:PORT, "
        "e.g. 127.0.0.1:8080"]


@pytest.mark.parametrize(("env", "line"), [
    ({"PORTGW__HTTP__LISTEN": '"0.0.0.0:8080"'},
     'CONFIG_HTTP_PLAIN_NOT_LOCAL: [http] tls = "off" is accepted only when listen is a '
     "loopback address; elsewhere set cert_file, key_file and client_ca_file"),
    ({"PORTGW__HTTP__LISTEN": '"[::]:8443"', "PORTGW__HTTP__TLS": '"on"'},
     "CONFIG_HTTP_TLS_MISSING: [http] listen needs TLS: set cert_file, key_file and "
     'client_ca_file, or tls = "off" on a loopback address for local use'),
    ({"PORTGW__HTTP__OPERATOR_LISTEN": '"10.0.0.5:9464"'},
     "CONFIG_HTTP_OPERATOR_NOT_LOCAL: [http] operator_listen must be a loopback address "
     "(it is plain HTTP)"),
])
def test_plain_http_off_loopback_or_tls_without_its_files_is_refused(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str], line: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert check(home) == 1
    assert problems(capsys) == [line]


def test_every_problem_is_named_not_only_the_first(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (home.path / "agencies.toml").unlink()
    (home.path / "mask.key").write_bytes(b"short")
    (home.path / "trail-archive").write_text("a file where the directory goes")
    (home.path / "receipt-index").write_text("a file where the directory goes")
    monkeypatch.setenv("PORTGW__HTTP__LISTEN", '"127.0.0.1:80800"')
    monkeypatch.setenv("PORTGW__LIMITS__CN.NOBODY__RATE_PER_S", "5.0")  # agencies unknown
    monkeypatch.setenv("PORTGW__TRAIL__SEAL_EVERY", "0")
    assert check(home) == 1
    codes = [line.split(":")[0] for line in problems(capsys)]
    assert codes == ["CONFIG_FILE_MISSING", "CONFIG_MASK_KEY_SHORT", "CONFIG_OUT_OF_RANGE",
                     "CONFIG_HTTP_LISTEN_INVALID", "CONFIG_ARCHIVE_DIR_UNWRITABLE",
                     "CONFIG_RECEIPT_INDEX_DIR_UNWRITABLE"]


def test_limits_for_an_unknown_agency_and_oversized_documents_are_named(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTGW__LIMITS__CN.NOBODY__RATE_PER_S", "5.0")
    monkeypatch.setenv("PORTGW__LIMITS__DEFAULT__MAX_DOCUMENT_BYTES", "104857600")
    assert check(home) == 1
    lines = problems(capsys)
    assert lines[0].startswith('CONFIG_LIMITS_UNKNOWN_AGENCY: [limits."cn.nobody"] names no')
    assert lines[1].startswith("CONFIG_OUT_OF_RANGE: [limits.default] max_document_bytes = "
                               "104857600: expected a whole number of bytes from 1 to")
    assert len(lines) == 3  # cn.nobody's table starts from the default one


def test_connect_without_a_broker_says_the_local_one_will_be_started(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(home, "--connect") == 0
    assert problems(capsys)[0].endswith(
        ", no broker configured: portgw serve starts the local broker")


def test_connect_names_a_broker_that_does_not_answer(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"127.0.0.1:{free_loopback_port()}"
    assert check(home, "--connect", "--bootstrap-servers", closed, "--timeout", "2") == 1
    [line] = problems(capsys)
    assert line.startswith(f"CONFIG_BROKER_UNREACHABLE: cannot read metadata from {closed}")


@pytest.mark.parametrize(("listen", "why"), [
    ("127.0.0.1:8080", None),
    ("gateway.port.example:443", None),
    ("[::1]:8080", None),
    ("0.0.0.0:0", None),
    ("8080", "expected HOST:PORT, e.g. 127.0.0.1:8080"),
    (":8080", "expected HOST:PORT, e.g. 127.0.0.1:8080"),
    ("127.0.0.1:http", "port 'http' is not a number from 0 to 65535"),
    ("127.0.0.1:65536", "port '65536' is not a number from 0 to 65535"),
    ("[127.0.0.1]:80", "[127.0.0.1] is not an IPv6 address"),
    ("bad host:80", "'bad host' is neither an IP address nor a host name"),
])
def test_listen_addresses(listen: str, why: str | None) -> None:
    assert listen_problem(listen) == why


def test_a_directory_may_be_created_below_an_existing_directory(tmp_path: Path) -> None:
    assert directory_problem(tmp_path / "a" / "b") is None
    assert directory_problem(tmp_path) is None
    (tmp_path / "file").write_text("x")
    assert directory_problem(tmp_path / "file") == "exists and is not a directory"
    assert directory_problem(tmp_path / "file" / "sub") == (
        f"cannot be created: {tmp_path / 'file'} is not a directory")


def test_a_warning_level_owned_by_an_unknown_agency_is_named(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTGW__WARNINGS__LEVEL_OWNERS__I", '"cn.customs.gacc"')
    monkeypatch.setenv("PORTGW__WARNINGS__LEVEL_OWNERS__II", '"cn.customs.sh"')
    assert GatewayConfig.load(home.config_file).warnings.level_owners == {
        "I": "cn.customs.gacc", "II": "cn.customs.sh"}
    assert check(home) == 1
    assert problems(capsys) == [
        "CONFIG_WARNING_OWNER_UNKNOWN: [warnings.level_owners] I = 'cn.customs.gacc' names no "
        f"agency of {home.path.resolve() / 'agencies.toml'}"]


def test_a_warning_level_that_does_not_exist_stops_the_check(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTGW__WARNINGS__LEVEL_OWNERS__V", '"cn.customs.sh"')
    assert check(home) == 1
    [line] = problems(capsys)
    assert "unknown levels V; the levels are I, II, III, IV" in line


def test_serve_refuses_to_start_on_what_the_check_names(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTGW__TRAIL__SEAL_EVERY", "0")
    assert cli_main(["serve", "--config", str(home.config_file)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "portgw serve: CONFIG_OUT_OF_RANGE: [trail] seal_every = 0: expected a whole number, "
        "1 or more"]


@pytest.fixture(scope="module")
def certificate_ca(tmp_path_factory: pytest.TempPathFactory) -> OpensslCA:
    return OpensslCA.create(tmp_path_factory.mktemp("pki") / "ca")


@pytest.mark.parametrize(("setting", "days_left", "exit_code", "line"), [
    ("DXP__CERTIFICATE_FILE", 10, 0,
     "warning: CONFIG_CERT_EXPIRES_SOON: [dxp] certificate_file: the certificate expires in "
     "9 day(s)"),
    ("DXP__CERTIFICATE_FILE", -1, 1,
     "CONFIG_CERT_EXPIRED: [dxp] certificate_file: the certificate expired"),
    ("DXP__RSA_CERTIFICATE_FILE", 90, 0, None),
])
def test_the_gateways_own_certificates_are_checked_for_expiry(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    certificate_ca: OpensslCA, setting: str, days_left: int, exit_code: int,
    line: str | None,
) -> None:
    """A month ahead, `config check` warns; once expired, it fails: an E-Port recipient or a
    TLS peer would refuse the gateway from then on."""
    now = datetime.now(UTC)
    certificate = certificate_ca.issue(f"own{days_left + 100}", days_left + 100,
                                       start=now - timedelta(days=2),
                                       end=now + timedelta(days=days_left))
    monkeypatch.setenv(f"PORTGW__{setting}", f'"{certificate}"')
    assert check(home) == exit_code
    out = capsys.readouterr().out
    if line is None:
        assert "CONFIG_CERT" not in out
    else:
        assert line in out, out
