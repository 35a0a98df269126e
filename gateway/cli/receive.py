"""`portgw receive`: an agency's deliveries, verified, for an agency without its own reader.

Reads the agency's delivery topic with a de-duplicating reader (gateway.deliveries.dedup) whose
positions and handled event ids are kept in `--store`, checks every delivery's proof of
origin (gateway.deliveries.proof) against the gateway's sealing keys in `--keyring`, and hands
over only what the gateway sealed for this agency: each as two files in `--out` (the payload,
and its metadata as JSON; both mode 0600, as they may hold personal data), or as JSON lines on
stdout. A payload in an SM4 envelope is opened with `--key` (the agency's own private key)
when given, else written as delivered.

With `--pull URL` the agency takes its deliveries from the gateway's HTTP door instead
(`GET /v1/deliveries`, its client certificate `--client-cert`/`--client-key`, the door's CA
`--ca`): each page's deliveries are verified alike, written, then acknowledged in one
acknowledgement signed with `--key` (role ack in the gateway's keyring), which the gateway
records in its trail as TAKEN; only then are the page's event ids and the cursor past it kept
in the store, together, so a run that stops midway takes the page again (at least once, never
a gap). A delivery refused is not acknowledged.

Every refused delivery is named on stderr by its place and code. Exit codes: 0 all read
deliveries verified, 1 one or more refused (or an envelope that would not open), 2 usage,
broker or I/O error (for --pull: the door unreachable or refusing, an acknowledgement
refused).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import ssl
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import TopicPartition

from adapters import installed_schemas
from crypto import CryptoError, Keyring, SM2PrivateKey, open_envelope
from gateway.cli.private_files import save_private
from gateway.cli.support import config_args, link_of, read_file, topics_of
from gateway.clock import utc_now
from gateway.decide.router import ENVELOPE_PREFIX
from gateway.deliveries.acknowledgements import Acknowledgement, Taken, sign_acknowledgement
from gateway.deliveries.dedup import DedupReader, SeenStore
from gateway.deliveries.proof import Delivery, DeliveryRefused, DeliveryVerifier
from gateway.deliveries.pull_client import PullClient
from gateway.errors import GatewayError
from gateway.kafka.names import StoredMessage
from gateway.kafka.wire import Broker, own_reader, partition_ends, partitions_of

EXIT_OK, EXIT_REFUSED = 0, 1
# With --pull --follow: how long each page waits at the door for a first delivery.
_FOLLOW_WAIT_S = 20.0
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
                         help="the agency's private key (PEM), to open SM4-enveloped payloads")
    receive.add_argument("--topic", help="the delivery topic (default px.deliver.AGENCY.v1)")
    receive.add_argument("--follow", action="store_true",
                         help="keep reading new deliveries until interrupted")
    receive.add_argument("--pull", metavar="URL",
                         help="take the deliveries from the gateway's HTTP door at URL "
                         "(e.g. https://gateway:8080) instead of the broker, and acknowledge "
                         "them signed with --key")
    receive.add_argument("--client-cert", type=Path,
                         help="with --pull: the agency's TLS client certificate (PEM)")
    receive.add_argument("--client-key", type=Path,
                         help="with --pull: the client certificate's private key (PEM)")
    receive.add_argument("--ca", type=Path,
                         help="with --pull: the CA certificate(s) the door's server "
                         "certificate is checked against (PEM)")
    receive.add_argument("--page-size", type=int, default=100,
                         help="with --pull: deliveries asked for per page (default 100)")
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
        if self.key is None or not delivery.payload_encoding.startswith(ENVELOPE_PREFIX):
            return delivery.payload, False
        try:
            return open_envelope(self.key, delivery.payload), True
        except CryptoError as exc:
            self.problems.append(exc.code)
            print(f"portgw receive: {DELIVERY_NOT_OPENED}: {_place(message)}: the envelope "
                  f"does not open with --key ({exc.code}); written as delivered",
                  file=sys.stderr)
            return delivery.payload, False


def _receive(args: argparse.Namespace) -> int:
    if args.pull and args.key is None:
        raise GatewayError("--pull acknowledges what it takes: --key names the agency's "
                           "private key (role ack)", code="USAGE")
    verifier = DeliveryVerifier(Keyring.from_toml(args.keyring), args.agency,
                                schemas=installed_schemas())  # a plug-in's events too
    key = SM2PrivateKey.from_pem(read_file(args.key)) if args.key else None
    receiver = _Receiver(verifier, args.out, key)
    for directory in (args.store, args.out):
        if directory is not None:
            _make_dir(directory)
    if args.pull:
        asyncio.run(_pull(args, receiver))
    else:
        topic = args.topic or topics_of(args).delivery(args.agency)
        asyncio.run(_read(link_of(args), topic, args.store / STORE_FILE, receiver,
                          follow=args.follow))
    print(f"{receiver.written} deliver{'y' if receiver.written == 1 else 'ies'} received, "
          f"{receiver.refused} refused", file=sys.stderr)
    return EXIT_REFUSED if receiver.refused or receiver.problems else EXIT_OK


async def _read(bootstrap: Broker, topic: str, store: Path, receiver: _Receiver, *,
                follow: bool) -> None:
    ends = None if follow else await _ends(bootstrap, topic)
    stop = _stop_on_signals()
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


async def _pull(args: argparse.Namespace, receiver: _Receiver) -> None:
    """Pages of deliveries from the door until none is pending (or, with --follow, until
    interrupted), each verified, written, acknowledged, then kept as done with the cursor."""
    assert receiver.key is not None
    stop = _stop_on_signals()
    wait_s = _FOLLOW_WAIT_S if args.follow else 0.0
    with SeenStore(args.store / STORE_FILE) as store:
        async with PullClient(args.pull, tls=_client_tls(args), sender=args.agency) as door:
            while not stop.is_set():
                page = await door.page(store.cursor(args.pull), limit=args.page_size,
                                       wait_s=wait_s)
                fresh = _fresh(receiver, store, page.deliveries)
                for message, _ in fresh:
                    receiver.take(message)
                if fresh:
                    await door.acknowledge(_acknowledgement(receiver, [d for _, d in fresh]),
                                           [m for m, _ in fresh])
                store.record([(page.topic, d.event_id) for _, d in fresh], [],
                             cursor=(args.pull, page.cursor))
                if not args.follow and page.pending == 0:
                    return


def _fresh(receiver: _Receiver, store: SeenStore, pulled: Sequence[StoredMessage]
           ) -> list[tuple[StoredMessage, Delivery]]:
    """The pulled records that are deliveries sealed for the agency, each event once and not
    taken before (the refused ones named on stderr)."""
    fresh: dict[str, tuple[StoredMessage, Delivery]] = {}
    for message in pulled:
        try:
            delivery = receiver.verifier.check(message)
        except DeliveryRefused as exc:
            receiver.refuse(message, exc)
            continue
        if delivery.event_id not in fresh and not store.seen(message.topic, delivery.event_id):
            fresh[delivery.event_id] = (message, delivery)
    return list(fresh.values())


def _acknowledgement(receiver: _Receiver, deliveries: Sequence[Delivery]) -> Acknowledgement:
    assert receiver.key is not None
    return sign_acknowledgement(receiver.verifier.recipient,
                                [Taken.of(d.delivery_id, d.payload) for d in deliveries],
                                utc_now(), receiver.key)


def _client_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context for an https door: its CA (--ca, else the system's), the agency's
    client certificate; None for plain http (a local door)."""
    if not str(args.pull).startswith("https:"):
        return None
    try:
        context = ssl.create_default_context(cafile=args.ca)
        if args.client_cert is not None:
            context.load_cert_chain(args.client_cert, args.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise GatewayError(f"cannot load the TLS files: {exc}", code="IO_ERROR") from exc
    return context


def _stop_on_signals() -> asyncio.Event:
    """Set on SIGINT or SIGTERM (when run in the main thread: only it takes signals)."""
    stop = asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    return stop


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
