"""`tradewind scheduler`, `tradewind dag-processor`, `dags trigger|pause|unpause`."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from typing import TYPE_CHECKING

from tradewind.errors import TradewindError
from tradewind.processes import configure_daemon_logging

if TYPE_CHECKING:
    from tradewind.cli.main import CliContext, Commands

logger = logging.getLogger(__name__)


def register(commands: Commands) -> None:
    parser = commands.command("scheduler", _scheduler, "Run the scheduler daemon.")
    parser.add_argument(
        "--no-dag-processor",
        action="store_true",
        help="do not start a DAG file processor (run `tradewind dag-processor` separately)",
    )
    commands.command("dag-processor", _dag_processor, "Run the DAG file processor daemon.")
    parser = commands.command(
        "triggerer", _triggerer, "Run the triggerer: the waits of deferred tasks."
    )
    parser.add_argument(
        "--capacity",
        type=_positive_int,
        help="triggers to run at once (default: TRADEWIND_TRIGGERER_CAPACITY, 1000)",
    )
    commands.command(
        "standalone",
        _standalone,
        "Run everything in one process tree (SQLite and the local executor by default).",
    )
    parser = commands.command("trigger", _trigger, "Queue a manual run of a DAG.", group="dags")
    parser.add_argument("dag_id")
    parser.add_argument("-c", "--conf", help="run conf as a JSON object, checked against params")
    parser.add_argument("-r", "--run-id", help="run id (default: manual__<logical date>)")
    parser.add_argument("-l", "--logical-date", help="ISO date or datetime (default: now)")
    for name, paused in (("pause", True), ("unpause", False)):
        parser = commands.command(
            name,
            _pause if paused else _unpause,
            f"{name.capitalize()} a DAG (paused DAGs get no new runs and run no tasks).",
            group="dags",
        )
        parser.add_argument("dag_id")


def _scheduler(args: argparse.Namespace, ctx: CliContext) -> int:
    from scheduler.executors import make_executor
    from scheduler.scheduler import Scheduler
    from scheduler.singleton import hold_scheduler_lock

    configure_daemon_logging(ctx.settings.log_level)
    factory = ctx.session_factory
    with hold_scheduler_lock(ctx.engine, factory, ctx.settings):
        processor = None if args.no_dag_processor else _start_dag_processor()
        try:
            Scheduler(factory, ctx.settings, make_executor(ctx.settings)).run()
        finally:
            if processor is not None:
                processor.terminate()
                processor.wait(timeout=30)
    return 0


def _standalone(_args: argparse.Namespace, ctx: CliContext) -> int:
    from scheduler.executors import make_executor
    from scheduler.scheduler import Scheduler
    from scheduler.singleton import hold_scheduler_lock
    from scheduler.standalone import TriggererOnDemand, banner, ensure_admin
    from tradewind.db import migrate

    configure_daemon_logging(ctx.settings.log_level)
    migrate(ctx.engine)
    factory = ctx.session_factory
    password = ensure_admin(factory, ctx.settings)
    with hold_scheduler_lock(ctx.engine, factory, ctx.settings):
        children = [_start_dag_processor(), _start_child("webserver")]
        triggerer = TriggererOnDemand(lambda: _start_child("triggerer"))
        try:
            print(banner(ctx.settings, ctx.settings.resolved_database_url, password), flush=True)
            scheduler = Scheduler(factory, ctx.settings, make_executor(ctx.settings))
            scheduler.companions.append(triggerer.tend)
            scheduler.run()
        finally:
            triggerer.stop()
            for child in reversed(children):
                child.terminate()
            for child in reversed(children):
                child.wait(timeout=30)
    return 0


def _start_dag_processor() -> subprocess.Popen[bytes]:
    return _start_child("dag-processor")


def _start_child(command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tradewind.cli.main", command], start_new_session=True
    )


def _dag_processor(_args: argparse.Namespace, ctx: CliContext) -> int:
    from scheduler.dag_processing.daemon import DagProcessorDaemon

    configure_daemon_logging(ctx.settings.log_level)
    DagProcessorDaemon(ctx.session_factory, ctx.settings).run()
    return 0


def _triggerer(args: argparse.Namespace, ctx: CliContext) -> int:
    from scheduler.triggerer import Triggerer

    configure_daemon_logging(ctx.settings.log_level)
    Triggerer(ctx.session_factory, ctx.settings, capacity=args.capacity).run()
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _trigger(args: argparse.Namespace, ctx: CliContext) -> int:
    from scheduler.cli import parse_conf, parse_logical_date
    from scheduler.dag_test import find_parsed_dag
    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.db import session_scope
    from tradewind.models.base import utcnow
    from tradewind.state import DagRunType

    now = utcnow()
    model = find_parsed_dag(ctx.session_factory, ctx.settings, args.dag_id, now=now)
    logical_date = parse_logical_date(args.logical_date, ctx.settings.default_timezone) or now
    with session_scope(ctx.session_factory) as session:
        run = create_dag_run(
            session,
            model,
            latest_version(session, args.dag_id),
            RunRequest(
                run_type=DagRunType.MANUAL,
                run_after=now,
                logical_date=logical_date,
                run_id=args.run_id,
                conf=parse_conf(args.conf),
                triggered_by="cli",
            ),
            now=now,
        )
        paused = model.is_paused
        print(f"Queued run {run.run_id} of {args.dag_id}.")
    if paused:
        print(
            f"Note: {args.dag_id} is paused; the run starts once you unpause it "
            f"(`tradewind dags unpause {args.dag_id}`)."
        )
    return 0


def _set_paused(ctx: CliContext, dag_id: str, paused: bool) -> int:
    from scheduler.dag_test import find_parsed_dag
    from tradewind.dags import set_paused
    from tradewind.db import session_scope
    from tradewind.models.base import utcnow

    find_parsed_dag(ctx.session_factory, ctx.settings, dag_id, now=utcnow())
    with session_scope(ctx.session_factory) as session:
        if set_paused(session, [dag_id], paused) == 0:
            raise TradewindError(f"DAG {dag_id!r} not found; is it in the DAG folder?")
    print(f"DAG {dag_id} is {'paused' if paused else 'unpaused'}.")
    return 0


def _pause(args: argparse.Namespace, ctx: CliContext) -> int:
    return _set_paused(ctx, args.dag_id, True)


def _unpause(args: argparse.Namespace, ctx: CliContext) -> int:
    return _set_paused(ctx, args.dag_id, False)
