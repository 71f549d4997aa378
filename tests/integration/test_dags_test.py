"""`dags test` runs a whole DAG in one process through the real task runner, recording
every state in the database (SQLite and Postgres)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.dag_test import run_dag_test
from tradewind.errors import DagNotFound, ParamValidationError, TradewindError
from tradewind.models import DagRun, LogChunk, TaskInstance, TaskInstanceHistory, XCom
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

HEADER = """
from datetime import datetime, timedelta
from pathlib import Path
from tradewind import DAG, Param, TaskGroup, task, chain
from tradewind.errors import TaskFail, TaskSkip
from tradewind.operators.bash import BashOperator
from tradewind.operators.empty import EmptyOperator
from tradewind.operators.python import BranchPythonOperator, PythonOperator, ShortCircuitOperator

SIDE = Path({side!r})

def mark(name):
    with SIDE.open("a") as f:
        f.write(name + "\\n")
"""

DATE = datetime(2024, 1, 2, tzinfo=UTC)


@pytest.fixture
def side_file(tmp_path: Path) -> Path:
    return tmp_path / "side_effects.txt"


def write_dag(folder: Path, side: Path, name: str, body: str) -> None:
    source = HEADER.format(side=str(side)) + textwrap.dedent(body)
    (folder / f"{name}.py").write_text(source)


def states(factory: sessionmaker[Session], dag_id: str) -> dict[str, Any]:
    with factory() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id))
        result: dict[str, Any] = {}
        for r in rows:
            key = r.task_id if r.map_index < 0 else f"{r.task_id}[{r.map_index}]"
            result[key] = r.state
        return result


def xcom_value(
    factory: sessionmaker[Session], dag_id: str, task_id: str, key: str = "return_value"
) -> Any:
    with factory() as session:
        return session.scalar(
            select(XCom.value).where(
                XCom.dag_id == dag_id, XCom.task_id == task_id, XCom.key == key
            )
        )


def test_taskflow_xcom_mapping_and_groups(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "flow",
        """
    with DAG("flow", start_date=datetime(2024, 1, 1), schedule="@daily"):
        @task
        def extract():
            return [1, 2, 3]

        @task
        def square(x, offset):
            return x * x + offset

        @task
        def total(values):
            return sum(values)

        @task(multiple_outputs=True)
        def stats(values):
            return {"n": len(values), "max": max(values)}

        with TaskGroup("report") as report:
            @task
            def fmt(t, n):
                return f"{n} values, total {t}"
            squares = square.partial(offset=1).expand(x=extract())
            s = stats(squares)
            fmt(total(squares), s["n"])
        literal = square.override(task_id="literal").partial(offset=0).expand(x=[5, 6])
    """,
    )
    result = run_dag_test(session_factory, settings, "flow", logical_date=DATE, echo=None)
    assert str(result.state) == "success"
    got = states(session_factory, "flow")
    assert got["report.square[0]"] == got["report.square[2]"] == got["literal[1]"] == "success"
    assert xcom_value(session_factory, "flow", "report.total") == 2 + 5 + 10
    assert xcom_value(session_factory, "flow", "report.stats", "n") == 3
    assert xcom_value(session_factory, "flow", "report.fmt") == "3 values, total 17"


def test_branching_skips_and_trigger_rules(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "branchy",
        """
    with DAG("branchy"):
        pick = BranchPythonOperator(task_id="pick", python_callable=lambda: "left")
        left = EmptyOperator(task_id="left")
        right = EmptyOperator(task_id="right")
        after_right = EmptyOperator(task_id="after_right")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        pick >> [left, right]
        right >> after_right
        [left, after_right] >> join
        gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: False)
        gated = EmptyOperator(task_id="gated")
        cleanup = EmptyOperator(task_id="cleanup", trigger_rule="all_done")
        gate >> gated >> cleanup
        soft = ShortCircuitOperator(task_id="soft", python_callable=lambda: 0,
                                    ignore_downstream_trigger_rules=False)
        soft_next = EmptyOperator(task_id="soft_next")
        soft_always = EmptyOperator(task_id="soft_always", trigger_rule="all_done")
        soft >> soft_next >> soft_always
    """,
    )
    result = run_dag_test(session_factory, settings, "branchy", logical_date=DATE, echo=None)
    got = states(session_factory, "branchy")
    assert str(result.state) == "success"
    assert got["left"] == "success"
    assert got["right"] == got["after_right"] == "skipped"
    assert got["join"] == "success"
    assert got["gated"] == got["cleanup"] == "skipped"  # ignore_downstream_trigger_rules
    assert got["soft_next"] == "skipped"
    assert got["soft_always"] == "success"  # its own rule decides


def test_failure_retries_callbacks_and_upstream_failed(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "flaky",
        """
    def flaky(ti):
        mark(f"try{ti.try_number}")
        if ti.try_number < 3:
            raise RuntimeError("not yet")
        return "ok"

    def always_fails():
        raise TaskFail("give up now")

    with DAG("flaky", default_args={"retry_delay": timedelta(seconds=0.2)}):
        f = PythonOperator(task_id="flaky", python_callable=flaky, retries=3,
                           on_retry_callback=lambda ctx: mark("retry-callback"),
                           on_success_callback=lambda ctx: mark("success-callback"))
        def on_failure(ctx):
            mark("failure:" + str(ctx["exception"]))

        bad = PythonOperator(task_id="bad", python_callable=always_fails, retries=5,
                             on_failure_callback=on_failure)
        after = EmptyOperator(task_id="after")
        tidy = EmptyOperator(task_id="tidy", trigger_rule="one_failed")
        bad >> [after, tidy]
    """,
    )
    result = run_dag_test(session_factory, settings, "flaky", logical_date=DATE, echo=None)
    got = states(session_factory, "flaky")
    assert str(result.state) == "failed"  # the `after` leaf is upstream_failed
    assert got == {
        "flaky": "success",
        "bad": "failed",
        "after": "upstream_failed",
        "tidy": "success",
    }
    lines = side_file.read_text().splitlines()
    assert [line for line in lines if line.startswith("try")] == ["try1", "try2", "try3"]
    assert lines.count("retry-callback") == 2
    assert lines.count("success-callback") == 1
    assert "failure:give up now" in lines
    with session_factory() as session:
        tries = session.scalars(
            select(TaskInstanceHistory.try_number).where(TaskInstanceHistory.task_id == "flaky")
        )
        assert sorted(tries) == [1, 2]


def test_execution_timeout_fails_the_try(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "slow",
        """
    with DAG("slow"):
        BashOperator(task_id="sleepy", bash_command="sleep 30",
                     execution_timeout=timedelta(seconds=0.5))
    """,
    )
    result = run_dag_test(session_factory, settings, "slow", logical_date=DATE, echo=None)
    assert str(result.state) == "failed"
    with session_factory() as session:
        log = "".join(session.scalars(select(LogChunk.content).where(LogChunk.dag_id == "slow")))
    assert "execution_timeout" in log


def test_params_are_validated_and_rendered(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "params",
        """
    with DAG("params", params={"epochs": Param(3, type="integer", minimum=1)}):
        BashOperator(task_id="echo", bash_command="echo epochs={{ params.epochs }} day={{ ds }}")
    """,
    )
    with pytest.raises(ParamValidationError, match="'epochs'"):
        run_dag_test(
            session_factory, settings, "params", logical_date=DATE, conf={"epochs": 0}, echo=None
        )
    result = run_dag_test(
        session_factory, settings, "params", logical_date=DATE, conf={"epochs": 7}, echo=None
    )
    assert str(result.state) == "success"
    assert xcom_value(session_factory, "params", "echo") == "epochs=7 day=2024-01-02"


def test_logs_and_the_run_are_recorded(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "loud",
        """
    with DAG("loud"):
        @task
        def talk():
            print("hello from print")
            import logging
            logging.getLogger("user").info("hello from logging")
        talk()
    """,
    )
    run_dag_test(session_factory, settings, "loud", logical_date=DATE, echo=None)
    with session_factory() as session:
        log = "".join(session.scalars(select(LogChunk.content).where(LogChunk.dag_id == "loud")))
        run = session.scalar(select(DagRun).where(DagRun.dag_id == "loud"))
    assert "hello from print" in log
    assert "hello from logging" in log
    assert run is not None
    assert (run.state, run.run_type, run.triggered_by) == ("success", "manual", "test")
    assert run.logical_date == DATE


def test_unknown_dag_and_broken_dag_give_one_line_reasons(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with pytest.raises(DagNotFound, match="'nope' not found in"):
        run_dag_test(session_factory, settings, "nope", echo=None)
    (dags_folder / "broken.py").write_text(
        "from tradewind import DAG\nDAG('broken', schedule='@daily')\n"
    )
    with pytest.raises(DagNotFound, match=r"broken.py:2: DagDefinitionError"):
        run_dag_test(session_factory, settings, "broken", echo=None)


def test_retesting_the_same_date_replaces_the_test_run(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "again",
        """
    with DAG("again"):
        EmptyOperator(task_id="a")
    """,
    )
    run_dag_test(session_factory, settings, "again", logical_date=DATE, echo=None)
    run_dag_test(session_factory, settings, "again", logical_date=DATE, echo=None)
    with session_factory() as session:
        assert len(list(session.scalars(select(DagRun).where(DagRun.dag_id == "again")))) == 1


def run_cli(*args: str, env_settings: Settings) -> subprocess.CompletedProcess[str]:
    import os

    env = {
        **os.environ,
        "TRADEWIND_DATABASE_URL": env_settings.resolved_database_url,
        "TRADEWIND_DAGS_FOLDER": str(env_settings.resolved_dags_folder),
    }
    return subprocess.run(
        [sys.executable, "-m", "tradewind.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_exit_codes_and_output(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "cli_ok",
        """
    with DAG("cli_ok", params={"n": Param(1, type="integer")}):
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    """,
    )
    write_dag(
        dags_folder,
        side_file,
        "cli_bad",
        """
    with DAG("cli_bad"):
        BashOperator(task_id="boom", bash_command="exit 3")
    """,
    )
    ok = run_cli("dags", "test", "cli_ok", "2024-01-02", "-o", "json", env_settings=settings)
    assert ok.returncode == 0, ok.stderr
    table = json.loads(ok.stdout[ok.stdout.index("[") : ok.stdout.rindex("]") + 1])
    assert {row["task_id"]: row["state"] for row in table} == {"a": "success", "b": "success"}
    bad = run_cli("dags", "test", "cli_bad", "2024-01-02", env_settings=settings)
    assert bad.returncode == 1
    assert "non-zero exit code 3" in bad.stdout
    conf = run_cli("dags", "test", "cli_ok", "--conf", '{"n": "x"}', env_settings=settings)
    assert conf.returncode == 1
    assert conf.stderr.strip().splitlines()[-1].startswith("error: param 'n'")
    missing = run_cli("dags", "test", "no_such_dag", env_settings=settings)
    assert missing.returncode == 1
    assert "error: DAG 'no_such_dag' not found" in missing.stderr


def test_tradewind_error_is_the_base(settings: Settings) -> None:
    assert issubclass(DagNotFound, TradewindError)


def test_unstorable_return_values_fail_the_task_clearly(
    dags_folder: Path,
    side_file: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "values",
        """
    with DAG("values"):
        @task
        def a_set():
            return {1, 2}

        @task
        def too_big():
            return "x" * 5000

        @task
        def templated():
            return None

        a_set()
        too_big()
        BashOperator(task_id="uses_var", bash_command="echo {{ var.value.region }}")
        BashOperator(task_id="undefined", bash_command="echo {{ no_such_name }}")
    """,
    )
    monkeypatch.setenv("TRADEWIND_VAR_REGION", "eu-west")
    monkeypatch.setenv("TRADEWIND_XCOM_MAX_SIZE_BYTES", "1000")
    from tradewind.settings import get_settings

    result = run_dag_test(session_factory, get_settings(), "values", logical_date=DATE, echo=None)
    got = states(session_factory, "values")
    assert (got["a_set"], got["too_big"], got["undefined"]) == ("failed", "failed", "failed")
    assert str(result.state) == "failed"
    assert xcom_value(session_factory, "values", "uses_var") == "eu-west"
    with session_factory() as session:
        log = "".join(session.scalars(select(LogChunk.content).where(LogChunk.dag_id == "values")))
    assert "not JSON-serialisable" in log
    assert "more than the limit of 1000" in log
    assert "'no_such_name' is undefined" in log


def test_depends_on_past_and_previous_success_context(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "history",
        """
    import os

    def work(ds, **context):
        prev = [context[f"prev_{name}_success"] for name in
                ("data_interval_start", "data_interval_end", "start_date", "end_date")]
        mark(f"{ds} prev=" + ",".join("-" if v is None else v.isoformat() for v in prev))
        if os.environ.get("HISTORY_FAIL") == ds:
            raise RuntimeError("bad day")

    with DAG("history"):
        PythonOperator(task_id="work", python_callable=work, depends_on_past=True)
    """,
    )
    import os

    first = run_dag_test(session_factory, settings, "history", logical_date=DATE, echo=None)
    assert str(first.state) == "success"
    os.environ["HISTORY_FAIL"] = "2024-01-03"
    try:
        second = run_dag_test(
            session_factory,
            settings,
            "history",
            logical_date=datetime(2024, 1, 3, tzinfo=UTC),
            echo=None,
        )
    finally:
        del os.environ["HISTORY_FAIL"]
    assert str(second.state) == "failed"
    third = run_dag_test(
        session_factory,
        settings,
        "history",
        logical_date=datetime(2024, 1, 4, tzinfo=UTC),
        echo=None,
    )
    assert str(third.state) == "failed"  # blocked by the failed 01-03: it ends, never hangs
    with session_factory() as session:
        note = session.scalar(select(DagRun.note).where(DagRun.run_id == third.run_id))
    assert "depends_on_past" in (note or "")
    with session_factory() as session:
        before = session.execute(
            select(
                DagRun.data_interval_start,
                DagRun.data_interval_end,
                DagRun.start_date,
                DagRun.end_date,
            ).where(DagRun.run_id == first.run_id)
        ).one()
    # The run of 01-03 sees the successful run of 01-02 as its previous success (read
    # with the try's claim); the first run has none.
    assert side_file.read_text().splitlines() == [
        "2024-01-02 prev=-,-,-,-",
        "2024-01-03 prev=" + ",".join(v.isoformat() for v in before),
    ]


def test_none_is_a_storable_xcom_value(
    dags_folder: Path, side_file: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write_dag(
        dags_folder,
        side_file,
        "nones",
        """
    from typing import Any

    with DAG("nones"):
        PythonOperator(task_id="push_none", python_callable=lambda ti: ti.xcom_push("k", None))

        @task
        def report() -> dict[str, Any]:
            return {"version": None, "deployed": False}

        @task
        def read(values):
            mark(repr(values))

        read(report()["version"])
    """,
    )
    result = run_dag_test(session_factory, settings, "nones", logical_date=DATE, echo=None)
    assert str(result.state) == "success"
    assert side_file.read_text().splitlines() == ["None"]
    with session_factory() as session:
        keys = set(session.scalars(select(XCom.key).where(XCom.dag_id == "nones")))
    assert {"k", "version", "deployed"} <= keys
