"""What a test that overruns was waiting for: every asyncio task's stack.

faulthandler (pyproject's `faulthandler_timeout`) writes every thread's stack; a test stalled
in `asyncio.run` shows there only an event loop idle in `select`, not which coroutine waits
for what. So, `TASKS_DUMP_S` into a test, each event loop running in the process is asked,
from a timer thread, to write its tasks' stacks to the real stderr (a copy of the descriptor
taken as faulthandler takes its own, before pytest captures the test's output: xdist passes
it on to the log) before faulthandler writes the threads'. A loop that is busy, not idle,
answers when it next looks at its queue, or not at all: the threads' dump then shows where
it is.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# Ten seconds before faulthandler_timeout (110 s in pyproject.toml).
TASKS_DUMP_S = 100.0


def running_loops() -> list[asyncio.AbstractEventLoop]:
    """The event loops running in this process, found on the threads' stacks (asyncio keeps
    no list of them)."""
    loops = []
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            candidate = frame.f_locals.get("self")
            if frame.f_code.co_name == "run_forever" and isinstance(
                    candidate, asyncio.AbstractEventLoop):
                loops.append(candidate)
                break
            frame = frame.f_back
    return loops


def write_tasks(loop: asyncio.AbstractEventLoop, test: str, fd: int) -> None:
    """In the loop's own thread: each of its tasks, and where each waits, written to `fd`."""
    tasks = asyncio.all_tasks(loop)
    out = io.StringIO()
    print(f"\n{test}: still running after {TASKS_DUMP_S:.0f} s; its {len(tasks)} asyncio "
          "tasks:", file=out)
    for task in tasks:
        task.print_stack(file=out)
    os.write(fd, out.getvalue().encode("utf-8", "replace"))


@contextmanager
def tasks_dumped_on_overrun(test: str, fd: int, after_s: float = TASKS_DUMP_S
                            ) -> Iterator[None]:
    """Within the block, after `after_s`, every running loop writes its tasks to `fd`."""
    def dump() -> None:
        for loop in running_loops():
            loop.call_soon_threadsafe(write_tasks, loop, test, fd)

    timer = threading.Timer(after_s, dump)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
