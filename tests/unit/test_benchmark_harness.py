"""The scheduler benchmark's check that no try ran twice (its DAG's no-op task records
each execution, and the harness counts them per task instance), and its calibration of
how much a try's log files cost the file system."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks.scheduler import (
    DAG_SOURCE,
    executions_file,
    fork_ms,
    log_files_ms,
    tries_run_twice,
)


def record(work: Path, *tries: tuple[str, str, int]) -> None:
    """Run the benchmark DAG's own no-op callable once per try."""
    source = DAG_SOURCE.format(
        dag_id="shape", n=2, kind="wide", executions=str(executions_file(work))
    )
    namespace: dict[str, object] = {}
    exec(compile(source, "shape.py", "exec"), namespace)
    for run_id, task_id, try_number in tries:
        ti = SimpleNamespace(run_id=run_id, task_id=task_id, try_number=try_number)
        namespace["noop"](ti)  # type: ignore[operator]


def test_each_task_instance_that_ran_once_counts_as_no_duplicate(tmp_path: Path) -> None:
    record(tmp_path, ("bench_0", "t0", 1), ("bench_0", "t1", 1), ("bench_1", "t0", 1))
    assert tries_run_twice(tmp_path, tasks=3) == 0


def test_a_task_instance_that_ran_twice_is_counted_whatever_its_try_numbers(
    tmp_path: Path,
) -> None:
    record(
        tmp_path,
        ("bench_0", "t0", 1),
        ("bench_0", "t0", 1),  # a second delivery of the same try
        ("bench_0", "t1", 1),
        ("bench_0", "t1", 2),  # a retry of a no-op that had succeeded is just as wrong
    )
    assert tries_run_twice(tmp_path, tasks=2) == 2


def test_a_task_instance_that_never_ran_is_an_error(tmp_path: Path) -> None:
    record(tmp_path, ("bench_0", "t0", 1))
    with pytest.raises(RuntimeError, match="1 of 2 task instances"):
        tries_run_twice(tmp_path, tasks=2)
    with pytest.raises(RuntimeError, match="0 of 2 task instances"):
        tries_run_twice(tmp_path / "nothing", tasks=2)


def test_the_log_file_calibration_leaves_what_it_made(tmp_path: Path) -> None:
    # Removing them would slow down the files created next (see its docstring).
    assert log_files_ms(tmp_path, count=3) >= 0
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.log"))
    assert made == [f"task_id=t{i}/attempt=1.log" for i in range(3)]


def test_the_fork_calibration_gives_a_positive_figure() -> None:
    assert fork_ms(megabytes=1, forks=2) >= 0
