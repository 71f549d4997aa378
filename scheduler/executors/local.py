"""The local executor: every try runs in a child forked from the warm scheduler process.

The scheduler has already imported Tradewind, SQLAlchemy and the worker's task runner,
so a forked child starts a try in milliseconds (see `worker.try_process`). A crash,
``os._exit``, segfault or timeout ends only that child; the scheduler sees it end (a
pipe closes), and a try whose process died without recording its end is failed or
retried as a lost try.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scheduler.executors.base import Executor, TryFinished
from worker.task_runner import TryRequest
from worker.try_process import (
    DONE,
    TryProcess,
    WarmParent,
    describe_status,
    fork_callback,
    fork_try,
    read_available,
    stop_group,
)

if TYPE_CHECKING:
    from tradewind.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class _Child(TryProcess):
    reported: bool = False  # the try's end is recorded; the process may still be closing


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parallelism = settings.parallelism
        self._children: dict[int, _Child] = {}
        self._parent: WarmParent | None = None

    def start(self) -> None:
        """Warm this process up once so every forked try starts fast."""
        self._parent = WarmParent.prepare(self.settings)

    def open_slots(self) -> int:
        return self.parallelism - len(self._children)

    def running(self) -> list[TryRequest]:
        return [c.request for c in self._children.values() if c.request is not None]

    def wait_handles(self) -> list[int]:
        return list(self._children)

    def queue(self, request: TryRequest) -> None:
        parent = self._warm()
        started = fork_try(parent, request, fileloc=parent.fileloc_of(request.dag_id))
        self._track(started)

    def run_callback(self, request_id: int) -> None:
        self._track(fork_callback(self._warm(), request_id))

    def _warm(self) -> WarmParent:
        if self._parent is None:
            self.start()
        assert self._parent is not None
        return self._parent

    def _track(self, started: TryProcess) -> None:
        os.set_blocking(started.fd, False)
        self._children[started.fd] = _Child(started.pid, started.fd, started.request, started.loan)

    def collect(self) -> list[TryFinished]:
        """Tries that recorded their end (reported at once, while their process still
        closes down) and processes that ended without doing so."""
        if self._parent is not None:
            self._parent.expire_standby()
        finished = []
        for child in list(self._children.values()):
            if child.request is None:  # a callback: nothing to report
                pid, status = os.waitpid(child.pid, os.WNOHANG)
                if pid != 0:
                    self._forget(child, status, None)
                continue
            if not child.reported and DONE in read_available(child.fd):
                child.reported = True
                finished.append(TryFinished(child.request, clean=True))
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid != 0:
                result = self._reap(child, status)
                if result is not None:
                    finished.append(result)
        return finished

    def _reap(self, child: _Child, status: int) -> TryFinished | None:
        if child.request is None:
            self._forget(child, status, None)
            return None
        if not child.reported and DONE in read_available(child.fd):
            child.reported = True
            if status == 0:
                return self._forget(child, status, TryFinished(child.request, clean=True))
        self._forget(child, status, None)
        if child.reported:
            return None
        return TryFinished(child.request, clean=False, detail=describe_status(status))

    def _forget(self, child: _Child, status: int, result: TryFinished | None) -> TryFinished | None:
        child.reaped(status)
        os.close(child.fd)
        del self._children[child.fd]
        return result

    def end(self, grace_seconds: float) -> list[TryFinished]:
        finished = []
        deadline = time.monotonic() + grace_seconds
        while self._children and time.monotonic() < deadline:
            finished.extend(self.collect())
            time.sleep(0.05)
        for child in self._children.values():
            logger.warning(
                "Stopping %s (pid %s) after the grace period",
                child.request or "a callback",
                child.pid,
            )
            stop_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self._children and time.monotonic() < deadline:
            finished.extend(self.collect())
            time.sleep(0.05)
        for child in list(self._children.values()):
            stop_group(child.pid, signal.SIGKILL)
            _, status = os.waitpid(child.pid, 0)
            result = self._reap(child, status)
            if result is not None:
                finished.append(result)
        if self._parent is not None:
            self._parent.close()
        return finished
