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
    wait = commands.command(
        "wait", _db_wait, "Wait until the database answers (retrying with backoff).", group="db"
    )
    wait.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=60.0,
        help="give up after this many seconds (default: 60)",
    )
    reset = commands.command(
        "reset", _db_reset, "Drop all data and re-create the schema.", group="db"
    )
    reset.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    init = commands.command(
        "init",
        _init,
        "Prepare a deployment: wait for the database, migrate it, create the admin user.",
    )
    init.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=120.0,
        help="how long to wait for the database (default: 120)",
    )

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
        "--job-type",
        default="scheduler",
        help="scheduler, dag_processor, worker, triggerer, or any (default: scheduler)",
    )
    host = check.add_mutually_exclusive_group()
    host.add_argument("--hostname", help="only jobs on this host")
    host.add_argument(
        "--this-host",
        action="store_true",
        help="only jobs on the host running the check (a container's health check)",
    )
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


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive number of seconds")
    return value


# One attempt may not hang on an address that never answers (a firewall dropping
# packets): Postgres connections give up after this long and are retried.
CONNECT_TIMEOUT_SECONDS = 5


def _wait_for_database(ctx: CliContext, timeout: float) -> None:
    from tradewind.db import is_sqlite, make_engine, masked_url, wait_for_database

    engine = ctx.engine
    if not is_sqlite(engine):
        engine = make_engine(
            ctx.settings, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        )
    try:
        attempts = wait_for_database(engine, timeout)
    finally:
        if engine is not ctx.engine:
            engine.dispose()
    tries = "" if attempts == 1 else f" after {attempts} attempts"
    print(f"Database {masked_url(engine.url)} answers{tries}.")


def _db_wait(args: argparse.Namespace, ctx: CliContext) -> int:
    _wait_for_database(ctx, args.timeout)
    return 0


ADMIN_USERNAME_VARIABLE = "TRADEWIND_ADMIN_USERNAME"
ADMIN_PASSWORD_VARIABLE = "TRADEWIND_ADMIN_PASSWORD"


def _init(args: argparse.Namespace, ctx: CliContext) -> int:
    """What a deployment's one-shot init container runs; safe to run again.

    The admin user is created only when missing: an existing user (and a password
    changed since) is left alone. The password comes from the environment, never from
    the command line, where other users of the host could read it.
    """
    import os

    from tradewind.auth.users import create_user, find_user
    from tradewind.db import head_revision, make_session_factory, migrate, session_scope
    from tradewind.errors import ConfigError

    username = os.environ.get(ADMIN_USERNAME_VARIABLE, "").strip() or "admin"
    password = os.environ.get(ADMIN_PASSWORD_VARIABLE, "")
    _wait_for_database(ctx, args.timeout)
    migrate(ctx.engine)
    print(f"Schema at revision {head_revision(ctx.engine)}.")
    with session_scope(make_session_factory(ctx.engine)) as session:
        if find_user(session, username) is not None:
            print(f"Admin user {username} exists; left as it is.")
            return 0
        if not password:
            raise ConfigError(
                f"{ADMIN_PASSWORD_VARIABLE} is empty: set it to create the admin user "
                f"{username!r} (or create users with `tradewind users create`)"
            )
        create_user(session, username, password, "admin")
    print(f"Admin user {username} created.")
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
    import socket
    from datetime import timedelta

    from tradewind import jobs
    from tradewind.db import read_session
    from tradewind.errors import ConfigError
    from tradewind.models.base import utcnow

    if args.job_type != "any" and args.job_type not in jobs.JOB_TYPES:
        raise ConfigError(
            f"--job-type: unknown job type {args.job_type!r}; "
            f"use one of {', '.join(jobs.JOB_TYPES)} or any"
        )
    job_type = None if args.job_type == "any" else args.job_type
    threshold = timedelta(seconds=ctx.settings.job_dead_after_seconds)
    with read_session(ctx.session_factory) as session:
        alive = jobs.alive_jobs(session, job_type, now=utcnow(), threshold=threshold)
    hostname = socket.getfqdn() if args.this_host else args.hostname
    if hostname:
        alive = [j for j in alive if j.hostname == hostname]
    kind = "jobs" if job_type is None else f"{job_type} jobs"
    where = f" on {hostname}" if hostname else ""
    if not alive:
        print(f"No alive {kind} found{where}.")
        return 1
    if len(alive) > args.limit and not args.allow_multiple:
        print(f"Found {len(alive)} alive {kind}{where}, expected at most {args.limit}.")
        return 1
    for job in alive[: max(args.limit, 1) if not args.allow_multiple else len(alive)]:
        print(
            f"Found alive {job.job_type} job {job.id} on {job.hostname} (pid {job.pid}), "
            f"last heartbeat {job.latest_heartbeat.isoformat()}"
        )
    return 0
