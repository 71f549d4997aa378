"""`BashOperator`: run a shell command; its last line of output becomes an XCom.

Example::

    BashOperator(
        task_id="export",
        bash_command="python export.py --date {{ ds }}",
        env={"WAREHOUSE": "{{ var.value.warehouse }}"},
        append_env=True,
    )
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Container, Sequence
from typing import Any, ClassVar

from tradewind.errors import DagDefinitionError, TaskSkip, TradewindError
from tradewind.sdk.baseoperator import BaseOperator

logger = logging.getLogger(__name__)


class BashOperator(BaseOperator):
    """Run ``bash_command`` with ``bash -c``; a non-zero exit code fails the task.

    ``skip_on_exit_code`` (default 99) marks the task skipped instead. ``env`` replaces
    the environment unless ``append_env=True``. A command ending in ``.sh`` or ``.bash``
    is a template file, found next to the DAG file or on ``template_searchpath``.
    """

    template_fields: ClassVar[Sequence[str]] = ("bash_command", "env", "cwd")
    template_fields_renderers: ClassVar[dict[str, str]] = {"bash_command": "bash", "env": "json"}
    template_ext: ClassVar[Sequence[str]] = (".sh", ".bash")
    ui_color: ClassVar[str] = "#f0ede4"

    def __init__(
        self,
        *,
        bash_command: str,
        env: dict[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code: int | Container[int] | None = 99,
        cwd: str | None = None,
        output_processor: Callable[[str], Any] = lambda output: output,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(bash_command, str) or not bash_command.strip():
            raise DagDefinitionError(
                f"task {self.task_id!r}: bash_command must be a non-empty string",
                filename=self.fileloc,
                lineno=self.lineno,
            )
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        self.skip_on_exit_code = skip_on_exit_code
        self.cwd = cwd
        self.output_processor = output_processor
        self._process: subprocess.Popen[bytes] | None = None

    def execute(self, context: dict[str, Any]) -> Any:
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise TradewindError(f"cwd {self.cwd!r} of task {self.task_id!r} is not a directory")
        exit_code, last_line = self.run_command(self.bash_command, self._environment(context))
        if self._skips(exit_code):
            raise TaskSkip(f"Bash command returned exit code {exit_code}; skipping")
        if exit_code != 0:
            raise TradewindError(
                f"Bash command failed. The command returned a non-zero exit code {exit_code}."
            )
        return self.output_processor(last_line)

    def run_command(self, command: str, env: dict[str, str]) -> tuple[int, str]:
        bash = shutil.which("bash") or "/bin/bash"
        self._process = subprocess.Popen(
            [bash, "-c", command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.cwd,
            start_new_session=True,
        )
        last_line = ""
        stdout = self._process.stdout
        if stdout is None:  # pragma: no cover - stdout=PIPE always gives a stream
            raise TradewindError("could not read the command's output")
        try:
            for raw in stdout:
                line = raw.decode(self.output_encoding, errors="replace").rstrip("\n")
                last_line = line
                logger.info("%s", line)
            exit_code = self._process.wait()
        except BaseException:
            self.on_kill()
            raise
        logger.info("Command exited with return code %s", exit_code)
        return exit_code, last_line

    def _environment(self, context: dict[str, Any]) -> dict[str, str]:
        env = dict(os.environ) if self.env is None or self.append_env else {}
        env.update({str(k): str(v) for k, v in (self.env or {}).items()})
        env.update(context_environment(context))
        return env

    def _skips(self, exit_code: int) -> bool:
        codes = self.skip_on_exit_code
        if codes is None:
            return False
        if isinstance(codes, int):
            return exit_code == codes
        return exit_code in codes

    def on_kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            logger.info("Stopping the command (process group %s)", process.pid)
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


def context_environment(context: dict[str, Any]) -> dict[str, str]:
    """Identifiers of the running try, exported to child processes (as Airflow does)."""
    ti = context.get("ti")
    values = {
        "TRADEWIND_CTX_DAG_ID": getattr(context.get("dag"), "dag_id", None),
        "TRADEWIND_CTX_TASK_ID": getattr(ti, "task_id", None),
        "TRADEWIND_CTX_RUN_ID": context.get("run_id"),
        "TRADEWIND_CTX_TRY_NUMBER": getattr(ti, "try_number", None),
        "TRADEWIND_CTX_LOGICAL_DATE": context.get("ts"),
    }
    return {key: str(value) for key, value in values.items() if value is not None}
