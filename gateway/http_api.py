"""The HTTP ingress: agencies POST documents, get their signed receipts; plus health, readiness,
metrics and the OpenAPI description (gateway/openapi.yaml).

The door refuses what it can without the pipeline (bad headers, unknown sender, too large,
over the rate, broker down), each with a JSON problem body and a stable code; everything else
goes to the `Desk`, which puts it on the ingress topic and waits for its receipt.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote

import structlog
from aiohttp import web

from contracts import AgencyRegistry
from gateway.config import GatewayConfig
from gateway.errors import BrokerUnavailable, GatewayError
from gateway.ingress import Desk, IngressRequest, SubmitOutcome
from gateway.limits import RateLimiter
from gateway.metrics import UNKNOWN, GatewayMetrics
from gateway.receipts import SignedReceipt

log = structlog.get_logger(__name__)

SENDER = "Px-Sender"
FORMAT = "Px-Format"
SIGNATURE = "Px-Signature"
IDEMPOTENCY_KEY = "Idempotency-Key"
DUPLICATE_OF = "Px-Duplicate-Of"
OPENAPI_RESOURCE = "openapi.yaml"

BAD_REQUEST = "HTTP_BAD_REQUEST"
UNKNOWN_SENDER = "AUTH_UNKNOWN_SENDER"
TOO_LARGE = "DOCUMENT_TOO_LARGE"
RATE_LIMITED = "RATE_LIMITED"
BROKER_UNAVAILABLE = BrokerUnavailable.code
SUBMISSION_UNKNOWN = "SUBMISSION_UNKNOWN"
RECEIPT_NOT_READY = "RECEIPT_NOT_READY"
INTERNAL_ERROR = "INTERNAL_ERROR"

_MAX_SENDER = 256
_FORMAT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")
# The key becomes the submission id, which is part of URLs and Kafka keys.
_SUBMISSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpServer:
    runner: web.AppRunner
    host: str
    port: int

    async def close(self) -> None:
        await self.runner.cleanup()


class Refused(Exception):
    """A submission answered at the door; never reaches the desk."""

    def __init__(self, status: int, code: str, message: str, *, agency: str = UNKNOWN,
                 submission_id: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.agency = agency
        self.submission_id = submission_id
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return problem(self.status, self.code, self.message,
                       submission_id=self.submission_id, headers=self.headers)


@dataclass(frozen=True, slots=True)
class SubmissionHeaders:
    sender: str
    format_id: str
    signature: bytes
    submission_id: str


def build_app(desk: Desk, config: GatewayConfig, agencies: AgencyRegistry,
              metrics: GatewayMetrics, *, ready: Callable[[], bool],
              parser_ready: Callable[[], bool] = lambda: True,
              limiter: RateLimiter | None = None) -> web.Application:
    """`ready`: whether the gateway can answer (its receipt book); `parser_ready`: whether a
    parse worker can take work. `limiter` defaults to one over `config.limits_for`; tests
    pass one with a fake clock."""
    api = _Api(desk, config, agencies, metrics, (ready, parser_ready),
               RateLimiter(config.limits_for) if limiter is None else limiter, _load_openapi())
    largest = max(limits.max_document_bytes for limits in config.limits.values())
    # The body is read with its own bound (see read_document); this only keeps aiohttp's
    # own reads from refusing first.
    app = web.Application(client_max_size=largest + _READ_CHUNK,
                          middlewares=[_errors_as_problems])
    app.router.add_post("/v1/submissions", api.submit)
    app.router.add_get("/v1/submissions/{submission_id}", api.submission)
    app.router.add_get("/v1/submissions/{submission_id}/receipt", api.receipt)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    app.router.add_get("/openapi.yaml", api.openapi)
    return app


async def start_http(app: web.Application, listen: str) -> HttpServer:
    """Serves `app` on `listen` ("host:port", "[::1]:port"; port 0 picks a free one)."""
    host, port = parse_listen(listen)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(runner.addresses[0][1])
    log.info("http.listening", host=host, port=bound_port)
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


def outcome_response(outcome: SubmitOutcome) -> web.Response:
    """200 accepted / 422 rejected with the signed receipt, 202 while pending."""
    if outcome.receipt is None:
        return web.json_response(
            {"submission_id": outcome.submission_id, "status": "pending"}, status=202,
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


class _Api:
    __slots__ = ("_agencies", "_config", "_desk", "_limiter", "_metrics", "_openapi", "_ready")

    def __init__(self, desk: Desk, config: GatewayConfig, agencies: AgencyRegistry,
                 metrics: GatewayMetrics,
                 ready: tuple[Callable[[], bool], Callable[[], bool]], limiter: RateLimiter,
                 openapi: bytes) -> None:
        self._desk = desk
        self._config = config
        self._agencies = agencies
        self._metrics = metrics
        self._ready = ready
        self._limiter = limiter
        self._openapi = openapi

    async def submit(self, request: web.Request) -> web.Response:
        try:
            outcome = await self._submit(request)
        except Refused as refused:
            self._metrics.refused_at_door(refused.agency, refused.code)
            _log_submission(request, refused.status, refused.submission_id, refused.code)
            return refused.response()
        response = outcome_response(outcome)
        code = outcome.receipt.receipt.error_code if outcome.receipt else None
        _log_submission(request, response.status, outcome.submission_id, code,
                        duplicate_of=outcome.duplicate_of)
        return response

    async def _submit(self, request: web.Request) -> SubmitOutcome:
        headers = submission_headers(request)
        sender, submission_id = headers.sender, headers.submission_id
        if sender not in self._agencies:
            raise Refused(403, UNKNOWN_SENDER, "the sender is not a registered agency",
                          submission_id=submission_id)
        limits = self._config.limits_for(sender)
        document = await read_document(request, limits.max_document_bytes, sender,
                                       submission_id)
        self._check_rate(sender, submission_id)
        if not self._desk.broker_up():
            raise self._broker_unavailable(sender, submission_id)
        ingress = IngressRequest(submission_id, sender, headers.format_id, document,
                                 headers.signature)
        try:
            return await self._desk.submit(ingress, wait_s=limits.timeout_s)
        except BrokerUnavailable as exc:
            raise self._broker_unavailable(sender, submission_id) from exc

    def _check_rate(self, sender: str, submission_id: str) -> None:
        wait = self._limiter.try_take(sender)
        if wait > 0.0:
            raise Refused(429, RATE_LIMITED, "the sender's rate limit is reached",
                          agency=sender, submission_id=submission_id,
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def _broker_unavailable(self, sender: str, submission_id: str) -> Refused:
        return Refused(503, BROKER_UNAVAILABLE,
                       "the broker cannot be reached; nothing was accepted", agency=sender,
                       submission_id=submission_id,
                       headers={"Retry-After": str(self._config.http.retry_after_s)})

    async def submission(self, request: web.Request) -> web.Response:
        submission_id = request.match_info["submission_id"]
        outcome = await self._desk.status(submission_id)
        response = _unknown(submission_id) if outcome is None else outcome_response(outcome)
        _log_lookup(request, response.status, submission_id)
        return response

    async def receipt(self, request: web.Request) -> web.Response:
        submission_id = request.match_info["submission_id"]
        outcome = await self._desk.status(submission_id)
        if outcome is None:
            response = _unknown(submission_id)
        elif outcome.receipt is None:
            response = problem(404, RECEIPT_NOT_READY, "the submission is not decided yet",
                               submission_id=submission_id)
        else:
            response = web.json_response(outcome.receipt.to_json())
        _log_lookup(request, response.status, submission_id)
        return response

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

    async def openapi(self, _: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type="application/yaml",
                            charset="utf-8")


def submission_headers(request: web.Request) -> SubmissionHeaders:
    """The submission's headers, or Refused 400 saying which one is wrong."""
    sender = request.headers.get(SENDER, "").strip()
    if not sender or len(sender) > _MAX_SENDER or not sender.isprintable():
        raise _bad_request(f"{SENDER} must name the sending agency")
    format_id = request.headers.get(FORMAT, "").strip()
    if not _FORMAT_ID.match(format_id):
        raise _bad_request(f"{FORMAT} must name the document's format (e.g. fal5-xml)")
    signature = _signature(request.headers.get(SIGNATURE, ""))
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is not None and not _SUBMISSION_ID.match(key):
        raise _bad_request(f"{IDEMPOTENCY_KEY} must be 1-128 characters of A-Z a-z 0-9 . _ : -"
                           " starting with a letter or digit")
    return SubmissionHeaders(sender, format_id, signature, key or str(uuid.uuid4()))


def _signature(value: str) -> bytes:
    try:
        signature = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if not signature:
        raise _bad_request(f"{SIGNATURE} must be the base64 of the detached DER SM2 signature")
    return signature


def _bad_request(message: str) -> Refused:
    return Refused(400, BAD_REQUEST, message)


async def read_document(request: web.Request, max_bytes: int, sender: str,
                        submission_id: str) -> bytes:
    """The body, never reading more than `max_bytes` + 1 bytes of it (whatever the
    Content-Length says, or without one); Refused 413 when it is larger."""
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
    except GatewayError as exc:
        log.error("http.failed", path=request.path, code=exc.code, error=exc.message)
        return problem(500, exc.code, exc.message)
    except Exception:
        log.exception("http.failed", path=request.path, code=INTERNAL_ERROR)
        return problem(500, INTERNAL_ERROR, "the gateway failed to answer; try again")


def _load_openapi() -> bytes:
    return resources.files("gateway").joinpath(OPENAPI_RESOURCE).read_bytes()
