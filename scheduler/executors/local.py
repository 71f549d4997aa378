"""The local executor: every try runs in a child forked from the warm scheduler process.

The scheduler has already imported Tradewind, SQLAlchemy and the worker's task runner,
so a forked child starts a try in milliseconds. A crash, ``os._exit``, segfault or
timeout ends only that child; the scheduler sees it end (a pipe closes), and a try
whose process died without recording its end is failed or retried as a lost try.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from scheduler.executors.base import Executor, TryFinished
from tradewind.errors import TradewindError
from worker.logs import TryIdentity
from worker.task_runner import TryRequest

if TYPE_CHECKING:
    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
DONE = b"done"


class TaskTerminated(TradewindError):
    """Raised inside a try when its process is asked to stop (SIGTERM)."""


@dataclass
class _Child:
    pid: int
    fd: int
    request: TryRequest
    started: float


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parallelism = settings.parallelism
        self._children: dict[int, _Child] = {}

    def open_slots(self) -> int:
        return self.parallelism - len(self._children)

    def running(self) -> list[TryRequest]:
        return [c.request for c in self._children.values()]

    def wait_handles(self) -> list[int]:
        return list(self._children)

    def queue(self, request: TryRequest) -> None:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            os.close(read_fd)
            _child_main(request, self.settings, write_fd)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self._children[read_fd] = _Child(pid, read_fd, request, time.monotonic())

    def collect(self) -> list[TryFinished]:
        finished = []
        for child in list(self._children.values()):
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid == 0:
                continue
            finished.append(self._reap(child, status))
        return finished

    def _reap(self, child: _Child, status: int) -> TryFinished:
        try:
            said = os.read(child.fd, 64)
        except BlockingIOError:
            said = b""
        os.close(child.fd)
        del self._children[child.fd]
        clean = status == 0 and said == DONE
        return TryFinished(child.request, clean, "" if clean else describe_status(status))

    def end(self, grace_seconds: float) -> list[TryFinished]:
        finished = []
        deadline = time.monotonic() + grace_seconds
        while self._children and time.monotonic() < deadline:
            finished.extend(self.collect())
            time.sleep(0.05)
        for child in self._children.values():
            logger.warning("Stopping %s (pid %s) after the grace period", child.request, child.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self._children and time.monotonic() < deadline:
            finished.extend(self.collect())
            time.sleep(0.05)
        for child in list(self._children.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            _, status = os.waitpid(child.pid, 0)
            finished.append(self._reap(child, status))
        return finished


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"the try's process was killed by {signal.Signals(number).name}"
        except ValueError:
            return f"the try's process was killed by signal {number}"
    return f"the try's process exited with code {os.waitstatus_to_exitcode(status)}"


def _child_main(request: TryRequest, settings: Settings, write_fd: int) -> None:  # pragma: no cover
    """Runs in the forked child: one try, then exit. Never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # our own group: stopping the try stops what it started
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _redirect_output(request, settings)
        from tradewind.db import make_engine, make_session_factory, use_session_factory
        from worker.task_runner import TaskRunner

        factory = make_session_factory(make_engine(settings))
        use_session_factory(factory)
        TaskRunner(factory, settings).run(request)
        os.write(write_fd, DONE)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _terminate(_signum: int, _frame: FrameType | None) -> None:  # pragma: no cover
    raise TaskTerminated("the try was stopped (SIGTERM): the executor is shutting down")


def _redirect_output(request: TryRequest, settings: Settings) -> None:  # pragma: no cover
    """Output that bypasses Python (C extensions, inherited fds) goes to the try's log file."""
    ident = TryIdentity(
        0, request.dag_id, request.run_id, request.task_id, request.map_index, request.try_number
    )
    path = ident.log_path(settings.logs_folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
