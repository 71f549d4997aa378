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

from tradewind.schedules.base import (
    DagRunInfo,
    DataInterval,
    Schedule,
    TimeRestriction,
    next_runs,
    timezone_name,
    to_utc,
)
from tradewind.schedules.build import deserialize_schedule, schedule_from_argument
from tradewind.schedules.cron import CronSchedule
from tradewind.schedules.delta import DeltaDataIntervalSchedule, DeltaTriggerSchedule
from tradewind.schedules.simple import ContinuousSchedule, NullSchedule, OnceSchedule

__all__ = [
    "ContinuousSchedule",
    "CronSchedule",
    "DagRunInfo",
    "DataInterval",
    "DeltaDataIntervalSchedule",
    "DeltaTriggerSchedule",
    "NullSchedule",
    "OnceSchedule",
    "Schedule",
    "TimeRestriction",
    "deserialize_schedule",
    "next_runs",
    "schedule_from_argument",
    "timezone_name",
    "to_utc",
]
