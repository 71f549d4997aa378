"""Connecting to the metadata database, sessions, and schema migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every
transaction takes the write lock up front (``BEGIN IMMEDIATE``) so that concurrent
writers wait their turn instead of failing; use `read_session` for read-only work,
which never waits for writers. Postgres is used through psycopg 3.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import re
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tradewind.errors import ConfigError, DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

    from tradewind.settings import Settings

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def masked_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def normalize_url(raw: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` means the psycopg 3 driver."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            f"TRADEWIND_DATABASE_URL: {raw!r} is not a database URL "
            "(expected e.g. postgresql://user:pass@host/db or sqlite:////path/tradewind.db)"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"TRADEWIND_DATABASE_URL: unsupported database {url.get_backend_name()!r} "
            f"in {masked_url(url)}; use SQLite or Postgres"
        )
    return url


def make_engine(settings: Settings, *, lends: bool = False, **engine_options: Any) -> Engine:
    """An engine for the configured metadata database. Does not connect yet.

    ``lends``: the engine of a parent that lends connections to the children it forks
    (see `ConnectionLoan`); on Postgres its connections never prepare statements, so
    that neither side can drop or reuse a statement the other prepared, and it keeps
    the connections it lends apart from its pool (see `_Lender`). A copy of it in a
    process that will not lend calls `stop_lending`.

    A Postgres connection is pinged when it is taken from the pool only if it rested
    there for over PING_AFTER_REST_SECONDS (a database restarted meanwhile would have
    closed it), not at every checkout: that was a round trip several times per
    scheduler pass and per try. One that does not answer is replaced.
    """
    url = normalize_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, settings.sqlite_busy_timeout_seconds, **engine_options)
    else:
        options: dict[str, Any] = {"pool_size": 5, "max_overflow": 10}
        if lends:
            options["connect_args"] = {"prepare_threshold": None}
        options.update(engine_options)
        engine = create_engine(url, **options)
        if lends:
            setattr(engine, LENDER_ATTRIBUTE, _Lender(engine.dialect))
        key = id(engine)
        event.listen(engine, "connect", _note_rest)
        event.listen(engine, "checkin", _note_rest)
        dialect = engine.dialect

        @event.listens_for(engine, "checkout")
        def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            _ping_if_rested(dialect, dbapi_connection, record)

        @event.listens_for(engine, "do_connect")
        def _connect(_dialect: Any, _record: Any, _cargs: Any, _cparams: Any) -> Any:
            return _lent.pop(key, None)  # None: connect as usual

    _track(engine)
    return engine


# A forked child (DAG parsing, a try) must never talk over its parent's connections:
# after a fork every engine of this process gets a fresh, empty pool. The inherited
# pools are kept referenced for the child's lifetime: if their connection objects were
# garbage-collected here, the driver's finalizer would end the parent's sessions.
#
# The empty pool is built once, in the parent, before its first fork, and never used
# there: every child finds its own copy of it and only has to install it. Building a
# pool in each child instead (`Engine.dispose`) ran a few hundred lines of Python
# (argument inspection, event registries, a logger) and cost every try about 300 page
# faults, half of what a fork cost a child before it ran a line of its own.
# Weak references to every engine made here, replaced as a whole when one is added or
# collected: the hooks below run at every fork, and a forking parent's writes after a
# fork each copy a page (a WeakSet's iteration wrote to some forty).
_engines: tuple[weakref.ref[Engine], ...] = ()
_inherited_pools: list[Any] = []
# Each engine keeps its spare in SPARE_POOL_ATTRIBUTE as (what it was made from, the
# spare), on the engine itself: the spare's listeners refer back to the engine, and a
# table outside it would keep an engine that its owner dropped alive, with its pooled
# connections open. A spare is made again when the parent has replaced the engine's pool
# since (an `Engine.dispose` there) or changed its event listeners (the spare has copies
# of those it had then).
SPARE_POOL_ATTRIBUTE = "_tradewind_spare_pool"


def _track(engine: Engine) -> None:
    global _engines
    _engines = (*_live_refs(), weakref.ref(engine, _forget_engine))


def _forget_engine(_collected: weakref.ref[Engine]) -> None:
    global _engines
    _engines = _live_refs()


def _live_refs() -> tuple[weakref.ref[Engine], ...]:
    return tuple(ref for ref in _engines if ref() is not None)


def _spare_source(pool: Any) -> tuple[Any, ...]:
    dispatch = pool.dispatch
    return (pool, *(tuple(getattr(dispatch, name)) for name in dispatch._event_names))


# Set in a process that forks often and never changes its engines (a fork server): their
# spares are made once, and the check before each fork is skipped. The check built a
# tuple of every listener of every pool event, writing to some forty pages that the last
# fork had shared with a child, each copied again.
_spares_final = False


def make_spare_pools_final() -> None:
    """Make every engine's spare now, for good: this process will not replace a pool
    or change a listener again, and forks often."""
    global _spares_final
    _make_spare_pools()
    _spares_final = True


def _make_spare_pools() -> None:
    """In the parent, just before a fork: an unused empty pool for each engine."""
    if _spares_final:
        return
    for ref in _engines:
        engine = ref()
        if engine is None:
            continue
        source = _spare_source(engine.pool)
        made = getattr(engine, SPARE_POOL_ATTRIBUTE, None)
        if made is None or made[0] != source:
            setattr(engine, SPARE_POOL_ATTRIBUTE, (source, engine.pool.recreate()))


def _forget_inherited_connections() -> None:
    """In the child, just after the fork: every engine gets its spare (what
    `Engine.dispose(close=False)` does, with the pool made beforehand)."""
    global _spares_final
    _spares_final = False  # the child's engines are its own to change
    for ref in _engines:
        engine = ref()
        if engine is None:
            continue
        _inherited_pools.append(engine.pool)
        lender = getattr(engine, LENDER_ATTRIBUTE, None)
        if lender is not None and (lender.idle or lender.lent):  # the parent's, not ours
            _inherited_pools.append((lender.idle, lender.lent))
            lender.idle, lender.lent = [], {}
        made = getattr(engine, SPARE_POOL_ATTRIBUTE, None)
        if made is not None and made[0][0] is engine.pool:
            engine.pool = made[1]
            engine.dispatch.engine_disposed(engine)
        else:
            engine.dispose(close=False)
        setattr(engine, SPARE_POOL_ATTRIBUTE, None)


os.register_at_fork(before=_make_spare_pools, after_in_child=_forget_inherited_connections)


# --- lending a Postgres connection to a forked child --------------------------------------
# A new Postgres session costs the server a process and ~10 ms of CPU, more than a no-op
# try's whole database work. A parent that forks one child per try (`worker.try_process`)
# therefore lends each child a connection of its own keeping: the child's first connect
# takes it over, and the parent does not touch it until the child has ended. Neither
# side prepares statements on it (psycopg drops all of a session's prepared statements
# when it rolls back, which would pull them from under the other side's cache), and a
# child that did not exit cleanly may have left it mid-conversation, so then the parent
# closes it instead of lending it again.
_lent: dict[int, Any] = {}  # in a child: id(engine) -> the DBAPI connection it inherited
# A connection back in the pool (or with the lender) for longer than this is pinged when
# it is taken out again (see `make_engine`); one taken again at once is not.
PING_AFTER_REST_SECONDS = 1.0
LENDER_ATTRIBUTE = "_tradewind_lender"  # a lending Postgres engine's `_Lender`


class _Lender:
    """The connections a lending engine keeps for its children, outside its pool.

    Lending from the pool cost a fork server a checkout before each fork and a checkin
    after each child: SQLAlchemy's events, reset and queue bookkeeping, writing to about
    a hundred pages that the last fork had shared with a child, so each was copied again
    (about 0.5 ms a try). Here a loan is a pop from a list and its return an append. A
    connection is taken from the pool, and detached from it, only when none is idle
    here: at most as many as the children running at once, kept for the next ones.

    A lent connection stays referenced here until it is taken back, whatever happens to
    its loan: the driver ends the session when the connection object that made it is
    freed, and a parent that dropped a loan (a fork server leaving its running tries
    behind as it stops) would end its child's session under it."""

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect
        self.idle: list[tuple[float, Any]] = []  # (resting since, DBAPI connection)
        self.lent: dict[int, Any] = {}  # id -> DBAPI connection, while a child has it

    def lend(self, engine: Engine) -> Any:
        """An idle connection for a child, or None if the database cannot give one (the
        child then connects itself, and fails as it would have)."""
        connection = self._idle_one() or self._from_pool(engine)
        if connection is not None:
            self.lent[id(connection)] = connection
        return connection

    def _idle_one(self) -> Any:
        while self.idle:
            rests_since, connection = self.idle.pop()
            if time.monotonic() - rests_since <= PING_AFTER_REST_SECONDS or _answers(
                self.dialect, connection
            ):
                return connection
            _close(connection)  # the database was restarted, or ended it
        return None

    def _from_pool(self, engine: Engine) -> Any:
        try:
            fairy = engine.raw_connection()  # pinged at checkout if it had rested
        except SQLAlchemyError:
            return None
        connection = fairy.dbapi_connection
        if not _is_idle(connection):
            fairy.invalidate()
            return None
        fairy.detach()  # the pool makes itself a new one when it needs one
        return connection

    def take_back(self, connection: Any, *, clean: bool) -> None:
        """After the child ended: keep the connection for the next child if the child
        exited cleanly, else close it. The parent's view of the session (its copy of
        libpq's state) is as it was at the loan, so only the child's clean exit says
        the session was left idle: every transaction a try opens through Tradewind ends
        in a commit or a rollback before that."""
        del self.lent[id(connection)]
        if clean:
            self.idle.append((time.monotonic(), connection))
        else:
            _close(connection)


class ConnectionLoan:
    """One connection of ``engine``'s `_Lender`, taken in the parent for one child.

    Make it before the fork; the child calls `take_over` right after it; the parent calls
    `settle` once the child has ended (``clean``: it exited with status 0). Only engines
    made with ``make_engine(..., lends=True)`` lend; SQLite connections never are (a
    file handle shared across a fork is unsafe), nor is anything when the database
    cannot give a healthy connection: the child then connects itself."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lender: _Lender | None = getattr(engine, LENDER_ATTRIBUTE, None)
        self._connection = None if self._lender is None else self._lender.lend(engine)

    def take_over(self) -> None:
        """In the child: the engine's next new connection is the lent one."""
        if self._connection is not None:
            _lent[id(self._engine)] = self._connection

    def settle(self, *, clean: bool) -> None:
        """In the parent, after the child ended: keep the connection for the next child,
        or close it."""
        connection, self._connection = self._connection, None
        if connection is not None and self._lender is not None:
            self._lender.take_back(connection, clean=clean)


# How often a statement runs on a connection before psycopg prepares it on the server
# (psycopg's own default): from then on Postgres skips parsing and planning it.
PREPARE_THRESHOLD = 5


def stop_lending(engine: Engine) -> None:
    """In a process forked from a lending parent that will never lend itself (a fork
    server's recorder): the connections it opens from now on prepare the statements they
    run often, as a non-lending engine's do, and it lends none.

    A lending engine's connections never prepare (see `make_engine`), which suits a fork
    server, whose children run a handful of statements each. The recorder runs the same
    few statements for every try of every child; unprepared, Postgres parsed and planned
    each of them anew, a fifth to a quarter of its CPU per try."""
    if engine.dialect.name != "postgresql":
        return
    setattr(engine, LENDER_ATTRIBUTE, None)
    event.listen(engine, "connect", _prepare_often)


def _prepare_often(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.prepare_threshold = PREPARE_THRESHOLD


def _note_rest(_dbapi_connection: Any, record: Any) -> None:
    """A connection was made, or put back in the pool: it rests from now."""
    if record is not None:
        record.info["rests_since"] = time.monotonic()


def _ping_if_rested(dialect: Any, dbapi_connection: Any, record: Any) -> None:
    """At checkout: ping a connection that rested long; if it does not answer, the pool
    discards it and takes another (SQLAlchemy's answer to DisconnectionError)."""
    rests_since = record.info.get("rests_since")
    if rests_since is not None and time.monotonic() - rests_since <= PING_AFTER_REST_SECONDS:
        return
    if not _answers(dialect, dbapi_connection):
        raise DisconnectionError("the pooled connection did not answer a ping")


def _answers(dialect: Any, dbapi_connection: Any) -> bool:
    try:
        return bool(dialect.do_ping(dbapi_connection))
    except Exception:
        return False


def _close(dbapi_connection: Any) -> None:
    with contextlib.suppress(Exception):
        dbapi_connection.close()


def _is_idle(dbapi_connection: Any) -> bool:
    import psycopg

    pgconn = getattr(dbapi_connection, "pgconn", None)
    return pgconn is not None and pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE


def _sqlite_engine(url: URL, busy_timeout: float, **engine_options: Any) -> Engine:
    if url.database and url.database != ":memory:":
        folder = Path(url.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"the folder of the SQLite database ({folder}) cannot be created: "
                f"{exc.strerror}; check TRADEWIND_HOME or TRADEWIND_DATABASE_URL"
            ) from None
    engine = create_engine(
        url, connect_args={"timeout": busy_timeout, "check_same_thread": False}, **engine_options
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions are unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(_busy_timeout_pragma(busy_timeout))
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("tradewind_read_only", False):
            conn.exec_driver_sql("BEGIN")
        else:
            _take_write_lock(conn, busy_timeout)

    return engine


# How long a writer waits between two attempts at SQLite's write lock: short, and
# jittered so that waiters do not retry in step. SQLite's own busy handler sleeps 1, 2,
# 5, 10, ... up to 100 ms between attempts, which on a busy database leaves the lock free
# for most of each sleep while every writer waits.
WRITE_LOCK_FIRST_PAUSE_SECONDS = 0.0002
WRITE_LOCK_MAX_PAUSE_SECONDS = 0.003


def _busy_timeout_pragma(seconds: float) -> str:
    return f"PRAGMA busy_timeout={int(seconds * 1000)}"


def _take_write_lock(conn: Connection, timeout: float) -> None:
    """``BEGIN IMMEDIATE``, tried again until ``timeout`` while another connection
    writes. SQLite's busy handler is off for these attempts (the connection keeps it for
    everything else, such as a reader meeting a checkpoint); the last attempt goes
    through SQLAlchemy, so a failure raises what it always did."""
    import sqlite3

    raw = conn.connection.dbapi_connection
    assert raw is not None  # checked out: its transaction is beginning
    cursor = raw.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + timeout
        pause = WRITE_LOCK_FIRST_PAUSE_SECONDS
        while time.monotonic() < deadline:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # BUSY or BUSY_*
                    break
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, WRITE_LOCK_MAX_PAUSE_SECONDS)
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        cursor.execute(_busy_timeout_pragma(timeout))
        cursor.close()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def check_connection(engine: Engine) -> None:
    """Connect once; raise `DatabaseError` naming the (masked) URL and the reason."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseError(
            f"cannot connect to the metadata database at {masked_url(engine.url)}: {reason}"
        ) from None


def wait_for_database(
    engine: Engine,
    timeout_seconds: float,
    *,
    first_delay: float = 0.5,
    max_delay: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Connect until the database answers; return how many attempts it took.

    Retries with a delay that doubles from ``first_delay`` up to ``max_delay``, logging
    each failure, and raises the last `DatabaseError` once ``timeout_seconds`` are spent.
    For a container that starts before its database does.
    """
    deadline = clock() + timeout_seconds
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            check_connection(engine)
        except DatabaseError as exc:
            left = deadline - clock()
            if left <= 0:
                raise DatabaseError(
                    f"gave up after {attempt} attempts in {timeout_seconds:g} s: {exc}"
                ) from None
            pause = min(delay, max_delay, left)
            logger.warning("Attempt %s: %s; retrying in %.1f s", attempt, exc, pause)
            sleep(pause)
            delay *= 2
        else:
            return attempt


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error. For entry points only;
    data functions take the session and never commit."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def run_core(session: Session, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
    """Run ``statement`` (with ``params``) on the session's connection, in its
    transaction, without the ORM's per-statement work (about a third of the CPU for a
    small statement). For hot paths whose statements load no entities and need no
    session synchronization."""
    return session.connection().execute(statement, params)


@contextmanager
def read_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reading only; on SQLite it does not wait for writers."""
    session = factory()
    session.connection(execution_options={"tradewind_read_only": True})
    try:
        yield session
    finally:
        session.close()  # detaches the loaded objects without expiring them


# --- migrations ---------------------------------------------------------------------


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    if head is None:  # pragma: no cover - the project always ships a migration
        raise DatabaseError("no migrations found in " + str(MIGRATIONS_DIR))
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (safe to run repeatedly)."""
    if _up_to_date(engine):
        return
    from alembic import command

    check_connection(engine)
    _refuse_newer(engine, current_revision(engine))
    logger.info("Migrating the metadata database at %s", masked_url(engine.url))
    command.upgrade(alembic_config(engine), "head")


def check_schema(engine: Engine) -> None:
    """Raise `DatabaseError` unless the schema is at the newest revision."""
    check_connection(engine)
    current, head = current_revision(engine), head_revision(engine)
    _refuse_newer(engine, current)
    if current != head:
        state = "empty" if current is None else f"at revision {current}"
        raise DatabaseError(
            f"the metadata database at {masked_url(engine.url)} is {state}, expected {head}; "
            "run `tradewind db migrate`"
        )


_REVISION_LINE = re.compile(r'^(revision|down_revision)\b[^=\n]*=\s*(?:"([^"]*)"|None)', re.M)


@functools.cache
def declared_head() -> str | None:
    """The newest revision, read from the ``revision`` / ``down_revision`` lines of the
    migration files without importing Alembic (about 12 MB in every daemon); None when
    the files do not say it plainly."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if not found.get("revision"):
            return None
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stamped_revision(engine: Engine) -> str | None:
    """The revision the database is stamped with (None if unstamped or unreadable)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _up_to_date(engine: Engine) -> bool:
    """At the newest revision, known without loading Alembic."""
    head = declared_head()
    return head is not None and _stamped_revision(engine) == head


def ensure_schema(engine: Engine) -> None:
    """Migrate an embedded SQLite database automatically; insist on an explicit
    `tradewind db migrate` for a shared server."""
    if _up_to_date(engine):
        return
    if is_sqlite(engine):
        check_connection(engine)
        current = current_revision(engine)
        if current != head_revision(engine):
            _refuse_newer(engine, current)
            migrate(engine)
        return
    check_schema(engine)


def _refuse_newer(engine: Engine, current: str | None) -> None:
    """A database migrated by a newer Tradewind must not be touched by this one."""
    from alembic.script import ScriptDirectory

    if current is None:
        return
    known = {
        script.revision
        for script in ScriptDirectory.from_config(alembic_config(engine)).walk_revisions()
    }
    if current not in known:
        raise DatabaseError(
            f"the metadata database at {masked_url(engine.url)} is at revision {current}, "
            "which this version of Tradewind does not know: it was migrated by a newer "
            "Tradewind; upgrade Tradewind"
        )


def reset(engine: Engine) -> None:
    """Drop every table (ours and Alembic's) and migrate from scratch."""
    from tradewind.models import Base

    check_connection(engine)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        if inspect(conn).has_table("alembic_version"):
            conn.execute(text("DROP TABLE alembic_version"))
    migrate(engine)


# --- the database of this process, for code that has no session handed to it --------
# (`Variable.get` in a DAG file, a connection lookup in an operator). Entry points that
# already built a factory register it, so the whole process shares one engine.

_process_factory: sessionmaker[Session] | None = None


def use_session_factory(factory: sessionmaker[Session] | None) -> None:
    global _process_factory
    _process_factory = factory


def process_session_factory() -> sessionmaker[Session]:
    """The factory registered by the entry point, or one built from the settings."""
    global _process_factory
    if _process_factory is None:
        from tradewind.settings import get_settings

        _process_factory = make_session_factory(make_engine(get_settings()))
    return _process_factory
