"""The HTTP ingress: agencies POST documents, get their signed receipts; plus health, readiness,
metrics and the OpenAPI description (gateway/ingress/openapi.yaml).

The door refuses what it can without the pipeline (bad or repeated headers, unknown sender,
too large, too slow, over the rate, an Idempotency-Key already naming another document, broker
down), each with a JSON problem body and a stable code; everything else goes to the `Desk`,
which puts it on the ingress topic and waits for its receipt.

A submission's id is its Idempotency-Key scoped by its sender (`<sender>~<key>`, see
`submission_id_for`): two agencies using the same key name two submissions, never one.

Who asks: under TLS (`[http] tls = "on"`, the default) the client certificate, bound in the
keyring to an agency, an operator or a TLCP proxy (crypto.client_certs), looked up at every
request so that a binding revoked by a keyring reload is refused from then on. An agency
submits only as itself (Px-Sender must be its agency) and reads only its own submissions; an
operator reads every submission and /metrics; a proxy speaks for the client whose certificate
fingerprint it passes in Px-Client-Cert-SHA256, a header refused from anyone else. With
`tls = "off"` (loopback only) nobody is authenticated: the door is for local use.

Recipients pull their deliveries and acknowledge them here too (`/v1/deliveries`): the door
says who asks, `recipients` (gateway.ingress.deliveries_api) answers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol
from urllib.parse import quote

import structlog
from aiohttp import web

from contracts import AgencyRegistry
from crypto import ClientBinding, ClientRole, certificate_fingerprint, normal_fingerprint
from gateway.clock import utc_now
from gateway.decide.pipeline import DXP_FORMAT
from gateway.errors import BrokerUnavailable, GatewayError
from gateway.home.config import AgencyLimits, GatewayConfig, HttpSettings
from gateway.home.live_keyring import LiveKeyring
from gateway.ingress.desk import Desk, IdempotencyKeyReused, IngressRequest, SubmitOutcome
from gateway.ingress.dxp_answer import transport_receipt
from gateway.ingress.http_guard import (
    ConnectionGuard,
    GuardedSite,
    peer_certificate,
    server_tls_context,
)
from gateway.ingress.limits import RateLimiter
from gateway.observe.metrics import UNKNOWN, GatewayMetrics
from gateway.receipts.receipt import SignedReceipt

log = structlog.get_logger(__name__)

SENDER = "Px-Sender"
FORMAT = "Px-Format"
SIGNATURE = "Px-Signature"
IDEMPOTENCY_KEY = "Idempotency-Key"
DUPLICATE_OF = "Px-Duplicate-Of"
# Set by a TLCP-terminating proxy (and by nobody else): the SHA-256 fingerprint of the
# certificate its client presented.
CLIENT_CERT = "Px-Client-Cert-SHA256"
OPENAPI_RESOURCE = "openapi.yaml"

BAD_REQUEST = "HTTP_BAD_REQUEST"
DUPLICATE_HEADER = "HTTP_DUPLICATE_HEADER"
REQUEST_TIMEOUT = "HTTP_REQUEST_TIMEOUT"
UNKNOWN_SENDER = "AUTH_UNKNOWN_SENDER"
TOO_LARGE = "DOCUMENT_TOO_LARGE"
RATE_LIMITED = "RATE_LIMITED"
KEY_REUSED = IdempotencyKeyReused.code
BROKER_UNAVAILABLE = BrokerUnavailable.code
INGRESS_UNCONFIRMED = "INGRESS_UNCONFIRMED"
SUBMISSION_UNKNOWN = "SUBMISSION_UNKNOWN"
RECEIPT_NOT_READY = "RECEIPT_NOT_READY"
INTERNAL_ERROR = "INTERNAL_ERROR"
CLIENT_UNBOUND = "HTTP_CLIENT_UNBOUND"
SENDER_MISMATCH = "HTTP_SENDER_MISMATCH"
OPERATOR_ONLY = "HTTP_OPERATOR_ONLY"
PROXY_HEADER_REFUSED = "HTTP_PROXY_HEADER_REFUSED"
ADDRESS_LIMIT = "HTTP_ADDRESS_LIMIT"
DELIVERIES_NOT_SERVED = "DELIVERIES_NOT_SERVED"

# Between a submission id's sender and its key; never in a key (see _KEY), so an id splits
# back at its last one whatever the sender's id holds.
SCOPE = "~"
# Headers that say who sent what: each at most once, since a second copy could make the
# door and whatever stands in front of it (a proxy checking the sender) read different ones.
SINGLE_HEADERS = (SENDER, FORMAT, SIGNATURE, IDEMPOTENCY_KEY, CLIENT_CERT)

_MAX_SENDER = 256
_FORMAT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")
# The key becomes part of the submission id, which is part of URLs and Kafka keys.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")
_READ_CHUNK = 64 * 1024
_HTTP_SETTINGS = web.AppKey("http_settings", HttpSettings)


@dataclass(frozen=True, slots=True)
class HttpServer:
    runner: web.AppRunner
    host: str
    port: int

    async def close(self) -> None:
        await self.runner.cleanup()


class Refused(Exception):
    """A submission answered at the door; never reaches the desk. `close`: the connection
    is closed once the answer is sent (what is left of the body is not waited for)."""

    def __init__(self, status: int, code: str, message: str, *, agency: str = UNKNOWN,
                 submission_id: str | None = None,
                 headers: Mapping[str, str] | None = None, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.agency = agency
        self.submission_id = submission_id
        self.headers = dict(headers or {})
        self.close = close

    def response(self) -> web.Response:
        return problem(self.status, self.code, self.message,
                       submission_id=self.submission_id, headers=self.headers)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request. `binding`: its client certificate's holder (None: bound to nobody,
    or no longer); `local`: plain local HTTP, where nobody is authenticated."""

    binding: ClientBinding | None
    local: bool = False

    @property
    def agency(self) -> str | None:
        return self.binding.agency if self.binding is not None else None

    @property
    def operator(self) -> bool:
        return self.binding is not None and self.binding.role is ClientRole.OPERATOR


LOCAL = Caller(None, local=True)


@dataclass(frozen=True, slots=True)
class Door:
    """How the door listens: its TLS context (None: plain) and its per-address guard."""

    tls: Any  # ssl.SSLContext | None
    guard: ConnectionGuard = field(default_factory=lambda: ConnectionGuard(0))


_DOOR = web.AppKey("door", Door)


class Recipients(Protocol):
    """The recipients' routes (gateway.ingress.deliveries_api), given who asks."""

    async def pull(self, request: web.Request, caller: Caller) -> web.Response: ...

    async def acknowledge(self, request: web.Request, caller: Caller) -> web.Response: ...


@dataclass(frozen=True, slots=True)
class SubmissionHeaders:
    sender: str
    format_id: str
    signature: bytes
    submission_id: str


def build_app(desk: Desk, config: GatewayConfig, agencies: AgencyRegistry,
              metrics: GatewayMetrics, *, ready: Callable[[], bool],
              parser_ready: Callable[[], bool] = lambda: True,
              limiter: RateLimiter | None = None,
              keyring: LiveKeyring | None = None,
              recipients: Recipients | None = None) -> web.Application:
    """`ready`: whether the gateway can answer (its receipt book); `parser_ready`: whether a
    parse worker can take work. `limiter` defaults to one over `config.limits_for`; tests
    pass one with a fake clock. `keyring`: where client certificates are bound, required
    under TLS. `recipients`: what serves /v1/deliveries (None: answered 404
    DELIVERIES_NOT_SERVED)."""
    tls = server_tls_context(config.http, config.home)
    if tls is not None and keyring is None:
        raise ValueError("a TLS door needs the keyring its client certificates are bound in")
    probes = _Probes(desk, metrics, (ready, parser_ready))
    api = _Api(desk, config, agencies, metrics, probes,
               RateLimiter(config.limits_for) if limiter is None else limiter, _load_openapi(),
               keyring if tls is not None else None, recipients)
    largest = max(limits.max_document_bytes for limits in config.limits.values())
    # The body is read with its own bound (see read_document); this only keeps aiohttp's
    # own reads from refusing first.
    app = web.Application(client_max_size=largest + _READ_CHUNK,
                          middlewares=[_address_limit(config.http, metrics),
                                       _errors_as_problems])
    app[_HTTP_SETTINGS] = config.http
    app[_DOOR] = Door(tls, ConnectionGuard(
        config.http.max_connections_per_address,
        on_refused=lambda: metrics.refused_at_door(UNKNOWN, ADDRESS_LIMIT)))
    app.router.add_post("/v1/submissions", api.submit)
    app.router.add_post("/v1/dxp", api.submit_dxp)
    app.router.add_get("/v1/submissions/{submission_id}", api.submission)
    app.router.add_get("/v1/submissions/{submission_id}/receipt", api.receipt)
    app.router.add_get("/v1/deliveries", api.deliveries)
    app.router.add_post("/v1/deliveries/acknowledgements", api.acknowledgements)
    app.router.add_get("/healthz", probes.healthz)
    app.router.add_get("/readyz", probes.readyz)
    app.router.add_get("/metrics", api.metrics)
    app.router.add_get("/openapi.yaml", api.openapi)
    return app


def build_operator_app(desk: Desk, metrics: GatewayMetrics, *, ready: Callable[[], bool],
                       parser_ready: Callable[[], bool] = lambda: True) -> web.Application:
    """The operators' door (`[http] operator_listen`, loopback, plain): /metrics and the
    probes, nothing about any submission."""
    probes = _Probes(desk, metrics, (ready, parser_ready))
    app = web.Application(middlewares=[_errors_as_problems])
    app.router.add_get("/healthz", probes.healthz)
    app.router.add_get("/readyz", probes.readyz)
    app.router.add_get("/metrics", probes.metrics)
    return app


async def start_http(app: web.Application, listen: str) -> HttpServer:
    """Serves `app` on `listen` ("host:port", "[::1]:port"; port 0 picks a free one), with
    TLS and the per-address connection limit when `build_app` set them. A connection without
    a complete request for `[http] idle_timeout_s` is closed."""
    host, port = parse_listen(listen)
    settings = app.get(_HTTP_SETTINGS) or HttpSettings()
    door = app.get(_DOOR) or Door(None)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=settings.idle_timeout_s)
    await runner.setup()
    try:
        site = GuardedSite(runner, host, port, ssl_context=door.tls, guard=door.guard)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(runner.addresses[0][1])
    log.info("http.listening", host=host, port=bound_port, tls=door.tls is not None)
    return HttpServer(runner, host, bound_port)


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen address {listen!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def problem(status: int, code: str, message: str, *, submission_id: str | None = None,
            headers: Mapping[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if submission_id is not None:
        body["submission_id"] = submission_id
    return web.json_response(body, status=status, headers=headers)


def submission_id_for(sender: str, key: str) -> str:
    """The id of `sender`'s submission under Idempotency-Key `key`."""
    return f"{sender}{SCOPE}{key}"


def sender_of(submission_id: str) -> str | None:
    """The sender a submission id made by `submission_id_for` names; None for another id
    (one an agency chose on the ingress topic)."""
    sender, scope, _ = submission_id.rpartition(SCOPE)
    return sender if scope else None


def outcome_response(outcome: SubmitOutcome) -> web.Response:
    """200 accepted / 422 rejected with the signed receipt, 202 while pending (saying so when
    the broker has not confirmed taking the document)."""
    if outcome.receipt is None:
        body: dict[str, Any] = {"submission_id": outcome.submission_id, "status": "pending"}
        if outcome.unconfirmed:
            body["code"] = INGRESS_UNCONFIRMED
            body["message"] = ("the broker has not confirmed taking the document; ask at "
                               "Location, or send it again with the same Idempotency-Key")
        return web.json_response(body, status=202,
                                 headers={"Location": submission_path(outcome.submission_id)})
    body = outcome.receipt.to_json()
    body["submission_id"] = outcome.submission_id
    body["status"] = outcome.receipt.receipt.status
    headers: dict[str, str] = {}
    if outcome.duplicate_of is not None:
        body["duplicate_of"] = outcome.duplicate_of
        headers[DUPLICATE_OF] = outcome.duplicate_of
    return web.json_response(body, status=_receipt_status(outcome.receipt), headers=headers)


def submission_path(submission_id: str) -> str:
    return f"/v1/submissions/{quote(submission_id, safe='')}"


def _receipt_status(receipt: SignedReceipt) -> int:
    return 200 if receipt.receipt.accepted else 422


class _Probes:
    """/healthz, /readyz and /metrics: the same on the main door and the operators' one."""

    __slots__ = ("_desk", "_metrics", "_ready")

    def __init__(self, desk: Desk, metrics: GatewayMetrics,
                 ready: tuple[Callable[[], bool], Callable[[], bool]]) -> None:
        self._desk = desk
        self._metrics = metrics
        self._ready = ready

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _: web.Request) -> web.Response:
        gateway, parser = self._ready
        not_ready = [name for name, up in (("gateway", gateway()),
                                           ("broker", self._desk.broker_up()),
                                           ("parser", parser())) if not up]
        if not_ready:
            return web.json_response({"status": "not ready", "not_ready": not_ready},
                                     status=503)
        return web.json_response({"status": "ready"})

    async def metrics(self, _: web.Request) -> web.Response:
        body, content_type = self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})


class _Api:
    __slots__ = ("_agencies", "_config", "_desk", "_keyring", "_limiter", "_metrics",
                 "_openapi", "_probes", "_recipients")

    def __init__(self, desk: Desk, config: GatewayConfig, agencies: AgencyRegistry,
                 metrics: GatewayMetrics, probes: _Probes, limiter: RateLimiter,
                 openapi: bytes, keyring: LiveKeyring | None,
                 recipients: Recipients | None) -> None:
        self._desk = desk
        self._config = config
        self._agencies = agencies
        self._metrics = metrics
        self._probes = probes
        self._limiter = limiter
        self._openapi = openapi
        self._keyring = keyring  # None: plain local HTTP, nobody authenticated
        self._recipients = recipients

    def caller(self, request: web.Request) -> Caller:
        """Who asks (see the module's doc). Refused 403 when a client that is not a proxy
        sends Px-Client-Cert-SHA256."""
        forwarded = _single(request, CLIENT_CERT)
        if self._keyring is None:
            if forwarded is not None:
                raise _proxy_header_refused()
            return LOCAL
        der = peer_certificate(request)
        binding = self._binding(certificate_fingerprint(der)) if der else None
        if binding is None or binding.role is not ClientRole.PROXY:
            if forwarded is not None:
                raise _proxy_header_refused()
            return Caller(binding)
        fingerprint = normal_fingerprint(forwarded or "")
        client = self._binding(fingerprint) if fingerprint else None
        return Caller(client if client is None or client.role is not ClientRole.PROXY
                      else None)

    def _binding(self, fingerprint: str) -> ClientBinding | None:
        assert self._keyring is not None
        return self._keyring.current.client(fingerprint, utc_now())

    def _submitter(self, request: web.Request, sender: str, submission_id: str) -> None:
        """Refused 403 unless the caller is `sender`'s own client (or the door is local)."""
        caller = self.caller(request)
        if caller.local:
            return
        if caller.binding is None:
            raise _unbound(submission_id)
        if caller.agency != sender:
            raise Refused(403, SENDER_MISMATCH, f"{SENDER} must be the agency the client "
                          "certificate is bound to", agency=caller.agency or UNKNOWN,
                          submission_id=submission_id)

    async def submit(self, request: web.Request) -> web.Response:
        return await self._handle(request, submission_headers, outcome_response)

    async def submit_dxp(self, request: web.Request) -> web.Response:
        """A DxpMsg envelope, its sender the caller (or Px-Sender on the local door); answered
        with a DxpRep once the gateway has read the envelope."""
        return await self._handle(request, self._dxp_headers, dxp_response)

    def _dxp_headers(self, request: web.Request) -> SubmissionHeaders:
        """Under TLS the sender is the client certificate's agency: a certificate bound to
        nobody is refused as on /v1/submissions (403), before any header is read."""
        caller = self.caller(request)
        if not caller.local and caller.binding is None:
            raise _unbound(None)
        return dxp_headers(request, caller.agency)

    async def _handle(self, request: web.Request,
                      headers_of: Callable[[web.Request], SubmissionHeaders],
                      respond: Callable[[SubmitOutcome], web.Response]) -> web.Response:
        try:
            outcome = await self._submit(request, headers_of(request))
        except Refused as refused:
            self._metrics.refused_at_door(refused.agency, refused.code)
            _log_submission(request, refused.status, refused.submission_id, refused.code)
            response = refused.response()
            if refused.close:
                await _answer_then_close(request, response)
            return response
        response = respond(outcome)
        code = outcome.receipt.receipt.error_code if outcome.receipt else None
        _log_submission(request, response.status, outcome.submission_id, code,
                        duplicate_of=outcome.duplicate_of)
        return response

    async def _submit(self, request: web.Request, headers: SubmissionHeaders
                      ) -> SubmitOutcome:
        sender, submission_id = headers.sender, headers.submission_id
        self._submitter(request, sender, submission_id)
        if sender not in self._agencies:
            raise Refused(403, UNKNOWN_SENDER, "the sender is not a registered agency",
                          submission_id=submission_id)
        limits = self._config.limits_for(sender)
        document = await read_document(request, limits.max_document_bytes, sender,
                                       submission_id,
                                       timeout_s=self._config.http.body_timeout_s)
        self._check_rate(sender, submission_id)
        ingress = IngressRequest(submission_id, sender, headers.format_id, document,
                                 headers.signature)
        try:
            return await self._desk.submit(ingress, wait_s=limits.timeout_s)
        except BrokerUnavailable as exc:
            raise self._broker_unavailable(sender, submission_id) from exc
        except IdempotencyKeyReused as exc:
            raise Refused(409, KEY_REUSED, "this Idempotency-Key was used for another "
                          "document; send this one under a new key", agency=sender,
                          submission_id=submission_id) from exc

    def _check_rate(self, sender: str, submission_id: str) -> None:
        wait = self._limiter.try_take(sender)
        if wait > 0.0:
            raise Refused(429, RATE_LIMITED, "the sender's rate limit is reached",
                          agency=sender, submission_id=submission_id,
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def _broker_unavailable(self, sender: str, submission_id: str) -> Refused:
        return Refused(503, BROKER_UNAVAILABLE,
                       "the broker cannot take the document now; nothing of it is on the "
                       "ingress topic", agency=sender, submission_id=submission_id,
                       headers={"Retry-After": str(self._config.http.retry_after_s)})

    async def submission(self, request: web.Request) -> web.Response:
        try:
            submission_id, outcome = await self._lookup(request)
        except Refused as refused:
            return refused.response()
        response = _unknown(submission_id) if outcome is None else outcome_response(outcome)
        _log_lookup(request, response.status, submission_id)
        return response

    async def receipt(self, request: web.Request) -> web.Response:
        try:
            submission_id, outcome = await self._lookup(request)
        except Refused as refused:
            return refused.response()
        if outcome is None:
            response = _unknown(submission_id)
        elif outcome.receipt is None:
            response = problem(404, RECEIPT_NOT_READY, "the submission is not decided yet",
                               submission_id=submission_id)
        else:
            response = web.json_response(outcome.receipt.to_json())
        _log_lookup(request, response.status, submission_id)
        return response

    async def _lookup(self, request: web.Request) -> tuple[str, SubmitOutcome | None]:
        """The submission the path names; None when there is none, or when it is not the
        caller's to read: under TLS only its sender's client or an operator reads it; on
        the local door a request naming a sender (Px-Sender) is given only its own."""
        submission_id = request.match_info["submission_id"]
        caller = self.caller(request)
        named = (_single(request, SENDER) or "").strip()
        if not caller.local:
            if caller.binding is None:
                raise _unbound(submission_id)
            named = caller.agency or ""
        outcome = await self._desk.status(submission_id)
        if outcome is None or caller.operator or (caller.local and not named):
            return submission_id, outcome
        owner = (outcome.receipt.receipt.sender if outcome.receipt is not None
                 else sender_of(submission_id))
        # An id an agency chose on the ingress topic names no owner until it is decided:
        # only the local door shows it to anyone.
        mine = owner == named or (owner is None and caller.local)
        return submission_id, outcome if mine else None

    async def metrics(self, request: web.Request) -> web.Response:
        """For operators' certificates only; elsewhere on `[http] operator_listen`."""
        try:
            operator = self.caller(request).operator
        except Refused as refused:
            return refused.response()
        if not operator:
            return problem(403, OPERATOR_ONLY, "the metrics are for operators: present an "
                           "operator's client certificate, or ask on [http] operator_listen")
        return await self._probes.metrics(request)

    async def deliveries(self, request: web.Request) -> web.Response:
        return await self._for_recipients(request, "pull")

    async def acknowledgements(self, request: web.Request) -> web.Response:
        return await self._for_recipients(request, "acknowledge")

    async def _for_recipients(self, request: web.Request, route: str) -> web.Response:
        if self._recipients is None:
            return problem(404, DELIVERIES_NOT_SERVED, "this door serves no deliveries")
        try:
            caller = self.caller(request)
        except Refused as refused:
            return refused.response()
        handle = (self._recipients.pull if route == "pull"
                  else self._recipients.acknowledge)
        return await handle(request, caller)

    async def openapi(self, _: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type="application/yaml",
                            charset="utf-8")


def submission_headers(request: web.Request) -> SubmissionHeaders:
    """The submission's headers, or Refused 400 saying which one is wrong or repeated. The
    submission id is the Idempotency-Key (else a new UUID) scoped by the sender."""
    sender = _checked_sender(request, request.headers.get(SENDER, ""),
                             f"{SENDER} must name the sending agency")
    named = request.headers.get(FORMAT)  # left out: the gateway detects it from the content
    format_id = "" if named is None else named.strip()
    if named is not None and not _FORMAT_ID.match(format_id):
        raise _bad_request(f"{FORMAT} must name the document's format (e.g. fal5-xml), or "
                           "be left out for the gateway to detect it")
    signature = _signature(request.headers.get(SIGNATURE, ""))
    return SubmissionHeaders(sender, format_id, signature, _submission_id(request, sender))


def dxp_headers(request: web.Request, caller_agency: str | None) -> SubmissionHeaders:
    """A DXP envelope's submission: format `dxp`, no detached signature (the envelope's XML
    signature authenticates it), its sender Px-Sender or else the caller's agency."""
    sender = _checked_sender(request, request.headers.get(SENDER) or caller_agency or "",
                             f"{SENDER} must name the sending agency (the door is local)")
    return SubmissionHeaders(sender, DXP_FORMAT, b"", _submission_id(request, sender))


def _checked_sender(request: web.Request, named: str, why: str) -> str:
    """The sender `named`, after the headers that may come once are found once each;
    Refused 400 (`why`) for an empty, overlong or unprintable name."""
    for name in SINGLE_HEADERS:
        _single(request, name)
    sender = named.strip()
    if not sender or len(sender) > _MAX_SENDER or not sender.isprintable():
        raise _bad_request(why)
    return sender


def _submission_id(request: web.Request, sender: str) -> str:
    """The Idempotency-Key (else a new UUID) scoped by the sender."""
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is not None and not _KEY.match(key):
        raise _bad_request(f"{IDEMPOTENCY_KEY} must be 1-128 characters of A-Z a-z 0-9 . _ : -"
                           " starting with a letter or digit")
    return submission_id_for(sender, key or str(uuid.uuid4()))


def dxp_response(outcome: SubmitOutcome) -> web.Response:
    """The DxpRep (200 accepted, 422 refused) once the gateway has read the envelope; else
    the JSON answer of /v1/submissions (pending, or an envelope that could not be read)."""
    if outcome.receipt is None or outcome.trans_info is None:
        return outcome_response(outcome)
    headers = {"Location": submission_path(outcome.submission_id)}
    if outcome.duplicate_of is not None:
        headers[DUPLICATE_OF] = outcome.duplicate_of
    return web.Response(body=transport_receipt(outcome, outcome.trans_info),
                        status=_receipt_status(outcome.receipt),
                        content_type="application/xml", charset="utf-8", headers=headers)


def _single(request: web.Request, name: str) -> str | None:
    """The header's one value (None when absent); Refused 400 when it is sent more than
    once."""
    values = request.headers.getall(name, [])
    if len(values) > 1:
        raise Refused(400, DUPLICATE_HEADER, f"{name} must be sent once")
    return values[0] if values else None


def _signature(value: str) -> bytes:
    try:
        signature = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if not signature:
        raise _bad_request(f"{SIGNATURE} must be the base64 of the detached DER SM2 signature")
    return signature


def _unbound(submission_id: str | None) -> Refused:
    return Refused(403, CLIENT_UNBOUND, "the client certificate is not bound to an agency or "
                   "operator in the keyring, or its binding is not valid now",
                   submission_id=submission_id)


def _proxy_header_refused() -> Refused:
    return Refused(403, PROXY_HEADER_REFUSED, f"{CLIENT_CERT} is accepted only from a client "
                   "whose certificate is bound with role proxy")


def _address_limit(settings: HttpSettings, metrics: GatewayMetrics) -> Any:
    """A middleware refusing (429) a client address past its requests per second before
    anything else looks at the request (no body read, no signature checked)."""
    limits = AgencyLimits(rate_per_s=settings.address_rate_per_s,
                          burst=settings.address_burst)
    limiter = RateLimiter(lambda _: limits)

    @web.middleware
    async def address_limit(request: web.Request, handler: _Handler) -> web.StreamResponse:
        wait = limiter.try_take(request.remote or "")
        if wait > 0.0:
            metrics.refused_at_door(UNKNOWN, ADDRESS_LIMIT)
            return problem(429, ADDRESS_LIMIT, "too many requests from this address",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return await handler(request)

    return address_limit


def _bad_request(message: str) -> Refused:
    return Refused(400, BAD_REQUEST, message)


async def read_document(request: web.Request, max_bytes: int, sender: str,
                        submission_id: str | None, *, timeout_s: float) -> bytes:
    """The body, never reading more than `max_bytes` + 1 bytes of it (whatever the
    Content-Length says, or without one); Refused 413 when it is larger, 408 (closing the
    connection) when it has not all arrived within `timeout_s`, 400 when it ends before its
    declared length."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_bounded(request, max_bytes, sender, submission_id)
    except TimeoutError:
        raise Refused(408, REQUEST_TIMEOUT,
                      f"the body did not arrive within {timeout_s:g} s", agency=sender,
                      submission_id=submission_id, close=True) from None
    except web.RequestPayloadError:
        raise Refused(400, BAD_REQUEST, "the body is malformed or ended early",
                      agency=sender, submission_id=submission_id, close=True) from None


async def _read_bounded(request: web.Request, max_bytes: int, sender: str,
                        submission_id: str | None) -> bytes:
    declared = request.content_length
    if declared is None or declared <= max_bytes:
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = await request.content.read(min(_READ_CHUNK, max_bytes + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
    raise Refused(413, TOO_LARGE, f"the document is larger than {max_bytes} bytes",
                  agency=sender, submission_id=submission_id)


async def _answer_then_close(request: web.Request, response: web.StreamResponse) -> None:
    """Sends the answer, then closes the connection at once: what the client still sends of
    its body is not read (as it would be for a while before closing, otherwise)."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()


def _unknown(submission_id: str) -> web.Response:
    return problem(404, SUBMISSION_UNKNOWN, "no submission has this id",
                   submission_id=submission_id)


def _log_submission(request: web.Request, status: int, submission_id: str | None,
                    code: str | None, *, duplicate_of: str | None = None) -> None:
    # The sender as claimed (bounded), never the document or its signature.
    log.info("http.submission", submission_id=submission_id,
             sender=request.headers.get(SENDER, "")[:_MAX_SENDER], status=status, code=code,
             duplicate_of=duplicate_of)


def _log_lookup(request: web.Request, status: int, submission_id: str) -> None:
    log.info("http.lookup", path=request.path, submission_id=submission_id, status=status)


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_as_problems(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Unexpected failures answered as JSON problems (500) with a code, not as HTML."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except ConnectionError as exc:  # the client went away: nobody to answer, nothing broken
        log.info("http.client_dropped", path=request.path, error=type(exc).__name__)
        return problem(400, BAD_REQUEST, "the connection was lost")
    except GatewayError as exc:
        log.error("http.failed", path=request.path, code=exc.code, error=exc.message)
        return problem(500, exc.code, exc.message)
    except Exception:
        log.exception("http.failed", path=request.path, code=INTERNAL_ERROR)
        return problem(500, INTERNAL_ERROR, "the gateway failed to answer; try again")


def _load_openapi() -> bytes:
    return resources.files("gateway.ingress").joinpath(OPENAPI_RESOURCE).read_bytes()
