"""Reading one older receipt from its place on the topic, as a gateway process does for a
submission whose receipt it no longer holds in memory (after a restart, or 20,000 receipts on).

A local broker is filled with 100,000 receipt-sized records (600 bytes) on one partition,
then:
- the reference, from the same run: what a lookup did before, one consumer of its own reading
  the partition from the receipt's offset to the end (`read_until_end`);
- `read_at`, one consumer of its own reading only up to the place;
- the book's `PlaceReader`: one kept consumer with small fetches, one lookup at a time;
- a burst of 50 lookups at once through the `PlaceReader`.
Each lookup targets a receipt far from the end (the first tenth of the topic). Prints the
figures, then one JSON line.

Run: .venv/bin/python bench/receipt_lookup.py [--tiny]

`--tiny` fills 2,000 receipts and makes 3 lookups and a burst of 5: a check that the bench
still runs (its broker is stopped at the end as in a full run), not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from aiokafka import TopicPartition  # noqa: E402

from gateway.kafka.local_broker import LocalBroker  # noqa: E402
from gateway.kafka.names import Topics  # noqa: E402
from gateway.kafka.wire import (  # noqa: E402
    Place,
    PlaceReader,
    ensure_topics,
    new_producer,
    new_reader,
    read_at,
    read_until_end,
    stop_consumer,
)

# The production topic names: the bench runs its own broker.
TOPICS = Topics()
RECEIPT_BYTES = 600


@dataclass(frozen=True, slots=True)
class Sizes:
    receipts: int
    lookups: int
    burst: int


FULL = Sizes(receipts=100_000, lookups=10, burst=50)
TINY = Sizes(receipts=2_000, lookups=3, burst=5)


async def fill(bootstrap: str, receipts: int) -> None:
    await ensure_topics(bootstrap, {TOPICS.receipt: 1})
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        value = b"r" * RECEIPT_BYTES
        for first in range(0, receipts, 5_000):
            sent = [await producer.send(TOPICS.receipt, value, key=f"s-{n}".encode(), partition=0)
                    for n in range(first, min(first + 5_000, receipts))]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def read_to_end(bootstrap: str, offset: int) -> None:
    """The reference: the lookup as it was, reading everything after the receipt."""
    consumer = new_reader(bootstrap)
    await consumer.start()
    try:
        found = await read_until_end(consumer, {TopicPartition(TOPICS.receipt, 0): offset})
    finally:
        await stop_consumer(consumer)
    assert found[0].offset == offset


async def timed_ms(lookup: Awaitable[object]) -> float:
    started = time.perf_counter()
    await lookup
    return (time.perf_counter() - started) * 1000


def place(offset: int) -> Place:
    return (TOPICS.receipt, 0, offset)


async def measure(bootstrap: str, sizes: Sizes) -> dict[str, float]:
    receipts, lookups, burst_size = sizes.receipts, sizes.lookups, sizes.burst
    offsets = [n * receipts // (10 * lookups) + 7 for n in range(lookups)]  # first tenth
    reference = [await timed_ms(read_to_end(bootstrap, o)) for o in offsets[:3]]
    one_shot = [await timed_ms(read_at(bootstrap, [place(o)])) for o in offsets]
    reader = PlaceReader(bootstrap)
    try:
        await reader.read(place(receipts - 1))  # the consumer started, as in a running book
        kept = [await timed_ms(reader.read(place(o))) for o in offsets]
        scattered = [place(n * (receipts // burst_size) + 3) for n in range(burst_size)]
        burst = await timed_ms(asyncio.gather(*(reader.read(p) for p in scattered)))
        assert all(m is not None for m in await asyncio.gather(*map(reader.read, scattered)))
    finally:
        await reader.close()
    return {"read_to_end_ms": statistics.median(reference),
            "read_at_ms": statistics.median(one_shot),
            "place_reader_ms": statistics.median(kept),
            "burst_ms": burst}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="very small sizes, same code: checks that the bench runs")
    sizes = TINY if parser.parse_args(argv).tiny else FULL
    with LocalBroker() as broker:
        asyncio.run(fill(broker.bootstrap_servers, sizes.receipts))
        figures = asyncio.run(measure(broker.bootstrap_servers, sizes))
    megabytes = sizes.receipts * RECEIPT_BYTES / 1e6
    print(f"one partition of {sizes.receipts:,} receipts of {RECEIPT_BYTES} bytes "
          f"({megabytes:.0f} MB)")
    print(f"reference  read to the end from the receipt     {figures['read_to_end_ms']:8.1f} ms")
    print(f"read_at    its own consumer, up to the receipt  {figures['read_at_ms']:8.1f} ms")
    print(f"PlaceReader  one lookup                         {figures['place_reader_ms']:8.1f} ms")
    print(f"PlaceReader  {sizes.burst} lookups at once               "
          f"{figures['burst_ms']:8.1f} ms")
    print(json.dumps({name: round(value, 1) for name, value in figures.items()}
                     | {"receipts": sizes.receipts}))


if __name__ == "__main__":
    main()
