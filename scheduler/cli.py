"""Commands the scheduler package adds to `tradewind`: those that parse DAG files or run
tasks (`dags list`, `dags test`, `tasks test`, ...)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradewind.cli.commands import add_output_option
from tradewind.cli.output import render
from tradewind.errors import TradewindError

if TYPE_CHECKING:
    from tradewind.cli.main import CliContext, Commands


def register(commands: Commands) -> None:
    """Called through the ``tradewind.cli`` entry point."""
    from scheduler import backfill_cli, daemon_cli

    daemon_cli.register(commands)
    backfill_cli.register(commands)
    parser = commands.command("list", _dags_list, "List the DAGs in the DAG folder.", group="dags")
    add_output_option(parser)
    parser.add_argument("--include-stale", action="store_true", help="also DAGs whose file is gone")
    parser = commands.command(
        "list-import-errors", _import_errors, "List DAG files that failed to load.", group="dags"
    )
    add_output_option(parser)
    parser = commands.command(
        "report", _report, "Show how long each DAG file took to parse.", group="dags"
    )
    add_output_option(parser)
    commands.command(
        "reserialize",
        _reserialize,
        "Parse every DAG file again and store the results.",
        group="dags",
    )
    parser = commands.command(
        "show", _show, "Print a DAG's tasks as a dependency tree.", group="dags"
    )
    parser.add_argument("dag_id")
    parser = commands.command("details", _details, "Show a DAG's settings.", group="dags")
    parser.add_argument("dag_id")
    add_output_option(parser)
    parser = commands.command(
        "next-execution", _next_execution, "Print the next logical dates of a DAG.", group="dags"
    )
    parser.add_argument("dag_id")
    parser.add_argument("-n", "--num-executions", type=int, default=1, help="how many (default 1)")
    parser = commands.command("list", _tasks_list, "List the tasks of a DAG.", group="tasks")
    parser.add_argument("dag_id")
    parser.add_argument("-t", "--tree", action="store_true", help="as a dependency tree")
    parser = commands.command(
        "test", _dags_test, "Run a DAG once, in this process, and report each task.", group="dags"
    )
    parser.add_argument("dag_id")
    parser.add_argument("logical_date", nargs="?", help="ISO date or datetime (default: now)")
    parser.add_argument("-c", "--conf", help="run conf as a JSON object, checked against params")
    add_output_option(parser)
    parser = commands.command(
        "test",
        _tasks_test,
        "Run one task once in a test run (upstream tasks are not run).",
        group="tasks",
    )
    parser.add_argument("dag_id")
    parser.add_argument("task_id")
    parser.add_argument("logical_date", nargs="?", help="ISO date or datetime (default: now)")
    parser.add_argument("-c", "--conf", help="run conf as a JSON object")
    parser = commands.command(
        "render", _tasks_render, "Print a task's rendered templates.", group="tasks"
    )
    parser.add_argument("dag_id")
    parser.add_argument("task_id")
    parser.add_argument("logical_date", nargs="?", help="ISO date or datetime (default: now)")


def parse_logical_date(value: str | None, timezone: str) -> datetime | None:
    """An ISO date or datetime; a value without an offset is in ``timezone``."""
    if value is None:
        return None
    from tradewind.schedules import to_utc

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TradewindError(f"logical date {value!r} is not an ISO date or datetime") from None
    return to_utc(parsed, default_tz=timezone)


def parse_conf(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        conf = json.loads(value)
    except ValueError as exc:
        raise TradewindError(f"--conf is not valid JSON: {exc}") from None
    if not isinstance(conf, dict):
        raise TradewindError("--conf must be a JSON object, e.g. '{\"epochs\": 5}'")
    return conf


def _processor(ctx: CliContext) -> Any:
    from scheduler.dag_processing.processor import DagFileProcessor

    return DagFileProcessor(ctx.session_factory, ctx.settings)


def _dags_list(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy import select

    from tradewind.db import read_session
    from tradewind.models import DagModel
    from tradewind.models.base import utcnow

    _processor(ctx).process(now=utcnow())
    with read_session(ctx.session_factory) as session:
        query = select(DagModel).order_by(DagModel.dag_id)
        if not args.include_stale:
            query = query.where(DagModel.is_stale.is_(False))
        rows = [
            {
                "dag_id": m.dag_id,
                "fileloc": m.relative_fileloc or m.fileloc,
                "owners": m.owners,
                "is_paused": m.is_paused,
                "schedule": m.timetable_summary,
            }
            for m in session.scalars(query)
        ]
    render(rows, args.output)
    _warn_import_errors(ctx)
    return 0


def _warn_import_errors(ctx: CliContext) -> None:
    from scheduler.dag_processing.processor import import_error_count
    from tradewind.db import read_session

    with read_session(ctx.session_factory) as session:
        count = import_error_count(session)
    if count:
        print(
            f"{count} DAG file(s) failed to load; see `tradewind dags list-import-errors`",
            file=sys.stderr,
        )


def _import_errors(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy import select

    from tradewind.db import read_session
    from tradewind.models import ParseImportError
    from tradewind.models.base import utcnow

    _processor(ctx).process(now=utcnow())
    with read_session(ctx.session_factory) as session:
        rows = [
            {
                "filepath": e.filename,
                "line": e.lineno,
                "error": e.message,
            }
            for e in session.scalars(select(ParseImportError).order_by(ParseImportError.filename))
        ]
    render(rows, args.output)
    return 1 if rows else 0


def _report(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy import select

    from tradewind.db import read_session
    from tradewind.models import DagFile
    from tradewind.models.base import utcnow

    _processor(ctx).process(now=utcnow(), force=True)
    with read_session(ctx.session_factory) as session:
        files = session.scalars(select(DagFile).order_by(DagFile.parse_duration.desc()))
        rows = [
            {
                "file": f.relative_fileloc,
                "duration": f"{f.parse_duration:.3f}s",
                "dag_num": f.dag_count,
                "task_num": f.task_count,
                "errors": f.has_error,
            }
            for f in files
        ]
    render(rows, args.output)
    return 0


def _reserialize(_args: argparse.Namespace, ctx: CliContext) -> int:
    from tradewind.models.base import utcnow

    report = _processor(ctx).process(now=utcnow(), force=True)
    print(
        f"Parsed {len(report.parsed)} file(s): {len(report.new_versions)} new DAG version(s), "
        f"{len(report.errors)} import error(s)."
    )
    return 1 if report.errors else 0


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    dag = _serialized(ctx, args.dag_id)
    print(f"<DAG: {dag.dag_id}>  schedule: {dag.raw['timetable_summary']}")
    for line in dependency_tree(dag):
        print(line)
    return 0


def _serialized(ctx: CliContext, dag_id: str) -> Any:
    from scheduler.dag_test import find_parsed_dag
    from tradewind.dagruns import latest_version
    from tradewind.db import read_session
    from tradewind.models.base import utcnow
    from tradewind.serialization import SerializedDag

    find_parsed_dag(ctx.session_factory, ctx.settings, dag_id, now=utcnow())
    with read_session(ctx.session_factory) as session:
        return SerializedDag.from_dict(latest_version(session, dag_id).serialized)


def _details(args: argparse.Namespace, ctx: CliContext) -> int:
    from tradewind.db import read_session
    from tradewind.models import DagModel

    dag = _serialized(ctx, args.dag_id)
    with read_session(ctx.session_factory) as session:
        model = session.get(DagModel, args.dag_id)
        paused = model.is_paused if model else None
        fileloc = model.fileloc if model else None
    raw = dag.raw
    fields = {
        "dag_id": dag.dag_id,
        "fileloc": fileloc,
        "is_paused": paused,
        "description": raw["description"],
        "owners": raw["owner"],
        "tags": raw["tags"],
        "timetable_summary": raw["timetable_summary"],
        "timetable_description": raw["timetable_description"],
        "timezone": raw["timezone"],
        "start_date": raw["start_date"],
        "end_date": raw["end_date"],
        "catchup": raw["catchup"],
        "max_active_runs": raw["max_active_runs"],
        "max_active_tasks": raw["max_active_tasks"],
        "dagrun_timeout": raw["dagrun_timeout"],
        "params": {name: p["value"] for name, p in raw["params"].items()},
        "task_count": len(dag.tasks),
    }
    if args.output == "table":
        render([{"property": k, "value": v} for k, v in fields.items()], "table")
    else:
        render([fields], args.output)
    return 0


def _next_execution(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy import select

    from tradewind.db import read_session
    from tradewind.models import DagRun
    from tradewind.models.base import utcnow
    from tradewind.schedules import DagRunInfo, DataInterval, TimeRestriction, next_runs

    dag = _serialized(ctx, args.dag_id)
    if not dag.schedule.can_be_scheduled:
        print(f"DAG {args.dag_id} has no schedule (schedule=None): it runs only when triggered.")
        return 0
    with read_session(ctx.session_factory) as session:
        last = session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == args.dag_id, DagRun.run_type == "scheduled")
            .order_by(DagRun.logical_date.desc())
            .limit(1)
        ).first()
    last_info = None
    if last is not None and last.data_interval_start and last.data_interval_end:
        interval = DataInterval(last.data_interval_start, last.data_interval_end)
        last_info = DagRunInfo(last.run_after, last.logical_date, interval)
    restriction = TimeRestriction(dag.start_date, dag.end_date, dag.catchup)
    runs = next_runs(
        dag.schedule, restriction, now=utcnow(), count=args.num_executions, last_automated=last_info
    )
    for info in runs:
        when = info.logical_date or info.run_after
        print(when.isoformat())
    if not runs:
        print("None")
    return 0


def _tasks_list(args: argparse.Namespace, ctx: CliContext) -> int:
    dag = _serialized(ctx, args.dag_id)
    lines = dependency_tree(dag) if args.tree else sorted(dag.tasks)
    for line in lines:
        print(line)
    return 0


def dependency_tree(dag: Any) -> list[str]:
    """Each root, then its downstream tasks indented below it (shared tasks repeat)."""
    lines: list[str] = []

    def walk(task_id: str, depth: int, path: tuple[str, ...]) -> None:
        spec = dag.tasks[task_id]
        mapped = " [mapped]" if spec.is_mapped else ""
        lines.append(f"{'    ' * depth}<Task({spec.operator}): {task_id}>{mapped}")
        for child in spec.downstream:
            if child not in path:
                walk(child, depth + 1, (*path, child))

    for spec in dag.tasks.values():
        if not spec.upstream:
            walk(spec.task_id, 0, (spec.task_id,))
    return lines


def _dags_test(args: argparse.Namespace, ctx: CliContext) -> int:
    from scheduler.dag_test import run_dag_test

    logical_date = parse_logical_date(args.logical_date, ctx.settings.default_timezone)
    result = run_dag_test(
        ctx.session_factory,
        ctx.settings,
        args.dag_id,
        logical_date=logical_date,
        conf=parse_conf(args.conf),
        echo=sys.stdout,
    )
    print()
    render(result.tasks, args.output)
    print(f"\nDAG run {result.run_id} of {result.dag_id}: {result.state}")
    return 0 if str(result.state) == "success" else 1


def _tasks_test(args: argparse.Namespace, ctx: CliContext) -> int:
    from scheduler.task_test import run_task_test

    logical_date = parse_logical_date(args.logical_date, ctx.settings.default_timezone)
    state = run_task_test(
        ctx.session_factory,
        ctx.settings,
        args.dag_id,
        args.task_id,
        logical_date=logical_date,
        conf=parse_conf(args.conf),
    )
    print(f"\nTask {args.task_id} of {args.dag_id}: {state}")
    return 0 if state == "success" else 1


def _tasks_render(args: argparse.Namespace, ctx: CliContext) -> int:
    from scheduler.task_test import render_task

    logical_date = parse_logical_date(args.logical_date, ctx.settings.default_timezone)
    for field, value in render_task(
        ctx.session_factory, ctx.settings, args.dag_id, args.task_id, logical_date
    ).items():
        print(f"# ----------------------------------------------------------\n# property: {field}")
        print(f"# ----------------------------------------------------------\n{value}\n")
    return 0
