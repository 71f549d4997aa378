"""What the UI reads that the API has no route for: the last runs of many DAGs at once,
counts for banners and filters, and the states of a grid. Each is one query."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from tradewind.models import DagRun, DagTag, DagVersion, ParseImportError, TaskInstance
from webserver.api.common import json_array_agg


def recent_runs(session: Session, dag_ids: Sequence[str], per_dag: int) -> dict[str, list[Any]]:
    """The latest ``per_dag`` runs of each DAG, oldest first (the squares of a DAG row)."""
    if not dag_ids:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=DagRun.dag_id, order_by=(DagRun.run_after.desc(), DagRun.id.desc()))
        .label("rank")
    )
    ranked = (
        select(
            DagRun.dag_id,
            DagRun.run_id,
            DagRun.state,
            DagRun.run_type,
            DagRun.run_after,
            DagRun.start_date,
            DagRun.end_date,
            rank,
        )
        .where(DagRun.dag_id.in_(dag_ids))
        .subquery()
    )
    rows = session.execute(
        select(ranked).where(ranked.c.rank <= per_dag).order_by(ranked.c.dag_id, ranked.c.rank)
    ).all()
    runs: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        runs[row.dag_id].insert(0, row)
    return runs


def import_error_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ParseImportError)) or 0)


def tag_names(session: Session) -> list[str]:
    return list(session.scalars(select(DagTag.name).distinct().order_by(DagTag.name)))


def latest_serialized(session: Session, dag_id: str) -> DagVersion | None:
    return session.scalar(
        select(DagVersion)
        .where(DagVersion.dag_id == dag_id)
        .order_by(DagVersion.version_number.desc())
        .limit(1)
    )


def grid_states(
    session: Session, dag_id: str, run_ids: Sequence[str]
) -> dict[tuple[str, str], dict[str, int]]:
    """Per (task, run): how many of its instances are in each state. A task that is not
    mapped has one; a mapped task's cell summarises its map indexes.

    The counts come back as one row per task (its cells packed into a JSON array of
    ``run<TAB>state<TAB>count`` strings): a 2,000-task grid is then 2,000 rows to read
    instead of 50,000, which is most of the grid's time."""
    if not run_ids:
        return {}
    counted = (
        select(
            TaskInstance.task_id,
            TaskInstance.run_id,
            func.coalesce(TaskInstance.state, "no_status").label("state"),
            func.count().label("n"),
        )
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(run_ids))
        .group_by(TaskInstance.task_id, TaskInstance.run_id, TaskInstance.state)
        .subquery()
    )
    packed = counted.c.run_id + "\t" + counted.c.state + "\t" + cast(counted.c.n, String)
    rows = session.connection().execute(
        select(counted.c.task_id, json_array_agg(packed)).group_by(counted.c.task_id)
    )
    cells: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for task_id, items in rows:
        for item in items or ():
            run_id, state, count = item.split("\t")
            cells[(task_id, run_id)][state] = int(count)
    return cells
