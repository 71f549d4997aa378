"""Rows of the metadata database as the API's response bodies (the UI uses them too)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from tradewind.models import DagModel, DagRun, DagVersion
from webserver.api import schemas

# Schedules that produce runs on their own clock (what Airflow calls periodic).
_NOT_PERIODIC = {"NullTimetable", "OnceTimetable", "ContinuousTimetable"}


def display_name(model: DagModel) -> str:
    return model.dag_display_name or model.dag_id


def dag(model: DagModel, tag_names: list[str] | None = None) -> schemas.DAGResponse:
    """``tag_names`` when the caller loaded them for a whole page (else the relationship)."""
    name = display_name(model)
    names = tag_names if tag_names is not None else [t.name for t in model.tags]
    periodic = (model.timetable_type or "NullTimetable") not in _NOT_PERIODIC
    return schemas.DAGResponse(
        dag_id=model.dag_id,
        dag_display_name=name,
        is_paused=model.is_paused,
        is_stale=model.is_stale,
        last_parsed_time=model.last_parsed_time,
        last_parse_duration=model.last_parse_duration,
        last_expired=None,
        bundle_name=model.bundle_name,
        bundle_version=None,
        relative_fileloc=model.relative_fileloc,
        fileloc=model.fileloc,
        description=model.description,
        timetable_summary=model.timetable_summary,
        timetable_description=model.timetable_description,
        timetable_partitioned=False,
        timetable_periodic=periodic,
        tags=[
            schemas.DagTagResponse(name=tag, dag_id=model.dag_id, dag_display_name=name)
            for tag in names
        ],
        max_active_tasks=model.max_active_tasks,
        max_active_runs=model.max_active_runs,
        max_consecutive_failed_dag_runs=model.max_consecutive_failed_dag_runs,
        has_task_concurrency_limits=model.has_task_concurrency_limits,
        has_import_errors=model.has_import_errors,
        next_dagrun_logical_date=model.next_dagrun_logical_date,
        next_dagrun_data_interval_start=model.next_dagrun_data_interval_start,
        next_dagrun_data_interval_end=model.next_dagrun_data_interval_end,
        next_dagrun_run_after=_real_date(model),
        allowed_run_types=None,
        owners=[o.strip() for o in (model.owners or "airflow").split(",") if o.strip()],
        is_backfillable=periodic,
        file_token=hashlib.sha256(model.fileloc.encode()).hexdigest(),
    )


def _real_date(model: DagModel) -> Any:
    """The far-future marker of "no more runs" is not a date to show."""
    value = model.next_dagrun_run_after
    return None if value is not None and value.year >= 9999 else value


def version(row: DagVersion, dag_display_name: str) -> schemas.DagVersionResponse:
    return schemas.DagVersionResponse(
        id=row.id,
        version_number=row.version_number,
        dag_id=row.dag_id,
        bundle_name="dags-folder",
        bundle_version=None,
        created_at=row.created_at,
        dag_display_name=dag_display_name,
    )


def dag_details(
    model: DagModel, latest: DagVersion | None, active_runs: int
) -> schemas.DAGDetailsResponse:
    raw: dict[str, Any] = latest.serialized if latest is not None else {}
    timeout = raw.get("dagrun_timeout")
    return schemas.DAGDetailsResponse(
        **dag(model).model_dump(),
        catchup=bool(raw.get("catchup", False)),
        dag_run_timeout=iso_duration(timeout) if timeout is not None else None,
        asset_expression=None,
        doc_md=raw.get("doc_md"),
        start_date=raw.get("start_date"),
        end_date=raw.get("end_date"),
        is_paused_upon_creation=raw.get("is_paused_upon_creation"),
        params=raw.get("params"),
        render_template_as_native_obj=bool(raw.get("render_template_as_native_obj", False)),
        template_search_path=raw.get("template_searchpath") or None,
        timezone=raw.get("timezone"),
        last_parsed=model.last_parsed_time,
        default_args=raw.get("default_args"),
        owner_links=raw.get("owner_links") or None,
        concurrency=model.max_active_tasks,
        latest_dag_version=version(latest, display_name(model)) if latest is not None else None,
        active_runs_count=active_runs,
    )


def iso_duration(seconds: float) -> str:
    """Seconds as an ISO-8601 duration (``PT1H``, ``P1DT30M``, ``PT0.5S``)."""
    whole = timedelta(seconds=seconds)
    days, rest = whole.days, whole.seconds
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = whole.microseconds / 1_000_000
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if secs or fraction:
        value = secs + fraction
        time_part += f"{value:g}S"
    text = "P" + (f"{days}D" if days else "")
    if time_part or not days:
        text += "T" + (time_part or "0S")
    return text


def time_delta(seconds: float | None) -> schemas.TimeDelta | None:
    if seconds is None:
        return None
    value = timedelta(seconds=seconds)
    return schemas.TimeDelta(
        days=value.days, seconds=value.seconds, microseconds=value.microseconds
    )


def task(spec: dict[str, Any]) -> schemas.TaskResponse:
    return schemas.TaskResponse(
        task_id=spec["task_id"],
        task_display_name=spec.get("task_display_name") or spec["task_id"],
        owner=spec.get("owner"),
        start_date=spec.get("start_date"),
        end_date=spec.get("end_date"),
        trigger_rule=spec.get("trigger_rule"),
        depends_on_past=bool(spec.get("depends_on_past", False)),
        wait_for_downstream=bool(spec.get("wait_for_downstream", False)),
        retries=float(spec.get("retries") or 0),
        queue=spec.get("queue"),
        pool=spec.get("pool"),
        pool_slots=float(spec.get("pool_slots") or 1),
        execution_timeout=time_delta(spec.get("execution_timeout")),
        retry_delay=time_delta(spec.get("retry_delay")),
        retry_exponential_backoff=float(spec.get("retry_exponential_backoff") or 0),
        priority_weight=float(spec.get("priority_weight") or 1),
        weight_rule=spec.get("weight_rule"),
        ui_color=spec.get("ui_color"),
        ui_fgcolor=spec.get("ui_fgcolor"),
        template_fields=list(spec.get("template_fields") or []),
        downstream_task_ids=list(spec.get("downstream") or []),
        doc_md=spec.get("doc_md"),
        operator_name=spec.get("operator_name"),
        params=spec.get("params"),
        class_ref=spec.get("class_ref"),
        is_mapped=bool(spec.get("is_mapped", False)),
        extra_links=[],
    )


def dag_run(
    run: DagRun, model_display_name: str, versions: list[schemas.DagVersionResponse]
) -> schemas.DAGRunResponse:
    duration = None
    if run.start_date is not None and run.end_date is not None:
        duration = (run.end_date - run.start_date).total_seconds()
    triggered_by = run.triggered_by
    if triggered_by not in {t.value for t in schemas.DagRunTriggeredByType}:
        triggered_by = None
    return schemas.DAGRunResponse(
        dag_run_id=run.run_id,
        dag_id=run.dag_id,
        logical_date=run.logical_date,
        queued_at=run.queued_at,
        start_date=run.start_date,
        end_date=run.end_date,
        duration=duration,
        data_interval_start=run.data_interval_start,
        data_interval_end=run.data_interval_end,
        run_after=run.run_after,
        last_scheduling_decision=run.last_scheduling_decision,
        run_type=schemas.DagRunType(run.run_type),
        state=schemas.DagRunState(run.state),
        triggered_by=schemas.DagRunTriggeredByType(triggered_by) if triggered_by else None,
        triggering_user_name=run.triggering_user_name,
        conf=run.conf,
        note=run.note,
        dag_versions=versions,
        bundle_version=None,
        dag_display_name=model_display_name,
    )
