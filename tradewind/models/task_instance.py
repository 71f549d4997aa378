"""Task instances (the latest try of each task of each run), earlier tries, the pokes
of sensors that gave their slot back, and the lengths of XComs that mapped tasks expand
over."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.models.base import Base, JsonText, UtcDateTime, utcnow, uuid7
from tradewind.models.dag import ID_LENGTH


class _TryColumns:
    """Columns describing one try; shared by the live row and the history."""

    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    try_number: Mapped[int] = mapped_column(Integer, default=0)
    max_tries: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str | None] = mapped_column(String(20))
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration: Mapped[float | None] = mapped_column(Float)
    queued_dttm: Mapped[datetime | None] = mapped_column(UtcDateTime)
    scheduled_dttm: Mapped[datetime | None] = mapped_column(UtcDateTime)
    hostname: Mapped[str | None] = mapped_column(String(1000))
    unixname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None] = mapped_column(Integer)
    pool: Mapped[str] = mapped_column(String(256), default="default_pool")
    pool_slots: Mapped[int] = mapped_column(Integer, default=1)
    queue: Mapped[str] = mapped_column(String(256), default="default")
    priority_weight: Mapped[int] = mapped_column(Integer, default=1)
    operator: Mapped[str | None] = mapped_column(String(1000))
    custom_operator_name: Mapped[str | None] = mapped_column(String(1000))
    executor: Mapped[str | None] = mapped_column(String(1000))
    dag_version_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class TaskInstance(_TryColumns, Base):
    """One row per (dag_id, run_id, task_id, map_index): the current try."""

    __tablename__ = "task_instance"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", "task_id", "map_index"),
        ForeignKeyConstraint(
            ["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"
        ),
        Index("ix_task_instance_state_pool", "state", "pool"),
        Index("ix_task_instance_dag_id_run_id_state", "dag_id", "run_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    executor_config: Mapped[dict[str, Any] | None] = mapped_column(JsonText)
    rendered_fields: Mapped[dict[str, Any] | None] = mapped_column(JsonText)
    note: Mapped[str | None] = mapped_column(Text)
    external_executor_id: Mapped[str | None] = mapped_column(String(250))
    resend_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Why a queued try has not started (no worker listens to its queue), for the UI/API.
    queued_reason: Mapped[str | None] = mapped_column(Text)
    # A deferred try: the trigger it waits on and until when; then where it resumes.
    trigger_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("trigger.id", ondelete="SET NULL"), index=True
    )
    trigger_timeout: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_method: Mapped[str | None] = mapped_column(String(1000))
    next_kwargs: Mapped[dict[str, Any] | None] = mapped_column(JsonText)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.dag_id, self.run_id, self.task_id, self.map_index)


class TaskInstanceHistory(_TryColumns, Base):
    """Earlier tries of a task instance, copied when a new try starts or it is cleared."""

    __tablename__ = "task_instance_history"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", "task_id", "map_index", "try_number"),
        ForeignKeyConstraint(
            ["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_instance_id: Mapped[str] = mapped_column(String(36), index=True)


class TaskReschedule(Base):
    """One poke of a sensor in reschedule mode that gave its slot back: when it ran and
    when it asked to run again. A sensor's timeout counts from the start of the first
    poke of its try; clearing the task instance forgets them."""

    __tablename__ = "task_reschedule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ti_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("task_instance.id", ondelete="CASCADE"), index=True
    )
    try_number: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[datetime] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime] = mapped_column(UtcDateTime)
    duration: Mapped[float] = mapped_column(Float)
    reschedule_date: Mapped[datetime] = mapped_column(UtcDateTime)


class TaskMap(Base):
    """The length of an XCom value that a mapped task expands over."""

    __tablename__ = "task_map"
    __table_args__ = (
        ForeignKeyConstraint(
            ["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"], ondelete="CASCADE"
        ),
    )

    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    length: Mapped[int] = mapped_column(Integer)


__all__ = ["TaskInstance", "TaskInstanceHistory", "TaskMap", "TaskReschedule"]
