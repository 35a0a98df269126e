"""The service's desk (gateway.ingress.serving.GatewayDesk) over a fake gateway: a submission id
names one document, and the broker's answer (or its silence) decides what the door may say: 503
only when nothing of the submission can be on the ingress topic, else the outcome is
"unconfirmed"."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from crypto import BatchSigner, SM2PrivateKey, sm3_hex
from gateway.errors import BrokerUnavailable
from gateway.home.config import GatewayConfig
from gateway.ingress.desk import IdempotencyKeyReused, IngressRequest, SubmitOutcome
from gateway.ingress.serving import GatewayDesk
from gateway.kafka.names import H_SUBMISSION_ID, H_VIA, Outbound, Topics
from gateway.receipts.book import Answer
from gateway.receipts.receipt import ACCEPTED, Receipt, SignedReceipt
from message_formats import AvroSchemas

SCHEMAS = AvroSchemas()
SIGNER = BatchSigner(SM2PrivateKey.generate())
SENDER = "cn.port.sh"
ACK_WAIT_S = 0.05  # [http] ingress_timeout_s here
DOCUMENT = b"<arrival/>"


def request(submission_id: str = "cn.port.sh~k", document: bytes = DOCUMENT, *,
            sender: str = SENDER, format_id: str = "fal1-xml") -> IngressRequest:
    return IngressRequest(submission_id, sender, format_id, document, b"signature")


def answer_for(req: IngressRequest, *, duplicate_of: str | None = None,
               format_id: str | None = None) -> Answer:
    receipt = Receipt(
        submission_id=req.submission_id, event_id="01J-event", sender=req.sender,
        format_id=format_id or req.format_id, digest_sm3=sm3_hex(req.document),
        status=ACCEPTED, time=datetime(2026, 3, 1, 8, 0, tzinfo=UTC), recipients=("cn.x",))
    body = SCHEMAS.encode_body("px.gateway.Receipt", receipt.to_avro())
    return Answer(SignedReceipt.of_batch([receipt], [body], SIGNER.sign([body]))[0],
                  duplicate_of)


class FakeBook:
    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self._filed = asyncio.Event()

    def file(self, submission_id: str, answer: Answer) -> None:
        self.answers[submission_id] = answer
        self._filed.set()

    async def get(self, submission_id: str) -> Answer | None:
        return self.answers.get(submission_id)

    async def wait(self, submission_id: str, timeout_s: float) -> Answer | None:
        async def filed() -> Answer:
            while submission_id not in self.answers:
                self._filed.clear()
                await self._filed.wait()
            return self.answers[submission_id]

        try:
            return await asyncio.wait_for(filed(), timeout_s)
        except TimeoutError:
            return None


class FakeHealth:
    def __init__(self) -> None:
        self.up = True

    def failed(self, _: object) -> None:
        self.up = False


@dataclasses.dataclass
class FakeParts:
    door_key: bytes = b"k" * 32
    topics: Topics = dataclasses.field(default_factory=Topics)


class FakeGateway:
    """What the desk uses of the gateway. Each send is answered by `broker`: given the
    message, it returns the future of the broker's answer (or raises, or never returns)."""

    def __init__(self, broker: Callable[[Outbound], Awaitable[asyncio.Future[Any]]]) -> None:
        self.config = GatewayConfig.from_mapping(
            {"http": {"ingress_timeout_s": ACK_WAIT_S, "tls": "off"}}, home=Path("."))
        self.parts = FakeParts()
        self.health = FakeHealth()
        self.book = FakeBook()
        self.broker = broker
        self.sent: list[Outbound] = []

    async def send(self, out: Outbound) -> asyncio.Future[Any]:
        self.sent.append(out)
        return await self.broker(out)


def answered(how: Callable[[asyncio.Future[Any]], None] | None
             ) -> Callable[[Outbound], Awaitable[asyncio.Future[Any]]]:
    """A broker whose answer to every message is `how` (None: no answer yet)."""
    async def broker(_: Outbound) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if how is not None:
            how(future)
        return future

    return broker


def acknowledged(future: asyncio.Future[Any]) -> None:
    future.set_result("record metadata")


def connection_lost(future: asyncio.Future[Any]) -> None:
    future.set_exception(KafkaConnectionError())  # after the broker may have written it


def too_large(future: asyncio.Future[Any]) -> None:
    future.set_exception(MessageSizeTooLargeError())


def desk_over(broker: Callable[[Outbound], Awaitable[asyncio.Future[Any]]]
              ) -> tuple[GatewayDesk, FakeGateway]:
    gateway = FakeGateway(broker)
    return GatewayDesk(gateway), gateway  # type: ignore[arg-type]  # a fake with the calls the desk makes


def run(body: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(body())


# -- what the broker said ---------------------------------------------------------------------


def test_an_acknowledged_submission_waits_for_its_receipt() -> None:
    async def body() -> tuple[SubmitOutcome, FakeGateway]:
        desk, gateway = desk_over(answered(acknowledged))
        req = request()
        asyncio.get_running_loop().call_later(0.05, gateway.book.file, req.submission_id,
                                              answer_for(req))
        return await desk.submit(req, wait_s=5), gateway

    outcome, gateway = run(body)
    assert outcome.receipt is not None and not outcome.unconfirmed
    [out] = gateway.sent
    headers = dict(out.headers)
    assert headers[H_SUBMISSION_ID] == b"cn.port.sh~k"
    assert headers[H_VIA].startswith(b"http:")


def test_no_acknowledgement_in_time_is_unconfirmed_never_refused() -> None:
    holder: list[asyncio.Future[Any]] = []

    async def broker(_: Outbound) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        holder.append(future)
        return future

    async def body() -> list[Any]:
        desk, gateway = desk_over(broker)
        outcome = await desk.submit(request(), wait_s=5)
        seen = [outcome, gateway.health.up, await desk.status("cn.port.sh~k")]
        holder[0].set_result("record metadata")  # the broker wrote it after all
        await asyncio.sleep(0)
        seen.append(await desk.status("cn.port.sh~k"))
        return seen

    outcome, up, looked_up, later = run(body)
    assert (outcome.receipt, outcome.unconfirmed) == (None, True)
    assert not up  # the door refuses what it cannot hand over until the broker answers
    assert looked_up == SubmitOutcome("cn.port.sh~k", unconfirmed=True)
    assert later == SubmitOutcome("cn.port.sh~k")  # on the topic now: pending, confirmed


def test_a_connection_lost_after_handing_over_is_unconfirmed() -> None:
    async def body() -> SubmitOutcome:
        desk, _ = desk_over(answered(connection_lost))
        return await desk.submit(request(), wait_s=5)

    assert run(body).unconfirmed


@pytest.mark.parametrize("why", ["broker down", "producer stuck", "refused"])
def test_503_only_when_nothing_of_it_can_be_on_the_topic(why: str) -> None:
    async def stuck(_: Outbound) -> asyncio.Future[Any]:
        await asyncio.sleep(60)  # never hands it over; the send is cancelled
        raise AssertionError

    broker = stuck if why == "producer stuck" else answered(too_large)

    async def body() -> SubmitOutcome | None:
        desk, gateway = desk_over(broker)
        gateway.health.up = why != "broker down"
        with pytest.raises(BrokerUnavailable):
            await desk.submit(request(), wait_s=5)
        return await desk.status("cn.port.sh~k")

    assert run(body) is None  # forgotten: nothing of it was taken


def test_sent_again_after_an_unconfirmed_hand_over_it_is_handed_over_again() -> None:
    answers = [connection_lost, acknowledged]

    async def broker(_: Outbound) -> asyncio.Future[Any]:
        return await answered(answers.pop(0))(_)

    async def body() -> tuple[SubmitOutcome, SubmitOutcome, FakeGateway]:
        desk, gateway = desk_over(broker)
        req = request()
        first = await desk.submit(req, wait_s=5)
        asyncio.get_running_loop().call_later(0.05, gateway.book.file, req.submission_id,
                                              answer_for(req))
        return first, await desk.submit(req, wait_s=5), gateway

    first, second, gateway = run(body)
    assert first.unconfirmed
    assert second.receipt is not None
    assert len(gateway.sent) == 2  # the gateway answers one submission id once


def test_an_unconfirmed_submission_sent_again_while_the_broker_is_down_is_never_503() -> None:
    async def body() -> SubmitOutcome:
        desk, gateway = desk_over(answered(connection_lost))
        await desk.submit(request(), wait_s=5)
        gateway.health.up = False
        return await desk.submit(request(), wait_s=5)

    assert run(body).unconfirmed


def test_a_post_while_the_same_one_is_being_handed_over_waits_for_its_answer() -> None:
    async def slow(_: Outbound) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.02, acknowledged, future)
        return future

    async def body() -> tuple[list[SubmitOutcome], FakeGateway]:
        desk, gateway = desk_over(slow)
        req = request()
        asyncio.get_running_loop().call_later(0.1, gateway.book.file, req.submission_id,
                                              answer_for(req))
        outcomes = await asyncio.gather(desk.submit(req, wait_s=5), desk.submit(req, wait_s=5))
        return list(outcomes), gateway

    outcomes, gateway = run(body)
    assert len(gateway.sent) == 1
    assert all(o.receipt is not None for o in outcomes)


# -- one id, one document ---------------------------------------------------------------------


@pytest.mark.parametrize("other", [
    request(document=b"<departure/>"),
    request(format_id="fal2-xml"),
])
def test_another_document_under_a_pending_id_is_refused(other: IngressRequest) -> None:
    async def body() -> FakeGateway:
        desk, gateway = desk_over(answered(None))
        await desk.submit(request(), wait_s=0.01)
        with pytest.raises(IdempotencyKeyReused):
            await desk.submit(other, wait_s=0.01)
        return gateway

    assert len(run(body).sent) == 1


@pytest.mark.parametrize("other", [
    request(document=b"<departure/>"),
    request(format_id="fal2-xml"),
    request(sender="cn.customs.sh"),  # an id someone else took on the ingress topic
])
def test_another_document_under_a_decided_id_is_refused_never_given_its_receipt(
        other: IngressRequest) -> None:
    async def body() -> FakeGateway:
        desk, gateway = desk_over(answered(acknowledged))
        gateway.book.file("cn.port.sh~k", answer_for(request()))
        with pytest.raises(IdempotencyKeyReused):
            await desk.submit(other, wait_s=0.01)
        return gateway

    assert run(body).sent == []


def test_the_same_document_under_a_decided_id_gets_its_answer_again() -> None:
    async def body() -> tuple[SubmitOutcome, SubmitOutcome, FakeGateway]:
        desk, gateway = desk_over(answered(acknowledged))
        gateway.book.file("cn.port.sh~k", answer_for(request()))
        # A duplicate's receipt is the first submission's, which may have named another format.
        gateway.book.file("cn.port.sh~d", answer_for(request("cn.port.sh~first"),
                                                     duplicate_of="cn.port.sh~first",
                                                     format_id="fal2-xml"))
        return (await desk.submit(request(), wait_s=0.01),
                await desk.submit(request("cn.port.sh~d"), wait_s=0.01), gateway)

    again, duplicate, gateway = run(body)
    assert again.receipt is not None
    assert duplicate.duplicate_of == "cn.port.sh~first"
    assert gateway.sent == []
