"""Sensors without a database: how they poke, wait, back off, time out, reschedule, and
what each built-in sensor looks at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tradewind import DAG, PokeReturnValue, sensors, task
from tradewind.errors import DagDefinitionError, SensorTimeout, TaskFail, TaskReschedule, TaskSkip
from tradewind.sensors import BaseSensorOperator
from tradewind.sensors.date_time import DateTimeSensor
from tradewind.sensors.external_task import ExternalTaskSensor
from tradewind.sensors.filesystem import FileSensor
from tradewind.sensors.python import PythonSensor
from tradewind.sensors.time_delta import TimeDeltaSensor

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Stands in for the sensor's clock and sleep: sleeping moves time on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = T0
        self.slept: list[float] = []
        monkeypatch.setattr(sensors, "_now", lambda: self.now)
        monkeypatch.setattr(sensors.time, "sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class Countdown(BaseSensorOperator):
    """Done at the poke number given; records the times it poked."""

    def __init__(self, *, done_at: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.done_at = done_at
        self.pokes = 0

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        self.pokes += 1
        if self.done_at is not None and self.pokes >= self.done_at:
            return PokeReturnValue(is_done=True, xcom_value={"pokes": self.pokes})
        return False


def context_with(history: tuple[int, datetime | None] = (0, None), **extra: Any) -> dict[str, Any]:
    ti = SimpleNamespace(poke_history=lambda: history)
    return {"ti": ti, **extra}


def make(cls: type[BaseSensorOperator], **kwargs: Any) -> Any:
    with DAG("sensing"):
        return cls(task_id="sense", **kwargs)


# --- BaseSensorOperator -------------------------------------------------------------------


def test_poke_mode_sleeps_between_pokes_and_returns_the_xcom_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    sensor = make(Countdown, done_at=3, poke_interval=5)
    assert sensor.execute(context_with()) == {"pokes": 3}
    assert clock.slept == [5, 5]


def test_exponential_backoff_doubles_up_to_max_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    sensor = make(Countdown, done_at=6, poke_interval=2, exponential_backoff=True, max_wait=10)
    sensor.execute(context_with())
    assert clock.slept == [2, 4, 8, 10, 10]


def test_poke_mode_times_out_without_retry_or_skips_with_soft_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    with pytest.raises(SensorTimeout, match=r"timed out after 30s \(timeout 30s\)"):
        make(Countdown, done_at=None, poke_interval=10, timeout=30).execute(context_with())
    assert clock.slept == [10, 10, 10]
    assert issubclass(SensorTimeout, TaskFail)  # a timed-out sensor is not retried
    with pytest.raises(TaskSkip, match="soft_fail"):
        make(Countdown, done_at=None, poke_interval=10, timeout=30, soft_fail=True).execute(
            context_with()
        )


def test_the_last_wait_stops_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    with pytest.raises(SensorTimeout):
        make(Countdown, done_at=None, poke_interval=20, timeout=30).execute(context_with())
    assert clock.slept == [20, 10]


def test_reschedule_mode_pokes_once_and_asks_to_come_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Clock(monkeypatch)
    sensor = make(Countdown, done_at=None, poke_interval=60, mode="reschedule")
    with pytest.raises(TaskReschedule) as raised:
        sensor.execute(context_with())
    assert raised.value.reschedule_at == T0 + timedelta(seconds=60)
    assert sensor.pokes == 1


def test_reschedule_mode_counts_the_timeout_from_the_first_poke(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Clock(monkeypatch)
    sensor = make(Countdown, done_at=None, poke_interval=60, timeout=600, mode="reschedule")
    first_poke = T0 - timedelta(seconds=590)
    with pytest.raises(TaskReschedule) as raised:  # 10 s left: the next poke comes then
        sensor.execute(context_with(history=(9, first_poke)))
    assert raised.value.reschedule_at == T0 + timedelta(seconds=10)
    with pytest.raises(SensorTimeout):
        sensor.execute(context_with(history=(10, T0 - timedelta(seconds=600))))


def test_reschedule_mode_backs_off_by_the_number_of_earlier_pokes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Clock(monkeypatch)
    sensor = make(
        Countdown, done_at=None, poke_interval=1, mode="reschedule", exponential_backoff=True
    )
    with pytest.raises(TaskReschedule) as raised:
        sensor.execute(context_with(history=(3, T0 - timedelta(seconds=7))))
    assert raised.value.reschedule_at == T0 + timedelta(seconds=8)  # the 4th poke: 1 * 2**3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "smart"}, "mode must be 'poke' or 'reschedule', got 'smart'"),
        ({"deferrable": True}, "Countdown cannot defer"),
        ({"poke_interval": -1}, "poke_interval must be a timedelta or a number of seconds"),
        ({"timeout": "soon"}, "timeout must be a timedelta or a number of seconds"),
    ],
)
def test_bad_sensor_options_name_the_task_and_the_line(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DagDefinitionError, match=message) as raised:
        make(Countdown, done_at=1, **options)
    assert "sensor 'sense'" in str(raised.value)
    assert raised.value.filename == __file__
    assert raised.value.lineno is not None


# --- @task.sensor and PythonSensor --------------------------------------------------------


def test_task_sensor_turns_a_function_into_the_poke(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    answers = iter([False, PokeReturnValue(is_done=True, xcom_value=42)])

    with DAG("decorated") as dag:

        @task.sensor(poke_interval=3, timeout=60)
        def partition_ready(table: str, ds: str | None = None) -> Any:
            assert (table, ds) == ("events", "2026-03-01")
            return next(answers)

        partition_ready("events")

    operator = dag.task_dict["partition_ready"]
    assert operator.custom_operator_name == "@task.sensor"
    assert operator.execute(context_with(ds="2026-03-01")) == 42
    assert clock.slept == [3]


def test_python_sensor_passes_context_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    Clock(monkeypatch)
    sensor = make(PythonSensor, python_callable=lambda ti: ti is not None, poke_interval=1)
    assert sensor.execute(context_with()) is None


# --- FileSensor ---------------------------------------------------------------------------


def test_file_sensor_globs_and_looks_into_folders(tmp_path: Path) -> None:
    context = context_with()
    sensor = make(FileSensor, filepath=str(tmp_path / "landing" / "*.csv"))
    assert not sensor.poke(context)
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "orders.json").write_text("{}")
    assert not sensor.poke(context)
    (tmp_path / "landing" / "orders.csv").write_text("id\n")
    assert sensor.poke(context)

    folder = make(FileSensor, filepath=str(tmp_path / "nested"))
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    assert not folder.poke(context)  # an empty folder is not a landed file
    (tmp_path / "nested" / "deeper" / "part-0").write_text("x")
    assert not folder.poke(context)  # the file is below, and recursive is off
    deep = make(FileSensor, filepath=str(tmp_path / "nested"), recursive=True)
    assert deep.poke(context)


# --- time sensors -------------------------------------------------------------------------


def test_date_time_sensor_reads_iso_strings_as_utc_when_naive() -> None:
    context = context_with()
    assert make(DateTimeSensor, target_time="2000-01-01T00:00:00").poke(context)
    assert not make(DateTimeSensor, target_time="2999-01-01T00:00:00+02:00").poke(context)
    assert make(DateTimeSensor, target_time=datetime(2000, 1, 1, tzinfo=UTC)).poke(context)
    with pytest.raises(Exception, match="'tomorrow' is not an ISO 8601 date-time"):
        make(DateTimeSensor, target_time="tomorrow").poke(context)


def test_time_delta_sensor_waits_after_the_data_interval() -> None:
    sensor = make(TimeDeltaSensor, delta=timedelta(hours=2))
    old = context_with(data_interval_end=datetime(2000, 1, 2, tzinfo=UTC))
    assert sensor.target(old) == datetime(2000, 1, 2, 2, tzinfo=UTC)
    assert sensor.poke(old)
    run = SimpleNamespace(run_after=datetime(2999, 1, 1, tzinfo=UTC))
    assert not sensor.poke(context_with(data_interval_end=None, dag_run=run))


# --- ExternalTaskSensor (its pokes read the database: tests/integration) ------------------


def test_external_task_sensor_options_are_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(DagDefinitionError, match="not both"):
        make(ExternalTaskSensor, external_dag_id="a", external_task_id="t", external_task_ids=["t"])
    with pytest.raises(DagDefinitionError, match="'sucess' is not a state of a task instance"):
        make(
            ExternalTaskSensor, external_dag_id="a", external_task_id="t", allowed_states=["sucess"]
        )
    with pytest.raises(DagDefinitionError, match="'upstream_failed' is not a state of a run"):
        make(ExternalTaskSensor, external_dag_id="a", failed_states=["upstream_failed"])
    with pytest.raises(DagDefinitionError, match="both allowed and failed"):
        make(ExternalTaskSensor, external_dag_id="a", failed_states=["success"])


def test_external_task_sensor_finds_the_other_runs_logical_dates() -> None:
    day = datetime(2026, 3, 2, tzinfo=UTC)
    same = make(ExternalTaskSensor, external_dag_id="a")
    assert same.logical_dates({"logical_date": day}) == [day]
    shifted = make(ExternalTaskSensor, external_dag_id="a", execution_delta=timedelta(days=1))
    assert shifted.logical_dates({"logical_date": day}) == [day - timedelta(days=1)]
    both = make(
        ExternalTaskSensor,
        external_dag_id="a",
        execution_date_fn=lambda when, context: [when, when + timedelta(hours=1)],
    )
    assert both.logical_dates({"logical_date": day}) == [day, day + timedelta(hours=1)]
    with pytest.raises(Exception, match="this run has none"):
        same.logical_dates({"logical_date": None})
