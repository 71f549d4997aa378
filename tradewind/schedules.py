"""Turn a DAG's ``schedule=`` into run dates, the way Apache Airflow 3 computes them.

Pure: nothing here touches a database or reads the clock; ``now`` is always an argument.
Every datetime returned is aware and in UTC.

``None`` follows Airflow's NullTimetable, ``"@once"`` OnceTimetable, ``"@continuous"``
ContinuousTimetable, a cron text or preset CronTriggerTimetable and a ``timedelta``
DeltaTriggerTimetable: Airflow 3's defaults (``[scheduler] create_cron_data_intervals`` and
``create_delta_data_intervals`` both False). `DeltaDataIntervalSchedule` keeps Airflow's
DeltaDataIntervalTimetable for whoever asks for it by name.

Example::

    schedule = schedule_from_argument("0 2 * * *", timezone="Europe/Berlin")
    info = schedule.next_dagrun_info(last_automated=None, restriction=r, now=now)
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as _fixed_zone
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tradewind.errors import DagDefinitionError

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
_ACCEPTED = (
    "None, '@once', '@continuous', a cron expression or preset such as '@daily', "
    "a positive datetime.timedelta, or a Schedule"
)
_OFFSET_NAME = re.compile(r"([+-])(\d{2}):(\d{2})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
        from tradewind._cron_words import describe_delta

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
        from tradewind._cron_words import describe_cron

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


def schedule_from_argument(value: object, *, timezone: str = "UTC") -> Schedule:
    """Turn what a user passed as ``DAG(schedule=...)`` into a `Schedule`.

    `timezone` is the IANA name (or ``"+HH:MM"``) the cron fields are read in, the time zone
    of the DAG's start_date. Raises `DagDefinitionError` naming the value if it is unusable.

    Example::

        schedule_from_argument("30 1 * * *", timezone="America/New_York")
    """
    if isinstance(value, Schedule):
        return value
    if value is None:
        return NullSchedule()
    if isinstance(value, timedelta):
        return DeltaTriggerSchedule(value)
    if not isinstance(value, str):
        raise DagDefinitionError(f"unsupported schedule {value!r}: expected {_ACCEPTED}")
    if value == "@once":
        return OnceSchedule()
    if value == "@continuous":
        return ContinuousSchedule()
    expanded = _PRESETS.get(value.strip().lower())
    if expanded is not None:
        return CronSchedule(expanded, timezone, preset=value)
    if value.lstrip().startswith("@"):
        raise DagDefinitionError(f"invalid cron expression {value!r}: unknown preset; {_ACCEPTED}")
    return CronSchedule(value, timezone)


def deserialize_schedule(data: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from `Schedule.serialize` output."""
    try:
        kind = data["type"]
        if kind == "cron":
            return CronSchedule(data["expression"], data["timezone"], data.get("preset"))
        deltas: dict[str, type[_DeltaSchedule]] = {
            "delta_trigger": DeltaTriggerSchedule,
            "delta": DeltaDataIntervalSchedule,
        }
        if kind in deltas:
            every = timedelta(seconds=data["seconds"], microseconds=data.get("microseconds", 0))
            return deltas[kind](every)
        simple: dict[str, type[Schedule]] = {
            "null": NullSchedule,
            "once": OnceSchedule,
            "continuous": ContinuousSchedule,
        }
        return simple[kind]()
    except (KeyError, TypeError) as exc:
        raise DagDefinitionError(f"cannot rebuild a schedule from {dict(data)!r}") from exc


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
