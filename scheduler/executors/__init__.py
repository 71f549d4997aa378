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
    if settings.executor == "celery":
        from scheduler.executors.celery import CeleryExecutor

        return CeleryExecutor(settings)
    raise ConfigError(  # pragma: no cover - the setting's type admits only the above
        f"TRADEWIND_EXECUTOR={settings.executor!r}: use 'local', 'celery' or 'sequential'"
    )
