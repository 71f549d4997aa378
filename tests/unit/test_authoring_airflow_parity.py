"""Places where the authoring API once differed from Airflow; each test pins the
Airflow behaviour."""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

import pytest

from tradewind import DAG, TaskGroup, dag, task
from tradewind.errors import DagDefinitionError
from tradewind.operators.bash import BashOperator
from tradewind.operators.empty import EmptyOperator
from tradewind.operators.python import BranchPythonOperator
from tradewind.sdk.params import DagParam
from tradewind.sdk.templating import render_fields


class RecordingTI:
    def __init__(self) -> None:
        self.skipped: list[str] = []

    def skip(self, task_ids: Any) -> None:
        self.skipped.extend(task_ids)


def test_default_args_reach_operators_without_their_own_init() -> None:
    with DAG("d", default_args={"retries": 3, "owner": "ann"}):
        with TaskGroup("g", default_args={"retries": 5}):
            grouped = EmptyOperator(task_id="grouped")
        plain = EmptyOperator(task_id="plain")
    assert (plain.retries, plain.owner) == (3, "ann")
    assert grouped.retries == 5


def test_a_group_without_prefix_does_not_pass_on_outer_prefixes() -> None:
    with DAG("d"), TaskGroup("outer"), TaskGroup("middle", prefix_group_id=False):
        t = EmptyOperator(task_id="t")
        with TaskGroup("inner") as inner:
            u = EmptyOperator(task_id="u")
    assert (t.task_id, inner.group_id, u.task_id) == ("t", "inner", "inner.u")


def test_branch_keeps_tasks_downstream_of_the_followed_branch() -> None:
    with DAG("d"):
        branch = BranchPythonOperator(task_id="br", python_callable=lambda: "a")
        a = EmptyOperator(task_id="a")
        join = EmptyOperator(task_id="join")
        other = EmptyOperator(task_id="other")
        branch >> [a, join, other]
        a >> join
    ti = RecordingTI()
    branch.execute({"ti": ti})
    assert ti.skipped == ["other"]


def test_task_params_include_dag_and_default_args_params() -> None:
    with DAG("d", params={"a": 1, "c": 0}, default_args={"params": {"b": 2}}):
        t = BashOperator(task_id="t", bash_command="x", params={"c": 3})
    assert dict(t.params) == {"a": 1, "b": 2, "c": 3}


def test_a_string_start_date_is_a_definition_error() -> None:
    with pytest.raises(DagDefinitionError, match="start_date must be a datetime") as info:
        DAG("d", start_date="2024-01-01")  # type: ignore[arg-type]
    assert info.value.lineno == inspect.currentframe().f_lineno - 1  # type: ignore[union-attr]


def test_a_misspelled_required_argument_suggests_the_right_name() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match="did you mean 'bash_command'"):
        BashOperator(task_id="b", bash_comand="echo")


def test_a_missing_required_argument_is_a_definition_error() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match="bash_command"):
        BashOperator(task_id="b")  # type: ignore[call-arg]


def test_dag_function_parameters_become_params_resolved_per_run() -> None:
    @dag(start_date=datetime(2024, 1, 1))
    def pipeline(value: int = 3) -> None:
        @task
        def use(v: int) -> int:
            return v

        use(value)

    built = pipeline()
    assert dict(built.params) == {"value": 3}
    op = built.get_task("use")
    assert isinstance(op.op_args[0], DagParam)  # type: ignore[attr-defined]
    rendered = render_fields(op, {"params": {"value": 8}})
    assert rendered["op_args"] == [8]


def test_topological_sort_refuses_a_cycle() -> None:
    with DAG("d") as d:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        a >> b >> a
    with pytest.raises(DagDefinitionError, match="cycle"):
        d.topological_sort()


def test_group_ids_may_not_contain_dots() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match="may not contain"):
        TaskGroup("a.b")


def test_naive_start_dates_use_the_default_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC

    monkeypatch.setenv("TRADEWIND_DEFAULT_TIMEZONE", "Europe/Amsterdam")
    with DAG("amsterdam", schedule="0 2 * * *", start_date=datetime(2024, 1, 1)) as d:
        pass
    assert d.timezone == "Europe/Amsterdam"
    assert d.start_date == datetime(2023, 12, 31, 23, 0, tzinfo=UTC)


def test_dag_callbacks_are_lists_and_must_be_callable() -> None:
    def hook(context: Any) -> None:
        return None

    with DAG("cb", on_failure_callback=hook, on_success_callback=[hook, hook]) as d:
        pass
    assert (d.on_failure_callback, d.on_success_callback, DAG("none").on_failure_callback) == (
        [hook],
        [hook, hook],
        [],
    )
    with pytest.raises(DagDefinitionError, match="on_failure_callback must be callable"):
        DAG("bad", on_failure_callback="page me")  # type: ignore[arg-type]
