"""The web UI in process (the ASGI app over HTTP semantics), on SQLite and Postgres:
login and sessions, CSRF, roles, every page, the trigger form, actions and the live
log. The browser-level behaviour is in tests/e2e/test_ui.py."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.test_api import DAGS, PASSWORD
from tradewind.auth.users import ROLES, create_user
from tradewind.db import session_scope
from tradewind.models import DagModel, DagRun, LogChunk, TaskInstance, TaskInstanceHistory
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

BROKEN = "from tradewind import DAG\n\nwith DAG('broken'):\n    this is not python\n"


@pytest.fixture
def app_client(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    from scheduler.dag_processing.processor import DagFileProcessor
    from webserver.app import create_app

    for name, source in DAGS.items():
        (dags_folder / name).write_text(textwrap.dedent(source))
    (dags_folder / "broken.py").write_text(BROKEN)
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    with session_scope(session_factory) as session:
        for role in ROLES:
            create_user(session, role, PASSWORD, role)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def login(client: TestClient, role: str = "admin") -> TestClient:
    answer = client.post("/login", data={"username": role, "password": PASSWORD, "next": "/dags"})
    assert answer.status_code == 303, answer.text
    return client


def csrf(client: TestClient, path: str = "/dags") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def paused(factory: sessionmaker[Session], dag_id: str) -> bool:
    with factory() as session:
        model = session.get(DagModel, dag_id)
        assert model is not None
        return model.is_paused


# --- login and sessions -------------------------------------------------------------------


def test_a_page_without_a_login_redirects_to_the_login_form(app_client: TestClient) -> None:
    answer = app_client.get("/dags/etl_daily?page=2")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/dags/etl_daily?page=2"
    form = app_client.get("/login?next=/dags/etl_daily")
    assert form.status_code == 200
    assert 'name="next" value="/dags/etl_daily"' in form.text


def test_a_wrong_password_shows_an_error_and_sets_no_cookie(app_client: TestClient) -> None:
    answer = app_client.post("/login", data={"username": "admin", "password": "nope"})
    assert answer.status_code == 401
    assert "Invalid credentials" in answer.text
    assert "tradewind_session" not in answer.headers.get("set-cookie", "")


def test_the_session_cookie_is_httponly_and_samesite(app_client: TestClient) -> None:
    answer = app_client.post(
        "/login", data={"username": "user", "password": PASSWORD, "next": "/dags/ml_train"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dags/ml_train"
    cookie = answer.headers["set-cookie"].lower()
    assert "tradewind_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_login_never_redirects_to_another_site(app_client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        answer = app_client.post(
            "/login", data={"username": "admin", "password": PASSWORD, "next": target}
        )
        assert answer.headers["location"] == "/dags"


def test_an_api_token_is_not_a_session_cookie(app_client: TestClient) -> None:
    token = app_client.post("/auth/token", json={"username": "admin", "password": PASSWORD})
    app_client.cookies.set("tradewind_session", token.json()["access_token"])
    assert app_client.get("/dags").status_code == 303


def test_logging_out_ends_the_session(app_client: TestClient) -> None:
    login(app_client)
    token = csrf(app_client)
    answer = app_client.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert app_client.get("/dags").status_code == 303


# --- pages --------------------------------------------------------------------------------


def test_the_dag_list_shows_dags_filters_and_the_import_error_banner(
    app_client: TestClient,
) -> None:
    login(app_client, "viewer")
    page = app_client.get("/dags")
    assert page.status_code == 200
    for dag_id in ("etl_daily", "ml_train", "report_a", "mapped"):
        assert f'data-dag-id="{dag_id}"' in page.text
    assert "1 DAG file failed to import" in page.text
    assert "At 00:00, every day" in page.text or "every day" in page.text
    only_ml = app_client.get("/dags?tag=ml")
    assert 'data-dag-id="ml_train"' in only_ml.text
    assert 'data-dag-id="etl_daily"' not in only_ml.text
    search = app_client.get("/dags?q=report")
    assert search.text.count("data-dag-id=") == 3
    active = app_client.get("/dags?show=active")
    assert "No DAG matches these filters" in active.text
    errors = app_client.get("/import-errors")
    assert "broken.py" in errors.text
    assert "line 4" in errors.text


def test_an_empty_dag_list_says_what_to_do(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_scope(session_factory) as session:
        for model in session.scalars(select(DagModel)):
            model.is_stale = True
    login(app_client)
    assert "Drop a DAG file into" in app_client.get("/dags").text


def _trigger(client: TestClient, dag_id: str, **fields: str) -> str:
    token = csrf(client, f"/dags/{dag_id}/trigger")
    answer = client.post(f"/dags/{dag_id}/trigger", data={"csrf_token": token, **fields})
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def test_every_dag_page_renders(app_client: TestClient) -> None:
    login(app_client)
    run_page = _trigger(app_client, "mapped")
    for view in ("", "/graph", "/gantt", "/runs", "/code", "/details"):
        page = app_client.get(f"/dags/mapped{view}")
        assert page.status_code == 200, (view, page.text)
    assert "double.expand" in app_client.get("/dags/mapped/code").text
    assert app_client.get(run_page).status_code == 200
    assert app_client.get(f"{run_page}/tasks/numbers").status_code == 200
    for path in ("/admin/variables", "/admin/connections", "/admin/pools", "/admin/users"):
        assert app_client.get(path).status_code == 200, path


def test_unknown_things_are_friendly_404_pages(app_client: TestClient) -> None:
    login(app_client)
    for path in ("/dags/nope", "/dags/etl_daily/runs/nope", "/no/such/page"):
        answer = app_client.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert "Back to the DAGs" in answer.text
    api = app_client.get("/api/v2/dags/nope")
    assert api.headers["content-type"].startswith("application/json")


def test_bad_query_values_are_a_400_page_not_a_500(app_client: TestClient) -> None:
    login(app_client)
    for path in ("/dags?page=0", "/dags/etl_daily?page=abc", "/dags/etl_daily/runs?state=bogus"):
        answer = app_client.get(path)
        assert answer.status_code == 400, path
        assert "Bad input" in answer.text
    assert app_client.get("/dags?q=%00").status_code == 200


# --- the trigger form ---------------------------------------------------------------------


def test_the_trigger_form_is_generated_from_the_params(app_client: TestClient) -> None:
    login(app_client, "user")
    page = app_client.get("/dags/etl_daily/trigger")
    assert page.status_code == 200
    assert 'name="param.batch"' in page.text
    assert 'value="10"' in page.text
    # Like Airflow's form, a logical date of now is filled in (UTC; the page's script shows
    # it in the viewer's zone), so a task that reads {{ ds }} works in a manual run.
    assert re.search(r'id="logical_date"[^>]*value="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"', page.text)


def test_a_bad_param_is_shown_next_to_its_field_and_nothing_runs(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client, "user")
    token = csrf(app_client, "/dags/etl_daily/trigger")
    answer = app_client.post(
        "/dags/etl_daily/trigger", data={"csrf_token": token, "param.batch": "1000"}
    )
    assert answer.status_code == 400
    field = re.search(r'<div class="field invalid">(.*?)</div>', answer.text, re.S)
    assert field is not None
    assert 'name="param.batch"' in field.group(1)
    assert "1000 is greater than the maximum of 100" in field.group(1)
    assert 'value="1000"' in field.group(1)  # what was typed is kept
    with session_factory() as session:
        assert session.scalars(select(DagRun)).all() == []


def test_a_good_form_queues_a_run_with_its_conf(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client, "user")
    location = _trigger(
        app_client,
        "etl_daily",
        **{"param.batch": "7", "conf": '{"extra": true}', "run_id": "from_the_form"},
    )
    assert location == "/dags/etl_daily/runs/from_the_form"
    with session_factory() as session:
        run = session.scalars(select(DagRun)).one()
    assert (run.run_id, run.conf, run.triggered_by) == (
        "from_the_form",
        {"batch": 7, "extra": True},
        "ui",
    )
    assert run.triggering_user_name == "user"
    again = app_client.post(
        "/dags/etl_daily/trigger",
        data={"csrf_token": csrf(app_client), "param.batch": "7", "run_id": "from_the_form"},
    )
    assert again.status_code == 400
    assert "already has a run" in again.text


def test_a_logical_date_is_read_in_the_browser_s_time_zone(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client)
    _trigger(app_client, "ml_train", logical_date="2024-03-01T09:30", tz_offset="-60")
    with session_factory() as session:
        run = session.scalars(select(DagRun)).one()
    assert run.logical_date is not None
    assert run.logical_date.isoformat() == "2024-03-01T08:30:00+00:00"
    token = csrf(app_client, "/dags/ml_train/trigger")
    again = app_client.post(
        "/dags/ml_train/trigger",
        data={"csrf_token": token, "logical_date": "2024-03-01T09:30", "tz_offset": "-60"},
    )
    assert again.status_code == 400
    field = re.search(r'<div class="field invalid">(.*?)</div>', again.text, re.S)
    assert field is not None
    assert 'id="logical_date"' in field.group(1)
    assert "already has a run" in field.group(1)


# --- CSRF and roles -------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client)
    answer = app_client.post("/dags/ml_train/pause", data={"paused": "false"})
    assert answer.status_code == 403
    forged = app_client.post(
        "/dags/ml_train/pause", data={"paused": "false", "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    assert paused(session_factory, "ml_train")
    good = app_client.post(
        "/dags/ml_train/pause", data={"paused": "false", "csrf_token": csrf(app_client)}
    )
    assert good.status_code == 303
    assert not paused(session_factory, "ml_train")


def test_the_pause_toggle_answers_scripts_with_json(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client)
    answer = app_client.post(
        "/dags/ml_train/pause",
        data={"paused": "false"},
        headers={"X-CSRF-Token": csrf(app_client), "Accept": "application/json"},
    )
    assert answer.json() == {"dag_id": "ml_train", "is_paused": False}
    assert not paused(session_factory, "ml_train")


def test_a_viewer_sees_no_actions_and_cannot_post_them(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client)
    run_page = _trigger(app_client, "ml_train")
    app_client.cookies.clear()
    login(app_client, "viewer")
    dags = app_client.get("/dags").text
    assert "/trigger" not in dags
    assert re.search(r'class="switch"[^>]*disabled', dags, re.S)
    assert "actions-bar" not in app_client.get(run_page).text
    assert app_client.get("/dags/ml_train/trigger").status_code == 403
    assert app_client.get("/admin/users").status_code == 403
    token = csrf(app_client)  # the viewer's own, valid token
    answer = app_client.post("/dags/ml_train/pause", data={"paused": "false", "csrf_token": token})
    assert answer.status_code == 403
    assert paused(session_factory, "ml_train")
    mark = app_client.post(f"{run_page}/mark", data={"state": "success", "csrf_token": token})
    assert mark.status_code == 403


def test_a_token_from_another_session_is_refused(app_client: TestClient) -> None:
    login(app_client, "admin")
    other = csrf(app_client)
    app_client.cookies.clear()
    login(app_client, "admin")  # a new session of the same user
    answer = app_client.post("/dags/ml_train/pause", data={"paused": "false", "csrf_token": other})
    assert answer.status_code == 403


# --- runs, task instances, logs ---------------------------------------------------------


def _finish(factory: sessionmaker[Session], run_id: str, states: dict[str, str]) -> None:
    now = utcnow()
    with session_scope(factory) as session:
        run = session.scalars(select(DagRun).where(DagRun.run_id == run_id)).one()
        run.state, run.start_date, run.end_date = "failed", now, now
        for ti in session.scalars(select(TaskInstance).where(TaskInstance.run_id == run_id)):
            ti.state = states[ti.task_id]
            ti.try_number, ti.start_date, ti.end_date, ti.duration = 1, now, now, 0.5
            session.add(
                LogChunk(
                    dag_run_id=run.id,
                    dag_id=ti.dag_id,
                    run_id=run_id,
                    task_id=ti.task_id,
                    map_index=-1,
                    try_number=1,
                    content=f"line one of {ti.task_id}\nline two\n",
                )
            )


def test_the_run_page_shows_its_tasks_and_clears_the_failed_ones(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client)
    run_page = _trigger(app_client, "etl_daily", run_id="r1")
    _finish(session_factory, "r1", {"extract": "success", "load": "failed"})
    page = app_client.get(run_page)
    assert "badge s-failed" in page.text
    assert "/tasks/load" in page.text
    answer = app_client.post(
        f"{run_page}/clear", data={"only_failed": "true", "csrf_token": csrf(app_client)}
    )
    assert answer.status_code == 303
    with session_factory() as session:
        states = {ti.task_id: ti.state for ti in session.scalars(select(TaskInstance))}
        run = session.scalars(select(DagRun)).one()
        history = session.scalars(select(TaskInstanceHistory)).all()
    assert states == {"extract": "success", "load": None}
    assert run.state == "queued"
    assert [(h.task_id, h.state) for h in history] == [("load", "failed")]
    assert "Cleared" in app_client.get(answer.headers["location"]).text


def test_a_run_can_be_marked_and_then_deleted(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client)
    run_page = _trigger(app_client, "ml_train", run_id="r2")
    token = csrf(app_client)
    assert (
        app_client.post(
            f"{run_page}/mark", data={"state": "success", "csrf_token": token}
        ).status_code
        == 303
    )
    bad = app_client.post(f"{run_page}/mark", data={"state": "running", "csrf_token": token})
    assert bad.status_code == 400
    gone = app_client.post(f"{run_page}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    with session_factory() as session:
        assert session.scalars(select(DagRun)).all() == []


def test_the_task_page_shows_the_log_and_clears_downstream(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client)
    run_page = _trigger(app_client, "etl_daily", run_id="r3")
    _finish(session_factory, "r3", {"extract": "failed", "load": "upstream_failed"})
    page = app_client.get(f"{run_page}/tasks/extract")
    assert page.status_code == 200
    assert "line one of extract" in page.text
    answer = app_client.post(
        f"{run_page}/tasks/extract/clear",
        data={"downstream": "true", "csrf_token": csrf(app_client)},
    )
    assert answer.status_code == 303
    with session_factory() as session:
        states = {ti.task_id: ti.state for ti in session.scalars(select(TaskInstance))}
    assert states == {"extract": None, "load": None}
    marked = app_client.post(
        f"{run_page}/tasks/load/mark", data={"state": "success", "csrf_token": csrf(app_client)}
    )
    assert marked.status_code == 303
    with session_factory() as session:
        load = session.scalars(select(TaskInstance).where(TaskInstance.task_id == "load")).one()
    assert load.state == "success"


def test_the_live_log_returns_only_new_lines(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client)
    run_page = _trigger(app_client, "ml_train", run_id="r4")
    with session_scope(session_factory) as session:
        run = session.scalars(select(DagRun)).one()
        ti = session.scalars(select(TaskInstance)).one()
        ti.state, ti.try_number = "running", 1
        session.add(
            LogChunk(
                dag_run_id=run.id,
                dag_id="ml_train",
                run_id="r4",
                task_id="train",
                map_index=-1,
                try_number=1,
                content="first\n",
            )
        )
    first = app_client.get(f"{run_page}/tasks/train/log?try=1").json()
    assert first["lines"] == ["first"]
    assert first["token"]
    with session_scope(session_factory) as session:
        session.add(
            LogChunk(
                dag_run_id=run.id,
                dag_id="ml_train",
                run_id="r4",
                task_id="train",
                map_index=-1,
                try_number=1,
                content="second\n",
            )
        )
    more = app_client.get(
        f"{run_page}/tasks/train/log", params={"try": 1, "token": first["token"]}
    ).json()
    assert more["lines"] == ["second"]
    assert more["token"]
    page = app_client.get(f"{run_page}/tasks/train")
    assert 'data-token="' in page.text
    assert "Following new lines" in page.text


def test_the_grid_summarises_mapped_tasks_and_refreshes_as_a_fragment(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    login(app_client)
    _trigger(app_client, "mapped", run_id="m1")
    with session_scope(session_factory) as session:
        run = session.scalars(select(DagRun)).one()
        run.state = "running"
        for index, state in enumerate(["success", "success", "running"]):
            session.add(
                TaskInstance(
                    dag_id="mapped", run_id="m1", task_id="double", map_index=index, state=state
                )
            )
        parent = session.scalars(
            select(TaskInstance).where(
                TaskInstance.task_id == "double", TaskInstance.map_index == -1
            )
        ).one()
        session.delete(parent)
    grid = app_client.get("/dags/mapped?fragment=grid")
    assert grid.status_code == 200
    assert grid.text.lstrip().startswith('<section id="grid"')
    assert 'data-live="true"' in grid.text
    assert '<td class="c s-running" title="1 running, 2 success">3</td>' in grid.text


# --- admin ------------------------------------------------------------------------------


def test_an_op_sets_and_deletes_variables_and_secrets_stay_hidden(
    app_client: TestClient,
) -> None:
    login(app_client, "op")
    token = csrf(app_client, "/admin/variables")
    for key, value in (("region", "eu-west-1"), ("db_password", "hunter2")):
        answer = app_client.post(
            "/admin/variables", data={"key": key, "value": value, "csrf_token": token}
        )
        assert answer.status_code == 303
    page = app_client.get("/admin/variables").text
    assert "eu-west-1" in page
    assert "hunter2" not in page
    assert "***" in page
    bad = app_client.post("/admin/variables", data={"key": "", "csrf_token": token})
    assert bad.status_code == 400
    assert "Key: required." in bad.text
    gone = app_client.post("/admin/variables/region/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    assert "eu-west-1" not in app_client.get("/admin/variables").text


def test_an_op_manages_pools_but_a_user_may_not(app_client: TestClient) -> None:
    login(app_client, "op")
    token = csrf(app_client, "/admin/pools")
    made = app_client.post("/admin/pools", data={"name": "gpu", "slots": "2", "csrf_token": token})
    assert made.status_code == 303
    assert "<code>gpu</code>" in app_client.get("/admin/pools").text
    bad = app_client.post("/admin/pools", data={"name": "gpu", "slots": "x", "csrf_token": token})
    assert bad.status_code == 400
    refused = app_client.post("/admin/pools/default_pool/delete", data={"csrf_token": token})
    assert refused.status_code == 400
    app_client.cookies.clear()
    login(app_client, "user")
    user_token = csrf(app_client, "/admin/pools")
    assert "Add a pool" not in app_client.get("/admin/pools").text
    forbidden = app_client.post("/admin/pools/gpu/delete", data={"csrf_token": user_token})
    assert forbidden.status_code == 403


def test_the_task_page_of_a_rescheduled_sensor_shows_its_pokes(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from datetime import timedelta

    from tradewind.models import TaskReschedule

    login(app_client)
    run_page = _trigger(app_client, "etl_daily", run_id="r9")
    now = utcnow()
    with session_scope(session_factory) as session:
        query = select(TaskInstance).where(
            TaskInstance.run_id == "r9", TaskInstance.task_id == "extract"
        )
        ti = session.scalars(query).one()
        ti.state, ti.try_number, ti.next_try_at = "up_for_reschedule", 1, now + timedelta(minutes=1)
        for minutes in (3, 2, 1):
            start = now - timedelta(minutes=minutes)
            session.add(
                TaskReschedule(
                    ti_id=ti.id,
                    try_number=1,
                    start_date=start,
                    end_date=start + timedelta(seconds=1),
                    duration=1.0,
                    reschedule_date=start + timedelta(minutes=1),
                )
            )
    page = app_client.get(f"{run_page}/tasks/extract")
    assert page.status_code == 200
    assert "<dt>Next poke</dt>" in page.text
    pokes = re.search(r'<dd id="ti-pokes">(\d+) in this try since', page.text)
    assert pokes is not None
    assert pokes.group(1) == "3"
    assert 'data-live="true"' in page.text  # waiting sensors refresh in place


def test_the_task_page_of_a_trigger_links_to_the_run_it_started(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from tradewind import xcom

    login(app_client)
    run_page = _trigger(app_client, "etl_daily", run_id="r10")
    target_page = _trigger(app_client, "ml_train", run_id="started_by_r10")
    _finish(session_factory, "r10", {"extract": "success", "load": "success"})
    with session_scope(session_factory) as session:
        run = session.scalars(select(DagRun).where(DagRun.run_id == "r10")).one()
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.run_id == "r10", TaskInstance.task_id == "extract"
            )
        ).one()
        ti.rendered_fields = {"trigger_dag_id": "ml_train"}
        owner = xcom.XComOwner(run.id, "etl_daily", "r10", "extract", -1)
        xcom.store(session, owner, "trigger_run_id", "started_by_r10")
    page = app_client.get(f"{run_page}/tasks/extract")
    assert page.status_code == 200
    link = re.search(r'<a id="ti-triggered" href="([^"]+)">', page.text)
    assert link is not None
    assert link.group(1) == target_page
    assert app_client.get(link.group(1)).status_code == 200
    plain = app_client.get(f"{run_page}/tasks/load")
    assert 'id="ti-triggered"' not in plain.text


def test_the_task_page_of_a_deferred_task_names_its_trigger_and_triggerer(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from datetime import timedelta

    from tradewind import jobs
    from tradewind.models import Trigger

    login(app_client)
    run_page = _trigger(app_client, "etl_daily", run_id="r10")
    now = utcnow()
    with session_scope(session_factory) as session:
        query = select(TaskInstance).where(
            TaskInstance.run_id == "r10", TaskInstance.task_id == "extract"
        )
        ti = session.scalars(query).one()
        trigger = Trigger(
            classpath="tradewind.triggers.file.FileTrigger",
            kwargs={"filepath": "/landing/x.csv"},
            created_date=now,
        )
        session.add(trigger)
        session.flush()
        ti.state, ti.try_number, ti.trigger_id = "deferred", 1, trigger.id
        ti.trigger_timeout = now + timedelta(hours=1)
    page = app_client.get(f"{run_page}/tasks/extract")
    assert "FileTrigger" in page.text
    assert "is <code>tradewind triggerer</code> running?" in page.text
    token = app_client.post("/auth/token", json={"username": "viewer", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    url = "/api/v2/dags/etl_daily/dagRuns/r10/taskInstances/extract"
    api = app_client.get(url, headers=bearer)
    assert api.json()["trigger"]["classpath"] == "tradewind.triggers.file.FileTrigger"
    assert api.json()["triggerer_job"] is None

    with session_scope(session_factory) as session:
        job = jobs.start_job(session, "triggerer", now=now, hostname="trig-1")
        session.get(Trigger, trigger.id).triggerer_id = job.id  # type: ignore[union-attr]
    page = app_client.get(f"{run_page}/tasks/extract")
    assert "run by triggerer" in page.text
    assert "trig-1" in page.text
    assert "<dt>Deferral timeout</dt>" in page.text
    api = app_client.get(url, headers=bearer)
    assert api.json()["triggerer_job"]["hostname"] == "trig-1"


def test_the_runs_page_shows_backfill_runs_and_each_backfill_s_progress(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from datetime import UTC, datetime

    from scheduler.backfills import advance_backfills
    from tradewind import backfills
    from tradewind.dags import set_paused

    login(app_client)
    assert 'id="backfills"' not in app_client.get("/dags/etl_daily/runs").text
    with session_scope(session_factory) as session:
        set_paused(session, ["etl_daily"], paused=False)
        request = backfills.BackfillRequest(
            dag_id="etl_daily",
            from_date=datetime(2026, 1, 1, tzinfo=UTC),
            to_date=datetime(2026, 1, 5, tzinfo=UTC),
            max_active_runs=2,
        )
        backfills.create_backfill(session, request, now=utcnow())
    with session_scope(session_factory) as session:
        advance_backfills(session, utcnow())
    page = app_client.get("/dags/etl_daily/runs")
    assert page.status_code == 200
    assert 'id="backfills"' in page.text
    assert '<progress max="5" value="0"' in page.text
    assert "0/5 done · 2 running" in page.text
    assert page.text.count('class="rtype rt-backfill"') == 2


def test_the_assets_pages_show_lineage_and_events(
    app_client: TestClient,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    from scheduler.dag_processing.processor import DagFileProcessor
    from tests.integration.test_assets import BOTH, CONSUMER, PRODUCERS
    from tradewind.asset_events import ensure_asset, record_event

    login(app_client)
    empty = app_client.get("/assets")
    assert empty.status_code == 200
    assert "No assets yet" in empty.text
    (dags_folder / "producers.py").write_text(textwrap.dedent(PRODUCERS))
    (dags_folder / "train.py").write_text(textwrap.dedent(CONSUMER.format(schedule=BOTH)))
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    with session_scope(session_factory) as session:
        labels = ensure_asset(session, "s3://lake/labels")
        record_event(session, labels, now=utcnow(), extra={"rows": 7})
        labels_id = labels.id
    page = app_client.get("/assets")
    assert page.status_code == 200
    assert 'aria-current="page">Assets' in page.text
    for node in ("dag:make_labels", "dag:make_features", "dag:train", f"asset:{labels_id}"):
        assert f'data-node="{node}"' in page.text
    assert page.text.count('<path class="edge"') == 4  # two producers, two schedules
    row = re.search(rf'<tr data-asset="{labels_id}">(.*?)</tr>', page.text, re.S)
    assert row is not None
    assert "make_labels</a>.label" in row.group(1)
    assert ">train</a>" in row.group(1)
    one = app_client.get(f"/assets/{labels_id}")
    assert one.status_code == 200
    assert "&#34;rows&#34;: 7" in one.text or '"rows": 7' in one.text
    assert "outside" in one.text  # the event came from outside, not from a task
    assert app_client.get("/assets/999").status_code == 404


def test_a_backfill_is_paused_resumed_and_cancelled_from_the_runs_page(
    app_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from datetime import UTC, datetime

    from tradewind import backfills
    from tradewind.models import Backfill

    with session_scope(session_factory) as session:
        request = backfills.BackfillRequest(
            dag_id="etl_daily",
            from_date=datetime(2026, 1, 1, tzinfo=UTC),
            to_date=datetime(2026, 1, 3, tzinfo=UTC),
        )
        backfill_id = backfills.create_backfill(session, request, now=utcnow()).id
    base = f"/dags/etl_daily/backfills/{backfill_id}"

    def state() -> tuple[bool, bool]:
        with session_factory() as session:
            row = session.get(Backfill, backfill_id)
            assert row is not None
            return row.is_paused, row.completed_at is not None

    login(app_client, "viewer")
    page = app_client.get("/dags/etl_daily/runs")
    assert f'action="{base}/pause"' not in page.text  # a viewer gets no buttons
    token = csrf(app_client, "/dags/etl_daily/runs")
    assert app_client.post(f"{base}/pause", data={"csrf_token": token}).status_code == 403

    login(app_client, "user")
    token = csrf(app_client, "/dags/etl_daily/runs")
    assert app_client.post(f"{base}/pause", data={}).status_code == 403  # no CSRF token
    paused = app_client.post(f"{base}/pause", data={"csrf_token": token})
    assert (paused.status_code, paused.headers["location"]) == (
        303,
        "/dags/etl_daily/runs?notice=pause",
    )
    assert state() == (True, False)
    page = app_client.get(paused.headers["location"])
    assert "Backfill paused" in page.text
    assert f'action="{base}/unpause"' in page.text
    assert app_client.post(f"{base}/unpause", data={"csrf_token": token}).status_code == 303
    assert state() == (False, False)
    assert app_client.post(f"{base}/cancel", data={"csrf_token": token}).status_code == 303
    assert state() == (True, True)
    again = app_client.post(f"{base}/pause", data={"csrf_token": token})
    assert again.status_code == 409
    assert f'action="{base}/cancel"' not in app_client.get("/dags/etl_daily/runs").text
    other = app_client.post("/dags/ml_train/backfills/1/pause", data={"csrf_token": token})
    assert other.status_code == 404
    bad = app_client.post(f"{base}/explode", data={"csrf_token": token})
    assert bad.status_code in (400, 404, 422)
