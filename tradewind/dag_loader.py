"""Finding DAG files and importing one of them in this process.

The DAG file processor calls `load_dag_file` inside a forked child (so a file that hangs
or exits takes only the child down); the task runner calls it directly to get the
operator it must run. Errors are returned, never raised: each names the file and line.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import os
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from tradewind.errors import DagDefinitionError

if TYPE_CHECKING:
    from tradewind.sdk.dag import DAG

IGNORE_FILE = ".tradewindignore"


@dataclass(frozen=True, slots=True)
class ImportErrorInfo:
    """Why a DAG file (or one DAG in it) failed to load, and where."""

    fileloc: str
    lineno: int | None
    message: str
    stacktrace: str

    def summary(self) -> str:
        where = f"{self.fileloc}:{self.lineno}" if self.lineno else self.fileloc
        return f"{where}: {self.message}"


@dataclass
class FileLoadResult:
    fileloc: str
    dags: list[DAG] = field(default_factory=list)
    errors: list[ImportErrorInfo] = field(default_factory=list)
    duration: float = 0.0


# --- discovering files ----------------------------------------------------------------


def list_dag_files(folder: Path, *, safe_mode: bool = True) -> list[Path]:
    """Python files under ``folder`` that may define DAGs, sorted.

    Honours ``.tradewindignore`` files (one glob pattern per line, relative to the folder
    holding the ignore file, ``#`` comments) and, in safe mode, skips files whose text
    mentions neither ``dag`` nor ``DAG``, as Airflow does.
    """
    folder = folder.resolve()
    if not folder.is_dir():
        return []
    found = [path for path in _walk(folder, []) if path.suffix == ".py"]
    if safe_mode:
        found = [path for path in found if might_contain_dag(path)]
    return sorted(found)


def _walk(directory: Path, patterns: list[tuple[Path, str]]) -> Iterator[Path]:
    ignore = directory / IGNORE_FILE
    if ignore.is_file():
        patterns = patterns + [(directory, p) for p in _read_patterns(ignore)]
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if _ignored(path, patterns):
            continue
        if entry.is_dir(follow_symlinks=True):
            yield from _walk(path, patterns)
        elif entry.is_file(follow_symlinks=True):
            yield path


def _read_patterns(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _ignored(path: Path, patterns: list[tuple[Path, str]]) -> bool:
    for base, pattern in patterns:
        relative = path.relative_to(base).as_posix()
        glob = pattern.rstrip("/")
        if fnmatch.fnmatch(relative, glob) or fnmatch.fnmatch(path.name, glob):
            return True
        if relative.startswith(glob + "/"):
            return True
    return False


def might_contain_dag(path: Path) -> bool:
    try:
        content = path.read_bytes()
    except OSError:
        return False
    return b"dag" in content.lower()


# --- importing one file -----------------------------------------------------------------


def add_to_import_path(folder: Path) -> None:
    """Let DAG files import helper modules from the DAG folder, as Airflow does."""
    entry = str(folder)
    if entry not in sys.path:
        sys.path.insert(0, entry)


def module_name_for(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"tradewind_dag_{digest}_{stem}"


def load_dag_file(path: Path) -> FileLoadResult:
    """Import one DAG file and return the valid DAGs it defines plus its errors."""
    path = path.resolve()

    def run(name: str) -> None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)

    return _load(str(path), module_name_for(path), run)


def load_dag_source(source: str, fileloc: str, *, tag: str) -> FileLoadResult:
    """Run the stored source of a DAG file (an earlier version) as if it were the file.

    Tracebacks and template lookups still name the original path.
    """

    def run(name: str) -> None:
        module = types.ModuleType(name)
        module.__file__ = fileloc
        sys.modules[name] = module
        exec(compile(source, fileloc, "exec"), module.__dict__)

    return _load(fileloc, f"{module_name_for(Path(fileloc))}_v{tag}", run)


def _load(fileloc: str, name: str, run: Callable[[str], None]) -> FileLoadResult:
    from tradewind.sdk._context import DagCollector

    result = FileLoadResult(fileloc=fileloc)
    started = time.perf_counter()
    with DagCollector() as collector:
        try:
            run(name)
        except (Exception, SystemExit) as exc:
            sys.modules.pop(name, None)
            result.errors.append(error_from_exception(exc, fileloc))
            result.duration = time.perf_counter() - started
            return result
    _accept_dags(collector.dags, fileloc, result)
    result.duration = time.perf_counter() - started
    return result


def _accept_dags(dags: list[DAG], fileloc: str, result: FileLoadResult) -> None:
    seen: dict[str, DAG] = {}
    for dag in dags:
        if dag.dag_id in seen and seen[dag.dag_id] is not dag:
            result.errors.append(
                ImportErrorInfo(
                    fileloc,
                    dag.lineno if dag.fileloc == fileloc else None,
                    f"DAG id {dag.dag_id!r} is defined more than once in this file",
                    "",
                )
            )
            continue
        dag.fileloc = fileloc
        try:
            dag.validate()
        except DagDefinitionError as exc:
            result.errors.append(error_from_exception(exc, fileloc))
            continue
        seen[dag.dag_id] = dag
    result.dags = list(seen.values())


def error_from_exception(exc: BaseException, fileloc: str) -> ImportErrorInfo:
    """Describe an exception raised while loading ``fileloc``, pointing at its line."""
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    message = f"{type(exc).__name__}: {exc}"
    lineno: int | None = None
    if isinstance(exc, SyntaxError):
        if exc.filename and Path(exc.filename).resolve() == Path(fileloc):
            lineno = exc.lineno
        message = f"SyntaxError: {exc.msg}"
    elif isinstance(exc, DagDefinitionError):
        message = f"DagDefinitionError: {exc.message}"
        if exc.filename and Path(exc.filename).resolve() == Path(fileloc):
            lineno = exc.lineno
    elif isinstance(exc, SystemExit):
        message = f"the DAG file called sys.exit({exc.code!r}) while being imported"
    if lineno is None:
        lineno = last_line_in(exc.__traceback__, fileloc)
    return ImportErrorInfo(fileloc, lineno, message, stack)


def last_line_in(tb: TracebackType | None, fileloc: str) -> int | None:
    """The line of the innermost traceback frame that is in ``fileloc``."""
    lineno = None
    for frame, line in traceback.walk_tb(tb):
        if frame.f_code.co_filename == fileloc:
            lineno = line
    return lineno
