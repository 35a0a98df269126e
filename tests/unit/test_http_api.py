from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from structlog.testing import capture_logs

from contracts import AgencyRegistry
from crypto import BatchSigner, SM2PrivateKey
from gateway.errors import BrokerUnavailable, ConfigError
from gateway.home.config import DEFAULT_LIMITS, GatewayConfig
from gateway.home.create import DEMO_AGENCIES
from gateway.ingress.desk import IdempotencyKeyReused, IngressRequest, SubmitOutcome
from gateway.ingress.http_api import (
    Refused,
    build_app,
    build_operator_app,
    read_document,
    start_http,
)
from gateway.ingress.limits import RateLimiter
from gateway.observe.metrics import GatewayMetrics
from gateway.receipts.receipt import ACCEPTED, REJECTED, Receipt, SignedReceipt
from message_formats import AvroSchemas, SafeXmlParser
from message_formats.dxp import DxpTransInfo, parse_dxp_rep

Client = TestClient[web.Request, web.Application]

SCHEMAS = AvroSchemas()
SIGNER = BatchSigner(SM2PrivateKey.generate())
PORT = "cn.port.sh"  # limited: 64-byte documents, 2 at once, then one every 10 s
CUSTOMS = "cn.customs.sh"  # the defaults: 1 KiB documents, the default rate limit
MAX_BYTES = 1024
SIGNATURE = base64.b64encode(b"0E\x02 fake DER signature").decode()
LOCAL = {"http": {"tls": "off"}}  # plain HTTP on loopback: these tests are not about TLS


def signed_receipt(request: IngressRequest, status: str,
                   error_code: str | None = None) -> SignedReceipt:
    receipt = Receipt(
        submission_id=request.submission_id, event_id="01J-event", sender=request.sender,
        format_id=request.format_id, digest_sm3="ab" * 32, status=status,
        time=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
        recipients=(CUSTOMS,) if status == ACCEPTED else (), document_type="fal1",
        error_code=error_code, error_message="bad" if error_code else None)
    body = SCHEMAS.encode_body("px.gateway.Receipt", receipt.to_avro())
    return SignedReceipt.of_batch([receipt], [body], SIGNER.sign([body]))[0]


class FakeDesk:
    """Decides by the document's first word: accept, reject, pending, unconfirmed (not
    known to be on the ingress topic), duplicate. A submission id sent again answers as the
    first time for the same document, IdempotencyKeyReused for another one."""

    def __init__(self) -> None:
        self.up = True
        self.failing = False
        self.outcomes: dict[str, SubmitOutcome] = {}
        self.requests: list[tuple[IngressRequest, float]] = []

    async def submit(self, request: IngressRequest, *, wait_s: float) -> SubmitOutcome:
        if self.failing or not self.up:
            raise BrokerUnavailable("no broker")
        known = self.outcomes.get(request.submission_id)
        if known is not None:
            first, _ = next((r, w) for r, w in self.requests
                            if r.submission_id == request.submission_id)
            if (first.sender, first.format_id, first.document) != (
                    request.sender, request.format_id, request.document):
                raise IdempotencyKeyReused("another document")
            return known
        self.requests.append((request, wait_s))
        word = request.document.split(b" ", 1)[0]
        outcome = SubmitOutcome(request.submission_id, unconfirmed=word == b"unconfirmed")
        if word in (b"accept", b"duplicate"):
            outcome = SubmitOutcome(request.submission_id, signed_receipt(request, ACCEPTED),
                                    duplicate_of="first-id" if word == b"duplicate" else None)
        elif word == b"reject":
            outcome = SubmitOutcome(request.submission_id,
                                    signed_receipt(request, REJECTED, "XSD_INVALID"))
        self.outcomes[request.submission_id] = outcome
        return outcome

    def decide(self, submission_id: str) -> None:
        request, _ = next((r, w) for r, w in self.requests if r.submission_id == submission_id)
        self.outcomes[submission_id] = SubmitOutcome(submission_id,
                                                     signed_receipt(request, ACCEPTED))

    async def status(self, submission_id: str) -> SubmitOutcome | None:
        return self.outcomes.get(submission_id)

    def broker_up(self) -> bool:
        return self.up


class FrozenClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Gateway:
    desk: FakeDesk
    config: GatewayConfig
    metrics: GatewayMetrics
    clock: FrozenClock
    limiter: RateLimiter
    ready: list[bool]

    def app(self) -> web.Application:
        """A new application over the same desk, metrics and limiter (an aiohttp application
        runs on one event loop only)."""
        return build_app(self.desk, self.config, AgencyRegistry(DEMO_AGENCIES), self.metrics,
                         ready=lambda: self.ready[0], limiter=self.limiter)


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    config = GatewayConfig.from_mapping({
        "http": {"listen": "127.0.0.1:0", "retry_after_s": 7, "tls": "off"},
        "limits": {"default": {"max_document_bytes": MAX_BYTES, "timeout_s": 2.5},
                   PORT: {"max_document_bytes": 64, "rate_per_s": 0.1, "burst": 2}},
    }, home=tmp_path)
    clock = FrozenClock()
    return Gateway(FakeDesk(), config, GatewayMetrics(), clock,
                   RateLimiter(config.limits_for, clock=clock), [True])


def with_client(gateway: Gateway, body: Callable[[Client], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with TestClient(TestServer(gateway.app())) as client:
            return await body(client)

    return asyncio.run(run())


def headers(sender: str = CUSTOMS, **extra: str) -> dict[str, str]:
    return {"Px-Sender": sender, "Px-Format": "fal1-xml", "Px-Signature": SIGNATURE, **extra}


def scoped(key: str, sender: str = CUSTOMS) -> str:
    """The submission id the door makes of a sender's Idempotency-Key."""
    return f"{sender}~{key}"


async def post(client: Client, data: Any = b"accept <doc/>",
               **kwargs: str) -> tuple[int, dict[str, Any], Any]:
    response = await client.post("/v1/submissions", data=data, headers=headers(**kwargs))
    return response.status, await response.json(), response.headers


def refusals(gateway: Gateway, agency: str, code: str) -> float | None:
    return gateway.metrics.registry.get_sample_value(
        "portgw_door_refusals_total", {"agency": agency, "code": code})


def test_an_accepted_document_is_answered_200_with_its_signed_receipt(gateway: Gateway) -> None:
    status, body, _ = with_client(gateway, lambda c: post(c, **{"Idempotency-Key": "k-1"}))
    assert status == 200
    assert body["submission_id"] == "cn.customs.sh~k-1"
    assert body["status"] == "accepted"
    assert body["receipt"]["recipients"] == [CUSTOMS]
    assert body["receipt"]["time"] == "2026-03-01T08:00:00+00:00"
    signed = base64.b64decode(body["signature"]["signed_receipt"])
    assert SCHEMAS.decode_body("px.gateway.Receipt", signed)["submission_id"] == scoped("k-1")
    assert "duplicate_of" not in body
    request, wait_s = gateway.desk.requests[0]
    assert request == IngressRequest(scoped("k-1"), CUSTOMS, "fal1-xml", b"accept <doc/>",
                                     base64.b64decode(SIGNATURE))
    assert wait_s == 2.5


def test_without_an_idempotency_key_the_gateway_makes_the_submission_id(
        gateway: Gateway) -> None:
    async def twice(client: Client) -> list[str]:
        return [(await post(client))[1]["submission_id"] for _ in range(2)]

    first, second = with_client(gateway, twice)
    assert first != second
    for made in (first, second):
        sender, _, key = made.partition("~")
        assert sender == CUSTOMS
        assert len(key) == 36


def test_a_rejected_document_is_answered_422_with_the_code(gateway: Gateway) -> None:
    status, body, _ = with_client(gateway, lambda c: post(c, b"reject <doc/>"))
    assert status == 422
    assert body["status"] == "rejected"
    assert body["receipt"]["error_code"] == "XSD_INVALID"


def test_a_duplicate_names_the_first_submission(gateway: Gateway) -> None:
    status, body, response_headers = with_client(gateway, lambda c: post(c, b"duplicate x"))
    assert status == 200
    assert body["duplicate_of"] == "first-id"
    assert response_headers["Px-Duplicate-Of"] == "first-id"


def test_a_pending_submission_is_answered_202_then_found_by_its_id(gateway: Gateway) -> None:
    async def run(client: Client) -> None:
        response = await client.post("/v1/submissions", data=b"pending <doc/>",
                                     headers=headers(**{"Idempotency-Key": "slow.1"}))
        assert response.status == 202
        assert response.headers["Location"] == "/v1/submissions/cn.customs.sh~slow.1"
        assert await response.json() == {"submission_id": scoped("slow.1"),
                                         "status": "pending"}
        again = await client.get(response.headers["Location"])
        assert again.status == 202
        not_ready = await client.get(response.headers["Location"] + "/receipt")
        assert not_ready.status == 404
        assert (await not_ready.json())["code"] == "RECEIPT_NOT_READY"
        gateway.desk.decide(scoped("slow.1"))
        decided = await client.get(response.headers["Location"])
        assert decided.status == 200
        assert (await decided.json())["receipt"]["status"] == "accepted"
        receipt = await client.get(response.headers["Location"] + "/receipt")
        assert receipt.status == 200
        assert set(await receipt.json()) == {"receipt", "signature"}

    with_client(gateway, run)


def test_a_rejected_submission_is_422_by_id_and_its_receipt_200(gateway: Gateway) -> None:
    async def run(client: Client) -> tuple[int, int]:
        await post(client, b"reject x", **{"Idempotency-Key": "r"})
        return ((await client.get(f"/v1/submissions/{scoped('r')}")).status,
                (await client.get(f"/v1/submissions/{scoped('r')}/receipt")).status)

    assert with_client(gateway, run) == (422, 200)


def test_unknown_submissions_are_404(gateway: Gateway) -> None:
    async def run(client: Client) -> list[tuple[int, Any]]:
        answers = []
        for path in ("/v1/submissions/nope", "/v1/submissions/nope/receipt"):
            response = await client.get(path)
            answers.append((response.status, await response.json()))
        return answers

    for status, body in with_client(gateway, run):
        assert status == 404
        assert body["code"] == "SUBMISSION_UNKNOWN"
        assert body["submission_id"] == "nope"


@pytest.mark.parametrize("bad", [
    {"Px-Sender": ""},
    {"Px-Format": ""},
    {"Px-Format": "fal1 xml"},
    {"Px-Signature": ""},
    {"Px-Signature": "not base64!"},
    {"Idempotency-Key": "../etc"},
    {"Idempotency-Key": "x" * 200},
])
def test_missing_or_malformed_headers_are_400(gateway: Gateway, bad: dict[str, str]) -> None:
    async def run(client: Client) -> tuple[int, Any]:
        response = await client.post("/v1/submissions", data=b"accept",
                                     headers={**headers(), **bad})
        return response.status, await response.json()

    status, body = with_client(gateway, run)
    assert status == 400
    assert body["code"] == "HTTP_BAD_REQUEST"
    assert gateway.desk.requests == []
    assert refusals(gateway, "unknown", "HTTP_BAD_REQUEST") == 1


def test_an_absent_header_is_400(gateway: Gateway) -> None:
    async def run(client: Client) -> int:
        response = await client.post("/v1/submissions", data=b"accept",
                                     headers={"Px-Sender": CUSTOMS, "Px-Format": "fal1-xml"})
        return response.status

    assert with_client(gateway, run) == 400


def test_an_unknown_sender_is_403_and_counted_without_its_claimed_id(gateway: Gateway) -> None:
    status, body, _ = with_client(gateway, lambda c: post(c, sender="cn.nobody.xx"))
    assert status == 403
    assert body["code"] == "AUTH_UNKNOWN_SENDER"
    assert refusals(gateway, "unknown", "AUTH_UNKNOWN_SENDER") == 1
    assert gateway.desk.requests == []


def test_a_document_at_the_limit_passes_one_byte_more_is_413(gateway: Gateway) -> None:
    at_limit = b"accept " + b"x" * (MAX_BYTES - 7)

    async def run(client: Client) -> tuple[int, int]:
        return (await post(client, at_limit))[0], (await post(client, at_limit + b"x"))[0]

    assert with_client(gateway, run) == (200, 413)
    assert refusals(gateway, CUSTOMS, "DOCUMENT_TOO_LARGE") == 1


def test_a_large_chunked_body_without_content_length_is_413(gateway: Gateway) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"accept "
        for _ in range(64):
            yield b"x" * 512

    async def run(client: Client) -> tuple[int, Any, str]:
        response = await client.post("/v1/submissions", data=chunks(), headers=headers())
        return (response.status, await response.json(),
                response.request_info.headers.get("Transfer-Encoding", ""))

    status, body, transfer_encoding = with_client(gateway, run)
    assert transfer_encoding == "chunked"
    assert status == 413
    assert body["code"] == "DOCUMENT_TOO_LARGE"
    assert gateway.desk.requests == []


def test_a_body_over_the_limit_is_read_no_further_than_one_byte_past_it() -> None:
    async def run() -> int:
        stream = StreamReader(mock.Mock(_reading_paused=False), 2**16,
                              loop=asyncio.get_running_loop())
        stream.feed_data(b"x" * 100_000)
        stream.feed_eof()
        request = make_mocked_request("POST", "/v1/submissions", payload=stream)
        with pytest.raises(Refused) as refused:
            await read_document(request, 1000, CUSTOMS, "id", timeout_s=30.0)
        assert refused.value.status == 413
        return len(await stream.read())

    assert asyncio.run(run()) == 100_000 - 1001


def test_a_small_chunked_body_is_read_whole(gateway: Gateway) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"accept ", b"<doc>", b"</doc>"):
            yield part

    status, _, _ = with_client(gateway, lambda c: post(c, chunks()))
    assert status == 200
    assert gateway.desk.requests[0][0].document == b"accept <doc></doc>"


def test_the_limits_are_the_senders_own(gateway: Gateway) -> None:
    status, body, _ = with_client(gateway, lambda c: post(c, b"accept " + b"x" * 60,
                                                          sender=PORT))
    assert status == 413
    assert "64 bytes" in body["message"]


def test_past_its_rate_a_sender_gets_429_with_retry_after(gateway: Gateway) -> None:
    async def run(client: Client) -> list[tuple[int, Any, Any]]:
        answers = [await post(client, sender=PORT) for _ in range(3)]
        gateway.clock.now += 9.5
        answers.append(await post(client, sender=PORT))
        answers.append(await post(client, sender=CUSTOMS))  # other senders are not held up
        gateway.clock.now += 0.5
        answers.append(await post(client, sender=PORT))
        return answers

    answers = with_client(gateway, run)
    assert [status for status, _, _ in answers] == [200, 200, 429, 429, 200, 200]
    assert answers[2][1]["code"] == "RATE_LIMITED"
    assert answers[2][2]["Retry-After"] == "10"
    assert answers[3][2]["Retry-After"] == "1"
    assert refusals(gateway, PORT, "RATE_LIMITED") == 2


def test_broker_down_is_503_with_retry_after(gateway: Gateway) -> None:
    gateway.desk.up = False
    status, body, response_headers = with_client(gateway, lambda c: post(c))
    assert status == 503
    assert body["code"] == "BROKER_UNAVAILABLE"
    assert response_headers["Retry-After"] == "7"
    assert gateway.desk.requests == []


def test_a_broker_failing_the_submit_is_503_with_retry_after(gateway: Gateway) -> None:
    gateway.desk.failing = True
    status, body, response_headers = with_client(
        gateway, lambda c: post(c, **{"Idempotency-Key": "k"}))
    assert status == 503
    assert body == {"code": "BROKER_UNAVAILABLE", "submission_id": scoped("k"),
                    "message": body["message"]}
    assert response_headers["Retry-After"] == "7"
    assert refusals(gateway, CUSTOMS, "BROKER_UNAVAILABLE") == 1


def test_an_unexpected_failure_is_a_json_500(gateway: Gateway) -> None:
    async def broken(_: str) -> SubmitOutcome | None:
        raise RuntimeError("boom")

    gateway.desk.status = broken  # type: ignore[method-assign,assignment]  # a failing status for this test

    async def run(client: Client) -> tuple[int, Any]:
        response = await client.get("/v1/submissions/x")
        return response.status, await response.json()

    status, body = with_client(gateway, run)
    assert status == 500
    assert body["code"] == "INTERNAL_ERROR"
    assert "boom" not in body["message"]


@pytest.mark.usefixtures("info_logs")
def test_requests_are_logged_without_document_or_signature(gateway: Gateway) -> None:
    with capture_logs() as logs:
        with_client(gateway, lambda c: post(c, b"reject secret-document",
                                            **{"Idempotency-Key": "logged"}))
    entry = next(e for e in logs if e["event"] == "http.submission")
    assert entry["submission_id"] == scoped("logged")
    assert entry["sender"] == CUSTOMS
    assert entry["status"] == 422
    assert entry["code"] == "XSD_INVALID"
    assert "secret-document" not in repr(logs)
    assert SIGNATURE not in repr(logs)


def test_health_and_readiness(gateway: Gateway) -> None:
    async def probe(client: Client) -> list[tuple[int, Any]]:
        answers = []
        for path in ("/healthz", "/readyz"):
            response = await client.get(path)
            answers.append((response.status, await response.json()))
        return answers

    assert with_client(gateway, probe) == [(200, {"status": "ok"}),
                                            (200, {"status": "ready"})]
    gateway.ready[0] = False
    gateway.desk.up = False
    assert with_client(gateway, probe)[1] == (
        503, {"status": "not ready", "not_ready": ["gateway", "broker"]})


def test_metrics_are_served_as_prometheus_text_on_the_operators_door(gateway: Gateway) -> None:
    async def run(client: Client) -> tuple[int, str, str, str]:
        await post(client, sender="cn.nobody.xx")
        on_main = await client.get("/metrics")
        operators = build_operator_app(gateway.desk, gateway.metrics, ready=lambda: True)
        async with TestClient(TestServer(operators)) as ops:
            response = await ops.get("/metrics")
            return (on_main.status, (await on_main.json())["code"],
                    response.headers["Content-Type"], await response.text())

    main_status, main_code, content_type, text = with_client(gateway, run)
    assert (main_status, main_code) == (403, "HTTP_OPERATOR_ONLY")  # no operator credential
    assert content_type.startswith("text/plain")
    assert 'portgw_door_refusals_total{agency="unknown",code="AUTH_UNKNOWN_SENDER"} 1.0' in text


def test_the_openapi_description_covers_exactly_the_routes(gateway: Gateway) -> None:
    async def run(client: Client) -> tuple[int, str]:
        response = await client.get("/openapi.yaml")
        return response.status, await response.text()

    status, text = with_client(gateway, run)
    assert status == 200
    spec = yaml.safe_load(text)
    assert spec["openapi"].startswith("3.1")
    described = {(path, method.upper()) for path, item in spec["paths"].items()
                 for method in item}
    served = {(route.resource.canonical, route.method) for route in gateway.app().router.routes()
              if route.resource is not None and route.method != "HEAD"}
    assert described == served
    for path, item in spec["paths"].items():
        for operation in item.values():
            assert operation["responses"], path


def test_the_openapi_problem_codes_are_the_ones_answered() -> None:
    spec = yaml.safe_load(Path("gateway/ingress/openapi.yaml").read_text(encoding="utf-8"))
    post_responses = spec["paths"]["/v1/submissions"]["post"]["responses"]
    assert set(post_responses) == {"200", "202", "400", "403", "408", "409", "413", "422",
                                   "429", "500", "503"}


def test_start_http_serves_on_a_free_port_and_stops() -> None:
    config = GatewayConfig.from_mapping(LOCAL, home=Path("."))
    app = build_app(FakeDesk(), config, AgencyRegistry(DEMO_AGENCIES), GatewayMetrics(),
                    ready=lambda: True)

    async def run() -> tuple[int, int]:
        server = await start_http(app, "127.0.0.1:0")
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{server.port}/healthz") as response:
                return server.port, response.status
        finally:
            await server.close()

    port, status = asyncio.run(run())
    assert port > 0
    assert status == 200


@pytest.mark.parametrize("listen", ["8080", "host:", "host:99999"])
def test_a_bad_listen_address_is_refused(listen: str) -> None:
    from gateway.ingress.http_api import parse_listen

    with pytest.raises(ValueError):
        parse_listen(listen)


def test_listen_addresses_parse() -> None:
    from gateway.ingress.http_api import parse_listen

    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen(":9000") == ("0.0.0.0", 9000)


# -- idempotency keys are each sender's own -----------------------------------------------------


def test_one_key_from_two_senders_names_two_submissions_each_with_its_own_receipt(
        gateway: Gateway) -> None:
    async def run(client: Client) -> list[tuple[int, dict[str, Any], Any]]:
        return [await post(client, b"accept port's", sender=PORT, **{"Idempotency-Key": "k"}),
                await post(client, b"accept customs'", sender=CUSTOMS,
                           **{"Idempotency-Key": "k"})]

    (port_status, port_body, _), (customs_status, customs_body, _) = with_client(gateway, run)
    assert (port_status, customs_status) == (200, 200)
    assert port_body["submission_id"] == scoped("k", PORT)
    assert customs_body["submission_id"] == scoped("k", CUSTOMS)
    assert port_body["receipt"]["sender"] == PORT
    assert customs_body["receipt"]["sender"] == CUSTOMS
    assert [(r.submission_id, r.sender, r.document) for r, _ in gateway.desk.requests] == [
        (scoped("k", PORT), PORT, b"accept port's"),
        (scoped("k", CUSTOMS), CUSTOMS, b"accept customs'")]


def test_a_key_sent_again_with_another_document_is_409_and_never_the_first_receipt(
        gateway: Gateway) -> None:
    async def run(client: Client) -> list[tuple[int, dict[str, Any], Any]]:
        return [await post(client, b"accept first", **{"Idempotency-Key": "k-9"}),
                await post(client, b"accept second", **{"Idempotency-Key": "k-9"}),
                await post(client, b"accept first", **{"Idempotency-Key": "k-9"})]

    first, other, again = with_client(gateway, run)
    assert first[0] == 200
    assert other[0] == 409
    assert other[1] == {"code": "IDEMPOTENCY_KEY_REUSED", "message": other[1]["message"],
                        "submission_id": scoped("k-9")}
    assert "receipt" not in other[1]
    assert "k-9" not in other[1]["message"]
    assert refusals(gateway, CUSTOMS, "IDEMPOTENCY_KEY_REUSED") == 1
    assert (again[0], again[1]) == (first[0], first[1])  # the same document: the same answer


def test_a_lookup_naming_another_sender_is_not_given_the_submission(gateway: Gateway) -> None:
    async def run(client: Client) -> dict[tuple[str, str], tuple[int, Any]]:
        await post(client, b"accept mine", sender=PORT, **{"Idempotency-Key": "own"})
        await post(client, b"pending mine", sender=PORT, **{"Idempotency-Key": "slow"})
        answers = {}
        for key in ("own", "slow"):
            for named in (PORT, CUSTOMS, ""):
                path = f"/v1/submissions/{scoped(key, PORT)}"
                response = await client.get(path, headers={"Px-Sender": named} if named
                                            else {})
                answers[(key, named)] = response.status, await response.json()
                receipt = await client.get(path + "/receipt",
                                           headers={"Px-Sender": named} if named else {})
                answers[(key + "/receipt", named)] = receipt.status, await receipt.json()
        return answers

    answers = with_client(gateway, run)
    for key in ("own", "own/receipt", "slow", "slow/receipt"):
        status, body = answers[(key, CUSTOMS)]
        assert (status, body["code"]) == (404, "SUBMISSION_UNKNOWN"), key
    assert answers[("own", PORT)] == answers[("own", "")]
    assert answers[("own", PORT)][0] == 200
    assert answers[("own", PORT)][1]["receipt"]["sender"] == PORT
    assert answers[("own/receipt", PORT)][0] == 200
    assert answers[("slow", PORT)][0] == answers[("slow", "")][0] == 202


# -- headers that say who sent what come once ---------------------------------------------------


@pytest.mark.parametrize(("name", "second"), [
    ("Px-Sender", PORT),
    ("Px-Format", "fal2-xml"),
    ("Px-Signature", base64.b64encode(b"another signature").decode()),
    ("Idempotency-Key", "other-key"),
])
def test_an_identity_header_sent_twice_is_400(gateway: Gateway, name: str,
                                              second: str) -> None:
    sent = [*headers(**{"Idempotency-Key": "k-2"}).items(), (name, second)]

    async def run(client: Client) -> tuple[int, Any]:
        response = await client.post("/v1/submissions", data=b"accept <doc/>", headers=sent)
        return response.status, await response.json()

    status, body = with_client(gateway, run)
    assert status == 400
    assert body["code"] == "HTTP_DUPLICATE_HEADER"
    assert name in body["message"]
    assert second not in body["message"]
    assert gateway.desk.requests == []
    assert refusals(gateway, "unknown", "HTTP_DUPLICATE_HEADER") == 1


def test_a_lookup_naming_two_senders_is_400(gateway: Gateway) -> None:
    async def run(client: Client) -> tuple[int, Any]:
        response = await client.get(f"/v1/submissions/{scoped('x')}",
                                    headers=[("Px-Sender", CUSTOMS), ("Px-Sender", PORT)])
        return response.status, await response.json()

    status, body = with_client(gateway, run)
    assert (status, body["code"]) == (400, "HTTP_DUPLICATE_HEADER")


# -- refusals say only what is certain ----------------------------------------------------------


def test_a_submission_the_broker_did_not_confirm_is_202_with_where_to_ask(
        gateway: Gateway) -> None:
    async def run(client: Client) -> tuple[int, Any, Any, int, Any]:
        response = await client.post("/v1/submissions", data=b"unconfirmed <doc/>",
                                     headers=headers(**{"Idempotency-Key": "u-1"}))
        later = await client.get(response.headers["Location"])
        return (response.status, await response.json(), response.headers, later.status,
                await later.json())

    status, body, response_headers, later_status, later_body = with_client(gateway, run)
    assert status == 202
    assert body["code"] == "INGRESS_UNCONFIRMED"
    assert body["status"] == "pending"
    assert response_headers["Location"] == f"/v1/submissions/{scoped('u-1')}"
    assert "nothing" not in body["message"]
    assert (later_status, later_body) == (202, body)


def test_a_503_does_not_claim_more_than_this_request(gateway: Gateway) -> None:
    gateway.desk.failing = True
    _, body, _ = with_client(gateway, lambda c: post(c))
    assert "nothing was accepted" not in body["message"]


# -- the default rate limit ----------------------------------------------------------------------


def test_by_default_each_agency_has_a_rate_limit_with_room_for_bursts() -> None:
    config = GatewayConfig.from_mapping(LOCAL, home=Path("."))
    limits = config.limits[DEFAULT_LIMITS]
    assert (limits.rate_per_s, limits.burst) == (50.0, 200)
    clock = FrozenClock()
    limiter = RateLimiter(config.limits_for, clock=clock)
    assert [limiter.try_take(CUSTOMS) for _ in range(200)] == [0.0] * 200
    assert limiter.try_take(CUSTOMS) > 0  # past the burst
    assert limiter.try_take(PORT) == 0.0  # another agency's bucket is its own
    clock.now += 1.0
    assert [limiter.try_take(CUSTOMS) for _ in range(50)] == [0.0] * 50


def test_no_limit_is_still_there_for_the_asking() -> None:
    config = GatewayConfig.from_mapping({**LOCAL, "limits": {"default": {"rate_per_s": 0}}},
                                        home=Path("."))
    limiter = RateLimiter(config.limits_for, clock=FrozenClock())
    assert all(limiter.try_take(CUSTOMS) == 0.0 for _ in range(1000))


# -- slow clients --------------------------------------------------------------------------------

SHORT_S = 0.5  # the door's body and idle timeouts in these tests
LIVENESS_S = 15.0  # far beyond them: only a door that never cuts anyone off takes longer


def impatient(gateway: Gateway) -> Gateway:
    """The gateway with a door that waits SHORT_S for bodies and idle connections."""
    http = dataclasses.replace(gateway.config.http, body_timeout_s=SHORT_S,
                               idle_timeout_s=SHORT_S)
    return dataclasses.replace(gateway, config=dataclasses.replace(gateway.config, http=http))


def request_head(length: int, sender: str = CUSTOMS) -> bytes:
    lines = ["POST /v1/submissions HTTP/1.1", "Host: gateway", f"Px-Sender: {sender}",
             "Px-Format: fal1-xml", f"Px-Signature: {SIGNATURE}",
             f"Content-Length: {length}", "", ""]
    return "\r\n".join(lines).encode()


async def drip(writer: asyncio.StreamWriter, data: bytes, every_s: float = 0.05) -> None:
    """Writes `data` a byte at a time; stops quietly once the server has closed."""
    for byte in data:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(every_s)


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def on_socket(gateway: Gateway,
                    talk: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[Any]]
                    ) -> Any:
    """`talk` with the gateway's door served on a real socket, over a raw connection."""
    server = await start_http(gateway.app(), "127.0.0.1:0")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            return await asyncio.wait_for(talk(reader, writer), LIVENESS_S)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    finally:
        await server.close()


def test_a_client_dripping_its_body_is_answered_408_and_cut_off(gateway: Gateway) -> None:
    slow = impatient(gateway)

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        writer.write(request_head(1000) + b"accept ")
        dripping = asyncio.create_task(drip(writer, b"x" * 992))  # never all of it
        try:
            return await until_closed(reader)
        finally:
            dripping.cancel()

    answer = asyncio.run(on_socket(slow, talk))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in head
    assert json.loads(body)["code"] == "HTTP_REQUEST_TIMEOUT"
    assert slow.desk.requests == []
    assert refusals(slow, CUSTOMS, "HTTP_REQUEST_TIMEOUT") == 1


def test_a_client_dripping_its_headers_is_cut_off(gateway: Gateway) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        dripping = asyncio.create_task(drip(writer, request_head(10)[:-2] + b"X-Slow: " +
                                            b"a" * 4000))
        try:
            return await until_closed(reader)
        finally:
            dripping.cancel()

    slow = impatient(gateway)
    assert asyncio.run(on_socket(slow, talk)) == b""  # closed, nothing answered
    assert slow.desk.requests == []


def test_an_idle_connection_is_closed_after_its_last_answer(gateway: Gateway) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        await writer.drain()
        return await until_closed(reader)  # keep-alive, then nothing more is asked

    answer = asyncio.run(on_socket(impatient(gateway), talk))
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"status": "ok"}')


@pytest.mark.usefixtures("info_logs")
def test_a_client_that_goes_away_mid_body_is_one_line_in_the_log(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(request_head(1000) + b"accept <doc>")
        await writer.drain()
        await asyncio.sleep(0.2)  # the door is reading the body
        writer.transport.abort()
        await asyncio.sleep(0.3)  # the door notices

    with capture_logs() as logs:
        asyncio.run(on_socket(gateway, talk))
    dropped = [entry for entry in logs if entry["event"] == "http.client_dropped"]
    assert len(dropped) == 1
    assert dropped[0]["log_level"] in ("info", "warning")
    assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert "exc_info" not in dropped[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # nor aiohttp's
    assert gateway.desk.requests == []


# -- the door's settings -------------------------------------------------------------------------


def test_the_door_timeouts_have_sane_defaults_and_are_checked() -> None:
    http = GatewayConfig.from_mapping(LOCAL, home=Path(".")).http
    assert (http.body_timeout_s, http.idle_timeout_s, http.ingress_timeout_s) == (
        30.0, 15.0, 5.0)
    for setting in ("body_timeout_s", "idle_timeout_s", "ingress_timeout_s"):
        for wrong in (0, -1, "soon"):
            with pytest.raises(ConfigError):
                GatewayConfig.from_mapping({"http": {"tls": "off", setting: wrong}},
                                           home=Path("."))


# -- POST /v1/dxp ------------------------------------------------------------------------------

TRANS = DxpTransInfo("COP-1", CUSTOMS, (PORT,), "2026-03-01T16:00:00.000+08:00", "fal1-xml")


class DxpDesk(FakeDesk):
    """As FakeDesk; a document with the word `readable` was read by the gateway: its
    outcome carries the envelope's TransInfo."""

    async def submit(self, request: IngressRequest, *, wait_s: float) -> SubmitOutcome:
        outcome = await super().submit(request, wait_s=wait_s)
        if outcome.receipt is not None and b"readable" in request.document:
            return dataclasses.replace(outcome, trans_info=TRANS)
        return outcome


async def post_dxp(client: Client, data: bytes, **headers: str) -> tuple[int, str, bytes]:
    response = await client.post("/v1/dxp", data=data, headers=headers)
    return response.status, response.content_type, await response.read()


def test_an_envelope_is_handed_over_as_format_dxp_and_answered_with_a_dxprep(
    gateway: Gateway
) -> None:
    gateway = dataclasses.replace(gateway, desk=DxpDesk())
    answers = with_client(gateway, lambda client: asyncio.gather(*(
        post_dxp(client, body, **{"Px-Sender": CUSTOMS, "Idempotency-Key": key})
        for body, key in ((b"accept readable", "a"), (b"reject readable", "r"),
                          (b"reject", "u")))))
    assert sorted((r.submission_id, r.format_id, r.signature)
                  for r, _ in gateway.desk.requests) == [
        (scoped(key), "dxp", b"") for key in ("a", "r", "u")]
    (accepted, refused, unread) = answers
    for (status, content_type, body), code, info in ((accepted, "0000", None),
                                                     (refused, "0002", "XSD_INVALID: bad")):
        assert content_type == "application/xml"
        rep = parse_dxp_rep(body, SafeXmlParser())
        (response,) = rep.responses
        assert (status, rep.receiver_id, response.response_code, response.response_info,
                response.original) == (200 if code == "0000" else 422, CUSTOMS, code, info,
                                       TRANS)
    status, content_type, body = unread  # no TransInfo to echo: the JSON answer
    assert (status, content_type, json.loads(body)["receipt"]["error_code"]) == (
        422, "application/json", "XSD_INVALID")


def test_an_envelope_on_the_local_door_must_name_its_sender(gateway: Gateway) -> None:
    status, _, body = with_client(gateway, lambda client: post_dxp(client, b"accept"))
    assert (status, json.loads(body)["code"]) == (400, "HTTP_BAD_REQUEST")
    assert not gateway.desk.requests


def test_a_door_without_recipients_serves_no_deliveries(gateway: Gateway) -> None:
    async def run(client: Client) -> list[tuple[int, str]]:
        answers = [await client.get("/v1/deliveries", headers={"Px-Sender": CUSTOMS}),
                   await client.post("/v1/deliveries/acknowledgements", json={},
                                     headers={"Px-Sender": CUSTOMS})]
        return [(answer.status, (await answer.json())["code"]) for answer in answers]

    assert with_client(gateway, run) == [(404, "DELIVERIES_NOT_SERVED")] * 2
