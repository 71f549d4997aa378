"""Run dates from `schedule=`, checked against what Apache Airflow 3 computes.

No clock reads: every `now` is fixed. Exact UTC values come from Airflow's algorithms
(airflow/timetables/trigger.py, interval.py, simple.py, _cron.py) evaluated by hand or with
pendulum, as Airflow does it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tradewind.errors import DagDefinitionError
from tradewind.schedules import (
    ContinuousSchedule,
    CronSchedule,
    DagRunInfo,
    DataInterval,
    DeltaDataIntervalSchedule,
    DeltaTriggerSchedule,
    NullSchedule,
    OnceSchedule,
    Schedule,
    TimeRestriction,
    deserialize_schedule,
    next_runs,
    schedule_from_argument,
    timezone_name,
    to_utc,
)


def utc(year: int, month: int, day: int, *clock: int) -> datetime:
    hour, minute, second = (*clock, 0, 0, 0)[:3]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def exact(at: datetime) -> DagRunInfo:
    """A run at one point in time: logical date, run_after and both interval ends equal."""
    return DagRunInfo(at, at, DataInterval(at, at))


def interval(start: datetime, end: datetime) -> DagRunInfo:
    """A run over start..end, due at the end."""
    return DagRunInfo(end, start, DataInterval(start, end))


def runs_due(
    schedule: Schedule, restriction: TimeRestriction, now: datetime, limit: int = 50
) -> list[DagRunInfo]:
    """What a scheduler would create by `now`: ask for the next run until it is in the future."""
    created: list[DagRunInfo] = []
    last = None
    while len(created) < limit:
        info = schedule.next_dagrun_info(last_automated=last, restriction=restriction, now=now)
        if info is None or info.run_after > now:
            break
        created.append(info)
        last = info
    return created


def fire_times(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    """Consecutive fire times from `start` on, as a catch-up scheduler would create them."""
    restriction = TimeRestriction(start, None, catchup=True)
    return [info.run_after for info in next_runs(schedule, restriction, now=start, count=count)]


# --- parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "summary", "type_name", "flags"),
    [
        (None, NullSchedule, "None", "NullTimetable", (False, False)),
        ("@once", OnceSchedule, "@once", "OnceTimetable", (False, True)),
        ("@continuous", ContinuousSchedule, "@continuous", "ContinuousTimetable", (False, True)),
        ("0 2 * * *", CronSchedule, "0 2 * * *", "CronTriggerTimetable", (True, True)),
        ("@daily", CronSchedule, "0 0 * * *", "CronTriggerTimetable", (True, True)),
        (
            timedelta(days=1),
            DeltaTriggerSchedule,
            "1 day, 0:00:00",
            "DeltaTriggerTimetable",
            (True, True),
        ),
        (
            timedelta(minutes=5),
            DeltaTriggerSchedule,
            "0:05:00",
            "DeltaTriggerTimetable",
            (True, True),
        ),
        (
            DeltaDataIntervalSchedule(timedelta(hours=1)),
            DeltaDataIntervalSchedule,
            "1:00:00",
            "DeltaDataIntervalTimetable",
            (True, True),
        ),
    ],
)
def test_schedule_kinds(
    value: object, kind: type[Schedule], summary: str, type_name: str, flags: tuple[bool, bool]
) -> None:
    schedule = schedule_from_argument(value)
    assert isinstance(schedule, kind)
    assert schedule.summary == summary
    assert schedule.type_name == type_name
    assert (schedule.periodic, schedule.can_be_scheduled) == flags


@pytest.mark.parametrize(
    ("preset", "expression", "summary"),
    [
        # Airflow's cron_presets (airflow/utils/dates.py): expanded, and shown expanded.
        ("@hourly", "0 * * * *", "0 * * * *"),
        ("@daily", "0 0 * * *", "0 0 * * *"),
        ("@weekly", "0 0 * * 0", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *", "0 0 1 * *"),
        ("@quarterly", "0 0 1 */3 *", "0 0 1 */3 *"),
        ("@yearly", "0 0 1 1 *", "0 0 1 1 *"),
        # Not in cron_presets: Airflow hands them to croniter as written and shows them so.
        ("@annually", "0 0 1 1 *", "@annually"),
        ("@midnight", "0 0 * * *", "@midnight"),
        ("@DAILY", "0 0 * * *", "@DAILY"),
    ],
)
def test_presets_expand_and_summarize_as_airflow_shows_them(
    preset: str, expression: str, summary: str
) -> None:
    schedule = schedule_from_argument(preset)
    assert isinstance(schedule, CronSchedule)
    assert schedule.expression == expression
    assert schedule.preset == preset
    assert schedule.summary == summary
    assert schedule.serialize()["preset"] == preset


def test_a_schedule_instance_is_returned_as_is() -> None:
    schedule = CronSchedule("0 3 * * *", "Europe/Berlin")
    assert schedule_from_argument(schedule, timezone="UTC") is schedule


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("61 * * * *", "'61 * * * *'"),
        ("not a cron", "'not a cron'"),
        ("@fortnightly", "'@fortnightly'"),
        ("0 0 30 2 *", "'0 0 30 2 *'"),
        ("*/0 * * * *", "'*/0 * * * *'"),
        ("", "''"),
        (timedelta(0), "timedelta(0)"),
        (timedelta(hours=-1), "timedelta(days=-1, seconds=82800)"),
        (5, "5"),
        (["@daily"], "['@daily']"),
        (True, "True"),
    ],
)
def test_bad_schedules_raise_naming_the_value(value: object, named: str) -> None:
    with pytest.raises(DagDefinitionError) as caught:
        schedule_from_argument(value)
    assert named in str(caught.value)


def test_bad_cron_message_says_what_is_wrong() -> None:
    with pytest.raises(DagDefinitionError, match=r"^invalid cron expression '61 \* \* \* \*': "):
        schedule_from_argument("61 * * * *")


def test_unknown_time_zone_raises() -> None:
    with pytest.raises(DagDefinitionError, match="Mars/Olympus"):
        schedule_from_argument("0 0 * * *", timezone="Mars/Olympus")


def test_six_fields_read_the_last_as_seconds_like_croniter() -> None:
    schedule = schedule_from_argument("0 0 * * * 30")
    assert fire_times(schedule, utc(2024, 1, 1), 2) == [
        utc(2024, 1, 1, 0, 0, 30),
        utc(2024, 1, 2, 0, 0, 30),
    ]


def test_importing_the_module_does_not_import_croniter() -> None:
    code = "import sys, tradewind.schedules; sys.exit('croniter' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


# --- cron: catchup, start and end -----------------------------------------------------


def test_daily_with_catchup_creates_every_missed_run_in_order() -> None:
    restriction = TimeRestriction(utc(2024, 1, 1), None, catchup=True)
    created = runs_due(schedule_from_argument("@daily"), restriction, now=utc(2024, 1, 4, 12))
    assert [info.run_after for info in created] == [
        utc(2024, 1, 1),
        utc(2024, 1, 2),
        utc(2024, 1, 3),
        utc(2024, 1, 4),
    ]
    for info in created:
        assert info.logical_date == info.run_after
        assert info.data_interval == DataInterval(info.run_after, info.run_after)


def test_daily_without_catchup_creates_only_the_latest() -> None:
    restriction = TimeRestriction(utc(2024, 1, 1), None, catchup=False)
    created = runs_due(schedule_from_argument("@daily"), restriction, now=utc(2024, 1, 4, 12))
    assert [info.run_after for info in created] == [utc(2024, 1, 4)]


@pytest.mark.parametrize(
    ("last_run", "now", "expected"),
    [
        (None, utc(2024, 1, 4, 12), utc(2024, 1, 4)),  # latest fire time at or before now
        (None, utc(2024, 1, 4), utc(2024, 1, 4)),  # now is itself a fire time
        (utc(2024, 1, 2), utc(2024, 1, 4, 12), utc(2024, 1, 4)),  # missed ones skipped
        (utc(2024, 1, 4), utc(2024, 1, 4, 12), utc(2024, 1, 5)),  # up to date: the next one
        (None, utc(2023, 12, 1), utc(2024, 1, 1)),  # before start_date: wait for it
    ],
)
def test_cron_without_catchup(last_run: datetime | None, now: datetime, expected: datetime) -> None:
    last = None if last_run is None else exact(last_run)
    restriction = TimeRestriction(utc(2024, 1, 1), None, catchup=False)
    info = schedule_from_argument("0 0 * * *").next_dagrun_info(
        last_automated=last, restriction=restriction, now=now
    )
    assert info is not None
    assert info.run_after == expected


@pytest.mark.parametrize("catchup", [True, False])
def test_start_date_off_the_cron_waits_for_the_next_fire_time(catchup: bool) -> None:
    restriction = TimeRestriction(utc(2024, 1, 1, 10, 17), None, catchup=catchup)
    info = schedule_from_argument("0 * * * *").next_dagrun_info(
        last_automated=None, restriction=restriction, now=utc(2024, 1, 1, 10, 30)
    )
    assert info is not None
    assert info.run_after == info.logical_date == utc(2024, 1, 1, 11)


def test_no_cron_run_before_start_date_even_after_older_runs() -> None:
    old = exact(utc(2024, 1, 1))
    restriction = TimeRestriction(utc(2024, 2, 1, 6), None, catchup=True)
    info = schedule_from_argument("@daily").next_dagrun_info(
        last_automated=old, restriction=restriction, now=utc(2024, 1, 1)
    )
    assert info is not None
    assert info.run_after == utc(2024, 2, 2)


def test_no_start_date_and_no_run_waits_for_the_next_fire_time() -> None:
    restriction = TimeRestriction(None, None, catchup=True)
    info = schedule_from_argument("0 * * * *").next_dagrun_info(
        last_automated=None, restriction=restriction, now=utc(2024, 1, 1, 10, 5)
    )
    assert info is not None
    assert info.run_after == utc(2024, 1, 1, 11)


def test_end_date_is_inclusive_and_then_nothing() -> None:
    restriction = TimeRestriction(utc(2024, 1, 1), utc(2024, 1, 3), catchup=True)
    created = runs_due(schedule_from_argument("@daily"), restriction, now=utc(2024, 2, 1))
    assert [info.run_after for info in created] == [
        utc(2024, 1, 1),
        utc(2024, 1, 2),
        utc(2024, 1, 3),
    ]
    assert (
        schedule_from_argument("@daily").next_dagrun_info(
            last_automated=created[-1], restriction=restriction, now=utc(2024, 2, 1)
        )
        is None
    )


def test_cron_evaluates_in_the_dag_time_zone() -> None:
    schedule = schedule_from_argument("0 9 * * *", timezone="Asia/Kolkata")
    assert fire_times(schedule, utc(2024, 6, 1), 2) == [
        utc(2024, 6, 1, 3, 30),
        utc(2024, 6, 2, 3, 30),
    ]


# --- DST ------------------------------------------------------------------------------


def test_spring_forward_runs_the_missing_time_when_the_clock_reaches_it() -> None:
    # 2024-03-31 in Berlin jumps from 02:00 CET to 03:00 CEST. Airflow makes the missing 02:00
    # into 03:00 CEST (pendulum, via make_aware), which is 01:00 UTC, as on the day before.
    schedule = schedule_from_argument("0 2 * * *", timezone="Europe/Berlin")
    assert fire_times(schedule, utc(2024, 3, 29, 12), 4) == [
        utc(2024, 3, 30, 1),  # 02:00 CET
        utc(2024, 3, 31, 1),  # 03:00 CEST: 02:00 did not exist
        utc(2024, 4, 1, 0),  # 02:00 CEST
        utc(2024, 4, 2, 0),
    ]


def test_spring_forward_day_is_reached_from_any_side() -> None:
    schedule = schedule_from_argument("0 2 * * *", timezone="Europe/Berlin")
    for start in (utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 0, 59), utc(2024, 3, 31, 1)):
        assert fire_times(schedule, start, 1) == [utc(2024, 3, 31, 1)]
    without_catchup = TimeRestriction(utc(2024, 3, 1), None, catchup=False)
    info = schedule.next_dagrun_info(
        last_automated=None, restriction=without_catchup, now=utc(2024, 3, 31, 12)
    )
    assert info is not None
    assert info.run_after == utc(2024, 3, 31, 1)


def test_fall_back_runs_once_at_the_second_occurrence() -> None:
    # 2024-11-03 in New York repeats 01:00-02:00 (EDT, then EST). Airflow picks the second
    # 01:30 (fold=1 in make_aware), 06:30 UTC, and runs once that day.
    schedule = schedule_from_argument("30 1 * * *", timezone="America/New_York")
    runs = fire_times(schedule, utc(2024, 11, 1, 12), 4)
    assert runs == [
        utc(2024, 11, 2, 5, 30),  # 01:30 EDT
        utc(2024, 11, 3, 6, 30),  # 01:30 EST, the second 01:30
        utc(2024, 11, 4, 6, 30),
        utc(2024, 11, 5, 6, 30),
    ]
    local_days = [run.astimezone(ZoneInfo("America/New_York")).date() for run in runs]
    assert len(set(local_days)) == len(local_days)


def test_hourly_cron_runs_in_both_copies_of_the_repeated_hour() -> None:
    # Airflow's fold-hour fix (_cron.py) for crons that fire every hour.
    schedule = schedule_from_argument("30 * * * *", timezone="Europe/Berlin")
    assert fire_times(schedule, utc(2024, 10, 26, 23), 4) == [
        utc(2024, 10, 26, 23, 30),  # 01:30 CEST
        utc(2024, 10, 27, 0, 30),  # 02:30 CEST
        utc(2024, 10, 27, 1, 30),  # 02:30 CET
        utc(2024, 10, 27, 2, 30),  # 03:30 CET
    ]


def test_hourly_cron_over_the_spring_gap_stays_one_hour_apart() -> None:
    schedule = schedule_from_argument("30 * * * *", timezone="Europe/Berlin")
    assert fire_times(schedule, utc(2024, 3, 31, 0), 3) == [
        utc(2024, 3, 31, 0, 30),  # 01:30 CET
        utc(2024, 3, 31, 1, 30),  # 03:30 CEST
        utc(2024, 3, 31, 2, 30),
    ]


BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("start_date", "expected", "berlin_clock"),
    [
        (  # 2024-10-27: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice
            datetime(2024, 10, 27, 1, 30, tzinfo=BERLIN),
            [
                utc(2024, 10, 26, 23, 30),
                utc(2024, 10, 27, 0, 30),
                utc(2024, 10, 27, 1, 30),
                utc(2024, 10, 27, 2, 30),
                utc(2024, 10, 27, 3, 30),
            ],
            ["01:30+02", "02:30+02", "02:30+01", "03:30+01", "04:30+01"],
        ),
        (  # 2024-03-31: 02:00 CET jumps to 03:00 CEST, so 02:30 never happens
            datetime(2024, 3, 31, 0, 30, tzinfo=BERLIN),
            [
                utc(2024, 3, 30, 23, 30),
                utc(2024, 3, 31, 0, 30),
                utc(2024, 3, 31, 1, 30),
                utc(2024, 3, 31, 2, 30),
                utc(2024, 3, 31, 3, 30),
            ],
            ["00:30+01", "01:30+01", "03:30+02", "04:30+02", "05:30+02"],
        ),
    ],
)
def test_hourly_timedelta_triggers_every_utc_hour_over_dst(
    start_date: datetime, expected: list[datetime], berlin_clock: list[str]
) -> None:
    # DeltaTriggerTimetable steps in absolute time: an hour is always 3600 s, whatever the
    # wall clock of start_date does. Each run is one point: logical date = run_after.
    restriction = TimeRestriction(start_date, None, catchup=True)
    created = runs_due(schedule_from_argument(timedelta(hours=1)), restriction, now=expected[-1])
    assert created == [exact(at) for at in expected]
    assert [info.run_after.astimezone(BERLIN).strftime("%H:%M%z")[:-2] for info in created] == (
        berlin_clock
    )


# --- timedelta: DeltaTriggerTimetable, the default -------------------------------------


def hourly_trigger(
    start_date: datetime | None,
    *,
    catchup: bool,
    now: datetime,
    last_run: datetime | None = None,
    end_date: datetime | None = None,
) -> DagRunInfo | None:
    """The next run of ``schedule=timedelta(hours=1)``, a trigger run at `last_run` before it."""
    restriction = TimeRestriction(start_date, end_date, catchup=catchup)
    return schedule_from_argument(timedelta(hours=1)).next_dagrun_info(
        last_automated=None if last_run is None else exact(last_run),
        restriction=restriction,
        now=now,
    )


def test_delta_with_catchup_runs_every_period_from_start_date() -> None:
    restriction = TimeRestriction(utc(2024, 1, 1, 10, 17), None, catchup=True)
    created = runs_due(
        schedule_from_argument(timedelta(hours=1)), restriction, now=utc(2024, 1, 1, 13, 40)
    )
    assert created == [
        exact(utc(2024, 1, 1, 10, 17)),
        exact(utc(2024, 1, 1, 11, 17)),
        exact(utc(2024, 1, 1, 12, 17)),
        exact(utc(2024, 1, 1, 13, 17)),
    ]


def test_delta_without_catchup_runs_once_now_then_one_delta_later() -> None:
    # No aligning for a delta: Airflow's "latest fire time at or before now" is now itself.
    restriction = TimeRestriction(utc(2024, 1, 1, 10, 17), None, catchup=False)
    now = utc(2024, 1, 1, 13, 40)
    schedule = schedule_from_argument(timedelta(hours=1))
    created = runs_due(schedule, restriction, now=now)
    assert created == [exact(now)]
    following = schedule.next_dagrun_info(
        last_automated=created[0], restriction=restriction, now=now
    )
    assert following == exact(utc(2024, 1, 1, 14, 40))


@pytest.mark.parametrize(
    ("start_date", "now", "expected"),
    [
        (utc(2024, 1, 1, 10, 17), utc(2024, 1, 1, 9), utc(2024, 1, 1, 10, 17)),  # future start
        (utc(2024, 1, 1, 10, 17), utc(2024, 1, 1, 10, 17), utc(2024, 1, 1, 10, 17)),
        (utc(2024, 1, 1, 10, 17), utc(2024, 1, 1, 13, 40), utc(2024, 1, 1, 13, 40)),  # past
        (None, utc(2024, 1, 1, 13, 40), utc(2024, 1, 1, 13, 40)),
    ],
)
def test_delta_first_run_without_catchup_is_the_later_of_start_date_and_now(
    start_date: datetime | None, now: datetime, expected: datetime
) -> None:
    assert hourly_trigger(start_date, catchup=False, now=now) == exact(expected)


@pytest.mark.parametrize(
    ("start_date", "now", "expected"),
    [
        (utc(2024, 1, 1, 10, 17), utc(2024, 1, 1, 9), utc(2024, 1, 1, 10, 17)),  # future start
        (utc(2024, 1, 1, 10, 17), utc(2024, 3, 1), utc(2024, 1, 1, 10, 17)),  # not on a grid
        (None, utc(2024, 1, 1, 13, 40), utc(2024, 1, 1, 13, 40)),  # _calc_first_run: now
    ],
)
def test_delta_first_run_with_catchup_is_start_date_itself(
    start_date: datetime | None, now: datetime, expected: datetime
) -> None:
    assert hourly_trigger(start_date, catchup=True, now=now) == exact(expected)


@pytest.mark.parametrize(
    ("last_run", "expected"),
    [
        (utc(2024, 1, 1, 13, 17), utc(2024, 1, 1, 14, 17)),  # up to date: one delta later
        (utc(2024, 1, 1, 11, 17), utc(2024, 1, 1, 13, 40)),  # runs missed: one run, now
    ],
)
def test_delta_without_catchup_after_a_run(last_run: datetime, expected: datetime) -> None:
    info = hourly_trigger(
        utc(2024, 1, 1, 10, 17), catchup=False, now=utc(2024, 1, 1, 13, 40), last_run=last_run
    )
    assert info == exact(expected)


def test_delta_with_catchup_follows_the_last_run_even_before_a_moved_start_date() -> None:
    # Airflow's _TriggerTimetable only looks at start_date for the first run when catching up.
    info = hourly_trigger(
        utc(2024, 2, 1, 6), catchup=True, now=utc(2024, 2, 1), last_run=utc(2024, 1, 1)
    )
    assert info == exact(utc(2024, 1, 1, 1))


def test_delta_trigger_respects_end_date_inclusively() -> None:
    restriction = TimeRestriction(utc(2024, 1, 1), utc(2024, 1, 2), catchup=True)
    created = runs_due(schedule_from_argument(timedelta(days=1)), restriction, now=utc(2024, 2, 1))
    assert created == [exact(utc(2024, 1, 1)), exact(utc(2024, 1, 2))]
    assert (
        hourly_trigger(None, catchup=False, now=utc(2024, 1, 3), end_date=utc(2024, 1, 2, 23))
        is None
    )


def test_delta_trigger_reads_a_naive_now_as_utc_and_returns_utc() -> None:
    info = hourly_trigger(None, catchup=False, now=datetime(2024, 1, 1, 13, 40))
    assert info == exact(utc(2024, 1, 1, 13, 40))
    assert info is not None
    assert info.run_after.tzinfo is UTC


# --- timedelta: DeltaDataIntervalTimetable, by name only -----------------------------------


def test_data_interval_delta_with_catchup_starts_at_start_date() -> None:
    restriction = TimeRestriction(utc(2024, 1, 1, 10, 17), None, catchup=True)
    created = runs_due(
        DeltaDataIntervalSchedule(timedelta(hours=1)), restriction, now=utc(2024, 1, 1, 12, 40)
    )
    assert created == [
        interval(utc(2024, 1, 1, 10, 17), utc(2024, 1, 1, 11, 17)),
        interval(utc(2024, 1, 1, 11, 17), utc(2024, 1, 1, 12, 17)),
    ]


def test_data_interval_delta_without_catchup_takes_the_last_whole_period_before_now() -> None:
    # Airflow's DeltaDataIntervalTimetable._skip_to_latest: now floored to a multiple of the
    # delta since the Unix epoch, minus one delta.
    restriction = TimeRestriction(utc(2024, 1, 1, 10, 17), None, catchup=False)
    info = DeltaDataIntervalSchedule(timedelta(hours=1)).next_dagrun_info(
        last_automated=None, restriction=restriction, now=utc(2024, 1, 1, 12, 40)
    )
    assert info == interval(utc(2024, 1, 1, 11), utc(2024, 1, 1, 12))


def test_data_interval_delta_without_catchup_continues_from_a_recent_run() -> None:
    last = interval(utc(2024, 1, 1, 11), utc(2024, 1, 1, 12))
    restriction = TimeRestriction(utc(2024, 1, 1), None, catchup=False)
    info = DeltaDataIntervalSchedule(timedelta(hours=1)).next_dagrun_info(
        last_automated=last, restriction=restriction, now=utc(2024, 1, 1, 12, 40)
    )
    assert info == interval(utc(2024, 1, 1, 12), utc(2024, 1, 1, 13))


def test_data_interval_delta_without_start_date_has_no_first_run_with_catchup() -> None:
    restriction = TimeRestriction(None, None, catchup=True)
    schedule = DeltaDataIntervalSchedule(timedelta(days=1))
    assert (
        schedule.next_dagrun_info(last_automated=None, restriction=restriction, now=utc(2024, 1, 1))
        is None
    )


def test_data_interval_delta_respects_end_date_on_the_logical_date() -> None:
    restriction = TimeRestriction(utc(2024, 1, 1), utc(2024, 1, 2), catchup=True)
    created = runs_due(DeltaDataIntervalSchedule(timedelta(days=1)), restriction, utc(2024, 2, 1))
    assert [info.logical_date for info in created] == [utc(2024, 1, 1), utc(2024, 1, 2)]


def test_data_interval_delta_rejects_a_non_positive_delta() -> None:
    with pytest.raises(DagDefinitionError, match="must be positive"):
        DeltaDataIntervalSchedule(timedelta(0))


# --- @once, None, @continuous -----------------------------------------------------------


def test_once_runs_exactly_once_at_start_date() -> None:
    schedule = schedule_from_argument("@once")
    for catchup in (True, False):
        restriction = TimeRestriction(utc(2024, 1, 1, 8), None, catchup=catchup)
        first = schedule.next_dagrun_info(
            last_automated=None, restriction=restriction, now=utc(2024, 5, 1)
        )
        assert first == exact(utc(2024, 1, 1, 8))
        assert (
            schedule.next_dagrun_info(
                last_automated=first, restriction=restriction, now=utc(2024, 5, 1)
            )
            is None
        )


def test_once_without_start_date_runs_now_and_not_after_end_date() -> None:
    schedule = schedule_from_argument("@once")
    now = utc(2024, 5, 1, 9)
    info = schedule.next_dagrun_info(
        last_automated=None, restriction=TimeRestriction(None, None, False), now=now
    )
    assert info is not None
    assert info.run_after == now
    ended = TimeRestriction(utc(2024, 1, 2), utc(2024, 1, 1), catchup=False)
    assert schedule.next_dagrun_info(last_automated=None, restriction=ended, now=now) is None


def test_none_never_runs() -> None:
    schedule = schedule_from_argument(None)
    restriction = TimeRestriction(utc(2024, 1, 1), None, catchup=True)
    assert (
        schedule.next_dagrun_info(last_automated=None, restriction=restriction, now=utc(2024, 5, 1))
        is None
    )
    assert next_runs(schedule, restriction, now=utc(2024, 5, 1), count=3) == []


@pytest.mark.parametrize(
    ("start_date", "now", "expected"),
    [
        (utc(2024, 1, 1), utc(2024, 5, 1), interval(utc(2024, 1, 1), utc(2024, 5, 1))),
        (utc(2024, 6, 1), utc(2024, 5, 1), exact(utc(2024, 6, 1))),  # start_date in the future
        (None, utc(2024, 5, 1), exact(utc(2024, 5, 1))),
    ],
)
def test_continuous_first_run(
    start_date: datetime | None, now: datetime, expected: DagRunInfo
) -> None:
    restriction = TimeRestriction(start_date, None, catchup=False)
    info = schedule_from_argument("@continuous").next_dagrun_info(
        last_automated=None, restriction=restriction, now=now
    )
    assert info == expected


def test_continuous_next_run_covers_the_time_since_the_last_and_is_due_now() -> None:
    last = interval(utc(2024, 1, 1), utc(2024, 5, 1))
    restriction = TimeRestriction(utc(2024, 1, 1), None, catchup=False)
    now = utc(2024, 5, 1, 0, 7)
    info = schedule_from_argument("@continuous").next_dagrun_info(
        last_automated=last, restriction=restriction, now=now
    )
    assert info == interval(utc(2024, 5, 1), now)
    ended = TimeRestriction(utc(2024, 1, 1), utc(2024, 5, 1), catchup=False)
    assert (
        schedule_from_argument("@continuous").next_dagrun_info(
            last_automated=last, restriction=ended, now=now
        )
        is None
    )


# --- manual runs, next_runs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected_start"),
    [
        ("0 2 * * *", utc(2024, 5, 1, 9, 30)),
        ("@daily", utc(2024, 5, 1, 9, 30)),
        (timedelta(hours=6), utc(2024, 5, 1, 9, 30)),  # DeltaTriggerTimetable: interval 0
        (DeltaDataIntervalSchedule(timedelta(hours=6)), utc(2024, 5, 1, 3, 30)),
        (None, utc(2024, 5, 1, 9, 30)),
        ("@once", utc(2024, 5, 1, 9, 30)),
        ("@continuous", utc(2024, 5, 1, 9, 30)),
    ],
)
def test_manual_data_interval(value: object, expected_start: datetime) -> None:
    run_after = datetime(2024, 5, 1, 11, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    interval = schedule_from_argument(value).infer_manual_data_interval(run_after=run_after)
    assert interval == DataInterval(expected_start, utc(2024, 5, 1, 9, 30))
    assert interval.end.tzinfo is UTC


def test_next_runs_lists_consecutive_runs_after_the_first_without_catchup() -> None:
    restriction = TimeRestriction(utc(2024, 1, 1), utc(2024, 1, 6), catchup=False)
    runs = next_runs(
        schedule_from_argument("@daily"), restriction, now=utc(2024, 1, 3, 12), count=5
    )
    assert [info.logical_date for info in runs] == [
        utc(2024, 1, 3),
        utc(2024, 1, 4),
        utc(2024, 1, 5),
        utc(2024, 1, 6),
    ]


def test_next_runs_continues_from_the_last_run() -> None:
    last = exact(utc(2024, 1, 2))
    restriction = TimeRestriction(utc(2024, 1, 1), None, catchup=True)
    runs = next_runs(
        schedule_from_argument("@daily"),
        restriction,
        now=utc(2024, 1, 2),
        count=2,
        last_automated=last,
    )
    assert [info.run_after for info in runs] == [utc(2024, 1, 3), utc(2024, 1, 4)]


@pytest.mark.parametrize(("value", "length"), [("@once", 1), ("@continuous", 1), (None, 0)])
def test_next_runs_of_one_off_schedules(value: object, length: int) -> None:
    restriction = TimeRestriction(utc(2024, 1, 1), None, catchup=False)
    assert (
        len(next_runs(schedule_from_argument(value), restriction, now=utc(2024, 2, 1), count=5))
        == length
    )


def test_next_runs_with_zero_count_is_empty() -> None:
    restriction = TimeRestriction(utc(2024, 1, 1), None, catchup=True)
    assert (
        next_runs(schedule_from_argument("@daily"), restriction, now=utc(2024, 1, 1), count=0) == []
    )


# --- serialization and words -------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        schedule_from_argument(None),
        schedule_from_argument("@once"),
        schedule_from_argument("@continuous"),
        schedule_from_argument("0 2 * * *", timezone="Europe/Berlin"),
        schedule_from_argument("@daily", timezone="America/New_York"),
        schedule_from_argument("*/5 * * * *", timezone="+05:30"),
        schedule_from_argument(timedelta(days=1)),
        schedule_from_argument(timedelta(hours=1, microseconds=7)),
        schedule_from_argument(timedelta.max),
        DeltaDataIntervalSchedule(timedelta(days=1)),
        DeltaDataIntervalSchedule(timedelta(days=999_999_999, microseconds=1)),
    ],
    ids=lambda schedule: f"{schedule.type_name}-{schedule.summary}",
)
def test_serialize_round_trips_through_json(schedule: Schedule) -> None:
    data = json.loads(json.dumps(schedule.serialize()))
    again = deserialize_schedule(data)
    assert again == schedule
    assert type(again) is type(schedule)
    assert again.serialize() == schedule.serialize()


def test_cron_serializes_expression_time_zone_and_preset() -> None:
    assert schedule_from_argument("@daily", timezone="Europe/Berlin").serialize() == {
        "type": "cron",
        "expression": "0 0 * * *",
        "timezone": "Europe/Berlin",
        "preset": "@daily",
    }


@pytest.mark.parametrize(
    ("schedule", "data"),
    [
        (
            schedule_from_argument(timedelta(hours=1)),
            {"type": "delta_trigger", "seconds": 3600, "microseconds": 0},
        ),
        (
            DeltaDataIntervalSchedule(timedelta(hours=1)),
            {"type": "delta", "seconds": 3600, "microseconds": 0},
        ),
        (
            schedule_from_argument(timedelta(days=1, microseconds=7)),
            {"type": "delta_trigger", "seconds": 86400, "microseconds": 7},
        ),
    ],
)
def test_the_two_timedelta_schedules_serialize_apart(schedule: Schedule, data: object) -> None:
    assert schedule.serialize() == data


def test_a_delta_stored_as_float_seconds_still_reads() -> None:
    assert deserialize_schedule({"type": "delta", "seconds": 5400.5}) == DeltaDataIntervalSchedule(
        timedelta(minutes=90, milliseconds=500)
    )


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"type": "weekly"},
        {"type": "cron"},
        {"type": "delta", "seconds": "x"},
        {"type": "delta_trigger"},
        {"type": "delta_trigger", "seconds": 0},
    ],
)
def test_deserialize_rejects_what_it_cannot_read(data: dict[str, object]) -> None:
    with pytest.raises(DagDefinitionError):
        deserialize_schedule(data)


@pytest.mark.parametrize(
    ("value", "timezone_arg", "description"),
    [
        ("0 0 * * *", "UTC", "At 00:00, every day"),
        ("@daily", "UTC", "At 00:00, every day"),
        ("*/5 * * * *", "UTC", "Every 5 minutes"),
        ("30 2 * * 1", "UTC", "At 02:30 on Monday"),
        ("0 9 * * 1-5", "UTC", "At 09:00 on Monday through Friday"),
        ("0 9 * * MON,WED,FRI", "UTC", "At 09:00 on Monday, Wednesday and Friday"),
        ("0 9,17 * * *", "UTC", "At 09:00 and 17:00, every day"),
        ("@hourly", "UTC", "Every hour"),
        ("15 * * * *", "UTC", "At 15 minutes past the hour"),
        ("0 */2 * * *", "UTC", "Every 2 hours"),
        ("* * * * *", "UTC", "Every minute"),
        ("@weekly", "UTC", "At 00:00 on Sunday"),
        ("@monthly", "UTC", "At 00:00 on day 1 of the month"),
        ("@yearly", "UTC", "At 00:00 on day 1 of January"),
        ("@quarterly", "UTC", "At 00:00 on day 1 of the month, every 3 months"),
        ("0 2 * * *", "Europe/Berlin", "At 02:00, every day (Europe/Berlin)"),
        ("0 0 L * *", "UTC", "0 0 L * *"),
        ("5 4 * * 1#2", "UTC", "5 4 * * 1#2"),
        (timedelta(minutes=5), "UTC", "Every 5 minutes"),
        (timedelta(days=1), "UTC", "Every day"),
        (timedelta(hours=1, minutes=30), "UTC", "Every 90 minutes"),
        (None, "UTC", "Never, external triggers only"),
        ("@once", "UTC", "Once, as soon as possible"),
        ("@continuous", "UTC", "As frequently as possible, but only one run at a time."),
    ],
)
def test_descriptions(value: object, timezone_arg: str, description: str) -> None:
    assert schedule_from_argument(value, timezone=timezone_arg).description == description


# --- time zone helpers -------------------------------------------------------------------


class _PendulumLikeZone(tzinfo):
    """Stands in for pendulum's zones, which are named by `.name`."""

    name = "Asia/Tokyo"

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=9)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "JST"


class _DateTimeSubclass(datetime):
    """Stands in for pendulum.DateTime, a datetime subclass."""


@pytest.mark.parametrize(
    ("value", "default_tz", "expected"),
    [
        (datetime(2024, 1, 1, 12), "UTC", utc(2024, 1, 1, 12)),
        (datetime(2024, 1, 1, 12), "Europe/Berlin", utc(2024, 1, 1, 11)),
        (datetime(2024, 3, 31, 2, 30), "Europe/Berlin", utc(2024, 3, 31, 1, 30)),  # gap: 03:30 CEST
        (datetime(2024, 11, 3, 1, 30), "America/New_York", utc(2024, 11, 3, 6, 30)),  # second 01:30
        (datetime(2024, 7, 1, 12, tzinfo=ZoneInfo("Europe/Berlin")), "UTC", utc(2024, 7, 1, 10)),
        (
            datetime(2024, 7, 1, 12, tzinfo=timezone(timedelta(hours=-3))),
            "Asia/Tokyo",
            utc(2024, 7, 1, 15),
        ),
        (_DateTimeSubclass(2024, 7, 1, 12, tzinfo=_PendulumLikeZone()), "UTC", utc(2024, 7, 1, 3)),
    ],
)
def test_to_utc(value: datetime, default_tz: str, expected: datetime) -> None:
    converted = to_utc(value, default_tz=default_tz)
    assert converted == expected
    assert type(converted) is datetime
    assert converted.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "UTC"),
        (datetime(2024, 1, 1), "UTC"),
        (utc(2024, 1, 1), "UTC"),
        (datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Berlin")), "Europe/Berlin"),
        (datetime(2024, 1, 1, tzinfo=_PendulumLikeZone()), "Asia/Tokyo"),
        (datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))), "+05:30"),
        (datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-3))), "-03:00"),
    ],
)
def test_timezone_name(value: datetime | None, name: str) -> None:
    assert timezone_name(value) == name


def test_a_fixed_offset_name_works_as_a_schedule_time_zone() -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    schedule = schedule_from_argument("0 6 * * *", timezone=timezone_name(start))
    assert fire_times(schedule, to_utc(start), 1) == [utc(2024, 1, 1, 0, 30)]
