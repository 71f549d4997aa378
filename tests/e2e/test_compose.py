"""The topology of docker-compose.yml, end to end, on a machine without Docker.

The test reads docker-compose.yml and starts the command of each Tradewind service as an
OS process with the environment the file gives it: `init` to completion, then two
schedulers (the file allows two replicas), the DAG processor, two workers and the
webserver. What a container network would provide is rewritten, and only that: the
hosts `postgres` and `redis` become the local servers (a database and a Redis DB of the
test's own), the `dags/` bind mount becomes a temporary folder, the webserver binds
127.0.0.1 on a free port, and each process gets the TRADEWIND_HOME its image sets. A few
intervals are shortened so that a killed process is noticed in seconds.

Then, as a user would: drop a new DAG file, wait for it to be listed by the API, unpause
and trigger it with the official `apache-airflow-client`, wait for success, read a task
log through the API, and see the run green in the grid in headless Chromium. Finally
`kill -9` a worker and a scheduler in the middle of a second DAG's run, and see the run
complete anyway, each try executed once. Every process is stopped by PID at the end.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from playwright.sync_api import expect
from sqlalchemy.engine import make_url

from tests.e2e.browser import chromium
from tests.integration.daemons import Daemon, wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
CLIENT_SCRIPT = Path(__file__).with_name("compose_client_script.py")
# ENV of the Dockerfile that the compose file relies on (the image sets it, not the file).
IMAGE_HOME = "/var/lib/tradewind"
ADMIN_PASSWORD = "compose-admin-password"
# Seconds, so that a killed process is noticed quickly; the defaults are production's.
FAST = {
    "TRADEWIND_JOB_HEARTBEAT_SECONDS": "1",
    "TRADEWIND_JOB_DEAD_AFTER_SECONDS": "6",
    "TRADEWIND_TASK_HEARTBEAT_SECONDS": "1",
    "TRADEWIND_ZOMBIE_THRESHOLD_SECONDS": "8",
    "TRADEWIND_SCHEDULER_POLL_SECONDS": "0.5",
    "TRADEWIND_SHUTDOWN_GRACE_SECONDS": "5",
}

HELLO = """
from tradewind import DAG, task

with DAG("compose_hello", schedule=None, tags=["compose"]):
    @task
    def say_hello():
        print("hello from the compose topology")
        return 42

    @task
    def check(answer):
        assert answer == 42

    check(say_hello())
"""

SURVIVOR = """
import os
import time
from datetime import timedelta

from tradewind import DAG
from tradewind.operators.python import PythonOperator

SIDE = {side!r}

def slow(ti):
    with open(SIDE, "a") as side:
        side.write(f"slow try {{ti.try_number}} on {{ti.hostname}}\\n")
    time.sleep(6 if ti.try_number == 1 else 1)
    print("slow is done")

with DAG("compose_survivor", schedule=None, tags=["compose"]):
    first = PythonOperator(task_id="first", python_callable=lambda: print("first"))
    work = PythonOperator(task_id="slow", python_callable=slow, retries=2,
                          retry_delay=timedelta(seconds=1))
    last = PythonOperator(task_id="last", python_callable=lambda: print("last"))
    first >> work >> last
"""


# --- reading the compose file -------------------------------------------------------------

REFERENCE = re.compile(r"\$\{([A-Za-z0-9_]+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` in every string."""
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        given = variables.get(name)
        empty = given is None or (operator is not None and operator.startswith(":") and not given)
        if operator in (":-", "-") and empty:
            return str(argument)
        if operator in (":?", "?") and empty:
            raise AssertionError(f"{name}: {argument}")
        return given or ""

    return REFERENCE.sub(substitute, value)


def env_file() -> dict[str, str]:
    """.env.example with its secrets filled in, as a user's .env would be."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    values.update(
        POSTGRES_PASSWORD="unused-by-the-local-server",
        TRADEWIND_FERNET_KEY=Fernet.generate_key().decode(),
        TRADEWIND_SECRET_KEY=secrets.token_urlsafe(64),
        TRADEWIND_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    return values


@dataclass
class Service:
    name: str
    command: list[str]
    environment: dict[str, str]
    volumes: list[str]


def compose_services() -> dict[str, Service]:
    loaded = interpolate(yaml.safe_load(COMPOSE.read_text()), env_file())
    return {
        name: Service(
            name,
            [str(a) for a in spec.get("command", [])],
            {k: str(v) for k, v in (spec.get("environment") or {}).items()},
            list(spec.get("volumes") or []),
        )
        for name, spec in loaded["services"].items()
    }


# --- the deployment as processes ----------------------------------------------------------


@dataclass
class Local:
    """Where the rewritten hosts and mounts point on this machine."""

    database_url: str
    broker_url: str
    root: Path
    dags: Path
    port: int


def process_env(service: Service, local: Local, instance: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update(service.environment)
    database = make_url(env["TRADEWIND_DATABASE_URL"])
    assert (database.host, database.port) == ("postgres", 5432), database
    env["TRADEWIND_DATABASE_URL"] = local.database_url
    if "TRADEWIND_BROKER_URL" in env:
        assert env["TRADEWIND_BROKER_URL"].startswith("redis://redis:6379/")
        env["TRADEWIND_BROKER_URL"] = local.broker_url
    home = local.root / instance
    env["TRADEWIND_HOME"] = str(home)
    for volume in service.volumes:
        target = volume.split(":")[1]
        if target == env.get("TRADEWIND_DAGS_FOLDER"):
            env["TRADEWIND_DAGS_FOLDER"] = str(local.dags)
        else:
            assert target.startswith(IMAGE_HOME), volume  # a named volume under the home
    if env.get("TRADEWIND_API_HOST") == "0.0.0.0":
        env["TRADEWIND_API_HOST"] = "127.0.0.1"
        env["TRADEWIND_API_PORT"] = str(local.port)
    env.update(FAST)
    return env


class Deployment:
    """The processes started from the compose file; all stopped by PID at the end."""

    def __init__(self, services: dict[str, Service], local: Local) -> None:
        self.services = services
        self.local = local
        self.daemons: dict[str, Daemon] = {}
        (local.root / "logs").mkdir()

    def start(self, service: str, instance: str, *extra: str) -> Daemon:
        spec = self.services[service]
        daemon = Daemon(
            [*spec.command, *extra],
            process_env(spec, self.local, instance),
            self.local.root / "logs" / f"{instance}.log",
        )
        self.daemons[instance] = daemon
        return daemon

    def output(self) -> str:
        return "\n".join(f"--- {name}\n{d.output()[-4000:]}" for name, d in self.daemons.items())

    def stop(self) -> None:
        for daemon in reversed(list(self.daemons.values())):
            daemon.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def deployment(empty_pg_database: str, redis_broker: str, tmp_path: Path) -> Iterator[Deployment]:
    dags = tmp_path / "dags"
    dags.mkdir()
    local = Local(empty_pg_database, redis_broker, tmp_path, dags, _free_port())
    deployed = Deployment(compose_services(), local)
    try:
        yield deployed
    finally:
        deployed.stop()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def client(python: Path, *args: str) -> str:
    result = subprocess.run(
        [str(python), str(CLIENT_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def run_id_of(output: str) -> str:
    found = re.search(r"^run_id=(.+)$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


# --- the test -----------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_the_compose_topology_runs_dags_and_survives_kill_9(
    deployment: Deployment, client_python: Path, tmp_path: Path
) -> None:
    init = deployment.start("init", "init")
    assert init.process.wait(timeout=180) == 0, init.output()
    assert "Admin user admin created." in init.output()

    deployment.start("scheduler", "scheduler-1")
    deployment.start("scheduler", "scheduler-2")
    deployment.start("dag-processor", "dag-processor")
    # Containers have their own host names; processes on one host are told theirs.
    deployment.start("worker", "worker-1", "--hostname", "worker-1")
    deployment.start("worker", "worker-2", "--hostname", "worker-2")
    deployment.start("webserver", "webserver")
    host = f"http://127.0.0.1:{deployment.local.port}"
    try:
        wait_for(lambda: _healthy(f"{host}/api/v2/monitor/health"), "the webserver's health")
        login = (host, "admin", ADMIN_PASSWORD)

        (deployment.local.dags / "compose_hello.py").write_text(textwrap.dedent(HELLO))
        run_id = run_id_of(client(client_python, "trigger", *login, "compose_hello"))
        client(
            client_python,
            "finish",
            *login,
            "compose_hello",
            run_id,
            "say_hello",
            "hello from the compose topology",
        )
        see_the_run_green_in_the_grid(host, "compose_hello", run_id, tmp_path)

        side = tmp_path / "survivor-executions.txt"
        survivor = SURVIVOR.format(side=str(side))
        (deployment.local.dags / "compose_survivor.py").write_text(textwrap.dedent(survivor))
        run_id = run_id_of(client(client_python, "trigger", *login, "compose_survivor"))
        first_try = wait_for(
            lambda: [line for line in _lines(side) if line.startswith("slow try 1 on ")],
            "the slow task's first try to start",
        )[0]
        busy_worker = first_try.rsplit(" ", 1)[1]
        deployment.daemons[busy_worker].kill()
        deployment.daemons["scheduler-1"].kill()
        client(client_python, "finish", *login, "compose_survivor", run_id, "slow", "slow is done")
    except BaseException:
        print(deployment.output())
        raise
    executions = _lines(side)
    idle_worker = "worker-2" if busy_worker == "worker-1" else "worker-1"
    assert executions == [f"slow try 1 on {busy_worker}", f"slow try 2 on {idle_worker}"]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def see_the_run_green_in_the_grid(host: str, dag_id: str, run_id: str, tmp_path: Path) -> None:
    artifacts = Path(os.environ.get("TRADEWIND_TEST_ARTIFACTS", tmp_path)) / "screenshots"
    artifacts.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page(base_url=host, viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"/login?next=/dags/{dag_id}")
        page.fill("#username", "admin")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url(f"**/dags/{dag_id}")
        bar = page.locator(f"#grid th[data-run='{run_id}'] a.bar")
        expect(bar).to_have_class(re.compile(r"\bs-success\b"), timeout=30_000)
        page.screenshot(path=artifacts / "compose-grid.png", full_page=True)
    assert problems == []
