"""`DateTimeSensor`: wait until a moment (templated), e.g. the next day at 06:00.

Example::

    DateTimeSensor(
        task_id="wait_for_market_close",
        target_time="{{ data_interval_end.replace(hour=21, minute=0) }}",
        mode="reschedule",
    )
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from tradewind.errors import DagDefinitionError, TradewindError
from tradewind.sensors import BaseSensorOperator
from tradewind.triggers.temporal import DateTimeTrigger


class DateTimeSensor(BaseSensorOperator):
    """Done once ``target_time`` has come. A string is rendered as a template, then read
    as an ISO 8601 date-time; one without an offset is taken as UTC."""

    template_fields: ClassVar[Sequence[str]] = ("target_time",)

    def __init__(self, *, target_time: str | datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(target_time, str | datetime):
            raise DagDefinitionError(
                f"sensor {self.task_id!r}: target_time must be a datetime or a string, "
                f"got {target_time!r}",
                filename=self.fileloc,
                lineno=self.lineno,
            )
        self.target_time: str | datetime = (
            target_time if isinstance(target_time, str) else target_time.isoformat()
        )

    def target(self) -> datetime:
        raw = self.target_time
        try:
            moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
        except ValueError:
            raise TradewindError(
                f"sensor {self.task_id!r}: target_time {raw!r} is not an ISO 8601 date-time"
            ) from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def poke(self, context: dict[str, Any]) -> bool:
        target = self.target()
        self.log.info("Checking whether %s has come", target.isoformat())
        return datetime.now(UTC) >= target

    def trigger_for(self, context: dict[str, Any]) -> DateTimeTrigger:
        return DateTimeTrigger(self.target())
