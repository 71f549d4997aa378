"""The web UI in a real browser (Chromium driven by Playwright) against `tradewind standalone`.

One standalone process serves the module. The test walks through the UI the way a user
does: log in, find the DAGs and the file that fails to import, unpause and trigger a DAG,
watch it run, read its graph and logs, fix a failing task and clear it, and finally look
at everything as a viewer, who may change nothing.

Every page visited is photographed (full page) into
``$TRADEWIND_TEST_ARTIFACTS/screenshots`` (a temporary folder when unset), and anything
the browser complains about fails the test: a console error, an uncaught script error, a
failed request or an HTTP error answer, except the refusals the test causes on purpose.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Frame,
    Locator,
    Page,
    Request,
    Response,
    expect,
)

from tests.e2e.browser import chromium
from tests.integration.daemons import wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SOON = 15_000  # ms: a page reacting to a click
RUN_ENDS = 120_000  # ms: a run of the example DAGs finishing (they take seconds)

ML = "ml_training_pipeline"
EXAMPLE_DAGS = (ML, "bash_and_templates", "partition_features", "segment_training")
NEEDS_MARKER = "needs_marker"

NEEDS_MARKER_DAG = '''
"""Fails until a marker file exists; the UI test creates it, then clears the task."""
import logging
import time
from pathlib import Path

from tradewind import DAG, task

MARKER = Path({marker!r})

with DAG("needs_marker"):

    @task
    def check_marker():
        if not MARKER.exists():
            raise RuntimeError(f"The marker file {{MARKER}} is missing")
        logging.getLogger(__name__).info("Found the marker file %s", MARKER)
        time.sleep(3)  # long enough for the user to watch it run
        return "found"

    @task
    def report(found):
        return f"the marker was {{found}}"

    report(check_marker())
'''

BROKEN_DAG = """\
from tradewind import DAG

with DAG("broken") as dag:
    this line is not python
"""
BROKEN_LINE = 4


# --- the standalone process -------------------------------------------------------------


@dataclass
class Standalone:
    url: str
    env: dict[str, str]
    admin_password: str
    marker: Path  # the file the needs_marker DAG's task looks for
    _token: str = ""

    def api(self, path: str) -> Any:
        """GET a REST API path as the admin, with a bearer token."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            if not self._token:
                login = {"username": "admin", "password": self.admin_password}
                answer = client.post("/auth/token", json=login)
                assert answer.status_code == 201, answer.text
                self._token = answer.json()["access_token"]
            answer = client.get(path, headers={"Authorization": f"Bearer {self._token}"})
            assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.text}"
            return answer.json()

    def manual_runs(self, dag_id: str) -> list[str]:
        """The ids of the DAG's runs someone triggered (not the schedule's)."""
        runs = self.api(f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
        return [r["dag_run_id"] for r in runs if r["run_type"] == "manual"]

    def create_user(self, username: str, role: str, password: str) -> None:
        command = [sys.executable, "-m", "tradewind.cli.main", "users", "create"]
        command += ["--username", username, "--role", role, "--password", password]
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots (and the standalone log) go; read before the per-test
    fixture strips TRADEWIND_* variables from the environment."""
    chosen = os.environ.get("TRADEWIND_TEST_ARTIFACTS")
    base = Path(chosen) if chosen else tmp_path_factory.mktemp("ui_artifacts")
    (base / "screenshots").mkdir(parents=True, exist_ok=True)
    for old in (base / "screenshots").glob("*.png"):
        old.unlink()
    return base


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Standalone]:
    """`tradewind standalone` on a free port over a DAG folder holding the examples, a DAG
    that fails until a marker file exists, and a file with a syntax error."""
    root = tmp_path_factory.mktemp("ui_standalone")
    home, dags, marker = root / "home", root / "dags", root / "marker"
    dags.mkdir()
    for dag_id in EXAMPLE_DAGS:
        shutil.copy(REPO / "dags" / f"{dag_id}.py", dags)
    (dags / f"{NEEDS_MARKER}.py").write_text(NEEDS_MARKER_DAG.format(marker=str(marker)))
    (dags / "broken.py").write_text(BROKEN_DAG)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update(
        TRADEWIND_HOME=str(home),
        TRADEWIND_DAGS_FOLDER=str(dags),
        TRADEWIND_API_PORT=str(port),
        TRADEWIND_UI_REFRESH_SECONDS="0.5",
    )
    log = artifacts / "standalone.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tradewind.cli.main", "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: _answers(f"{url}/api/v2/monitor/health"), "the webserver to answer")
            password = (home / "standalone_admin_password.txt").read_text().strip()
            server = Standalone(url=url, env=env, admin_password=password, marker=marker)
            wanted = {*EXAMPLE_DAGS, NEEDS_MARKER}
            wait_for(
                lambda: wanted <= {d["dag_id"] for d in server.api("/api/v2/dags")["dags"]},
                "every DAG to be parsed",
            )
            wait_for(
                lambda: server.api("/api/v2/importErrors")["total_entries"] == 1,
                "the broken file's import error",
            )
            yield server
        finally:
            _stop(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a user stops it; the process group is killed only if that fails."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@dataclass
class Album:
    """The screenshots of the test, numbered in the order they were taken."""

    directory: Path
    taken: int = 0

    def path(self, who: str, name: str) -> Path:
        self.taken += 1
        return self.directory / f"{self.taken:02d}-{who}-{name}.png"


def _path(url: str) -> str:
    return unquote(urlsplit(url).path)


@dataclass
class Tab:
    """One user's browser tab. Each page it shows is photographed, and every complaint of
    the browser is kept, except the error answers the test causes on purpose."""

    page: Page
    who: str
    album: Album
    problems: list[str] = field(default_factory=list)
    expected: set[tuple[int, str]] = field(default_factory=set)  # (status, path)
    refusals: list[tuple[int, str]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    photographed: set[str] = field(default_factory=set)

    @classmethod
    def open_for(cls, browser: Browser, base_url: str, who: str, album: Album) -> Tab:
        context = browser.new_context(
            base_url=base_url, timezone_id="UTC", viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(SOON)
        tab = cls(page=context.new_page(), who=who, album=album)
        tab.page.on("console", tab._console)
        tab.page.on("pageerror", lambda error: tab.problems.append(f"script error: {error}"))
        tab.page.on("requestfailed", tab._request_failed)
        tab.page.on("response", tab._response)
        tab.page.on("dialog", tab._dialog)
        tab.page.on("framenavigated", tab._navigated)
        return tab

    # What the browser reports.
    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = re.search(r"the server responded with a status of (\d+)", message.text)
        where = _path(message.location.get("url", ""))
        if status and (int(status.group(1)), where) in self.expected:
            return  # Chromium's note about an error answer the test asked for
        self.problems.append(f"console error on {self.page.url}: {message.text} ({where})")

    def _request_failed(self, request: Request) -> None:
        # A live part's fetch still in flight when the user opens another page is
        # cancelled by the browser; that is the page going away, not a failure.
        if request.resource_type == "fetch" and request.failure == "net::ERR_ABORTED":
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status < 400:
            return
        key = (response.status, _path(response.url))
        if key in self.expected:
            self.refusals.append(key)
        else:
            request = response.request
            self.problems.append(f"HTTP {response.status}: {request.method} {response.url}")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def _navigated(self, frame: Frame) -> None:
        if frame == self.page.main_frame and frame.url.startswith("http"):
            self.visited.append(frame.url)

    # What the user does.
    def shot(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        self.page.screenshot(path=self.album.path(self.who, name), full_page=True)
        self.photographed.add(self.page.url)

    def open(self, path: str, name: str) -> None:
        """Type a URL into the address bar."""
        response = self.page.goto(path)
        assert response is not None
        assert response.ok, f"{path}: HTTP {response.status}"
        self.shot(name)

    def follow(self, link: Locator, url: str | re.Pattern[str], name: str) -> None:
        """Click something that opens another page."""
        link.click()
        self.page.wait_for_url(url)
        self.shot(name)

    @contextmanager
    def refused(self, status: int, path: str) -> Iterator[None]:
        """The test is about to cause this error answer on purpose; it must come."""
        self.expected.add((status, path))
        yield
        wait_for(lambda: (status, path) in self.refusals, f"HTTP {status} from {path}", 30)

    def mark_page(self) -> None:
        """Tag the loaded document: the tag survives in-place updates, not a reload."""
        self.page.evaluate("window.__sameDocument = true")

    def assert_same_page(self) -> None:
        assert self.page.evaluate("window.__sameDocument === true"), "the page was reloaded"

    def csrf_token(self) -> str:
        token = self.page.evaluate("document.body.dataset.csrf")
        assert isinstance(token, str)
        assert token
        return token

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)
        missing = [url for url in self.visited if url not in self.photographed]
        assert not missing, f"pages visited without a screenshot: {missing}"


def _badge(state: str) -> str:
    return f".badge.s-{state}"


# --- the walk-through ---------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_a_user_runs_dags_from_the_web_ui(
    standalone: Standalone,
    browser: Browser,
    artifacts: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    album = Album(artifacts / "screenshots")
    with capsys.disabled():
        print(f"\nUI screenshots: {album.directory}")
    admin = Tab.open_for(browser, standalone.url, "admin", album)
    log_in_and_find_the_dags(admin, standalone)
    unpause_with_the_switch(admin, standalone)
    run_id = trigger_with_params(admin, standalone)
    watch_the_grid_turn_green(admin, run_id)
    read_the_graph_and_a_log(admin, run_id)
    browse_the_other_views(admin, run_id)
    fix_a_failing_task_and_clear_it(admin, standalone)
    standalone.create_user("viewer", "viewer", "viewer-password-1")
    browse_the_admin_pages(admin)
    viewer = Tab.open_for(browser, standalone.url, "viewer", album)
    a_viewer_sees_no_actions(viewer, run_id)
    forged_posts_are_refused(viewer, admin, standalone)
    viewer_logs_out(viewer)
    admin.assert_clean()
    viewer.assert_clean()


def log_in_and_find_the_dags(tab: Tab, server: Standalone) -> None:
    """The DAG list asks for a login; a wrong password says so; then the DAGs are listed
    with a banner about the file that failed to import, which leads to its error."""
    page = tab.page
    tab.open("/dags", "login-form")
    expect(page).to_have_url(re.compile(r"/login\?next=/dags$"))
    page.fill("#username", "admin")
    page.fill("#password", "not-the-password")
    with tab.refused(401, "/login"):
        page.click("form[action='/login'] button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("Invalid credentials")
    tab.shot("login-wrong-password")
    expect(page.locator("#username")).to_have_value("admin")
    page.fill("#password", server.admin_password)
    tab.follow(page.locator("form[action='/login'] button[type=submit]"), "**/dags", "dag-list")
    for dag_id in (*EXAMPLE_DAGS, NEEDS_MARKER):
        row = page.locator(f"tr[data-dag-id='{dag_id}']")
        expect(row.locator("a.dag-name")).to_have_text(dag_id)
        expect(row.locator("button.switch[role=switch]")).to_have_attribute("aria-checked", "false")
    banner = page.locator(".banner.warn a[href='/import-errors']")
    expect(banner).to_contain_text("1 DAG file failed to import")
    tab.follow(banner, "**/import-errors", "import-errors")
    error = page.locator("details.import-error summary")
    expect(error).to_have_count(1)
    expect(error).to_contain_text("broken.py")
    expect(error).to_contain_text(f"line {BROKEN_LINE}")
    expect(page.locator("details.import-error p.error")).to_contain_text("SyntaxError")


def unpause_with_the_switch(tab: Tab, server: Standalone) -> None:
    """The switch flips in place (no reload), and the API agrees the DAG is active."""
    page = tab.page
    tab.follow(page.locator("header nav a[href='/dags']"), "**/dags", "dag-list-paused")
    assert server.api(f"/api/v2/dags/{ML}")["is_paused"] is True
    switch = page.locator(f"tr[data-dag-id='{ML}'] form[data-toggle-pause] button.switch")
    expect(switch).to_have_attribute("aria-checked", "false")
    tab.mark_page()
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(switch).to_have_attribute("title", "Active: click to pause")
    tab.assert_same_page()
    tab.shot("dag-list-unpaused")
    assert server.api(f"/api/v2/dags/{ML}")["is_paused"] is False


def trigger_with_params(tab: Tab, server: Standalone) -> str:
    """Wrong values come back with an error next to each wrong field; good ones queue
    the run and open its page. Returns the run's id."""
    page = tab.page
    trigger_link = page.locator(f"tr[data-dag-id='{ML}'] a[aria-label='Trigger {ML}']")
    tab.follow(trigger_link, f"**/dags/{ML}/trigger", "trigger-form")
    rows, threshold = (
        page.locator("[name='param.sample_rows']"),
        page.locator("[name='param.accuracy_threshold']"),
    )
    expect(rows).to_have_value("2000")
    rows.fill("50")  # its minimum is 200
    threshold.fill("high")  # not a number
    with tab.refused(400, f"/dags/{ML}/trigger"):
        page.click("form.trigger button[type=submit]")
        expect(page.locator(".field.invalid")).to_have_count(2)
    tab.shot("trigger-form-errors")
    rows_field = page.locator(".field.invalid", has=page.locator("[name='param.sample_rows']"))
    expect(rows_field.locator("p.field-error")).to_contain_text("less than the minimum of 200")
    expect(rows).to_have_value("50")  # what was typed is kept
    threshold_field = page.locator(
        ".field.invalid", has=page.locator("[name='param.accuracy_threshold']")
    )
    expect(threshold_field.locator("p.field-error")).to_contain_text("'high' is not a number")
    seed_field = page.locator(".field", has=page.locator("[name='param.seed']"))
    expect(seed_field).not_to_have_class(re.compile(r"\binvalid\b"))
    assert server.manual_runs(ML) == []

    # The biggest sample keeps the run going for a few seconds: long enough to watch it.
    rows.fill("100000")
    threshold.fill("0.8")
    # The logical date is left as the form fills it in (now): the example's tasks use
    # `ds`, which only a run with a logical date has.
    expect(page.locator("#logical_date")).not_to_have_value("")
    page.click("form.trigger button[type=submit]")
    page.wait_for_url(re.compile(rf"/dags/{ML}/runs/[^/]+$"))
    tab.shot("run-page-queued")
    run_id = unquote(urlsplit(page.url).path.rsplit("/", 1)[1])
    assert run_id.startswith("manual__"), run_id
    expect(page.locator("h1 code")).to_have_text(run_id)
    expect(page.locator("#run-body pre.json")).to_contain_text('"sample_rows": 100000')
    run = server.api(f"/api/v2/dags/{ML}/dagRuns/{quote(run_id, safe='')}")
    assert run["conf"] == {"accuracy_threshold": 0.8, "sample_rows": 100000, "seed": 7}
    assert run["logical_date"] is not None
    assert run["triggered_by"] == "ui"
    assert run["triggering_user_name"] == "admin"
    assert server.manual_runs(ML) == [run_id]
    return run_id


CELL_CLASSES = """run => {
  const table = document.querySelector("#grid table.grid");
  const column = [...table.tHead.rows[0].cells].findIndex(c => c.dataset.run === run);
  return Object.fromEntries(
    [...table.tBodies[0].rows].map(r => [r.dataset.task, r.cells[column].className]));
}"""


def watch_the_grid_turn_green(tab: Tab, run_id: str) -> None:
    """The grid shows the run while it runs and turns green in place, without a reload."""
    page = tab.page
    tab.follow(page.locator(f".crumbs a[href='/dags/{ML}']"), f"**/dags/{ML}", "grid-running")
    expect(page.locator("#grid")).to_have_attribute("data-live", "true")
    bar = page.locator(f"#grid th[data-run='{run_id}'] a.bar")
    expect(bar).not_to_have_class(re.compile(r"\bs-success\b"))
    tab.mark_page()
    page.evaluate("document.getElementById('grid').dataset.firstCopy = 'yes'")
    expect(bar).to_have_class(re.compile(r"\bs-success\b"), timeout=RUN_ENDS)
    tab.assert_same_page()
    expect(page.locator("#grid")).not_to_have_attribute("data-first-copy", "yes")  # re-fetched
    expect(page.locator("#grid")).to_have_attribute("data-live", "false")
    tab.shot("grid-success")
    cells = page.evaluate(CELL_CLASSES, run_id)
    assert set(cells) == {
        "extract",
        "validate",
        "build_features",
        "train",
        "evaluate",
        "choose_path",
        "deploy",
        "notify_low_accuracy",
        "publish_report",
    }
    states = {task: re.sub(r".*\bs-(\w+).*", r"\1", classes) for task, classes in cells.items()}
    assert {states["deploy"], states["notify_low_accuracy"]} == {"success", "skipped"}, states
    others = {t: s for t, s in states.items() if t not in ("deploy", "notify_low_accuracy")}
    assert set(others.values()) == {"success"}, states


def read_the_graph_and_a_log(tab: Tab, run_id: str) -> None:
    """From the run, the graph colours each task by its state, and a task's page shows
    the lines its try logged."""
    page = tab.page
    bar = page.locator(f"#grid th[data-run='{run_id}'] a.bar")
    tab.follow(bar, re.compile(r"/runs/[^/]+$"), "run-success")
    expect(page.locator("#run-state")).to_contain_text("success")
    expect(page.locator(f"#run-state {_badge('success')}")).to_be_visible()
    graph_link = page.locator(".heading a", has_text="Graph")
    tab.follow(graph_link, re.compile(rf"/dags/{ML}/graph\?run_id="), "graph")
    expect(page.locator("#run-picker")).to_have_value(run_id)
    nodes = page.locator("svg.graph a.node")
    expect(nodes).to_have_count(9)
    expect(page.locator("svg.graph a.node[data-task='train'] rect")).to_have_class("s-success")
    for task_id in ("extract", "validate", "build_features", "evaluate", "publish_report"):
        rect = page.locator(f"svg.graph a.node[data-task='{task_id}'] rect")
        expect(rect).to_have_class("s-success")
    branches = page.locator(
        "svg.graph a.node[data-task='deploy'] rect, "
        "svg.graph a.node[data-task='notify_low_accuracy'] rect"
    )
    assert sorted(branches.evaluate_all("els => els.map(e => e.getAttribute('class'))")) == [
        "s-skipped",
        "s-success",
    ]
    train = page.locator("svg.graph a.node[data-task='train']")
    tab.follow(train, re.compile(r"/tasks/train$"), "task-train")
    expect(page.locator(f"#ti-state-badge {_badge('success')}")).to_be_visible()
    log = page.locator("pre#log")
    expect(log).to_contain_text("Trained on 80000 rows")
    expect(log).to_contain_text("Try 1 ends: success")


def browse_the_other_views(tab: Tab, run_id: str) -> None:
    """Gantt, Runs, Code and Details of the DAG show the run, the source and the params."""
    page = tab.page
    tabs = page.locator("nav.tabs[aria-label='DAG views']")
    tab.follow(page.locator(f".crumbs a[href='/dags/{ML}']"), f"**/dags/{ML}", "grid")
    tab.follow(tabs.get_by_role("link", name="Gantt"), f"**/dags/{ML}/gantt", "gantt")
    expect(page.locator("table.gantt th[scope=row] a", has_text="train")).to_be_visible()
    tab.follow(tabs.get_by_role("link", name="Runs"), f"**/dags/{ML}/runs", "runs")
    expect(page.locator("td a", has_text=run_id)).to_be_visible()
    tab.follow(tabs.get_by_role("link", name="Code"), f"**/dags/{ML}/code", "code")
    expect(page.locator("pre.code")).to_contain_text("def ml_training_pipeline()")
    tab.follow(tabs.get_by_role("link", name="Details"), f"**/dags/{ML}/details", "details")
    expect(page.locator("td code", has_text="sample_rows")).to_be_visible()


def fix_a_failing_task_and_clear_it(tab: Tab, server: Standalone) -> None:
    """A task fails; once its cause is fixed, Clear (confirmed) runs it again, and the
    page shows it succeed in place, its downstream task too."""
    page = tab.page
    tab.follow(page.locator("header nav a[href='/dags']"), "**/dags", "dag-list-before-flaky")
    tab.follow(
        page.locator(f"tr[data-dag-id='{NEEDS_MARKER}'] a.dag-name"),
        f"**/dags/{NEEDS_MARKER}",
        "flaky-grid-empty",
    )
    switch = page.locator(".dag-head form[data-toggle-pause] button.switch")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    assert server.api(f"/api/v2/dags/{NEEDS_MARKER}")["is_paused"] is False
    trigger = page.locator(".dag-head a.button", has_text="Trigger")
    tab.follow(trigger, f"**/dags/{NEEDS_MARKER}/trigger", "flaky-trigger-form")
    page.click("form.trigger button[type=submit]")
    page.wait_for_url(re.compile(rf"/dags/{NEEDS_MARKER}/runs/[^/]+$"))
    tab.mark_page()
    expect(page.locator(f"#run-state {_badge('failed')}")).to_be_visible(timeout=RUN_ENDS)
    tab.assert_same_page()
    tasks = page.locator("#run-body table.tis")
    expect(tasks.locator(f"tr[data-task='check_marker'] {_badge('failed')}")).to_be_visible()
    expect(tasks.locator(f"tr[data-task='report'] {_badge('upstream_failed')}")).to_be_visible()
    tab.shot("flaky-run-failed")

    tab.follow(
        tasks.locator("tr[data-task='check_marker'] a"),
        re.compile(r"/tasks/check_marker$"),
        "flaky-task-failed",
    )
    expect(page.locator(f"#ti-state-badge {_badge('failed')}")).to_be_visible()
    expect(page.locator("pre#log")).to_contain_text("is missing")
    server.marker.write_text("present\n")
    clear = page.locator(".actions-bar form[action$='/clear'] button[type=submit]")
    tab.follow(clear, re.compile(r"/tasks/check_marker\?notice=cleared$"), "flaky-task-cleared")
    assert tab.dialogs[-1].startswith("Clear this task instance")
    expect(page.locator(".flash.ok")).to_have_text("Cleared: it will run again.")
    expect(page.locator("#ti-state")).to_have_attribute("data-live", "true")
    tab.mark_page()
    expect(page.locator(f"#ti-state-badge {_badge('success')}")).to_be_visible(timeout=RUN_ENDS)
    tab.assert_same_page()
    tab.shot("flaky-task-success")

    tab.follow(page.locator(".crumbs a[href*='/runs/']"), re.compile(r"/runs/[^/]+$"), "flaky-run")
    expect(page.locator(f"#run-state {_badge('success')}")).to_be_visible(timeout=RUN_ENDS)
    expect(tasks.locator(f"tr[data-task='report'] {_badge('success')}")).to_be_visible()
    tab.shot("flaky-run-success")
    tab.follow(
        tasks.locator("tr[data-task='check_marker'] a"),
        re.compile(r"/tasks/check_marker$"),
        "flaky-task-tries",
    )
    tries = page.locator("nav.tabs[aria-label='Tries'] a")
    expect(tries).to_have_text(["Try 1", "Try 2"])
    expect(page.locator("pre#log")).to_contain_text("Found the marker file")
    tab.follow(tries.first, re.compile(r"/tasks/check_marker\?try=1$"), "flaky-task-try-1")
    expect(page.locator("pre#log")).to_contain_text("is missing")


def browse_the_admin_pages(tab: Tab) -> None:
    """An admin sees the assets (with their lineage), pools, variables, connections and
    users pages."""
    page = tab.page
    nav = page.locator("header nav")
    tab.follow(nav.get_by_role("link", name="Assets"), "**/assets", "assets")
    row = page.locator("table#assets tr", has_text="feature_window")
    expect(row).to_contain_text("partition_features.aggregate_window")
    expect(page.locator("svg.lineage a[data-node='dag:partition_features']")).to_be_visible()
    tab.follow(row.get_by_role("link", name="feature_window"), "**/assets/*", "asset")
    expect(page.locator("h1")).to_have_text("feature_window")
    tab.follow(nav.get_by_role("link", name="Pools"), "**/admin/pools", "pools")
    expect(page.locator("td code", has_text="default_pool")).to_be_visible()
    tab.follow(nav.get_by_role("link", name="Variables"), "**/admin/variables", "variables")
    expect(page.locator("h1")).to_contain_text("Variables")
    tab.follow(nav.get_by_role("link", name="Connections"), "**/admin/connections", "connections")
    expect(page.locator("h1")).to_contain_text("Connections")
    tab.follow(nav.get_by_role("link", name="Users"), "**/admin/users", "users")
    users = page.locator("table tbody tr")
    expect(users.filter(has_text="viewer")).to_have_count(1)
    expect(users.filter(has_text="admin")).to_have_count(1)


def a_viewer_sees_no_actions(tab: Tab, run_id: str) -> None:
    """A viewer can look at everything but has no Trigger link, a disabled switch, no
    action buttons, and the trigger form is not for them."""
    page = tab.page
    tab.open("/login", "login-form")
    page.fill("#username", "viewer")
    page.fill("#password", "viewer-password-1")
    tab.follow(page.locator("form[action='/login'] button[type=submit]"), "**/dags", "dags")
    expect(page.locator("header .who .role")).to_have_text("viewer")
    expect(page.locator("header nav a[href='/admin/users']")).to_have_count(0)
    expect(page.locator("tr[data-dag-id]")).to_have_count(len(EXAMPLE_DAGS) + 1)
    expect(page.locator("a", has_text="Trigger")).to_have_count(0)
    switches = page.locator("button.switch[role=switch]")
    expect(switches).to_have_count(len(EXAMPLE_DAGS) + 1)
    for index in range(switches.count()):
        expect(switches.nth(index)).to_be_disabled()
    expect(page.locator(f"tr[data-dag-id='{ML}'] button.switch")).to_have_attribute(
        "aria-checked", "true"
    )

    tab.follow(page.locator(f"tr[data-dag-id='{ML}'] a.dag-name"), f"**/dags/{ML}", "grid")
    expect(page.locator(".dag-head button.switch")).to_be_disabled()
    expect(page.locator(".dag-head a", has_text="Trigger")).to_have_count(0)
    expect(page.locator(f"#grid th[data-run='{run_id}'] a.bar.s-success")).to_be_visible()
    with tab.refused(403, f"/dags/{ML}/trigger"):
        page.goto(f"/dags/{ML}/trigger")
    expect(page.locator("h1")).to_have_text("Not allowed")
    tab.shot("trigger-refused")

    tab.open(f"/dags/{ML}", "grid-again")
    bar = page.locator(f"#grid th[data-run='{run_id}'] a.bar")
    tab.follow(bar, re.compile(r"/runs/[^/]+$"), "run")
    expect(page.locator(f"#run-state {_badge('success')}")).to_be_visible()
    expect(page.locator(".actions-bar")).to_have_count(0)
    expect(page.locator("form[action*='/clear'], form[action*='/mark']")).to_have_count(0)
    tab.follow(
        page.locator("#run-body tr[data-task='train'] a"), re.compile(r"/tasks/train$"), "ti"
    )
    expect(page.locator(".actions-bar")).to_have_count(0)
    expect(page.locator("pre#log")).to_contain_text("Trained on")


def forged_posts_are_refused(viewer: Tab, admin: Tab, server: Standalone) -> None:
    """Posts made without the page's buttons are refused with 403 and change nothing: a
    viewer's, with or without a security token, and an admin's without its own token."""
    runs_before = server.manual_runs(ML)
    viewer_token = viewer.csrf_token()
    pause = {"paused": "true"}
    attempts = [
        (viewer, f"/dags/{ML}/pause", pause, {}),
        (viewer, f"/dags/{ML}/pause", {**pause, "csrf_token": "forged"}, {}),
        (viewer, f"/dags/{ML}/pause", {**pause, "csrf_token": viewer_token}, {}),
        (viewer, f"/dags/{ML}/pause", pause, {"X-CSRF-Token": viewer_token}),
        (viewer, f"/dags/{ML}/trigger", {"csrf_token": viewer_token}, {}),
        (admin, f"/dags/{ML}/pause", pause, {}),
        (admin, f"/dags/{ML}/pause", {**pause, "csrf_token": viewer_token}, {}),
        (admin, f"/dags/{ML}/trigger", {"csrf_token": viewer_token}, {}),
    ]
    for tab, path, form, headers in attempts:
        answer = tab.page.request.post(path, form=form, headers=headers, max_redirects=0)
        assert answer.status == 403, f"{tab.who} POST {path} {form} {headers}: {answer.status}"
    assert server.api(f"/api/v2/dags/{ML}")["is_paused"] is False
    assert server.manual_runs(ML) == runs_before
    viewer.open("/dags", "dags-after-forged-posts")
    switch = viewer.page.locator(f"tr[data-dag-id='{ML}'] button.switch")
    expect(switch).to_have_attribute("aria-checked", "true")


def viewer_logs_out(tab: Tab) -> None:
    """Log out leads back to the login form, and the DAGs need a login again."""
    page = tab.page
    tab.follow(page.locator("form.who button[type=submit]"), "**/login", "logged-out")
    tab.open("/dags", "login-again")
    expect(page).to_have_url(re.compile(r"/login\?next=/dags$"))
