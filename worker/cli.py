"""`tradewind worker`: a Celery worker that runs tries from the named queues."""

from __future__ import annotations

import argparse
import logging
import re
from typing import TYPE_CHECKING, Any

from tradewind.errors import ConfigError

if TYPE_CHECKING:
    from tradewind.cli.main import CliContext, Commands

logger = logging.getLogger(__name__)
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,256}$")


def register(commands: Commands) -> None:
    """Called through the ``tradewind.cli`` entry point."""
    parser = commands.command(
        "worker", _worker, "Run a Celery worker (for TRADEWIND_EXECUTOR=celery)."
    )
    parser.add_argument(
        "-q",
        "--queues",
        default="default",
        help="comma-separated queues to take tries from (default: default)",
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        type=int,
        help="tries run at once (default: TRADEWIND_WORKER_CONCURRENCY)",
    )
    parser.add_argument(
        "-H",
        "--hostname",
        help="this worker's name, recorded on the tries it runs (default: this host's name)",
    )
    flower = commands.command(
        "flower",
        _flower,
        "Serve Celery Flower on the broker (needs the `flower` extra: pip install "
        "'tradewind[flower]').",
    )
    flower.add_argument(
        "--address", default="127.0.0.1", help="address to bind (default: 127.0.0.1)"
    )
    flower.add_argument("-p", "--port", type=int, default=5555, help="port (default: 5555)")


def parse_queues(raw: str) -> list[str]:
    queues = [q.strip() for q in raw.split(",") if q.strip()]
    if not queues:
        raise ConfigError("--queues: name at least one queue")
    for queue in queues:
        if not _QUEUE_NAME.match(queue):
            raise ConfigError(
                f"--queues: {queue!r} is not a queue name (letters, digits, '_', '.', ':', '-')"
            )
    return queues


def _worker(args: argparse.Namespace, ctx: CliContext) -> int:
    from celery import signals

    from tradewind.processes import configure_daemon_logging
    from worker import celery_app
    from worker.task_runner import host_name

    settings = ctx.settings
    if ctx.engine.dialect.name == "sqlite":
        raise ConfigError(
            "TRADEWIND_DATABASE_URL: a Celery worker needs a database every worker and "
            "scheduler can reach (Postgres); SQLite is for `tradewind standalone`"
        )
    queues = parse_queues(args.queues)
    concurrency = args.concurrency or settings.worker_concurrency
    if concurrency < 1:
        raise ConfigError("--concurrency: must be at least 1")
    hostname = args.hostname or host_name()
    ctx.session_factory  # noqa: B018 - refuse an unmigrated database before starting
    configure_daemon_logging(settings.log_level)
    app = celery_app.make_app(settings)
    heartbeat = celery_app.WorkerHeartbeat(settings, hostname, queues, concurrency)

    def ready(**_: Any) -> None:
        heartbeat.start()
        logger.info(
            "Worker %s ready: queues %s, concurrency %s", hostname, ",".join(queues), concurrency
        )

    def shut_down(**_: Any) -> None:
        heartbeat.stop()

    signals.worker_ready.connect(ready, weak=False)
    signals.worker_shutdown.connect(shut_down, weak=False)
    node = hostname if "@" in hostname else f"tradewind@{hostname}"
    celery_app.start_worker(settings, hostname, concurrency)
    try:
        app.worker_main(
            [
                "worker",
                f"--queues={','.join(queues)}",
                f"--concurrency={concurrency}",
                f"--hostname={node}",
                f"--loglevel={settings.log_level}",
                # Each thread waits for a try's child, forked by the worker's fork
                # server (see worker.celery_app).
                "--pool=threads",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        celery_app.stop_worker()
    return 0


def _flower(args: argparse.Namespace, ctx: CliContext) -> int:
    """Flower watches the broker and the workers; the database stays the truth about
    tries (Flower sees only what Celery events and queues show)."""
    import importlib.util

    from worker import celery_app

    if importlib.util.find_spec("flower") is None:
        raise ConfigError("Flower is not installed: pip install 'tradewind[flower]'")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port: {args.port} is not a TCP port")
    app = celery_app.make_app(ctx.settings)
    app.start(["flower", f"--address={args.address}", f"--port={args.port}"])
    return 0
