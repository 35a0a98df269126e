"""`portgw config check`: every problem of a gateway configuration, before the gateway starts.

The gateway itself stops at the first problem it meets (`GatewayParts.load`); this command
goes on and names them all, one line each with a stable code: the files the configuration
names, the gateway key and its place in the keyring, the agencies, the contracts (linted as
`portgw contracts lint` does), the mask key, the numbers, the HTTP address, the trail archive
and, with --connect, the broker. A configuration file that cannot be read (bad TOML, unknown
settings, values out of range, including those set from the environment) is the one problem
that stops the check there.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters import AdapterRegistry
from contracts import AgencyRegistry, ContractError, lint_contract_dir
from crypto import CryptoError, Keyring, KeyRole, SM2PrivateKey
from gateway.cli.support import config_args, load_config
from gateway.clock import utc_now
from gateway.decide.router import document_catalog, envelope_format_problems, format_table
from gateway.errors import BrokerUnavailable, ConfigError, GatewayError
from gateway.home.certificates import CERT_EXPIRED, own_certificates
from gateway.home.config import DEFAULT_LIMITS, GatewayConfig
from gateway.ingress.http_guard import server_tls_context
from gateway.kafka.names import Topics
from gateway.kafka.wire import BROKER_TLS_FAILED, Broker, partitions_of, secured_link
from gateway.publish.dxp_egress import DxpEgress
from gateway.publish.push import client_context
from message_formats import AvroSchemas

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
MIN_MASK_KEY_BYTES = 16
# The largest request the gateway's producer sends (gateway.kafka.wire.new_producer); a document
# must fit in it, as the ingress value and again inside its dead letter.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_CONNECT_TIMEOUT_S = 5.0
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """What a check found: the problems, the facts that make up its summary, and warnings:
    what the gateway starts without (an adapter plug-in it skips)."""

    problems: tuple[ConfigProblem, ...]
    facts: tuple[str, ...]
    warnings: tuple[ConfigProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        return ", ".join(self.facts)

    def merged(self, other: ConfigReport) -> ConfigReport:
        return ConfigReport(self.problems + other.problems, self.facts + other.facts,
                            self.warnings + other.warnings)


@dataclass(slots=True)
class _Findings:
    problems: list[ConfigProblem] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)

    def add(self, code: str, message: str) -> None:
        self.problems.append(ConfigProblem(code, message))

    def report(self) -> ConfigReport:
        return ConfigReport(tuple(self.problems), tuple(self.facts), tuple(self.warnings))


# -- the check ---------------------------------------------------------------------------------


def check_config(config: GatewayConfig, *, now: datetime | None = None) -> ConfigReport:
    """Every problem of a loaded configuration; nothing is written and no broker asked."""
    found = _Findings()
    found.facts.append(f"gateway {config.gateway_id}")
    _check_paths(config, found)
    key = _load_key(config.key_file, found)
    keyring = _load_keyring(config.keyring_file, found)
    if key is not None and keyring is not None:
        _check_key_in_keyring(config, key, keyring, now or utc_now(), found)
    agencies = _load_agencies(config.agencies_file, found)
    schemas, adapters = _load_adapters(found)
    if agencies is not None:
        _check_contracts(config, agencies, schemas, adapters, found)
        _check_recipient_agencies(config, agencies, found)
        _check_limit_agencies(config, agencies, found)
        _check_warning_owners(config, agencies, found)
    _check_mask_key(config.mask_key_file, found)
    _check_egress_keys(config, found)
    _check_numbers(config, found)
    _check_listen(config.http.listen, found)
    _check_tls_files(config, found)
    _check_kafka(config, found)
    _check_certificate_expiry(config, now or utc_now(), found)
    _check_directory(config.archive_dir, found, setting="[trail] archive_dir",
                     what="trail archive", off="off", code="CONFIG_ARCHIVE_DIR_UNWRITABLE")
    _check_directory(config.receipt_index_path, found, setting="[gateway] receipt_index_dir",
                     what="receipt index", off="in memory",
                     code="CONFIG_RECEIPT_INDEX_DIR_UNWRITABLE")
    return found.report()


def _check_paths(config: GatewayConfig, found: _Findings) -> None:
    files = {"key_file": config.key_file, "keyring_file": config.keyring_file,
             "agencies_file": config.agencies_file, "mask_key_file": config.mask_key_file}
    for name, path in files.items():
        if not path.exists():
            found.add("CONFIG_FILE_MISSING", f"{name} {path} does not exist")
        elif not path.is_file():
            found.add("CONFIG_FILE_UNREADABLE", f"{name} {path} is not a file")
        elif not os.access(path, os.R_OK):
            found.add("CONFIG_FILE_UNREADABLE", f"{name} {path} is not readable")
    directory = config.contracts_dir
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        found.add("CONFIG_FILE_MISSING", f"contracts_dir {directory} {what}")


def _read(path: Path) -> bytes | None:
    """The file's bytes; None when it cannot be read (already reported by _check_paths)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _load_key(path: Path, found: _Findings) -> SM2PrivateKey | None:
    pem = _read(path)
    if pem is None:
        return None
    if b"ENCRYPTED PRIVATE KEY" in pem:
        found.add("CONFIG_KEY_INVALID", f"key_file {path} is encrypted; the gateway reads its "
                  "key without a password")
        return None
    try:
        key = SM2PrivateKey.from_pem(pem)
    except (CryptoError, ValueError) as exc:
        reason = exc.message if isinstance(exc, CryptoError) else str(exc)
        found.add("CONFIG_KEY_INVALID", f"key_file {path} is not an SM2 private key PEM: "
                  f"{reason}")
        return None
    found.facts.append(f"key {key.public_key().key_id[:16]}")
    return key


def _load_keyring(path: Path, found: _Findings) -> Keyring | None:
    if _read(path) is None:
        return None
    try:
        keyring = Keyring.from_toml(path)
    except CryptoError as exc:
        found.add("CONFIG_KEYRING_INVALID", exc.message)
        return None
    found.facts.append(f"{len(keyring)} key(s) in the keyring")
    if keyring.rsa_entries:
        found.facts.append(f"{len(keyring.rsa_entries)} RSA certificate(s) (rsa-sha1 only)")
    return keyring


def _check_key_in_keyring(
    config: GatewayConfig, key: SM2PrivateKey, keyring: Keyring, now: datetime,
    found: _Findings,
) -> None:
    """Auditors verify the trail's seals with the gateway's keyring entry, so the key that
    signs them must be listed there under the gateway's id, as a sealing key (the keyring's
    gateway identity is the gateway's id), and usable now."""
    key_id = key.public_key().key_id
    gateway_id = config.gateway_id
    entry = next((e for e in keyring.keys_for(gateway_id) if e.key_id == key_id), None)
    if entry is None:
        elsewhere = next((e.agency_id for e in keyring if e.key_id == key_id), None)
        where = f"; it is listed for {elsewhere!r}" if elsewhere else ""
        found.add("CONFIG_GATEWAY_KEY_NOT_IN_KEYRING",
                  f"the public key of {config.key_file} (key id {key_id[:16]}) is not in "
                  f"{config.keyring_file} under {gateway_id!r}{where}")
    elif not entry.may(KeyRole.SEAL):
        found.add("CONFIG_GATEWAY_KEY_NOT_SEALING",
                  f"the keyring entry of {gateway_id!r} for key {key_id[:16]} is not a sealing "
                  f"key: {config.keyring_file} names {keyring.gateway_id!r} as the gateway "
                  "identity (top-level 'gateway'), and only its keys seal")
    elif not entry.usable_at(now):
        found.add("CONFIG_GATEWAY_KEY_NOT_VALID",
                  f"the keyring entry of {gateway_id!r} for key {key_id[:16]} is not usable at "
                  f"{now.isoformat()} (valid from {entry.valid_from.isoformat()}"
                  f"{_until(entry.valid_to)}{_revoked(entry.revoked_at)})")


def _until(at: datetime | None) -> str:
    return f" to {at.isoformat()}" if at else ""


def _revoked(at: datetime | None) -> str:
    return f", revoked at {at.isoformat()}" if at else ""


def _load_agencies(path: Path, found: _Findings) -> AgencyRegistry | None:
    if _read(path) is None:
        return None
    try:
        agencies = AgencyRegistry.from_toml(path)
    except ContractError as exc:
        found.add("CONFIG_AGENCIES_INVALID", f"{exc.path or path}: {exc.code}: {exc.message}")
        return None
    found.facts.append(f"{len(agencies)} agencies")
    return agencies


def _load_adapters(found: _Findings) -> tuple[AvroSchemas, AdapterRegistry]:
    """The adapters the gateway would start with; a plug-in it would skip is a warning."""
    schemas = AvroSchemas()
    adapters = AdapterRegistry.default(schemas)
    found.warnings.extend(ConfigProblem(p.code, p.summary) for p in adapters.problems)
    return schemas, adapters


def _check_contracts(config: GatewayConfig, agencies: AgencyRegistry, schemas: AvroSchemas,
                     adapters: AdapterRegistry, found: _Findings) -> None:
    """The contracts as `portgw contracts lint` checks them, and as the gateway does the
    formats of China E-Port recipients; each problem keeps its code."""
    directory = config.contracts_dir
    if not directory.is_dir():
        return
    report = lint_contract_dir(directory, agencies, document_catalog(adapters, schemas),
                               format_table(adapters))
    for problem in report.problems:
        found.add(problem.code, f"{problem.path}:{problem.line or 1}: {problem.message}")
    recipients = frozenset(config.dxp.recipients) & {agency.id for agency in agencies}
    for error in envelope_format_problems(report.contracts, agencies, recipients):
        found.add(error.code, f"{error.path}:1: {error.message}")
    found.facts.append(f"{len(report.contracts)} contract(s)")


def _check_recipient_agencies(config: GatewayConfig, agencies: AgencyRegistry,
                        found: _Findings) -> None:
    _check_recipients_known(config, agencies, found, "dxp", config.dxp.recipients)
    _check_recipients_known(config, agencies, found, "push", config.push.recipients)


def _check_recipients_known(config: GatewayConfig, agencies: AgencyRegistry, found: _Findings,
                            section: str, recipients: Iterable[str]) -> None:
    for agency_id in recipients:
        if agency_id not in agencies:
            found.add(f"CONFIG_{section.upper()}_UNKNOWN_AGENCY",
                      f'[{section}.recipients."{agency_id}"] names no agency of '
                      f"{config.agencies_file}")


def _check_egress_keys(config: GatewayConfig, found: _Findings) -> None:
    """The keys and certificates `[dxp]` and `[push]` name, loaded as the gateway loads
    them."""
    try:
        DxpEgress.load(config.dxp)
    except ConfigError as exc:
        found.add(exc.code, exc.message)
    for recipient in config.push.recipients.values():
        try:
            client_context(config.push, recipient)
        except ConfigError as exc:
            found.add(exc.code, exc.message)


def _check_certificate_expiry(config: GatewayConfig, now: datetime, found: _Findings) -> None:
    """An expired certificate of the gateway's own is a problem; one that expires within a
    month, a warning (gateway.home.certificates)."""
    for certificate in own_certificates(config):
        finding = certificate.finding(now)
        if finding is None:
            continue
        code, message = finding
        if code == CERT_EXPIRED:
            found.add(code, message)
        else:
            found.warnings.append(ConfigProblem(code, message))


def _check_limit_agencies(config: GatewayConfig, agencies: AgencyRegistry,
                          found: _Findings) -> None:
    for agency_id in config.limits:
        if agency_id != DEFAULT_LIMITS and agency_id not in agencies:
            found.add("CONFIG_LIMITS_UNKNOWN_AGENCY",
                      f'[limits."{agency_id}"] names no agency of {config.agencies_file}')


def _check_warning_owners(config: GatewayConfig, agencies: AgencyRegistry,
                          found: _Findings) -> None:
    for level, agency_id in config.warnings.level_owners.items():
        if agency_id not in agencies:
            found.add("CONFIG_WARNING_OWNER_UNKNOWN",
                      f"[warnings.level_owners] {level} = {agency_id!r} names no agency of "
                      f"{config.agencies_file}")


def _check_mask_key(path: Path, found: _Findings) -> None:
    key = _read(path)
    if key is not None and len(key) < MIN_MASK_KEY_BYTES:
        found.add("CONFIG_MASK_KEY_SHORT", f"mask_key_file {path} holds {len(key)} bytes; "
                  f"pseudonyms need at least {MIN_MASK_KEY_BYTES}")


# -- numbers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    setting: str
    value: Any
    valid: Callable[[float], bool]
    expected: str


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rules(config: GatewayConfig) -> list[_Rule]:
    trail, http = config.trail, config.http
    rules = [
        _Rule("[gateway] contracts_watch_s", config.contracts_watch_s, lambda v: v >= 0,
              "a number of seconds, 0 or more"),
        _Rule("[trail] seal_every", trail.seal_every, lambda v: _whole(v) and v >= 1,
              "a whole number, 1 or more"),
        _Rule("[trail] seal_interval_ms", trail.seal_interval_ms,
              lambda v: _whole(v) and v >= 1, "a whole number of milliseconds, 1 or more"),
        _Rule("[gateway] session_timeout_ms", config.session_timeout_ms,
              lambda v: _whole(v) and v >= 1, "a whole number of milliseconds, 1 or more"),
        _Rule("[trail] seal_retry_s", trail.seal_retry_s, lambda v: v > 0,
              "a number of seconds above 0"),
        _Rule("[trail] write_retry_s", trail.write_retry_s, lambda v: v > 0,
              "a number of seconds above 0"),
        _Rule("[trail] archive_segment_bytes", trail.archive_segment_bytes,
              lambda v: _whole(v) and v >= 1, "a whole number of bytes, 1 or more"),
        _Rule("[http] retry_after_s", http.retry_after_s, lambda v: _whole(v) and v >= 0,
              "a whole number of seconds, 0 or more"),
    ]
    for agency_id, limits in config.limits.items():
        rules.append(_Rule(f"[limits.{_table(agency_id)}] max_document_bytes",
                           limits.max_document_bytes,
                           lambda v: _whole(v) and 0 < v <= MAX_MESSAGE_BYTES,
                           f"a whole number of bytes from 1 to {MAX_MESSAGE_BYTES} (the "
                           "largest message the gateway sends)"))
    return rules


def _table(agency_id: str) -> str:
    return agency_id if agency_id == DEFAULT_LIMITS else f'"{agency_id}"'


def _check_numbers(config: GatewayConfig, found: _Findings) -> None:
    """The loader checks the gateway's own numbers and the limits' ranges; these are the
    rest, which it takes as given."""
    for rule in _rules(config):
        if not (_number(rule.value) and rule.valid(rule.value)):
            found.add("CONFIG_OUT_OF_RANGE",
                      f"{rule.setting} = {rule.value!r}: expected {rule.expected}")


# -- HTTP address, archive directory -----------------------------------------------------------


def listen_problem(listen: str) -> str | None:
    """Why `host:port` (IPv6 in brackets) is not an address to listen on; None if it is."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        return "expected HOST:PORT, e.g. 127.0.0.1:8080"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        return f"port {port!r} is not a number from 0 to 65535"
    if host.startswith("[") and host.endswith("]"):
        return None if _is_ip(host[1:-1], version=6) else f"{host} is not an IPv6 address"
    if _is_ip(host) or _HOST_NAME.match(host):
        return None
    return f"{host!r} is neither an IP address nor a host name"


def _is_ip(text: str, *, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or address.version == version


def _check_listen(listen: str, found: _Findings) -> None:
    if not listen:
        found.facts.append("http off")
        return
    why = listen_problem(listen)
    if why:
        found.add("CONFIG_HTTP_LISTEN_INVALID", f"[http] listen = {listen!r}: {why}")
    else:
        found.facts.append(f"http {listen}")


def _check_tls_files(config: GatewayConfig, found: _Findings) -> None:
    if not config.http.listen or config.http.tls == "off":
        return
    try:
        server_tls_context(config.http, config.home)
    except GatewayError as exc:
        found.add(exc.code, exc.message)
    else:
        found.facts.append("http mutual TLS")


def directory_problem(directory: Path) -> str | None:
    """Why the gateway could not write its files (trail archive, receipt index) here; None
    if it could (the directory exists and is writable, or its nearest existing parent is)."""
    if directory.exists():
        if not directory.is_dir():
            return "exists and is not a directory"
        return None if os.access(directory, os.W_OK | os.X_OK) else "is not writable"
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be created: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: {parent} is not writable"
    return None


def _check_directory(directory: Path | None, found: _Findings, *, setting: str, what: str,
                     off: str, code: str) -> None:
    """A directory the gateway writes to: named in the summary, or its problem reported."""
    if directory is None:
        found.facts.append(f"{what} {off}")
        return
    why = directory_problem(directory)
    if why:
        found.add(code, f"{setting} {directory} {why}")
    else:
        found.facts.append(f"{what} {directory}")


# -- the broker --------------------------------------------------------------------------------


def _check_kafka(config: GatewayConfig, found: _Findings) -> None:
    """The [kafka] security settings: their files and password can be read, and a broker is
    configured for them (the local broker speaks plain Kafka only)."""
    settings = config.kafka
    if settings.security_protocol == "PLAINTEXT":
        return
    if not config.bootstrap_servers:
        found.add("CONFIG_KAFKA_NEEDS_BROKER",
                  f"[kafka] security_protocol = {settings.security_protocol} needs a configured "
                  "broker; the local broker started when none is configured speaks PLAINTEXT "
                  "only")
        return
    try:
        secured_link(config.bootstrap_servers, settings)
    except ConfigError as exc:
        found.add(exc.code, exc.message)
        return
    sasl = f" {settings.sasl_mechanism} as {settings.sasl_username}" if settings.uses_sasl else ""
    found.facts.append(f"kafka {settings.security_protocol}{sasl}")


async def broker_answer(bootstrap_servers: Broker, topics: Topics, *, timeout_s: float) -> str:
    """What the broker says about the ingress topic; BrokerUnavailable if it does not answer.

    Asks for every topic's partitions: asking for the ingress topic by name would create it
    on a broker that creates topics on first mention, with its default partition count.
    """
    try:
        partitions = await asyncio.wait_for(partitions_of(bootstrap_servers, []), timeout_s)
    except TimeoutError:
        raise BrokerUnavailable(f"{bootstrap_servers} did not answer within "
                                f"{timeout_s:g} s") from None
    ingress = topics.ingress
    count = sum(1 for tp in partitions if tp.topic == ingress)
    return f"{ingress} has {count} partition(s)" if count else f"no {ingress} yet"


def check_broker(config: GatewayConfig, *, timeout_s: float) -> ConfigReport:
    """Whether the configured broker answers; no broker configured is no problem."""
    found = _Findings()
    if not config.bootstrap_servers:
        found.facts.append("no broker configured: portgw serve starts the local broker")
        return found.report()
    try:
        link = secured_link(config.bootstrap_servers, config.kafka)
        answer = asyncio.run(broker_answer(link, Topics.of(config.kafka),
                                           timeout_s=timeout_s))
    except ConfigError:
        return found.report()  # named by check_config
    except GatewayError as exc:
        tls = exc.code == BROKER_TLS_FAILED
        found.add("CONFIG_BROKER_TLS_FAILED" if tls else "CONFIG_BROKER_UNREACHABLE", exc.message)
    else:
        found.facts.append(f"broker {config.bootstrap_servers} answers ({answer})")
    return found.report()


def _broker_named(config: GatewayConfig) -> ConfigReport:
    named = config.bootstrap_servers or "local (started by portgw serve)"
    return ConfigReport((), (f"broker {named}",))


# -- the command -------------------------------------------------------------------------------


def add_config_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    config = commands.add_parser(
        "config", help="check a gateway configuration",
        description="The gateway configuration (gateway.toml, with PORTGW__SECTION__NAME and "
        "PORTGW_BOOTSTRAP_SERVERS from the environment) and the files it names.",
    )
    sub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = sub.add_parser(
        "check", help="name every problem of a configuration, one line each",
        description="Loads the configuration with its environment overrides and checks the "
        "files it names (gateway key and its keyring entry, keyring, agencies, contracts as "
        "`portgw contracts lint` does, mask key), the numbers, the HTTP address and the trail "
        "archive directory; with --connect also asks the broker. Prints each problem as "
        "CODE: message and exits 1 if there is any; else prints `config OK: ...`, exit 0.",
    )
    config_args(check)
    check.add_argument("--connect", action="store_true",
                       help="also check that the configured broker answers")
    check.add_argument("--timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT_S,
                       help="seconds to wait for the broker (default %(default)s)")
    check.set_defaults(run=_check)


def main(argv: Sequence[str] | None = None) -> int:
    """`portgw config ...` on its own (for tests, and `python -m gateway.cli.config`)."""
    parser = argparse.ArgumentParser(prog="portgw")
    add_config_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 after --help
        return int(exc.code or 0)
    return int(args.run(args))


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args)
    except GatewayError as exc:
        print(f"{exc.code}: {exc.message}")
        print(f"{args.config}: cannot be loaded; nothing else checked", file=sys.stderr)
        return EXIT_PROBLEMS
    report = check_config(config).merged(
        check_broker(config, timeout_s=args.timeout) if args.connect else _broker_named(config))
    for problem in report.problems:
        print(problem)
    for warning in report.warnings:
        print(f"warning: {warning}")
    if not report.ok:
        print(f"{len(report.problems)} problem(s) in {args.config}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"config OK: {report.summary}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
