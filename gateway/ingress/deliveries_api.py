"""The HTTP door for recipients: `GET /v1/deliveries` (a page of the caller's deliveries,
with a cursor, a long poll and a page size limit) and `POST /v1/deliveries/acknowledgements`
(its signed acknowledgement of what it took, recorded in the trail as TAKEN, answered with a
receipt the gateway signs).

Who asks is who the door finds (gateway.ingress.http_api: the client certificate's binding,
looked up at every request): an agency's client reads its own agency's delivery topic only,
and a page holds only deliveries naming it as recipient (gateway.deliveries.pull). Operators
and proxies' own certificates read no deliveries. On the local door (plain HTTP, nobody
authenticated) the agency is the one Px-Sender names; its acknowledgement still verifies only
with that agency's ack key.

An acknowledgement is posted with the place of each delivery it names (as the page gave it),
so the gateway reads exactly those records back, checks each is a delivery it sealed for the
agency, and that the digest signed is its payload's:

    {"acknowledgement": {"agency": …, "taken": […], "taken_at": …, "signature": …},
     "places": [{"delivery_id": "0190…", "partition": 0, "offset": 17}, …]}
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import web
from multidict import MultiMapping

from contracts import AgencyRegistry
from crypto import ClientRole, SM2PrivateKey
from gateway.clock import utc_now
from gateway.deliveries.acknowledgements import (
    ACK_AGENCY_MISMATCH,
    ACK_DELIVERY_UNKNOWN,
    ACK_DIGEST_MISMATCH,
    ACK_KEY_REFUSED,
    ACK_SIGNATURE_INVALID,
    ACK_STALE,
    ACK_TOO_LARGE,
    MAX_ACK_BYTES,
    Acknowledgement,
    AcknowledgementRefused,
    AcknowledgementVerifier,
    canonical_json,
    check_taken,
    format_taken_at,
)
from gateway.deliveries.proof import Delivery, DeliveryRefused, DeliveryVerifier
from gateway.deliveries.pull import (
    CURSOR_INVALID,
    MAX_OFFSET,
    MAX_PARTITION,
    PULL_BUSY,
    READERS_BUSY,
    Cursor,
    DeliveryPages,
    PullRefused,
)
from gateway.errors import BrokerUnavailable
from gateway.home.live_keyring import LiveKeyring
from gateway.ingress.http_api import (
    BAD_REQUEST,
    CLIENT_UNBOUND,
    SENDER,
    UNKNOWN_SENDER,
    Caller,
    Refused,
    problem,
    read_document,
)
from gateway.observe.metrics import GatewayMetrics
from gateway.trail.taken import TakenRecorder, TakenUnavailable
from message_formats import AvroSchemas

log = structlog.get_logger(__name__)

AGENCY_ONLY: Final = "HTTP_AGENCY_ONLY"
DEFAULT_LIMIT: Final = 100
# The body: the acknowledgement and one place per delivery it names.
_MAX_BODY: Final = 2 * MAX_ACK_BYTES
_STATUS: Final[Mapping[str, int]] = {
    ACK_TOO_LARGE: 413, ACK_AGENCY_MISMATCH: 403, ACK_SIGNATURE_INVALID: 403,
    ACK_KEY_REFUSED: 403, ACK_DELIVERY_UNKNOWN: 422, ACK_DIGEST_MISMATCH: 422, ACK_STALE: 422,
    CURSOR_INVALID: 400, PULL_BUSY: 429, READERS_BUSY: 503,
}
_PLACE_FIELDS: Final = frozenset({"delivery_id", "partition", "offset"})


@dataclass(frozen=True, slots=True)
class DeliveriesDoor:
    """What the recipients' routes need of the gateway."""

    pages: DeliveryPages
    recorder: TakenRecorder
    keyring: LiveKeyring
    agencies: AgencyRegistry
    topic_of: Callable[[str], str]
    schemas: AvroSchemas
    metrics: GatewayMetrics
    key: SM2PrivateKey  # the gateway's sealing key: signs the receipts of acknowledgements
    body_timeout_s: float = 30.0

    async def close(self) -> None:
        """Seals the TAKEN records left, and lets go of the readers."""
        try:
            await self.recorder.close()
        finally:
            await self.pages.close()


class RecipientRoutes:
    """`GET /v1/deliveries` and `POST /v1/deliveries/acknowledgements`, for the door
    (gateway.ingress.http_api.build_app, `recipients`), which says who asks."""

    __slots__ = ("_door", "_verifier")

    def __init__(self, door: DeliveriesDoor) -> None:
        self._door = door
        self._verifier = AcknowledgementVerifier(door.keyring)

    async def close(self) -> None:
        await self._door.close()

    async def pull(self, request: web.Request, caller: Caller) -> web.Response:
        try:
            agency = self._recipient(request, caller)
            cursor, limit, wait_s = self._pull_query(request, agency)
            page = await self._door.pages.page(agency, cursor.topic, cursor, limit=limit,
                                               wait_s=wait_s)
        except Refused as refused:
            return refused.response()
        except PullRefused as exc:
            return _problem_of(exc.code, exc.message)
        except BrokerUnavailable:
            return _broker_unavailable()
        oldest = (None if page.oldest_pending_ms is None
                  else max(0.0, utc_now().timestamp() - page.oldest_pending_ms / 1000))
        self._door.metrics.pulled(agency, len(page.deliveries), page.pending, oldest)
        log.info("http.deliveries_pulled", agency=agency, deliveries=len(page.deliveries),
                 pending=page.pending)
        return web.json_response(page.to_json())

    def _pull_query(self, request: web.Request, agency: str) -> tuple[Cursor, int, float]:
        topic = self._door.topic_of(agency)
        limits = self._door.pages.limits
        query = request.query
        text = _one(query, "cursor")
        cursor = Cursor(topic, {}) if text is None else Cursor.decode(text, topic=topic)
        limit = _number(query, "limit", DEFAULT_LIMIT, 1, limits.max_deliveries, int)
        wait_s = _number(query, "wait", 0.0, 0.0, limits.max_wait_s, float)
        return cursor, int(limit), float(wait_s)

    async def acknowledge(self, request: web.Request, caller: Caller) -> web.Response:
        agency = ""
        try:
            agency = self._recipient(request, caller)
            body = await read_document(request, _MAX_BODY, agency, None,
                                       timeout_s=self._door.body_timeout_s)
            ack, places = _acknowledgement_of(body)
            key = self._verifier.verify(ack, expected_agency=agency)
            deliveries = await self._deliveries_at(agency, ack, places)
            check_taken(ack, deliveries)
            receipt = await self._door.recorder.record(
                ack, key.key_id, [d for d in deliveries if d is not None])
        except Refused as refused:
            return refused.response()
        except AcknowledgementRefused as exc:
            self._door.metrics.acknowledged(agency or "unknown", exc.code)
            log.info("http.acknowledgement_refused", agency=agency, code=exc.code)
            return _problem_of(exc.code, exc.message)
        except BrokerUnavailable:
            return _broker_unavailable()
        except TakenUnavailable as exc:
            return problem(503, exc.code, exc.message, headers={"Retry-After": "5"})
        if receipt.repeated:  # answered as the first time, nothing recorded again
            self._door.metrics.acknowledged(agency, "repeated")
        else:
            self._door.metrics.acknowledged(agency, "taken", len(receipt.records))
        answer = {"agency": agency, "recorded_at": format_taken_at(receipt.recorded_at),
                  **receipt.to_json()}
        signed = canonical_json(answer)
        return web.json_response({
            **answer, "key_id": self._door.key.public_key().key_id,
            "signature": base64.b64encode(self._door.key.sign(signed)).decode("ascii")})

    async def _deliveries_at(self, agency: str, ack: Acknowledgement,
                             places: Mapping[str, tuple[int, int]]) -> list[Delivery | None]:
        """The delivery sealed for `agency` at each place the acknowledgement names; None
        where there is none (a partition the topic does not have is not read at all)."""
        topic = self._door.topic_of(agency)
        partitions = {tp.partition for tp in await self._door.pages.partitions(topic)}
        if any(places[t.delivery_id][0] not in partitions for t in ack.taken):
            raise AcknowledgementRefused("places names a partition the agency's delivery "
                                         "topic does not have", code=ACK_DELIVERY_UNKNOWN)
        wanted = [(topic, *places[t.delivery_id]) for t in ack.taken]
        read = await self._door.pages.read_at(wanted)
        found = [read.get(place) for place in wanted]
        verifier = DeliveryVerifier(self._door.keyring, agency, schemas=self._door.schemas)
        deliveries: list[Delivery | None] = []
        for message in found:
            try:
                deliveries.append(None if message is None else verifier.check(message))
            except DeliveryRefused:
                deliveries.append(None)
        return deliveries

    def _recipient(self, request: web.Request, caller: Caller) -> str:
        """The agency whose deliveries the caller reads; Refused 403 for a client bound to
        no agency (or an operator's, or a proxy's own), 400/403 on the local door without
        a registered agency in Px-Sender."""
        if caller.local:
            named = (request.headers.get(SENDER) or "").strip()
            if not named:
                raise Refused(400, BAD_REQUEST, f"{SENDER} must name the recipient agency "
                              "(the door is local)")
            agency = named
        elif caller.binding is None:
            raise Refused(403, CLIENT_UNBOUND, "the client certificate is not bound to an "
                          "agency in the keyring, or its binding is not valid now")
        elif caller.binding.role is not ClientRole.AGENCY or caller.agency is None:
            raise Refused(403, AGENCY_ONLY, "deliveries are read by their recipient agency's "
                          "client certificate only")
        else:
            agency = caller.agency
        if agency not in self._door.agencies:
            raise Refused(403, UNKNOWN_SENDER, "the recipient is not a registered agency")
        return agency


def _acknowledgement_of(body: bytes) -> tuple[Acknowledgement, dict[str, tuple[int, int]]]:
    """The acknowledgement and, per delivery it names, the place given for it."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _malformed("the body is JSON in UTF-8") from None
    if not isinstance(document, dict) or set(document) != {"acknowledgement", "places"}:
        raise _malformed("the body is an object with exactly acknowledgement and places")
    ack = Acknowledgement.from_object(document["acknowledgement"])
    places = _places(document["places"])
    if set(places) != {t.delivery_id for t in ack.taken}:
        raise _malformed("places gives the place of each delivery taken, and no other")
    return ack, places


def _places(value: object) -> dict[str, tuple[int, int]]:
    if not isinstance(value, list):
        raise _malformed("places is a list")
    places: dict[str, tuple[int, int]] = {}
    for item in value:
        if (not isinstance(item, dict) or set(item) != _PLACE_FIELDS
                or not isinstance(item["delivery_id"], str)
                or not _natural(item["partition"], MAX_PARTITION)
                or not _natural(item["offset"], MAX_OFFSET)):
            raise _malformed("each of places is an object with exactly delivery_id, "
                             "partition and offset (integers, 0 or more, within Kafka's "
                             "int32 and int64)")
        places[item["delivery_id"]] = (item["partition"], item["offset"])
    return places


def _natural(value: object, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most


def _malformed(rule: str) -> AcknowledgementRefused:
    return AcknowledgementRefused(rule)


def _one(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise Refused(400, BAD_REQUEST, f"{name} must be given once")
    return values[0] if values else None


def _number(query: MultiMapping[str], name: str, default: float, low: float, high: float,
            kind: Callable[[str], float]) -> float:
    text = _one(query, name)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise Refused(400, BAD_REQUEST, f"{name} must be a number from {low:g} to {high:g}")
    return value


def _problem_of(code: str, message: str) -> web.Response:
    return problem(_STATUS.get(code, 400), code, message)


def _broker_unavailable() -> web.Response:
    return problem(503, BrokerUnavailable.code, "the broker cannot be read now; try again",
                   headers={"Retry-After": "5"})


__all__ = ["DeliveriesDoor", "RecipientRoutes"]

