"""Sensors: tasks that wait until something is true (a file landed, another DAG finished,
a time came), checking with `poke` every ``poke_interval``.

Example::

    from tradewind.sensors.filesystem import FileSensor

    FileSensor(
        task_id="wait_for_export",
        filepath="/data/exports/{{ ds }}/_SUCCESS",
        mode="reschedule",          # give the worker slot back between pokes
        poke_interval=60,
        timeout=6 * 3600,           # then fail (or skip, with soft_fail=True)
    )

Modes:

- ``poke`` (default) keeps its worker slot and sleeps between pokes; for short waits.
- ``reschedule`` pokes once per try and gives the slot back until the next poke is due
  (the task instance shows ``up_for_reschedule``); for long waits. The ``timeout`` counts
  from the first poke, across reschedules.

- ``deferrable=True`` pokes once, then hands the wait to `tradewind triggerer` as a
  trigger (the task instance shows ``deferred`` and holds no slot at all); when the
  trigger fires the task resumes in `execute_complete`. One triggerer holds thousands of
  such waits. The built-in sensors (file, external task, time delta, date-time) can
  defer; a sensor of your own can by implementing `trigger_for`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NoReturn

from tradewind.errors import (
    DagDefinitionError,
    SensorTimeout,
    TaskDeferralTimeout,
    TaskFail,
    TaskReschedule,
    TaskSkip,
)
from tradewind.sdk._operator_args import as_optional_timedelta, as_timedelta
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.triggers.base import BaseTrigger

MODES = ("poke", "reschedule")
DEFAULT_POKE_INTERVAL = timedelta(seconds=60)
DEFAULT_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class PokeReturnValue:
    """What `poke` may return instead of a bool: done or not, and the value the sensor
    then pushes as its XCom (``return_value``)."""

    is_done: bool
    xcom_value: Any = None

    def __bool__(self) -> bool:
        return self.is_done


class BaseSensorOperator(BaseOperator):
    """Wait until `poke` returns true (or a `PokeReturnValue` that is done).

    :param poke_interval: time between pokes (seconds or a timedelta; default 60 s).
    :param timeout: give up after this long (default 7 days): the task fails without a
        retry, or is skipped with ``soft_fail``. Counted from the first poke of the try.
    :param soft_fail: skip instead of failing when the timeout is reached.
    :param mode: ``"poke"`` or ``"reschedule"`` (see the module's docs).
    :param exponential_backoff: double the interval after every poke.
    :param max_wait: the longest interval exponential backoff may reach.
    :param deferrable: wait in the triggerer instead of a worker slot (see the module's
        docs); needs a sensor that implements `trigger_for`.
    """

    ui_color: ClassVar[str] = "#e6f1f2"

    def __init__(
        self,
        *,
        poke_interval: float | timedelta = DEFAULT_POKE_INTERVAL,
        timeout: float | timedelta = DEFAULT_TIMEOUT,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: float | timedelta | None = None,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        def fail(message: str) -> DagDefinitionError:
            return DagDefinitionError(
                f"sensor {self.task_id!r}: {message}", filename=self.fileloc, lineno=self.lineno
            )

        self.poke_interval = as_timedelta(poke_interval, "poke_interval", fail)
        self.timeout = as_timedelta(timeout, "timeout", fail)
        self.max_wait = as_optional_timedelta(max_wait, "max_wait", fail)
        if mode not in MODES:
            raise fail(f"mode must be 'poke' or 'reschedule', got {mode!r}")
        if deferrable and type(self).trigger_for is BaseSensorOperator.trigger_for:
            raise fail(
                f"{type(self).__name__} cannot defer (it has no trigger_for); "
                "use mode='reschedule' to give the worker slot back between pokes"
            )
        self.mode = mode
        self.soft_fail = bool(soft_fail)
        self.exponential_backoff = bool(exponential_backoff)
        self.deferrable = bool(deferrable)

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        """Is the condition met? Called once per poke; override it."""
        raise NotImplementedError(f"{type(self).__name__} must implement poke(context)")

    def trigger_for(self, context: dict[str, Any]) -> BaseTrigger:
        """The trigger that waits for this sensor's condition when it defers; sensors
        that can defer override it."""
        raise NotImplementedError(f"{type(self).__name__} cannot defer")

    # --- the waiting --------------------------------------------------------------------

    def execute(self, context: dict[str, Any]) -> Any:
        if self.deferrable:
            return self._poke_then_defer(context)
        pokes, started = self._history(context)
        while True:
            pokes += 1
            result = self.poke(context)
            if result:
                self.log.info("Success criteria met. Exiting.")
                return result.xcom_value if isinstance(result, PokeReturnValue) else None
            now = _now()
            waited = now - started
            if waited >= self.timeout:
                self._time_out(waited)
            interval = min(self.next_poke_interval(pokes), self.timeout - waited)
            self.log.info("Poke %s: not yet; next poke in %ss", pokes, interval.total_seconds())
            if self.mode == "reschedule":
                raise TaskReschedule(now + interval)
            time.sleep(interval.total_seconds())

    def _poke_then_defer(self, context: dict[str, Any]) -> Any:
        result = self.poke(context)
        if not result:
            trigger = self.trigger_for(context)
            self.log.info("Not yet; deferring to the triggerer: %r", trigger)
            self.defer(trigger=trigger, method_name="execute_complete", timeout=self.timeout)
        self.log.info("Success criteria met. Exiting.")
        return result.xcom_value if isinstance(result, PokeReturnValue) else None

    def execute_complete(self, context: dict[str, Any], event: Any = None) -> Any:
        """Where a deferred sensor resumes: its trigger fired with ``event``."""
        status = event.get("status") if isinstance(event, dict) else "success"
        if status == "success":
            self.log.info("Success criteria met (%s). Exiting.", event)
            return None
        message = f"Sensor {self.task_id!r}: the trigger reports {status}: {event}"
        if status == "skipped" or self.soft_fail:
            raise TaskSkip(message)
        raise TaskFail(message)

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any], context: dict[str, Any]
    ) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout:
            pass  # raised below, outside the handler: one traceback, not two
        return self._time_out(self.timeout)

    def next_poke_interval(self, pokes: int) -> timedelta:
        """The wait after poke number ``pokes`` (1 for the first)."""
        if not self.exponential_backoff:
            return self.poke_interval
        seconds = self.poke_interval.total_seconds() * 2 ** min(pokes - 1, 62)
        interval = timedelta(seconds=min(seconds, timedelta.max.total_seconds() / 2))
        return min(interval, self.max_wait) if self.max_wait is not None else interval

    def _history(self, context: dict[str, Any]) -> tuple[int, datetime]:
        """Pokes made earlier in this try, and when the first began. Only a sensor in
        reschedule mode has any (each of its pokes is a separate run of `execute`), so
        only it asks the database."""
        history: Callable[[], tuple[int, datetime | None]] | None = None
        if self.mode == "reschedule":
            history = getattr(context.get("ti"), "poke_history", None)
        earlier, first = history() if history is not None else (0, None)
        return earlier, first or _now()

    def _time_out(self, waited: timedelta) -> NoReturn:
        message = (
            f"Sensor {self.task_id!r} timed out after {waited.total_seconds():.0f}s "
            f"(timeout {self.timeout.total_seconds():.0f}s)"
        )
        if self.soft_fail:
            raise TaskSkip(f"{message}; skipping (soft_fail)")
        raise SensorTimeout(message)


__all__ = ["BaseSensorOperator", "PokeReturnValue"]


def _now() -> datetime:
    return datetime.now(UTC)
