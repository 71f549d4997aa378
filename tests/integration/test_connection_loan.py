"""A forking parent lends a Postgres connection to each child (`ConnectionLoan`).

The child must run on the very session the parent lent, the parent must get it back
usable after a clean exit (and lend it to the next child), and must not lend it again
after a child that died in the middle of a transaction. SQLite lends nothing.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.integration.test_forked_engines import in_child
from tradewind.db import ConnectionLoan


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def fork_with_loan(engine: Engine, body: Callable[[], None]) -> tuple[ConnectionLoan, int, int]:
    """Fork a child that takes the loan over and runs ``body``; return the loan, the
    child's pid and the read end of a pipe the child writes its backend pid to."""
    loan = ConnectionLoan(engine)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_fd)
            loan.take_over()
            os.write(write_fd, str(backend_pid(engine)).encode() + b"\n")
            body()
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    return loan, pid, read_fd


def read_line(fd: int) -> str:
    said = b""
    while not said.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            break
        said += chunk
    os.close(fd)
    return said.decode().strip()


@pytest.mark.postgres
def test_a_child_runs_on_the_lent_session_and_the_parent_gets_it_back(
    pg_engine: Engine,
) -> None:
    lent_to = backend_pid(pg_engine)  # the pool's one idle connection: the one lent
    for _ in range(2):  # kept for the next child after a clean exit, and still healthy
        loan, pid, fd = fork_with_loan(pg_engine, lambda: None)
        assert int(read_line(fd)) == lent_to
        _, status = os.waitpid(pid, 0)
        loan.settle(clean=status == 0)
        assert status == 0
    assert backend_pid(pg_engine) != lent_to  # the parent's own queries use its pool


@pytest.mark.postgres
def test_a_child_that_dies_mid_transaction_costs_the_parent_that_connection_only(
    pg_engine: Engine,
) -> None:
    def die_in_a_transaction() -> None:
        with pg_engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # a transaction is open now
            os.kill(os.getpid(), signal.SIGKILL)

    lent_to = backend_pid(pg_engine)
    loan, pid, fd = fork_with_loan(pg_engine, die_in_a_transaction)
    assert int(read_line(fd)) == lent_to
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    loan.settle(clean=False)
    now = backend_pid(pg_engine)
    assert now != lent_to  # a new session: the used one was closed, not pooled
    with pg_engine.connect() as conn:
        alive = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": lent_to}
        ).scalar_one()
    assert alive == 0


@pytest.mark.postgres
def test_neither_side_drops_a_statement_the_other_relies_on(pg_engine: Engine) -> None:
    # psycopg prepares a query run often and drops every prepared statement of the
    # session when it rolls back; a lending engine prepares nothing, so the parent's
    # queries keep working whatever the child did.
    def run_queries_and_roll_back() -> None:
        with pg_engine.connect() as conn:
            for _ in range(10):
                conn.execute(text("SELECT 1 WHERE 1 = :one"), {"one": 1})
            conn.rollback()

    def run_queries_and_count_prepared() -> None:
        with pg_engine.connect() as conn:
            for _ in range(10):
                conn.execute(text("SELECT 2 WHERE 2 = :two"), {"two": 2})
            prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements"))
            assert prepared.scalar() == 0

    with pg_engine.connect() as conn:
        for _ in range(10):
            conn.execute(text("SELECT 2 WHERE 2 = :two"), {"two": 2})
        conn.commit()
    lent_to = backend_pid(pg_engine)
    # The session goes from the parent to one child and on to the next.
    for body in (run_queries_and_roll_back, run_queries_and_count_prepared):
        loan, pid, fd = fork_with_loan(pg_engine, body)
        assert int(read_line(fd)) == lent_to
        _, status = os.waitpid(pid, 0)
        loan.settle(clean=status == 0)
        assert status == 0


@pytest.mark.postgres
def test_a_loan_the_parent_drops_leaves_the_child_its_session(pg_engine: Engine) -> None:
    # The driver ends a session when the connection object that made it is freed; a
    # fork server that stops drops the loans of tries that go on without it.
    import gc

    ready_read, ready_write = os.pipe()

    def wait_then_query() -> None:
        os.read(ready_read, 1)
        backend_pid(pg_engine)  # raises if the session was ended under it

    loan, pid, fd = fork_with_loan(pg_engine, wait_then_query)
    read_line(fd)
    del loan
    gc.collect()
    os.write(ready_write, b"x")
    _, status = os.waitpid(pid, 0)
    os.close(ready_read)
    os.close(ready_write)
    assert status == 0


def terminate(engine: Engine, backend: int) -> None:
    """End a backend from the server's side, as a restarted database would."""
    other = create_engine(engine.url.render_as_string(hide_password=False))
    try:
        with other.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            conn.commit()
    finally:
        other.dispose()


@pytest.mark.postgres
def test_a_connection_that_rested_is_pinged_before_a_loan_and_a_dead_one_not_lent(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradewind import db

    dead = backend_pid(pg_engine)  # back in the pool now
    terminate(pg_engine, dead)
    monkeypatch.setattr(db, "PING_AFTER_REST_SECONDS", 0.0)  # it has rested long enough
    loan, pid, fd = fork_with_loan(pg_engine, lambda: None)
    lent_to = int(read_line(fd))
    _, status = os.waitpid(pid, 0)
    loan.settle(clean=status == 0)
    assert status == 0
    assert lent_to != dead  # the child connected itself instead


def count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The connections ``engine`` pings from now on, in order."""
    pings: list[object] = []
    real_ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
    return pings


@pytest.mark.postgres
def test_a_connection_lent_again_at_once_is_not_pinged(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = count_pings(pg_engine, monkeypatch)
    backend_pid(pg_engine)  # checked in just now
    for _ in range(2):  # from the pool, then from the connections kept for children
        loan = ConnectionLoan(pg_engine)
        loan.settle(clean=True)
    assert pings == []
    assert backend_pid(pg_engine)  # and the pool still works


@pytest.mark.postgres
def test_a_kept_connection_that_rested_is_pinged_and_a_dead_one_not_lent(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradewind import db

    loan, pid, fd = fork_with_loan(pg_engine, lambda: None)
    kept = int(read_line(fd))
    os.waitpid(pid, 0)
    loan.settle(clean=True)  # kept for the next child
    terminate(pg_engine, kept)
    monkeypatch.setattr(db, "PING_AFTER_REST_SECONDS", 0.0)  # it has rested long enough
    pings = count_pings(pg_engine, monkeypatch)
    loan, pid, fd = fork_with_loan(pg_engine, lambda: None)
    lent_to = int(read_line(fd))
    _, status = os.waitpid(pid, 0)
    loan.settle(clean=status == 0)
    assert status == 0
    assert pings  # the kept one was pinged
    assert lent_to != kept  # and, dead, replaced


@pytest.mark.postgres
def test_a_child_never_lends_the_connections_its_parent_keeps(pg_engine: Engine) -> None:
    from tradewind.db import ConnectionLoan as Loan

    loan, pid, fd = fork_with_loan(pg_engine, lambda: None)
    kept = int(read_line(fd))
    os.waitpid(pid, 0)
    loan.settle(clean=True)  # the parent keeps it for its next child

    pid = os.fork()  # a child that is lent nothing, and lends
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            its_loan = Loan(pg_engine)  # from this child's own pool, not the parent's
            its_loan.take_over()
            code = 0 if backend_pid(pg_engine) != kept else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    loan, pid, fd = fork_with_loan(pg_engine, lambda: None)
    assert int(read_line(fd)) == kept  # and the parent's session was left alone
    os.waitpid(pid, 0)
    loan.settle(clean=True)


@pytest.mark.postgres
def test_a_copy_that_stops_lending_prepares_its_frequent_statements_and_lends_nothing(
    pg_engine: Engine,
) -> None:
    # A fork server's recorder is such a copy: it never forks, and runs the same few
    # statements for every try.
    from tradewind.db import stop_lending

    def prepared_after_ten_runs() -> int:
        with pg_engine.connect() as conn:
            for _ in range(10):
                conn.execute(text("SELECT 3 WHERE 3 = :three"), {"three": 3})
            count = conn.execute(text("SELECT count(*) FROM pg_prepared_statements"))
            conn.commit()
            return int(count.scalar_one())

    def in_the_copy() -> dict[str, Any]:
        stop_lending(pg_engine)
        lends = ConnectionLoan(pg_engine)._connection is not None
        return {"prepared": prepared_after_ten_runs(), "lends": lends}

    assert in_child(in_the_copy) == {"prepared": 1, "lends": False}
    # The parent's engine is as it was: it prepares nothing and still lends.
    assert prepared_after_ten_runs() == 0
    loan = ConnectionLoan(pg_engine)
    assert loan._connection is not None
    loan.settle(clean=True)


def test_stop_lending_leaves_sqlite_alone(tmp_path: Path) -> None:
    from tradewind.db import make_engine, stop_lending
    from tradewind.settings import get_settings

    engine = make_engine(get_settings(database_url=f"sqlite:///{tmp_path / 'loan.db'}"), lends=True)
    try:
        stop_lending(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_an_engine_not_made_to_lend_lends_nothing(pg_database: str) -> None:
    from tradewind.db import make_engine
    from tradewind.settings import get_settings

    engine = make_engine(get_settings(database_url=pg_database), pool_size=1, max_overflow=0)
    try:
        loan = ConnectionLoan(engine)
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        loan.settle(clean=True)
    finally:
        engine.dispose()


def test_sqlite_lends_nothing(tmp_path: Path) -> None:
    from tradewind.db import make_engine
    from tradewind.settings import get_settings

    engine = make_engine(get_settings(database_url=f"sqlite:///{tmp_path / 'loan.db'}"), lends=True)
    try:
        loan = ConnectionLoan(engine)
        loan.take_over()  # nothing to take over
        loan.settle(clean=True)
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        engine.dispose()


@pytest.fixture
def pg_engine(pg_database: str) -> Iterator[Engine]:
    from tradewind.db import make_engine
    from tradewind.settings import get_settings

    engine = make_engine(
        get_settings(database_url=pg_database), lends=True, pool_size=1, max_overflow=0
    )
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_any_engine_replaces_a_rested_connection_that_died_and_pings_no_busy_one(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradewind import db
    from tradewind.db import make_engine
    from tradewind.settings import get_settings

    engine = make_engine(get_settings(database_url=pg_database), pool_size=1, max_overflow=0)
    pings = count_pings(engine, monkeypatch)
    try:
        first = backend_pid(engine)
        assert backend_pid(engine) == first  # taken again at once: the same, unpinged
        assert pings == []
        terminate(engine, first)
        monkeypatch.setattr(db, "PING_AFTER_REST_SECONDS", 0.0)  # it has rested long enough
        assert backend_pid(engine) != first  # the dead one was pinged and replaced
        assert pings  # (its replacement too: with no rest allowed, every checkout pings)
    finally:
        engine.dispose()
