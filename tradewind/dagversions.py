"""Reading stored DAG versions. A version never changes once written, so the parsed form
is kept per process (bounded, least recently used first out)."""

from __future__ import annotations

from collections import OrderedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradewind.errors import DagNotFound
from tradewind.models import DagVersion
from tradewind.serialization import SerializedDag
from tradewind.state import RetryPolicy

CACHE_SIZE = 512
_cache: OrderedDict[str, SerializedDag] = OrderedDict()


def serialized_for(session: Session, version_id: str) -> SerializedDag:
    """The serialized DAG of a version."""
    cached = _cache.get(version_id)
    if cached is not None:
        _cache.move_to_end(version_id)
        return cached
    data = session.scalar(select(DagVersion.serialized).where(DagVersion.id == version_id))
    if data is None:
        raise DagNotFound(f"DAG version {version_id} does not exist")
    cached = _cache[version_id] = SerializedDag.from_dict(data)
    if len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return cached


def retry_policy_for(
    session: Session, version_id: str | None, task_id: str, *, fallback_retries: int
) -> RetryPolicy:
    """The retry policy of a task as its run's version recorded it: the one rule both the
    worker and the scheduler apply."""
    if version_id is not None:
        spec = serialized_for(session, version_id).tasks.get(task_id)
        if spec is not None:
            return spec.retry_policy
    return RetryPolicy(retries=fallback_retries)
