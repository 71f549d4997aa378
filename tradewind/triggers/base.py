"""`BaseTrigger`, `TriggerEvent`, and turning triggers into rows and back."""

from __future__ import annotations

import abc
import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tradewind.errors import TradewindError
from tradewind.triggers.encoding import decode, encode


@dataclass(frozen=True)
class TriggerEvent:
    """What a trigger yields when it fires; ``payload`` reaches the resumed task as its
    ``event`` argument (JSON plus datetimes and timedeltas)."""

    payload: Any = None


class BaseTrigger(abc.ABC):
    """A wait the triggerer runs. Subclasses implement `serialize` and `run`."""

    def __init__(self, **_kwargs: Any) -> None:
        self.trigger_id: int | None = None

    @abc.abstractmethod
    def serialize(self) -> tuple[str, dict[str, Any]]:
        """(importable class path, keyword arguments that rebuild this trigger)."""

    @abc.abstractmethod
    def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait, then yield a `TriggerEvent`. Only the first event is used."""

    async def cleanup(self) -> None:  # noqa: B027 - optional hook
        """Called when the triggerer stops running this trigger (it fired, was cancelled,
        or the triggerer shuts down)."""

    def __repr__(self) -> str:
        classpath, kwargs = self.serialize()
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        return f"<{classpath.rsplit('.', 1)[-1]} {args}>"


def trigger_record(trigger: BaseTrigger) -> tuple[str, dict[str, Any]]:
    """The class path and encoded kwargs stored for a trigger; raises a clear error if
    the trigger cannot be stored."""
    if not isinstance(trigger, BaseTrigger):
        raise TradewindError(
            f"defer(trigger=...) needs a BaseTrigger instance, got {type(trigger).__name__}"
        )
    classpath, kwargs = trigger.serialize()
    try:
        return classpath, encode(kwargs, where=f"the kwargs of {classpath}")
    except TypeError as exc:
        raise TradewindError(str(exc)) from None


def trigger_from_record(classpath: str, kwargs: dict[str, Any]) -> BaseTrigger:
    """Rebuild a trigger from its stored class path and encoded kwargs."""
    module_name, _, class_name = classpath.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise TradewindError(f"cannot import trigger class {classpath!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseTrigger)):
        raise TradewindError(f"{classpath!r} is not a BaseTrigger subclass")
    return cls(**decode(kwargs))


__all__ = ["BaseTrigger", "TriggerEvent", "trigger_from_record", "trigger_record"]
