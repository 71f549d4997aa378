"""`ExternalTaskTrigger`: fires when tasks (or whole runs) of another DAG reach a state.

The same check serves `ExternalTaskSensor` in poke and reschedule modes, so a sensor
decides alike whether it waits in a worker slot or in the triggerer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tradewind.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SUCCESS, FAILED, SKIPPED = "success", "failed", "skipped"


def awaited_states(
    session: Session, dag_id: str, task_ids: Sequence[str] | None, dates: Sequence[datetime]
) -> dict[str, set[str | None]]:
    """The states of each awaited thing, keyed ``date`` (a whole run) or ``date/task``
    (a mapped task has one per instance)."""
    from tradewind.models import DagRun, TaskInstance

    found: dict[str, set[str | None]] = {}
    if not task_ids:
        rows = session.execute(
            select(DagRun.logical_date, DagRun.state).where(
                DagRun.dag_id == dag_id, DagRun.logical_date.in_(dates)
            )
        )
        for when, run_state in rows:
            found.setdefault(_iso(when), set()).add(run_state)
        return found
    task_rows = session.execute(
        select(DagRun.logical_date, TaskInstance.task_id, TaskInstance.state)
        .join(
            TaskInstance,
            (TaskInstance.dag_id == DagRun.dag_id) & (TaskInstance.run_id == DagRun.run_id),
        )
        .where(
            DagRun.dag_id == dag_id,
            DagRun.logical_date.in_(dates),
            TaskInstance.task_id.in_(task_ids),
        )
    )
    for when, task_id, ti_state in task_rows:
        found.setdefault(f"{_iso(when)}/{task_id}", set()).add(ti_state)
    return found


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when is not None else "-"


def judge(
    states: dict[str, set[str | None]],
    *,
    expected: int,
    allowed: Sequence[str],
    failed: Sequence[str],
    skipped: Sequence[str],
) -> str | None:
    """``failed``, ``skipped`` or ``success`` once decided; None while still waiting."""
    seen = {state for found in states.values() for state in found}
    if seen & set(failed):
        return FAILED
    if seen & set(skipped):
        return SKIPPED
    if len(states) == expected and all(found <= set(allowed) for found in states.values()):
        return SUCCESS
    return None


class ExternalTaskTrigger(BaseTrigger):
    """Checks every ``poke_interval`` seconds; the event's payload is
    ``{"status": "success" | "failed" | "skipped", "states": {...}}``."""

    def __init__(
        self,
        external_dag_id: str,
        logical_dates: list[datetime],
        external_task_ids: list[str] | None = None,
        allowed_states: list[str] | None = None,
        failed_states: list[str] | None = None,
        skipped_states: list[str] | None = None,
        poke_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.external_dag_id = external_dag_id
        self.logical_dates = list(logical_dates)
        self.external_task_ids = list(external_task_ids) if external_task_ids else None
        self.allowed_states = list(allowed_states or [SUCCESS])
        self.failed_states = list(failed_states or [])
        self.skipped_states = list(skipped_states or [])
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "tradewind.triggers.external_task.ExternalTaskTrigger",
            {
                "external_dag_id": self.external_dag_id,
                "logical_dates": self.logical_dates,
                "external_task_ids": self.external_task_ids,
                "allowed_states": self.allowed_states,
                "failed_states": self.failed_states,
                "skipped_states": self.skipped_states,
                "poke_interval": self.poke_interval,
            },
        )

    def _check(self) -> tuple[str | None, dict[str, set[str | None]]]:
        from tradewind.db import process_session_factory, read_session

        with read_session(process_session_factory()) as session:
            states = awaited_states(
                session, self.external_dag_id, self.external_task_ids, self.logical_dates
            )
        expected = len(self.logical_dates) * len(self.external_task_ids or [None])
        verdict = judge(
            states,
            expected=expected,
            allowed=self.allowed_states,
            failed=self.failed_states,
            skipped=self.skipped_states,
        )
        return verdict, states

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            verdict, states = await asyncio.to_thread(self._check)
            if verdict is not None:
                shown = {key: sorted(map(str, found)) for key, found in states.items()}
                yield TriggerEvent({"status": verdict, "states": shown})
                return
            await asyncio.sleep(self.poke_interval)


class DagRunStateTrigger(BaseTrigger):
    """Fires when run ``run_id`` of ``dag_id`` is in one of ``states`` (or is gone);
    the event's payload is ``{"run_id": ..., "state": <the state, or None if gone>}``."""

    def __init__(
        self,
        dag_id: str,
        run_id: str,
        states: list[str],
        poll_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dag_id, self.run_id = dag_id, run_id
        self.states = list(states)
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "tradewind.triggers.external_task.DagRunStateTrigger",
            {
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "states": self.states,
                "poll_interval": self.poll_interval,
            },
        )

    def _state(self) -> tuple[bool, str | None]:
        from tradewind.db import process_session_factory, read_session
        from tradewind.models import DagRun

        with read_session(process_session_factory()) as session:
            found = session.execute(
                select(DagRun.state).where(
                    DagRun.dag_id == self.dag_id, DagRun.run_id == self.run_id
                )
            ).first()
        return (found is not None, found[0] if found is not None else None)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            exists, state = await asyncio.to_thread(self._state)
            if not exists or state in self.states:
                yield TriggerEvent({"run_id": self.run_id, "state": state})
                return
            await asyncio.sleep(self.poll_interval)


__all__ = ["DagRunStateTrigger", "ExternalTaskTrigger", "awaited_states", "judge"]
