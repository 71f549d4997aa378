"""`tradewind standalone`: everything in one process tree, on SQLite, no other services.

It migrates the database, creates an ``admin`` user on first start (the password is
printed once and kept in ``$TRADEWIND_HOME/standalone_admin_password.txt``), and runs
the DAG file processor, the webserver (REST API and UI) and the scheduler with the local
executor until Ctrl-C. The triggerer runs while deferred tasks wait on triggers
(`TriggererOnDemand`): most DAGs never defer, and an idle triggerer holds 60 MB.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from tradewind.auth.passwords import generate_password
from tradewind.auth.users import create_user, find_user
from tradewind.db import masked_url, session_scope
from tradewind.models import Trigger

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


class TriggererOnDemand:
    """Standalone's triggerer: started when a trigger is waiting to be run, stopped once
    none has been for `IDLE_STOP`.

    The scheduler calls `tend` after each pass. It looks at the trigger table at most
    once a second after tries ended (one may have deferred) and every `LOOK_EVERY`
    otherwise, so the first deferral waits about a second plus the triggerer's start-up.
    A triggerer that exits on its own is started again while triggers wait."""

    LOOK_AFTER_TRIES = timedelta(seconds=1)
    LOOK_EVERY = timedelta(seconds=5)
    IDLE_STOP = timedelta(seconds=60)

    def __init__(self, start: Callable[[], subprocess.Popen[bytes]]) -> None:
        self._start = start
        self.child: subprocess.Popen[bytes] | None = None
        self._last_look: datetime | None = None
        self._idle_since: datetime | None = None

    def tend(self, factory: sessionmaker[Session], now: datetime, *, tries_ended: bool) -> None:
        wait = self.LOOK_AFTER_TRIES if tries_ended else self.LOOK_EVERY
        if self._last_look is not None and now - self._last_look < wait:
            return
        self._last_look = now
        if self.child is not None and self.child.poll() is not None:
            logger.warning("The triggerer exited with code %s", self.child.returncode)
            self.child = None
        with session_scope(factory) as session:
            waiting = session.scalar(select(Trigger.id).limit(1)) is not None
        if waiting:
            self._idle_since = None
            if self.child is None:
                logger.info("Starting the triggerer: a deferred task waits on a trigger")
                self.child = self._start()
        elif self.child is not None:
            self._idle_since = self._idle_since or now
            if now - self._idle_since >= self.IDLE_STOP:
                logger.info("Stopping the triggerer: no trigger to run for %s", self.IDLE_STOP)
                self.stop()

    def stop(self) -> None:
        if self.child is not None:
            self.child.terminate()
            self.child.wait(timeout=30)
            self.child = None
        self._idle_since = None
