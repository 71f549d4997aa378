"""Long-running components (scheduler, DAG processor, executor, worker) and their
heartbeats. A component whose heartbeat is older than the threshold counts as dead."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tradewind.models import Job

RUNNING = "running"
SUCCESS = "success"
FAILED = "failed"
JOB_TYPES = ("scheduler", "dag_processor", "worker", "triggerer")


def start_job(
    session: Session,
    job_type: str,
    *,
    now: datetime,
    executor_class: str | None = None,
    hostname: str | None = None,
    queues: list[str] | None = None,
    concurrency: int | None = None,
) -> Job:
    job = Job(
        job_type=job_type,
        state=RUNNING,
        hostname=hostname or socket.getfqdn(),
        queues=",".join(queues) if queues else None,
        concurrency=concurrency,
        pid=os.getpid(),
        executor_class=executor_class,
        start_date=now,
        latest_heartbeat=now,
    )
    session.add(job)
    session.flush()
    return job


def beat(session: Session, job_id: int, *, now: datetime) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(latest_heartbeat=now))


def end_job(session: Session, job_id: int, *, now: datetime, state: str = SUCCESS) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(state=state, end_date=now))


def alive_jobs(
    session: Session, job_type: str | None, *, now: datetime, threshold: timedelta
) -> list[Job]:
    """Jobs (of a type, or of any type) that are running and have beaten within the
    threshold."""
    query = select(Job).where(Job.state == RUNNING, Job.latest_heartbeat >= now - threshold)
    if job_type is not None:
        query = query.where(Job.job_type == job_type)
    return list(session.scalars(query.order_by(Job.latest_heartbeat.desc())))


def latest_heartbeat(session: Session, job_type: str) -> datetime | None:
    return session.scalar(
        select(Job.latest_heartbeat)
        .where(Job.job_type == job_type)
        .order_by(Job.latest_heartbeat.desc())
        .limit(1)
    )
