"""Commands that read DAG runs and task instances from the database."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from tradewind.cli.output import render
from tradewind.errors import DagRunNotFound

if TYPE_CHECKING:
    from tradewind.cli.main import CliContext, Commands


def register(commands: Commands) -> None:
    from tradewind.cli.commands import add_output_option

    commands.group("dags", "List, inspect and run DAGs.")
    commands.group("tasks", "List, inspect and test tasks.")
    parser = commands.command("list-runs", _list_runs, "List the runs of a DAG.", group="dags")
    parser.add_argument("dag_id")
    parser.add_argument("--state", help="only runs in this state")
    parser.add_argument(
        "--limit", type=_positive, default=100, help="at most this many (newest first)"
    )
    add_output_option(parser)
    parser = commands.command("state", _state, "Print the state of a DAG run.", group="dags")
    parser.add_argument("dag_id")
    parser.add_argument("run", help="run id, or the run's logical date")
    parser = commands.command(
        "states-for-dag-run", _states_for_run, "List the task instances of a run.", group="tasks"
    )
    parser.add_argument("dag_id")
    parser.add_argument("run_id")
    add_output_option(parser)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _list_runs(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy import select

    from tradewind.db import read_session
    from tradewind.errors import DagNotFound
    from tradewind.models import DagModel, DagRun

    with read_session(ctx.session_factory) as session:
        if session.get(DagModel, args.dag_id) is None:
            raise DagNotFound(f"DAG {args.dag_id!r} not found; see `tradewind dags list`")
        query = select(DagRun).where(DagRun.dag_id == args.dag_id)
        if args.state:
            query = query.where(DagRun.state == args.state)
        query = query.order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(args.limit)
        rows = [
            {
                "dag_id": r.dag_id,
                "run_id": r.run_id,
                "state": r.state,
                "run_type": r.run_type,
                "logical_date": r.logical_date,
                "start_date": r.start_date,
                "end_date": r.end_date,
            }
            for r in session.scalars(query)
        ]
    render(rows, args.output)
    return 0


def _find_run(session: Any, dag_id: str, run: str, timezone: str) -> Any:
    from datetime import datetime

    from sqlalchemy import select

    from tradewind.models import DagRun
    from tradewind.schedules import to_utc

    found = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run))
    if found is None:
        try:
            when = to_utc(datetime.fromisoformat(run), default_tz=timezone)
        except ValueError:
            when = None
        if when is not None:
            found = session.scalar(
                select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == when)
            )
    if found is None:
        raise DagRunNotFound(f"DAG {dag_id!r} has no run {run!r}")
    return found


def _state(args: argparse.Namespace, ctx: CliContext) -> int:
    from tradewind.db import read_session

    with read_session(ctx.session_factory) as session:
        run = _find_run(session, args.dag_id, args.run, ctx.settings.default_timezone)
        print(run.state)
    return 0


def _states_for_run(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy import select

    from tradewind.db import read_session
    from tradewind.models import TaskInstance

    with read_session(ctx.session_factory) as session:
        run = _find_run(session, args.dag_id, args.run_id, ctx.settings.default_timezone)
        query = (
            select(TaskInstance)
            .where(TaskInstance.dag_id == args.dag_id, TaskInstance.run_id == run.run_id)
            .order_by(TaskInstance.task_id, TaskInstance.map_index)
        )
        rows = [
            {
                "dag_id": ti.dag_id,
                "logical_date": run.logical_date,
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": ti.state,
                "try_number": ti.try_number,
                "start_date": ti.start_date,
                "end_date": ti.end_date,
            }
            for ti in session.scalars(query)
        ]
    render(rows, args.output)
    return 0
