"""The sequential executor: runs each try inside the scheduler process, one at a time.

For debugging only: a try that crashes takes the scheduler with it, and nothing else
happens while a try runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler.executors.base import Executor, TryFinished
from worker.task_runner import TaskRunner, TryRequest

if TYPE_CHECKING:
    from tradewind.settings import Settings


class SequentialExecutor(Executor):
    name = "sequential"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._done: list[TryFinished] = []
        self._runner: TaskRunner | None = None

    def open_slots(self) -> int:
        return 1

    def running(self) -> list[TryRequest]:
        return []

    def queue(self, request: TryRequest) -> None:
        if self._runner is None:
            from tradewind.db import process_session_factory

            self._runner = TaskRunner(process_session_factory(), self.settings)
        result = self._runner.run(request)
        self._done.append(TryFinished(request, clean=True, detail=result.error or ""))

    def run_callback(self, request_id: int) -> None:
        from tradewind.db import process_session_factory
        from worker.callbacks import run_callback_request
        from worker.dag_cache import DagFileCache

        run_callback_request(process_session_factory(), self.settings, DagFileCache(), request_id)

    def collect(self) -> list[TryFinished]:
        done, self._done = self._done, []
        return done

    def end(self, grace_seconds: float) -> list[TryFinished]:
        return self.collect()
