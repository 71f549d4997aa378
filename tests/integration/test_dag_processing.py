"""The DAG file processor against a real database: versions, import errors, staleness."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.dag_processing.processor import DagFileProcessor
from tradewind.models import DagModel, DagVersion, ParseImportError
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

GOOD = """
from datetime import datetime
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator

with DAG("{dag_id}", start_date=datetime(2024, 1, 1), schedule="@daily", tags=["t"]):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""

# name -> (source, expected line of the error, a word the message must contain)
BROKEN = {
    "syntax_error.py": ("from tradewind import DAG\nx = (\n", 2, "SyntaxError"),
    "import_error.py": (
        "from tradewind import DAG\nimport no_such_module_xyz\n",
        2,
        "no_such_module_xyz",
    ),
    "cycle.py": (
        "from datetime import datetime\n"
        "from tradewind import DAG\n"
        "from tradewind.operators.empty import EmptyOperator\n"
        "with DAG('cyc', start_date=datetime(2024, 1, 1)):\n"
        "    a = EmptyOperator(task_id='a')\n"
        "    b = EmptyOperator(task_id='b')\n"
        "    a >> b >> a\n",
        4,
        "a >> b >> a",
    ),
    "duplicate.py": (
        "from tradewind import DAG\n"
        "from tradewind.operators.empty import EmptyOperator\n"
        "with DAG('dup'):\n"
        "    EmptyOperator(task_id='a')\n"
        "    EmptyOperator(task_id='a')\n",
        5,
        "already been added",
    ),
    "unknown_arg.py": (
        "from tradewind import DAG\n"
        "from tradewind.operators.empty import EmptyOperator\n"
        "with DAG('unk'):\n"
        "    EmptyOperator(task_id='a', retires=3)\n",
        4,
        "did you mean 'retries'",
    ),
    "bad_cron.py": (
        "from datetime import datetime\n"
        "from tradewind import DAG\n"
        "with DAG('cron', schedule='61 * * * *', start_date=datetime(2024, 1, 1)):\n"
        "    pass\n",
        3,
        "61 * * * *",
    ),
    "hangs.py": (
        "import time\nfrom tradewind import DAG\nwhile True:\n    time.sleep(0.1)\n",
        4,
        "timeout",
    ),
    "exits.py": ("import os\nfrom tradewind import DAG\nos._exit(3)\n", 3, "os._exit(3)"),
    "sys_exit.py": ("import sys\nfrom tradewind import DAG\nsys.exit(2)\n", 3, "sys.exit"),
}


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def processor(settings: Settings, session_factory: sessionmaker[Session]) -> DagFileProcessor:
    return DagFileProcessor(session_factory, settings)


def errors_by_file(factory: sessionmaker[Session]) -> dict[str, ParseImportError]:
    with factory() as session:
        return {e.filename: e for e in session.scalars(select(ParseImportError))}


def test_good_file_is_stored_with_a_version(
    dags_folder: Path, processor: DagFileProcessor, session_factory: sessionmaker[Session]
) -> None:
    write(dags_folder, "good.py", GOOD.format(dag_id="good"))
    report = processor.process(now=utcnow())
    assert report.new_versions == ["good"]
    with session_factory() as session:
        model = session.get(DagModel, "good")
        assert model is not None
        assert model.is_paused is True  # new DAGs start paused, as in Airflow
        assert model.relative_fileloc == "good.py"
        assert [t.name for t in model.tags] == ["t"]
        assert model.timetable_summary == "0 0 * * *"


def test_unchanged_file_is_not_parsed_again_and_adds_no_version(
    dags_folder: Path, processor: DagFileProcessor, session_factory: sessionmaker[Session]
) -> None:
    write(dags_folder, "good.py", GOOD.format(dag_id="good"))
    processor.process(now=utcnow())
    assert processor.process(now=utcnow()).parsed == []
    forced = processor.process(now=utcnow(), force=True)
    assert len(forced.parsed) == 1
    assert forced.new_versions == []
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(DagVersion)) == 1


def test_a_changed_dag_gets_a_new_version(
    dags_folder: Path, processor: DagFileProcessor, session_factory: sessionmaker[Session]
) -> None:
    path = write(dags_folder, "good.py", GOOD.format(dag_id="good"))
    processor.process(now=utcnow())
    path.write_text(path.read_text() + '    EmptyOperator(task_id="c")\n')
    assert processor.process(now=utcnow()).new_versions == ["good"]
    with session_factory() as session:
        numbers = session.scalars(
            select(DagVersion.version_number).order_by(DagVersion.version_number)
        )
        assert list(numbers) == [1, 2]


def test_each_broken_file_gives_one_error_with_its_line_and_the_rest_still_load(
    dags_folder: Path, processor: DagFileProcessor, session_factory: sessionmaker[Session]
) -> None:
    for name, (source, _, _) in BROKEN.items():
        write(dags_folder, name, source)
    write(dags_folder, "good.py", GOOD.format(dag_id="good"))
    processor.process(now=utcnow())
    errors = errors_by_file(session_factory)
    assert set(errors) == set(BROKEN)
    for name, (_, line, word) in BROKEN.items():
        assert errors[name].lineno == line, (name, errors[name].message)
        assert word in errors[name].message or word in errors[name].stacktrace, name
    with session_factory() as session:
        assert session.get(DagModel, "good") is not None


def test_a_file_printing_megabytes_is_contained(
    dags_folder: Path, processor: DagFileProcessor, session_factory: sessionmaker[Session]
) -> None:
    write(dags_folder, "noisy.py", "print('x' * 5_000_000)\n" + GOOD.format(dag_id="noisy"))
    processor.process(now=utcnow())
    with session_factory() as session:
        assert session.get(DagModel, "noisy") is not None


def test_fixing_a_file_clears_its_error(
    dags_folder: Path, processor: DagFileProcessor, session_factory: sessionmaker[Session]
) -> None:
    path = write(dags_folder, "flaky.py", "from tradewind import DAG\nraise ValueError('boom')\n")
    processor.process(now=utcnow())
    assert errors_by_file(session_factory)["flaky.py"].message == "ValueError: boom"
    path.write_text(GOOD.format(dag_id="flaky"))
    processor.process(now=utcnow())
    assert errors_by_file(session_factory) == {}


def test_removed_file_marks_its_dags_stale(
    dags_folder: Path, processor: DagFileProcessor, session_factory: sessionmaker[Session]
) -> None:
    path = write(dags_folder, "gone.py", GOOD.format(dag_id="gone"))
    processor.process(now=utcnow())
    path.unlink()
    processor.process(now=utcnow())
    with session_factory() as session:
        model = session.get(DagModel, "gone")
        assert model is not None
        assert model.is_stale


def test_a_dag_id_defined_in_two_files_is_an_error_in_the_second(
    dags_folder: Path, processor: DagFileProcessor, session_factory: sessionmaker[Session]
) -> None:
    write(dags_folder, "a_first.py", GOOD.format(dag_id="same"))
    processor.process(now=utcnow())
    write(dags_folder, "b_second.py", GOOD.format(dag_id="same"))
    processor.process(now=utcnow())
    errors = errors_by_file(session_factory)
    assert "already defined in a_first.py" in errors["b_second.py"].message


def test_ignore_file_and_safe_mode(
    dags_folder: Path, processor: DagFileProcessor, session_factory: sessionmaker[Session]
) -> None:
    write(dags_folder, "kept.py", GOOD.format(dag_id="kept"))
    (dags_folder / "vendor").mkdir()
    write(dags_folder / "vendor", "lib.py", GOOD.format(dag_id="vendored"))
    write(dags_folder, "helpers.py", "raise RuntimeError('never imported: no mention of d-a-g')\n")
    write(dags_folder, ".tradewindignore", "vendor/\n# comment\n")
    report = processor.process(now=utcnow())
    assert [Path(p.fileloc).name for p in report.parsed] == ["kept.py"]


def test_a_dag_that_changes_while_its_file_does_not_is_warned_about(
    dags_folder: Path,
    processor: DagFileProcessor,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A definition that depends on the time of parsing (Airflow's classic mistake)
    stores a new version at every parse; the processor says which fields moved."""
    write(
        dags_folder,
        "moving.py",
        """
    from datetime import datetime, timedelta, timezone
    from tradewind import DAG
    from tradewind.operators.empty import EmptyOperator

    with DAG("moving", start_date=datetime.now(timezone.utc) - timedelta(days=1),
             schedule="@daily"):
        EmptyOperator(task_id="a")
    """,
    )
    write(dags_folder, "good.py", GOOD.format(dag_id="good"))
    processor.process(now=utcnow())
    with caplog.at_level("WARNING", logger="scheduler.dag_processing.processor"):
        report = processor.process(now=utcnow(), force=True)
    assert report.new_versions == ["moving"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0].startswith("DAG moving changed although its file did not (start_date")
    assert "datetime.now()" in warnings[0]
