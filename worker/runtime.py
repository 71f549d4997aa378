"""What running task code sees as ``ti`` and ``dag_run`` in its context."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from tradewind import xcom
from tradewind.db import read_session, session_scope
from tradewind.models import DagRun, TaskInstance, TaskReschedule

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.sdk.baseoperator import BaseOperator

logger = logging.getLogger("tradewind.task")


@dataclass(frozen=True)
class DagRunView:
    """A read-only copy of the run's row, as task code may read it."""

    id: int
    dag_id: str
    run_id: str
    run_type: str
    logical_date: datetime | None
    run_after: datetime
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    conf: dict[str, Any]
    start_date: datetime | None
    triggered_by: str | None

    @classmethod
    def columns(cls) -> list[Any]:
        """The run's columns this view holds, to select them without loading the row."""
        return [getattr(DagRun, name) for name in cls.__dataclass_fields__]

    @classmethod
    def of_row(cls, row: Any) -> DagRunView:
        """From a row of `columns`."""
        values = dict(row._mapping)
        values["conf"] = dict(values["conf"] or {})
        return cls(**values)

    @classmethod
    def of(cls, run: DagRun) -> DagRunView:
        return cls(
            id=run.id,
            dag_id=run.dag_id,
            run_id=run.run_id,
            run_type=run.run_type,
            logical_date=run.logical_date,
            run_after=run.run_after,
            data_interval_start=run.data_interval_start,
            data_interval_end=run.data_interval_end,
            conf=dict(run.conf or {}),
            start_date=run.start_date,
            triggered_by=run.triggered_by,
        )


@dataclass(frozen=True)
class PreviousSuccess:
    """The last successful run before the try's own, by logical date, as Airflow's
    ``prev_*_success`` context values show it (all None when there is none, or the run
    has no logical date)."""

    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None

    @classmethod
    def columns(cls) -> list[Any]:
        return [getattr(DagRun, name) for name in cls.__dataclass_fields__]

    def context(self) -> dict[str, Any]:
        """The context's ``prev_*_success`` entries."""
        return {f"prev_{name}_success": getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class RuntimeTaskInstance:
    """The running try: identifiers, XCom access and skip requests.

    XComs pushed with `xcom_push` are written at once (so a later failure keeps them, as
    in Airflow); skips requested by branching operators are applied by the runner in the
    same transaction as the try's final state.
    """

    id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    max_tries: int
    hostname: str
    start_date: datetime
    dag_run: DagRunView
    task: BaseOperator
    factory: sessionmaker[Session] = field(repr=False)
    xcom_max_bytes: int = 1_048_576
    mapped_task_ids: frozenset[str] = frozenset()
    pending_skips: set[str] = field(default_factory=set)
    state: str = "running"

    @property
    def log(self) -> logging.Logger:
        return logger

    @property
    def logical_date(self) -> datetime | None:
        return self.dag_run.logical_date

    def get_dagrun(self) -> DagRunView:
        return self.dag_run

    @property
    def xcom_owner(self) -> xcom.XComOwner:
        return xcom.XComOwner(
            self.dag_run.id, self.dag_id, self.run_id, self.task_id, self.map_index
        )

    def poke_history(self) -> tuple[int, datetime | None]:
        """How many times a sensor in reschedule mode gave its slot back during this
        try, and when its first poke started (its timeout counts from then)."""
        with read_session(self.factory) as session:
            count, first = session.execute(
                select(func.count(), func.min(TaskReschedule.start_date)).where(
                    TaskReschedule.ti_id == self.id,
                    TaskReschedule.try_number == self.try_number,
                )
            ).one()
        return int(count), first

    def skip(self, task_ids: Iterable[str]) -> None:
        """Mark downstream tasks of this run skipped when this try succeeds."""
        self.pending_skips.update(task_ids)

    def xcom_push(self, key: str, value: Any) -> None:
        stored = xcom.encode_value(
            value, max_bytes=self.xcom_max_bytes, where=f"XCom {key!r} of task {self.task_id!r}"
        )
        with session_scope(self.factory) as session:
            xcom.store(session, self.xcom_owner, key, stored)

    def xcom_pull(
        self,
        task_ids: str | Sequence[str] | None = None,
        key: str = xcom.RETURN_VALUE,
        map_indexes: int | Sequence[int] | None = None,
        default: Any = None,
    ) -> Any:
        """Values pushed in this run.

        One task id gives its value (or, for a mapped task, the list of its instances'
        values in map_index order); a list of task ids gives a list in the same order.
        Without task ids, this task's own value is returned.
        """
        single = task_ids is None or isinstance(task_ids, str)
        ids: list[str]
        if task_ids is None:
            ids = [self.task_id]
        elif isinstance(task_ids, str):
            ids = [task_ids]
        else:
            ids = list(task_ids)
        indexes = [map_indexes] if isinstance(map_indexes, int) else map_indexes
        with read_session(self.factory) as session:
            values = xcom.get_values(
                session, dag_run_pk=self.dag_run.id, task_ids=ids, key=key, map_indexes=indexes
            )
            mapped = self._mapped_among(session, ids) if indexes is None else {}
        results = [self._one(task_id, values, mapped, indexes, default) for task_id in ids]
        return results[0] if single else results

    def _one(
        self,
        task_id: str,
        values: dict[tuple[str, int], Any],
        mapped: dict[str, list[int]],
        indexes: Sequence[int] | None,
        default: Any,
    ) -> Any:
        if task_id in mapped:  # one element per instance, None where nothing was pushed
            return [values.get((task_id, m)) for m in mapped[task_id]]
        if indexes is not None and len(indexes) > 1:
            return [values.get((task_id, m)) for m in indexes]
        for (t, _m), value in values.items():
            if t == task_id:
                return value
        return default

    def _mapped_among(self, session: Session, task_ids: list[str]) -> dict[str, list[int]]:
        """The map indexes of each mapped task among ``task_ids`` (removed ones left out)."""
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index)
            .where(
                TaskInstance.dag_id == self.dag_id,
                TaskInstance.run_id == self.run_id,
                TaskInstance.task_id.in_(task_ids),
                TaskInstance.map_index >= 0,
                TaskInstance.state.is_(None) | (TaskInstance.state != "removed"),
            )
            .order_by(TaskInstance.map_index)
        )
        mapped: dict[str, list[int]] = {}
        for task_id, map_index in rows:
            mapped.setdefault(task_id, []).append(map_index)
        return mapped
