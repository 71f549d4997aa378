"""Changing DAGs as users do (data functions: the caller commits)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.orm import Session

from tradewind.models import DagModel


def set_paused(session: Session, dag_ids: Sequence[str], paused: bool) -> int:
    """Pause or unpause; unpausing clears the cached next run so it is recomputed."""
    values: dict[str, object] = {"is_paused": paused}
    if not paused:
        values["next_dagrun_run_after"] = None
    result = session.execute(update(DagModel).where(DagModel.dag_id.in_(dag_ids)).values(**values))
    return int(result.rowcount)  # type: ignore[attr-defined]


__all__ = ["set_paused"]
