"""Core commands: ``version``, ``db ...``, ``config list``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tradewind import __version__
from tradewind.cli.output import FORMATS, render

if TYPE_CHECKING:
    from tradewind.cli.main import CliContext, Commands


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=FORMATS, default="table", help="output format (default: table)"
    )


def register(commands: Commands) -> None:
    commands.command("version", _version, "Print the Tradewind version.")

    commands.group("db", "Manage the metadata database.")
    commands.command("migrate", _db_migrate, "Create or upgrade the schema.", group="db")
    commands.command("check", _db_check, "Check the database answers and is migrated.", group="db")
    reset = commands.command(
        "reset", _db_reset, "Drop all data and re-create the schema.", group="db"
    )
    reset.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    commands.group("config", "Show the configuration.")
    listing = commands.command(
        "list", _config_list, "Print every setting and its value.", group="config"
    )
    add_output_option(listing)

    commands.group("jobs", "Check the components that heartbeat.")
    check = commands.command(
        "check", _jobs_check, "Exit 0 if a live job of the type exists, 1 otherwise.", group="jobs"
    )
    check.add_argument(
        "--job-type", default="scheduler", help="scheduler, dag_processor, worker, triggerer"
    )
    check.add_argument("--hostname", help="only jobs on this host")
    check.add_argument("--limit", type=int, default=1, help="how many live jobs to look for")
    check.add_argument(
        "--allow-multiple", action="store_true", help="do not fail when several are alive"
    )

    from tradewind.cli import dag_commands, users

    dag_commands.register(commands)
    users.register(commands)


def _version(_args: argparse.Namespace, _ctx: CliContext) -> int:
    print(__version__)
    return 0


def _db_migrate(_args: argparse.Namespace, ctx: CliContext) -> int:
    from tradewind.db import head_revision, masked_url, migrate

    migrate(ctx.engine)
    print(f"Database {masked_url(ctx.engine.url)} is at revision {head_revision(ctx.engine)}.")
    return 0


def _db_check(_args: argparse.Namespace, ctx: CliContext) -> int:
    from tradewind.db import check_schema, masked_url

    check_schema(ctx.engine)
    print(f"Database {masked_url(ctx.engine.url)} is reachable and migrated.")
    return 0


def _db_reset(args: argparse.Namespace, ctx: CliContext) -> int:
    from tradewind.db import masked_url, reset

    target = masked_url(ctx.engine.url)
    if not args.yes:
        answer = input(f"This deletes every row in {target}. Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            print("Aborted; nothing was changed.")
            return 1
    reset(ctx.engine)
    print(f"Database {target} was reset.")
    return 0


def _config_list(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    rows = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if name in ("fernet_key", "smtp_password") and value is not None:
            value = "***"
        elif name in ("database_url", "broker_url") and value:
            value = _masked(value)
        rows.append({"variable": f"TRADEWIND_{name.upper()}", "value": str(value)})
    rows.append({"variable": "(database)", "value": _masked(settings.resolved_database_url)})
    render(rows, args.output)
    return 0


def _masked(url: str) -> str:
    from tradewind.db import masked_url

    return masked_url(url)


def _jobs_check(args: argparse.Namespace, ctx: CliContext) -> int:
    from datetime import timedelta

    from tradewind import jobs
    from tradewind.db import read_session
    from tradewind.models.base import utcnow

    threshold = timedelta(seconds=ctx.settings.job_dead_after_seconds)
    with read_session(ctx.session_factory) as session:
        alive = jobs.alive_jobs(session, args.job_type, now=utcnow(), threshold=threshold)
    if args.hostname:
        alive = [j for j in alive if j.hostname == args.hostname]
    if not alive:
        print(f"No alive {args.job_type} jobs found.")
        return 1
    if len(alive) > args.limit and not args.allow_multiple:
        print(f"Found {len(alive)} alive {args.job_type} jobs, expected at most {args.limit}.")
        return 1
    for job in alive[: max(args.limit, 1) if not args.allow_multiple else len(alive)]:
        print(
            f"Found alive {args.job_type} job {job.id} on {job.hostname} (pid {job.pid}), "
            f"last heartbeat {job.latest_heartbeat.isoformat()}"
        )
    return 0
