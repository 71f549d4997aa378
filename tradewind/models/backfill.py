"""Backfills: a date range of a DAG run again on request, and the runs it is made of."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.models.base import Base, JsonText, UtcDateTime, utcnow
from tradewind.models.dag import ID_LENGTH


class Backfill(Base):
    """One backfill: the range asked for and how to run it. The scheduler creates its
    runs, at most ``max_active_runs`` at a time; ``completed_at`` is set once every run
    of it ended (or it was cancelled)."""

    __tablename__ = "backfill"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("dag.dag_id", ondelete="CASCADE"), index=True
    )
    from_date: Mapped[datetime] = mapped_column(UtcDateTime)
    to_date: Mapped[datetime] = mapped_column(UtcDateTime)
    dag_run_conf: Mapped[dict[str, Any]] = mapped_column(JsonText, default=dict)
    is_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    reprocess_behavior: Mapped[str] = mapped_column(String(20), default="none")
    max_active_runs: Mapped[int] = mapped_column(Integer, default=10)
    run_backwards: Mapped[bool] = mapped_column(Boolean, default=False)
    triggering_user_name: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class BackfillDagRun(Base):
    """One logical date of a backfill, in the order it runs: its run once the scheduler
    created (or reused) it, or why it has none (``exception_reason``)."""

    __tablename__ = "backfill_dag_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backfill_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("backfill.id", ondelete="CASCADE"), index=True
    )
    dag_run_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("dag_run.id", ondelete="SET NULL")
    )
    logical_date: Mapped[datetime] = mapped_column(UtcDateTime)
    run_after: Mapped[datetime] = mapped_column(UtcDateTime)
    data_interval_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    data_interval_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    exception_reason: Mapped[str | None] = mapped_column(Text)
    sort_ordinal: Mapped[int] = mapped_column(Integer)


__all__ = ["Backfill", "BackfillDagRun"]
