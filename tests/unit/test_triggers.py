"""Triggers and deferral without a database: what they store, when they fire, how a
deferred operator or sensor asks to wait and how it resumes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tradewind import DAG
from tradewind.errors import (
    DagDefinitionError,
    SensorTimeout,
    TaskDefer,
    TaskDeferralError,
    TaskDeferralTimeout,
    TaskFail,
    TaskSkip,
    TradewindError,
)
from tradewind.sdk.baseoperator import FAIL_METHOD, BaseOperator
from tradewind.sensors.date_time import DateTimeSensor
from tradewind.sensors.filesystem import FileSensor
from tradewind.sensors.time_delta import TimeDeltaSensor
from tradewind.triggers import BaseTrigger, TriggerEvent, trigger_from_record
from tradewind.triggers.base import trigger_record
from tradewind.triggers.encoding import decode, encode
from tradewind.triggers.file import FileTrigger
from tradewind.triggers.temporal import DateTimeTrigger, TimeDeltaTrigger

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def first_event(trigger: BaseTrigger, timeout: float = 5) -> TriggerEvent:
    async def take() -> TriggerEvent:
        return await asyncio.wait_for(anext(trigger.run()), timeout)

    return asyncio.run(take())


# --- encoding -----------------------------------------------------------------------------


def test_encoding_round_trips_json_datetimes_and_timedeltas() -> None:
    value = {"when": T0, "every": timedelta(minutes=5), "paths": ("a", "b"), "n": None}
    assert decode(encode(value)) == {**value, "paths": ["a", "b"]}


def test_encoding_names_the_place_of_a_value_it_cannot_store() -> None:
    with pytest.raises(TypeError, match=r"the kwargs\['handler'\]: function cannot be stored"):
        encode({"handler": lambda: None}, where="the kwargs")


# --- records --------------------------------------------------------------------------------


def test_a_trigger_is_rebuilt_from_its_record() -> None:
    classpath, kwargs = trigger_record(FileTrigger("/data/*.csv", recursive=True))
    assert classpath == "tradewind.triggers.file.FileTrigger"
    rebuilt = trigger_from_record(classpath, kwargs)
    assert isinstance(rebuilt, FileTrigger)
    assert (rebuilt.filepath, rebuilt.recursive) == ("/data/*.csv", True)


def test_a_time_delta_trigger_is_stored_as_its_moment() -> None:
    before = datetime.now(UTC)
    classpath, kwargs = trigger_record(TimeDeltaTrigger(timedelta(hours=1)))
    rebuilt = trigger_from_record(classpath, kwargs)
    assert classpath == "tradewind.triggers.temporal.DateTimeTrigger"
    assert isinstance(rebuilt, DateTimeTrigger)
    assert before + timedelta(hours=1) <= rebuilt.moment <= datetime.now(UTC) + timedelta(hours=1)


@pytest.mark.parametrize(
    ("classpath", "message"),
    [
        ("no_such_module_xyz.Trigger", "cannot import trigger class 'no_such_module_xyz.Trigger'"),
        ("tradewind.triggers.file.NoSuchTrigger", "cannot import trigger class"),
        ("tradewind.triggers.file.find_file", "is not a BaseTrigger subclass"),
    ],
)
def test_a_bad_record_gets_a_clear_error(classpath: str, message: str) -> None:
    with pytest.raises(TradewindError, match=message):
        trigger_from_record(classpath, {})


def test_only_triggers_can_be_stored() -> None:
    with pytest.raises(TradewindError, match="needs a BaseTrigger instance, got str"):
        trigger_record("soon")  # type: ignore[arg-type]


def test_a_date_time_trigger_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        DateTimeTrigger(datetime(2026, 3, 1))


# --- firing -------------------------------------------------------------------------------


def test_a_date_time_trigger_fires_once_its_moment_has_come() -> None:
    moment = datetime.now(UTC) + timedelta(milliseconds=50)
    assert first_event(DateTimeTrigger(moment)).payload == moment
    past = datetime(2020, 1, 1, tzinfo=UTC)
    assert first_event(DateTimeTrigger(past)).payload == past


def test_a_file_trigger_fires_when_the_file_lands(tmp_path: Path) -> None:
    async def scenario() -> TriggerEvent:
        trigger = FileTrigger(str(tmp_path / "in" / "*.csv"), poke_interval=0.01)
        waiting = asyncio.create_task(anext(trigger.run()))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "orders.csv").write_text("id\n")
        return await asyncio.wait_for(waiting, 5)

    event = asyncio.run(scenario())
    assert event.payload == {"status": "success", "path": str(tmp_path / "in" / "orders.csv")}


# --- deferring and resuming -----------------------------------------------------------------


class Waits(BaseOperator):
    def execute(self, context: dict[str, Any]) -> Any:
        self.defer(trigger=DateTimeTrigger(T0), method_name="resume", kwargs={"n": 1}, timeout=30)

    def resume(self, context: dict[str, Any], event: Any = None, n: int = 0) -> Any:
        return {"event": event, "n": n}


def make(cls: type[BaseOperator], **kwargs: Any) -> Any:
    with DAG("deferring"):
        return cls(task_id="t", **kwargs)


def test_defer_raises_what_the_worker_stores() -> None:
    with pytest.raises(TaskDefer) as raised:
        make(Waits).execute({})
    deferral = raised.value
    assert isinstance(deferral.trigger, DateTimeTrigger)
    assert (deferral.method_name, deferral.kwargs) == ("resume", {"n": 1})
    assert deferral.timeout == timedelta(seconds=30)


def test_defer_refuses_a_method_the_operator_lacks() -> None:
    class Typo(BaseOperator):
        def execute(self, context: dict[str, Any]) -> Any:
            self.defer(trigger=DateTimeTrigger(T0), method_name="resum")

    with pytest.raises(TypeError, match="Typo has no method 'resum'"):
        make(Typo).execute({})


def test_resuming_calls_the_method_with_the_event() -> None:
    assert make(Waits).resume_execution("resume", {"n": 2, "event": T0}, {}) == {
        "event": T0,
        "n": 2,
    }


def test_resuming_after_a_timeout_or_a_broken_trigger_raises() -> None:
    task = make(Waits)
    with pytest.raises(TaskDeferralTimeout, match="did not fire"):
        task.resume_execution(FAIL_METHOD, {"error": "did not fire", "timeout": True}, {})
    with pytest.raises(TaskDeferralError, match="boom\nTraceback line"):
        task.resume_execution(FAIL_METHOD, {"error": "boom", "traceback": ["Traceback line"]}, {})


# --- deferrable sensors ---------------------------------------------------------------------


def test_a_deferrable_sensor_pokes_once_then_defers_with_its_timeout(tmp_path: Path) -> None:
    sensor = make(FileSensor, filepath=str(tmp_path / "x.csv"), deferrable=True, timeout=600)
    with pytest.raises(TaskDefer) as raised:
        sensor.execute({})
    assert isinstance(raised.value.trigger, FileTrigger)
    assert raised.value.trigger.filepath == str(tmp_path / "x.csv")
    assert (raised.value.method_name, raised.value.timeout) == (
        "execute_complete",
        timedelta(seconds=600),
    )
    (tmp_path / "x.csv").write_text("")
    assert sensor.execute({}) is None  # already there: no deferral


def test_time_sensors_defer_to_a_date_time_trigger() -> None:
    at = make(DateTimeSensor, target_time="2999-01-01T00:00:00+00:00", deferrable=True)
    assert at.trigger_for({}).moment == datetime(2999, 1, 1, tzinfo=UTC)
    after = make(TimeDeltaSensor, delta=timedelta(hours=2), deferrable=True)
    trigger = after.trigger_for({"data_interval_end": T0})
    assert trigger.moment == T0 + timedelta(hours=2)


def test_a_resumed_sensor_reads_its_event() -> None:
    sensor = make(FileSensor, filepath="/x", deferrable=True)
    assert sensor.execute_complete({}, event={"status": "success"}) is None
    with pytest.raises(TaskFail, match="reports failed"):
        sensor.execute_complete({}, event={"status": "failed"})
    with pytest.raises(TaskSkip):
        sensor.execute_complete({}, event={"status": "skipped"})


@pytest.mark.parametrize(("soft_fail", "error"), [(False, SensorTimeout), (True, TaskSkip)])
def test_a_sensor_whose_deferral_timed_out_times_out_as_a_sensor(
    soft_fail: bool, error: type[Exception]
) -> None:
    sensor = make(FileSensor, filepath="/x", deferrable=True, timeout=5, soft_fail=soft_fail)
    with pytest.raises(error, match="timed out"):
        sensor.resume_execution(FAIL_METHOD, {"error": "late", "timeout": True}, {})


def test_a_bad_defer_timeout_names_the_task() -> None:
    class Impatient(BaseOperator):
        def execute(self, context: dict[str, Any]) -> Any:
            self.defer(trigger=DateTimeTrigger(T0), method_name="execute", timeout="soon")

    with pytest.raises(DagDefinitionError, match=r"task 't': defer\(\): timeout must be"):
        make(Impatient).execute({})


@pytest.mark.parametrize(
    ("deferral", "message"),
    [
        (
            TaskDefer(trigger="soon", method_name="resume"),
            "needs a BaseTrigger instance, got str",
        ),
        (
            TaskDefer(trigger=DateTimeTrigger(T0), method_name="resume", kwargs={"f": print}),
            r"the kwargs of defer\('resume'\)\['f'\]: builtin_function_or_method cannot be stored",
        ),
        (
            TaskDefer(trigger=DateTimeTrigger(T0), method_name="resume", kwargs={"event": 1}),
            "may not use the key 'event'",
        ),
        (
            TaskDefer(trigger=DateTimeTrigger(T0), method_name="resume", timeout=30),
            r"defer\(timeout=\.\.\.\) must be a timedelta, got 30",
        ),
    ],
)
def test_a_deferral_the_worker_cannot_store_fails_with_the_reason(
    deferral: TaskDefer, message: str
) -> None:
    from worker.execution import _deferral_of

    with pytest.raises(TradewindError, match=message):
        _deferral_of(deferral)
