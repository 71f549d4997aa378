"""Serving the DAG list again without asking the database, until the DAG tables change.

The list reads only the ``dag`` and ``dag_tag`` tables, which change seldom (a parse
that found something new, a run that moved a DAG's next run, a pause) while dashboards
and scripts poll it constantly. On Postgres every statement that writes those tables
sends ``NOTIFY tradewind_dag_changed`` (a trigger, migration 0011), delivered when its
transaction commits. One thread per webserver process listens and counts the changes
(`DagTableWatch.generation`); a page of the list is kept with the count read *before*
its query, and served again while the count is unchanged. A change that commits while
the query runs therefore invalidates what the query read, and nothing stale is kept.

A commit in this process counts as a change at once (a script that pauses a DAG and
lists DAGs through the same worker sees its own write). Another worker learns of it
when the notification arrives, typically within a millisecond of the commit.

Caching is off (every request queries) on SQLite, before the listener has connected,
while it is reconnecting after losing its connection (a restarted database), and when
the database lacks the triggers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

logger = logging.getLogger(__name__)
CHANNEL = "tradewind_dag_changed"
TRIGGERS = ("tradewind_dag_changed", "tradewind_dag_tag_changed")
RECONNECT_SECONDS = 5.0


class DagTableWatch:
    """Counts the changes to the DAG tables; `generation` is None while it cannot."""

    def __init__(self, engine: Engine) -> None:
        self._url = engine.url.set(drivername="postgresql")
        self._lock = threading.Lock()
        self._count = 0
        self._live = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def generation(self) -> int | None:
        return self._count if self._live else None

    def changed(self) -> None:
        with self._lock:
            self._count += 1

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen_forever, name="dag-table-watch", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._live = False

    def _listen_forever(self) -> None:
        outage_reported = False
        while not self._stopping.is_set():
            try:
                self._listen()
                return
            except Exception as exc:
                if not outage_reported:
                    logger.warning(
                        "Not caching the DAG list: listening for DAG changes failed (%s); "
                        "retrying every %.0f s",
                        exc,
                        RECONNECT_SECONDS,
                    )
                    outage_reported = True
            finally:
                self._live = False
            self._stopping.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        import psycopg

        dsn = self._url.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            present = conn.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname = ANY(%s)", [list(TRIGGERS)]
            ).fetchone()
            if present is None or present[0] != len(TRIGGERS):
                logger.info("Not caching the DAG list: the database has no change triggers")
                self._stopping.set()
                return
            conn.execute(f"LISTEN {CHANNEL}")
            self.changed()  # whatever happened while nobody listened
            self._live = True
            logger.debug("Listening for DAG changes")
            while not self._stopping.is_set():
                for _ in conn.notifies(timeout=1.0):
                    self.changed()


class ResponseCache:
    """Response bodies by request, valid while the watch's generation is unchanged.

    Requests for the same body that arrive while it is being built wait for that one
    build. At most ``size`` bodies are kept, the least recently used going first."""

    def __init__(self, watch: DagTableWatch | None, size: int = 64) -> None:
        self.watch = watch
        self.size = size
        self._bodies: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._building: dict[tuple[Hashable, int], asyncio.Future[bytes]] = {}

    async def get(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        generation = None if self.watch is None else self.watch.generation
        if generation is None:
            return await run_in_threadpool(build)
        kept = self._bodies.get(key)
        if kept is not None and kept[0] == generation:
            self._bodies.move_to_end(key)
            return kept[1]
        pending = self._building.get((key, generation))
        if pending is None:
            # A task of its own, so that a caller that goes away cancels only its wait.
            pending = asyncio.ensure_future(run_in_threadpool(build))
            self._building[(key, generation)] = pending
            pending.add_done_callback(lambda done: self._built(key, generation, done))
        return await asyncio.shield(pending)

    def _built(self, key: Hashable, generation: int, done: asyncio.Future[bytes]) -> None:
        del self._building[(key, generation)]
        if done.cancelled() or done.exception() is not None:
            return
        self._bodies[key] = (generation, done.result())
        self._bodies.move_to_end(key)
        while len(self._bodies) > self.size:
            self._bodies.popitem(last=False)


_watches: dict[str, DagTableWatch] = {}
_watches_lock = threading.Lock()


def watch_for(engine: Engine) -> DagTableWatch | None:
    """The watch of ``engine``'s database (one per database and process, started on
    first use); None where changes cannot be watched."""
    if engine.dialect.name != "postgresql":
        return None
    key = engine.url.render_as_string(hide_password=False)
    with _watches_lock:
        watch = _watches.get(key)
        if watch is None:
            watch = _watches[key] = DagTableWatch(engine)
    watch.start()
    return watch


def stop_watching(engine: Engine) -> None:
    """Stop and forget the watch of ``engine``'s database (its thread ends within a
    second): for tests that drop the database."""
    with _watches_lock:
        watch = _watches.pop(engine.url.render_as_string(hide_password=False), None)
    if watch is not None:
        watch.stop()


@event.listens_for(Session, "after_commit")
def _count_commit(session: Session) -> None:
    """A commit in this process may have changed the DAG tables: it counts at once,
    before its notification arrives (any database's commit; a spare rebuild is cheap)."""
    for watch in list(_watches.values()):
        watch.changed()
