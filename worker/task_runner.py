"""Running one try of one task instance: claim it, run it, record how it ended.

The same code runs a try for `dags test` (in the CLI process), for the local executor
(in a forked child) and for Celery workers. The try is claimed atomically
(queued -> running for exactly this try number), so a duplicate delivery never runs it
twice; `resolve_try_end` in `tradewind.state` decides what each way of ending means.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from tradewind import xcom
from tradewind.asset_events import ensure_asset, record_event
from tradewind.dag_loader import add_to_import_path
from tradewind.dagversions import retry_policy_for
from tradewind.db import read_session, run_core, session_scope
from tradewind.errors import (
    TradewindError,
)
from tradewind.models import DagRun, DagVersion, TaskInstance, TaskReschedule, Trigger
from tradewind.models.base import utcnow
from tradewind.state import (
    RETRYABLE_ENDS,
    RetryPolicy,
    TaskInstanceState,
    TryEnd,
    check_transition,
    resolve_try_end,
)
from tradewind.wakeup import wake_scheduler
from worker.dag_cache import DagFileCache, VersionRef
from worker.execution import Deferral, Resumption, TryExecution, TryOutcome
from worker.logs import TryIdentity, TryLogHandler, capture, write_chunk
from worker.runtime import DagRunView, PreviousSuccess

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
task_logger = logging.getLogger("tradewind.task")
TI = TaskInstanceState
MAX_CACHED_VERSIONS = 1024  # see `TaskRunner._version`


@dataclass(frozen=True, slots=True)
class TryRequest:
    """The message that asks for a try: ids only, everything else is in the database.

    ``queue`` routes it (Celery); it is not part of the try's identity."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    queue: str = field(default="default", compare=False)

    def __str__(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{index} run={self.run_id} try={self.try_number}"

    def as_list(self) -> list[Any]:
        """The fields in order, for a JSON message; `from_list` reads them back."""
        return [self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number, self.queue]

    @classmethod
    def from_list(cls, values: list[Any]) -> TryRequest:
        dag_id, run_id, task_id, map_index, try_number, queue = values
        return cls(str(dag_id), str(run_id), str(task_id), int(map_index), int(try_number), queue)


@dataclass(frozen=True, slots=True)
class TryResult:
    """What happened to a requested try."""

    request: TryRequest
    state: TaskInstanceState | None
    ran: bool
    error: str | None = None


class TaskRunner:
    """Runs tries in this process. Construct once per process; `run` once per try."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        *,
        dags: DagFileCache | None = None,
        echo: TextIO | None = None,
        hostname: str | None = None,
        on_recorded: Callable[[], None] | None = None,
        on_state_changed: Callable[[], None] | None = None,
        wake_scheduler: bool = True,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.dags = dags or DagFileCache()
        self.echo = echo
        self.hostname = hostname or host_name()
        if settings is not None:
            add_to_import_path(settings.resolved_dags_folder)
            # Resolved once, here: a fork server's children inherit it (resolving it in
            # each try cost two walks of the path and some sixty copied pages).
            self.logs_folder = settings.logs_folder
        self.on_recorded = on_recorded
        self.on_state_changed = on_state_changed
        # Whether a recorded end wakes the scheduler (see `tradewind.wakeup`); off where
        # the process that started the try tells the scheduler itself.
        self.wake_scheduler = wake_scheduler
        # Writes a plain end for this process (a fork server, for its children): the
        # state written, or None if it could not (then this process writes it).
        self.end_writer: Callable[[EndRecord], EndWritten | None] | None = None
        self.execution = TryExecution(factory, settings, self.dags, self.hostname)
        # (fileloc, content_hash) by DAG version id: a version never changes, and a
        # process that claims many tries (a recorder) reads each one once.
        self._versions: dict[str, tuple[str, str]] = {}

    # --- the whole try --------------------------------------------------------------

    def run(self, request: TryRequest, claim: Claim | None = None) -> TryResult:
        """Run one try: claim it (unless ``claim`` says the caller already did), run its
        code, record its end."""
        claim = claim or self.claim(request)
        if claim is None:
            return self.declined(request)
        ident = TryIdentity(
            claim.run.id,
            request.dag_id,
            request.run_id,
            request.task_id,
            request.map_index,
            request.try_number,
        )
        handler = TryLogHandler(
            self.factory,
            ident,
            log_file=ident.log_path(self.logs_folder),
            echo=self.echo,
            heartbeat=lambda: self._heartbeat(claim.ti_id),
            heartbeat_interval=self.settings.task_heartbeat_seconds,
        )
        try:
            with capture(handler):
                task_logger.info(
                    "Running %s on host %s, pid %s", request, self.hostname, os.getpid()
                )
                outcome = self.execution.execute(
                    request, claim.ti_id, claim.run, claim.version, claim.resume, claim.previous
                )
                state = self._record(request, claim, outcome, handler)
                if self.on_recorded is not None:
                    self.on_recorded()
                self.execution.run_callbacks(request, outcome, state)
        finally:
            handler.close()
        error = f"{type(outcome.error).__name__}: {outcome.error}" if outcome.error else None
        return TryResult(request, state, ran=True, error=error)

    def declined(self, request: TryRequest) -> TryResult:
        """The result of a try whose claim found it taken: another process claimed it
        between the caller's look and the claim (a Celery worker logs the drop itself,
        see worker.celery_app.run_try)."""
        logger.info("Not running %s: it is no longer queued for this try", request)
        return TryResult(request, None, ran=False, error="not queued for this try")

    def _claim_params(
        self, request: TryRequest, now: datetime, pid: int | None = None
    ) -> dict[str, Any]:
        return {
            **key_params(request),
            "started": now,
            "claimer_host": self.hostname,
            "claimer_user": _unixname(),
            "claimer_pid": os.getpid() if pid is None else pid,
        }

    def claim(self, request: TryRequest, *, pid: int | None = None) -> Claim | None:
        """Claim the try for process ``pid`` (this one by default), in a transaction of
        its own; None if it is not queued for this try number."""
        with session_scope(self.factory) as session:
            return self.claim_in(session, request, pid=pid)

    def claim_in(
        self, session: Session, request: TryRequest, *, pid: int | None = None
    ) -> Claim | None:
        """`claim` in the caller's transaction (a fork server claims several in one)."""
        started = utcnow()
        # Core statements throughout: this runs once per try, in a fresh process.
        claimed = run_core(
            session, claim_statement(), self._claim_params(request, started, pid)
        ).first()
        if claimed is None:
            return None
        ti_id, version_id, max_tries, next_method, next_kwargs = claimed
        resume = None if next_method is None else Resumption(next_method, next_kwargs or {})
        run = run_core(session, run_query(), run_params(request)).first()
        if run is not None and resume is None:
            # XComs of an earlier try are gone (a resumed try keeps its own).
            run_core(
                session,
                xcom.clear_statement(),
                xcom.clear_params(run.id, request.task_id, request.map_index),
            )
        version = self._version(session, version_id)
        if run is None or version is None:  # pragma: no cover - foreign keys prevent it
            raise TradewindError(f"{request}: its run or DAG version has vanished")
        view = DagRunView.of_row(run)
        return Claim(
            ti_id,
            view,
            VersionRef(version_id, *version),
            started,
            max_tries,
            resume,
            previous_success(session, view),
        )

    def _version(self, session: Session, version_id: str) -> tuple[str, str] | None:
        version = self._versions.get(version_id)
        if version is None:
            row = run_core(session, version_query(), {"version_id": version_id}).first()
            if row is None:
                return None
            if len(self._versions) >= MAX_CACHED_VERSIONS:
                self._versions.clear()
            version = self._versions[version_id] = (row[0], row[1])
        return version

    def _heartbeat(self, ti_id: str) -> None:
        with session_scope(self.factory) as session:
            beat = run_core(
                session, heartbeat_statement(), {"key_ti_id": ti_id, "beat_at": utcnow()}
            )
        if beat.rowcount == 0 and self.on_state_changed is not None:
            # Marked failed/success or cleared from outside (a user, dagrun_timeout).
            task_logger.warning("The try's state was changed from outside; stopping it")
            self.on_state_changed()

    # --- running the code -----------------------------------------------------------

    # --- recording the end ------------------------------------------------------------

    def _record(
        self, request: TryRequest, claim: Claim, outcome: TryOutcome, log: TryLogHandler
    ) -> TaskInstanceState:
        """Write how the try ended. The claim holds when it started and the instance's
        ``max_tries`` (beyond ``retries`` once the instance was cleared)."""
        now = utcnow()
        policy = RetryPolicy()  # what a success, skip or deferral means ignores it
        if outcome.end in RETRYABLE_ENDS:
            # A child reads (and parses) its run's whole DAG version for this; only
            # tries whose end depends on it pay for that.
            with read_session(self.factory) as session:
                policy = retry_policy_for(
                    session, claim.version.version_id, request.task_id, fallback_retries=0
                )
        transition = resolve_try_end(
            outcome.end,
            try_number=request.try_number,
            policy=policy,
            now=now,
            jitter_key=f"{request.dag_id}.{request.task_id}.{request.run_id}.{request.map_index}",
            reschedule_at=outcome.reschedule_at,
            max_tries=claim.max_tries,
        )
        check_transition(TI.RUNNING, transition.state)
        task_logger.info("Try %s ends: %s", request.try_number, transition.state)
        if transition.next_try_at is not None:
            task_logger.info("Next try not before %s", transition.next_try_at.isoformat())
        record = EndRecord(
            request,
            claim.ti_id,
            claim.run.id,
            transition.state,
            transition.next_try_at,
            claim.started,
            now,
            outcome.rendered_fields,
            tuple(outcome.xcoms) if transition.state is TI.SUCCESS else (),
            log.take(),
        )
        try:
            written = self._write_end(record, outcome)
        except Exception as exc:
            if outcome.end is not TryEnd.SUCCESS:
                raise
            # The code succeeded but its results could not be stored: the try failed.
            task_logger.exception("Could not record the results of %s", request)
            outcome.end, outcome.error, outcome.xcoms = TryEnd.FAILED, exc, []
            log.put_back(record.log_text)
            return self._record(request, claim, outcome, log)
        if not written.recorded:
            task_logger.warning(
                "%s was changed to %s while it ran; its own end (%s) is not recorded",
                request,
                written.state,
                transition.state,
            )
        return written.state

    def _write_end(self, record: EndRecord, outcome: TryOutcome) -> EndWritten:
        """Write ``record``: through `end_writer` when it is set and the end is plain,
        here when it is not, or when that writer could not."""
        if self.end_writer is not None and _is_plain(record, outcome):
            written = self.end_writer(record)
            if written is not None:
                return written
        with session_scope(self.factory) as session:
            columns = _deferral_columns(session, outcome.deferral, record.state, record.ended)
            state = write_end(session, record, columns=columns, wake=self.wake_scheduler)
            if state is None:
                current = current_state(session, record.ti_id)
                if current is record.state and self.end_writer is not None:
                    # Its writer wrote it (and the log) but went before it could say so.
                    return EndWritten(record.state, recorded=True)
                write_log_of_unrecorded(session, record)
                return EndWritten(current or record.state, recorded=False)
            if state is TI.SUCCESS:
                self._store_success(session, record.request, outcome)
            elif state is TI.UP_FOR_RESCHEDULE:
                session.execute(
                    insert(TaskReschedule).values(
                        ti_id=record.ti_id,
                        try_number=record.request.try_number,
                        start_date=record.started,
                        end_date=record.ended,
                        duration=(record.ended - record.started).total_seconds(),
                        reschedule_date=record.next_try_at or record.ended,
                    )
                )
        return EndWritten(state, recorded=True)

    def _store_success(self, session: Session, request: TryRequest, outcome: TryOutcome) -> None:
        """What a success records besides the row and its XComs (`write_end` wrote
        those): asset events of its outlets, and the skips it asked for."""
        ti = outcome.runtime_ti
        if ti is None:  # pragma: no cover - success implies the task was set up
            return
        if outcome.task is not None and outcome.task.outlets:
            record_outlet_events(session, request, outcome.task, outcome.context or {})
        if ti.pending_skips:
            session.execute(
                update(TaskInstance)
                .where(
                    TaskInstance.dag_id == request.dag_id,
                    TaskInstance.run_id == request.run_id,
                    TaskInstance.task_id.in_(sorted(ti.pending_skips)),
                    TaskInstance.state.is_(None) | (TaskInstance.state == str(TI.SCHEDULED)),
                )
                .values(state=str(TI.SKIPPED), start_date=utcnow(), end_date=utcnow())
            )


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a try read: its instance, run and DAG version, when it started, the
    instance's ``max_tries`` and, for a deferred try whose trigger fired, where it
    resumes."""

    ti_id: str
    run: DagRunView
    version: VersionRef
    started: datetime
    max_tries: int
    resume: Resumption | None
    # Read here rather than by the try's code: a recorder reads it with many claims in
    # one transaction, and a try whose code reads nothing else needs no connection.
    previous: PreviousSuccess


@dataclass(frozen=True, slots=True)
class EndRecord:
    """A try's end as its task instance row records it: what `write_end` needs, so a
    process other than the try's own (its fork server) can write it. ``xcoms`` are
    encoded values (a success's only); ``log_text`` is the log not yet shipped."""

    request: TryRequest
    ti_id: str
    dag_run_pk: int
    state: TaskInstanceState
    next_try_at: datetime | None
    started: datetime
    ended: datetime
    rendered_fields: dict[str, Any] | None
    xcoms: tuple[tuple[str, Any], ...]
    log_text: str

    @property
    def ident(self) -> TryIdentity:
        r = self.request
        return TryIdentity(
            self.dag_run_pk, r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number
        )


@dataclass(frozen=True, slots=True)
class EndWritten:
    """The instance's state after a try's end was written; ``recorded`` is false when it
    had been changed from outside (its own end was not written)."""

    state: TaskInstanceState
    recorded: bool


# The columns of a deferral, for every end that is not one.
NO_DEFERRAL: dict[str, Any] = {
    "trigger_id": None,
    "trigger_timeout": None,
    "next_method": None,
    "next_kwargs": None,
}


def write_end(
    session: Session, record: EndRecord, *, columns: dict[str, Any] | None = None, wake: bool
) -> TaskInstanceState | None:
    """Write a try's end in the caller's transaction, if the instance still runs that
    try: the row (with ``columns``, a deferral's), the rest of its log and a success's
    XComs; wake the scheduler for its run when ``wake``. None, writing nothing, when the
    instance was changed from outside."""
    ended = run_core(
        session,
        end_statement(),
        {
            "key_ti_id": record.ti_id,
            "key_try_number": record.request.try_number,
            "state": str(record.state),
            "end_date": record.ended,
            "duration": (record.ended - record.started).total_seconds(),
            "next_try_at": record.next_try_at,
            "rendered_fields": record.rendered_fields,
            **(NO_DEFERRAL if columns is None else columns),
        },
    )
    if ended.rowcount != 1:
        return None
    ident = record.ident
    if record.log_text:  # the log is complete when the state says the try ended
        write_chunk(session, ident, record.log_text)
    if record.xcoms:
        owner = xcom.XComOwner(
            ident.dag_run_pk, ident.dag_id, ident.run_id, ident.task_id, ident.map_index
        )
        for key, value in record.xcoms:
            xcom.store(session, owner, key, value)
    if wake:
        wake_scheduler(session, record.dag_run_pk, for_a_try=True)
    return record.state


def current_state(session: Session, ti_id: str) -> TaskInstanceState | None:
    """The instance's state as it is now."""
    state = session.scalar(select(TaskInstance.state).where(TaskInstance.id == ti_id))
    return TI(state) if state else None


def write_log_of_unrecorded(session: Session, record: EndRecord) -> None:
    """The log of a try whose end was not recorded (`write_end` returned None) is kept."""
    if record.log_text:
        write_chunk(session, record.ident, record.log_text)


def _is_plain(record: EndRecord, outcome: TryOutcome) -> bool:
    """Whether `write_end` alone records this end: no trigger or reschedule row, no
    asset events, no skips of other tasks."""
    if record.state in (TI.DEFERRED, TI.UP_FOR_RESCHEDULE) or outcome.deferral is not None:
        return False
    if record.state is not TI.SUCCESS:
        return True
    ti = outcome.runtime_ti
    task = outcome.task
    return not (task is not None and task.outlets) and not (ti is not None and ti.pending_skips)


def _deferral_columns(
    session: Session, deferral: Deferral | None, state: TaskInstanceState, now: datetime
) -> dict[str, Any]:
    """The trigger columns of a try's end: for a deferral, a new trigger row and where to
    resume; for any other end, nothing left over from an earlier deferral."""
    if state is not TI.DEFERRED or deferral is None:
        return NO_DEFERRAL
    trigger_id = session.execute(
        insert(Trigger)
        .values(classpath=deferral.classpath, kwargs=deferral.trigger_kwargs, created_date=now)
        .returning(Trigger.id)
    ).scalar_one()
    return {
        "trigger_id": trigger_id,
        "trigger_timeout": None if deferral.timeout is None else now + deferral.timeout,
        "next_method": deferral.method,
        "next_kwargs": deferral.kwargs,
    }


def record_outlet_events(
    session: Session, request: TryRequest, task: Any, context: dict[str, Any]
) -> None:
    """A successful try updated each asset among its outlets: record the events, with
    the extra the task set through ``outlet_events`` and a templated URI rendered."""
    from tradewind.sdk.assets import outlet_assets
    from tradewind.sdk.templating import render_value

    extras = context.get("outlet_events") or {}
    source = (request.dag_id, request.task_id, request.run_id, request.map_index)
    for asset in outlet_assets(task.outlets):
        extra = dict(extras[asset.uri].extra) if asset.uri in extras else {}
        if "{{" in asset.uri or "{%" in asset.uri:
            extra.setdefault("uri", render_value(task, asset.uri, context))
        model = ensure_asset(session, asset.uri, name=asset.name, group=asset.group)
        record_event(session, model, now=utcnow(), extra=extra, source=source)
        task_logger.info("Recorded an update of asset %s", asset.uri)


@functools.cache
def host_name() -> str:
    """This host's name (looked up once per process: it may need DNS)."""
    return socket.getfqdn()


# --- the statements of a try ----------------------------------------------------------
# Each is built once per process and run with parameters: building a statement and
# computing its cache key costs several times what running the cached compiled form does.
# A forked child inherits them built (see `warm_up`). Parameters that select rows are
# named ``key_*``: an update's own column names are reserved for the values it sets.


def key_params(request: TryRequest) -> dict[str, Any]:
    """The parameters that select one try's task instance."""
    return {
        "key_dag_id": request.dag_id,
        "key_run_id": request.run_id,
        "key_task_id": request.task_id,
        "key_map_index": request.map_index,
        "key_try_number": request.try_number,
    }


@functools.cache
def claim_statement() -> Any:
    """Queued -> running for exactly this try; returns what the try needs of the row.

    A try already running for the claiming process (same host and pid) is claimed again:
    a recorder (`worker.recorder`) that claimed it for this process may have died before
    it could say so."""
    return (
        update(TaskInstance)
        .where(
            TaskInstance.dag_id == bindparam("key_dag_id"),
            TaskInstance.run_id == bindparam("key_run_id"),
            TaskInstance.task_id == bindparam("key_task_id"),
            TaskInstance.map_index == bindparam("key_map_index"),
            TaskInstance.try_number == bindparam("key_try_number"),
            (TaskInstance.state == str(TI.QUEUED))
            | (
                (TaskInstance.state == str(TI.RUNNING))
                & (TaskInstance.hostname == bindparam("claimer_host"))
                & (TaskInstance.pid == bindparam("claimer_pid"))
            ),
        )
        .values(
            state=str(TI.RUNNING),
            start_date=bindparam("started"),
            end_date=None,
            duration=None,
            heartbeat_at=bindparam("started"),
            queued_reason=None,
            hostname=bindparam("claimer_host"),
            unixname=bindparam("claimer_user"),
            pid=bindparam("claimer_pid"),
        )
        .returning(
            TaskInstance.id,
            TaskInstance.dag_version_id,
            TaskInstance.max_tries,
            TaskInstance.next_method,
            TaskInstance.next_kwargs,
        )
    )


@functools.cache
def run_query() -> Any:
    """The try's run, as the columns of a `DagRunView`."""
    return select(*DagRunView.columns()).where(
        DagRun.dag_id == bindparam("dag_id"), DagRun.run_id == bindparam("run_id")
    )


def run_params(request: TryRequest) -> dict[str, Any]:
    return {"dag_id": request.dag_id, "run_id": request.run_id}


def previous_success(session: Session, run: DagRunView) -> PreviousSuccess:
    """The last successful run of ``run``'s DAG before it (see `PreviousSuccess`)."""
    if run.logical_date is None:
        return PreviousSuccess()
    row = run_core(
        session,
        previous_success_query(),
        {"dag_id": run.dag_id, "logical_date": run.logical_date},
    ).first()
    return PreviousSuccess() if row is None else PreviousSuccess(*row)


@functools.cache
def previous_success_query() -> Any:
    return (
        select(*PreviousSuccess.columns())
        .where(
            DagRun.dag_id == bindparam("dag_id"),
            DagRun.state == "success",
            DagRun.logical_date < bindparam("logical_date"),
        )
        .order_by(DagRun.logical_date.desc())
        .limit(1)
    )


@functools.cache
def version_query() -> Any:
    """Where the try's DAG version is defined (parameter ``version_id``)."""
    return select(DagVersion.fileloc, DagVersion.content_hash).where(
        DagVersion.id == bindparam("version_id")
    )


@functools.cache
def heartbeat_statement() -> Any:
    """``beat_at`` for the running instance ``key_ti_id``; no row if it no longer runs."""
    return (
        update(TaskInstance)
        .where(TaskInstance.id == bindparam("key_ti_id"), TaskInstance.state == str(TI.RUNNING))
        .values(heartbeat_at=bindparam("beat_at"))
    )


@functools.cache
def end_statement() -> Any:
    """A try's end, written only if the instance ``key_ti_id`` still runs try
    ``key_try_number``; the columns set are the other parameters given."""
    return update(TaskInstance).where(
        TaskInstance.id == bindparam("key_ti_id"),
        TaskInstance.state == str(TI.RUNNING),
        TaskInstance.try_number == bindparam("key_try_number"),
    )


# Names no task instance: statements compiled or run for it change nothing.
WARM_UP_REQUEST = TryRequest("~warm-up~", "~warm-up~", "~warm-up~", -1, 0)


def warm_up(factory: sessionmaker[Session]) -> None:
    """Build and compile the statements a try runs, in a transaction that is rolled
    back, so processes forked from this one find them built and in the engine's
    statement cache."""
    request = WARM_UP_REQUEST
    session = factory()
    try:
        runner = TaskRunner(factory, settings=None, hostname="warm-up")  # type: ignore[arg-type]
        run_core(session, claim_statement(), runner._claim_params(request, utcnow()))
        run_core(session, run_query(), run_params(request))
        run_core(session, version_query(), {"version_id": "~"})
        run_core(session, xcom.clear_statement(), xcom.clear_params(-1, "~", -1))
        now = utcnow()
        nothing = EndRecord(request, "~", -1, TI.SUCCESS, None, now, now, {}, (), "")
        write_end(session, nothing, wake=False)  # no such row: it writes nothing
        run_core(session, heartbeat_statement(), {"key_ti_id": "~", "beat_at": now})
        # Refused by its foreign key once compiled, which is all this is for.
        with contextlib.suppress(IntegrityError), session.begin_nested():
            ident = TryIdentity(-1, "~", "~", "~", -1, 0)
            write_chunk(session, ident, "~")
    finally:
        session.rollback()
        session.close()


def _unixname() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - containers without a passwd entry
        return str(os.getuid())


__all__ = ["Claim", "EndRecord", "EndWritten", "TaskRunner", "TryRequest", "TryResult", "write_end"]
