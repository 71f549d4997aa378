"""The Celery side of Tradewind: the app, its two tasks, and how a worker runs them.

A message is a small frozen value (the task-instance key and try number, or a callback
request id); the worker reloads everything else from the database. Delivery is
at-least-once (``acks_late``, prefetch 1, reject on worker lost); execution is at most
once per try, because the try is claimed in the database for its child (queued ->
running for exactly this try number; by the fork server's recorder, or by the child
itself) before any user code runs. A duplicate or late delivery is
acknowledged and dropped, and the log says so.

The worker runs Celery's thread pool: a thread takes a message and asks the worker's
fork server (`worker.fork_server.SpawnedForkServer`, a process of its own that holds
only what tries need) to fork the try's child, which runs it with the same runner as
the local executor, then waits to hear that the child ended. A thread and a fork cost
far less than a pool process per slot that forks its tries itself and talks to the
worker through pipes. The tries die with the server, and the server with the worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import selectors
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from celery import Celery, signals
from celery.exceptions import Reject

from tradewind.models.base import utcnow
from tradewind.settings import Settings
from tradewind.state import TryEnd
from worker.fork_server import ForkServer, ForkServerGone, SpawnedForkServer
from worker.task_runner import TryRequest, host_name
from worker.try_process import describe_status, stop_group

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

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


# --- the worker process -------------------------------------------------------------------


class _ServerConnections:
    """The worker's fork server, spawned, and its connections: one free per idle thread
    of the pool."""

    def __init__(self, hostname: str, concurrency: int) -> None:
        server = SpawnedForkServer.spawn(hostname=hostname, connections=concurrency)
        self.server = server
        self._free: queue.SimpleQueue[ForkServer] = queue.SimpleQueue()
        for connection in server.connections:
            self._free.put(connection)

    @contextlib.contextmanager
    def connection(self) -> Iterator[ForkServer]:
        connection = self._free.get()
        try:
            yield connection
        finally:
            self._free.put(connection)


@dataclass
class WorkerState:
    """Set up by `tradewind worker` (see `start_worker`) for the pool's threads."""

    settings: Settings | None = None
    hostname: str | None = None
    concurrency: int = 1
    factory: sessionmaker[Session] | None = None  # records tries whose child was lost
    server: _ServerConnections | None = None
    # Closed when the worker starts shutting down; waiting threads see EOF.
    shutdown_read: int | None = None
    shutdown_write: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


STATE = WorkerState()


def start_worker(settings: Settings, hostname: str, concurrency: int) -> None:
    """In `tradewind worker`, before Celery starts: the fork server (it warms up while
    Celery connects) and what the pool's threads share."""
    from tradewind.db import make_engine, make_session_factory

    STATE.settings, STATE.hostname, STATE.concurrency = settings, hostname, concurrency
    STATE.factory = make_session_factory(make_engine(settings))
    STATE.shutdown_read, STATE.shutdown_write = os.pipe()
    STATE.server = _ServerConnections(hostname, concurrency)


def stop_worker() -> None:
    """After Celery has stopped: stop the fork server (a try still running ends with
    it, as interrupted)."""
    server, STATE.server = STATE.server, None
    if server is not None:
        server.server.stop()


@signals.worker_shutting_down.connect
def _on_shutting_down(**_: Any) -> None:
    """SIGTERM: Celery stops taking messages; tell every thread to start the grace
    period of its running try."""
    if STATE.shutdown_write is not None:
        with contextlib.suppress(OSError):
            os.close(STATE.shutdown_write)
        STATE.shutdown_write = None


def _running_server() -> _ServerConnections:
    if STATE.server is None:
        raise Reject("this process is not a started `tradewind worker`", requeue=True)
    return STATE.server


def _replace_server(gone: _ServerConnections) -> None:
    """The fork server died (its tries died with it): start another, once."""
    with STATE.lock:
        if STATE.server is not gone or STATE.hostname is None:
            return
        logger.error("The fork server (pid %s) ended; starting a new one", gone.server.process.pid)
        gone.server.stop()
        STATE.server = _ServerConnections(STATE.hostname, STATE.concurrency)


# --- the tasks (run in the pool's threads) ------------------------------------------------


def run_try(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """Run one try in a child of the fork server and wait for it; returns what became
    of it.

    A message this worker cannot act on for a passing reason (the database is
    unreachable, fork fails, the worker is shutting down) goes back to the queue; one
    for a try that is not queued at this try number is dropped when the child's claim
    finds so.
    """
    request = TryRequest(dag_id, run_id, task_id, map_index, try_number)
    if _shutting_down():
        raise Reject("the worker is shutting down", requeue=True)
    # No look at the task instance first: the child's claim (queued -> running at this
    # try number) is the one check that counts, so a second one here would only cost
    # every try a query.
    pid, ended = _run_child(lambda server: server.fork_try(request), str(request))
    if ended.server_gone:
        logger.warning(
            "The fork server ended while %s ran: the try ended with it and is retried "
            "(it records itself as interrupted, or is found a zombie)",
            request,
        )
        return "lost"
    if ended.not_ours:
        logger.warning(
            "Dropping a duplicate or late delivery of %s: it is not queued at this try "
            "number (another delivery ran it, or it was cleared or removed)",
            request,
        )
        return "dropped"
    if ended.reported:
        return "ran"
    _end_lost(request, pid, ended.status, ended.stopped)
    return "lost"


def _run_child(ask: Callable[[ForkServer], int], what: str) -> tuple[int, _Ended]:
    """Have the fork server fork a child (``ask``) and wait for it to end. A message
    that cannot be started now goes back to its queue."""
    server = _running_server()
    with server.connection() as connection:
        try:
            pid = ask(connection)
        except ForkServerGone:
            _replace_server(server)
            _hand_back(what, "the fork server ended")
        except OSError as exc:
            _hand_back(what, str(exc))
        ended = _wait(connection, pid, what)
    if ended.server_gone:
        _replace_server(server)
    return pid, ended


def _hand_back(what: str, reason: str) -> NoReturn:
    logger.warning("Cannot start %s now (%s); handing its message back", what, reason)
    time.sleep(REQUEUE_PAUSE_SECONDS)
    raise Reject(reason, requeue=True) from None


def _shutting_down() -> bool:
    """Has the worker closed the shutdown pipe (readable at EOF)?"""
    if STATE.shutdown_read is None:
        return False
    readable, _, _ = select.select([STATE.shutdown_read], [], [], 0)
    return bool(readable)


def run_callback(request_id: int) -> str:
    """Run one callback request in a child of the fork server (claimed there, so at
    most once)."""
    what = f"callback request {request_id}"
    _, ended = _run_child(lambda server: server.fork_callback(request_id), what)
    if not ended.reported:
        detail = "the fork server ended" if ended.status is None else describe_status(ended.status)
        logger.warning("Callback request %s: %s", request_id, detail)
    return "ran" if ended.reported else "lost"


@dataclass(frozen=True)
class _Ended:
    """How a forked child ended, as its thread heard."""

    reported: bool  # the try's end (or its callback) is recorded
    status: int | None  # the wait status; None if the server ended first
    stopped: bool  # the shutdown grace period ran out and we stopped it
    not_ours: bool = False  # its claim failed: another process runs this try
    server_gone: bool = False


def _wait(connection: ForkServer, pid: int, what: str) -> _Ended:
    """Wait for the server to report that child ``pid`` ended, and say how.

    When the worker starts shutting down, the try gets ``shutdown_grace_seconds`` to
    finish, then SIGTERM (it records itself as interrupted and is handed back), then
    SIGKILL.
    """
    assert STATE.settings is not None
    grace = STATE.settings.shutdown_grace_seconds
    reported = not_ours = stopped = False
    grace_ends: float | None = None
    kill_at: float | None = None
    selector = selectors.DefaultSelector()
    selector.register(connection.sock, selectors.EVENT_READ, "server")
    if STATE.shutdown_read is not None:
        selector.register(STATE.shutdown_read, selectors.EVENT_READ, "shutdown")
    try:
        while True:
            for key, _ in selector.select(timeout=0.5):
                if key.data == "shutdown":
                    selector.unregister(key.fileobj)
                    grace_ends = time.monotonic() + grace
                    logger.info("Worker shutting down: %s may finish for %ss", what, grace)
            try:
                events = connection.events()
            except ForkServerGone:
                return _Ended(reported, None, stopped, not_ours, server_gone=True)
            for event in events:
                if event["pid"] != pid:
                    continue
                if event["op"] == "done":
                    reported, not_ours = True, bool(event.get("not_ours"))
                elif event["op"] == "exited":
                    return _Ended(reported, event["status"], stopped, not_ours)
            now = time.monotonic()
            if grace_ends is not None and now >= grace_ends and not stopped:
                logger.warning("Stopping %s: the shutdown grace period is over", what)
                stop_group(pid, signal.SIGTERM)
                stopped, kill_at = True, now + STOP_AFTER_TERM_SECONDS
            if kill_at is not None and now >= kill_at:
                stop_group(pid, signal.SIGKILL)
                kill_at = None
    except BaseException:
        # This thread is being torn down: stop the try first, so it ends as interrupted
        # instead of running on unwatched.
        stop_group(pid, signal.SIGTERM)
        raise
    finally:
        selector.close()


def _end_lost(request: TryRequest, pid: int, status: int | None, interrupted: bool) -> None:
    from tradewind.db import session_scope
    from worker.lost_tries import end_lost_try

    assert STATE.factory is not None
    detail = "the fork server ended" if status is None else describe_status(status)
    if interrupted:
        detail = f"the worker shut down and {detail}"
    with session_scope(STATE.factory) as session:
        end_lost_try(
            session,
            request,
            detail,
            now=utcnow(),
            end=TryEnd.INTERRUPTED if interrupted else TryEnd.LOST,
            reporter=f"worker {STATE.hostname or host_name()}",
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
