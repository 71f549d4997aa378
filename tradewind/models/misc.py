"""Pools, import errors, component heartbeats (jobs) and users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.models.base import Base, UtcDateTime, utcnow

DEFAULT_POOL_NAME = "default_pool"
DEFAULT_POOL_SLOTS = 128


class Pool(Base):
    """A limit on concurrent task slots shared by the tasks that name it."""

    __tablename__ = "slot_pool"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pool: Mapped[str] = mapped_column(String(256), unique=True)
    slots: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str | None] = mapped_column(Text)
    include_deferred: Mapped[bool] = mapped_column(Boolean, default=False)


class ParseImportError(Base):
    """A DAG file that failed to load: where and why. Cleared when the file is fixed."""

    __tablename__ = "import_error"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(1000), index=True)
    fileloc: Mapped[str] = mapped_column(Text)
    bundle_name: Mapped[str] = mapped_column(String(250), default="dags-folder")
    lineno: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    stacktrace: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Job(Base):
    """A long-running component (scheduler, DAG processor, worker, triggerer) and its
    heartbeat."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_type_heartbeat", "job_type", "latest_heartbeat"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_type: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20))
    hostname: Mapped[str | None] = mapped_column(String(500))
    pid: Mapped[int | None] = mapped_column(Integer)
    executor_class: Mapped[str | None] = mapped_column(String(500))
    queues: Mapped[str | None] = mapped_column(Text)  # workers: the queues they listen to
    concurrency: Mapped[int | None] = mapped_column(Integer)  # workers: tries at once
    start_date: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    latest_heartbeat: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(256), unique=True)
    password_hash: Mapped[str] = mapped_column(String(512))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CallbackRequest(Base):
    """A callback to run once for an event (a run finished, a try was lost), recorded in
    the same transaction as the event and claimed atomically by whoever runs it."""

    __tablename__ = "callback_request"
    __table_args__ = (Index("ix_callback_request_state", "state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(30))
    dag_id: Mapped[str] = mapped_column(String(250))
    run_id: Mapped[str] = mapped_column(String(250))
    task_id: Mapped[str | None] = mapped_column(String(250))
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    try_number: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
