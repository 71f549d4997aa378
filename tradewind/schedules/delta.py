"""The ``timedelta`` schedules: `DeltaTriggerSchedule`, what ``schedule=timedelta(...)`` gives
(Airflow 3's DeltaTriggerTimetable), and `DeltaDataIntervalSchedule` (Airflow's
DeltaDataIntervalTimetable, for whoever asks for it by name), with the base they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from tradewind.errors import DagDefinitionError
from tradewind.schedules.base import (
    DagRunInfo,
    DataInterval,
    Schedule,
    TimeRestriction,
    _interval_of,
    _opt_utc,
    to_utc,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _DeltaSchedule(Schedule):
    """What both timedelta schedules share: the delta, its words, its serialized form."""

    delta: timedelta
    periodic: ClassVar[bool] = True
    serial_type: ClassVar[str]

    def __post_init__(self) -> None:
        if not isinstance(self.delta, timedelta) or self.delta <= timedelta(0):
            raise DagDefinitionError(f"schedule interval must be positive, not {self.delta!r}")

    @property
    def summary(self) -> str:
        return str(self.delta)

    @property
    def description(self) -> str:
        from tradewind.schedules.words import describe_delta

        return describe_delta(self.delta)

    def serialize(self) -> dict[str, Any]:
        # Whole seconds and the microseconds left over, both integers, so any delta round-trips
        # exactly (a float of the total seconds loses microseconds past about 285 years).
        whole = self.delta // timedelta(seconds=1)
        return {"type": self.serial_type, "seconds": whole, "microseconds": self.delta.microseconds}


@dataclass(frozen=True, slots=True)
class DeltaTriggerSchedule(_DeltaSchedule):
    """Runs every `delta` of absolute time (``schedule=timedelta(...)``, Airflow 3's default
    DeltaTriggerTimetable): logical date = run_after = the trigger time, an empty data interval.

    Example::

        schedule_from_argument(timedelta(hours=1))  # 10:17, 11:17, ... from start_date 10:17
    """

    type_name: ClassVar[str] = "DeltaTriggerTimetable"
    serial_type: ClassVar[str] = "delta_trigger"

    def next_dagrun_info(
        self, *, last_automated: DagRunInfo | None, restriction: TimeRestriction, now: datetime
    ) -> DagRunInfo | None:
        # Airflow's _TriggerTimetable.next_dagrun_info with DeltaMixin, whose aligning is a
        # no-op: the first run is at start_date itself, not on a grid, and "the latest fire time
        # at or before now" is now. As in Airflow, catchup follows the last run even when
        # start_date has since moved past it; without catchup, missed runs collapse into one now.
        now = to_utc(now)
        earliest = _opt_utc(restriction.earliest)
        following = None
        if last_automated is not None:
            following = _interval_of(last_automated).end + self.delta
        if restriction.catchup:
            fire = following or earliest or now
        else:
            fire = max(at for at in (now, following, earliest) if at is not None)
        latest = _opt_utc(restriction.latest)
        if latest is not None and fire > latest:
            return None
        return DagRunInfo(fire, fire, DataInterval(fire, fire))


@dataclass(frozen=True, slots=True)
class DeltaDataIntervalSchedule(_DeltaSchedule):
    """Fixed-length data intervals spaced in absolute time, each run due when its interval
    ends (Airflow's DeltaDataIntervalTimetable; not what ``schedule=timedelta(...)`` gives).

    Example::

        DeltaDataIntervalSchedule(timedelta(days=1))
    """

    type_name: ClassVar[str] = "DeltaDataIntervalTimetable"
    serial_type: ClassVar[str] = "delta"

    def next_dagrun_info(
        self, *, last_automated: DagRunInfo | None, restriction: TimeRestriction, now: datetime
    ) -> DagRunInfo | None:
        # Airflow's _DataIntervalTimetable.next_dagrun_info with DeltaDataIntervalTimetable rules.
        earliest = _opt_utc(restriction.earliest)
        if not restriction.catchup:
            # _skip_to_latest: floor `now` to a multiple of delta since the Unix epoch, step
            # one delta back, and never go before start_date.
            since_epoch = to_utc(now) - _EPOCH
            skipped = _EPOCH + since_epoch - since_epoch % self.delta - self.delta
            earliest = skipped if earliest is None else max(skipped, earliest)
        if last_automated is None:
            if earliest is None:
                return None
            start = earliest
        else:
            last_end = _interval_of(last_automated).end
            start = last_end if earliest is None else max(last_end, earliest)
        latest = _opt_utc(restriction.latest)
        if latest is not None and start > latest:
            return None
        end = start + self.delta
        return DagRunInfo(end, start, DataInterval(start, end))

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        end = to_utc(run_after)
        return DataInterval(end - self.delta, end)
