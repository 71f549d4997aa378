"""Starting Tradewind daemons as real processes in tests, and stopping them by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tradewind.settings import Settings

WAIT_SECONDS = 90.0


def daemon_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update(
        TRADEWIND_HOME=str(settings.home),
        TRADEWIND_DATABASE_URL=settings.resolved_database_url,
        TRADEWIND_DAGS_FOLDER=str(settings.resolved_dags_folder),
        TRADEWIND_PARALLELISM="4",
        TRADEWIND_SCHEDULER_POLL_SECONDS="0.5",
        TRADEWIND_JOB_HEARTBEAT_SECONDS="1",
        TRADEWIND_TASK_HEARTBEAT_SECONDS="1",
        TRADEWIND_SHUTDOWN_GRACE_SECONDS="5",
        TRADEWIND_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


class Daemon:
    """One `tradewind ...` process with its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tradewind.cli.main", *args],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()
        return self.process.returncode

    def kill(self) -> None:
        """kill -9 the daemon's whole process group (its children included)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[Daemon]:
    daemon = Daemon(args, env, log)
    try:
        yield daemon
    finally:
        daemon.stop()
        if daemon.process.poll() is None:  # pragma: no cover - last resort
            daemon.kill()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll until the condition is truthy; fail (not a timing assertion) if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Cluster:
    """The processes of one executor's deployment: a scheduler, and for the celery
    executor its workers. Everything started here is stopped by PID at the end."""

    def __init__(self, executor: str, env: dict[str, str], logs: Path) -> None:
        self.executor = executor
        self.env = {**env, "TRADEWIND_EXECUTOR": executor}
        self.logs = logs
        self.daemons: list[Daemon] = []

    def start(self, args: list[str], name: str, **extra_env: str) -> Daemon:
        daemon = Daemon(args, {**self.env, **extra_env}, self.logs / f"{name}.log")
        self.daemons.append(daemon)
        return daemon

    def scheduler(self, name: str = "scheduler") -> Daemon:
        return self.start(["scheduler", "--no-dag-processor"], name)

    def worker(self, name: str, queues: str = "default", concurrency: int = 2) -> Daemon:
        return self.start(
            ["worker", "--queues", queues, "--concurrency", str(concurrency), "--hostname", name],
            name,
        )

    def up(self) -> None:
        """The standard deployment: a scheduler, and two workers for celery."""
        if self.executor == "celery":
            self.worker("worker-a")
            self.worker("worker-b")
        self.scheduler()

    def trigger(self, dag_id: str, *extra: str) -> None:
        with running(["dags", "trigger", dag_id, *extra], self.env, self.logs / "trigger.log") as t:
            if t.process.wait(timeout=60) != 0:
                raise AssertionError(t.output())

    def output(self) -> str:
        return "\n".join(f"--- {d.log.name}\n{d.output()}" for d in self.daemons)

    def stop(self) -> None:
        for daemon in reversed(self.daemons):
            daemon.stop()
