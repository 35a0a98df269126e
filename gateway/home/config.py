"""Gateway configuration: one TOML file (paths relative to it) plus environment overrides.

Any setting can be overridden from the environment as `PORTGW__<SECTION>__<NAME>` (for
example `PORTGW__GATEWAY__INGRESS_PARTITIONS=8` or `PORTGW__LIMITS__DEFAULT__RATE_PER_S=50`);
the value is read as a TOML value when it is one (numbers, booleans, quoted strings) and as a
plain string otherwise. `PORTGW_BOOTSTRAP_SERVERS` sets the broker.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.warning import LEVELS
from crypto.xmldsig import CONVENTIONS, KeyKind
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ENV_BOOTSTRAP = "PORTGW_BOOTSTRAP_SERVERS"
ENV_PREFIX = "PORTGW__"
DEFAULT_LIMITS = "default"
# Why an [http] section does not load (`portgw config check` and `portgw serve` say so).
HTTP_TLS_INVALID = "CONFIG_HTTP_TLS_INVALID"
HTTP_TLS_MISSING = "CONFIG_HTTP_TLS_MISSING"
HTTP_PLAIN_NOT_LOCAL = "CONFIG_HTTP_PLAIN_NOT_LOCAL"
HTTP_OPERATOR_NOT_LOCAL = "CONFIG_HTTP_OPERATOR_NOT_LOCAL"
TOPIC_PREFIX_INVALID = "CONFIG_TOPIC_PREFIX_INVALID"
DXP_CONFIG_INVALID = "CONFIG_DXP_INVALID"
PUSH_CONFIG_INVALID = "CONFIG_PUSH_INVALID"
PUSH_FORMATS = ("avro", "json", "native")
# At most this many deliveries a push request: one acknowledgement names at most 1,000
# (gateway.deliveries.acknowledgements.MAX_TAKEN).
MAX_PUSH_BATCH = 1000
# Kafka's own rule for topic names (and its limit of 249 characters), less what the longest
# of the gateway's names needs: an agency id in px.deliver.<agency>.v1 and px.status.<...>.
TOPIC_PREFIX_CHARACTERS = re.compile(r"[A-Za-z0-9._-]*")
TOPIC_PREFIX_MAX_LENGTH = 100

S = TypeVar("S", bound="DataclassInstance")


@dataclass(frozen=True, slots=True)
class TrailSettings:
    seal_every: int = 256
    seal_interval_ms: int = 500
    # How long a batch's seal or archive write is retried before the sealer gives up (the
    # batch stays queued and is tried again at the next seal).
    seal_retry_s: float = 30.0
    # How long a group of trail records is retried while the broker does not take it; after
    # that the chain is recovered from the broker before anything more is written.
    write_retry_s: float = 120.0
    # Sealed batches are also written to files here (relative to the home directory);
    # empty: no archive.
    archive_dir: str = "trail-archive"
    archive_segment_bytes: int = 64 * 1024 * 1024
    # A signed checkpoint (each chain's last seal) goes to px.checkpoint.v1 and the archive
    # every `checkpoint_every_seals` seals, and every `checkpoint_interval_s` in any case.
    checkpoint_every_seals: int = 64
    checkpoint_interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class AgencyLimits:
    """What one agency may send: checked at the HTTP door and again in the pipeline."""

    max_document_bytes: int = 4 * 1024 * 1024
    # Documents per second, with bursts of up to `burst`; 0: no limit. Over HTTP an agency
    # past its rate gets 429; on the ingress topic its documents wait (backpressure). The
    # default leaves room for an agency system's bursts (a vessel's whole set of FAL forms,
    # a backlog sent after an outage) while one agency cannot take the gateway for itself.
    rate_per_s: float = 50.0
    burst: int = 200
    # How long an HTTP submission waits for its receipt before it is answered 202 (accepted
    # for processing; the receipt is then fetched by its id).
    timeout_s: float = 10.0

    def check(self) -> None:
        if self.max_document_bytes <= 0 or self.rate_per_s < 0 or self.burst < 1 \
                or self.timeout_s <= 0:
            raise ConfigError(f"limits out of range: {self}")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    # host:port the HTTP ingress, metrics and health endpoints listen on; empty: no HTTP.
    listen: str = "127.0.0.1:8080"
    # Seconds a 503 answer asks the client to wait before trying again.
    retry_after_s: int = 5
    # Seconds a submission's body may take to arrive once its headers have; past it the
    # door answers 408 and closes the connection (a client dripping its body is cut off).
    body_timeout_s: float = 30.0
    # Seconds a connection may stay open without a request: before its first request's
    # headers are complete, and between requests (keep-alive).
    idle_timeout_s: float = 15.0
    # Seconds the door waits for the broker to take a document: to hand it to the producer,
    # then for the broker's acknowledgement. Not handed over in time: 503 (nothing was put
    # on the ingress topic). Handed over, not acknowledged in time: 202 INGRESS_UNCONFIRMED
    # (the broker may still write it; the status URL tells).
    ingress_timeout_s: float = 5.0
    # "on": TLS with client certificates (mutual TLS), each bound to its agency in the
    # keyring ([[client]]); cert_file, key_file and client_ca_file are then required
    # (relative to the home directory). "off": plain HTTP, accepted on a loopback address
    # only (local use: the demo, tests, a TLCP proxy on the same host is not this case).
    tls: str = "on"
    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""
    # Plain HTTP for operators on a loopback address: /metrics, /healthz, /readyz; empty:
    # none (operators then read /metrics on `listen` with an operator certificate).
    operator_listen: str = "127.0.0.1:9464"
    # Per client address, before anything is authenticated or read: open connections (more
    # are closed at once) and requests per second with bursts (more: 429 HTTP_ADDRESS_LIMIT).
    # 0: no limit.
    max_connections_per_address: int = 64
    address_rate_per_s: float = 100.0
    address_burst: int = 200

    def check(self) -> None:
        try:
            sound = (self.retry_after_s >= 1
                     and min(self.body_timeout_s, self.idle_timeout_s,
                             self.ingress_timeout_s) > 0
                     and min(self.max_connections_per_address, self.address_rate_per_s) >= 0
                     and self.address_burst >= 1)
        except TypeError:  # a string where a number belongs
            sound = False
        if not sound:
            raise ConfigError("[http] retry_after_s must be at least 1, body_timeout_s, "
                              "idle_timeout_s and ingress_timeout_s more than 0, "
                              "max_connections_per_address and address_rate_per_s not "
                              "negative, address_burst at least 1")
        self._check_tls()

    def _check_tls(self) -> None:
        if self.tls not in ("on", "off"):
            raise ConfigError('[http] tls must be "on" or "off"', code=HTTP_TLS_INVALID)
        if self.operator_listen and not is_loopback(self.operator_listen):
            raise ConfigError("[http] operator_listen must be a loopback address (it is "
                              "plain HTTP)", code=HTTP_OPERATOR_NOT_LOCAL)
        if not self.listen:
            return
        if self.tls == "off":
            # A listen address that is not HOST:PORT is named by `portgw config check`.
            if ":" in self.listen and not is_loopback(self.listen):
                raise ConfigError('[http] tls = "off" is accepted only when listen is a '
                                  "loopback address; elsewhere set cert_file, key_file and "
                                  "client_ca_file", code=HTTP_PLAIN_NOT_LOCAL)
        elif not (self.cert_file and self.key_file and self.client_ca_file):
            raise ConfigError("[http] listen needs TLS: set cert_file, key_file and "
                              'client_ca_file, or tls = "off" on a loopback address for '
                              "local use", code=HTTP_TLS_MISSING)


def is_loopback(listen: str) -> bool:
    """Whether `listen` ("host:port", "[::1]:port") is an address only this host reaches."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ParseSettings:
    """The budget of one document's parse (well-formedness, XSD, rules, mapping), which runs
    in a supervised worker process (gateway.decide.ahead): a document that overruns is refused with
    its own code and the worker replaced, so that no document stalls the others."""

    # CPU time one document may use in the worker (a document it waits on, using none, ten
    # times as long on the clock: gateway.decide.ahead).
    time_limit_ms: int = 1000
    # Address space the worker may grow by beyond what it has once started; past it the
    # document being parsed is refused.
    memory_limit_mb: int = 512
    # A worker whose resident memory has grown by more than this is replaced after its
    # answer, so that one large document's memory is given back.
    recycle_above_mb: int = 64

    def check(self) -> None:
        if self.time_limit_ms < 10 or self.memory_limit_mb < 64 or self.recycle_above_mb < 1:
            raise ConfigError("[parsing] time_limit_ms must be at least 10, memory_limit_mb "
                              "at least 64 and recycle_above_mb at least 1")


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """How every Kafka client of the gateway and its tools reaches the broker: TLS (server
    verified against `ssl_ca_file`, else the system's CAs; a client certificate for mutual
    TLS) and SASL. The password is read from a file or an environment variable when the
    clients are made (gateway.kafka.wire.secured_link), never from this file."""

    security_protocol: str = "PLAINTEXT"
    ssl_ca_file: str = ""
    ssl_cert_file: str = ""
    ssl_key_file: str = ""
    ssl_check_hostname: bool = True
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password_file: str = ""
    sasl_password_env: str = ""
    # Put before every topic name and the consumer group (gateway.kafka.names.Topics): empty
    # in production; one per gateway that shares a broker with others (tests: one per test).
    topic_prefix: str = ""

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def check(self) -> None:
        why = self._problem()
        if why:
            raise ConfigError(f"[kafka] {why}", code="CONFIG_KAFKA_INVALID")
        check_topic_prefix(self.topic_prefix)

    def _problem(self) -> str | None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            return f"security_protocol must be one of {', '.join(SECURITY_PROTOCOLS)}"
        if not isinstance(self.ssl_check_hostname, bool):
            return "ssl_check_hostname must be true or false"
        tls_files = (self.ssl_ca_file, self.ssl_cert_file, self.ssl_key_file)
        if any(tls_files) and not self.uses_tls:
            return "ssl_ca_file, ssl_cert_file and ssl_key_file need security_protocol SSL " \
                   "or SASL_SSL"
        if bool(self.ssl_cert_file) != bool(self.ssl_key_file):
            return "ssl_cert_file and ssl_key_file go together (the client's certificate " \
                   "and its key)"
        sasl = (self.sasl_mechanism, self.sasl_username, self.sasl_password_file,
                self.sasl_password_env)
        if not self.uses_sasl:
            return "sasl_* settings need security_protocol SASL_PLAINTEXT or SASL_SSL" \
                if any(sasl) else None
        if self.sasl_mechanism not in SASL_MECHANISMS:
            return f"sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}"
        if not self.sasl_username:
            return "sasl_username is required with SASL"
        if bool(self.sasl_password_file) == bool(self.sasl_password_env):
            return "give exactly one of sasl_password_file and sasl_password_env"
        return None


def check_topic_prefix(prefix: object) -> None:
    """A topic prefix keeps every topic name legal for Kafka: ASCII letters, digits, '.',
    '_' and '-', and short enough that the longest name stays within Kafka's 249."""
    if not isinstance(prefix, str) or len(prefix) > TOPIC_PREFIX_MAX_LENGTH \
            or not TOPIC_PREFIX_CHARACTERS.fullmatch(prefix):
        raise ConfigError(
            f"[kafka] topic_prefix must be at most {TOPIC_PREFIX_MAX_LENGTH} characters of "
            "ASCII letters, digits, '.', '_' and '-'", code=TOPIC_PREFIX_INVALID)


@dataclass(frozen=True, slots=True)
class WarningSettings:
    # The agency owning each early-warning level (I to IV), e.g. the national authority for
    # level I: only it releases a warning at that level. A level not named is owned by the
    # warning's issuer.
    level_owners: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class DxpRecipient:
    """A recipient that takes its deliveries as China E-Port `DxpMsg` envelopes
    (docs/eport.md, "Egress in envelopes"): its DXP node id, the signing convention it
    verifies (crypto.xmldsig.CONVENTIONS) and, when it knows the gateway by another id than
    `[dxp] sender_id`, that id."""

    receiver_id: str
    convention: str = "eport-sm2-sm3"
    sender_id: str = ""


@dataclass(frozen=True, slots=True)
class DxpSettings:
    """The gateway as a China E-Port party: its DXP sender id, the key and certificate it
    signs envelopes' business messages with (SM2; RSA for `rsa-sha1` recipients), relative
    to the home directory, and the recipients that take envelopes (`[dxp.recipients."<agency
    id>"]`). No recipients: nothing is enveloped, and no file is read."""

    sender_id: str = ""
    key_file: str = ""
    certificate_file: str = ""
    rsa_key_file: str = ""
    rsa_certificate_file: str = ""
    recipients: Mapping[str, DxpRecipient] = field(
        default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class PushRecipient:
    """A recipient whose deliveries the gateway POSTs to its HTTPS endpoint
    (gateway.publish.push, docs/service.md "Push"): its server is known by the SHA-256 of its
    certificate (`server_sha256`), by a CA (`ca_file`), or both; the body is the sealed
    delivery (`avro`), a JSON document (`json`) or the payload as its contract made it
    (`native`: the adapter's rendering for an XML form), the proof always along."""

    url: str
    server_sha256: str = ""
    ca_file: str = ""
    format: str = "avro"
    # Seconds a delivery is tried for, from its first attempt; then it is dead-lettered
    # (PUSH_HORIZON_PASSED) and the next one goes.
    retry_horizon_s: float = 3600.0
    # Exponential backoff with full jitter: the n-th wait is uniform in [0, min(max,
    # initial * 2**n)].
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 60.0
    # One request (connect, send, answer) at most this long.
    timeout_s: float = 10.0
    # Requests under way to this recipient at once (one per partition of its topic at most,
    # so that deliveries of one business key go in order).
    max_in_flight: int = 4
    # Deliveries of one partition sent in one request (multipart/mixed) and acknowledged
    # together, at most; 1: one delivery a request, its body the delivery's own.
    batch: int = 1


@dataclass(frozen=True, slots=True)
class PushSettings:
    """`[push]`: the gateway's client certificate and key for every push endpoint (relative
    to the home directory), and the recipients (`[push.recipients."<agency id>"]`)."""

    client_cert_file: str = ""
    client_key_file: str = ""
    recipients: Mapping[str, PushRecipient] = field(
        default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Where the gateway's keys, keyring, agencies and contracts are, and how it runs.

    `bootstrap_servers` empty means: start the local broker.
    """

    home: Path
    gateway_id: str = "px.gateway"
    bootstrap_servers: str = ""
    key_file: Path = Path("gateway.key")
    keyring_file: Path = Path("keyring.toml")
    agencies_file: Path = Path("agencies.toml")
    contracts_dir: Path = Path("contracts")
    mask_key_file: Path = Path("mask.key")
    # Seconds between checks of contracts_dir for changed files (0: reload on SIGHUP only).
    contracts_watch_s: float = 2.0
    ingress_partitions: int = 4
    # Most documents one gateway process works on at once.
    max_in_flight: int = 256
    # How long a fetch waits at the broker for new records. Short, because some brokers
    # (the local one) answer only when it has passed, even when records arrived earlier.
    fetch_wait_ms: int = 5
    # The consumer group's session timeout; the local broker makes a joining member wait
    # about half of it.
    session_timeout_ms: int = 10_000
    # Where each process keeps its index of the receipt topic (gateway.receipts.index),
    # relative to the home directory; empty: in memory, and every start reads the whole topic.
    receipt_index_dir: str = "receipt-index"
    trail: TrailSettings = field(default_factory=TrailSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    parsing: ParseSettings = field(default_factory=ParseSettings)
    warnings: WarningSettings = field(default_factory=WarningSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    dxp: DxpSettings = field(default_factory=DxpSettings)
    push: PushSettings = field(default_factory=PushSettings)
    limits: Mapping[str, AgencyLimits] = field(
        default_factory=lambda: MappingProxyType({DEFAULT_LIMITS: AgencyLimits()}))
    # The file it was read from (`load`), which the console's jobs run `portgw` with.
    file: Path | None = None

    @classmethod
    def load(cls, path: Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
        env = os.environ if env is None else env
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        data = with_env_overrides(data, env)
        config = replace(cls.from_mapping(data, home=path.parent.resolve()),
                         file=path.resolve())
        if env.get(ENV_BOOTSTRAP):
            config = replace(config, bootstrap_servers=env[ENV_BOOTSTRAP])
        return config

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, home: Path) -> GatewayConfig:
        unknown_sections = set(data) - {"gateway", "trail", "http", "limits", "warnings",
                                        "parsing", "kafka", "dxp", "push"}
        if unknown_sections:
            raise ConfigError(f"unknown sections: {', '.join(sorted(unknown_sections))}")
        section = dict(data.get("gateway", {}))
        paths = ("key_file", "keyring_file", "agencies_file", "contracts_dir", "mask_key_file")
        numbers = {"ingress_partitions": int, "contracts_watch_s": float, "max_in_flight": int,
                   "fetch_wait_ms": int, "session_timeout_ms": int}
        unknown = set(section) - {"id", "bootstrap_servers", "receipt_index_dir", *paths,
                                  *numbers}
        if unknown:
            raise ConfigError(f"unknown [gateway] settings: {', '.join(sorted(unknown))}")
        # Path settings; Any because mypy matches a **dict against every keyword of cls.
        given_paths: dict[str, Any] = {name: home / str(section[name]) for name in paths
                                       if name in section}
        try:
            config = cls(
                home=home,
                gateway_id=str(section.get("id", "px.gateway")),
                bootstrap_servers=str(section.get("bootstrap_servers", "")),
                receipt_index_dir=str(section.get("receipt_index_dir", "receipt-index")),
                trail=_settings(TrailSettings, data.get("trail", {}), "trail"),
                http=_settings(HttpSettings, data.get("http", {}), "http"),
                parsing=_settings(ParseSettings, data.get("parsing", {}), "parsing"),
                limits=_limits(data.get("limits", {})),
                warnings=_warnings(data.get("warnings", {})),
                kafka=_kafka(data.get("kafka", {}), home),
                dxp=_dxp(data.get("dxp", {}), home),
                push=_push(data.get("push", {}), home),
                **given_paths,
                **{name: kind(section[name]) for name, kind in numbers.items()
                   if name in section},
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad setting: {exc}") from exc
        if config.ingress_partitions < 1 or config.max_in_flight < 1 or config.fetch_wait_ms < 0:
            raise ConfigError("ingress_partitions and max_in_flight must be at least 1, "
                              "fetch_wait_ms not negative")
        config.parsing.check()
        config.http.check()
        return config.resolved()

    def resolved(self) -> GatewayConfig:
        """Relative paths made relative to the home directory."""
        return replace(
            self,
            key_file=self.home / self.key_file,
            keyring_file=self.home / self.keyring_file,
            agencies_file=self.home / self.agencies_file,
            contracts_dir=self.home / self.contracts_dir,
            mask_key_file=self.home / self.mask_key_file,
        )

    @property
    def archive_dir(self) -> Path | None:
        return self.home / self.trail.archive_dir if self.trail.archive_dir else None

    @property
    def receipt_index_path(self) -> Path | None:
        return self.home / self.receipt_index_dir if self.receipt_index_dir else None

    def limits_for(self, agency_id: str) -> AgencyLimits:
        return self.limits.get(agency_id) or self.limits[DEFAULT_LIMITS]


def _settings(kind: type[S], values: Any, name: str) -> S:
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name for f in fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown [{name}] settings: {', '.join(sorted(unknown))}")
    return kind(**values)


def _limits(values: Any) -> Mapping[str, AgencyLimits]:
    """`[limits.default]` for every agency, `[limits."<agency id>"]` for one; an agency's
    table starts from the default one."""
    if not isinstance(values, Mapping):
        raise ConfigError("[limits] must be a table of tables")
    default = _settings(AgencyLimits, values.get(DEFAULT_LIMITS, {}), "limits.default")
    limits = {DEFAULT_LIMITS: default}
    for agency, table in values.items():
        if agency != DEFAULT_LIMITS:
            own = _settings(AgencyLimits, table, f'limits."{agency}"')
            limits[agency] = replace(default, **{f.name: getattr(own, f.name)
                                                 for f in fields(AgencyLimits)
                                                 if f.name in table})
    for agency_limits in limits.values():
        agency_limits.check()
    return MappingProxyType(limits)


def _kafka(values: Any, home: Path) -> KafkaSettings:
    """`[kafka]`, its files made relative to the home directory."""
    if isinstance(values, Mapping) and "sasl_password" in values:
        raise ConfigError("[kafka] sasl_password is not read from the configuration: name a "
                          "file (sasl_password_file) or an environment variable "
                          "(sasl_password_env) holding it", code="CONFIG_KAFKA_INVALID")
    settings = _settings(KafkaSettings, values, "kafka")
    settings.check()
    return replace(settings, ssl_ca_file=_under(home, settings.ssl_ca_file),
                   ssl_cert_file=_under(home, settings.ssl_cert_file),
                   ssl_key_file=_under(home, settings.ssl_key_file),
                   sasl_password_file=_under(home, settings.sasl_password_file))


DXP_ID_MAX_LENGTH = 16  # SenderId and ReceiverId: 1 to 16 characters (docs/eport.md)


def _dxp(values: Any, home: Path) -> DxpSettings:
    """`[dxp]` and its `[dxp.recipients."<agency id>"]` tables, files made relative to the
    home directory. A recipient's ids must fit the envelope, its convention be known, and
    the key and certificate it needs be named."""
    if not isinstance(values, Mapping):
        raise ConfigError("[dxp] must be a table")
    tables = values.get("recipients", {})
    if not isinstance(tables, Mapping):
        raise ConfigError("[dxp.recipients] must be a table of tables")
    recipients = {str(agency): _settings(DxpRecipient, table, f'dxp.recipients."{agency}"')
                  for agency, table in tables.items()}
    settings = _settings(DxpSettings, {k: v for k, v in values.items() if k != "recipients"},
                         "dxp")
    for agency, recipient in recipients.items():
        _check_dxp_recipient(agency, recipient, settings)
    return replace(settings, key_file=_under(home, settings.key_file),
                   certificate_file=_under(home, settings.certificate_file),
                   rsa_key_file=_under(home, settings.rsa_key_file),
                   rsa_certificate_file=_under(home, settings.rsa_certificate_file),
                   recipients=MappingProxyType(recipients))


def _check_dxp_recipient(agency: str, recipient: DxpRecipient, settings: DxpSettings) -> None:
    where = f'[dxp.recipients."{agency}"]'
    convention = CONVENTIONS.get(recipient.convention)
    if convention is None:
        raise ConfigError(f"{where} convention must be one of {', '.join(CONVENTIONS)}",
                          code=DXP_CONFIG_INVALID)
    for name, value in (("receiver_id", recipient.receiver_id),
                        ("sender_id", recipient.sender_id or settings.sender_id)):
        if not isinstance(value, str) or not 1 <= len(value) <= DXP_ID_MAX_LENGTH:
            raise ConfigError(f"{where} {name} (or [dxp] sender_id) must be 1 to "
                              f"{DXP_ID_MAX_LENGTH} characters", code=DXP_CONFIG_INVALID)
    rsa = convention.key_kind is KeyKind.RSA
    files = ((settings.rsa_key_file, settings.rsa_certificate_file) if rsa
             else (settings.key_file, settings.certificate_file))
    if not all(files):
        kind = "rsa_key_file and rsa_certificate_file" if rsa else "key_file and certificate_file"
        raise ConfigError(f"{where} signs with {recipient.convention}: [dxp] needs {kind}",
                          code=DXP_CONFIG_INVALID)


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _push(values: Any, home: Path) -> PushSettings:
    """`[push]` and its `[push.recipients."<agency id>"]` tables, files made relative to the
    home directory."""
    if not isinstance(values, Mapping):
        raise ConfigError("[push] must be a table", code=PUSH_CONFIG_INVALID)
    tables = values.get("recipients", {})
    if not isinstance(tables, Mapping):
        raise ConfigError("[push.recipients] must be a table of tables",
                          code=PUSH_CONFIG_INVALID)
    recipients = {}
    for agency, table in tables.items():
        where = f'[push.recipients."{agency}"]'
        recipient = _settings(PushRecipient, table, where.strip("[]"))
        recipient = replace(recipient, server_sha256=recipient.server_sha256.lower()
                            .replace(":", ""), ca_file=_under(home, recipient.ca_file))
        _check_push_recipient(where, recipient)
        recipients[str(agency)] = recipient
    settings = _settings(PushSettings, {k: v for k, v in values.items() if k != "recipients"},
                         "push")
    if recipients and not (settings.client_cert_file and settings.client_key_file):
        raise ConfigError("[push] client_cert_file and client_key_file are required with "
                          "recipients: endpoints know the gateway by its certificate",
                          code=PUSH_CONFIG_INVALID)
    return replace(settings, client_cert_file=_under(home, settings.client_cert_file),
                   client_key_file=_under(home, settings.client_key_file),
                   recipients=MappingProxyType(recipients))


def _check_push_recipient(where: str, recipient: PushRecipient) -> None:
    if not isinstance(recipient.url, str) or not recipient.url.startswith("https://"):
        raise ConfigError(f"{where} url must be an https:// URL", code=PUSH_CONFIG_INVALID)
    if not (recipient.server_sha256 or recipient.ca_file):
        raise ConfigError(f"{where} needs server_sha256 (the endpoint's certificate pinned) "
                          "or ca_file (its certificate validated), or both",
                          code=PUSH_CONFIG_INVALID)
    if recipient.server_sha256 and not SHA256_HEX.fullmatch(recipient.server_sha256):
        raise ConfigError(f"{where} server_sha256 must be 64 hexadecimal digits",
                          code=PUSH_CONFIG_INVALID)
    if recipient.format not in PUSH_FORMATS:
        raise ConfigError(f"{where} format must be one of {', '.join(PUSH_FORMATS)}",
                          code=PUSH_CONFIG_INVALID)
    try:
        sound = (min(recipient.retry_horizon_s, recipient.backoff_initial_s,
                     recipient.timeout_s) > 0
                 and recipient.backoff_max_s >= recipient.backoff_initial_s
                 and recipient.max_in_flight >= 1
                 and 1 <= recipient.batch <= MAX_PUSH_BATCH)
    except TypeError:  # a string where a number belongs
        sound = False
    if not sound:
        raise ConfigError(f"{where} retry_horizon_s, backoff_initial_s and timeout_s must be "
                          "more than 0, backoff_max_s at least backoff_initial_s, "
                          f"max_in_flight at least 1, batch from 1 to {MAX_PUSH_BATCH}",
                          code=PUSH_CONFIG_INVALID)


def _under(home: Path, name: str) -> str:
    return str(home / name) if name else ""


def _warnings(values: Any) -> WarningSettings:
    """`[warnings.level_owners]`: level = agency id. Levels are read in upper case, so that
    `PORTGW__WARNINGS__LEVEL_OWNERS__II=...` names level II."""
    settings = _settings(WarningSettings, values, "warnings")
    owners = settings.level_owners
    if not isinstance(owners, Mapping):
        raise ConfigError("[warnings] level_owners must be a table")
    upper = {str(level).upper(): owner for level, owner in owners.items()}
    wrong = sorted(set(upper) - set(LEVELS))
    if wrong:
        raise ConfigError(f"[warnings.level_owners]: unknown levels {', '.join(wrong)}; "
                          f"the levels are {', '.join(LEVELS)}")
    if not all(isinstance(owner, str) and owner for owner in upper.values()):
        raise ConfigError("[warnings.level_owners]: each owner is an agency id")
    return WarningSettings(level_owners=MappingProxyType(upper))


def with_env_overrides(data: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The TOML data with every `PORTGW__SECTION__[TABLE__]NAME` variable applied."""
    merged: dict[str, Any] = copy.deepcopy(dict(data))
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
        if len(path) < 2 or not all(path):
            raise ConfigError(f"{name}: expected {ENV_PREFIX}<SECTION>__<NAME>")
        table = merged
        for part in path[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{name}: {part} is not a table")
        table[path[-1]] = _env_value(raw)
    return merged


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
