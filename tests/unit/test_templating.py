"""Jinja rendering of templated fields, as a task sees it right before it executes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tradewind import DAG
from tradewind.errors import TemplateRenderError
from tradewind.operators.bash import BashOperator
from tradewind.operators.python import PythonOperator
from tradewind.sdk import macros
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.context import base_context, date_context
from tradewind.sdk.templating import make_environment, render_fields, render_value

LOGICAL_DATE = datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC)


def context_for(task: BaseOperator, **params: Any) -> dict[str, Any]:
    """The context the task runner builds for one try, with stand-ins for the DB rows."""
    return base_context(
        dag=task.dag,
        task=task,
        ti=SimpleNamespace(task_id=task.task_id, try_number=1, map_index=-1),
        dag_run=SimpleNamespace(run_id="scheduled__2024-03-05T06:07:08+00:00"),
        params=params,
        logical_date=LOGICAL_DATE,
        data_interval_start=LOGICAL_DATE - timedelta(days=1),
        data_interval_end=LOGICAL_DATE,
    )


def render(task: BaseOperator, **params: Any) -> dict[str, Any]:
    return render_fields(task, context_for(task, **params))


# --- the context --------------------------------------------------------------------


def test_date_context_has_airflows_date_strings() -> None:
    assert date_context(LOGICAL_DATE) == {
        "logical_date": LOGICAL_DATE,
        "ds": "2024-03-05",
        "ds_nodash": "20240305",
        "ts": "2024-03-05T06:07:08+00:00",
        "ts_nodash": "20240305T060708",
        "ts_nodash_with_tz": "20240305T060708+0000",
    }


def test_date_context_without_a_logical_date_is_empty() -> None:
    assert date_context(None) == {}


# --- rendering fields ---------------------------------------------------------------


def test_bash_command_env_and_cwd_are_rendered() -> None:
    with DAG("d"):
        task = BashOperator(
            task_id="export",
            bash_command="export --date {{ ds }} --at {{ ts_nodash }} --run {{ run_id }}",
            env={"DAY": "{{ ds_nodash }}", "PLAIN": "unchanged"},
            cwd="/data/{{ dag.dag_id }}",
        )

    rendered = render(task)

    expected_command = (
        "export --date 2024-03-05 --at 20240305T060708 --run scheduled__2024-03-05T06:07:08+00:00"
    )
    assert rendered == {
        "bash_command": expected_command,
        "env": {"DAY": "20240305", "PLAIN": "unchanged"},
        "cwd": "/data/d",
    }
    assert task.bash_command == expected_command  # rendered in place
    assert task.env == {"DAY": "20240305", "PLAIN": "unchanged"}


def test_params_task_and_data_interval_are_available() -> None:
    with DAG("d"):
        task = BashOperator(
            task_id="t",
            bash_command=(
                "{{ params.limit }} {{ task.task_id }} {{ ti.try_number }} "
                "{{ data_interval_start | ds }} {{ task_instance_key_str }}"
            ),
        )

    assert render(task, limit=10)["bash_command"] == "10 t 1 2024-03-04 d__t__20240305"


def test_nested_values_of_python_operator_fields_are_rendered() -> None:
    with DAG("d"):
        task = PythonOperator(
            task_id="t",
            python_callable=print,
            op_args=["{{ ds }}", 7, ["{{ ds_nodash }}"]],
            op_kwargs={"window": {"start": "{{ data_interval_start | ts }}"}, "n": 3},
            templates_dict={"query": "select {{ params.n }}"},
        )

    rendered = render(task, n=5)

    assert rendered == {
        "templates_dict": {"query": "select 5"},
        "op_args": ["2024-03-05", 7, ["20240305"]],
        "op_kwargs": {"window": {"start": "2024-03-04T06:07:08+00:00"}, "n": 3},
    }


def test_strings_without_template_syntax_are_returned_as_is() -> None:
    with DAG("d"):
        task = BashOperator(task_id="t", bash_command="echo '{ not a template }'")

    assert render(task)["bash_command"] == "echo '{ not a template }'"


def test_undefined_name_fails_naming_the_field_and_the_name() -> None:
    with DAG("d"):
        task = BashOperator(task_id="t", bash_command="echo {{ no_such_thing }}")

    with pytest.raises(TemplateRenderError) as info:
        render(task)

    message = str(info.value)
    assert "task 't'" in message
    assert "'bash_command'" in message
    assert "'no_such_thing' is undefined" in message


def test_undefined_attribute_fails_too() -> None:
    with DAG("d"):
        task = BashOperator(task_id="t", bash_command="echo {{ params.missing }}")

    with pytest.raises(TemplateRenderError, match="missing"):
        render(task)


def test_template_syntax_error_is_reported() -> None:
    with DAG("d"):
        task = BashOperator(task_id="t", bash_command="echo {{ ds ")

    with pytest.raises(TemplateRenderError, match=r"'bash_command'.*syntax error"):
        render(task)


def test_render_value_renders_one_value() -> None:
    with DAG("d"):
        task = BashOperator(task_id="t", bash_command="true")

    value = render_value(
        task, {"day": "{{ ds }}", "list": ["{{ ds_nodash }}"]}, date_context(LOGICAL_DATE)
    )

    assert value == {"day": "2024-03-05", "list": ["20240305"]}


# --- template files -----------------------------------------------------------------


def test_template_file_is_found_next_to_the_dag_file(tmp_path: Path) -> None:
    (tmp_path / "export.sh").write_text("export --date {{ ds }}\n")
    with DAG("d") as dag:
        task = BashOperator(task_id="t", bash_command="export.sh")
    dag.fileloc = str(tmp_path / "my_dag.py")

    assert render(task)["bash_command"] == "export --date 2024-03-05\n"


def test_template_file_in_a_subfolder_next_to_the_dag_file(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.bash").write_text("run {{ params.n }}")
    with DAG("d") as dag:
        task = BashOperator(task_id="t", bash_command="scripts/run.bash")
    dag.fileloc = str(tmp_path / "my_dag.py")

    assert render(task, n=2)["bash_command"] == "run 2"


def test_template_file_is_found_on_template_searchpath(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "common.sh").write_text("common {{ ds_nodash }}")
    with DAG("d", template_searchpath=[str(tmp_path / "shared")]):
        task = BashOperator(task_id="t", bash_command="common.sh")

    assert render(task)["bash_command"] == "common 20240305"


def test_missing_template_file_fails_naming_it(tmp_path: Path) -> None:
    with DAG("d") as dag:
        task = BashOperator(task_id="t", bash_command="missing.sh")
    dag.fileloc = str(tmp_path / "my_dag.py")

    with pytest.raises(TemplateRenderError, match=r"'missing\.sh' not found"):
        render(task)


def test_only_strings_ending_in_template_ext_are_files(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("should not be read")
    with DAG("d") as dag:
        task = BashOperator(task_id="t", bash_command="bash run.sh {{ ds }} ")
    dag.fileloc = str(tmp_path / "my_dag.py")

    assert render(task)["bash_command"] == "bash run.sh 2024-03-05 "


# --- macros and filters -------------------------------------------------------------


def test_user_defined_macros_and_filters() -> None:
    with DAG(
        "d",
        user_defined_macros={"project": "tradewind", "greet": lambda name: f"hi {name}"},
        user_defined_filters={"shout": str.upper},
    ):
        task = BashOperator(
            task_id="t", bash_command="{{ project }} {{ greet('ada') }} {{ project | shout }}"
        )

    assert render(task)["bash_command"] == "tradewind hi ada TRADEWIND"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ logical_date | ds }}", "2024-03-05"),
        ("{{ logical_date | ds_nodash }}", "20240305"),
        ("{{ logical_date | ts }}", "2024-03-05T06:07:08+00:00"),
        ("{{ logical_date | ts_nodash }}", "20240305T060708"),
        ("{{ logical_date | ts_nodash_with_tz }}", "20240305T060708+0000"),
    ],
)
def test_date_filters(template: str, expected: str) -> None:
    with DAG("d"):
        task = BashOperator(task_id="t", bash_command=template)

    assert render(task)["bash_command"] == expected


def test_macros_in_templates() -> None:
    with DAG("d"):
        task = BashOperator(
            task_id="t",
            bash_command=(
                "{{ macros.ds_add(ds, 7) }} {{ macros.ds_add(ds, -5) }} "
                "{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }} "
                "{{ (logical_date + macros.timedelta(days=1)) | ds }}"
            ),
        )

    assert render(task)["bash_command"] == "2024-03-12 2024-02-29 05/03/2024 2024-03-06"


def test_ds_add_and_ds_format() -> None:
    assert macros.ds_add("2024-01-01", 5) == "2024-01-06"
    assert macros.ds_add("2024-03-01", -1) == "2024-02-29"
    assert macros.ds_format("2024-01-05", "%Y-%m-%d", "%m-%d-%y") == "01-05-24"


def test_variables_in_templates_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEWIND_VAR_WAREHOUSE", "wh-eu")
    monkeypatch.setenv("TRADEWIND_VAR_LIMITS", '{"rows": 100}')
    with DAG("d"):
        task = BashOperator(
            task_id="t",
            bash_command="{{ var.value.warehouse }} {{ var.json.limits.rows }}",
        )

    assert render(task)["bash_command"] == "wh-eu 100"


# --- native rendering ---------------------------------------------------------------


def test_render_template_as_native_obj_gives_python_values() -> None:
    with DAG("d", render_template_as_native_obj=True):
        task = PythonOperator(
            task_id="t",
            python_callable=print,
            op_args=["{{ [1, 2, params.n] }}"],
            op_kwargs={"count": "{{ params.n + 1 }}", "conf": "{{ {'a': params.n} }}"},
        )

    rendered = render(task, n=3)

    assert rendered["op_args"] == [[1, 2, 3]]
    assert rendered["op_kwargs"] == {"count": 4, "conf": {"a": 3}}


def test_without_native_rendering_values_are_strings() -> None:
    with DAG("d"):
        task = PythonOperator(
            task_id="t", python_callable=print, op_args=["{{ [1, 2, params.n] }}"]
        )

    assert render(task, n=3)["op_args"] == ["[1, 2, 3]"]


def test_environment_is_sandboxed_and_strict() -> None:
    import jinja2
    import jinja2.sandbox

    with DAG("d") as dag:
        pass

    env = make_environment(dag)

    assert isinstance(env, jinja2.sandbox.SandboxedEnvironment)
    assert env.undefined is jinja2.StrictUndefined
    with pytest.raises(jinja2.exceptions.SecurityError):
        env.from_string("{{ ''.__class__.__mro__ }}").render()
