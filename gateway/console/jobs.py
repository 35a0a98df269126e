"""The console's background jobs: the auditor's tools (`portgw replay verify`, `portgw
replay export`) run as a child process with the gateway's own configuration, one job at a
time. The gateway may not import replay (the floors: replay sits above it), so it runs the
command: no shell, its arguments a list, a time limit (killed past it), its output kept up
to a size, a file it writes kept in a directory of this process's own and served back only
while below a size."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from gateway.clock import utc_now
from gateway.publish.dead_letters import iso_instant
from gateway.trail.progress import Progress, progress_of

log = structlog.get_logger(__name__)

VERIFY = "verify"
EXPORT = "export"
# Past this a job is killed (a trail of 100,000 records verifies in well under it).
JOB_TIME_S = 600.0
# What is kept of a job's output; a bundle larger than this is not served.
OUTPUT_BYTES = 64 * 1024
BUNDLE_BYTES = 64 * 1024 * 1024
_CHAIN = re.compile(r"\bchain (\S+?)(?: seq \d+)?:")
@dataclass(frozen=True, slots=True)
class Job:
    """One run of a command: started by whom, when; while it runs `exit_code` is None."""

    number: int
    kind: str
    subject: str
    by: str
    started_at: str
    finished_at: str | None = None
    exit_code: int | None = None
    output: str = ""
    file: Path | None = None
    progress: Progress | None = None  # while it runs: the last the command reported

    @property
    def running(self) -> bool:
        return self.exit_code is None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def broken_chains(self) -> frozenset[str]:
        """The chains a verification's breaks name."""
        return frozenset(_CHAIN.findall(self.output))


@dataclass(frozen=True, slots=True)
class Command:
    """How to run `portgw` on this gateway's home: the configuration file and the broker."""

    config_file: Path
    bootstrap_servers: str

    def replay(self, subcommand: str, *arguments: str) -> list[str]:
        return [sys.executable, "-m", "gateway.cli.main", "replay", subcommand,
                "--config", str(self.config_file),
                "--bootstrap-servers", self.bootstrap_servers, *arguments]


class Jobs:
    """The jobs of one console: one running at a time, the last of each kind kept."""

    def __init__(self, command: Command, *, time_s: float = JOB_TIME_S) -> None:
        self._command = command
        self._time_s = time_s
        self._folder: Path | None = None
        self._last: dict[str, Job] = {}
        self._task: asyncio.Task[None] | None = None
        self._count = 0

    def last(self, kind: str) -> Job | None:
        return self._last.get(kind)

    def find(self, number: int) -> Job | None:
        return next((job for job in self._last.values() if job.number == number), None)

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def verify(self, by: str) -> Job | None:
        """Starts `portgw replay verify`; None while another job runs."""
        return self._start(VERIFY, "", by, self._command.replay(VERIFY, "--progress"), None)

    def export(self, business_key: str, by: str) -> Job | None:
        """Starts `portgw replay export KEY --out FILE`; None while another job runs."""
        if self.busy:
            return None
        out = self._folder_path() / f"evidence-{self._count + 1}.zip"
        return self._start(EXPORT, business_key, by, self._command.replay(
            EXPORT, "--out", str(out), "--", business_key), out)

    def bundle(self, number: int) -> Path | None:
        """The bundle export job `number` wrote, while it is the last and small enough."""
        job = self.find(number)
        if job is None or job.kind != EXPORT or not job.ok or job.file is None:
            return None
        size = job.file.stat().st_size if job.file.is_file() else None
        return job.file if size is not None and size <= BUNDLE_BYTES else None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def _folder_path(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="portgw-console-"))
        return self._folder

    def _start(self, kind: str, subject: str, by: str, argv: list[str], out: Path | None
               ) -> Job | None:
        if self.busy:
            return None
        self._count += 1
        previous = self._last.get(kind)
        if previous is not None and previous.file is not None:
            previous.file.unlink(missing_ok=True)
        job = Job(self._count, kind, subject, by, iso_instant(utc_now()), file=out)
        self._last[kind] = job
        self._task = asyncio.create_task(self._run(job, argv), name=f"console-{kind}")
        log.info("console.job_started", job=job.number, kind=kind, by=by)
        return job

    async def _run(self, job: Job, argv: Sequence[str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        try:
            output, code = await asyncio.wait_for(self._output(job.kind, process),
                                                   self._time_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            output, code = f"stopped after {self._time_s:.0f} s", -1
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        self._last[job.kind] = replace(job, finished_at=iso_instant(utc_now()),
                                       exit_code=code, output=output)
        log.info("console.job_done", job=job.number, kind=job.kind, exit_code=code)

    async def _output(self, kind: str, process: asyncio.subprocess.Process
                      ) -> tuple[str, int]:
        """The first OUTPUT_BYTES of what the process wrote (the rest read and dropped), and
        its exit code; a progress line is not kept but shown on the job while it runs."""
        assert process.stdout is not None
        kept = bytearray()
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # a line past the reader's limit (64 KiB, all that is kept):
                line = await process.stdout.read(65536)  # dropped; what follows, as it comes
            if not line:
                break
            progress = progress_of(line)
            if progress is not None:
                self._last[kind] = replace(self._last[kind], progress=progress)
            else:
                kept.extend(line[:max(0, OUTPUT_BYTES - len(kept))])
        return kept.decode("utf-8", "replace"), await process.wait()

