"""The local executor: every try runs in a child forked from a warm copy of the scheduler.

The scheduler has already imported Tradewind, SQLAlchemy and the worker's task runner,
so a forked child starts a try in milliseconds (see `worker.try_process`). The forks
happen in a fork server (`worker.fork_server`), a copy of the warm scheduler process
made when the first try comes: the scheduler itself never forks per try, which cost it
a third of its time. A crash, ``os._exit``, segfault or timeout ends only that try's
child; the server reports it ended, and a try whose process died without recording its
end is failed or retried as a lost try.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scheduler.executors.base import Executor, TryFinished
from worker.fork_server import STANDBY_IDLE_SECONDS, ForkServer, ForkServerGone
from worker.task_runner import TryRequest
from worker.try_process import WarmParent, describe_status, stop_group

if TYPE_CHECKING:
    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
STOP_AFTER_TERM_SECONDS = 10.0  # at shutdown, after SIGTERM, a try gets this long
REAP_WAIT_SECONDS = 5.0  # at shutdown, after SIGKILL, how long to wait to hear it ended


@dataclass
class _Child:
    pid: int
    request: TryRequest | None  # None: a callback request
    reported: bool = False  # the try's end is recorded; the process may still be closing


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parallelism = settings.parallelism
        self._children: dict[int, _Child] = {}
        self._parent: WarmParent | None = None
        self._server: ForkServer | None = None

    def start(self) -> None:
        """Warm this process up once, so that its copy (the fork server) starts every
        try fast. The server reports each recorded end (`collect`), so the tries do not
        wake the scheduler themselves."""
        self._parent = WarmParent.prepare(self.settings, reports_ends=True)

    def open_slots(self) -> int:
        return self.parallelism - len(self._children)

    def running(self) -> list[TryRequest]:
        return [c.request for c in self._children.values() if c.request is not None]

    def wait_handles(self) -> list[int]:
        return [self._server.fileno()] if self._server is not None else []

    def queue(self, request: TryRequest) -> None:
        pid = self._fork(lambda server: server.fork_try(request))
        self._children[pid] = _Child(pid, request)

    def run_callback(self, request_id: int) -> None:
        pid = self._fork(lambda server: server.fork_callback(request_id))
        self._children[pid] = _Child(pid, None)

    def _fork(self, ask: Callable[[ForkServer], int]) -> int:
        """Ask the fork server to fork; one that has died is replaced once."""
        try:
            return ask(self._running_server())
        except ForkServerGone:
            self._lose_server()
        try:
            return ask(self._running_server())
        except ForkServerGone:
            self._lose_server()
            raise OSError("the fork server ended twice in a row") from None

    def _running_server(self) -> ForkServer:
        if self._server is None:
            if self._parent is None:
                self.start()
            assert self._parent is not None
            self._server = ForkServer.start(self._parent)
        return self._server

    def collect(self) -> list[TryFinished]:
        """Tries that recorded their end (reported at once, while their process still
        closes down) and processes that ended without doing so."""
        server = self._server
        if server is None:
            return []
        try:
            events = server.events()
        except ForkServerGone:
            self._lose_server()
            return []
        finished = []
        for event in events:
            child = self._children.get(event["pid"])
            if child is None:
                continue
            if event["op"] == "done" and child.request is not None and not child.reported:
                child.reported = True
                finished.append(TryFinished(child.request, clean=True))
            elif event["op"] == "exited":
                del self._children[child.pid]
                if child.request is not None and not child.reported:
                    detail = describe_status(event["status"])
                    finished.append(TryFinished(child.request, clean=False, detail=detail))
        if not self._children and time.monotonic() - server.last_used > STANDBY_IDLE_SECONDS:
            self._stop_server()  # idle: no extra process (and no standby) is kept
        return finished

    def _lose_server(self) -> None:
        """The server died: its tries go on and record their own ends (the liveness
        checks catch any that die without doing so); stop tracking them."""
        if self._server is None:
            return
        if self._children:
            logger.warning(
                "The fork server (pid %s) ended; %s running tries are no longer watched "
                "here and record their own ends",
                self._server.pid,
                len(self._children),
            )
        self._children.clear()
        self._stop_server()

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def end(self, grace_seconds: float) -> list[TryFinished]:
        finished = self._collect_until(time.monotonic() + grace_seconds)
        for child in self._children.values():
            logger.warning(
                "Stopping %s (pid %s) after the grace period",
                child.request or "a callback",
                child.pid,
            )
            stop_group(child.pid, signal.SIGTERM)
        finished += self._collect_until(time.monotonic() + STOP_AFTER_TERM_SECONDS)
        for child in self._children.values():
            stop_group(child.pid, signal.SIGKILL)
        finished += self._collect_until(time.monotonic() + REAP_WAIT_SECONDS)
        for child in self._children.values():
            if child.request is not None and not child.reported:
                detail = "the try's process did not end after SIGKILL"
                finished.append(TryFinished(child.request, clean=False, detail=detail))
        self._children.clear()
        self._stop_server()
        return finished

    def _collect_until(self, deadline: float) -> list[TryFinished]:
        finished: list[TryFinished] = []
        while self._children and time.monotonic() < deadline:
            finished.extend(self.collect())
            time.sleep(0.05)
        return finished
