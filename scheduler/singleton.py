"""SQLite allows one scheduler: a second one is refused with a clear message."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tradewind.errors import TradewindError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings


@contextmanager
def hold_scheduler_lock(
    engine: Engine, factory: sessionmaker[Session], settings: Settings
) -> Iterator[None]:
    """On SQLite, hold an exclusive lock next to the database file while scheduling."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        yield
        return
    lock_path = Path(f"{engine.url.database}.scheduler.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise TradewindError(
                f"another scheduler (pid {holder}) is already running on the SQLite database "
                f"{engine.url.database}; SQLite supports one scheduler at a time (use Postgres, "
                "TRADEWIND_DATABASE_URL, to run several)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
