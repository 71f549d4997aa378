"""`ExternalTaskSensor`: wait for a task (or a whole run) of another DAG.

Example::

    # the report waits for the same day's `load` task of the ingestion DAG
    ExternalTaskSensor(
        task_id="wait_for_ingestion",
        external_dag_id="ingest_orders",
        external_task_id="load",
        failed_states=["failed", "upstream_failed"],
        mode="reschedule",
    )

The other DAG's run is found by logical date: the same as this run's, or shifted by
``execution_delta`` (subtracted, as in Airflow), or the dates ``execution_date_fn``
returns.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from tradewind.errors import DagDefinitionError, TaskFail, TaskSkip, TradewindError
from tradewind.sdk._operator_args import as_states
from tradewind.sensors import BaseSensorOperator
from tradewind.state import DagRunState, TaskInstanceState
from tradewind.triggers.external_task import (
    FAILED,
    SKIPPED,
    SUCCESS,
    ExternalTaskTrigger,
    awaited_states,
    judge,
)


class ExternalTaskSensor(BaseSensorOperator):
    """Done when ``external_task_id`` (or every one of ``external_task_ids``, or with
    neither, the whole run) of ``external_dag_id`` is in one of ``allowed_states`` for
    every logical date looked at.

    A state in ``failed_states`` fails this task at once (no retry), one in
    ``skipped_states`` skips it; ``soft_fail`` turns the failure into a skip too.
    ``check_existence`` fails at the first poke when the other DAG is unknown.
    """

    template_fields: ClassVar[Sequence[str]] = (
        "external_dag_id",
        "external_task_id",
        "external_task_ids",
    )
    ui_color: ClassVar[str] = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Iterable[str] | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: timedelta | None = None,
        execution_date_fn: Callable[..., Any] | None = None,
        check_existence: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        def fail(message: str) -> DagDefinitionError:
            return DagDefinitionError(
                f"sensor {self.task_id!r}: {message}", filename=self.fileloc, lineno=self.lineno
            )

        if external_task_id is not None and external_task_ids is not None:
            raise fail("give external_task_id or external_task_ids, not both")
        if execution_delta is not None and execution_date_fn is not None:
            raise fail("give execution_delta or execution_date_fn, not both")
        if execution_delta is not None and not isinstance(execution_delta, timedelta):
            raise fail(f"execution_delta must be a timedelta, got {execution_delta!r}")
        if execution_date_fn is not None and not callable(execution_date_fn):
            raise fail(f"execution_date_fn must be callable, got {execution_date_fn!r}")
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = list(external_task_ids) if external_task_ids else None
        whole_run = external_task_id is None and not self.external_task_ids
        known = {str(s) for s in (DagRunState if whole_run else TaskInstanceState)}
        what = "a run" if whole_run else "a task instance"
        self.allowed_states = as_states(allowed_states, ["success"], known, what, fail)
        self.skipped_states = as_states(skipped_states, [], known, what, fail)
        self.failed_states = as_states(failed_states, [], known, what, fail)
        overlap = set(self.allowed_states) & set(self.failed_states + self.skipped_states)
        if overlap:
            raise fail(f"states both allowed and failed/skipped: {', '.join(sorted(overlap))}")
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn
        self.check_existence = bool(check_existence)
        self._checked = False

    @property
    def task_ids(self) -> list[str] | None:
        if self.external_task_id is not None:
            return [self.external_task_id]
        return self.external_task_ids

    def logical_dates(self, context: dict[str, Any]) -> list[datetime]:
        logical_date = context.get("logical_date")
        if logical_date is None:
            raise TradewindError(
                f"sensor {self.task_id!r} looks for the other DAG's run by logical date, and "
                "this run has none (trigger it with a logical date)"
            )
        if self.execution_delta is not None:
            return [logical_date - self.execution_delta]
        if self.execution_date_fn is not None:
            function = self.execution_date_fn
            takes_context = len(inspect.signature(function).parameters) > 1
            found = function(logical_date, context) if takes_context else function(logical_date)
            return list(found) if isinstance(found, list | tuple | set) else [found]
        return [logical_date]

    def poke(self, context: dict[str, Any]) -> bool:
        from tradewind.db import process_session_factory, read_session

        dates = self.logical_dates(context)
        with read_session(process_session_factory()) as session:
            if self.check_existence and not self._checked:
                self._check_existence(session)
            states = awaited_states(session, self.external_dag_id, self.task_ids, dates)
        what = self._what()
        self.log.info(
            "Poking for %s on %s: %s",
            what,
            ", ".join(d.isoformat() for d in dates),
            "; ".join(f"{k}: {sorted(map(str, v))}" for k, v in sorted(states.items()))
            or "nothing yet",
        )
        verdict = judge(
            states,
            expected=len(dates) * (len(self.task_ids) if self.task_ids else 1),
            allowed=self.allowed_states,
            failed=self.failed_states,
            skipped=self.skipped_states,
        )
        seen = ", ".join(sorted({str(s) for found in states.values() for s in found}))
        if verdict == FAILED:
            message = f"{what} is in a failed state ({seen})"
            if self.soft_fail:
                raise TaskSkip(message)
            raise TaskFail(message)
        if verdict == SKIPPED:
            raise TaskSkip(f"{what} is in a skipped state ({seen})")
        return verdict == SUCCESS

    def _what(self) -> str:
        return self.external_dag_id + (f".{','.join(self.task_ids)}" if self.task_ids else "")

    def trigger_for(self, context: dict[str, Any]) -> ExternalTaskTrigger:
        return ExternalTaskTrigger(
            external_dag_id=self.external_dag_id,
            logical_dates=self.logical_dates(context),
            external_task_ids=self.task_ids,
            allowed_states=self.allowed_states,
            failed_states=self.failed_states,
            skipped_states=self.skipped_states,
            poke_interval=self.poke_interval.total_seconds(),
        )

    def _check_existence(self, session: Any) -> None:
        from tradewind.models import DagModel

        model = session.get(DagModel, self.external_dag_id)
        if model is None or model.is_stale:
            raise TaskFail(f"the external DAG {self.external_dag_id!r} does not exist")
        self._checked = True
