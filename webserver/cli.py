"""`tradewind webserver`: the REST API (and, later, the UI) on uvicorn."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradewind.cli.main import CliContext, Commands


def register(commands: Commands) -> None:
    """Called through the ``tradewind.cli`` entry point."""
    parser = commands.command(
        "webserver", _webserver, "Serve the REST API (/api/v2) and its docs (/docs)."
    )
    parser.add_argument("--host", help="address to bind (default: TRADEWIND_API_HOST)")
    parser.add_argument("-p", "--port", type=int, help="port (default: TRADEWIND_API_PORT)")
    parser.add_argument(
        "-w", "--workers", type=int, help="worker processes (default: TRADEWIND_API_WORKERS)"
    )


def _webserver(args: argparse.Namespace, ctx: CliContext) -> int:
    import uvicorn

    from tradewind.crypto import api_secret_for
    from tradewind.errors import ConfigError
    from tradewind.processes import configure_daemon_logging

    settings = ctx.settings
    workers = args.workers or settings.api_workers
    if workers < 1:
        raise ConfigError("--workers: must be at least 1")
    ctx.session_factory  # noqa: B018 - migrate SQLite / refuse an unmigrated database first
    api_secret_for(settings)  # create the signing key once, before workers race for it
    configure_daemon_logging(settings.log_level)
    uvicorn.run(
        "webserver.app:app_factory",
        factory=True,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        workers=workers,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
    )
    return 0
