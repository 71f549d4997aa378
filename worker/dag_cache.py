"""DAG objects loaded in this process, reused until their file changes.

A run executes the DAG version it started with: when the file on disk no longer
serializes to that version (it was edited mid-run), the version's stored source is
loaded instead, under the file's own path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tradewind.dag_loader import load_dag_file, load_dag_source
from tradewind.errors import DagNotFound, TradewindError

if TYPE_CHECKING:
    from tradewind.dag_loader import FileLoadResult
    from tradewind.sdk.dag import DAG


@dataclass(frozen=True, slots=True)
class VersionRef:
    """The DAG version a try belongs to."""

    version_id: str
    fileloc: str
    content_hash: str


class DagFileCache:
    """Load a DAG file once per (path, modification time, size); versions once each."""

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[tuple[int, int], FileLoadResult]] = {}
        self._hashes: dict[tuple[str, tuple[int, int], str], str] = {}
        self._versions: dict[str, FileLoadResult] = {}
        # Counts the loads: a child forked earlier lacks what was loaded since.
        self.generation = 0

    def get(self, fileloc: str, dag_id: str) -> DAG:
        return _pick(self.load(fileloc), dag_id, fileloc)

    def get_version(self, ref: VersionRef, dag_id: str, source: Callable[[], str | None]) -> DAG:
        """The DAG as it was in version ``ref``: from the file if it is unchanged,
        otherwise from the stored source of that version."""
        try:
            current = self.get(ref.fileloc, dag_id)
        except TradewindError:
            current = None
        if current is not None and self._hash(ref.fileloc, current) == ref.content_hash:
            return current
        result = self._versions.get(ref.version_id)
        if result is None:
            text = source()
            if text is None:
                if current is not None:
                    return current
                raise DagNotFound(f"DAG {dag_id!r}: its file changed and no source was stored")
            result = load_dag_source(text, ref.fileloc, tag=ref.version_id[:8])
            self._versions[ref.version_id] = result
        return _pick(result, dag_id, ref.fileloc)

    def _hash(self, fileloc: str, dag: DAG) -> str:
        from tradewind.serialization import content_hash, serialize_dag

        stamp = self._loaded[fileloc][0] if fileloc in self._loaded else (0, 0)
        key = (fileloc, stamp, dag.dag_id)
        if key not in self._hashes:
            self._hashes[key] = content_hash(serialize_dag(dag))
        return self._hashes[key]

    def prime(self, fileloc: str, *, timeout_seconds: float = 30.0) -> None:
        """Load a file ahead of time (in a parent, so forked children inherit it).

        A file that fails or hangs is left out: the child loads it and reports why.
        """
        from worker.timeout import execution_timeout

        if self._primed(fileloc):
            return  # the usual case, once per try in a fork server: no timer to set
        try:
            with execution_timeout(timeout_seconds):
                result = self.load(fileloc)
                for dag in result.dags:
                    self._hash(fileloc, dag)
        except Exception:
            self._loaded.pop(fileloc, None)
            return
        if result.errors:
            self._loaded.pop(fileloc, None)

    def _primed(self, fileloc: str) -> bool:
        """Whether ``fileloc`` is loaded as it is on disk now, with every DAG's hash."""
        cached = self._loaded.get(fileloc)
        if cached is None:
            return False
        try:
            stamp = _stamp(fileloc)
        except OSError:
            return False
        return cached[0] == stamp and all(
            (fileloc, stamp, dag.dag_id) in self._hashes for dag in cached[1].dags
        )

    def load(self, fileloc: str) -> FileLoadResult:
        try:
            stamp = _stamp(fileloc)
        except OSError as exc:
            raise DagNotFound(f"the DAG file {fileloc} cannot be read: {exc.strerror}") from None
        cached = self._loaded.get(fileloc)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        result = load_dag_file(Path(fileloc))
        self._loaded[fileloc] = (stamp, result)
        self.generation += 1
        return result


def _stamp(fileloc: str) -> tuple[int, int]:
    """What tells one version of a file from the next: its modification time and size."""
    stat = os.stat(fileloc)
    return stat.st_mtime_ns, stat.st_size


def _pick(result: FileLoadResult, dag_id: str, fileloc: str) -> DAG:
    for dag in result.dags:
        if dag.dag_id == dag_id:
            return dag
    if result.errors:
        raise TradewindError(
            f"DAG {dag_id!r} could not be loaded: " + "; ".join(e.summary() for e in result.errors)
        )
    raise DagNotFound(f"DAG {dag_id!r} is no longer defined in {fileloc}")
