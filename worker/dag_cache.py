"""DAG objects loaded from files in this process, reused until the file changes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tradewind.dag_loader import load_dag_file
from tradewind.errors import DagNotFound, TradewindError

if TYPE_CHECKING:
    from tradewind.dag_loader import FileLoadResult
    from tradewind.sdk.dag import DAG


class DagFileCache:
    """Load a DAG file once per (path, modification time, size)."""

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[tuple[int, int], FileLoadResult]] = {}

    def get(self, fileloc: str, dag_id: str) -> DAG:
        result = self.load(fileloc)
        for dag in result.dags:
            if dag.dag_id == dag_id:
                return dag
        if result.errors:
            raise TradewindError(
                f"DAG {dag_id!r} could not be loaded: "
                + "; ".join(e.summary() for e in result.errors)
            )
        raise DagNotFound(f"DAG {dag_id!r} is no longer defined in {fileloc}")

    def prime(self, fileloc: str, *, timeout_seconds: float = 30.0) -> None:
        """Load a file ahead of time (in a parent, so forked children inherit it).

        A file that fails or hangs is left out: the child loads it and reports why.
        """
        from worker.timeout import execution_timeout

        try:
            with execution_timeout(timeout_seconds):
                result = self.load(fileloc)
        except Exception:
            self._loaded.pop(fileloc, None)
            return
        if result.errors:
            self._loaded.pop(fileloc, None)

    def load(self, fileloc: str) -> FileLoadResult:
        try:
            stat = os.stat(fileloc)
        except OSError as exc:
            raise DagNotFound(f"the DAG file {fileloc} cannot be read: {exc.strerror}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._loaded.get(fileloc)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        result = load_dag_file(Path(fileloc))
        self._loaded[fileloc] = (stamp, result)
        return result
