"""Cron schedules: `CronSchedule` (Airflow's CronTriggerTimetable with no interval), which reads
a cron expression on the wall clock of the DAG's time zone, and the presets (``"@daily"`` and
the like) that expand into cron text. croniter is imported only when a cron schedule is built
or evaluated, so importing the package stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from tradewind.errors import DagDefinitionError
from tradewind.schedules.base import (
    _UTC_NAMES,
    DagRunInfo,
    DataInterval,
    Schedule,
    TimeRestriction,
    _interval_of,
    _localize,
    _opt_utc,
    _zone,
    to_utc,
)

# Airflow expands these six itself, exactly as written (airflow/utils/dates.py cron_presets),
# and shows the expansion as the summary. croniter also reads "@midnight" and "@annually", and
# any preset in any letter case; Airflow shows those as written.
_AIRFLOW_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
_PRESETS = {**_AIRFLOW_PRESETS, "@annually": "0 0 1 1 *", "@midnight": "0 0 * * *"}


@dataclass(frozen=True, slots=True)
class CronSchedule(Schedule):
    """Runs at each cron fire time, read on the wall clock of `timezone` (Airflow's
    CronTriggerTimetable with no interval: logical date = run_after = fire time).

    `expression` is what croniter evaluates (a preset already expanded); `preset` keeps the
    text the user wrote, such as ``"@daily"``. The summary is what Airflow shows: the expanded
    text for Airflow's own six presets (``"0 0 * * *"`` for ``"@daily"``), else what was written.
    """

    expression: str
    timezone: str = "UTC"
    preset: str | None = None
    type_name: ClassVar[str] = "CronTriggerTimetable"
    periodic: ClassVar[bool] = True

    def __post_init__(self) -> None:
        from croniter import CroniterError, croniter

        _zone(self.timezone)
        try:
            # Airflow only builds a croniter here, so 6 fields (seconds last) and 7 (year)
            # are accepted as croniter reads them. One fire time is asked for as well, so
            # an expression that can never fire ("0 0 30 2 *") fails now, not in the scheduler.
            croniter(self.expression, start_time=datetime(2000, 1, 1)).get_next(datetime)
        except (CroniterError, ValueError, TypeError, KeyError, AttributeError) as exc:
            text = self.preset or self.expression
            raise DagDefinitionError(f"invalid cron expression {text!r}: {exc}") from exc

    @property
    def summary(self) -> str:
        if self.preset is None or self.preset in _AIRFLOW_PRESETS:
            return self.expression
        return self.preset

    @property
    def description(self) -> str:
        from tradewind.schedules.words import describe_cron

        words = describe_cron(self.expression) or self.expression
        return words if self.timezone in _UTC_NAMES else f"{words} ({self.timezone})"

    def next_dagrun_info(
        self, *, last_automated: DagRunInfo | None, restriction: TimeRestriction, now: datetime
    ) -> DagRunInfo | None:
        # Airflow's _TriggerTimetable.next_dagrun_info with run_immediately=False.
        now = to_utc(now)
        earliest = _opt_utc(restriction.earliest)
        candidates: list[datetime] = []
        if earliest is not None:
            # Airflow skips this one when catchup is on and a run exists; it only matters
            # when start_date moved past the last run, and no run may come before start_date.
            candidates.append(self._align(earliest, forward=True))
        if last_automated is not None:
            candidates.append(self._step(_interval_of(last_automated).end, forward=True))
        elif earliest is None:  # no start_date and no run yet: wait for the next fire time
            candidates.append(self._align(now, forward=True))
        if not restriction.catchup:
            # Skip missed fire times: start from the latest one at or before now.
            candidates.append(self._align(now, forward=False))
        fire = max(candidates)
        latest = _opt_utc(restriction.latest)
        if latest is not None and fire > latest:
            return None
        return DagRunInfo(fire, fire, DataInterval(fire, fire))

    def serialize(self) -> dict[str, Any]:
        return {
            "type": "cron",
            "expression": self.expression,
            "timezone": self.timezone,
            "preset": self.preset,
        }

    def _step(self, current: datetime, *, forward: bool) -> datetime:
        """The first fire time strictly after (or before) `current`; Airflow's _get_next/_prev."""
        from croniter import croniter

        zone = _zone(self.timezone)
        wall = current.astimezone(zone).replace(tzinfo=None, fold=0)
        cron = croniter(self.expression, start_time=wall)
        fired = cron.get_next(datetime) if forward else cron.get_prev(datetime)
        if cron.expanded[1] != ["*"]:
            return _localize(fired, zone)
        # A cron that fires every hour moves by its wall-clock distance in absolute time, so
        # the hour repeated on a fall-back day gets its runs too (Airflow's fold-hour fix).
        return current.astimezone(UTC) + (fired - wall)

    def _align(self, current: datetime, *, forward: bool) -> datetime:
        """`current` if it is a fire time, else the next (or previous) one."""
        moved = self._step(current, forward=forward)
        return current if self._step(moved, forward=not forward) == current else moved
