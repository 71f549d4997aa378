"""`FileSensor`: wait until a file (or a non-empty folder) exists.

Example::

    FileSensor(task_id="wait", filepath="/landing/{{ ds }}/*.parquet", mode="reschedule")
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any, ClassVar

from tradewind.errors import ConnectionNotFound
from tradewind.sensors import BaseSensorOperator

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

    def poke(self, context: dict[str, Any]) -> bool:
        relative = not os.path.isabs(self.filepath)
        pattern = os.path.join(self._base_path(), self.filepath) if relative else self.filepath
        self.log.info("Poking for file %s", pattern)
        for path in sorted(glob.glob(pattern, recursive=self.recursive)):
            if os.path.isfile(path):
                self.log.info("Found file %s", path)
                return True
            if os.path.isdir(path) and self._holds_a_file(path):
                self.log.info("Found folder %s with files in it", path)
                return True
        return False

    def _holds_a_file(self, folder: str) -> bool:
        if self.recursive:
            return any(files for _, _, files in os.walk(folder))
        with os.scandir(folder) as entries:
            return any(entry.is_file() for entry in entries)

    def _base_path(self) -> str:
        from tradewind.sdk.connection import Connection

        try:
            connection = Connection.get(self.fs_conn_id)
        except ConnectionNotFound:
            if self.fs_conn_id == DEFAULT_CONNECTION:
                return ""
            raise
        return str(connection.extra_dejson.get("path", ""))
