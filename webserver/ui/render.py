"""Rendering pages: the Jinja2 environment, the helpers every template uses, and links.

Times are written in UTC inside ``<time>`` elements; the page's script shows them in the
viewer's time zone and keeps UTC in the tooltip.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

import tradewind
from webserver.security import Principal, may
from webserver.ui.session import csrf_token

HERE = Path(__file__).resolve().parent

# Task instance states in the order a legend lists them (Airflow's colours, in the CSS).
STATES = (
    "success",
    "running",
    "failed",
    "upstream_failed",
    "skipped",
    "up_for_retry",
    "up_for_reschedule",
    "queued",
    "scheduled",
    "deferred",
    "removed",
    "restarting",
    "no_status",
)


def when(value: datetime | None) -> Markup:
    """A UTC time as a ``<time>`` the browser shows in local time (UTC on hover)."""
    if value is None:
        return Markup('<span class="muted">-</span>')
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    iso = value.isoformat()
    return Markup(f'<time datetime="{iso}" title="{text} UTC">{text} UTC</time>')


def duration(value: float | timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 10:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs} s"


def part(value: str) -> str:
    """One path segment of a link (run ids carry ``:`` and ``+``)."""
    return quote(value, safe="")


def dag_url(dag_id: str, view: str = "") -> str:
    base = f"/dags/{part(dag_id)}"
    return f"{base}/{view}" if view else base


def run_url(dag_id: str, run_id: str, action: str = "") -> str:
    base = f"/dags/{part(dag_id)}/runs/{part(run_id)}"
    return f"{base}/{action}" if action else base


def ti_url(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int = -1,
    action: str = "",
    **query: Any,
) -> str:
    base = f"{run_url(dag_id, run_id)}/tasks/{part(task_id)}"
    if action:
        base = f"{base}/{action}"
    params = {k: v for k, v in query.items() if v is not None}
    if map_index != -1:
        params["map_index"] = map_index
    return f"{base}?{urlencode(params)}" if params else base


def with_query(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


def state_badge(state: str | None) -> Markup:
    name = state or "no_status"
    return Markup(f'<span class="badge s-{escape(name)}">{escape(name.replace("_", " "))}</span>')


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, duration=duration, badge=state_badge, part=part)
    env.globals.update(
        dag_url=dag_url,
        run_url=run_url,
        ti_url=ti_url,
        STATES=STATES,
        tradewind_version=tradewind.__version__,
    )
    return env


def page(
    request: Request,
    template: str,
    principal: Principal,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A full page (or a fragment template) for a logged-in viewer."""
    settings = request.app.state.settings
    context.setdefault("nav", "")
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            user=principal,
            csrf=csrf_token(request, principal),
            can_act=may(principal.role, "user"),
            can_manage=may(principal.role, "op"),
            is_admin=may(principal.role, "admin"),
            refresh_ms=int(settings.ui_refresh_seconds * 1000),
            with_query=lambda **changes: with_query(request, **changes),
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)


def bare(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page shown without a login (the login form, an error before login)."""
    context.setdefault("nav", "")
    html = environment().get_template(template).render(request=request, user=None, **context)
    return HTMLResponse(html, status_code=status_code)
