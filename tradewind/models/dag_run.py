"""DAG runs: one execution of a DAG for a logical date (or none, for some manual runs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.models.base import Base, JsonText, UtcDateTime, utcnow
from tradewind.models.dag import ID_LENGTH


class DagRun(Base):
    __tablename__ = "dag_run"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id"),
        UniqueConstraint("dag_id", "logical_date"),
        Index("ix_dag_run_state_dag_id", "state", "dag_id"),
        Index("ix_dag_run_dag_id_run_after", "dag_id", "run_after"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("dag.dag_id", ondelete="CASCADE")
    )
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    logical_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    run_after: Mapped[datetime] = mapped_column(UtcDateTime)
    data_interval_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    data_interval_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    run_type: Mapped[str] = mapped_column(String(50))
    state: Mapped[str] = mapped_column(String(50))
    triggered_by: Mapped[str | None] = mapped_column(String(50))
    triggering_user_name: Mapped[str | None] = mapped_column(String(512))
    conf: Mapped[dict[str, Any]] = mapped_column(JsonText, default=dict)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_scheduling_decision: Mapped[datetime | None] = mapped_column(UtcDateTime)
    dag_version_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("dag_version.id", ondelete="SET NULL")
    )
    note: Mapped[str | None] = mapped_column(Text)
    clear_number: Mapped[int] = mapped_column(Integer, default=0)
    backfill_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("backfill.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    @property
    def duration(self) -> float | None:
        if self.start_date is None or self.end_date is None:
            return None
        return (self.end_date - self.start_date).total_seconds()
