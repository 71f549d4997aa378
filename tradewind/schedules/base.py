"""The shared ground of every schedule: the `Schedule` base class, the values it deals in
(`DataInterval`, `DagRunInfo`, `TimeRestriction`), `next_runs`, which lists upcoming runs of
any schedule, and the time-zone helpers: `to_utc` and `timezone_name` for callers, and the
package-private `_zone`, `_localize`, `_opt_utc` and `_interval_of` the schedule kinds share.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as _fixed_zone
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tradewind.errors import DagDefinitionError

_OFFSET_NAME = re.compile(r"([+-])(\d{2}):(\d{2})")
_UTC_NAMES = frozenset({"UTC", "Etc/UTC"})


@dataclass(frozen=True, slots=True)
class DataInterval:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class DagRunInfo:
    run_after: datetime
    logical_date: datetime | None
    data_interval: DataInterval | None


@dataclass(frozen=True, slots=True)
class TimeRestriction:
    earliest: datetime | None
    latest: datetime | None
    catchup: bool


class Schedule(abc.ABC):
    """When a DAG runs: what ``DAG(schedule=...)`` becomes. Build one with `schedule_from_argument`.

    Example::

        schedule_from_argument("@daily").next_dagrun_info(
            last_automated=None, restriction=TimeRestriction(start, None, False), now=now
        )
    """

    __slots__ = ()
    type_name: ClassVar[str]
    periodic: ClassVar[bool] = False
    can_be_scheduled: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def summary(self) -> str: ...

    @property
    @abc.abstractmethod
    def description(self) -> str: ...

    @abc.abstractmethod
    def next_dagrun_info(
        self, *, last_automated: DagRunInfo | None, restriction: TimeRestriction, now: datetime
    ) -> DagRunInfo | None: ...

    @abc.abstractmethod
    def serialize(self) -> dict[str, Any]: ...

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        at = to_utc(run_after)
        return DataInterval(at, at)


def next_runs(
    schedule: Schedule,
    restriction: TimeRestriction,
    *,
    now: datetime,
    count: int,
    last_automated: DagRunInfo | None = None,
) -> list[DagRunInfo]:
    """The next `count` runs, for ``tradewind dags next-execution``.

    Like ``airflow dags next-execution``: the first is the run the scheduler would create
    next (honouring catchup), and each later one follows the previous as if catchup were on,
    so none is skipped. Unlike Airflow, which drops start and end date for the later ones,
    end_date still stops the list. The list also stops when a run would not come after the
    one before (``@continuous`` has nothing more to show).
    """
    runs: list[DagRunInfo] = []
    following = TimeRestriction(restriction.earliest, restriction.latest, catchup=True)
    info = schedule.next_dagrun_info(
        last_automated=last_automated, restriction=restriction, now=now
    )
    while info is not None and len(runs) < count:
        if runs and info.run_after <= runs[-1].run_after:
            break
        runs.append(info)
        info = schedule.next_dagrun_info(last_automated=info, restriction=following, now=now)
    return runs


def to_utc(value: datetime, *, default_tz: str = "UTC") -> datetime:
    """`value` in UTC as a plain datetime; a naive value is first read in `default_tz`."""
    if value.utcoffset() is None:
        value = _localize(value.replace(tzinfo=None), _zone(default_tz))
    moved = value.astimezone(UTC)  # plain datetime even for a pendulum DateTime
    return datetime.combine(moved.date(), moved.time(), tzinfo=UTC)


def timezone_name(value: datetime | None) -> str:
    """The time zone name of `value` ("UTC" for None, naive or UTC; "+HH:MM" for fixed)."""
    if value is None or value.tzinfo is None:
        return "UTC"
    zone = value.tzinfo
    for attr in ("key", "name", "zone"):  # zoneinfo, pendulum, pytz
        name = getattr(zone, attr, None)
        if isinstance(name, str) and name:
            return name
    offset = value.utcoffset() or timedelta(0)
    if not offset:
        return "UTC"
    sign, minutes = ("-", -offset) if offset < timedelta(0) else ("+", offset)
    hours, rest = divmod(int(minutes.total_seconds()) // 60, 60)
    return f"{sign}{hours:02d}:{rest:02d}"


# --- helpers ------------------------------------------------------------------------


def _zone(name: str) -> tzinfo:
    if name in _UTC_NAMES:
        return UTC
    fixed = _OFFSET_NAME.fullmatch(name)
    if fixed:
        sign = -1 if fixed.group(1) == "-" else 1
        hours, minutes = int(fixed.group(2)), int(fixed.group(3))
        return _fixed_zone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise DagDefinitionError(f"unknown time zone {name!r}") from exc


def _localize(wall: datetime, zone: tzinfo) -> datetime:
    """A naive wall-clock time in `zone`, in UTC, by Airflow's make_aware rule (pendulum).

    A time that happens twice (fall-back) is taken at its second, later occurrence. A time
    that never happens (spring-forward gap) moves forward by the size of the gap, so 02:00
    on a day that skips 02:00-03:00 becomes 03:00 summer time.
    """
    before = wall.replace(tzinfo=zone, fold=0).utcoffset()
    after = wall.replace(tzinfo=zone, fold=1).utcoffset()
    if before is not None and after is not None and after > before:
        wall += after - before
    return wall.replace(tzinfo=zone, fold=1).astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)


def _interval_of(info: DagRunInfo) -> DataInterval:
    if info.data_interval is not None:
        return DataInterval(to_utc(info.data_interval.start), to_utc(info.data_interval.end))
    end = to_utc(info.run_after)
    return DataInterval(_opt_utc(info.logical_date) or end, end)
