"""`tradewind triggerer`: run the triggers of deferred tasks in one asyncio loop.

Each pass (every second, or at once when a trigger fired) does its database work in a
thread, off the event loop:

1. record fired events: each task instance waiting on the trigger goes back to
   ``scheduled`` with the event in its resume kwargs, and the scheduler is woken;
   a trigger that raised resumes its task in ``__fail__`` with the traceback;
2. claim unowned triggers (new ones, and those of triggerers whose heartbeat stopped)
   up to ``triggerer_capacity``, with ``SKIP LOCKED`` on Postgres so that two
   triggerers never take the same one;
3. start the triggers it now owns and cancel those it no longer does;
4. now and then, delete triggers no deferred task waits on any more.

A trigger runs in exactly one triggerer at a time, and its event is recorded once: the
update only applies to instances still deferred on that trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, delete, select, tuple_, update

from tradewind import jobs
from tradewind.dag_loader import add_to_import_path
from tradewind.db import session_scope
from tradewind.models import DagRun, TaskInstance, Trigger
from tradewind.models.base import utcnow
from tradewind.sdk.baseoperator import FAIL_METHOD
from tradewind.state import TaskInstanceState
from tradewind.triggers.base import BaseTrigger, TriggerEvent, trigger_from_record
from tradewind.triggers.encoding import encode
from tradewind.wakeup import wake_scheduler

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
TI = TaskInstanceState
PASS_INTERVAL_SECONDS = 1.0
CLEANUP_EVERY = timedelta(seconds=15)
_CLAIM_BATCH = 500


@dataclass
class _Outcome:
    """A trigger that ended: its event, or why it failed."""

    trigger_id: int
    event: TriggerEvent | None = None
    error: str | None = None
    trace: list[str] = field(default_factory=list)


class Triggerer:
    """One triggerer job. `run` blocks until SIGTERM/SIGINT or `stop`."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        *,
        capacity: int | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.capacity = capacity or settings.triggerer_capacity
        # Triggers of your own may live beside the DAGs, as the task code does.
        add_to_import_path(settings.resolved_dags_folder)
        self.job_id: int | None = None
        self._running: dict[int, asyncio.Task[None]] = {}
        self._ended: list[_Outcome] = []
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._last_cleanup = utcnow() - CLEANUP_EVERY
        self._last_beat = utcnow()

    # --- lifecycle -------------------------------------------------------------------

    def run(self) -> None:
        asyncio.run(self._main())

    def stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler or another thread)."""
        self._stopping = True
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(signum, self._on_signal, signum)
        self.job_id = await asyncio.to_thread(self._start_job)
        logger.info("Triggerer started (job %s, capacity %s)", self.job_id, self.capacity)
        try:
            while not self._stopping:
                try:
                    ended, running = self._take_ended(), set(self._running)
                    owned = await asyncio.to_thread(self._sync, ended, running)
                    self._apply(owned)
                except Exception:
                    logger.exception("Triggerer pass failed; carrying on")
                self._wake.clear()
                if self._ended:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), PASS_INTERVAL_SECONDS)
        finally:
            await self._shut_down()

    def _on_signal(self, signum: int) -> None:
        logger.info("Received %s; stopping", signal.Signals(signum).name)
        self.stop()

    async def _shut_down(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        ended = self._take_ended()
        await asyncio.to_thread(self._finish, ended)
        logger.info("Triggerer stopped")

    def _start_job(self) -> int:
        with session_scope(self.factory) as session:
            return jobs.start_job(session, "triggerer", now=utcnow()).id

    def _finish(self, ended: list[_Outcome]) -> None:
        """Record what fired while stopping, and hand the rest back at once (rather than
        after this job's heartbeat goes stale)."""
        assert self.job_id is not None
        with session_scope(self.factory) as session:
            self._record(session, ended, utcnow())
            session.execute(
                update(Trigger)
                .where(Trigger.triggerer_id == self.job_id)
                .values(triggerer_id=None)
                .execution_options(synchronize_session=False)
            )
            jobs.end_job(session, self.job_id, now=utcnow())

    # --- the event loop side -----------------------------------------------------------

    def _take_ended(self) -> list[_Outcome]:
        ended, self._ended = self._ended, []
        return ended

    def _apply(self, owned: dict[int, tuple[str, dict[str, Any]] | None]) -> None:
        """Start triggers newly owned (with their records), cancel those not owned."""
        for trigger_id in list(self._running):
            if trigger_id not in owned:
                logger.info("Trigger %s is no longer ours; cancelling it", trigger_id)
                self._running.pop(trigger_id).cancel()
        for trigger_id, record in owned.items():
            if trigger_id in self._running or record is None:
                continue
            try:
                trigger = trigger_from_record(*record)
            except Exception as exc:
                self._end(_Outcome(trigger_id, error=f"cannot start the trigger: {exc}"))
                continue
            trigger.trigger_id = trigger_id
            self._running[trigger_id] = asyncio.create_task(
                self._watch(trigger_id, trigger), name=f"trigger-{trigger_id}"
            )

    def _end(self, outcome: _Outcome) -> None:
        self._ended.append(outcome)
        if self._wake is not None:
            self._wake.set()

    async def _watch(self, trigger_id: int, trigger: BaseTrigger) -> None:
        events = trigger.run()
        try:
            event = await anext(events, None)
            if isinstance(event, TriggerEvent):
                self._end(_Outcome(trigger_id, event=event))
            else:
                self._end(_Outcome(trigger_id, error=f"{trigger!r} ended without a TriggerEvent"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("Trigger %s (%r) failed", trigger_id, trigger)
            self._end(
                _Outcome(
                    trigger_id,
                    error=f"the trigger failed: {type(exc).__name__}: {exc}",
                    trace=traceback.format_exception(exc),
                )
            )
        finally:
            self._running.pop(trigger_id, None)
            close = getattr(events, "aclose", None)
            if close is not None:
                await _quietly(close())
            await _quietly(trigger.cleanup())

    # --- the database side (runs in a thread) ------------------------------------------

    def _sync(
        self, ended: list[_Outcome], running: set[int]
    ) -> dict[int, tuple[str, dict[str, Any]] | None]:
        """One pass; returns the ids of the triggers this job owns, each with its record
        when it is not in ``running`` (those running here when the pass began)."""
        assert self.job_id is not None
        now = utcnow()
        with session_scope(self.factory) as session:
            self._record(session, ended, now)
            if now - self._last_beat >= timedelta(seconds=self.settings.job_heartbeat_seconds):
                jobs.beat(session, self.job_id, now=now)
                self._last_beat = now
        if now - self._last_cleanup >= CLEANUP_EVERY:
            with session_scope(self.factory) as session:
                dropped = _drop_unwanted(session)
            if dropped:
                logger.info("Dropped %s trigger(s) no task waits on any more", dropped)
            self._last_cleanup = now
        with session_scope(self.factory) as session:
            owned = set(
                session.scalars(select(Trigger.id).where(Trigger.triggerer_id == self.job_id))
            )
            owned.update(self._claim(session, now, room=self.capacity - len(owned)))
            # Those that ended were deleted by `_record` above, so none is among `owned`.
            new = sorted(owned - running)
            records: dict[int, tuple[str, dict[str, Any]] | None] = dict.fromkeys(owned)
            for start in range(0, len(new), _CLAIM_BATCH):
                batch = new[start : start + _CLAIM_BATCH]
                for trigger_id, classpath, kwargs in session.execute(
                    select(Trigger.id, Trigger.classpath, Trigger.kwargs).where(
                        Trigger.id.in_(batch)
                    )
                ):
                    records[trigger_id] = (classpath, kwargs)
        return records

    def _claim(self, session: Session, now: datetime, *, room: int) -> list[int]:
        """Take up to ``room`` unowned triggers, and those of dead triggerers; returns
        their ids."""
        assert self.job_id is not None
        if room <= 0:
            return []
        threshold = timedelta(seconds=self.settings.job_dead_after_seconds)
        alive = [j.id for j in jobs.alive_jobs(session, "triggerer", now=now, threshold=threshold)]
        alive.append(self.job_id)
        query = (
            select(Trigger.id)
            .where(Trigger.triggerer_id.is_(None) | Trigger.triggerer_id.not_in(alive))
            .order_by(Trigger.id)
            .limit(room)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        for start in range(0, len(ids), _CLAIM_BATCH):
            session.execute(
                update(Trigger)
                .where(Trigger.id.in_(ids[start : start + _CLAIM_BATCH]))
                .values(triggerer_id=self.job_id)
                .execution_options(synchronize_session=False)
            )
        if ids:
            logger.info("Claimed %s trigger(s)", len(ids))
        return ids

    def _record(self, session: Session, ended: list[_Outcome], now: datetime) -> None:
        """Resume the task instances of triggers that ended; delete those triggers."""
        if not ended:
            return
        by_trigger = {outcome.trigger_id: outcome for outcome in ended}
        ids = sorted(by_trigger)
        runs: set[tuple[str, str]] = set()
        resumed = 0
        for start in range(0, len(ids), _CLAIM_BATCH):
            batch = ids[start : start + _CLAIM_BATCH]
            waiting = session.execute(
                select(
                    TaskInstance.id,
                    TaskInstance.trigger_id,
                    TaskInstance.next_method,
                    TaskInstance.next_kwargs,
                    TaskInstance.dag_id,
                    TaskInstance.run_id,
                ).where(
                    TaskInstance.trigger_id.in_(batch),
                    TaskInstance.state == str(TI.DEFERRED),
                )
            ).all()
            if waiting:
                # One statement, many parameter sets: each applies only if the instance
                # still waits on that trigger (a user may have marked it meanwhile).
                session.execute(
                    _RESUME,
                    [
                        {
                            "b_id": ti_id,
                            "b_trigger": trigger_id,
                            "b_now": now,
                            **_resume_values(by_trigger[trigger_id], method, kwargs or {}),
                        }
                        for ti_id, trigger_id, method, kwargs, _, _ in waiting
                    ],
                )
                runs.update((dag_id, run_id) for *_, dag_id, run_id in waiting)
                resumed += len(waiting)
            session.execute(
                delete(Trigger)
                .where(Trigger.id.in_(batch))
                .execution_options(synchronize_session=False)
            )
        if runs:
            pks = session.scalars(
                select(DagRun.id).where(tuple_(DagRun.dag_id, DagRun.run_id).in_(sorted(runs)))
            )
            for pk in pks:
                wake_scheduler(session, pk, for_a_try=True)
        fired = sum(1 for outcome in ended if outcome.event is not None)
        logger.info(
            "%s trigger(s) fired, %s failed; %s task instance(s) resumed",
            fired,
            len(ended) - fired,
            resumed,
        )


_TI: Table = TaskInstance.__table__  # type: ignore[assignment]
_RESUME = (
    update(_TI)
    .where(
        _TI.c.id == bindparam("b_id"),
        _TI.c.trigger_id == bindparam("b_trigger"),
        _TI.c.state == str(TI.DEFERRED),
    )
    .values(
        state=str(TI.SCHEDULED),
        scheduled_dttm=bindparam("b_now"),
        trigger_id=None,
        trigger_timeout=None,
        next_method=bindparam("b_method"),
        next_kwargs=bindparam("b_kwargs"),
    )
)


def _resume_values(
    outcome: _Outcome, next_method: str | None, next_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Where a task instance resumes: its method with the event added to its kwargs, or
    ``__fail__`` with why the trigger failed."""
    if outcome.event is not None:
        try:
            payload = encode(outcome.event.payload, where="the trigger's event")
        except TypeError as exc:
            return {"b_method": FAIL_METHOD, "b_kwargs": {"error": str(exc), "traceback": []}}
        return {"b_method": next_method, "b_kwargs": {**next_kwargs, "event": payload}}
    return {
        "b_method": FAIL_METHOD,
        "b_kwargs": {"error": outcome.error, "traceback": outcome.trace},
    }


def _drop_unwanted(session: Session) -> int:
    """Delete triggers that no deferred instance waits on (it was cleared, marked,
    timed out, or its run failed)."""
    wanted = select(TaskInstance.trigger_id).where(
        TaskInstance.state == str(TI.DEFERRED), TaskInstance.trigger_id.is_not(None)
    )
    dropped = session.execute(
        delete(Trigger)
        .where(Trigger.id.not_in(wanted))
        .execution_options(synchronize_session=False)
    )
    return int(dropped.rowcount or 0)  # type: ignore[attr-defined]


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("Error while closing a trigger")


__all__ = ["Triggerer"]
