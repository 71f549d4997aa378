"""TaskFlow (`@task`, `@dag`) and the Python, Bash, branch and short-circuit operators it
builds on, as a DAG author sees them: at definition time and when a task executes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tradewind import DAG, TaskGroup, XComArg, dag, task
from tradewind.errors import TaskSkip, TradewindError
from tradewind.operators.bash import BashOperator
from tradewind.operators.empty import EmptyOperator
from tradewind.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from tradewind.sdk.callables import call_with_context
from tradewind.sdk.mapped import MappedOperator


class FakeTaskInstance:
    """The slice of the runtime task instance that operators talk to."""

    def __init__(self, task_id: str = "t", try_number: int = 1) -> None:
        self.task_id = task_id
        self.try_number = try_number
        self.skip_calls: list[list[str]] = []

    def skip(self, task_ids: Iterable[str]) -> None:
        self.skip_calls.append(list(task_ids))


# --- @task ----------------------------------------------------------------------------


def test_calling_a_task_adds_it_and_returns_its_output() -> None:
    with DAG("d") as the_dag:

        @task
        def extract() -> list[int]:
            return [1, 2, 3]

        output = extract()

    assert isinstance(output, XComArg)
    assert output.key == "return_value"
    assert the_dag.task_ids == ["extract"]
    operator = output.operator
    assert isinstance(operator, PythonOperator)
    assert operator.operator_name == "@task"
    assert operator.execute({}) == [1, 2, 3]


def test_passing_an_output_makes_the_producer_upstream() -> None:
    with DAG("d") as the_dag:

        @task
        def extract() -> int:
            return 1

        @task
        def load(value: int) -> int:
            return value

        load(extract())

    assert the_dag.get_task("load").upstream_task_ids == {"extract"}


def test_outputs_nested_in_lists_and_dicts_become_dependencies() -> None:
    with DAG("d") as the_dag:

        @task
        def source() -> int:
            return 1

        @task
        def combine(values: list[Any], options: dict[str, Any], pair: tuple[Any, ...]) -> None:
            pass

        a, b, c = source(), source(), source()
        combine([a], options={"nested": {"deep": b}}, pair=(c,))

    assert the_dag.get_task("combine").upstream_task_ids == {"source", "source__1", "source__2"}


def test_task_arguments_are_passed_when_it_runs() -> None:
    with DAG("d"):

        @task
        def greet(name: str, punctuation: str = ".") -> str:
            return f"hello {name}{punctuation}"

        output = greet("ada", punctuation="!")

    assert output.operator.execute({}) == "hello ada!"


def test_reusing_a_task_function_gives_unique_ids() -> None:
    with DAG("d") as the_dag:

        @task
        def f() -> None:
            pass

        f()
        f()
        f()
        with TaskGroup("g"):
            f()
            f()

    assert the_dag.task_ids == ["f", "f__1", "f__2", "g.f", "g.f__1"]


def test_override_replaces_options_for_one_call() -> None:
    with DAG("d") as the_dag:

        @task(retries=1)
        def fit() -> None:
            pass

        custom = fit.override(task_id="fit_smb", retries=5)()
        plain = fit()

    assert the_dag.task_ids == ["fit_smb", "fit"]
    assert custom.operator.retries == 5
    assert plain.operator.retries == 1


def test_task_options_and_default_args_apply() -> None:
    with DAG("d", default_args={"retries": 3, "owner": "ml", "queue": "gpu"}):

        @task(queue="cpu")
        def train() -> None:
            pass

        operator = train().operator

    assert (operator.retries, operator.owner, operator.queue) == (3, "ml", "cpu")


def test_docstring_becomes_doc_md() -> None:
    with DAG("d"):

        @task
        def documented() -> None:
            """Loads the data.

            More detail.
            """

        operator = documented().operator

    assert operator.doc_md == "Loads the data.\n\nMore detail."


def test_multiple_outputs_is_inferred_from_a_mapping_return_annotation() -> None:
    with DAG("d"):

        @task
        def stats() -> dict[str, int]:
            return {"rows": 1}

        @task
        def rows() -> list[int]:
            return [1]

        @task(multiple_outputs=False)
        def raw() -> dict[str, int]:
            return {}

        @task(multiple_outputs=True)
        def unannotated():
            return {}

        stats_out, rows_out, raw_out, free_out = stats(), rows(), raw(), unannotated()

    assert stats_out.operator.multiple_outputs is True
    assert rows_out.operator.multiple_outputs is False
    assert raw_out.operator.multiple_outputs is False
    assert free_out.operator.multiple_outputs is True
    assert stats_out["rows"].key == "rows"
    assert stats_out["rows"].operator is stats_out.operator


def test_an_output_cannot_be_iterated_in_the_dag_file() -> None:
    with DAG("d"):

        @task
        def files() -> list[str]:
            return []

        output = files()

    with pytest.raises(TypeError, match="only known when the DAG runs"):
        list(output)


def test_output_shift_sets_dependencies() -> None:
    with DAG("d") as the_dag:

        @task
        def first() -> None:
            pass

        after = EmptyOperator(task_id="after")
        first() >> after

    assert after.upstream_task_ids == {"first"}
    assert the_dag.get_task("first").downstream_task_ids == {"after"}


def test_task_called_with_a_lambda_and_task_id() -> None:
    with DAG("d") as the_dag:
        double = task(lambda x: x * 2, task_id="double")
        output = double(21)

    assert the_dag.task_ids == ["double"]
    assert output.operator.execute({}) == 42


@pytest.mark.parametrize(
    ("decorator", "base", "name"),
    [
        (task.branch, BranchPythonOperator, "@task.branch"),
        (task.short_circuit, ShortCircuitOperator, "@task.short_circuit"),
        (task.bash, BashOperator, "@task.bash"),
        (task.python, PythonOperator, "@task"),
    ],
)
def test_task_variants_create_the_matching_operator(decorator: Any, base: type, name: str) -> None:
    with DAG("d"):

        @decorator
        def step() -> str:
            return "echo hi"

        operator = step().operator

    assert isinstance(operator, base)
    assert operator.operator_name == name


def test_task_bash_runs_the_returned_command_rendered(tmp_path: Path) -> None:
    with DAG("d") as the_dag:

        @task.bash
        def say(word: str) -> str:
            return f"echo {word} {{{{ ds }}}}"

        operator = say("hello").operator

    context = {"ti": FakeTaskInstance(), "dag": the_dag, "run_id": "r", "ds": "2024-01-02"}
    assert operator.execute(context) == "hello 2024-01-02"


# --- @dag -----------------------------------------------------------------------------


def test_dag_decorator_builds_a_dag_when_called() -> None:
    @dag(schedule=None, tags=["example"])
    def nightly_pipeline():
        """Extract then load."""

        @task
        def extract() -> int:
            return 1

        @task
        def load(value: int) -> None:
            pass

        load(extract())

    built = nightly_pipeline()

    assert isinstance(built, DAG)
    assert built.dag_id == "nightly_pipeline"
    assert built.doc_md == "Extract then load."
    assert built.tags == ["example"]
    assert built.task_ids == ["extract", "load"]
    assert built.get_task("load").upstream_task_ids == {"extract"}
    assert built.fileloc == __file__


def test_dag_decorator_without_parentheses_and_with_an_explicit_id() -> None:
    @dag
    def bare():
        EmptyOperator(task_id="only")

    @dag("explicit_id")
    def named():
        EmptyOperator(task_id="only")

    assert bare().dag_id == "bare"
    assert bare().task_ids == ["only"]
    assert named().dag_id == "explicit_id"


# --- mapping with TaskFlow ------------------------------------------------------------


def test_partial_expand_maps_over_a_literal_list() -> None:
    with DAG("d") as the_dag:

        @task
        def add(x: int, y: int) -> int:
            return x + y

        output = add.partial(y=10).expand(x=[1, 2, 3])

    mapped = output.operator
    assert isinstance(mapped, MappedOperator)
    assert the_dag.task_dict == {"add": mapped}
    assert mapped.operator_name == "@task"
    assert mapped.expand_sources() == {"x": {"length": 3}}
    assert [mapped.unmap({}, i).execute({}) for i in range(3)] == [11, 12, 13]


def test_expand_over_another_tasks_output_depends_on_it() -> None:
    with DAG("d") as the_dag:

        @task
        def files() -> list[str]:
            return ["a", "b"]

        @task
        def load(path: str) -> None:
            pass

        load.expand(path=files())

    mapped = the_dag.get_task("load")
    assert mapped.upstream_task_ids == {"files"}
    assert mapped.expand_sources() == {
        "path": {"xcom": {"task_id": "files", "key": "return_value"}}
    }


def test_partial_argument_from_an_output_depends_on_it() -> None:
    with DAG("d") as the_dag:

        @task
        def config() -> dict[str, str]:
            return {}

        @task
        def run(item: int, settings: dict[str, str]) -> None:
            pass

        run.partial(settings=config()).expand(item=[1, 2])

    assert the_dag.get_task("run").upstream_task_ids == {"config"}


def test_expand_over_several_arguments_maps_the_cross_product() -> None:
    with DAG("d"):

        @task
        def pair(a: int, b: str) -> str:
            return f"{a}{b}"

        mapped = pair.expand(a=[1, 2], b=["x", "y"]).operator

    assert mapped.expand_sources() == {"a": {"length": 2}, "b": {"length": 2}}
    assert [mapped.unmap({}, i).execute({}) for i in range(4)] == ["1x", "1y", "2x", "2y"]


# --- call_with_context ----------------------------------------------------------------


def test_call_with_context_passes_the_entries_named_by_parameters() -> None:
    def callable_(table: str, ds: str, ti: object = None) -> tuple[str, str, object]:
        return table, ds, ti

    context = {"ds": "2024-01-01", "ti": "TI", "run_id": "r"}

    assert call_with_context(callable_, context, ["orders"]) == ("orders", "2024-01-01", "TI")


def test_call_with_context_keeps_explicit_arguments() -> None:
    def callable_(ds: str) -> str:
        return ds

    context = {"ds": "2024-01-01"}

    assert call_with_context(callable_, context, kwargs={"ds": "mine"}) == "mine"
    assert call_with_context(callable_, context, ["positional"]) == "positional"


def test_call_with_context_gives_everything_to_var_keyword() -> None:
    def callable_(table: str, **context: Any) -> tuple[str, list[str]]:
        return table, sorted(context)

    context = {"ds": "2024-01-01", "ti": "TI"}

    result = call_with_context(callable_, context, ["orders"], {"limit": 5})

    assert result == ("orders", ["ds", "limit", "ti"])


def test_python_operator_injects_context_into_its_callable() -> None:
    def report(segment: str, ds: str, params: dict[str, Any]) -> str:
        return f"{segment} {ds} {params['n']}"

    with DAG("d"):
        operator = PythonOperator(
            task_id="report", python_callable=report, op_kwargs={"segment": "smb"}
        )

    assert operator.execute({"ds": "2024-01-01", "params": {"n": 3}}) == "smb 2024-01-01 3"


def test_python_operator_templates_dict_reaches_the_callable() -> None:
    def use(templates_dict: dict[str, str]) -> str:
        return templates_dict["table"]

    with DAG("d"):
        operator = PythonOperator(
            task_id="use", python_callable=use, templates_dict={"table": "orders"}
        )

    assert operator.execute({}) == "orders"


# --- BashOperator.execute -------------------------------------------------------------


def bash_context(the_dag: DAG) -> dict[str, Any]:
    return {
        "ti": FakeTaskInstance("b", try_number=2),
        "run_id": "manual__2024",
        "ts": "2024-01-01T00:00:00+00:00",
        "dag": the_dag,
    }


def run_bash(**kwargs: Any) -> Any:
    with DAG("bash_dag") as the_dag:
        operator = BashOperator(task_id="b", **kwargs)
    return operator.execute(bash_context(the_dag))


def test_bash_returns_the_last_line_of_output() -> None:
    assert run_bash(bash_command="echo first; echo last") == "last"


def test_bash_output_processor_transforms_the_last_line() -> None:
    assert run_bash(bash_command="echo hi", output_processor=str.upper) == "HI"


def test_bash_non_zero_exit_fails_the_task() -> None:
    with pytest.raises(TradewindError, match="non-zero exit code 3"):
        run_bash(bash_command="exit 3")


def test_bash_exit_99_skips_the_task() -> None:
    with pytest.raises(TaskSkip):
        run_bash(bash_command="exit 99")


def test_bash_skip_exit_codes_can_be_changed() -> None:
    with pytest.raises(TaskSkip):
        run_bash(bash_command="exit 5", skip_on_exit_code=[5, 6])
    with pytest.raises(TradewindError, match="exit code 99") as info:
        run_bash(bash_command="exit 99", skip_on_exit_code=None)
    assert not isinstance(info.value, TaskSkip)


def test_bash_env_replaces_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_TEST_OUTER", "outer")

    output = run_bash(bash_command='echo "${TW_TEST_OUTER:-unset}|$FOO"', env={"FOO": "bar"})

    assert output == "unset|bar"


def test_bash_append_env_adds_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_TEST_OUTER", "outer")

    output = run_bash(
        bash_command='echo "${TW_TEST_OUTER:-unset}|$FOO"', env={"FOO": "bar"}, append_env=True
    )

    assert output == "outer|bar"


def test_bash_without_env_inherits_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_TEST_OUTER", "outer")

    assert run_bash(bash_command='echo "$TW_TEST_OUTER"') == "outer"


def test_bash_exports_the_identifiers_of_the_try() -> None:
    output = run_bash(
        bash_command=(
            'echo "$TRADEWIND_CTX_DAG_ID $TRADEWIND_CTX_TASK_ID $TRADEWIND_CTX_RUN_ID '
            '$TRADEWIND_CTX_TRY_NUMBER $TRADEWIND_CTX_LOGICAL_DATE"'
        ),
        env={},
    )

    assert output == "bash_dag b manual__2024 2 2024-01-01T00:00:00+00:00"


def test_bash_runs_in_cwd(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("x")

    assert run_bash(bash_command="ls", cwd=str(tmp_path)) == "marker.txt"


def test_bash_cwd_that_is_not_a_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(TradewindError, match="not a directory"):
        run_bash(bash_command="pwd", cwd=str(tmp_path / "missing"))


# --- branching ------------------------------------------------------------------------


@pytest.fixture
def branch_dag() -> DAG:
    """branch >> [a, b, group(g1 >> g3, g2)]"""
    with DAG("branching") as the_dag:
        branch = BranchPythonOperator(
            task_id="branch", python_callable=lambda choice: choice, op_args=[None]
        )
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        with TaskGroup("group") as group:
            g1 = EmptyOperator(task_id="g1")
            EmptyOperator(task_id="g2")
            g1 >> EmptyOperator(task_id="g3")
        branch >> [a, b, group]
    return the_dag


def run_branch(the_dag: DAG, choice: object) -> tuple[object, list[list[str]]]:
    branch = the_dag.get_task("branch")
    branch.op_args = [choice]
    ti = FakeTaskInstance("branch")
    result = branch.execute({"ti": ti})
    return result, ti.skip_calls


@pytest.mark.parametrize(
    ("choice", "skipped"),
    [
        ("a", ["b", "group.g1", "group.g2"]),
        (["a", "b"], ["group.g1", "group.g2"]),
        ("group", ["a", "b"]),
        (None, ["a", "b", "group.g1", "group.g2"]),
        ([], ["a", "b", "group.g1", "group.g2"]),
    ],
)
def test_branch_skips_the_direct_downstream_tasks_not_chosen(
    branch_dag: DAG, choice: object, skipped: list[str]
) -> None:
    result, skip_calls = run_branch(branch_dag, choice)

    assert result == choice
    assert skip_calls == [skipped]


@pytest.mark.parametrize("choice", ["nope", ["a", "nope"]])
def test_branch_to_an_unknown_id_fails(branch_dag: DAG, choice: object) -> None:
    with pytest.raises(TradewindError, match="'nope'"):
        run_branch(branch_dag, choice)


def test_task_branch_decorator_follows_the_returned_id() -> None:
    with DAG("d") as the_dag:

        @task.branch
        def pick() -> str:
            return "left"

        chosen = pick()
        chosen >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]

    ti = FakeTaskInstance("pick")
    assert the_dag.get_task("pick").execute({"ti": ti}) == "left"
    assert ti.skip_calls == [["right"]]


# --- short-circuiting -----------------------------------------------------------------


def short_circuit_dag(value: object, **kwargs: Any) -> DAG:
    """check >> x >> y >> z, and check >> w."""
    with DAG("short") as the_dag:
        check = ShortCircuitOperator(
            task_id="check", python_callable=lambda v: v, op_args=[value], **kwargs
        )
        x, y, z = (EmptyOperator(task_id=t) for t in "xyz")
        check >> x >> y >> z
        check >> EmptyOperator(task_id="w")
    return the_dag


def run_check(the_dag: DAG) -> tuple[object, list[list[str]]]:
    ti = FakeTaskInstance("check")
    return the_dag.get_task("check").execute({"ti": ti}), ti.skip_calls


def test_short_circuit_truthy_lets_downstream_run() -> None:
    result, skip_calls = run_check(short_circuit_dag("go"))

    assert result == "go"
    assert skip_calls == []


@pytest.mark.parametrize("falsy", [False, 0, "", None, []])
def test_short_circuit_falsy_skips_everything_downstream(falsy: object) -> None:
    _, skip_calls = run_check(short_circuit_dag(falsy))

    assert skip_calls == [["w", "x", "y", "z"]]


def test_short_circuit_respecting_trigger_rules_skips_only_direct_downstream() -> None:
    the_dag = short_circuit_dag(False, ignore_downstream_trigger_rules=False)

    _, skip_calls = run_check(the_dag)

    assert skip_calls == [["w", "x"]]


def test_task_short_circuit_decorator() -> None:
    with DAG("d") as the_dag:

        @task.short_circuit
        def gate() -> bool:
            return False

        gate() >> EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")

    ti = FakeTaskInstance("gate")
    the_dag.get_task("gate").execute({"ti": ti})

    assert ti.skip_calls == [["a", "b"]]
