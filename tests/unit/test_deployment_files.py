"""The deployment files say what Tradewind can do: every command the compose file and
the image run is a real `tradewind` subcommand, every variable is explained in
`.env.example`, and Debian's `docker-compose` accepts the file.

No Docker engine is needed; tests/e2e/test_compose.py runs the same commands as
processes.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradewind.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = (
    "POSTGRES_PASSWORD",
    "TRADEWIND_FERNET_KEY",
    "TRADEWIND_SECRET_KEY",
    "TRADEWIND_ADMIN_PASSWORD",
)
REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def tradewind_services() -> dict[str, dict[str, Any]]:
    """The services that run the Tradewind image (all but postgres and redis)."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if str(service.get("image", "")).startswith("${TRADEWIND_IMAGE")
    }


def parses_to_a_command(argv: list[str]) -> argparse.Namespace:
    """What `tradewind ARGV` would run; fails unless it names a real subcommand."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse reports the error on stderr
        raise AssertionError(f"`tradewind {shlex.join(argv)}` is not a valid command") from exc
    assert args.handler.__name__ != "show", f"`tradewind {shlex.join(argv)}` only prints help"
    return args


def example_values() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


# --- docker-compose.yml ---------------------------------------------------------------


def test_the_compose_file_has_the_production_topology() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "init", "scheduler", "dag-processor", "worker"} <= set(services)
    assert "triggerer" in services
    assert {"webserver", "flower"} <= set(services)
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["flower"]["profiles"] == ["flower"]
    for name in ("postgres", "redis", "webserver", "scheduler", "worker", "dag-processor"):
        assert "test" in services[name]["healthcheck"], name


def test_every_tradewind_service_runs_a_real_subcommand() -> None:
    services = tradewind_services()
    assert set(services) == {
        "init",
        "scheduler",
        "dag-processor",
        "triggerer",
        "worker",
        "webserver",
        "flower",
    }
    commands = {}
    for name, service in services.items():
        argv = [
            REFERENCE.sub(lambda m: example_values()[m.group(1)], a) for a in service["command"]
        ]
        commands[name] = parses_to_a_command(argv).handler.__name__
    assert commands == {
        "init": "_init",
        "scheduler": "_scheduler",
        "dag-processor": "_dag_processor",
        "triggerer": "_triggerer",
        "worker": "_worker",
        "webserver": "_webserver",
        "flower": "_flower",
    }


def test_health_checks_that_call_tradewind_are_real_subcommands() -> None:
    checked = 0
    for name, service in tradewind_services().items():
        test = service.get("healthcheck", {}).get("test")
        if test and test[:2] == ["CMD", "tradewind"]:
            parses_to_a_command(test[2:])
            checked += 1
        elif name not in ("init",):
            assert test, f"{name} has no health check"
    assert checked == 4  # scheduler, dag-processor, triggerer, worker


def test_services_start_in_order_and_share_the_secrets() -> None:
    services = tradewind_services()
    assert services["init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["init"]["restart"] == "no"
    for name in ("scheduler", "dag-processor", "triggerer", "worker", "webserver"):
        depends = services[name]["depends_on"]
        assert depends["init"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        environment = services[name]["environment"]
        for secret in ("TRADEWIND_FERNET_KEY", "TRADEWIND_SECRET_KEY"):
            assert environment[secret].startswith(f"${{{secret}:?"), (name, secret)
        assert environment["TRADEWIND_EXECUTOR"] == "celery"


def test_dags_are_mounted_read_only_where_they_are_parsed() -> None:
    services = tradewind_services()
    for name in ("scheduler", "dag-processor", "triggerer", "worker"):
        mounts = services[name]["volumes"]
        assert "${TRADEWIND_DAGS_DIR:-./dags}:/opt/tradewind/dags:ro" in mounts, name
    assert services["webserver"]["volumes"] == []  # it never imports a DAG file


def test_every_variable_is_explained_in_the_env_example() -> None:
    used = set(REFERENCE.findall(COMPOSE.read_text()))
    values = example_values()
    text = ENV_EXAMPLE.read_text()
    assert used == set(values)
    for name in values:  # a comment right above each variable explains it
        before = text[: text.index(f"\n{name}=")].rstrip().splitlines()[-1]
        assert before.startswith("#"), name
    for secret in SECRETS:
        assert values[secret] == "", f"{secret} must not ship with a value"


# --- Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_image_installs_dependencies_before_the_source() -> None:
    steps = dockerfile_instructions()
    keywords = [k for k, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim-bookworm")
    copies = [rest for k, rest in steps if k == "COPY"]
    assert copies[0] == "pyproject.toml ./"
    first_install = next(i for i, (k, r) in enumerate(steps) if k == "RUN" and "pip install" in r)
    first_source = keywords.index("COPY", keywords.index("COPY") + 1)
    assert first_install < first_source
    for rest in copies:  # every source exists and is let through .dockerignore
        source = rest.split()[0]
        assert (ROOT / source).exists(), source
        assert {f"!{source}", f"!{source}/", f"!{source.rstrip('/')}"} & dockerignore_lines(), (
            source
        )


def dockerignore_lines() -> set[str]:
    return {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}


def test_the_image_runs_as_a_user_with_tradewind_as_entrypoint() -> None:
    steps = dict(dockerfile_instructions())
    assert steps["USER"] == "tradewind"
    assert steps["ENTRYPOINT"] == '["tradewind"]'
    health = steps["HEALTHCHECK"]
    command = health.split(" CMD ", 1)[1].split(" || ")[0]
    parses_to_a_command(shlex.split(command)[1:])


def test_the_image_installs_every_package_the_wheel_holds() -> None:
    import tomllib

    copied = {rest.split()[0].rstrip("/") for k, rest in dockerfile_instructions() if k == "COPY"}
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {p.rstrip("*") for p in found["packages"]["find"]["include"]}
    assert packages <= copied


# --- docker-compose config -q -----------------------------------------------------------


def docker_compose(tmp_path: Path, env_file: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        from tests.conftest import service_missing

        service_missing("docker-compose (Debian's package)", "apt-get install docker-compose")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(COMPOSE, project / "docker-compose.yml")
    (project / ".env").write_text(env_file)
    env = {k: v for k, v in os.environ.items() if k not in example_values()}
    return subprocess.run(
        [str(binary), "config", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_docker_compose_accepts_the_file_once_the_secrets_are_set(tmp_path: Path) -> None:
    filled = ENV_EXAMPLE.read_text()
    for secret in SECRETS:
        filled = filled.replace(f"\n{secret}=\n", f"\n{secret}=not-a-real-{secret.lower()}\n")
    result = docker_compose(tmp_path, filled)
    assert result.returncode == 0, result.stderr


def test_docker_compose_names_a_missing_secret(tmp_path: Path) -> None:
    result = docker_compose(tmp_path, ENV_EXAMPLE.read_text())
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env (see .env.example)" in result.stderr


@pytest.mark.parametrize("variable", SECRETS)
def test_each_secret_is_required(tmp_path: Path, variable: str) -> None:
    filled = ENV_EXAMPLE.read_text()
    for secret in SECRETS:
        if secret != variable:
            filled = filled.replace(f"\n{secret}=\n", f"\n{secret}=x\n")
    result = docker_compose(tmp_path, filled)
    assert result.returncode != 0
    assert f"set {variable} in .env" in result.stderr
