"""What the UI reads that the API has no route for: the last runs of many DAGs at once,
counts for banners and filters, and the states of a grid. Each is one query."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tradewind.models import DagRun, DagTag, DagVersion, ParseImportError, TaskInstance


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
    mapped has one; a mapped task's cell summarises its map indexes."""
    if not run_ids:
        return {}
    rows = session.execute(
        select(
            TaskInstance.task_id,
            TaskInstance.run_id,
            TaskInstance.state,
            func.count(),
        )
        .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(run_ids))
        .group_by(TaskInstance.task_id, TaskInstance.run_id, TaskInstance.state)
    ).all()
    cells: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for task_id, run_id, state, count in rows:
        cells[(task_id, run_id)][state or "no_status"] = count
    return cells
