"""The schedules that are not periodic: `NullSchedule` (``schedule=None``, external triggers
only), `OnceSchedule` (``"@once"``) and `ContinuousSchedule` (``"@continuous"``), after
Airflow's NullTimetable, OnceTimetable and ContinuousTimetable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from tradewind.schedules.base import (
    DagRunInfo,
    DataInterval,
    Schedule,
    TimeRestriction,
    _interval_of,
    _opt_utc,
    to_utc,
)


@dataclass(frozen=True, slots=True)
class NullSchedule(Schedule):
    type_name: ClassVar[str] = "NullTimetable"
    can_be_scheduled: ClassVar[bool] = False

    summary = "None"
    description = "Never, external triggers only"

    def next_dagrun_info(
        self, *, last_automated: DagRunInfo | None, restriction: TimeRestriction, now: datetime
    ) -> DagRunInfo | None:
        return None

    def serialize(self) -> dict[str, Any]:
        return {"type": "null"}


@dataclass(frozen=True, slots=True)
class OnceSchedule(Schedule):
    type_name: ClassVar[str] = "OnceTimetable"

    summary = "@once"
    description = "Once, as soon as possible"

    def next_dagrun_info(
        self, *, last_automated: DagRunInfo | None, restriction: TimeRestriction, now: datetime
    ) -> DagRunInfo | None:
        # Airflow's OnceTimetable: one run at start_date (now if none), whatever catchup says.
        if last_automated is not None:
            return None
        at = _opt_utc(restriction.earliest) or to_utc(now)
        latest = _opt_utc(restriction.latest)
        if latest is not None and at > latest:
            return None
        return DagRunInfo(at, at, DataInterval(at, at))

    def serialize(self) -> dict[str, Any]:
        return {"type": "once"}


@dataclass(frozen=True, slots=True)
class ContinuousSchedule(Schedule):
    type_name: ClassVar[str] = "ContinuousTimetable"

    summary = "@continuous"
    description = "As frequently as possible, but only one run at a time."

    def next_dagrun_info(
        self, *, last_automated: DagRunInfo | None, restriction: TimeRestriction, now: datetime
    ) -> DagRunInfo | None:
        # Airflow's ContinuousTimetable: the first run covers start_date..now and is due at
        # max(start_date, now); each later one covers the previous end..now and is due now.
        # The caller keeps it to one active run (Airflow sets max_active_runs=1 for it).
        now = to_utc(now)
        start_date = _opt_utc(restriction.earliest) or now
        if last_automated is None:
            start, end = start_date, max(start_date, now)
        else:
            last = _interval_of(last_automated)
            if last.end > now:  # the last run is still in the future (start_date moved)
                start, end = start_date, start_date + (last.end - last.start)
            else:
                start, end = last.end, now
        latest = _opt_utc(restriction.latest)
        if latest is not None and end > latest:
            return None
        return DagRunInfo(end, start, DataInterval(start, end))

    def serialize(self) -> dict[str, Any]:
        return {"type": "continuous"}
