"""`TimeDeltaSensor`: wait until some time after the end of the run's data interval.

Example::

    # a daily run for 2026-03-01 (interval ends 2026-03-02 00:00) waits until 02:00
    TimeDeltaSensor(task_id="settle", delta=timedelta(hours=2), mode="reschedule")
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tradewind.errors import DagDefinitionError
from tradewind.sdk._operator_args import as_timedelta
from tradewind.sensors import BaseSensorOperator
from tradewind.triggers.temporal import DateTimeTrigger


class TimeDeltaSensor(BaseSensorOperator):
    """Done once ``delta`` has passed since the end of the run's data interval (or,
    for a run without one, since the run was due: its ``run_after``)."""

    def __init__(self, *, delta: float | timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)

        def fail(message: str) -> DagDefinitionError:
            return DagDefinitionError(
                f"sensor {self.task_id!r}: {message}", filename=self.fileloc, lineno=self.lineno
            )

        self.delta = as_timedelta(delta, "delta", fail)

    def target(self, context: dict[str, Any]) -> datetime:
        start = context.get("data_interval_end")
        if start is None:
            start = context["dag_run"].run_after
        return start + self.delta  # type: ignore[no-any-return]

    def poke(self, context: dict[str, Any]) -> bool:
        target = self.target(context)
        self.log.info("Checking whether %s has come", target.isoformat())
        return datetime.now(UTC) >= target

    def trigger_for(self, context: dict[str, Any]) -> DateTimeTrigger:
        return DateTimeTrigger(self.target(context))
