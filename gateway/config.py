"""Gateway configuration: one TOML file (paths relative to it) plus environment overrides."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

ENV_BOOTSTRAP = "PORTGW_BOOTSTRAP_SERVERS"


@dataclass(frozen=True, slots=True)
class TrailSettings:
    seal_every: int = 256
    seal_interval_ms: int = 500
    # How long a batch's seal or archive write is retried before the sealer gives up (the
    # batch stays queued and is tried again at the next seal).
    seal_retry_s: float = 30.0
    # Sealed batches are also written to files here (relative to the home directory);
    # empty: no archive.
    archive_dir: str = "trail-archive"
    archive_segment_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Where the gateway's keys, keyring, agencies and contracts are, and how it runs.

    `bootstrap_servers` empty means: start the local broker.
    """

    home: Path
    gateway_id: str = "px.gateway"
    bootstrap_servers: str = ""
    key_file: Path = Path("gateway.key")
    keyring_file: Path = Path("keyring.toml")
    agencies_file: Path = Path("agencies.toml")
    contracts_dir: Path = Path("contracts")
    mask_key_file: Path = Path("mask.key")
    # Seconds between checks of contracts_dir for changed files (0: reload on SIGHUP only).
    contracts_watch_s: float = 2.0
    ingress_partitions: int = 4
    max_document_bytes: int = 4 * 1024 * 1024
    trail: TrailSettings = field(default_factory=TrailSettings)

    @classmethod
    def load(cls, path: Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        config = cls.from_mapping(data, home=path.parent.resolve())
        return config.with_env(os.environ if env is None else env)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, home: Path) -> GatewayConfig:
        section = dict(data.get("gateway", {}))
        trail = dict(data.get("trail", {}))
        paths = ("key_file", "keyring_file", "agencies_file", "contracts_dir", "mask_key_file")
        known = {"id", "bootstrap_servers", "ingress_partitions", "max_document_bytes",
                 "contracts_watch_s", *paths}
        unknown = set(section) - known
        if unknown:
            raise ConfigError(f"unknown [gateway] settings: {', '.join(sorted(unknown))}")
        try:
            config = cls(
                home=home,
                gateway_id=str(section.get("id", cls.gateway_id)),
                bootstrap_servers=str(section.get("bootstrap_servers", "")),
                ingress_partitions=int(section.get("ingress_partitions", 4)),
                max_document_bytes=int(section.get("max_document_bytes", 4 * 1024 * 1024)),
                contracts_watch_s=float(section.get("contracts_watch_s", 2.0)),
                trail=TrailSettings(**trail),
                **{name: home / str(section[name]) for name in paths if name in section},
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad setting: {exc}") from exc
        return config.resolved()

    def resolved(self) -> GatewayConfig:
        """Relative paths made relative to the home directory."""
        return replace(
            self,
            key_file=self.home / self.key_file,
            keyring_file=self.home / self.keyring_file,
            agencies_file=self.home / self.agencies_file,
            contracts_dir=self.home / self.contracts_dir,
            mask_key_file=self.home / self.mask_key_file,
        )

    @property
    def archive_dir(self) -> Path | None:
        return self.home / self.trail.archive_dir if self.trail.archive_dir else None

    def with_env(self, env: Mapping[str, str]) -> GatewayConfig:
        if env.get(ENV_BOOTSTRAP):
            return replace(self, bootstrap_servers=env[ENV_BOOTSTRAP])
        return self
