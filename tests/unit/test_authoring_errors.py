"""Mistakes in a DAG file raise `DagDefinitionError` pointing at the file and line."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import pytest

from tradewind import DAG, Param, TaskGroup, task
from tradewind.errors import DagDefinitionError, TradewindError
from tradewind.operators.bash import BashOperator
from tradewind.operators.empty import EmptyOperator
from tradewind.operators.python import PythonOperator

START = datetime(2024, 1, 1, tzinfo=UTC)


def here() -> int:
    """The line of the caller; ``here() + 2`` is two lines below the call."""
    frame = inspect.currentframe()
    assert frame is not None
    assert frame.f_back is not None
    return frame.f_back.f_lineno


def assert_points_at(error: DagDefinitionError, line: int) -> None:
    assert error.filename == __file__
    assert error.lineno == line
    assert str(error).endswith(f"({__file__}:{line})")


def test_dag_definition_error_is_a_tradewind_error() -> None:
    assert issubclass(DagDefinitionError, TradewindError)
    assert str(DagDefinitionError("plain")) == "plain"


# --- tasks ----------------------------------------------------------------------------


def test_duplicate_task_id_points_at_the_second_task() -> None:
    with DAG("d"):
        EmptyOperator(task_id="load")
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="'load' has already been added") as info:
            EmptyOperator(task_id="load")

    assert_points_at(info.value, line)


def test_unknown_operator_argument_suggests_the_closest_name() -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError) as info:
            BashOperator(task_id="t", bash_command="true", retires=3)

    assert "unknown argument 'retires' (did you mean 'retries'?)" in info.value.message
    assert_points_at(info.value, line)


def test_unknown_arguments_are_all_named() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError) as info:
        EmptyOperator(task_id="t", pol="p", xyzzy=1)

    assert "unknown arguments 'pol' (did you mean 'pool'?), 'xyzzy'" in info.value.message


def test_unknown_dag_argument_suggests_the_closest_name() -> None:
    line = here() + 2
    with pytest.raises(DagDefinitionError) as info:
        DAG("d", schedul="@daily", start_date=START)

    assert "unknown argument 'schedul' (did you mean 'schedule'?)" in info.value.message
    assert_points_at(info.value, line)


def test_unknown_trigger_rule_lists_the_allowed_values() -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError) as info:
            EmptyOperator(task_id="t", trigger_rule="all_good")

    message = info.value.message
    assert "'all_good'" in message
    for rule in ("all_success", "one_failed", "none_failed_min_one_success", "always"):
        assert rule in message
    assert_points_at(info.value, line)


def test_task_outside_any_dag() -> None:
    line = here() + 2
    with pytest.raises(DagDefinitionError, match="outside any DAG") as info:
        EmptyOperator(task_id="orphan")

    assert_points_at(info.value, line)


def test_taskflow_call_outside_any_dag() -> None:
    @task
    def orphan() -> None:
        pass

    line = here() + 2
    with pytest.raises(DagDefinitionError, match="outside any DAG") as info:
        orphan()

    assert_points_at(info.value, line)


def test_task_group_outside_any_dag() -> None:
    line = here() + 2
    with pytest.raises(DagDefinitionError, match="outside any DAG") as info:
        TaskGroup("orphans")

    assert_points_at(info.value, line)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"pool_slots": 0}, "pool_slots must be an integer >= 1"),
        ({"retries": -1}, "retries must be a non-negative integer"),
        ({"retries": "3"}, "retries must be a non-negative integer"),
        ({"priority_weight": 1.5}, "priority_weight must be an integer"),
        ({"weight_rule": "sideways"}, "weight_rule must be one of downstream, upstream, absolute"),
        ({"retry_delay": "5m"}, "retry_delay must be a timedelta or a number of seconds"),
        ({"execution_timeout": -1}, "execution_timeout must be a timedelta"),
        ({"on_failure_callback": "page"}, "on_failure_callback must be callable"),
        ({"max_active_tis_per_dag": 0}, "max_active_tis_per_dag must be a positive integer"),
    ],
)
def test_bad_operator_option(options: dict[str, object], fragment: str) -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match=fragment) as info:
            EmptyOperator(task_id="t", **options)

    assert info.value.message.startswith("task 't': ")
    assert_points_at(info.value, line)


@pytest.mark.parametrize("task_id", ["has space", "semi;colon", "", "x" * 251])
def test_bad_task_id(task_id: str) -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="task_id") as info:
            EmptyOperator(task_id=task_id)

    assert_points_at(info.value, line)


def test_positional_operator_arguments_are_rejected() -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="keyword arguments only") as info:
            BashOperator("t", bash_command="true")

    assert_points_at(info.value, line)


def test_python_callable_must_be_callable() -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="python_callable must be callable") as info:
            PythonOperator(task_id="t", python_callable="not a function")

    assert_points_at(info.value, line)


def test_empty_bash_command() -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="bash_command must be a non-empty") as info:
            BashOperator(task_id="t", bash_command="  ")

    assert_points_at(info.value, line)


def test_taskflow_call_with_arguments_the_function_does_not_take() -> None:
    with DAG("d"):

        @task
        def load(path: str) -> None:
            pass

        line = here() + 2
        with pytest.raises(DagDefinitionError, match="'load' called with bad arguments") as info:
            load("a", "b")

    assert_points_at(info.value, line)


# --- dependencies ---------------------------------------------------------------------


def test_task_cannot_depend_on_itself() -> None:
    with DAG("d"):
        a = EmptyOperator(task_id="a")
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="cannot depend on itself") as info:
            a >> a

    assert_points_at(info.value, line)


def test_tasks_of_different_dags_cannot_be_linked() -> None:
    with DAG("first"):
        a = EmptyOperator(task_id="a")
    with DAG("second"):
        b = EmptyOperator(task_id="b")

    line = here() + 2
    with pytest.raises(DagDefinitionError, match="must be in the same DAG") as info:
        a >> b

    assert_points_at(info.value, line)


def test_dependency_on_something_that_is_not_a_task() -> None:
    with DAG("d"):
        a = EmptyOperator(task_id="a")
        with pytest.raises(DagDefinitionError, match="cannot set a dependency on 'b'"):
            a >> "b"


def test_cycle_is_found_by_validate_and_named() -> None:
    line = here() + 1
    with DAG("cyclic") as the_dag:
        a, b, c = (EmptyOperator(task_id=t) for t in "abc")
        a >> b >> c >> a

    with pytest.raises(DagDefinitionError) as info:
        the_dag.validate()

    assert "DAG 'cyclic' has a cycle: a >> b >> c >> a" in info.value.message
    assert_points_at(info.value, line)


def test_cycle_through_task_groups_is_found() -> None:
    with DAG("cyclic") as the_dag:
        with TaskGroup("g") as group:
            inner = EmptyOperator(task_id="inner")
        outer = EmptyOperator(task_id="outer")
        group >> outer >> inner

    with pytest.raises(DagDefinitionError, match=r"cycle: g\.inner >> outer >> g\.inner"):
        the_dag.validate()


def test_duplicate_group_id() -> None:
    with DAG("d"):
        EmptyOperator(task_id="load")
        TaskGroup("extract")
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="group id 'extract' is already used") as a:
            TaskGroup("extract")
        with pytest.raises(DagDefinitionError, match="group id 'load' is already used"):
            TaskGroup("load")

    assert_points_at(a.value, line)


# --- the DAG --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "shown"), [("0 2 * * *", "0 2 * * *"), ("@daily", "0 0 * * *"), ("@once", "@once")]
)
def test_schedule_without_start_date(schedule: str, shown: str) -> None:
    line = here() + 2
    with pytest.raises(DagDefinitionError, match="no start_date") as info:
        DAG("d", schedule=schedule)

    assert f"has schedule {shown!r} but no start_date" in info.value.message
    assert_points_at(info.value, line)


def test_manual_dag_needs_no_start_date() -> None:
    assert DAG("manual", schedule=None).start_date is None


@pytest.mark.parametrize("schedule", ["0 2 * *", "61 2 * * *", "@fortnightly", "every day"])
def test_bad_cron_string(schedule: str) -> None:
    line = here() + 2
    with pytest.raises(DagDefinitionError, match="invalid cron expression") as info:
        DAG("d", schedule=schedule, start_date=START)

    assert repr(schedule) in info.value.message
    assert_points_at(info.value, line)


@pytest.mark.parametrize("dag_id", ["my dag", "etl/nightly", "ünïcode!", ""])
def test_bad_dag_id(dag_id: str) -> None:
    line = here() + 2
    with pytest.raises(DagDefinitionError, match="dag_id") as info:
        DAG(dag_id)

    assert_points_at(info.value, line)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"max_active_runs": 0}, "max_active_runs must be at least 1"),
        ({"max_active_tasks": 0}, "max_active_tasks must be at least 1"),
        ({"end_date": "2024-01-01"}, "end_date must be a datetime"),
        ({"dagrun_timeout": 60}, "dagrun_timeout must be a timedelta"),
    ],
)
def test_bad_dag_option(options: dict[str, object], fragment: str) -> None:
    line = here() + 2
    with pytest.raises(DagDefinitionError, match=fragment) as info:
        DAG("d", **options)

    assert_points_at(info.value, line)


# --- params ---------------------------------------------------------------------------


def test_dag_param_default_that_violates_its_schema() -> None:
    line = here() + 2
    with pytest.raises(DagDefinitionError) as info:
        DAG("d", params={"epochs": Param(0, type="integer", minimum=1)})

    assert "param 'epochs'" in info.value.message
    assert "minimum of 1" in info.value.message
    assert_points_at(info.value, line)


def test_task_param_default_that_violates_its_schema() -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="param 'segment'") as info:
            EmptyOperator(task_id="t", params={"segment": Param("x", enum=["retail", "smb"])})

    assert_points_at(info.value, line)


def test_param_default_that_is_not_json() -> None:
    line = here() + 2
    with pytest.raises(DagDefinitionError, match="JSON-serialisable") as info:
        DAG("d", params={"when": datetime(2024, 1, 1)})

    assert_points_at(info.value, line)


# --- mapping --------------------------------------------------------------------------


def test_expand_over_a_value_that_is_not_a_list() -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="needs a list, a dict") as info:
            PythonOperator.partial(task_id="m", python_callable=print).expand(op_args=5)

    assert_points_at(info.value, line)


def test_same_argument_in_partial_and_expand() -> None:
    partial = PythonOperator.partial
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="given to both partial") as info:
            partial(task_id="m", python_callable=print, op_args=[1]).expand(op_args=[[1], [2]])

    assert_points_at(info.value, line)


def test_task_id_cannot_be_mapped() -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match="cannot map over 'task_id'") as info:
            PythonOperator.partial(task_id="m", python_callable=print).expand(task_id=["a"])

    assert_points_at(info.value, line)


def test_partial_needs_a_task_id() -> None:
    with DAG("d"):
        line = here() + 2
        with pytest.raises(DagDefinitionError, match=r"partial\(\) needs task_id") as info:
            PythonOperator.partial(python_callable=print)

    assert_points_at(info.value, line)


def test_partial_with_an_unknown_argument() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match="did you mean 'op_kwargs'"):
        PythonOperator.partial(task_id="m", python_callable=print, op_kwarg={})


def test_expand_with_nothing_to_map() -> None:
    with DAG("d"):
        partial = PythonOperator.partial(task_id="m", python_callable=print)
        with pytest.raises(DagDefinitionError, match="at least one argument"):
            partial.expand()


def test_taskflow_expand_errors() -> None:
    with DAG("d"):

        @task
        def add(x: int, y: int) -> int:
            return x + y

        line = here() + 2
        with pytest.raises(DagDefinitionError, match="y given to both partial") as both:
            add.partial(y=1).expand(y=[1, 2])
        with pytest.raises(DagDefinitionError, match="needs a list") as literal:
            add.partial(y=1).expand(x=3)
        with pytest.raises(DagDefinitionError, match="bad arguments"):
            add.expand(z=[1])

    assert_points_at(both.value, line)
    assert_points_at(literal.value, line + 2)
