"""Commands that read DAGs, runs and task instances from the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradewind.cli.main import Commands


def register(commands: Commands) -> None:
    commands.group("dags", "List, inspect and run DAGs.")
    commands.group("tasks", "List, inspect and test tasks.")
