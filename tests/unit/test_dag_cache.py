"""`worker.dag_cache.DagFileCache.prime`: a fork server loads each DAG file once, and
again only when it changes on disk; a file that fails is left for the child."""

from __future__ import annotations

import os
from pathlib import Path

from worker.dag_cache import DagFileCache

SOURCE = """
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator

with DAG("{dag_id}"):
    EmptyOperator(task_id="only")
"""


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_prime_loads_a_file_once_and_again_only_after_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "cached.py"
    write(path, SOURCE.format(dag_id="first"), 1_000_000_000)
    cache = DagFileCache()
    cache.prime(str(path))
    assert cache.generation == 1
    cache.prime(str(path))
    cache.prime(str(path))
    assert cache.generation == 1  # unchanged: nothing loaded again
    write(path, SOURCE.format(dag_id="second"), 2_000_000_000)
    cache.prime(str(path))
    assert cache.generation == 2
    assert [dag.dag_id for dag in cache.load(str(path)).dags] == ["second"]


def test_prime_leaves_out_a_broken_file_and_tries_it_again(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    write(path, "raise RuntimeError('not today')\n", 1_000_000_000)
    cache = DagFileCache()
    cache.prime(str(path))
    cache.prime(str(path))
    assert cache.generation == 2  # each call loaded it: a child would report the error
    write(path, SOURCE.format(dag_id="fixed"), 2_000_000_000)
    cache.prime(str(path))
    assert [dag.dag_id for dag in cache.load(str(path)).dags] == ["fixed"]
    assert cache.generation == 3


def test_prime_of_a_missing_file_does_not_raise(tmp_path: Path) -> None:
    DagFileCache().prime(str(tmp_path / "gone.py"))
