"""Tradewind installed the way the Docker image installs it: from the wheel, not from
the source tree. An editable install hides a file the wheel forgets (a migration, a
template, a stylesheet); this test runs the built package from a folder of its own.

No Docker engine is needed: the image's steps are the Dockerfile's `requirements.txt`
one-liner and `pip install --no-deps .`, and both are exercised here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.daemons import Daemon, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, unpacked: what `pip install --no-deps .` puts into site-packages."""
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            ".",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = out.glob("tradewind-*.whl")
    site = out / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def env_for(site: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update(PYTHONPATH=str(site), TRADEWIND_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    return env


def tradewind(site: Path, home: Path, *args: str, **extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tradewind.cli.main", *args],
        cwd=home.parent,  # not the repository: the source tree must not be importable
        env={**env_for(site, home), **extra},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_commands_come_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tradewind, scheduler, webserver, worker, migrations; "
            "print(tradewind.__file__, webserver.__file__, migrations.__file__)",
        ],
        cwd=tmp_path,
        env=env_for(installed, home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(path.startswith(str(installed)) for path in where.split()), where
    commands = tradewind(installed, home, "--help")
    for command in ("init", "db", "scheduler", "dag-processor", "worker", "webserver", "flower"):
        assert re.search(rf"^\s+{command}\s", commands, re.MULTILINE), command


def test_init_migrates_from_the_wheel_s_migrations(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    output = tradewind(installed, home, "init", TRADEWIND_ADMIN_PASSWORD="pw")
    assert "Admin user admin created." in output
    assert "Database" in tradewind(installed, home, "db", "check")


@pytest.fixture
def webserver(installed: Path, tmp_path: Path) -> Iterator[str]:
    import socket

    home = tmp_path / "home"
    tradewind(installed, home, "init", TRADEWIND_ADMIN_PASSWORD="pw")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = Daemon(
        ["webserver", "--port", str(port)], env_for(installed, home), tmp_path / "web.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/api/v2/monitor/health"), "the webserver")
        yield url
    finally:
        daemon.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_webserver_serves_its_pages_and_assets_from_the_wheel(webserver: str) -> None:
    for path in ("/login", "/static/tradewind.css", "/static/tradewind.js", "/docs"):
        answer = httpx.get(f"{webserver}{path}", timeout=10)
        assert answer.status_code == 200, path


def test_the_dockerfile_installs_every_dependency_and_the_flower_extra(tmp_path: Path) -> None:
    """Run the Dockerfile's own one-liner that writes requirements.txt."""
    import tomllib

    dockerfile = re.sub(r"\\\n", "", (REPO / "Dockerfile").read_text())
    found = re.search(r'RUN (python -c ".*?") > requirements.txt', dockerfile)
    assert found, "the Dockerfile no longer derives requirements.txt from pyproject.toml"
    (tmp_path / "pyproject.toml").write_bytes((REPO / "pyproject.toml").read_bytes())
    listed = subprocess.run(
        ["sh", "-c", found.group(1)], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert listed == project["dependencies"] + project["optional-dependencies"]["flower"]
