"""Executing the code of one try: load the task, build its context, render its
templates, run it under its timeout, and sort how it ended.

Nothing here writes a try's state; `worker.task_runner` records what this returns.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tradewind import xcom
from tradewind.db import read_session
from tradewind.errors import (
    TaskDefer,
    TaskFail,
    TaskReschedule,
    TaskRetry,
    TaskSkip,
    TaskTerminated,
    TaskTimeout,
    TradewindError,
    XComError,
)
from tradewind.models import DagVersion
from tradewind.models.base import utcnow
from tradewind.sdk.context import base_context
from tradewind.serialization import jsonable
from tradewind.state import TaskInstanceState, TryEnd
from tradewind.triggers.base import trigger_record
from tradewind.triggers.encoding import decode, encode
from worker.dag_cache import DagFileCache, VersionRef
from worker.runtime import DagRunView, PreviousSuccess, RuntimeTaskInstance
from worker.timeout import execution_timeout, stoppable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.sdk.baseoperator import BaseOperator
    from tradewind.settings import Settings
    from worker.task_runner import TryRequest

task_logger = logging.getLogger("tradewind.task")
TI = TaskInstanceState


@dataclass(frozen=True)
class Resumption:
    """Where a deferred try continues once its trigger fired (or timed out, or failed)."""

    method: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Deferral:
    """A try that handed its wait to the triggerer: the trigger to store (class path and
    encoded kwargs), the method to resume in and its encoded kwargs, the time limit."""

    classpath: str
    trigger_kwargs: dict[str, Any]
    method: str
    kwargs: dict[str, Any]
    timeout: timedelta | None


@dataclass
class TryOutcome:
    """How the code of a try ended, before it is recorded."""

    end: TryEnd
    error: BaseException | None = None
    reschedule_at: datetime | None = None
    deferral: Deferral | None = None
    xcoms: list[tuple[str, Any]] = field(default_factory=list)
    rendered_fields: dict[str, Any] | None = None
    task: BaseOperator | None = None
    context: dict[str, Any] | None = None
    runtime_ti: RuntimeTaskInstance | None = None


_END_OF_EXCEPTION: list[tuple[type[BaseException], TryEnd]] = [
    (TaskSkip, TryEnd.SKIPPED),
    (TaskFail, TryEnd.FAILED_NO_RETRY),
    (TaskRetry, TryEnd.RETRY_REQUESTED),
    (TaskReschedule, TryEnd.RESCHEDULED),
    (TaskDefer, TryEnd.DEFERRED),
    (TaskTimeout, TryEnd.TIMED_OUT),
    (TaskTerminated, TryEnd.INTERRUPTED),
]


def classify(error: BaseException) -> TryEnd:
    for kind, end in _END_OF_EXCEPTION:
        if isinstance(error, kind):
            return end
    return TryEnd.FAILED


class TryExecution:
    """Runs the code of tries in this process (one instance per process)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        dags: DagFileCache,
        hostname: str,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.dags = dags
        self.hostname = hostname

    def execute(
        self,
        request: TryRequest,
        ti_id: str,
        run: DagRunView,
        version: VersionRef,
        resume: Resumption | None,
        previous: PreviousSuccess,
    ) -> TryOutcome:
        outcome = TryOutcome(end=TryEnd.FAILED)
        try:
            with stoppable():
                self._prepare_and_run(request, ti_id, run, version, outcome, resume, previous)
        except TaskDefer as deferred:
            try:
                outcome.deferral = _deferral_of(deferred)
                outcome.end = TryEnd.DEFERRED
            except TradewindError as error:
                outcome.end, outcome.error = TryEnd.FAILED, error
            self._log_end(request, outcome)
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt):
                raise
            outcome.end, outcome.error = classify(error), error
            if isinstance(error, TaskReschedule):
                outcome.reschedule_at = error.reschedule_at  # type: ignore[assignment]
            self._log_end(request, outcome)
        return outcome

    def _prepare_and_run(
        self,
        request: TryRequest,
        ti_id: str,
        run: DagRunView,
        version: VersionRef,
        outcome: TryOutcome,
        resume: Resumption | None,
        previous: PreviousSuccess,
    ) -> None:
        dag = self.dags.get_version(version, request.dag_id, lambda: self._source(version))
        # Rendering writes into the operator: work on a copy, never on the cached DAG's.
        task = copy.copy(dag.get_task(request.task_id))
        runtime_ti = self._runtime_ti(request, ti_id, run, task)
        context = self._context(dag, task, runtime_ti, run, previous)
        outcome.task, outcome.context, outcome.runtime_ti = task, context, runtime_ti
        if task.is_mapped:
            task = task.unmap(context, request.map_index)  # type: ignore[attr-defined]
            context["task"] = runtime_ti.task = outcome.task = task
        self._run_code(task, context, outcome, resume)

    def _source(self, version: VersionRef) -> str | None:
        with read_session(self.factory) as session:
            return session.scalar(
                select(DagVersion.source_code).where(DagVersion.id == version.version_id)
            )

    def _run_code(
        self,
        task: BaseOperator,
        context: dict[str, Any],
        outcome: TryOutcome,
        resume: Resumption | None,
    ) -> None:
        _call_all(task.on_execute_callback, context, "on_execute_callback")
        outcome.rendered_fields = jsonable(task.render_template_fields(context))
        with execution_timeout(_seconds(task.execution_timeout)):
            try:
                task.pre_execute(context)
                if resume is None:
                    result = task.execute(context)
                else:
                    task_logger.info("Resuming after deferral in %s", resume.method)
                    result = task.resume_execution(resume.method, decode(resume.kwargs), context)
                task.post_execute(context, result)
            except TaskTimeout:
                task.on_kill()
                raise
        outcome.xcoms = self._xcoms_of(task, result)
        outcome.end = TryEnd.SUCCESS
        task_logger.info(
            "Marking task as SUCCESS. dag_id=%s, task_id=%s", task.dag_id, task.task_id
        )

    def _xcoms_of(self, task: BaseOperator, result: Any) -> list[tuple[str, Any]]:
        _check_mappable_output(task, result)
        if not task.do_xcom_push or result is None:
            return []
        limit = self.settings.xcom_max_size_bytes
        where = f"the return value of task {task.task_id!r}"
        pushed = [(xcom.RETURN_VALUE, xcom.encode_value(result, max_bytes=limit, where=where))]
        if task.multiple_outputs:
            if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
                raise TypeError(
                    f"task {task.task_id!r} has multiple_outputs=True and must return a dict "
                    f"with string keys, not {type(result).__name__}"
                )
            pushed.extend(
                (k, xcom.encode_value(v, max_bytes=limit, where=where)) for k, v in result.items()
            )
        return pushed

    def _runtime_ti(
        self, request: TryRequest, ti_id: str, run: DagRunView, task: BaseOperator
    ) -> RuntimeTaskInstance:
        return RuntimeTaskInstance(
            id=ti_id,
            dag_id=request.dag_id,
            run_id=request.run_id,
            task_id=request.task_id,
            map_index=request.map_index,
            try_number=request.try_number,
            max_tries=task.retries,
            hostname=self.hostname,
            start_date=utcnow(),
            dag_run=run,
            task=task,
            factory=self.factory,
            xcom_max_bytes=self.settings.xcom_max_size_bytes,
        )

    def _context(
        self,
        dag: Any,
        task: BaseOperator,
        ti: RuntimeTaskInstance,
        run: DagRunView,
        previous: PreviousSuccess,
    ) -> dict[str, Any]:
        params = dag.params.merged(task.params).resolve(run.conf)
        context = base_context(
            dag=dag,
            task=task,
            ti=ti,
            dag_run=run,
            params=params,
            logical_date=run.logical_date,
            data_interval_start=run.data_interval_start,
            data_interval_end=run.data_interval_end,
        )
        context["conf"] = self.settings
        context.update(previous.context())
        return context

    def _log_end(self, request: TryRequest, outcome: TryOutcome) -> None:
        error = outcome.error
        if outcome.end is TryEnd.SKIPPED:
            task_logger.info("Task skipped: %s", error)
        elif outcome.end is TryEnd.RESCHEDULED:
            task_logger.info("Rescheduled to %s", outcome.reschedule_at)
        elif outcome.end is TryEnd.DEFERRED and outcome.deferral is not None:
            deferral = outcome.deferral
            task_logger.info(
                "Deferred to the triggerer: %s; resuming in %s%s",
                deferral.classpath,
                deferral.method,
                f" (timeout {deferral.timeout})" if deferral.timeout is not None else "",
            )
        else:
            task_logger.error("Task failed with exception", exc_info=error)

    def run_callbacks(
        self, request: TryRequest, outcome: TryOutcome, state: TaskInstanceState
    ) -> None:
        task, context = outcome.task, outcome.context
        if task is None or context is None:
            return
        name = {
            TI.SUCCESS: "on_success_callback",
            TI.FAILED: "on_failure_callback",
            TI.UP_FOR_RETRY: "on_retry_callback",
            TI.SKIPPED: "on_skipped_callback",
        }.get(state)
        if name is None:
            return
        if outcome.error is not None:
            context["exception"] = outcome.error
        if outcome.runtime_ti is not None:
            outcome.runtime_ti.state = str(state)
        _call_all(getattr(task, name), context, name)
        if task.email and (
            (state is TI.FAILED and task.email_on_failure)
            or (state is TI.UP_FOR_RETRY and task.email_on_retry)
        ):
            email_failure(task, context, self.settings)


def _deferral_of(deferred: TaskDefer) -> Deferral:
    classpath, trigger_kwargs = trigger_record(deferred.trigger)
    try:
        kwargs = encode(deferred.kwargs, where=f"the kwargs of defer({deferred.method_name!r})")
    except TypeError as exc:
        raise TradewindError(str(exc)) from None
    if "event" in kwargs:
        raise TradewindError("defer(kwargs=...) may not use the key 'event': the trigger's")
    timeout = deferred.timeout
    if timeout is not None and not isinstance(timeout, timedelta):
        raise TradewindError(f"defer(timeout=...) must be a timedelta, got {timeout!r}")
    return Deferral(classpath, trigger_kwargs, deferred.method_name, kwargs, timeout)


def _call_all(callbacks: list[Any], context: dict[str, Any], name: str) -> None:
    for callback in callbacks:
        try:
            callback(context)
        except Exception:
            task_logger.exception("%s %r failed", name, callback)


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value.total_seconds())


def email_failure(task: Any, context: dict[str, Any], settings: Settings) -> None:
    """Airflow's email_on_failure / email_on_retry: one email to ``task.email``."""
    from tradewind.notifications import EmailNotifier

    try:
        EmailNotifier(to=task.email).__call__(context)
    except Exception:
        task_logger.exception("Could not send the failure email to %s", task.email)


def _check_mappable_output(task: BaseOperator, result: Any) -> None:
    """A value a mapped task expands over must be a list or a dict (Airflow fails the
    task that pushed anything else, rather than silently skipping the mapped one)."""
    from tradewind.sdk.mapped import MappedOperator
    from tradewind.sdk.xcom_arg import XComArg

    if task.dag is None:
        return
    # A task that maps over this one's output is downstream of it (expand() sets that),
    # so only those are looked at, not every task of the DAG.
    for other_id in sorted(task.downstream_task_ids):
        other = task.dag.task_dict.get(other_id)
        if not isinstance(other, MappedOperator):
            continue
        for source in other.expand_input.values():
            if not isinstance(source, XComArg) or source.operator.task_id != task.task_id:
                continue
            if isinstance(source.operator, MappedOperator):
                continue  # each instance gives one element
            value = (
                result
                if source.key == xcom.RETURN_VALUE
                else (result.get(source.key) if isinstance(result, dict) else None)
            )
            if not isinstance(value, list | tuple | dict):
                raise XComError(
                    f"task {other.task_id!r} maps over the output of {task.task_id!r}"
                    f"{'' if source.key == xcom.RETURN_VALUE else f'[{source.key!r}]'}, which "
                    f"must be a list or a dict, but it returned {type(value).__name__}"
                )
