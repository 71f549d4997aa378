"""Rows of the metadata database as the API's response bodies (the UI uses them too)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, select

from tradewind.models import DagModel, DagRun, DagTag, DagVersion
from webserver.api import schemas
from webserver.api.common import json_array_agg

# Schedules that produce runs on their own clock (what Airflow calls periodic).
_NOT_PERIODIC = {"NullTimetable", "OnceTimetable", "ContinuousTimetable"}

# A DAG's tag names in the same query as the DAG (one round trip for a whole page).
_TAG_NAMES = (
    select(json_array_agg(DagTag.name))
    .where(DagTag.dag_id == DagModel.dag_id)
    .scalar_subquery()
    .label("tag_names")
)
# What `dag` reads: a DAG query selects these columns (rows, not ORM objects).
DAG_COLUMNS = (
    *(
        getattr(DagModel, name)
        for name in (
            "dag_id",
            "dag_display_name",
            "is_paused",
            "is_stale",
            "last_parsed_time",
            "last_parse_duration",
            "bundle_name",
            "relative_fileloc",
            "fileloc",
            "description",
            "timetable_summary",
            "timetable_description",
            "timetable_type",
            "max_active_tasks",
            "max_active_runs",
            "max_consecutive_failed_dag_runs",
            "has_task_concurrency_limits",
            "has_import_errors",
            "next_dagrun_logical_date",
            "next_dagrun_data_interval_start",
            "next_dagrun_data_interval_end",
            "next_dagrun_run_after",
            "owners",
        )
    ),
    _TAG_NAMES,
)


def dag(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a `schemas.DAGResponse` from a row of `DAG_COLUMNS` (as a dict, which
    becomes the response).

    A plain dict: a single DAG is validated by its route's response model, while a page
    of a hundred is serialized directly (`common.collection`), because building and
    validating models was most of a list's time. Every value comes from a typed column.
    """
    dag_id = fields["dag_id"]
    name = fields["dag_display_name"] = fields["dag_display_name"] or dag_id
    periodic = (fields.pop("timetable_type") or "NullTimetable") not in _NOT_PERIODIC
    owners = fields.pop("owners") or "airflow"
    run_after = fields["next_dagrun_run_after"]
    if run_after is not None and run_after.year >= 9999:
        run_after = None  # the far-future marker of "no more runs" is not a date to show
    fields.update(
        last_expired=None,
        bundle_version=None,
        timetable_partitioned=False,
        timetable_periodic=periodic,
        tags=[
            {"name": tag, "dag_id": dag_id, "dag_display_name": name}
            for tag in sorted(fields.pop("tag_names") or ())
        ],
        # The far-future marker of "no more runs" is not a date to show.
        next_dagrun_run_after=None
        if run_after is not None and run_after.year >= 9999
        else run_after,
        allowed_run_types=None,
        owners=[o.strip() for o in owners.split(",") if o.strip()],
        is_backfillable=periodic,
        file_token=hashlib.sha256(fields["fileloc"].encode()).hexdigest(),
    )
    return fields


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
    row: Row[Any], latest: DagVersion | None, active_runs: int
) -> schemas.DAGDetailsResponse:
    raw: dict[str, Any] = latest.serialized if latest is not None else {}
    timeout = raw.get("dagrun_timeout")
    return schemas.DAGDetailsResponse(
        **dag(row._asdict()),
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
        last_parsed=row.last_parsed_time,
        default_args=raw.get("default_args"),
        owner_links=raw.get("owner_links") or None,
        concurrency=row.max_active_tasks,
        latest_dag_version=(
            version(latest, row.dag_display_name or row.dag_id) if latest is not None else None
        ),
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


# What `dag_run` reads: a run's columns, its DAG's display name and its version's.
DAG_RUN_COLUMNS = (
    *(
        getattr(DagRun, name)
        for name in (
            "run_id",
            "dag_id",
            "logical_date",
            "queued_at",
            "start_date",
            "end_date",
            "data_interval_start",
            "data_interval_end",
            "run_after",
            "last_scheduling_decision",
            "run_type",
            "state",
            "triggered_by",
            "triggering_user_name",
            "conf",
            "note",
            "dag_version_id",
        )
    ),
    DagModel.dag_display_name,
    DagVersion.version_number,
    DagVersion.created_at.label("version_created_at"),
)
_TRIGGERED_BY = {t.value for t in schemas.DagRunTriggeredByType}


def dag_run(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a `schemas.DAGRunResponse` from a row of `DAG_RUN_COLUMNS` (the run
    outer-joined to its DAG and version, as a dict); a plain dict, as `dag` explains."""
    start, end = fields["start_date"], fields["end_date"]
    shown = fields["dag_display_name"] = fields["dag_display_name"] or fields["dag_id"]
    version_id = fields.pop("dag_version_id")
    number, created = fields.pop("version_number"), fields.pop("version_created_at")
    versions = []
    if number is not None:
        versions.append(
            {
                "id": version_id,
                "version_number": number,
                "dag_id": fields["dag_id"],
                "bundle_name": "dags-folder",
                "bundle_version": None,
                "created_at": created,
                "dag_display_name": shown,
                "bundle_url": None,
            }
        )
    if fields["triggered_by"] not in _TRIGGERED_BY:
        fields["triggered_by"] = None
    fields.update(
        dag_run_id=fields.pop("run_id"),
        duration=(end - start).total_seconds() if start and end else None,
        dag_versions=versions,
        bundle_version=None,
    )
    return fields
