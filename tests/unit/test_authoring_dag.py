"""Building DAGs as a DAG file does: tasks, dependencies, task groups, default_args, options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradewind import DAG, TaskGroup, TriggerRule, chain, cross_downstream, task_group
from tradewind.errors import DagDefinitionError, TaskNotFound
from tradewind.operators.bash import BashOperator
from tradewind.operators.empty import EmptyOperator
from tradewind.operators.python import PythonOperator
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.mapped import MappedOperator, select_combination


def empty(task_id: str, **kwargs: object) -> EmptyOperator:
    return EmptyOperator(task_id=task_id, **kwargs)


def bash(task_id: str, **kwargs: object) -> BashOperator:
    return BashOperator(task_id=task_id, bash_command="true", **kwargs)


def edges(dag: DAG) -> dict[str, list[str]]:
    return {task_id: sorted(t.downstream_task_ids) for task_id, t in dag.task_dict.items()}


def ids(tasks: list[BaseOperator]) -> list[str]:
    return [t.task_id for t in tasks]


# --- the DAG and its tasks ------------------------------------------------------------


def test_tasks_created_inside_with_dag_belong_to_it() -> None:
    with DAG("etl") as dag:
        extract = empty("extract")
        load = empty("load")

    assert dag.task_ids == ["extract", "load"]
    assert dag.tasks == [extract, load]
    assert extract.dag is dag
    assert dag.get_task("load") is load
    assert dag.has_task("extract")
    assert not dag.has_task("transform")


def test_get_task_of_unknown_id_raises_task_not_found() -> None:
    with DAG("etl") as dag:
        empty("extract")

    with pytest.raises(TaskNotFound, match="'transform'"):
        dag.get_task("transform")


def test_dag_argument_attaches_a_task_without_a_with_block() -> None:
    dag = DAG("explicit")
    task = empty("t", dag=dag)

    assert dag.task_dict == {"t": task}


def test_dag_defaults_follow_airflow() -> None:
    dag = DAG("defaults")

    assert dag.schedule.summary == "None"
    assert dag.start_date is None
    assert dag.catchup is False
    assert dag.max_active_runs == 16
    assert dag.max_active_tasks == 16
    assert dag.dag_display_name == "defaults"
    assert dag.params == {}


def test_dag_options_are_kept() -> None:
    dag = DAG(
        "options",
        description="nightly",
        schedule="0 2 * * *",
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        tags=["b", "a", "b"],
        max_active_runs=2,
        dagrun_timeout=timedelta(hours=1),
        template_searchpath="/opt/sql",
    )

    assert dag.description == "nightly"
    assert dag.schedule.summary == "0 2 * * *"
    assert dag.start_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert dag.tags == ["a", "b"]
    assert dag.max_active_runs == 2
    assert dag.dagrun_timeout == timedelta(hours=1)
    assert dag.template_searchpath == ["/opt/sql"]


def test_start_date_can_come_from_default_args() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with DAG("d", schedule="@daily", default_args={"start_date": start}) as dag:
        task = bash("t")

    assert dag.start_date == start
    assert task.start_date == start


# --- >> and << ------------------------------------------------------------------------


def test_rshift_and_lshift_between_tasks() -> None:
    with DAG("d") as dag:
        a, b, c = empty("a"), empty("b"), empty("c")
        result = a >> b
        c << b

    assert result is b
    assert edges(dag) == {"a": ["b"], "b": ["c"], "c": []}
    assert b.upstream_task_ids == {"a"}
    assert ids(c.upstream_list) == ["b"]
    assert ids(a.downstream_list) == ["b"]


def test_shift_chains_left_to_right() -> None:
    with DAG("d") as dag:
        a, b, c = empty("a"), empty("b"), empty("c")
        a >> b >> c

    assert edges(dag) == {"a": ["b"], "b": ["c"], "c": []}


def test_shift_with_lists_on_either_side() -> None:
    with DAG("d") as dag:
        a, b, c, d, e = (empty(x) for x in "abcde")
        fan_out = a >> [b, c]
        fan_in = [b, c] >> d
        [e] << d

    assert fan_out == [b, c]
    assert fan_in is d
    assert edges(dag) == {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["e"], "e": []}


def test_set_upstream_and_set_downstream() -> None:
    with DAG("d") as dag:
        a, b, c = empty("a"), empty("b"), empty("c")
        b.set_upstream(a)
        b.set_downstream([c])

    assert edges(dag) == {"a": ["b"], "b": ["c"], "c": []}


def test_linking_the_same_edge_twice_keeps_one_edge() -> None:
    with DAG("d") as dag:
        a, b = empty("a"), empty("b")
        a >> b
        a >> b

    assert edges(dag) == {"a": ["b"], "b": []}


# --- task groups ----------------------------------------------------------------------


def test_task_ids_inside_a_group_are_prefixed() -> None:
    with DAG("d") as dag, TaskGroup("extract") as group:
        task = empty("orders")

    assert task.task_id == "extract.orders"
    assert task.label == "orders"
    assert task.task_group is group
    assert dag.task_ids == ["extract.orders"]
    assert group.group_id == "extract"


def test_nested_groups_prefix_every_level() -> None:
    with DAG("d") as dag:
        with TaskGroup("outer") as outer, TaskGroup("inner") as inner:
            deep = empty("t")
        shallow = empty("t", task_group=outer)

    assert inner.group_id == "outer.inner"
    assert inner.label == "inner"
    assert deep.task_id == "outer.inner.t"
    assert shallow.task_id == "outer.t"
    assert sorted(dag.task_ids) == ["outer.inner.t", "outer.t"]


def test_group_without_prefix_keeps_plain_task_ids() -> None:
    with DAG("d") as dag, TaskGroup("loose", prefix_group_id=False):
        empty("t")

    assert dag.task_ids == ["t"]


def test_task_into_group_attaches_to_the_group_roots() -> None:
    with DAG("d") as dag:
        start = empty("start")
        with TaskGroup("g") as group:
            first, second = empty("first"), empty("second")
            third = empty("third")
            first >> third
        start >> group

    assert ids(group.roots) == ["g.first", "g.second"]
    assert ids(group.leaves) == ["g.second", "g.third"]
    assert edges(dag)["start"] == ["g.first", "g.second"]
    assert second.upstream_task_ids == {"start"}
    assert third.upstream_task_ids == {"g.first"}


def test_group_into_task_leaves_from_the_group_leaves() -> None:
    with DAG("d") as dag:
        with TaskGroup("g") as group:
            first, second = empty("first"), empty("second")
            first >> second
        end = empty("end")
        group >> end

    assert end.upstream_task_ids == {"g.second"}
    assert edges(dag)["g.first"] == ["g.second"]


def test_group_to_group_links_leaves_to_roots() -> None:
    with DAG("d") as dag:
        with TaskGroup("g1") as g1:
            p, q, r = empty("p"), empty("q"), empty("r")
            p >> [q, r]
        with TaskGroup("g2") as g2:
            s, u = empty("s"), empty("u")
            s >> u
        g1 >> g2

    assert edges(dag) == {
        "g1.p": ["g1.q", "g1.r"],
        "g1.q": ["g2.s"],
        "g1.r": ["g2.s"],
        "g2.s": ["g2.u"],
        "g2.u": [],
    }


def test_group_default_args_override_the_dags() -> None:
    with DAG("d", default_args={"retries": 1, "queue": "dag_queue", "owner": "data"}):
        with TaskGroup("g", default_args={"retries": 2}):
            with TaskGroup("h", default_args={"queue": "inner_queue"}):
                deep = bash("deep")
            in_group = bash("in_group")
            explicit = bash("explicit", retries=7)
        outside = bash("outside")

    assert (deep.retries, deep.queue, deep.owner) == (2, "inner_queue", "data")
    assert (in_group.retries, in_group.queue) == (2, "dag_queue")
    assert explicit.retries == 7
    assert (outside.retries, outside.queue) == (1, "dag_queue")


def test_task_group_decorator_builds_a_group_per_call() -> None:
    with DAG("d") as dag:

        @task_group
        def clean():
            empty("dedupe") >> empty("validate")

        start = empty("start")
        first = clean()
        second = clean()
        start >> first

    assert isinstance(first, TaskGroup)
    assert (first.group_id, second.group_id) == ("clean", "clean__1")
    assert dag.task_ids == [
        "start",
        "clean.dedupe",
        "clean.validate",
        "clean__1.dedupe",
        "clean__1.validate",
    ]
    assert edges(dag)["start"] == ["clean.dedupe"]


def test_task_group_dump_describes_the_tree() -> None:
    with DAG("d") as dag:
        with TaskGroup("g", tooltip="the g group"):
            empty("t")
        empty("top")

    tree = dag.task_group.dump()

    assert tree["group_id"] is None
    assert tree["children"] == [
        {
            "group_id": "g",
            "tooltip": "the g group",
            "ui_color": "CornflowerBlue",
            "children": ["g.t"],
        },
        "top",
    ]


# --- chain and cross_downstream -------------------------------------------------------


def test_chain_links_in_order() -> None:
    with DAG("d") as dag:
        a, b, c = empty("a"), empty("b"), empty("c")
        chain(a, b, c)

    assert edges(dag) == {"a": ["b"], "b": ["c"], "c": []}


def test_chain_fans_out_and_in_around_a_list() -> None:
    with DAG("d") as dag:
        a, b, c, d = (empty(x) for x in "abcd")
        chain(a, [b, c], d)

    assert edges(dag) == {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}


def test_chain_pairs_up_adjacent_lists_of_equal_length() -> None:
    with DAG("d") as dag:
        a, b, c, x, y = (empty(t) for t in "abcxy")
        chain(a, [b, c], [x, y])

    assert edges(dag) == {"a": ["b", "c"], "b": ["x"], "c": ["y"], "x": [], "y": []}


def test_chain_rejects_adjacent_lists_of_different_lengths() -> None:
    with DAG("d") as dag:
        a, b, c = empty("a"), empty("b"), empty("c")
        with pytest.raises(DagDefinitionError, match=r"different lengths \(2 and 1\)"):
            chain([a, b], [c])

    assert edges(dag) == {"a": [], "b": [], "c": []}


def test_chain_accepts_task_groups() -> None:
    with DAG("d") as dag:
        start = empty("start")
        with TaskGroup("g") as group:
            empty("x") >> empty("y")
        end = empty("end")
        chain(start, group, end)

    assert edges(dag) == {"start": ["g.x"], "g.x": ["g.y"], "g.y": ["end"], "end": []}


def test_cross_downstream_links_every_pair() -> None:
    with DAG("d") as dag:
        a, b, c, d = (empty(x) for x in "abcd")
        cross_downstream([a, b], [c, d])

    assert edges(dag) == {"a": ["c", "d"], "b": ["c", "d"], "c": [], "d": []}


# --- the shape of the graph -----------------------------------------------------------


@pytest.fixture
def diamond() -> DAG:
    """a >> [b, c] >> d, plus an unconnected e defined before d."""
    with DAG("diamond") as dag:
        a, b, c = empty("a"), empty("b"), empty("c")
        e = empty("e")
        d = empty("d")
        a >> [b, c] >> d
    assert e.dag is dag
    return dag


def test_roots_and_leaves(diamond: DAG) -> None:
    assert ids(diamond.roots) == ["a", "e"]
    assert ids(diamond.leaves) == ["e", "d"]


def test_topological_sort_puts_upstream_first_and_keeps_definition_order(diamond: DAG) -> None:
    assert ids(diamond.topological_sort()) == ["a", "b", "c", "e", "d"]


def test_get_flat_relative_ids_is_transitive(diamond: DAG) -> None:
    assert diamond.get_flat_relative_ids("a") == {"b", "c", "d"}
    assert diamond.get_flat_relative_ids("d", upstream=True) == {"a", "b", "c"}
    assert diamond.get_flat_relative_ids("b", upstream=True) == {"a"}
    assert diamond.get_flat_relative_ids("e") == set()


def test_validate_accepts_an_acyclic_dag(diamond: DAG) -> None:
    diamond.validate()


# --- default_args ---------------------------------------------------------------------


def test_default_args_apply_to_operator_arguments() -> None:
    args = {"owner": "data-eng", "retries": 3, "retry_delay": timedelta(minutes=1)}
    with DAG("d", default_args=args):
        task = bash("t")

    assert task.owner == "data-eng"
    assert task.retries == 3
    assert task.retry_delay == timedelta(minutes=1)


def test_explicit_arguments_win_over_default_args() -> None:
    with DAG("d", default_args={"retries": 3, "queue": "slow"}):
        task = bash("t", retries=0)

    assert task.retries == 0
    assert task.queue == "slow"


def test_unknown_default_args_are_ignored() -> None:
    with DAG("d", default_args={"retries": 2, "not_an_argument": 1, "sql": "select 1"}):
        task = bash("t")

    assert task.retries == 2
    assert not hasattr(task, "not_an_argument")


def test_default_args_apply_to_subclass_arguments() -> None:
    with DAG("d", default_args={"bash_command": "echo from defaults", "append_env": True}):
        task = BashOperator(task_id="t")
        other = BashOperator(task_id="other", bash_command="echo mine")

    assert task.bash_command == "echo from defaults"
    assert task.append_env is True
    assert other.bash_command == "echo mine"


def test_operator_default_args_win_over_the_dags() -> None:
    with DAG("d", default_args={"retries": 1, "owner": "dag"}):
        task = bash("t", default_args={"retries": 5})

    assert task.retries == 5
    assert task.owner == "dag"


def test_params_in_default_args_merge_with_task_params() -> None:
    with DAG("d", default_args={"params": {"region": "eu", "limit": 10}}):
        task = bash("t", params={"limit": 50, "dry_run": True})
        plain = bash("plain")

    assert dict(task.params) == {"region": "eu", "limit": 50, "dry_run": True}
    assert dict(plain.params) == {"region": "eu", "limit": 10}


def test_default_args_of_the_dag_are_not_shared_with_its_caller() -> None:
    args = {"retries": 1}
    dag = DAG("d", default_args=args)
    args["retries"] = 9

    assert dag.default_args == {"retries": 1}


# --- operator options -----------------------------------------------------------------


def test_operator_defaults_follow_airflow() -> None:
    with DAG("d"):
        task = bash("t")

    assert task.owner == "airflow"
    assert task.retries == 0
    assert task.retry_delay == timedelta(seconds=300)
    assert task.retry_exponential_backoff == 0.0
    assert task.max_retry_delay is None
    assert task.pool == "default_pool"
    assert task.pool_slots == 1
    assert task.queue == "default"
    assert task.priority_weight == 1
    assert task.weight_rule == "downstream"
    assert task.trigger_rule is TriggerRule.ALL_SUCCESS
    assert task.depends_on_past is False
    assert task.do_xcom_push is True
    assert task.execution_timeout is None
    assert task.email == []
    assert task.on_failure_callback == []
    assert not task.has_callbacks


def test_retry_delay_and_timeouts_given_in_seconds() -> None:
    with DAG("d"):
        task = bash("t", retry_delay=30, execution_timeout=600, max_retry_delay=3600.0)

    assert task.retry_delay == timedelta(seconds=30)
    assert task.execution_timeout == timedelta(minutes=10)
    assert task.max_retry_delay == timedelta(hours=1)


@pytest.mark.parametrize(("given", "expected"), [(True, 2.0), (False, 0.0), (3, 3.0)])
def test_retry_exponential_backoff(given: object, expected: float) -> None:
    with DAG("d"):
        task = bash("t", retry_exponential_backoff=given)

    assert task.retry_exponential_backoff == expected


def test_callbacks_are_normalised_to_lists() -> None:
    def notify(context: dict[str, object]) -> None:
        pass

    def page(context: dict[str, object]) -> None:
        pass

    with DAG("d"):
        task = bash("t", on_failure_callback=notify, on_retry_callback=[notify, page])

    assert task.on_failure_callback == [notify]
    assert task.on_retry_callback == [notify, page]
    assert task.on_success_callback == []
    assert task.has_callbacks


def test_trigger_rule_accepts_strings_and_enum_members() -> None:
    with DAG("d"):
        by_name = bash("by_name", trigger_rule="none_failed_min_one_success")
        by_enum = bash("by_enum", trigger_rule=TriggerRule.ALL_DONE)

    assert by_name.trigger_rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    assert by_enum.trigger_rule is TriggerRule.ALL_DONE


def test_other_operator_options() -> None:
    with DAG("d", start_date=datetime(2024, 1, 1, tzinfo=UTC)):
        task = empty(
            "t",
            email="ops@example.com",
            pool="warehouse",
            pool_slots=2,
            priority_weight=10,
            weight_rule="absolute",
            wait_for_downstream=True,
            task_display_name="Load tables",
            doc_md="Loads the tables.",
        )

    assert task.email == ["ops@example.com"]
    assert (task.pool, task.pool_slots) == ("warehouse", 2)
    assert (task.priority_weight, task.weight_rule) == (10, "absolute")
    assert task.depends_on_past is True  # implied by wait_for_downstream, as in Airflow
    assert task.task_display_name == "Load tables"
    assert task.doc_md == "Loads the tables."
    assert task.start_date == datetime(2024, 1, 1, tzinfo=UTC)


def test_operator_names() -> None:
    with DAG("d"):
        task = bash("t")

    assert task.operator_name == "BashOperator"
    assert task.task_type == "BashOperator"
    assert task.output.operator is task
    assert task.output.key == "return_value"


def test_xcom_arg_in_a_templated_field_makes_its_task_upstream() -> None:
    with DAG("d") as dag:
        source = bash("source")
        consumer = PythonOperator(
            task_id="consumer", python_callable=print, op_kwargs={"value": source.output}
        )

    assert consumer.upstream_task_ids == {"source"}
    assert edges(dag)["source"] == ["consumer"]


# --- mapping classic operators --------------------------------------------------------


def test_partial_expand_creates_one_mapped_task() -> None:
    with DAG("d") as dag:
        mapped = PythonOperator.partial(task_id="square", python_callable=lambda x: x * x).expand(
            op_args=[[1], [2], [3]]
        )

    assert isinstance(mapped, MappedOperator)
    assert mapped.is_mapped
    assert dag.task_dict == {"square": mapped}
    assert mapped.operator_name == "PythonOperator"
    assert mapped.task_type == "PythonOperator"
    assert mapped.expand_sources() == {"op_args": {"length": 3}}


def test_expand_over_an_upstream_output_records_the_xcom_and_the_dependency() -> None:
    with DAG("d") as dag:
        files = bash("list_files")
        load = BashOperator.partial(task_id="load", bash_command="load $FILE").expand(
            env=files.output
        )

    assert load.upstream_task_ids == {"list_files"}
    assert edges(dag)["list_files"] == ["load"]
    assert load.expand_sources() == {
        "env": {"xcom": {"task_id": "list_files", "key": "return_value"}}
    }


def test_default_args_apply_to_mapped_tasks() -> None:
    with DAG("d", default_args={"retries": 4, "bash_command": "echo default"}):
        mapped = BashOperator.partial(task_id="m", retry_delay=10).expand(
            env=[{"A": "1"}, {"A": "2"}]
        )

    assert mapped.retries == 4
    assert mapped.retry_delay == timedelta(seconds=10)
    assert mapped.partial_kwargs == {"bash_command": "echo default"}


def test_unmap_builds_the_concrete_operator_of_one_index() -> None:
    with DAG("d", default_args={"retries": 2}) as dag:
        mapped = PythonOperator.partial(task_id="m", python_callable=lambda x: x * 10).expand(
            op_args=[[1], [2]]
        )

    concrete = mapped.unmap({}, 1)

    assert type(concrete) is PythonOperator
    assert concrete.task_id == "m"
    assert concrete.op_args == [2]
    assert concrete.retries == 2
    assert concrete.execute({}) == 20
    assert dag.task_dict == {"m": mapped}  # unmapping adds no task


def test_select_combination_varies_the_last_argument_fastest() -> None:
    resolved = {"a": [1, 2], "b": ["x", "y", "z"]}

    combos = [select_combination(resolved, i) for i in range(6)]

    assert combos == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 2, "b": "z"},
    ]


@pytest.mark.parametrize("map_index", [-1, 6])
def test_select_combination_outside_the_range_raises_index_error(map_index: int) -> None:
    with pytest.raises(IndexError, match=str(map_index)):
        select_combination({"a": [1, 2], "b": ["x", "y", "z"]}, map_index)
