"""`/api/v2/monitor/health` and `/api/v2/version`: no token needed."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from sqlalchemy import text

import tradewind
from tradewind import jobs
from tradewind.models.base import utcnow
from webserver.api import schemas
from webserver.api.common import DbSession

router = APIRouter(tags=["Monitor"])

HEALTHY, UNHEALTHY = "healthy", "unhealthy"


@router.get("/monitor/health", response_model=schemas.HealthInfoResponse)
def get_health(request: Request, session: DbSession) -> schemas.HealthInfoResponse:
    """Whether the metadata database answers and the daemons heartbeat."""
    try:
        session.execute(text("SELECT 1"))
    except Exception:
        unknown = schemas.BaseInfo(status=UNHEALTHY)
        return schemas.HealthInfoResponse(
            metadatabase=unknown,
            scheduler=schemas.SchedulerInfo(status=UNHEALTHY, latest_scheduler_heartbeat=None),
            triggerer=schemas.TriggererInfo(status=None, latest_triggerer_heartbeat=None),
            dag_processor=schemas.DagProcessorInfo(
                status=None, latest_dag_processor_heartbeat=None
            ),
        )
    threshold = timedelta(seconds=request.app.state.settings.job_dead_after_seconds)
    now = utcnow()

    def component(job_type: str) -> tuple[str | None, str | None]:
        beat = jobs.latest_heartbeat(session, job_type)
        if beat is None:
            return None, None
        return (HEALTHY if now - beat <= threshold else UNHEALTHY), _iso(beat)

    scheduler_status, scheduler_beat = component("scheduler")
    processor_status, processor_beat = component("dag_processor")
    triggerer_status, triggerer_beat = component("triggerer")
    return schemas.HealthInfoResponse(
        metadatabase=schemas.BaseInfo(status=HEALTHY),
        scheduler=schemas.SchedulerInfo(
            status=scheduler_status or UNHEALTHY, latest_scheduler_heartbeat=scheduler_beat
        ),
        triggerer=schemas.TriggererInfo(
            status=triggerer_status, latest_triggerer_heartbeat=triggerer_beat
        ),
        dag_processor=schemas.DagProcessorInfo(
            status=processor_status, latest_dag_processor_heartbeat=processor_beat
        ),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@router.get("/version", response_model=schemas.VersionInfo)
def get_version() -> schemas.VersionInfo:
    return schemas.VersionInfo(version=tradewind.__version__, git_version=None)
