"""`FileSensor`: wait until a file (or a non-empty folder) exists.

Example::

    FileSensor(task_id="wait", filepath="/landing/{{ ds }}/*.parquet", mode="reschedule")
    FileSensor(task_id="wait", filepath="/landing/{{ ds }}/_SUCCESS", deferrable=True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from tradewind.errors import ConnectionNotFound
from tradewind.sensors import BaseSensorOperator
from tradewind.triggers.file import FileTrigger, find_file

DEFAULT_CONNECTION = "fs_default"


class FileSensor(BaseSensorOperator):
    """Done when ``filepath`` (templated; glob patterns allowed) matches a file, or a
    folder holding a file (directly, or anywhere below it with ``recursive=True``).

    A relative path is taken under the ``path`` extra of connection ``fs_conn_id`` (the
    default connection ``fs_default`` may be left undefined: the path is then relative to
    the worker's working directory); an absolute path is used as given.
    """

    template_fields: ClassVar[Sequence[str]] = ("filepath",)
    ui_color: ClassVar[str] = "#91818a"

    def __init__(
        self,
        *,
        filepath: str | os.PathLike[str],
        fs_conn_id: str = DEFAULT_CONNECTION,
        recursive: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filepath = os.fspath(filepath)
        self.fs_conn_id = fs_conn_id
        self.recursive = bool(recursive)

    def pattern(self) -> str:
        relative = not os.path.isabs(self.filepath)
        return os.path.join(self._base_path(), self.filepath) if relative else self.filepath

    def poke(self, context: dict[str, Any]) -> bool:
        pattern = self.pattern()
        self.log.info("Poking for file %s", pattern)
        found = find_file(pattern, recursive=self.recursive)
        if found is not None:
            self.log.info("Found %s", found)
        return found is not None

    def trigger_for(self, context: dict[str, Any]) -> FileTrigger:
        return FileTrigger(
            self.pattern(),
            recursive=self.recursive,
            poke_interval=self.poke_interval.total_seconds(),
        )

    def _base_path(self) -> str:
        from tradewind.sdk.connection import Connection

        try:
            connection = Connection.get(self.fs_conn_id)
        except ConnectionNotFound:
            if self.fs_conn_id == DEFAULT_CONNECTION:
                return ""
            raise
        return str(connection.extra_dejson.get("path", ""))
