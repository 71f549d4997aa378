"""The local executor: every try runs in a child forked from the warm scheduler process.

The scheduler has already imported Tradewind, SQLAlchemy and the worker's task runner,
so a forked child starts a try in milliseconds. A crash, ``os._exit``, segfault or
timeout ends only that child; the scheduler sees it end (a pipe closes), and a try
whose process died without recording its end is failed or retried as a lost try.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
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
from scheduler.processes import describe_exit
from tradewind.errors import TaskTerminated
from worker.dag_cache import DagFileCache
from worker.logs import TryIdentity
from worker.task_runner import TryRequest

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
DONE = b"done"
# What tries commonly need, imported once here instead of in every forked child.
WARM_MODULES = (
    "jinja2",
    "jinja2.sandbox",
    "jinja2.nativetypes",
    "jsonschema",
    "tradewind.sdk.decorators",
    "tradewind.operators.python",
    "tradewind.operators.bash",
    "tradewind.operators.empty",
    "worker.execution",
    "jinja2.ext",
    "tradewind.sdk.templating",
    "tradewind.sdk.context",
    "tradewind.sdk.macros",
)


@dataclass
class _Child:
    pid: int
    fd: int
    request: TryRequest | None  # None: the child runs a callback request
    started: float
    reported: bool = False  # the try's end is recorded; the process may still be closing


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parallelism = settings.parallelism
        self._children: dict[int, _Child] = {}
        self._engine: Engine | None = None
        self._factory: sessionmaker[Session] | None = None
        self._dags = DagFileCache()
        self._filelocs: dict[str, str] = {}

    def start(self) -> None:
        """Warm this process up once so every forked try starts fast: import what tries
        use, compile the statements they run, and freeze the heap (fewer copied pages)."""
        from tradewind.db import make_engine, make_session_factory
        from worker.task_runner import host_name, warm_up

        for module in WARM_MODULES:
            importlib.import_module(module)
        self._engine = make_engine(self.settings)
        self._factory = make_session_factory(self._engine)
        warm_up(self._factory)
        host_name()
        gc.collect()
        gc.freeze()

    def _fileloc(self, dag_id: str) -> str | None:
        if dag_id not in self._filelocs and self._factory is not None:
            from sqlalchemy import select

            from tradewind.db import read_session
            from tradewind.models import DagModel

            with read_session(self._factory) as session:
                fileloc = session.scalar(select(DagModel.fileloc).where(DagModel.dag_id == dag_id))
            if fileloc is not None:
                self._filelocs[dag_id] = fileloc
        return self._filelocs.get(dag_id)

    def open_slots(self) -> int:
        return self.parallelism - len(self._children)

    def running(self) -> list[TryRequest]:
        return [c.request for c in self._children.values() if c.request is not None]

    def wait_handles(self) -> list[int]:
        return list(self._children)

    def queue(self, request: TryRequest) -> None:
        self._fork(request.dag_id, request)

    def run_callback(self, request_id: int) -> None:
        self._fork(None, request_id)

    def _fork(self, dag_id: str | None, work: TryRequest | int) -> None:
        if self._engine is None:
            self.start()
        fileloc = self._fileloc(dag_id) if dag_id else None
        if fileloc is not None:
            self._dags.prime(fileloc)
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            os.close(read_fd)
            if isinstance(work, TryRequest):
                _child_main(work, self, write_fd)
            else:
                _callback_child_main(work, self)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        request = work if isinstance(work, TryRequest) else None
        self._children[read_fd] = _Child(pid, read_fd, request, time.monotonic())

    def collect(self) -> list[TryFinished]:
        """Tries that recorded their end (reported at once, while their process still
        closes down) and processes that ended without doing so."""
        finished = []
        for child in list(self._children.values()):
            if child.request is None:  # a callback: nothing to report
                if os.waitpid(child.pid, os.WNOHANG)[0] != 0:
                    self._forget(child, None)
                continue
            if not child.reported and DONE in _read_available(child.fd):
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
            self._forget(child, None)
            return None
        if not child.reported and DONE in _read_available(child.fd):
            child.reported = True
            if status == 0:
                return self._forget(child, TryFinished(child.request, clean=True))
        self._forget(child, None)
        if child.reported:
            return None
        return TryFinished(child.request, clean=False, detail=describe_status(status))

    def _forget(self, child: _Child, result: TryFinished | None) -> TryFinished | None:
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
            result = self._reap(child, status)
            if result is not None:
                finished.append(result)
        return finished


def _read_available(fd: int) -> bytes:
    try:
        return os.read(fd, 64)
    except BlockingIOError:
        return b""


def describe_status(status: int) -> str:
    words = describe_exit(status)  # "killed by SIGKILL" or "exit code 3"
    verb = "was" if words.startswith("killed") else "ended with"
    return f"the try's process {verb} {words}"


def _child_main(
    request: TryRequest, executor: LocalExecutor, write_fd: int
) -> None:  # pragma: no cover
    """Runs in the forked child: one try, then exit. Never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # our own group: stopping the try stops what it started
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        settings = executor.settings
        _redirect_output(request, settings)
        from tradewind.db import use_session_factory
        from worker.task_runner import TaskRunner

        engine, factory = executor._engine, executor._factory
        if engine is None or factory is None:
            raise RuntimeError("the local executor was not started")
        # New connections for this process; the warmed statement cache is kept.
        engine.dispose(close=False)
        use_session_factory(factory)

        def recorded() -> None:
            os.write(write_fd, DONE)

        def stop_this_try() -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # raises TaskTerminated in the try

        TaskRunner(
            factory,
            settings,
            dags=executor._dags,
            on_recorded=recorded,
            on_state_changed=stop_this_try,
        ).run(request)
        os.write(write_fd, DONE)  # also when the try was not ours to run
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _callback_child_main(request_id: int, executor: LocalExecutor) -> None:  # pragma: no cover
    """Runs in a forked child: one callback request, then exit. Never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from tradewind.db import use_session_factory
        from worker.callbacks import run_callback_request

        engine, factory = executor._engine, executor._factory
        if engine is None or factory is None:
            raise RuntimeError("the local executor was not started")
        engine.dispose(close=False)
        use_session_factory(factory)
        run_callback_request(factory, executor.settings, executor._dags, request_id)
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
