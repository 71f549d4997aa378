"""Entry point of the `tradewind` command.

The core commands live in `tradewind.cli.commands`; the scheduler, worker and webserver
packages add theirs through the ``tradewind.cli`` entry-point group, so this package
never imports them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from functools import cached_property
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from tradewind import __version__
from tradewind.errors import TradewindError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings

Handler = Callable[[argparse.Namespace, "CliContext"], int | None]


class CliContext:
    """Settings and database of one command invocation, built on first use."""

    @cached_property
    def settings(self) -> Settings:
        from tradewind.settings import get_settings

        return get_settings()

    @cached_property
    def engine(self) -> Engine:
        from tradewind.db import make_engine

        return make_engine(self.settings)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        """A session factory on a database at the newest schema (SQLite migrates itself)."""
        from tradewind.db import ensure_schema, make_session_factory, use_session_factory

        ensure_schema(self.engine)
        factory = make_session_factory(self.engine)
        use_session_factory(factory)
        return factory


class Commands:
    """The tree of subcommands; packages add to it with `group` and `command`."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self._sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        self._groups: dict[str, Any] = {}

    def group(self, name: str, help_text: str) -> Any:
        if name not in self._groups:
            group_parser = self._sub.add_parser(name, help=help_text, description=help_text)
            group_parser.set_defaults(handler=_help_of(group_parser))
            self._groups[name] = group_parser.add_subparsers(dest="subcommand", metavar="COMMAND")
        return self._groups[name]

    def command(
        self, name: str, handler: Handler, help_text: str, *, group: str | None = None
    ) -> argparse.ArgumentParser:
        sub = self._groups[group] if group else self._sub
        parser: argparse.ArgumentParser = sub.add_parser(
            name, help=help_text, description=help_text
        )
        parser.set_defaults(handler=handler)
        return parser


def _help_of(parser: argparse.ArgumentParser) -> Handler:
    def show(_args: argparse.Namespace, _ctx: CliContext) -> int:
        parser.print_help()
        return 2

    return show


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradewind",
        description="Tradewind: Python DAG files in, scheduled and recorded runs out.",
    )
    parser.add_argument("--version", action="version", version=f"tradewind {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.set_defaults(handler=_help_of(parser))
    commands = Commands(parser)
    from tradewind.cli import commands as core

    core.register(commands)
    for entry in sorted(entry_points(group="tradewind.cli"), key=lambda e: e.name):
        entry.load()(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args, CliContext()) or 0)
    except TradewindError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
