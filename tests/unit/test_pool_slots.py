"""Free pool slots, running counts and the DAGs' ``max_active_tasks``, from the one
grouped query a scheduler pass reads (`scheduler.queueing._slots_and_limits`; each row
ends with its DAG's limit, None for a DAG no longer known): table-driven, no database."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.queueing import _slots_and_limits

POOLS = [("default_pool", 8, False), ("narrow", 2, True), ("endless", -1, False)]


@pytest.mark.parametrize(
    ("held", "free", "per_dag", "per_task", "limits"),
    [
        pytest.param(
            [], {"default_pool": 8, "narrow": 2, "endless": 1 << 30}, {}, {}, {}, id="idle"
        ),
        pytest.param(
            [
                ("default_pool", "queued", "a", "t1", 1, 2, 16),
                ("default_pool", "running", "a", "t2", 3, 1, 16),
                ("default_pool", "running", "b", "t1", 1, 1, 4),
            ],
            {"default_pool": 3, "narrow": 2, "endless": 1 << 30},
            {"a": 3, "b": 1},
            {("a", "t1"): 2, ("a", "t2"): 1, ("b", "t1"): 1},
            {"a": 16, "b": 4},
            id="queued-and-running-hold-their-slots",
        ),
        pytest.param(
            [
                ("default_pool", "deferred", "a", "t1", 4, 4, 16),
                ("narrow", "deferred", "a", "t2", 1, 1, 16),
            ],
            {"default_pool": 8, "narrow": 1, "endless": 1 << 30},
            {},
            {},
            {"a": 16},
            id="deferred-hold-slots-only-where-the-pool-says-so-and-do-not-count-as-running",
        ),
        pytest.param(
            [("gone", "running", "a", "t1", 1, 1, 16), ("endless", "running", "a", "t1", 5, 5, 16)],
            {"default_pool": 8, "narrow": 2, "endless": (1 << 30) - 5},
            {"a": 6},
            {("a", "t1"): 6},
            {"a": 16},
            id="an-unknown-pool-frees-nothing-and-an-endless-one-stays-open",
        ),
        pytest.param(
            [("default_pool", "running", "a", "t1", None, 1, None)],
            {"default_pool": 8, "narrow": 2, "endless": 1 << 30},
            {"a": 1},
            {("a", "t1"): 1},
            {},
            id="no-slots-summed-counts-as-none-and-an-unknown-dag-has-no-limit",
        ),
    ],
)
def test_slots_and_limits(
    held: list[Any],
    free: dict[str, int],
    per_dag: dict[str, int],
    per_task: dict[tuple[str, str], int],
    limits: dict[str, int],
) -> None:
    pools, dags, tasks, max_tasks = _slots_and_limits(POOLS, held)
    assert pools == free
    assert dict(dags) == per_dag
    assert dict(tasks) == per_task
    assert max_tasks == limits
