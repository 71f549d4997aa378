"""Time triggers: fire at a moment (`DateTimeTrigger`) or after a delay
(`TimeDeltaTrigger`). The event's payload is the moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tradewind.triggers.base import BaseTrigger, TriggerEvent

# Sleep in steps no longer than this, so a clock that jumps (suspend, NTP) is noticed.
_LONGEST_SLEEP = 60.0


class DateTimeTrigger(BaseTrigger):
    """Fires once ``moment`` (an aware datetime) has come."""

    def __init__(self, moment: datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(moment, datetime):
            raise TypeError(f"DateTimeTrigger needs a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None:
            raise ValueError(f"DateTimeTrigger needs an aware datetime, got naive {moment}")
        self.moment = moment

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("tradewind.triggers.temporal.DateTimeTrigger", {"moment": self.moment})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while (left := (self.moment - datetime.now(UTC)).total_seconds()) > 0:
            await asyncio.sleep(min(left, _LONGEST_SLEEP))
        yield TriggerEvent(self.moment)


class TimeDeltaTrigger(DateTimeTrigger):
    """Fires ``delta`` after it was created (stored as the moment, so a trigger handed
    to another triggerer does not start counting again)."""

    def __init__(self, delta: timedelta, **kwargs: Any) -> None:
        if not isinstance(delta, timedelta):
            raise TypeError(f"TimeDeltaTrigger needs a timedelta, got {type(delta).__name__}")
        super().__init__(moment=datetime.now(UTC) + delta, **kwargs)


__all__ = ["DateTimeTrigger", "TimeDeltaTrigger"]
