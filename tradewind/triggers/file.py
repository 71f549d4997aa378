"""`FileTrigger`: fires when a path (glob patterns allowed) matches a file."""

from __future__ import annotations

import asyncio
import glob
import os
from collections.abc import AsyncIterator
from typing import Any

from tradewind.triggers.base import BaseTrigger, TriggerEvent


def find_file(pattern: str, *, recursive: bool) -> str | None:
    """The first file ``pattern`` matches, or the first matched folder holding a file
    (anywhere below it with ``recursive``); None if there is none yet."""
    for path in sorted(glob.glob(pattern, recursive=recursive)):
        if os.path.isfile(path):
            return path
        if os.path.isdir(path) and _holds_a_file(path, recursive=recursive):
            return path
    return None


def _holds_a_file(folder: str, *, recursive: bool) -> bool:
    if recursive:
        return any(files for _, _, files in os.walk(folder))
    with os.scandir(folder) as entries:
        return any(entry.is_file() for entry in entries)


class FileTrigger(BaseTrigger):
    """Checks ``filepath`` every ``poke_interval`` seconds; the event's payload is
    ``{"status": "success", "path": <what matched>}``."""

    def __init__(
        self, filepath: str, recursive: bool = False, poke_interval: float = 5.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.filepath = os.fspath(filepath)
        self.recursive = bool(recursive)
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "tradewind.triggers.file.FileTrigger",
            {
                "filepath": self.filepath,
                "recursive": self.recursive,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            # A glob touches the disk: keep it off the event loop.
            found = await asyncio.to_thread(find_file, self.filepath, recursive=self.recursive)
            if found is not None:
                yield TriggerEvent({"status": "success", "path": found})
                return
            await asyncio.sleep(self.poke_interval)


__all__ = ["FileTrigger", "find_file"]
