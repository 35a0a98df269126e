"""The gateway's wire by name: its topics, its header names and the messages it reads and
writes, as values. No Kafka client here, so the wings that decide (gateway.decide) and
build what is published can name topics and headers without importing one
(gateway.kafka.wire holds the client side)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.home.config import KafkaSettings, check_topic_prefix

H_SUBMISSION_ID = "px-submission-id"
H_SENDER = "px-sender"
H_FORMAT = "px-format"
H_SIGNATURE = "px-signature"
H_EVENT_ID = "px-event-id"
H_DOCUMENT_TYPE = "px-document-type"
H_FINGERPRINT = "px-schema-fingerprint"
H_RECORD = "px-record"
H_DIGEST = "px-digest-sm3"
H_STATUS = "px-status"
H_DUPLICATE_OF = "px-duplicate-of"
H_RETRY_OF = "px-retry-of"
H_RETRIED_BY = "px-retried-by"  # the operator who re-submitted a dead letter (console)
# On a receipt of a DXP envelope: the TransInfo its DxpRep echoes (gateway.receipts.book),
# and its identity, what later submissions are its duplicates by, when that is not its digest
# (gateway.decide.pipeline.Context.identity).
H_DXP_TRANS_INFO = "px-dxp-trans-info"
H_IDENTITY = "px-identity"
# The CopMsgId of a delivery sent as a China E-Port DxpMsg (gateway.publish.dxp_egress).
H_DXP_COP_MSG_ID = "px-dxp-cop-msg-id"
# On a document derived from another (gateway.decide.pipeline.Derive), its canonical event
# and its deliveries: the event id of the document it was derived from.
H_DERIVED_FROM = "px-derived-from"
# On a message of an interchange of several (gateway.decide.pipeline.Derive), its canonical
# event and its deliveries: the event id of the submission's own message, then "#" and the
# message's place in the interchange (1, 2, ...).
H_PART_OF = "px-part-of"
# Set by the HTTP door, which applied the sender's rate limit already.
H_VIA = "px-via"

Headers = tuple[tuple[str, bytes], ...]

def is_delivery_topic(topic: str) -> bool:
    """Whether `topic` is a gateway's delivery topic, under any topic prefix."""
    return "px.deliver." in topic and topic.endswith(".v1")


def submission_headers(submission_id: str, sender: str, format_id: str, signature: bytes
                       ) -> list[tuple[str, bytes]]:
    """The headers of a submission on the ingress topic, however it got there."""
    return [(H_SUBMISSION_ID, submission_id.encode()), (H_SENDER, sender.encode()),
            (H_FORMAT, format_id.encode()), (H_SIGNATURE, signature)]


@dataclass(frozen=True, slots=True)
class Topics:
    """The names of the gateway's topics and its consumer group, each under `prefix`
    (`[kafka] topic_prefix`): empty in production, so the names are those of DESIGN §5
    (`px.ingress.v1`, ...); another prefix gives one broker several gateways' worth of
    topics that never meet (the tests give each test its own). An agency's own delivery
    topic (`delivery_topic` in agencies.toml) is taken as written, without the prefix."""

    prefix: str = ""

    def __post_init__(self) -> None:
        check_topic_prefix(self.prefix)

    @classmethod
    def of(cls, settings: KafkaSettings) -> Topics:
        return cls(settings.topic_prefix)

    @property
    def ingress(self) -> str:
        return f"{self.prefix}px.ingress.v1"

    @property
    def trail(self) -> str:
        return f"{self.prefix}px.trail.v1"

    @property
    def checkpoint(self) -> str:
        return f"{self.prefix}px.checkpoint.v1"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}px.dlq.v1"

    @property
    def receipt(self) -> str:
        return f"{self.prefix}px.receipt.v1"

    @property
    def taken(self) -> str:
        """Recipients' signed acknowledgements, as received (the trail's TAKEN records name
        them: gateway.trail.taken)."""
        return f"{self.prefix}px.taken.v1"

    @property
    def push_positions(self) -> str:
        """Compacted: per push recipient and delivery partition, the offset before which
        every delivery was acknowledged or dead-lettered (gateway.publish.push)."""
        return f"{self.prefix}px.push-positions.v1"

    @property
    def consumer_group(self) -> str:
        """The group the gateway processes serving the ingress topic form."""
        return f"{self.prefix}px-gateway"

    def canonical(self, document_type: str) -> str:
        return f"{self.prefix}px.canonical.{document_type}.v1"

    def delivery(self, agency_id: str) -> str:
        return f"{self.prefix}px.deliver.{agency_id}.v1"

    def status(self, agency_id: str) -> str:
        """Status events of the documents an agency is party to, for its subscriptions."""
        return f"{self.prefix}px.status.{agency_id}.v1"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        return header_of(self.headers, name)


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message to publish."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers

    def header(self, name: str) -> bytes | None:
        return header_of(self.headers, name)


def header_of(headers: Headers, name: str) -> bytes | None:
    """The value of the first header called `name`; None when there is none."""
    for key, value in headers:
        if key == name:
            return value
    return None
