"""DAGs as the database knows them: one row per DAG id, its tags, its parsed versions,
and the files they came from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tradewind.models.base import Base, JsonText, UtcDateTime, utcnow, uuid7

ID_LENGTH = 250


class DagModel(Base):
    """One row per DAG id ever seen; ``is_stale`` once its file no longer defines it."""

    __tablename__ = "dag"

    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    dag_display_name: Mapped[str | None] = mapped_column(String(2000))
    is_paused: Mapped[bool] = mapped_column(Boolean, default=True)
    is_stale: Mapped[bool] = mapped_column(Boolean, default=False)
    fileloc: Mapped[str] = mapped_column(Text)
    relative_fileloc: Mapped[str | None] = mapped_column(Text)
    bundle_name: Mapped[str] = mapped_column(String(250), default="dags-folder")
    owners: Mapped[str | None] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(Text)
    timetable_summary: Mapped[str | None] = mapped_column(Text)
    timetable_description: Mapped[str | None] = mapped_column(Text)
    timetable_type: Mapped[str | None] = mapped_column(String(250))
    max_active_runs: Mapped[int | None] = mapped_column(Integer)
    max_active_tasks: Mapped[int] = mapped_column(Integer, default=16)
    max_consecutive_failed_dag_runs: Mapped[int] = mapped_column(Integer, default=0)
    has_task_concurrency_limits: Mapped[bool] = mapped_column(Boolean, default=False)
    has_import_errors: Mapped[bool] = mapped_column(Boolean, default=False)
    last_parsed_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_parse_duration: Mapped[float | None] = mapped_column(Float)
    next_dagrun_logical_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_data_interval_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_data_interval_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_run_after: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    tags: Mapped[list[DagTag]] = relationship(
        back_populates="dag", cascade="all, delete-orphan", lazy="selectin", order_by="DagTag.name"
    )


class DagTag(Base):
    __tablename__ = "dag_tag"

    dag_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("dag.dag_id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)

    dag: Mapped[DagModel] = relationship(back_populates="tags")


class DagVersion(Base):
    """One parsed shape of a DAG. A new version is stored only when the hash changes;
    a run keeps the version it started with."""

    __tablename__ = "dag_version"
    __table_args__ = (UniqueConstraint("dag_id", "version_number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    dag_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("dag.dag_id", ondelete="CASCADE"), index=True
    )
    version_number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    serialized: Mapped[dict[str, Any]] = mapped_column(JsonText)
    source_code: Mapped[str | None] = mapped_column(Text)
    fileloc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DagFile(Base):
    """What the DAG file processor knows about each file: when it last parsed it, how
    long that took, and what it found (for change detection and `dags report`)."""

    __tablename__ = "dag_file"

    fileloc: Mapped[str] = mapped_column(String(1000), primary_key=True)
    relative_fileloc: Mapped[str] = mapped_column(Text)
    mtime: Mapped[float] = mapped_column(Float)
    size: Mapped[int] = mapped_column(Integer)
    last_parsed_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    parse_duration: Mapped[float] = mapped_column(Float, default=0.0)
    dag_count: Mapped[int] = mapped_column(Integer, default=0)
    task_count: Mapped[int] = mapped_column(Integer, default=0)
    has_error: Mapped[bool] = mapped_column(Boolean, default=False)
