"""Triggering a run from the UI: a form generated from the DAG's Params."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tradewind.dagruns import RunRequest, create_dag_run
from tradewind.errors import DagRunAlreadyExists, DagRunIdError, ParamValidationError
from tradewind.models import DagModel, DagVersion
from tradewind.models.base import utcnow
from tradewind.state import DagRunType
from webserver.api.common import DbSession
from webserver.api.dags import find_dag
from webserver.security import Principal
from webserver.ui import param_form, queries
from webserver.ui.render import page, run_url
from webserver.ui.session import UiUser, UiUserPage

router = APIRouter(include_in_schema=False)


def _dag_and_version(session: Any, dag_id: str) -> tuple[DagModel, DagVersion | None]:
    return find_dag(session, dag_id), queries.latest_serialized(session, dag_id)


def _form(
    request: Request,
    principal: Principal,
    model: DagModel,
    version: DagVersion | None,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    params = version.serialized.get("params", {}) if version is not None else {}
    fields = param_form.fields(params)
    if values is not None:  # show what was sent back, not the defaults
        fields = [
            replace(
                f,
                value=values.get(f"param.{f.name}", ""),
                checked=f"param.{f.name}" in values,
            )
            for f in fields
        ]
    return page(
        request,
        "trigger.html",
        principal,
        status_code=status_code,
        dag=model,
        version=version,
        fields=fields,
        values=values or {},
        errors=errors or {},
        # As in Airflow's form: a run gets a logical date (now) unless the field is emptied,
        # so tasks that use {{ ds }} and friends work in a manual run.
        default_logical_date=utcnow().strftime("%Y-%m-%dT%H:%M:%S"),
        nav="dags",
    )


@router.get("/dags/{dag_id}/trigger", response_class=HTMLResponse)
def trigger_form(
    request: Request, dag_id: str, session: DbSession, principal: UiUserPage
) -> Response:
    model, version = _dag_and_version(session, dag_id)
    return _form(request, principal, model, version)


def _logical_date(text: str, offset_minutes: str) -> datetime | None:
    """A datetime-local value in the browser's zone (its UTC offset sent along)."""
    if not text.strip():
        return None
    naive = datetime.fromisoformat(text.strip())
    try:
        offset = int(offset_minutes or 0)
    except ValueError:
        offset = 0
    return (naive + timedelta(minutes=offset)).replace(tzinfo=UTC)


@router.post("/dags/{dag_id}/trigger", response_class=HTMLResponse)
async def trigger(request: Request, dag_id: str, session: DbSession, principal: UiUser) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    return await run_in_threadpool(_trigger, request, dag_id, session, principal, form)


def _trigger(
    request: Request, dag_id: str, session: Any, principal: Principal, form: dict[str, str]
) -> Response:
    model, version = _dag_and_version(session, dag_id)
    if version is None:
        errors = {"_": "This DAG has never been parsed without errors, so it cannot run."}
        return _form(request, principal, model, version, errors=errors, status_code=400)
    params = version.serialized.get("params", {})
    conf, errors = param_form.read_form(params, form)
    extra = form.get("conf", "").strip()
    if extra:
        try:
            more = json.loads(extra)
            if not isinstance(more, dict):
                raise ValueError("it must be a JSON object")
            conf = {**more, **conf}
        except ValueError as exc:
            errors["conf"] = f"Not a JSON object: {exc}"
    try:
        logical_date = _logical_date(form.get("logical_date", ""), form.get("tz_offset", "0"))
    except ValueError:
        errors["logical_date"] = "Not a date and time."
        logical_date = None
    if errors:
        return _form(
            request, principal, model, version, values=form, errors=errors, status_code=400
        )
    now = utcnow()
    run_request = RunRequest(
        run_type=DagRunType.MANUAL,
        run_after=logical_date or now,
        logical_date=logical_date,
        run_id=form.get("run_id", "").strip() or None,
        conf=conf,
        triggered_by="ui",
        triggering_user_name=principal.username,
        note=form.get("note", "").strip() or None,
    )
    try:
        run = create_dag_run(session, model, version, run_request, now=now)
    except ParamValidationError as exc:
        errors["_"] = str(exc)
    except DagRunIdError as exc:
        errors["run_id"] = str(exc)
    except DagRunAlreadyExists as exc:
        # A clash of a run id the user did not give comes from the logical date.
        errors["run_id" if run_request.run_id else "logical_date"] = str(exc)
    if errors:
        session.rollback()
        return _form(
            request, principal, model, version, values=form, errors=errors, status_code=400
        )
    session.commit()
    return RedirectResponse(run_url(dag_id, run.run_id), status_code=303)
