"""Building a `Schedule`: `schedule_from_argument` turns what a DAG file passed as
``DAG(schedule=...)`` into one, and `deserialize_schedule` rebuilds one from what
`Schedule.serialize` wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from tradewind.errors import DagDefinitionError
from tradewind.schedules.assets import AssetSchedule
from tradewind.schedules.base import Schedule
from tradewind.schedules.cron import _PRESETS, CronSchedule
from tradewind.schedules.delta import (
    DeltaDataIntervalSchedule,
    DeltaTriggerSchedule,
    _DeltaSchedule,
)
from tradewind.schedules.simple import ContinuousSchedule, NullSchedule, OnceSchedule
from tradewind.sdk.assets import condition_from, load_condition

_ACCEPTED = (
    "None, '@once', '@continuous', a cron expression or preset such as '@daily', "
    "a positive datetime.timedelta, an Asset (a list of them, or a condition built "
    "with & and |), or a Schedule"
)


def schedule_from_argument(value: object, *, timezone: str = "UTC") -> Schedule:
    """Turn what a user passed as ``DAG(schedule=...)`` into a `Schedule`.

    `timezone` is the IANA name (or ``"+HH:MM"``) the cron fields are read in, the time zone
    of the DAG's start_date. Raises `DagDefinitionError` naming the value if it is unusable.

    Example::

        schedule_from_argument("30 1 * * *", timezone="America/New_York")
    """
    if isinstance(value, Schedule):
        return value
    condition = condition_from(value)
    if condition is not None:
        return AssetSchedule(condition)
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
        if kind == "assets":
            return AssetSchedule(load_condition(data["condition"]))
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
    except (KeyError, TypeError, ValueError) as exc:
        raise DagDefinitionError(f"cannot rebuild a schedule from {dict(data)!r}") from exc
