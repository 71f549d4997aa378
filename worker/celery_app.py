"""The Celery side of Tradewind: the app, its two tasks, and a worker's process setup.

A message is a small frozen value (the task-instance key and try number, or a callback
request id); the worker reloads everything else from the database. Delivery is
at-least-once (``acks_late``, prefetch 1, reject on worker lost); execution is at most
once per try, because the try's child claims it in the database (queued -> running for
exactly this try number) before running any user code. A duplicate or late delivery is
acknowledged and dropped, and the log says so.

Each Celery pool process is a warm parent (`worker.try_process.WarmParent`): a try
runs in a child forked from it, with the same runner as the local executor.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import selectors
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, signals
from celery.exceptions import Reject
from sqlalchemy.exc import OperationalError

from tradewind.models.base import utcnow
from tradewind.settings import Settings, get_settings
from tradewind.state import TryEnd
from worker.task_runner import TryRequest, host_name
from worker.try_process import (
    DONE,
    NOT_OURS,
    TryProcess,
    WarmParent,
    describe_status,
    fork_callback,
    fork_try,
    stop_group,
)

logger = logging.getLogger(__name__)

RUN_TRY = "tradewind.run_try"
RUN_CALLBACK = "tradewind.run_callback"
DEFAULT_QUEUE = "default"
STOP_AFTER_TERM_SECONDS = 10.0  # after SIGTERM, a try gets this long before SIGKILL
BROKER_SOCKET_TIMEOUT_SECONDS = 10.0
REQUEUE_PAUSE_SECONDS = 1.0  # before handing a message back after a transient failure


def make_app(settings: Settings) -> Celery:
    """A Celery app configured from Tradewind's settings (no result backend: the
    database holds every state)."""
    app = Celery("tradewind", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout_seconds},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=DEFAULT_QUEUE,
        task_create_missing_queues=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    app.task(name=RUN_TRY, acks_late=True, reject_on_worker_lost=True)(run_try)
    app.task(name=RUN_CALLBACK, acks_late=True, reject_on_worker_lost=True)(run_callback)
    return app


def try_message(request: TryRequest) -> list[Any]:
    """The arguments of a RUN_TRY message: the request without its queue, which routes
    the message instead."""
    return request.as_list()[:-1]


# --- the worker's processes ---------------------------------------------------------------


@dataclass
class WorkerState:
    """Set by `tradewind worker` in the main process; pool processes inherit it."""

    settings: Settings | None = None
    hostname: str | None = None
    queues: list[str] = field(default_factory=list)
    # Closed by the main process when it starts shutting down; pool processes see EOF.
    shutdown_read: int | None = None
    shutdown_write: int | None = None
    parent: WarmParent | None = None  # in each pool process
    filelocs: dict[str, str] = field(default_factory=dict)


STATE = WorkerState()


def prepare_main(settings: Settings, hostname: str, queues: list[str]) -> None:
    """In `tradewind worker`, before Celery forks its pool."""
    STATE.settings, STATE.hostname, STATE.queues = settings, hostname, queues
    STATE.shutdown_read, STATE.shutdown_write = os.pipe()


@signals.worker_process_init.connect
def _init_pool_process(**_: Any) -> None:
    """Each pool process becomes a warm parent for the tries it forks."""
    if STATE.shutdown_write is not None:
        os.close(STATE.shutdown_write)  # only the main process may signal shutdown
        STATE.shutdown_write = None
    settings = STATE.settings or get_settings()
    STATE.parent = WarmParent.prepare(settings, hostname=STATE.hostname, die_with_parent=True)


@signals.worker_shutting_down.connect
def _on_shutting_down(**_: Any) -> None:
    """SIGTERM: Celery stops taking messages; tell every pool process to start the
    grace period of its running try."""
    if STATE.shutdown_write is not None:
        with contextlib.suppress(OSError):
            os.close(STATE.shutdown_write)
        STATE.shutdown_write = None


def _warm_parent() -> WarmParent:
    if STATE.parent is None:  # a solo pool, or a task run outside a worker
        _init_pool_process()
    assert STATE.parent is not None
    return STATE.parent


# --- the tasks (run in pool processes) -------------------------------------------------


def run_try(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """Run one try in a forked child and wait for it; returns what became of it.

    A message this process cannot act on for a passing reason (the database is
    unreachable, fork fails, the worker is shutting down) goes back to the queue; one
    for a try that is not queued at this try number is dropped when the child's claim
    finds so.
    """
    request = TryRequest(dag_id, run_id, task_id, map_index, try_number)
    if _shutting_down():
        raise Reject("the worker is shutting down", requeue=True)
    parent = _warm_parent()
    try:
        # No look at the task instance first: the child's claim (queued -> running at
        # this try number) is the one check that counts, so a second one here would
        # only cost every try a query.
        child = fork_try(parent, request, fileloc=parent.fileloc_of(dag_id))
    except (OperationalError, OSError) as exc:
        logger.warning("Cannot start %s now (%s); handing its message back", request, exc)
        time.sleep(REQUEUE_PAUSE_SECONDS)
        raise Reject(str(exc), requeue=True) from None
    ended = _wait(child, parent.settings)
    if ended.not_ours:
        logger.warning(
            "Dropping a duplicate or late delivery of %s: it is not queued at this try "
            "number (another delivery ran it, or it was cleared or removed)",
            request,
        )
        return "dropped"
    if ended.reported:
        return "ran"
    _end_lost(parent, request, child.pid, ended.status, ended.stopped)
    return "lost"


def _shutting_down() -> bool:
    """Has the main process closed the shutdown pipe (readable at EOF)?"""
    if STATE.shutdown_read is None:
        return False
    readable, _, _ = select.select([STATE.shutdown_read], [], [], 0)
    return bool(readable)


def run_callback(request_id: int) -> str:
    """Run one callback request in a forked child (claimed there, so at most once)."""
    parent = _warm_parent()
    child = fork_callback(parent, request_id)
    ended = _wait(child, parent.settings)
    if not ended.reported:
        logger.warning("Callback request %s: %s", request_id, describe_status(ended.status))
    return "ran" if ended.reported else "lost"


@dataclass(frozen=True)
class _Ended:
    """How a forked child ended, as its pool process saw it."""

    reported: bool  # it wrote DONE: the try's end (or its callback) is recorded
    status: int  # the wait status
    stopped: bool  # the shutdown grace period ran out and we stopped it
    not_ours: bool = False  # its claim failed: another process runs this try


def _wait(child: TryProcess, settings: Settings) -> _Ended:
    """Wait for the child to end and say how it ended.

    When the worker starts shutting down, the try gets ``shutdown_grace_seconds`` to
    finish, then SIGTERM (it records itself as interrupted and is handed back), then
    SIGKILL.
    """
    os.set_blocking(child.fd, False)
    said = b""
    stopped = False
    grace_ends: float | None = None
    kill_at: float | None = None
    selector = selectors.DefaultSelector()
    selector.register(child.fd, selectors.EVENT_READ, "child")
    if STATE.shutdown_read is not None:
        selector.register(STATE.shutdown_read, selectors.EVENT_READ, "shutdown")
    try:
        while True:
            for key, _ in selector.select(timeout=0.5):
                if key.data == "shutdown":
                    selector.unregister(key.fileobj)
                    grace_ends = time.monotonic() + settings.shutdown_grace_seconds
                    logger.info(
                        "Worker shutting down: %s may finish for %ss",
                        child.request,
                        settings.shutdown_grace_seconds,
                    )
                else:
                    said += _read(child.fd)
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid != 0:
                child.reaped(status)
                said += _read(child.fd)
                return _Ended(DONE in said, status, stopped, not_ours=NOT_OURS in said)
            now = time.monotonic()
            if grace_ends is not None and now >= grace_ends and not stopped:
                logger.warning("Stopping %s: the shutdown grace period is over", child.request)
                stop_group(child.pid, signal.SIGTERM)
                stopped, kill_at = True, now + STOP_AFTER_TERM_SECONDS
            if kill_at is not None and now >= kill_at:
                stop_group(child.pid, signal.SIGKILL)
                kill_at = None
    except BaseException:
        # This pool process is being stopped (billiard's terminate, a cold shutdown):
        # stop the try first, so it ends as interrupted instead of running on orphaned.
        _stop_and_reap(child)
        raise
    finally:
        selector.close()
        os.close(child.fd)


def _stop_and_reap(child: TryProcess) -> None:
    stop_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_AFTER_TERM_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid != 0:
                child.reaped(status)
                return
        time.sleep(0.1)
    stop_group(child.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        child.reaped(os.waitpid(child.pid, 0)[1])


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 64)
    except (BlockingIOError, OSError):
        return b""


def _end_lost(
    parent: WarmParent, request: TryRequest, pid: int, status: int, interrupted: bool
) -> None:
    from tradewind.db import session_scope
    from worker.lost_tries import end_lost_try

    detail = describe_status(status)
    if interrupted:
        detail = f"the worker shut down and {detail}"
    with session_scope(parent.factory) as session:
        end_lost_try(
            session,
            request,
            detail,
            now=utcnow(),
            end=TryEnd.INTERRUPTED if interrupted else TryEnd.LOST,
            reporter=f"worker {parent.hostname or host_name()}",
            pid=pid,
        )


# --- the worker's heartbeat (main process) -------------------------------------------------


class WorkerHeartbeat:
    """Records the worker as a job (with the queues it listens to) and beats it."""

    def __init__(
        self, settings: Settings, hostname: str, queues: list[str], concurrency: int
    ) -> None:
        self.settings, self.hostname, self.queues = settings, hostname, queues
        self.concurrency = concurrency
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.job_id: int | None = None

    def start(self) -> None:
        from tradewind import jobs
        from tradewind.db import make_engine, make_session_factory, session_scope

        self._factory = make_session_factory(make_engine(self.settings))
        with session_scope(self._factory) as session:
            self.job_id = jobs.start_job(
                session,
                "worker",
                now=utcnow(),
                executor_class="celery",
                hostname=self.hostname,
                queues=self.queues,
                concurrency=self.concurrency,
            ).id
        self._thread = threading.Thread(target=self._loop, name="worker-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from tradewind import jobs
        from tradewind.db import session_scope

        while not self._stop.wait(self.settings.job_heartbeat_seconds):
            try:
                with session_scope(self._factory) as session:
                    jobs.beat(session, self.job_id, now=utcnow())  # type: ignore[arg-type]
            except Exception:
                logger.exception("The worker's heartbeat failed; trying again")

    def stop(self) -> None:
        from tradewind import jobs
        from tradewind.db import session_scope

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.job_id is not None:
            with session_scope(self._factory) as session:
                jobs.end_job(session, self.job_id, now=utcnow())
