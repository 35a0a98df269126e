"""`portgw receive`: an agency's deliveries, verified, for an agency without its own reader.

Reads the agency's delivery topic with a de-duplicating reader (gateway.deliveries.dedup) whose
positions and handled event ids are kept in `--store`, checks every delivery's proof of
origin (gateway.deliveries.proof) against the gateway's sealing keys in `--keyring`, and hands
over only what the gateway sealed for this agency: each as two files in `--out` (the payload,
and its metadata as JSON; both mode 0600, as they may hold personal data), or as JSON lines on
stdout. A payload in an SM4 envelope (the gateway's own or CMS EnvelopedData) is opened with
`--key` (the agency's own private key) when given, else written as delivered.

Every refused delivery is named on stderr by its place and code. Exit codes: 0 all read
deliveries verified, 1 one or more refused (or an envelope that would not open), 2 usage,
broker or I/O error.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import TopicPartition

from adapters import installed_schemas
from crypto import CryptoError, Keyring, SM2PrivateKey
from gateway.cli.private_files import save_private
from gateway.cli.support import config_args, link_of, read_file, topics_of
from gateway.deliveries.dedup import DedupReader
from gateway.deliveries.envelopes import is_sealed, open_sealed
from gateway.deliveries.proof import Delivery, DeliveryRefused, DeliveryVerifier
from gateway.errors import GatewayError
from gateway.kafka.names import StoredMessage
from gateway.kafka.wire import Broker, own_reader, partition_ends, partitions_of

EXIT_OK, EXIT_REFUSED = 0, 1
STORE_FILE = "deliveries.sqlite"
DELIVERY_NOT_OPENED = "DELIVERY_NOT_OPENED"


def add_receive_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    receive = commands.add_parser(
        "receive", help="read an agency's deliveries, verified, into files or JSON lines",
        description="Reads the agency's delivery topic from where the last run stopped (kept "
        "in --store), checks each delivery's seal against the gateway's sealing keys in "
        "--keyring, and writes each verified delivery to --out (PAYLOAD file and "
        "metadata JSON, mode 0600) or prints it as a JSON line. A forged, altered or "
        "misdirected delivery is never written; its code goes to stderr. Reads up to the "
        "topic's current end, or follows it with --follow. Exit codes: 0 all verified, "
        "1 one or more refused, 2 usage, broker or I/O error.",
    )
    receive.add_argument("--agency", required=True, help="the recipient's agency id")
    receive.add_argument("--keyring", required=True, type=Path,
                         help="keyring (TOML) naming the gateway's sealing keys")
    receive.add_argument("--store", required=True, type=Path,
                         help="directory keeping the read positions and handled event ids")
    receive.add_argument("--out", type=Path,
                         help="directory to write deliveries to (default: JSON lines on stdout)")
    receive.add_argument("--key", type=Path,
                         help="the agency's private key (PEM), to open SM4-enveloped payloads "
                         "(either envelope format)")
    receive.add_argument("--topic", help="the delivery topic (default px.deliver.AGENCY.v1)")
    receive.add_argument("--follow", action="store_true",
                         help="keep reading new deliveries until interrupted")
    config_args(receive)
    receive.set_defaults(run=_receive)


@dataclass
class _Receiver:
    """Where verified deliveries go, and what was refused."""

    verifier: DeliveryVerifier
    out: Path | None
    key: SM2PrivateKey | None
    refused: int = 0
    written: int = 0
    problems: list[str] = field(default_factory=list)

    def refuse(self, message: StoredMessage, exc: DeliveryRefused) -> None:
        self.refused += 1
        print(f"portgw receive: {exc.code}: {_place(message)}: {exc.message}", file=sys.stderr)

    def take(self, message: StoredMessage) -> None:
        delivery = self.verifier.check(message)  # the reader verified it: a cached check
        payload, opened = self._payload(message, delivery)
        meta = {**delivery.metadata(), "topic": message.topic, "partition": message.partition,
                "offset": message.offset, "payload_opened": opened}
        if self.out is None:
            print(json.dumps({**meta, "payload": base64.b64encode(payload).decode("ascii")}),
                  flush=True)
        else:
            stem = self.out / delivery.delivery_id
            save_private(stem.with_suffix(".payload"), payload)
            save_private(stem.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())
        self.written += 1

    def _payload(self, message: StoredMessage, delivery: Delivery) -> tuple[bytes, bool]:
        """The payload to write, and whether it was taken out of its envelope."""
        if self.key is None or not is_sealed(delivery.payload_encoding):
            return delivery.payload, False
        try:
            return open_sealed(self.key, delivery.payload_encoding, delivery.payload)[0], True
        except CryptoError as exc:
            self.problems.append(exc.code)
            print(f"portgw receive: {DELIVERY_NOT_OPENED}: {_place(message)}: the envelope "
                  f"does not open with --key ({exc.code}); written as delivered",
                  file=sys.stderr)
            return delivery.payload, False


def _receive(args: argparse.Namespace) -> int:
    bootstrap = link_of(args)
    verifier = DeliveryVerifier(Keyring.from_toml(args.keyring), args.agency,
                                schemas=installed_schemas())  # a plug-in's events too
    key = SM2PrivateKey.from_pem(read_file(args.key)) if args.key else None
    receiver = _Receiver(verifier, args.out, key)
    for directory in (args.store, args.out):
        if directory is not None:
            _make_dir(directory)
    topic = args.topic or topics_of(args).delivery(args.agency)
    asyncio.run(_read(bootstrap, topic, args.store / STORE_FILE, receiver, follow=args.follow))
    print(f"{receiver.written} deliver{'y' if receiver.written == 1 else 'ies'} received, "
          f"{receiver.refused} refused", file=sys.stderr)
    return EXIT_REFUSED if receiver.refused or receiver.problems else EXIT_OK


async def _read(bootstrap: Broker, topic: str, store: Path, receiver: _Receiver, *,
                follow: bool) -> None:
    ends = None if follow else await _ends(bootstrap, topic)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with DedupReader(bootstrap, [topic], store, verifier=receiver.verifier,
                           on_refused=receiver.refuse) as reader:
        while not stop.is_set() and (ends is None or _behind(reader.positions, ends)):
            batch = await reader.poll(timeout_ms=500)
            for message in batch:
                receiver.take(message)
            reader.mark_done(batch)


async def _ends(bootstrap: Broker, topic: str, *, timeout_s: float = 60.0
                ) -> dict[TopicPartition, int]:
    """Each partition's end now: what a run without --follow reads up to."""
    partitions = await partitions_of(bootstrap, [topic])
    async with own_reader(bootstrap, topic) as consumer:
        return await partition_ends(consumer, partitions, timeout_s=timeout_s)


def _behind(positions: Mapping[TopicPartition, int], ends: dict[TopicPartition, int]) -> bool:
    return any(positions.get(tp, 0) < end for tp, end in ends.items())


def _place(message: StoredMessage) -> str:
    return f"{message.topic}:{message.partition}:{message.offset}"


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise GatewayError(f"cannot create {path}: {exc.strerror or exc}",
                           code="IO_ERROR") from exc


__all__ = ["add_receive_commands"]
