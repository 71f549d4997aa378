"""`tradewind standalone`: everything in one process tree, on SQLite, no other services.

It migrates the database, creates an ``admin`` user on first start (the password is
printed once and kept in ``$TRADEWIND_HOME/standalone_admin_password.txt``), and runs
the DAG file processor, the triggerer, the webserver (REST API and UI) and the scheduler
with the local executor until Ctrl-C.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tradewind.auth.passwords import generate_password
from tradewind.auth.users import create_user, find_user
from tradewind.db import masked_url, session_scope

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
PASSWORD_FILE = "standalone_admin_password.txt"
ADMIN = "admin"


def ensure_admin(factory: sessionmaker[Session], settings: Settings) -> str | None:
    """Create the admin user if there is none; returns the new password, once."""
    with session_scope(factory) as session:
        if find_user(session, ADMIN) is not None:
            return None
        password = generate_password()
        create_user(session, ADMIN, password, "admin")
        # Saved before the user is committed: a crash in between must not lose it.
        path = settings.home.expanduser() / PASSWORD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
    return password


def banner(settings: Settings, database_url: str, password: str | None) -> str:
    home = settings.home.expanduser().resolve()
    lines = [
        "",
        "Tradewind standalone is running.",
        f"  DAG folder : {settings.resolved_dags_folder}",
        f"  database   : {masked_url(database_url)}",
        f"  task logs  : {settings.logs_folder}",
        f"  executor   : {settings.executor} (parallelism {settings.parallelism})",
        f"  REST API   : http://{settings.api_host}:{settings.api_port}/api/v2 (docs at /docs)",
    ]
    if password is not None:
        lines.append(
            f"  login      : {ADMIN} / {password}  (shown once; also in {home / PASSWORD_FILE})"
        )
    else:
        lines.append(f"  login      : {ADMIN} (password in {home / PASSWORD_FILE})")
    lines += [
        "Drop DAG files into the DAG folder; new DAGs start paused:",
        "  tradewind dags list            tradewind dags unpause <dag_id>",
        "  tradewind dags trigger <dag_id> tradewind dags list-runs <dag_id>",
        "Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def password_file(settings: Settings) -> Path:
    return settings.home.expanduser() / PASSWORD_FILE
