"""`tradewind users create|list|delete|reset-password`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tradewind.cli.output import render

if TYPE_CHECKING:
    from tradewind.cli.main import CliContext, Commands


def register(commands: Commands) -> None:
    from tradewind.auth.users import ROLES
    from tradewind.cli.commands import add_output_option

    commands.group("users", "Manage the users who may log in to the API and UI.")
    create = commands.command("create", _create, "Create a user.", group="users")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--password", help="the password (default: generate and print one)")
    listing = commands.command("list", _list, "List users and their roles.", group="users")
    add_output_option(listing)
    delete = commands.command("delete", _delete, "Delete a user.", group="users")
    delete.add_argument("--username", required=True)
    reset = commands.command(
        "reset-password", _reset, "Set a new password for a user.", group="users"
    )
    reset.add_argument("--username", required=True)
    reset.add_argument("--password", help="the new password (default: generate and print one)")


def _password(given: str | None) -> tuple[str, bool]:
    from tradewind.auth.passwords import generate_password

    return (given, False) if given else (generate_password(), True)


def _create(args: argparse.Namespace, ctx: CliContext) -> int:
    from tradewind.auth.users import create_user
    from tradewind.db import session_scope

    password, generated = _password(args.password)
    with session_scope(ctx.session_factory) as session:
        create_user(session, args.username, password, args.role)
    print(f"User {args.username} ({args.role}) created.")
    if generated:
        print(f"Password (shown once): {password}")
    return 0


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy import select

    from tradewind.db import read_session
    from tradewind.models import User

    with read_session(ctx.session_factory) as session:
        users = session.scalars(select(User).order_by(User.username)).all()
        rows = [{"username": u.username, "role": u.role, "active": u.active} for u in users]
    render(rows, args.output)
    return 0


def _delete(args: argparse.Namespace, ctx: CliContext) -> int:
    from tradewind.auth.users import find_user
    from tradewind.db import session_scope

    with session_scope(ctx.session_factory) as session:
        user = find_user(session, args.username)
        if user is None:
            print(f"No user {args.username!r}.")
            return 1
        session.delete(user)
    print(f"User {args.username} deleted.")
    return 0


def _reset(args: argparse.Namespace, ctx: CliContext) -> int:
    from tradewind.auth.passwords import hash_password
    from tradewind.auth.users import find_user
    from tradewind.db import session_scope

    password, generated = _password(args.password)
    with session_scope(ctx.session_factory) as session:
        user = find_user(session, args.username)
        if user is None:
            print(f"No user {args.username!r}.")
            return 1
        user.password_hash = hash_password(password)
    print(f"Password of {args.username} reset.")
    if generated:
        print(f"Password (shown once): {password}")
    return 0
