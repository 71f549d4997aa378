"""Executors: where the tries the scheduler queues actually run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradewind.errors import ConfigError

if TYPE_CHECKING:
    from scheduler.executors.base import Executor
    from tradewind.settings import Settings


def make_executor(settings: Settings) -> Executor:
    """The executor named by ``TRADEWIND_EXECUTOR``."""
    if settings.executor == "local":
        from scheduler.executors.local import LocalExecutor

        return LocalExecutor(settings)
    if settings.executor == "sequential":
        from scheduler.executors.sequential import SequentialExecutor

        return SequentialExecutor(settings)
    raise ConfigError(
        f"TRADEWIND_EXECUTOR={settings.executor!r} is not available yet; use 'local' or "
        "'sequential'"
    )
