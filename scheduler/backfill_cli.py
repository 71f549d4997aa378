"""`tradewind backfill create | list | pause | unpause | cancel`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from tradewind.cli.commands import add_output_option
from tradewind.cli.output import render
from tradewind.errors import TradewindError

if TYPE_CHECKING:
    from tradewind.backfills import Progress
    from tradewind.cli.main import CliContext, Commands

WAIT_POLL_SECONDS = 1.0
BAR_WIDTH = 30


def register(commands: Commands) -> None:
    commands.group("backfill", "Run a DAG over a range of past dates.")
    parser = commands.command(
        "create",
        _create,
        "Create a backfill; the scheduler creates and runs its runs.",
        group="backfill",
    )
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--from-date", required=True, help="first logical date (ISO)")
    parser.add_argument("--to-date", required=True, help="last logical date (ISO), included")
    parser.add_argument(
        "--max-active-runs",
        type=int,
        default=10,
        help="runs of the backfill unfinished at once (default 10)",
    )
    parser.add_argument(
        "--reprocess-behavior",
        choices=["none", "failed", "completed"],
        default="none",
        help="what to do with dates that already have a run (default: none, skip them)",
    )
    parser.add_argument("--run-backwards", action="store_true", help="latest dates first")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the dates and what would happen; create nothing",
    )
    parser.add_argument(
        "-c", "--conf", "--dag-run-conf", dest="conf", help="conf of every run, a JSON object"
    )
    parser.add_argument("--wait", action="store_true", help="show progress until the backfill ends")
    parser = commands.command("list", _list, "List backfills.", group="backfill")
    parser.add_argument("--dag-id", help="only this DAG's")
    add_output_option(parser)
    for name, handler, text in (
        ("pause", _pause, "Pause a backfill: it creates and starts no more runs."),
        ("unpause", _unpause, "Let a paused backfill go on."),
        ("cancel", _cancel, "Cancel a backfill: no more runs; its queued runs fail."),
    ):
        parser = commands.command(name, handler, text, group="backfill")
        parser.add_argument("backfill_id", type=int)


def _create(args: argparse.Namespace, ctx: CliContext) -> int:
    from scheduler.cli import parse_conf, parse_logical_date
    from scheduler.dag_test import find_parsed_dag
    from tradewind.backfills import BackfillRequest, create_backfill, plan
    from tradewind.db import read_session, session_scope
    from tradewind.models.base import utcnow

    now = utcnow()
    model = find_parsed_dag(ctx.session_factory, ctx.settings, args.dag_id, now=now)
    timezone = ctx.settings.default_timezone
    request = BackfillRequest(
        dag_id=args.dag_id,
        from_date=_date(parse_logical_date(args.from_date, timezone), "--from-date"),
        to_date=_date(parse_logical_date(args.to_date, timezone), "--to-date"),
        max_active_runs=args.max_active_runs,
        reprocess_behavior=args.reprocess_behavior,
        run_backwards=args.run_backwards,
        conf=parse_conf(args.conf),
        triggering_user_name="cli",
    )
    if args.dry_run:
        with read_session(ctx.session_factory) as session:
            planned = plan(session, request, now=now)
        for run in planned:
            what = (
                f"skip: {run.skip_reason}"
                if run.skip_reason
                else (f"run again (now {run.existing_state})" if run.existing_state else "create")
            )
            print(f"{run.logical_date.isoformat()}  {what}")
        print(f"{len(planned)} date(s); dry run, nothing created.")
        return 0
    with session_scope(ctx.session_factory) as session:
        backfill = create_backfill(session, request, now=now)
        backfill_id, total = backfill.id, _count_dates(session, backfill.id)
    print(
        f"Created backfill {backfill_id} of {args.dag_id}: {total} date(s), "
        f"at most {args.max_active_runs} run(s) at once; the scheduler runs them."
    )
    if model.is_paused:
        print(
            f"Note: {args.dag_id} is paused; the backfill starts once you unpause it "
            f"(`tradewind dags unpause {args.dag_id}`)."
        )
    if not args.wait:
        print(f"Follow it with `tradewind backfill list --dag-id {args.dag_id}`.")
        return 0
    return _wait(ctx, backfill_id, args.dag_id, sys.stdout)


def _date(value: Any, flag: str) -> Any:
    if value is None:  # pragma: no cover - argparse requires the flag
        raise TradewindError(f"{flag} is required")
    return value


def _count_dates(session: Any, backfill_id: int) -> int:
    from sqlalchemy import func, select

    from tradewind.models import BackfillDagRun

    count = session.scalar(select(func.count()).where(BackfillDagRun.backfill_id == backfill_id))
    return int(count or 0)


def _wait(ctx: CliContext, backfill_id: int, dag_id: str, out: TextIO) -> int:
    """Show a progress bar until the backfill completes; Ctrl-C leaves it running."""
    from tradewind.backfills import get_backfill, progress
    from tradewind.db import read_session

    live = out.isatty()
    last = ""
    try:
        while True:
            with read_session(ctx.session_factory) as session:
                backfill = get_backfill(session, backfill_id)
                done = backfill.completed_at is not None
                shown = progress_line(progress(session, [backfill_id])[backfill_id])
            if shown != last or live:
                out.write(("\r" if live else "") + shown + ("" if live else "\n"))
                out.flush()
                last = shown
            if done:
                if live:
                    out.write("\n")
                out.write(f"Backfill {backfill_id} completed.\n")
                return 0
            time.sleep(WAIT_POLL_SECONDS)
    except KeyboardInterrupt:
        out.write(
            f"\nStopped watching; backfill {backfill_id} goes on in the scheduler.\n"
            f"  follow it:  tradewind backfill list --dag-id {dag_id}\n"
            f"  cancel it:  tradewind backfill cancel {backfill_id}\n"
        )
        return 0


def progress_line(progress: Progress) -> str:
    """``[#####.....] 12/30 done · 1 failed · 3 running · 2 skipped``."""
    total = max(progress.total, 1)
    filled = round(BAR_WIDTH * progress.done / total)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    parts = [f"[{bar}] {progress.done}/{progress.total} done"]
    for label, count in (
        ("failed", progress.failed),
        ("running", progress.running + progress.queued),
        ("skipped", progress.skipped),
    ):
        if count:
            parts.append(f"{count} {label}")
    return " · ".join(parts)


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy import select

    from tradewind.backfills import progress
    from tradewind.db import read_session
    from tradewind.models import Backfill

    with read_session(ctx.session_factory) as session:
        query = select(Backfill).order_by(Backfill.id)
        if args.dag_id:
            query = query.where(Backfill.dag_id == args.dag_id)
        backfills = list(session.scalars(query))
        progresses = progress(session, [b.id for b in backfills])
    rows = []
    for backfill in backfills:
        done = progresses[backfill.id]
        state = (
            "completed"
            if backfill.completed_at is not None
            else ("paused" if backfill.is_paused else "running")
        )
        rows.append(
            {
                "id": backfill.id,
                "dag_id": backfill.dag_id,
                "from_date": backfill.from_date.isoformat(),
                "to_date": backfill.to_date.isoformat(),
                "state": state,
                "runs": f"{done.done}/{done.total}",
                "failed": done.failed,
                "running": done.running + done.queued,
                "skipped": done.skipped,
                "max_active_runs": backfill.max_active_runs,
                "reprocess_behavior": backfill.reprocess_behavior,
            }
        )
    render(rows, args.output)
    return 0


def _change(ctx: CliContext, backfill_id: int, action: str) -> int:
    from tradewind import backfills
    from tradewind.db import session_scope
    from tradewind.models.base import utcnow

    with session_scope(ctx.session_factory) as session:
        backfills.change(session, backfill_id, action, now=utcnow())
    print(f"Backfill {backfill_id}: {action}{'led' if action == 'cancel' else 'd'}.")
    return 0


def _pause(args: argparse.Namespace, ctx: CliContext) -> int:
    return _change(ctx, args.backfill_id, "pause")


def _unpause(args: argparse.Namespace, ctx: CliContext) -> int:
    return _change(ctx, args.backfill_id, "unpause")


def _cancel(args: argparse.Namespace, ctx: CliContext) -> int:
    return _change(ctx, args.backfill_id, "cancel")
