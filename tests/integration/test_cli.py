"""The `tradewind` command line: listings, inspection, exit codes and error messages."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tradewind.cli.main import main
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

DAG_FILE = """
from datetime import datetime
from tradewind import DAG, Param
from tradewind.operators.bash import BashOperator
from tradewind.operators.empty import EmptyOperator

with DAG("nightly", schedule="30 2 * * *", start_date=datetime(2024, 1, 1), tags=["ml"],
         params={"epochs": Param(3, type="integer")}, catchup=True):
    EmptyOperator(task_id="start") >> BashOperator(task_id="train", bash_command="echo {{ ds }}")
"""


@pytest.fixture
def folder(dags_folder: Path, settings: Settings) -> Path:
    (dags_folder / "nightly.py").write_text(textwrap.dedent(DAG_FILE))
    return dags_folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_dags_list_in_every_format(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dags", "list")
    assert code == 0
    assert "nightly" in out
    assert "30 2 * * *" in out
    code, out, _ = run(capsys, "dags", "list", "-o", "json")
    assert json.loads(out)[0]["dag_id"] == "nightly"
    code, out, _ = run(capsys, "dags", "list", "-o", "yaml")
    assert "dag_id: nightly" in out


def test_import_errors_are_listed_with_file_and_line(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "broken.py").write_text("from tradewind import DAG\n\nDAG('x', retries=1)\n")
    code, out, err = run(capsys, "dags", "list")
    assert code == 0
    assert "1 DAG file(s) failed to load" in err
    code, out, _ = run(capsys, "dags", "list-import-errors", "-o", "json")
    assert code == 1
    [error] = json.loads(out)
    assert (error["filepath"], error["line"]) == ("broken.py", 3)
    assert "unknown argument 'retries'" in error["error"]


def test_details_next_execution_and_tasks(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dags", "details", "nightly", "-o", "json")
    assert code == 0
    details = json.loads(out)[0]
    assert (details["catchup"], details["params"]) == (True, {"epochs": 3})
    code, out, _ = run(capsys, "dags", "next-execution", "nightly", "-n", "2")
    assert code == 0
    assert out.split() == ["2024-01-01T02:30:00+00:00", "2024-01-02T02:30:00+00:00"]
    code, out, _ = run(capsys, "tasks", "list", "nightly")
    assert code == 0
    assert out.split() == ["start", "train"]
    code, out, _ = run(capsys, "tasks", "render", "nightly", "train", "2024-05-06")
    assert code == 0
    assert "echo 2024-05-06" in out
    code, out, _ = run(capsys, "dags", "show", "nightly")
    assert code == 0
    assert "<Task(EmptyOperator): start>\n    <Task(BashOperator): train>" in out


def test_runs_and_task_states_after_a_test_run(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "dags", "test", "nightly", "2024-02-03")
    assert code == 0
    assert "success" in out
    code, out, _ = run(capsys, "dags", "list-runs", "nightly", "-o", "json")
    [listed] = json.loads(out)
    assert listed["state"] == "success"
    code, out, _ = run(capsys, "dags", "state", "nightly", "2024-02-03")
    assert out.strip() == "success"
    code, out, _ = run(
        capsys, "tasks", "states-for-dag-run", "nightly", listed["run_id"], "-o", "json"
    )
    assert {row["task_id"]: row["state"] for row in json.loads(out)} == {
        "start": "success",
        "train": "success",
    }
    code, out, err = run(capsys, "dags", "state", "nightly", "1999-01-01")
    assert code == 1
    assert "has no run" in err


def test_tasks_test_runs_one_task(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tasks", "test", "nightly", "train", "2024-02-03")
    assert code == 0
    assert "echo 2024-02-03" not in out  # the command is run, its output logged
    assert "2024-02-03" in out
    code, out, err = run(capsys, "tasks", "test", "nightly", "nope")
    assert code == 1
    assert "task 'nope' not found" in err


def test_bad_arguments_give_one_line_errors(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "dags", "test", "nightly", "yesterday")
    assert (code, err.strip()) == (
        1,
        "error: logical date 'yesterday' is not an ISO date or datetime",
    )
    code, _, err = run(capsys, "dags", "test", "nightly", "--conf", "[1]")
    assert code == 1
    assert "must be a JSON object" in err


def test_bad_config_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADEWIND_PARALLELISM", "lots")
    code, _, err = run(capsys, "config", "list")
    assert code == 1
    assert "TRADEWIND_PARALLELISM='lots'" in err
    monkeypatch.setenv("TRADEWIND_PARALLELISM", "4")
    monkeypatch.setenv("TRADEWIND_EXECUTOR", "kubernetes")
    code, _, err = run(capsys, "config", "list")
    assert "TRADEWIND_EXECUTOR='kubernetes'" in err


def test_unreachable_database_names_the_masked_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADEWIND_DATABASE_URL", "postgresql://bob:s3cret@127.0.0.1:1/nowhere")
    code, _, err = run(capsys, "db", "check")
    assert code == 1
    assert "postgresql+psycopg://bob:***@127.0.0.1:1/nowhere" in err
    assert "s3cret" not in err
    monkeypatch.setenv("TRADEWIND_DATABASE_URL", "mysql://x@127.0.0.1/db")
    code, _, err = run(capsys, "db", "check")
    assert "unsupported database 'mysql'" in err


def test_db_commands(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "db", "check")[0] == 0
    assert run(capsys, "db", "reset", "--yes")[0] == 0
    code, out, _ = run(capsys, "db", "migrate")
    assert code == 0
    assert "is at revision" in out
