"""The DAG file processor: keep the database in step with the DAG folder.

One pass lists the DAG files, parses those that changed (or all, when forced) in
children, and records per file: new DAG versions (only when a DAG's content hash
changed), import errors with file and line (cleared once fixed), and DAGs whose file
no longer defines them (marked stale).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.dag_processing.parsing import ParsedFile, parse_files
from tradewind.asset_events import sync_references
from tradewind.dag_loader import ImportErrorInfo, add_to_import_path, list_dag_files
from tradewind.db import session_scope
from tradewind.models import DagFile, DagModel, DagTag, DagVersion, ParseImportError
from tradewind.serialization import content_hash

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from tradewind.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class ProcessingReport:
    """What one pass did."""

    files_seen: int = 0
    parsed: list[ParsedFile] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    new_versions: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[ImportErrorInfo]:
        return [e for p in self.parsed for e in p.errors]


class DagFileProcessor:
    def __init__(
        self, factory: sessionmaker[Session], settings: Settings, *, periodic_refresh: bool = False
    ) -> None:
        self.periodic_refresh = periodic_refresh
        self.factory = factory
        self.settings = settings
        self.folder = settings.resolved_dags_folder
        self._snapshots: dict[str, tuple[float, int, str | None]] = {}

    def process(
        self, *, now: datetime, force: bool = False, only: Iterable[Path] = ()
    ) -> ProcessingReport:
        """One pass over the folder (or just ``only``), parsing what needs it."""
        report = ProcessingReport()
        files = [p.resolve() for p in only] or list_dag_files(self.folder)
        report.files_seen = len(files)
        with session_scope(self.factory) as session:
            known = {row.fileloc: row for row in session.scalars(select(DagFile))}
        due = [p for p in files if force or self._needs_parse(p, known.get(str(p)), now)]
        # What each file was when it was parsed: an edit during the parse is seen next time.
        self._snapshots = {str(p): _snapshot(p) for p in due}
        add_to_import_path(self.folder)
        if due:
            report.parsed = parse_files(
                due,
                timeout=self.settings.dag_file_processor_timeout_seconds,
                parallelism=self.settings.parsing_processes,
                output_dir=self.settings.logs_folder / "dag_processor",
            )
        with session_scope(self.factory) as session:
            for parsed in report.parsed:
                report.new_versions.extend(self._store_isolated(session, parsed, now))
            if not only:
                present = {str(p) for p in files}
                report.removed_files = sorted(set(known) - present)
                for fileloc in report.removed_files:
                    _forget_file(session, fileloc)
        return report

    def _needs_parse(self, path: Path, known: DagFile | None, now: datetime) -> bool:
        if known is None:
            return True
        try:
            stat = path.stat()
        except OSError:
            return False
        if stat.st_mtime != known.mtime or stat.st_size != known.size:
            return True
        refresh = timedelta(seconds=self.settings.min_file_process_interval_seconds)
        return self.periodic_refresh and known.last_parsed_time + refresh <= now

    def _relative(self, fileloc: str) -> str:
        try:
            return str(Path(fileloc).relative_to(self.folder))
        except ValueError:
            return fileloc

    # --- storing one file's result --------------------------------------------------

    def _store_isolated(self, session: Session, parsed: ParsedFile, now: datetime) -> list[str]:
        """Store one file; if the database refuses it, that is this file's import error.

        A unique key clash at the first attempt means another DAG processor (another
        scheduler's, or a CLI command's) stored the same new DAG at the same moment; the
        second attempt finds its rows and updates them."""
        try:
            try:
                with session.begin_nested():
                    return self._store(session, parsed, now)
            except IntegrityError:
                logger.info("%s was stored meanwhile by another process", parsed.fileloc)
                with session.begin_nested():
                    return self._store(session, parsed, now)
        except Exception as exc:
            logger.exception("Could not store the DAGs of %s", parsed.fileloc)
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            error = ImportErrorInfo(parsed.fileloc, None, f"could not store its DAGs: {reason}", "")
            with session.begin_nested():
                relative = self._relative(parsed.fileloc)
                _replace_errors(session, parsed.fileloc, relative, [error], now)
            return []

    def _store(self, session: Session, parsed: ParsedFile, now: datetime) -> list[str]:
        fileloc, relative = parsed.fileloc, self._relative(parsed.fileloc)
        errors = list(parsed.errors)
        source = self._snapshots.get(fileloc, (0.0, 0, None))[2]
        new_versions = []
        kept: set[str] = set()
        for serialized in parsed.dags:
            clash = _clashing_file(session, serialized["dag_id"], fileloc)
            if clash is not None:
                errors.append(
                    ImportErrorInfo(
                        fileloc,
                        None,
                        f"DAG id {serialized['dag_id']!r} is already defined in {clash}",
                        "",
                    )
                )
                continue
            kept.add(serialized["dag_id"])
            if self._store_dag(session, serialized, fileloc, relative, source, parsed, now):
                new_versions.append(serialized["dag_id"])
        failed_entirely = bool(errors) and not parsed.dags
        _mark_missing(session, fileloc, kept, keep_active=failed_entirely)
        _replace_errors(session, fileloc, relative, errors, now)
        mtime, size, _ = self._snapshots.get(fileloc, (0.0, 0, None))
        _record_file(session, fileloc, relative, parsed, errors, now, mtime, size)
        return new_versions

    def _store_dag(
        self,
        session: Session,
        serialized: dict[str, Any],
        fileloc: str,
        relative: str,
        source: str | None,
        parsed: ParsedFile,
        now: datetime,
    ) -> bool:
        dag_id = serialized["dag_id"]
        model = session.get(DagModel, dag_id)
        if model is None:
            paused = serialized.get("is_paused_upon_creation")
            model = DagModel(
                dag_id=dag_id,
                is_paused=self.settings.dags_are_paused_at_creation if paused is None else paused,
            )
            session.add(model)
        _update_dag_row(model, serialized, fileloc, relative, parsed, now)
        _sync_tags(session, model, serialized["tags"])
        changed = _add_version_if_changed(session, dag_id, serialized, fileloc, source)
        if changed:
            model.next_dagrun_run_after = None  # the schedule may have changed: recompute
            session.flush()  # the DAG row exists before references point at it
            sync_references(session, dag_id, serialized)
        return changed


def _update_dag_row(
    model: DagModel,
    serialized: dict[str, Any],
    fileloc: str,
    relative: str,
    parsed: ParsedFile,
    now: datetime,
) -> None:
    tasks = serialized["tasks"]
    model.dag_display_name = serialized["dag_display_name"]
    model.is_stale = False
    model.fileloc = fileloc
    model.relative_fileloc = relative
    model.owners = serialized["owner"]
    model.description = serialized["description"]
    model.timetable_summary = serialized["timetable_summary"]
    model.timetable_description = serialized["timetable_description"]
    model.timetable_type = serialized["timetable_type"]
    model.max_active_runs = serialized["max_active_runs"]
    model.max_active_tasks = serialized["max_active_tasks"]
    model.max_consecutive_failed_dag_runs = serialized["max_consecutive_failed_dag_runs"]
    model.has_task_concurrency_limits = any(
        t["max_active_tis_per_dag"] or t["max_active_tis_per_dagrun"] for t in tasks
    )
    model.has_import_errors = False
    model.last_parsed_time = now
    model.last_parse_duration = parsed.duration


def _sync_tags(session: Session, model: DagModel, tags: list[str]) -> None:
    current = {t.name for t in model.tags}
    if current == set(tags):
        return
    model.tags = [DagTag(dag_id=model.dag_id, name=name) for name in sorted(set(tags))]
    session.flush()


def _add_version_if_changed(
    session: Session, dag_id: str, serialized: dict[str, Any], fileloc: str, source: str | None
) -> bool:
    digest = content_hash(serialized)
    latest = session.execute(
        select(DagVersion.version_number, DagVersion.content_hash)
        .where(DagVersion.dag_id == dag_id)
        .order_by(DagVersion.version_number.desc())
        .limit(1)
    ).first()
    if latest is not None and latest.content_hash == digest:
        return False
    if latest is not None and source is not None:
        _warn_if_time_dependent(session, dag_id, serialized, source, latest.version_number)
    number = (latest.version_number if latest else 0) + 1
    session.add(
        DagVersion(
            dag_id=dag_id,
            version_number=number,
            content_hash=digest,
            serialized=serialized,
            source_code=source,
            fileloc=fileloc,
        )
    )
    logger.info("DAG %s: stored version %s", dag_id, number)
    return True


SHOWN_CHANGES = 5  # fields named in the warning of `_warn_if_time_dependent`


def _warn_if_time_dependent(
    session: Session, dag_id: str, serialized: dict[str, Any], source: str, number: int
) -> None:
    """Warn when a DAG changed although its file's text did not: its definition depends
    on something else, most often the time it is parsed (``start_date=datetime.now()``),
    and then every parse stores a new version whose tries read and compile their own
    copy of it."""
    before = session.execute(
        select(DagVersion.source_code, DagVersion.serialized).where(
            DagVersion.dag_id == dag_id, DagVersion.version_number == number
        )
    ).first()
    if before is None or before.source_code != source:
        return
    changed = _changed_fields(before.serialized, serialized)
    if len(changed) > SHOWN_CHANGES:
        changed[SHOWN_CHANGES:] = [f"and {len(changed) - SHOWN_CHANGES} more"]
    logger.warning(
        "DAG %s changed although its file did not (%s): a new version is stored. If its "
        "definition depends on the time it is parsed, each parse stores another; use fixed "
        "values, e.g. start_date=datetime(2024, 1, 1) instead of datetime.now()",
        dag_id,
        ", ".join(changed) or "its serialized form",
    )


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The DAG's top-level fields that differ, and ``tasks.<task_id>.<field>`` for tasks."""
    changed = [
        key
        for key in sorted(old.keys() | new.keys())
        if key != "tasks" and old.get(key) != new.get(key)
    ]
    old_tasks = {t["task_id"]: t for t in old.get("tasks", [])}
    for task in new.get("tasks", []):
        previous = old_tasks.get(task["task_id"])
        if previous is None:
            continue
        changed.extend(
            f"tasks.{task['task_id']}.{key}"
            for key in sorted(task.keys() | previous.keys())
            if task.get(key) != previous.get(key)
        )
    if {t["task_id"] for t in new.get("tasks", [])} != set(old_tasks):
        changed.append("the task ids")
    return changed


def _clashing_file(session: Session, dag_id: str, fileloc: str) -> str | None:
    """Another, still existing file that already defines this DAG id."""
    model = session.get(DagModel, dag_id)
    if model is None or model.fileloc == fileloc or model.is_stale:
        return None
    if not os.path.exists(model.fileloc):
        return None
    return model.relative_fileloc or model.fileloc


def _mark_missing(session: Session, fileloc: str, kept: set[str], *, keep_active: bool) -> None:
    """DAGs this file defined before but not now: stale, or flagged when the file broke."""
    for model in session.scalars(select(DagModel).where(DagModel.fileloc == fileloc)):
        if model.dag_id in kept:
            continue
        if keep_active:
            model.has_import_errors = True
        else:
            model.is_stale = True


def _replace_errors(
    session: Session, fileloc: str, relative: str, errors: list[ImportErrorInfo], now: datetime
) -> None:
    session.execute(delete(ParseImportError).where(ParseImportError.fileloc == fileloc))
    for error in errors:
        session.add(
            ParseImportError(
                filename=relative,
                fileloc=fileloc,
                lineno=error.lineno,
                message=error.message,
                stacktrace=error.stacktrace or error.message,
                timestamp=now,
            )
        )


def _record_file(
    session: Session,
    fileloc: str,
    relative: str,
    parsed: ParsedFile,
    errors: list[ImportErrorInfo],
    now: datetime,
    mtime: float,
    size: int,
) -> None:
    row = session.get(DagFile, fileloc) or DagFile(fileloc=fileloc)
    row.relative_fileloc = relative
    row.mtime, row.size = mtime, size
    row.last_parsed_time = now
    row.parse_duration = parsed.duration
    row.dag_count = len(parsed.dags)
    row.task_count = sum(len(d["tasks"]) for d in parsed.dags)
    row.has_error = bool(errors)
    session.merge(row)


def _forget_file(session: Session, fileloc: str) -> None:
    for model in session.scalars(select(DagModel).where(DagModel.fileloc == fileloc)):
        model.is_stale = True
    session.execute(delete(ParseImportError).where(ParseImportError.fileloc == fileloc))
    session.execute(delete(DagFile).where(DagFile.fileloc == fileloc))


def _snapshot(path: Path) -> tuple[float, int, str | None]:
    try:
        stat = path.stat()
        return stat.st_mtime, stat.st_size, path.read_text(errors="replace")
    except OSError:
        return 0.0, 0, None


def import_error_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ParseImportError)) or 0)
