"""Which scheduled task instances to queue now: highest priority first, within the
executor's free slots, each pool's open slots, each DAG's ``max_active_tasks`` and each
task's ``max_active_tis_per_dag``.

On Postgres the candidate rows are locked with ``FOR UPDATE SKIP LOCKED``, so two
schedulers never queue the same instance.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, bindparam, case, func, select
from sqlalchemy.orm import Session

from tradewind.dagversions import serialized_for
from tradewind.models import DagModel, DagRun, Pool, TaskInstance
from tradewind.state import DagRunState, TaskInstanceState

logger = logging.getLogger(__name__)
TI = TaskInstanceState
OCCUPYING = (str(TI.QUEUED), str(TI.RUNNING))
CANDIDATES_PER_SLOT = 4


def pick_for_queue(session: Session, *, slots: int, now: datetime) -> list[TaskInstance]:
    """Scheduled instances that may start now (the caller queues them)."""
    if slots <= 0:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    # On Postgres reading the pools locks them: one scheduler decides at a time, and the
    # counts read next stay true until it commits.
    sizes = session.execute(_pools(lock=postgres)).all()
    pools, per_dag, per_task, max_tasks = _slots_and_limits(sizes, session.execute(_held()))
    full_dags = [d for d, n in per_dag.items() if n >= max_tasks.get(d, 16)]
    open_pools = [name for name, free in pools.items() if free > 0]
    if not open_pools:
        return []
    candidates = list(
        session.scalars(
            _candidates(lock=postgres),
            {
                "limit": slots * CANDIDATES_PER_SLOT,
                "now": now,
                "open_pools": open_pools,
                "full_dags": full_dags,
            },
        )
    )
    if not candidates:
        return []
    picked: list[TaskInstance] = []
    for ti in candidates:
        if len(picked) >= slots:
            break
        if not _fits(session, ti, pools, per_dag, per_task, max_tasks):
            continue
        pools[ti.pool] -= ti.pool_slots
        per_dag[ti.dag_id] += 1
        per_task[(ti.dag_id, ti.task_id)] += 1
        picked.append(ti)
    return picked


# The statements of every pass, built once and run with parameters (building a
# statement costs several times running it).


@functools.cache
def _candidates(*, lock: bool) -> Any:
    """Waiting instances that could fit, at most ``limit``: instances in a pool not
    among ``open_pools`` or of a DAG among ``full_dags`` are left out in the query
    itself, so they cannot crowd out instances that could run. ``lock``: skip and lock
    rows that another scheduler works on (Postgres)."""
    query = (
        select(TaskInstance)
        .join(
            DagRun,
            and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id),
        )
        .join(DagModel, DagModel.dag_id == TaskInstance.dag_id)
        .where(
            (TaskInstance.state == str(TI.SCHEDULED))
            | (
                (TaskInstance.state == str(TI.UP_FOR_RESCHEDULE))
                & (TaskInstance.next_try_at <= bindparam("now"))
            ),
            DagRun.state == str(DagRunState.RUNNING),
            DagModel.is_paused.is_(False),
            TaskInstance.pool.in_(bindparam("open_pools", expanding=True)),
            TaskInstance.dag_id.not_in(bindparam("full_dags", expanding=True)),
        )
        .order_by(
            # A backfill's tasks yield to those of every other run.
            case((DagRun.backfill_id.is_(None), 0), else_=1),
            TaskInstance.priority_weight.desc(),
            TaskInstance.scheduled_dttm,
            TaskInstance.id,
        )
        .limit(bindparam("limit", type_=Integer))
    )
    return query.with_for_update(of=TaskInstance, skip_locked=True) if lock else query


@functools.cache
def _pools(*, lock: bool) -> Any:
    query = select(Pool.pool, Pool.slots, Pool.include_deferred)
    return query.with_for_update() if lock else query


@functools.cache
def _held() -> Any:
    """Instances that hold pool slots (queued, running, deferred), grouped so that one
    query gives the slots each pool has in use, the instances each DAG and each task have
    running, and those DAGs' ``max_active_tasks`` (None for a DAG no longer known)."""
    return (
        select(
            TaskInstance.pool,
            TaskInstance.state,
            TaskInstance.dag_id,
            TaskInstance.task_id,
            func.sum(TaskInstance.pool_slots),
            func.count(),
            DagModel.max_active_tasks,
        )
        .outerjoin(DagModel, DagModel.dag_id == TaskInstance.dag_id)
        .where(TaskInstance.state.in_([*OCCUPYING, str(TI.DEFERRED)]))
        .group_by(
            TaskInstance.pool,
            TaskInstance.state,
            TaskInstance.dag_id,
            TaskInstance.task_id,
            DagModel.max_active_tasks,
        )
    )


def _slots_and_limits(
    sizes: Sequence[Any], held: Iterable[Any]
) -> tuple[dict[str, int], Counter[str], Counter[tuple[str, str]], dict[str, int]]:
    """From the pools (``sizes``: each one's name, size and include_deferred) and the
    rows of `_held`: the free slots per pool (queued and running instances hold theirs,
    deferred ones too in a pool with include_deferred), the queued and running instances
    per DAG and per task, and those DAGs' ``max_active_tasks``."""
    used: Counter[tuple[str, str]] = Counter()
    per_dag: Counter[str] = Counter()
    per_task: Counter[tuple[str, str]] = Counter()
    max_tasks: dict[str, int] = {}
    for pool, state, dag_id, task_id, slots, count, limit in held:
        used[(pool, state)] += int(slots or 0)
        if state in OCCUPYING:
            per_dag[dag_id] += count
            per_task[(dag_id, task_id)] += count
        if limit is not None:
            max_tasks[dag_id] = limit
    free: dict[str, int] = {}
    for name, size, include_deferred in sizes:
        taken = sum(used[(name, state)] for state in OCCUPYING)
        if include_deferred:
            taken += used[(name, str(TI.DEFERRED))]
        free[name] = (1 << 30 if size < 0 else size) - taken
    return free, per_dag, per_task, max_tasks


def _fits(
    session: Session,
    ti: TaskInstance,
    pools: dict[str, int],
    per_dag: Counter[str],
    per_task: Counter[tuple[str, str]],
    max_tasks: dict[str, int],
) -> bool:
    if ti.pool not in pools:
        logger.warning(
            "%s.%s uses unknown pool %r; it waits until the pool exists",
            ti.dag_id,
            ti.task_id,
            ti.pool,
        )
        return False
    if pools[ti.pool] < ti.pool_slots:
        return False
    if per_dag[ti.dag_id] >= max_tasks.get(ti.dag_id, 16):
        return False
    if ti.dag_version_id is None:
        return True
    spec = serialized_for(session, ti.dag_version_id).tasks.get(ti.task_id)
    limit = spec.max_active_tis_per_dag if spec else None
    return limit is None or per_task[(ti.dag_id, ti.task_id)] < limit
