"""The scheduler daemon: create due runs, advance runs, queue tries, watch liveness.

One loop, one thread. It wakes when a try's process ends (the executor's pipes), when
it is signalled, or after a short poll interval, whichever comes first, so the next
task of a chain is queued within milliseconds of the previous one finishing.
`tick(now)` is one pass and takes the clock as an argument, so tests drive it with a
controlled ``now``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import selectors
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import bindparam, tuple_

from scheduler import liveness
from scheduler.asset_runs import create_asset_triggered_runs
from scheduler.backfills import advance_backfills
from scheduler.executors.base import Executor, TryFinished
from scheduler.queueing import pick_for_queue
from scheduler.run_creation import (
    create_due_runs,
    isolated,
    runs_to_schedule,
    start_queued_runs,
)
from scheduler.run_driver import (
    advance_run,
    pause_after_consecutive_failures,
    queue_instance,
    request_run_callback,
)
from tradewind import callbacks, jobs
from tradewind.db import session_scope
from tradewind.models import DagRun
from tradewind.models.base import utcnow
from tradewind.state import DagRunState
from tradewind.wakeup import WakeListener
from worker.lost_tries import end_lost_try

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings
    from worker.task_runner import TryRequest

logger = logging.getLogger(__name__)
FULL_SWEEP_SECONDS = 10.0
# The daemon's passes between these only follow up what woke them (tries that ended,
# runs a notification named): they skip creating due runs, backfill and asset runs,
# the scan for due retries and the callback queue, which nothing needs sooner.
FULL_PASS_SECONDS = 0.5


class Companion(Protocol):
    """Something the scheduler's process looks after between passes (standalone's
    on-demand triggerer). Called after every pass; it decides how often to act."""

    def __call__(
        self, factory: sessionmaker[Session], now: datetime, *, tries_ended: bool
    ) -> None: ...


@dataclass
class TickReport:
    created_runs: int = 0
    queued: list[TryRequest] = field(default_factory=list)
    finished_runs: list[tuple[str, str, DagRunState]] = field(default_factory=list)


class Scheduler:
    def __init__(
        self, factory: sessionmaker[Session], settings: Settings, executor: Executor
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.executor = executor
        self.job_id: int | None = None
        self._dirty: set[int] = set()
        # (dag_id, run_id) of runs whose tries ended since the last pass: looked up with
        # the runs to advance, in the same statement.
        self._dirty_keys: set[tuple[str, str]] = set()
        # Whether a queued run may have become startable since the last look: a run was
        # named by a wake-up (a new or cleared run) or finished (a free slot).
        self._runs_may_start = True
        self._last_sweep: datetime | None = None
        self._last_beat: datetime | None = None
        self._last_liveness: datetime | None = None
        self._last_full_pass = -FULL_PASS_SECONDS  # time.monotonic()
        self._external_change = False  # a wake-up that named no run
        self._stopping = False
        self.companions: list[Companion] = []
        self._listener: WakeListener | None = None
        self._listener_fd: int | None = None
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    # --- the daemon ---------------------------------------------------------------------

    def run(self) -> None:
        """Loop until SIGTERM or SIGINT, then shut down cleanly."""
        self._install_signal_handlers()
        self.executor.start()
        bind = self.factory.kw.get("bind")
        if bind is not None:
            self._listener = WakeListener(bind)
            self._listener_fd = self._listener.open()
        with session_scope(self.factory) as session:
            self.job_id = jobs.start_job(
                session, "scheduler", now=utcnow(), executor_class=self.executor.name
            ).id
        logger.info("Scheduler started (job %s, executor %s)", self.job_id, self.executor.name)
        try:
            while not self._stopping:
                try:
                    self.tick(utcnow(), full=self._full_pass_due())
                except Exception:
                    logger.exception("Scheduler pass failed; carrying on")
                self._wait(self.settings.scheduler_poll_seconds)
        finally:
            self._shut_down()

    def _full_pass_due(self) -> bool:
        now = time.monotonic()
        if self._external_change or now - self._last_full_pass >= FULL_PASS_SECONDS:
            self._external_change = False
            self._last_full_pass = now
            return True
        return False

    def stop(self) -> None:
        self._stopping = True
        self._wake()

    def _install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            logger.info("Received %s; finishing running tries", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_write, b"x")

    def _wait(self, timeout: float) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(self._wake_read, selectors.EVENT_READ)
            for fd in self.executor.wait_handles():
                selector.register(fd, selectors.EVENT_READ)
            if self._listener_fd is not None:
                selector.register(self._listener_fd, selectors.EVENT_READ, "listener")
            events = selector.select(timeout)
        finally:
            selector.close()
        if any(key.data == "listener" for key, _ in events) and self._listener is not None:
            woken = self._listener.drain()
            if woken.runs is None:
                self._last_sweep = None  # something changed elsewhere: look at every run
                self._external_change = True
            else:
                self._dirty |= woken.runs
                self._runs_may_start = self._runs_may_start or woken.runs_may_start
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 1024):
                pass

    def _shut_down(self) -> None:
        logger.info(
            "Scheduler stopping: waiting up to %ss for running tries",
            self.settings.shutdown_grace_seconds,
        )
        finished = self.executor.end(self.settings.shutdown_grace_seconds)
        if self._listener is not None:
            self._listener.close()
        now = utcnow()
        with session_scope(self.factory) as session:
            self._record_finished(session, finished, now)
            if self.job_id is not None:
                jobs.end_job(session, self.job_id, now=now)
        logger.info("Scheduler stopped")

    # --- one pass ----------------------------------------------------------------------

    def tick(self, now: datetime, *, full: bool = True) -> TickReport:
        """One pass. ``full=False`` (see FULL_PASS_SECONDS) follows up only the runs
        that are known to have changed."""
        report = TickReport()
        finished = self.executor.collect()
        owed: list[int] = []
        # One write transaction per pass: on SQLite every transaction waits for the lock.
        with session_scope(self.factory) as session:
            self._record_finished(session, finished, now)
            if full:
                report.created_runs = len(create_due_runs(session, now))
                report.created_runs += len(advance_backfills(session, now))
                report.created_runs += len(create_asset_triggered_runs(session, now))
            if full or self._runs_may_start:
                self._runs_may_start = False
                for run in start_queued_runs(session, now):
                    self._dirty.add(run.id)
            report.finished_runs = self._advance_runs(session, now, full=full)
            if report.finished_runs:
                self._runs_may_start = True
            picked = pick_for_queue(session, slots=self.executor.open_slots(), now=now)
            report.queued = [queue_instance(session, ti, now) for ti in picked]
            if full or report.finished_runs:
                free = self.executor.open_slots() - len(report.queued)
                owed = callbacks.pending_ids(session, free)
        for request in report.queued:
            self.executor.queue(request)
        self.executor.flush()
        for request_id in owed:
            self.executor.run_callback(request_id)
        self._housekeeping(now)
        for companion in self.companions:
            companion(self.factory, now, tries_ended=bool(finished))
        return report

    def _record_finished(
        self, session: Session, finished: list[TryFinished], now: datetime
    ) -> None:
        for item in finished:
            if not item.clean:
                end_lost_try(session, item.request, item.detail, now=now)
        self._dirty_keys.update((item.request.dag_id, item.request.run_id) for item in finished)

    def _advance_runs(
        self, session: Session, now: datetime, *, full: bool = True
    ) -> list[tuple[str, str, DagRunState]]:
        sweep = self._last_sweep is None or now - self._last_sweep >= timedelta(
            seconds=FULL_SWEEP_SECONDS
        )
        postgres = session.get_bind().dialect.name == "postgresql"
        runs: Sequence[DagRun] = []
        if sweep:
            runs = session.scalars(_running_runs(named=False, lock=postgres)).all()
        else:
            due = liveness.runs_with_due_retries(session, now) if full else set()
            ids, keys = sorted(self._dirty | due), sorted(self._dirty_keys)
            if ids or keys:
                query = _running_runs(named=True, lock=postgres)
                runs = session.scalars(query, {"run_ids": ids, "keys": keys}).all()
        finished = []
        for run in runs:
            with isolated(session, f"scheduling run {run.run_id} of {run.dag_id}"):
                step = advance_run(session, run, now=now, rows_of_scheduled=False)
                if step.finished is not None:
                    finished.append((run.dag_id, run.run_id, step.finished))
                    request_run_callback(session, run, step.finished)
                    if step.finished is DagRunState.FAILED:
                        pause_after_consecutive_failures(session, run)
                    logger.info("Run %s of %s finished: %s", run.run_id, run.dag_id, step.finished)
        if sweep:
            self._last_sweep = now
        self._dirty.clear()
        self._dirty_keys.clear()
        return finished

    def _housekeeping(self, now: datetime) -> None:
        beat_every = timedelta(seconds=self.settings.job_heartbeat_seconds)
        if self.job_id is not None and (
            self._last_beat is None or now - self._last_beat >= beat_every
        ):
            with session_scope(self.factory) as session:
                jobs.beat(session, self.job_id, now=now)
            self._last_beat = now
        if self._last_liveness is None or now - self._last_liveness >= beat_every:
            running = set(self.executor.running())
            with session_scope(self.factory) as session:
                resend = liveness.check(session, self.settings, now=now, ours=running)
            for request in resend:
                if request not in running and self.executor.can_resend():
                    self.executor.queue(request)
            self.executor.flush()
            self._last_liveness = now


# The statements of every pass, built once (see `worker.task_runner`'s statements).


@functools.cache
def _running_runs(*, named: bool, lock: bool) -> Any:
    """Running runs of unpaused DAGs; ``named``: only those whose id is in ``run_ids``
    or whose (dag_id, run_id) is in ``keys``; ``lock``: skip and lock rows as another
    scheduler works on them (Postgres)."""
    query = runs_to_schedule(DagRunState.RUNNING)
    if named:
        query = query.where(
            DagRun.id.in_(bindparam("run_ids", expanding=True))
            | tuple_(DagRun.dag_id, DagRun.run_id).in_(bindparam("keys", expanding=True))
        )
    if lock:
        query = query.with_for_update(of=DagRun, skip_locked=True)
    return query
