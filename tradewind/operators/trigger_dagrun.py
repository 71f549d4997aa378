"""`TriggerDagRunOperator`: start a run of another DAG, and optionally wait for it.

Example::

    TriggerDagRunOperator(
        task_id="retrain",
        trigger_dag_id="ml_training_pipeline",
        conf={"sample_rows": 5000, "source_day": "{{ ds }}"},
        wait_for_completion=True,
        poke_interval=30,
    )

With ``deferrable=True`` the wait happens in the triggerer, not in a worker slot.

The run is created in the metadata database as a manual run (``triggered_by`` is
``operator``) and started by the scheduler like any other; a paused DAG's run waits
until the DAG is unpaused. The run id and logical date go to XCom as
``trigger_run_id`` and ``trigger_logical_date``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from tradewind.errors import (
    DagDefinitionError,
    DagNotFound,
    DagRunAlreadyExists,
    TaskSkip,
    TradewindError,
)
from tradewind.sdk._operator_args import as_states, as_timedelta
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.state import DagRunState
from tradewind.triggers.external_task import DagRunStateTrigger

XCOM_RUN_ID = "trigger_run_id"
XCOM_LOGICAL_DATE = "trigger_logical_date"
_NOW = object()  # logical_date not given: the moment of triggering


class TriggerDagRunOperator(BaseOperator):
    """Create a run of ``trigger_dag_id`` with ``conf`` (both templated, as are
    ``trigger_run_id`` and ``logical_date``).

    :param logical_date: the run's logical date (a datetime or an ISO string); the
        moment of triggering when not given, ``None`` for a run without one.
    :param reset_dag_run: when a run with that id exists, clear it so that it runs
        again, instead of failing.
    :param skip_when_already_exists: when a run with that id exists, skip this task.
    :param wait_for_completion: wait until the run ends: done in one of
        ``allowed_states`` (default success), failed in one of ``failed_states``
        (default failed), checking every ``poke_interval`` (default 60 s).
    """

    template_fields: ClassVar[Sequence[str]] = (
        "trigger_dag_id",
        "trigger_run_id",
        "logical_date",
        "conf",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"conf": "py"}
    ui_color: ClassVar[str] = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: dict[str, Any] | None = None,
        logical_date: str | datetime | object | None = _NOW,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float = 60,
        allowed_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        skip_when_already_exists: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        def fail(message: str) -> DagDefinitionError:
            return DagDefinitionError(
                f"task {self.task_id!r}: {message}", filename=self.fileloc, lineno=self.lineno
            )

        if not isinstance(trigger_dag_id, str) or not trigger_dag_id:
            raise fail(f"trigger_dag_id must be a DAG id, got {trigger_dag_id!r}")
        if conf is not None and not isinstance(conf, dict):
            raise fail(f"conf must be a dict, got {type(conf).__name__}")
        known = {str(s) for s in DagRunState}
        self.allowed_states = as_states(allowed_states, ["success"], known, "a run", fail)
        self.failed_states = as_states(failed_states, ["failed"], known, "a run", fail)
        if set(self.allowed_states) & set(self.failed_states):
            raise fail("a state cannot be both allowed and failed")
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.logical_date = logical_date
        self.reset_dag_run = bool(reset_dag_run)
        self.wait_for_completion = bool(wait_for_completion)
        self.poke_interval = as_timedelta(poke_interval, "poke_interval", fail).total_seconds()
        self.skip_when_already_exists = bool(skip_when_already_exists)
        self.deferrable = bool(deferrable)

    def execute(self, context: dict[str, Any]) -> None:
        from tradewind.db import process_session_factory, session_scope

        now = datetime.now(UTC)
        logical_date = self._logical_date(now)
        with session_scope(process_session_factory()) as session:
            run_id = self._trigger(session, logical_date, now)
        self.log.info("Triggered %s run %s", self.trigger_dag_id, run_id)
        ti = context["ti"]
        ti.xcom_push(key=XCOM_RUN_ID, value=run_id)
        ti.xcom_push(
            key=XCOM_LOGICAL_DATE, value=logical_date.isoformat() if logical_date else None
        )
        if self.wait_for_completion and self.deferrable:
            self.defer(
                trigger=DagRunStateTrigger(
                    dag_id=self.trigger_dag_id,
                    run_id=run_id,
                    states=[*self.allowed_states, *self.failed_states],
                    poll_interval=self.poke_interval,
                ),
                method_name="execute_complete",
            )
        if self.wait_for_completion:
            self._wait(run_id)

    def execute_complete(self, context: dict[str, Any], event: Any = None) -> None:
        """Where a deferred wait for the triggered run resumes."""
        self._judge(event["run_id"], event["state"])

    def _logical_date(self, now: datetime) -> datetime | None:
        value = self.logical_date
        if value is _NOW:
            return now
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise TradewindError(
                    f"task {self.task_id!r}: logical_date {value!r} is not an ISO 8601 date-time"
                ) from None
        if not isinstance(value, datetime):
            raise TradewindError(
                f"task {self.task_id!r}: logical_date must be a datetime, got {value!r}"
            )
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def _trigger(self, session: Any, logical_date: datetime | None, now: datetime) -> str:
        from sqlalchemy import select

        from tradewind.clearing import clear
        from tradewind.dagruns import RunRequest, create_dag_run, latest_version
        from tradewind.models import DagModel, DagRun, TaskInstance
        from tradewind.state import DagRunType

        model = session.get(DagModel, self.trigger_dag_id)
        if model is None or model.is_stale:
            raise DagNotFound(f"DAG {self.trigger_dag_id!r} to trigger does not exist")
        request = RunRequest(
            run_type=DagRunType.MANUAL,
            run_after=logical_date or now,
            logical_date=logical_date,
            run_id=self.trigger_run_id or None,
            conf=self.conf or {},
            triggered_by="operator",
        )
        try:  # the uniqueness check comes before any write
            run = create_dag_run(
                session, model, latest_version(session, self.trigger_dag_id), request, now=now
            )
            return str(run.run_id)
        except DagRunAlreadyExists:
            if self.skip_when_already_exists:
                raise TaskSkip(f"{self.trigger_dag_id} already has that run") from None
            if not self.reset_dag_run:
                raise
        existing = session.scalar(
            select(DagRun).where(
                DagRun.dag_id == self.trigger_dag_id,
                (DagRun.run_id == request.run_id)
                if request.run_id
                else (DagRun.logical_date == logical_date),
            )
        )
        if existing is None:  # pragma: no cover - the conflict was just reported
            raise DagRunAlreadyExists(f"{self.trigger_dag_id}: the run vanished")
        rows = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == existing.dag_id, TaskInstance.run_id == existing.run_id
            )
        ).all()
        existing.conf = dict(self.conf or {})
        clear(session, rows, now=now)
        self.log.info("Cleared the existing run %s (reset_dag_run)", existing.run_id)
        return str(existing.run_id)

    def _wait(self, run_id: str) -> None:
        from sqlalchemy import select

        from tradewind.db import process_session_factory, read_session
        from tradewind.models import DagRun

        while True:
            time.sleep(self.poke_interval)
            with read_session(process_session_factory()) as session:
                state = session.scalar(
                    select(DagRun.state).where(
                        DagRun.dag_id == self.trigger_dag_id, DagRun.run_id == run_id
                    )
                )
            if self._judge(run_id, state):
                return

    def _judge(self, run_id: str, state: str | None) -> bool:
        """True once the triggered run ended well; raises if it ended badly."""
        self.log.info("Run %s of %s is %s", run_id, self.trigger_dag_id, state)
        if state in self.failed_states:
            raise TradewindError(f"{self.trigger_dag_id} run {run_id} ended {state}")
        if state is None:
            raise TradewindError(f"{self.trigger_dag_id} run {run_id} was deleted")
        return state in self.allowed_states
