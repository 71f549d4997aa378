"""What the scheduler needs from an executor."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from worker.task_runner import TryRequest


@dataclass(frozen=True, slots=True)
class TryFinished:
    """A try's process ended. ``clean`` is False when it died (killed, crashed, exited
    without recording the end of its try)."""

    request: TryRequest
    clean: bool
    detail: str = ""


class Executor(abc.ABC):
    """Runs tries. The scheduler queues at most `open_slots()` at a time and learns
    about ended processes from `collect()`; the database holds everything else, so a
    new scheduler can carry on after a crash."""

    name: str = "executor"

    def start(self) -> None:  # noqa: B027 - optional hook, most executors need nothing
        """Get ready to run tries (called once, before the first `queue`)."""

    @abc.abstractmethod
    def open_slots(self) -> int: ...

    @abc.abstractmethod
    def queue(self, request: TryRequest) -> None: ...

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Send what `queue` collected (executors that batch); called after each pass."""

    def can_resend(self) -> bool:
        """May a try stuck in queued be sent again now? (Local: only into a free slot.)"""
        return self.open_slots() > 0

    @abc.abstractmethod
    def collect(self) -> list[TryFinished]:
        """Tries whose process has ended since the last call; never blocks."""

    def wait_handles(self) -> list[int]:
        """File descriptors that become readable when a try's process ends."""
        return []

    @abc.abstractmethod
    def running(self) -> list[TryRequest]: ...

    @abc.abstractmethod
    def run_callback(self, request_id: int) -> None:
        """Run one callback request (see `tradewind.callbacks`) in a process of its own."""

    @abc.abstractmethod
    def end(self, grace_seconds: float) -> list[TryFinished]:
        """Stop: let running tries finish within the grace period, then stop them."""
