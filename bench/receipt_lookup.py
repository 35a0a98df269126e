"""Reading one older receipt from its place on the topic, as a gateway process does for a
submission whose receipt it no longer holds in memory (after a restart, or 20,000 receipts on).

A local broker is filled with RECEIPTS receipt-sized records on one partition, then:
- the reference, from the same run: what a lookup did before, one consumer of its own reading
  the partition from the receipt's offset to the end (`read_until_end`);
- `read_at`, one consumer of its own reading only up to the place;
- the book's `PlaceReader`: one kept consumer with small fetches, one lookup at a time;
- a burst of BURST lookups at once through the `PlaceReader`.
Each lookup targets a receipt far from the end (the first tenth of the topic). Prints the
figures, then one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from aiokafka import TopicPartition  # noqa: E402

from gateway.broker import LocalBroker  # noqa: E402
from gateway.kafka import (  # noqa: E402
    RECEIPT_TOPIC,
    Place,
    PlaceReader,
    ensure_topics,
    new_producer,
    new_reader,
    read_at,
    read_until_end,
    stop_consumer,
)

RECEIPTS = 100_000
RECEIPT_BYTES = 600
LOOKUPS = 10
BURST = 50


async def fill(bootstrap: str) -> None:
    await ensure_topics(bootstrap, {RECEIPT_TOPIC: 1})
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        value = b"r" * RECEIPT_BYTES
        for first in range(0, RECEIPTS, 5_000):
            sent = [await producer.send(RECEIPT_TOPIC, value, key=f"s-{n}".encode(), partition=0)
                    for n in range(first, min(first + 5_000, RECEIPTS))]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def read_to_end(bootstrap: str, offset: int) -> None:
    """The reference: the lookup as it was, reading everything after the receipt."""
    consumer = new_reader(bootstrap)
    await consumer.start()
    try:
        found = await read_until_end(consumer, {TopicPartition(RECEIPT_TOPIC, 0): offset})
    finally:
        await stop_consumer(consumer)
    assert found[0].offset == offset


async def timed_ms(lookup: Awaitable[object]) -> float:
    started = time.perf_counter()
    await lookup
    return (time.perf_counter() - started) * 1000


def place(offset: int) -> Place:
    return (RECEIPT_TOPIC, 0, offset)


async def measure(bootstrap: str) -> dict[str, float]:
    offsets = [n * RECEIPTS // (10 * LOOKUPS) + 7 for n in range(LOOKUPS)]  # first tenth
    reference = [await timed_ms(read_to_end(bootstrap, o)) for o in offsets[:3]]
    one_shot = [await timed_ms(read_at(bootstrap, [place(o)])) for o in offsets]
    reader = PlaceReader(bootstrap)
    try:
        await reader.read(place(RECEIPTS - 1))  # the consumer started, as in a running book
        kept = [await timed_ms(reader.read(place(o))) for o in offsets]
        scattered = [place(n * (RECEIPTS // BURST) + 3) for n in range(BURST)]
        burst = await timed_ms(asyncio.gather(*(reader.read(p) for p in scattered)))
        assert all(m is not None for m in await asyncio.gather(*map(reader.read, scattered)))
    finally:
        await reader.close()
    return {"read_to_end_ms": statistics.median(reference),
            "read_at_ms": statistics.median(one_shot),
            "place_reader_ms": statistics.median(kept),
            "burst_ms": burst}


def main() -> None:
    with LocalBroker() as broker:
        asyncio.run(fill(broker.bootstrap_servers))
        figures = asyncio.run(measure(broker.bootstrap_servers))
    megabytes = RECEIPTS * RECEIPT_BYTES / 1e6
    print(f"one partition of {RECEIPTS:,} receipts of {RECEIPT_BYTES} bytes ({megabytes:.0f} MB)")
    print(f"reference  read to the end from the receipt     {figures['read_to_end_ms']:8.1f} ms")
    print(f"read_at    its own consumer, up to the receipt  {figures['read_at_ms']:8.1f} ms")
    print(f"PlaceReader  one lookup                         {figures['place_reader_ms']:8.1f} ms")
    print(f"PlaceReader  {BURST} lookups at once               {figures['burst_ms']:8.1f} ms")
    print(json.dumps({name: round(value, 1) for name, value in figures.items()}
                     | {"receipts": RECEIPTS}))


if __name__ == "__main__":
    main()
