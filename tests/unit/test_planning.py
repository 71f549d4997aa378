"""The run planner, without a database: serialized DAGs in, decisions out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tradewind import DAG, task
from tradewind.operators.empty import EmptyOperator
from tradewind.operators.python import PythonOperator
from tradewind.planning import TISnapshot, is_settled, plan_run
from tradewind.serialization import SerializedDag, serialize_dag
from tradewind.state import DagRunState, TaskInstanceState

TI = TaskInstanceState
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def noop() -> None:
    return None


def frozen(dag: DAG) -> SerializedDag:
    return SerializedDag.from_dict(serialize_dag(dag))


def snapshot(states: dict[str, Any]) -> list[TISnapshot]:
    result = []
    for key, state in states.items():
        task_id, _, index = key.partition("[")
        map_index = int(index.rstrip("]")) if index else -1
        result.append(TISnapshot(task_id, map_index, TI(state) if state else None))
    return result


def linear() -> SerializedDag:
    with DAG("linear") as dag:
        a = PythonOperator(task_id="a", python_callable=noop, priority_weight=1)
        b = PythonOperator(task_id="b", python_callable=noop)
        c = PythonOperator(task_id="c", python_callable=noop)
        a >> b >> c
    return frozen(dag)


def test_roots_are_ready_first() -> None:
    plan = plan_run(linear(), snapshot({"a": None, "b": None, "c": None}), now=NOW)
    assert plan.ready == [("a", -1)]
    assert plan.run_state is None


def test_a_failure_fails_everything_downstream_in_one_pass() -> None:
    plan = plan_run(linear(), snapshot({"a": "failed", "b": None, "c": None}), now=NOW)
    assert plan.set_state == {("b", -1): TI.UPSTREAM_FAILED, ("c", -1): TI.UPSTREAM_FAILED}
    assert plan.run_state is DagRunState.FAILED


def test_a_finished_run_succeeds() -> None:
    plan = plan_run(linear(), snapshot({"a": "success", "b": "success", "c": "success"}), now=NOW)
    assert plan.run_state is DagRunState.SUCCESS
    assert not plan.ready


def test_running_tasks_keep_the_run_open() -> None:
    plan = plan_run(linear(), snapshot({"a": "running", "b": None, "c": None}), now=NOW)
    assert not plan.ready
    assert plan.run_state is None


def test_retries_are_released_when_due_only() -> None:
    dag = linear()
    waiting = [TISnapshot("a", -1, TI.UP_FOR_RETRY, 1, NOW + timedelta(seconds=30))]
    rest = snapshot({"b": None, "c": None})
    assert plan_run(dag, waiting + rest, now=NOW).ready == []
    assert plan_run(dag, waiting + rest, now=NOW + timedelta(seconds=30)).ready == [("a", -1)]


def test_ready_instances_are_ordered_by_priority() -> None:
    with DAG("wide") as dag:
        for name, weight in (("low", 1), ("high", 10), ("mid", 5)):
            PythonOperator(task_id=name, python_callable=noop, priority_weight=weight)
    plan = plan_run(frozen(dag), snapshot({"low": None, "high": None, "mid": None}), now=NOW)
    assert [key[0] for key in plan.ready] == ["high", "mid", "low"]


def test_downstream_weight_rule_sums_the_tasks_below() -> None:
    dag = linear()
    assert (dag.tasks["a"].weight, dag.tasks["b"].weight, dag.tasks["c"].weight) == (3, 2, 1)


def test_empty_operators_succeed_without_running() -> None:
    with DAG("empty") as dag:
        start = EmptyOperator(task_id="start")
        work = PythonOperator(task_id="work", python_callable=noop)
        start >> work
    plan = plan_run(frozen(dag), snapshot({"start": None, "work": None}), now=NOW)
    assert plan.set_state == {("start", -1): TI.SUCCESS}
    assert plan.ready == [("work", -1)]


def test_mapped_task_expands_from_a_literal() -> None:
    with DAG("mapped") as dag:
        PythonOperator.partial(task_id="m", python_callable=noop).expand(op_args=[[1], [2], [3]])
    plan = plan_run(frozen(dag), snapshot({"m": None}), now=NOW)
    assert plan.expand == {"m": 3}
    assert plan.ready == [("m", 0), ("m", 1), ("m", 2)]


def mapped_over_xcom() -> SerializedDag:
    with DAG("xmap") as dag:

        @task
        def source() -> list[int]:
            return [1, 2]

        @task
        def each(x: int) -> int:
            return x

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        total(each.expand(x=source()))
    return frozen(dag)


def test_mapped_task_waits_for_its_source_then_expands_to_its_length() -> None:
    dag = mapped_over_xcom()
    plan = plan_run(dag, snapshot({"source": "running", "each": None, "total": None}), now=NOW)
    assert plan.expand == {}
    lengths = {("source", "return_value"): 4}
    plan = plan_run(
        dag,
        snapshot({"source": "success", "each": None, "total": None}),
        now=NOW,
        map_lengths=lengths,
    )
    assert plan.expand == {"each": 4}
    assert len(plan.ready) == 4


def test_an_empty_expansion_skips_the_task_and_its_dependents() -> None:
    dag = mapped_over_xcom()
    lengths = {("source", "return_value"): 0}
    plan = plan_run(
        dag,
        snapshot({"source": "success", "each": None, "total": None}),
        now=NOW,
        map_lengths=lengths,
    )
    assert plan.set_state == {("each", -1): TI.SKIPPED, ("total", -1): TI.SKIPPED}
    assert plan.run_state is DagRunState.SUCCESS


def test_downstream_of_a_mapped_task_waits_for_every_instance() -> None:
    dag = mapped_over_xcom()
    states = {"source": "success", "each[0]": "success", "each[1]": "running", "total": None}
    assert plan_run(dag, snapshot(states), now=NOW).ready == []
    states["each[1]"] = "success"
    assert plan_run(dag, snapshot(states), now=NOW).ready == [("total", -1)]


def test_depends_on_past_waits_for_the_previous_run() -> None:
    with DAG("past") as dag:
        PythonOperator(task_id="t", python_callable=noop, depends_on_past=True)
    frozen_dag = frozen(dag)
    first = plan_run(frozen_dag, snapshot({"t": None}), now=NOW, past_states=None)
    assert first.ready == [("t", -1)]  # ignore_first_depends_on_past
    blocked = plan_run(
        frozen_dag, snapshot({"t": None}), now=NOW, past_states={("t", -1): TI.FAILED}
    )
    assert blocked.ready == []
    allowed = plan_run(
        frozen_dag, snapshot({"t": None}), now=NOW, past_states={("t", -1): TI.SUCCESS}
    )
    assert allowed.ready == [("t", -1)]


def test_per_run_limit_releases_only_that_many() -> None:
    with DAG("limited") as dag:
        PythonOperator.partial(
            task_id="m", python_callable=noop, max_active_tis_per_dagrun=2
        ).expand(op_args=[[1], [2], [3], [4]])
    plan = plan_run(frozen(dag), snapshot({"m": None}), now=NOW)
    assert plan.ready == [("m", 0), ("m", 1)]


def test_instances_of_tasks_no_longer_in_the_dag_are_removed() -> None:
    plan = plan_run(
        linear(), snapshot({"a": "success", "b": "success", "c": "success", "gone": None}), now=NOW
    )
    assert plan.set_state == {("gone", -1): TI.REMOVED}
    assert plan.run_state is DagRunState.SUCCESS


@pytest.mark.parametrize(
    ("counts", "settled"),
    [
        ({TI.SCHEDULED: 990, TI.RUNNING: 8, TI.SUCCESS: 2}, True),
        ({TI.QUEUED: 1, TI.SKIPPED: 3}, True),
        ({TI.DEFERRED: 4}, True),
        ({TI.SUCCESS: 10}, False),  # every instance ended: the run's state is decided
        ({TI.RUNNING: 1, None: 1}, False),  # an undecided downstream task
        ({TI.RUNNING: 1, TI.UP_FOR_RETRY: 1}, False),
        ({TI.RUNNING: 1, TI.UP_FOR_RESCHEDULE: 1}, False),
        ({TI.RUNNING: 1, TI.FAILED: 1}, False),  # trigger rules and fail_fast react
        ({TI.RUNNING: 1, TI.UPSTREAM_FAILED: 1}, False),
        ({TI.RUNNING: 1, TI.REMOVED: 1}, False),
        ({TI.RUNNING: 0, TI.SUCCESS: 3}, False),
    ],
)
def test_a_run_is_settled_only_when_planning_could_change_nothing(
    counts: dict[TI | None, int], settled: bool
) -> None:
    assert is_settled(counts) is settled


def test_only_a_dag_that_maps_over_an_xcom_needs_the_lengths_of_mapped_xcoms() -> None:
    @task
    def numbers() -> list[int]:
        return [1, 2]

    @task
    def double(n: int) -> int:
        return 2 * n

    with DAG("over_xcom") as over_xcom:
        double.expand(n=numbers())
    with DAG("over_a_list") as over_a_list:
        double.expand(n=[1, 2, 3])
    assert frozen(over_xcom).expands_over_xcom
    assert not frozen(over_a_list).expands_over_xcom
    assert not linear().expands_over_xcom
