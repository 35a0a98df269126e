"""What every `portgw` command group shares: the configuration arguments, how a command finds
its configuration and its broker, and the exit codes. The command groups import this module;
`gateway.cli.main` only assembles them."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from gateway.errors import GatewayError
from gateway.home.config import ENV_BOOTSTRAP, GatewayConfig, with_env_overrides
from gateway.kafka.local_broker import LocalBrokerNote
from gateway.kafka.names import Topics
from gateway.kafka.wire import KafkaLink, secured_link

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("gateway.toml"),
                        help="gateway configuration (default ./gateway.toml)")
    parser.add_argument("--bootstrap-servers", default="",
                        help="Kafka bootstrap servers (overrides the config and "
                        "PORTGW_BOOTSTRAP_SERVERS)")


def load_config(args: argparse.Namespace) -> GatewayConfig:
    config = GatewayConfig.load(args.config)
    if args.bootstrap_servers:
        config = replace(config, bootstrap_servers=args.bootstrap_servers)
    return config


def config_or_env(args: argparse.Namespace) -> GatewayConfig:
    """The configuration file's settings, or the environment's alone (PORTGW__SECTION__NAME,
    paths relative to the current directory) when there is no file; --bootstrap-servers,
    else PORTGW_BOOTSTRAP_SERVERS, overriding the broker either way."""
    if args.config.exists():
        return load_config(args)
    # A tool serves no HTTP: without a file, no door (and so no TLS files) is assumed.
    no_door = {"http": {"listen": "", "operator_listen": ""}}
    config = GatewayConfig.from_mapping(with_env_overrides(no_door, os.environ),
                                        home=Path.cwd())
    return replace(config, bootstrap_servers=args.bootstrap_servers
                   or os.environ.get(ENV_BOOTSTRAP, ""))


def link_of(args: argparse.Namespace) -> KafkaLink:
    """The broker a tool talks to: --bootstrap-servers, else the configuration's
    (PORTGW_BOOTSTRAP_SERVERS overriding the file's), else PORTGW_BOOTSTRAP_SERVERS alone when
    there is no configuration file; with the [kafka] security settings of the configuration
    file, or of the environment when there is no file. With none of these, the local broker
    that a `portgw serve` of the same home started, while it runs (named on stderr)."""
    config = config_or_env(args)
    if config.bootstrap_servers:
        return secured_link(config.bootstrap_servers, config.kafka)
    note = LocalBrokerNote.read(config.home) if args.config.exists() else None
    if note is not None:
        print(f"portgw: using the local broker {note.bootstrap_servers} of the gateway "
              f"serving {config.home}", file=sys.stderr)
        return KafkaLink(note.bootstrap_servers)
    raise GatewayError("no bootstrap servers: pass --bootstrap-servers, set "
                       f"{ENV_BOOTSTRAP} or name them in the configuration (or start "
                       "`portgw serve` with this configuration: its local broker is then "
                       "found)", code="CONFIG_NO_BROKER")


def topics_of(args: argparse.Namespace) -> Topics:
    """The topic names a tool reads and writes: under the `[kafka] topic_prefix` of the
    configuration file, or of the environment when there is no file."""
    return Topics.of(config_or_env(args).kafka)


def read_file(path: Path) -> bytes:
    """The file's bytes; its failure a GatewayError (IO_ERROR) naming the file, for commands."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GatewayError(f"cannot read {path}: {exc.strerror or exc}", code="IO_ERROR") from exc
