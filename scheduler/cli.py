"""Commands the scheduler package adds to `tradewind`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradewind.cli.main import Commands


def register(commands: Commands) -> None:
    """Called through the ``tradewind.cli`` entry point."""
