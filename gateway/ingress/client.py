"""What an agency system does to submit a document over Kafka and wait for its receipt."""

from __future__ import annotations

import time
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from gateway.errors import GatewayError
from gateway.kafka.names import Topics, submission_headers
from gateway.kafka.wire import (
    Broker,
    new_producer,
    new_reader,
    partitions_of,
    stop_consumer,
    unavailable,
)
from gateway.receipts.receipt import SignedReceipt
from message_formats import AvroSchemas


async def submit(
    bootstrap_servers: Broker,
    *,
    sender: str,
    format_id: str,
    document: bytes,
    signature: bytes,
    schemas: AvroSchemas,
    submission_id: str | None = None,
    topics: Topics,
    timeout_s: float = 30.0,
    fetch_wait_ms: int = 20,
) -> SignedReceipt:
    """Puts the document on the ingress topic and waits for the gateway's signed receipt
    (`topics`: the gateway's, under its `[kafka] topic_prefix`).

    The local broker answers a fetch only once its wait has passed, so `fetch_wait_ms` is
    what seeing the receipt takes after it was given (measured: 270 ms a submission at
    aiokafka's 500 ms, 40 ms at 20 ms); a broker that answers at once is asked again every
    `fetch_wait_ms` while the gateway decides. The local broker on S3 storage needs a few
    hundred ms (see `longer_fetch_wait`)."""
    submission_id = submission_id or str(uuid.uuid4())
    producer = new_producer(bootstrap_servers)
    consumer = new_reader(bootstrap_servers, fetch_max_wait_ms=fetch_wait_ms)
    try:
        await producer.start()
        await consumer.start()
        receipt_partitions = await partitions_of(bootstrap_servers, [topics.receipt])
        starts = await _current_ends(consumer, receipt_partitions)
        await producer.send_and_wait(
            topics.ingress,
            document,
            key=sender.encode(),
            headers=submission_headers(submission_id, sender, format_id, signature),
        )
        if not starts:  # the gateway had not created the topic yet: its receipt will be first
            starts = {tp: 0 for tp in await partitions_of(bootstrap_servers, [topics.receipt])}
        return await _await_receipt(consumer, starts, submission_id, schemas, timeout_s)
    except KafkaError as exc:
        raise await unavailable(bootstrap_servers, f"cannot reach {bootstrap_servers}", exc
                                ) from exc
    finally:
        await producer.stop()
        await stop_consumer(consumer)


async def _current_ends(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Where to start looking for the receipt. A list-offsets answer that is too low only
    costs reading a few old receipts; when there is none, start from the beginning."""
    if not partitions:
        return {}
    try:
        return dict(await consumer.end_offsets(partitions))
    except KafkaError:
        return {tp: 0 for tp in partitions}


async def _await_receipt(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    submission_id: str,
    schemas: AvroSchemas,
    timeout_s: float,
) -> SignedReceipt:
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    wanted = submission_id.encode()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=100)
        for records in batches.values():
            for record in records:
                if record.key == wanted:
                    return SignedReceipt.decode(schemas, record.value)
    raise GatewayError(f"no receipt for submission {submission_id} within {timeout_s:.0f} s; "
                       "is the gateway running?", code="RECEIPT_TIMEOUT")
