"""A forked child never talks over its parent's pooled connections.

Each engine of `tradewind.db` gets an empty pool in the child, made in the parent before
the fork (so the child only installs it). The child's pool must be its own, have the
engine's pool listeners (SQLite's pragmas are set by one), follow a pool the parent
replaced, and leave the parent's pool and connections alone; and an engine its owner
drops must still be collected, connections and all.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from tradewind import db
from tradewind.db import SPARE_POOL_ATTRIBUTE, make_engine, make_spare_pools_final
from tradewind.settings import get_settings


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(get_settings(database_url=f"sqlite:///{tmp_path / 'forked.db'}"))
    yield engine
    engine.dispose()


def in_child(body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Fork, run ``body`` in the child and return what it returned (or its error)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_fd)
            try:
                said = body()
            except Exception as exc:
                said = {"error": repr(exc)}
            os.write(write_fd, json.dumps(said).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    return dict(json.loads(b"".join(chunks)))


def describe_pool(engine: Engine) -> dict[str, Any]:
    """The child's view: its pool, how many connections it held, and whether a new
    connection of it works and went through the engine's connect listener."""
    pool = engine.pool
    held = pool.checkedin()  # type: ignore[attr-defined]
    with engine.connect() as conn:
        mode = conn.execute(text("PRAGMA journal_mode")).scalar_one()
    return {"pool": id(pool), "held": held, "journal_mode": mode}


def test_a_child_gets_an_empty_pool_of_its_own_and_the_parent_keeps_its_own(
    engine: Engine,
) -> None:
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.commit()
    parent_pool = engine.pool
    assert parent_pool.checkedin() == 1  # type: ignore[attr-defined]

    child = in_child(lambda: describe_pool(engine))

    assert child["pool"] != id(parent_pool)
    assert child["held"] == 0
    assert child["journal_mode"] == "wal"  # SQLite's connect listener ran in the child
    assert engine.pool is parent_pool
    assert parent_pool.checkedin() == 1  # type: ignore[attr-defined]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0


def test_every_child_starts_from_an_empty_pool_even_after_its_siblings_connected(
    engine: Engine,
) -> None:
    first = in_child(lambda: describe_pool(engine))
    second = in_child(lambda: describe_pool(engine))

    assert first["held"] == second["held"] == 0
    assert first["journal_mode"] == second["journal_mode"] == "wal"


def note_connects(engine: Engine, path: Path) -> None:
    @event.listens_for(engine, "connect")
    def _note(_dbapi_connection: Any, _record: Any) -> None:
        with path.open("a") as handle:
            handle.write(f"{os.getpid()}\n")


def connect_and_say_who(engine: Engine) -> dict[str, Any]:
    return {**describe_pool(engine), "pid": os.getpid()}


def test_a_child_follows_a_pool_the_parent_replaced(engine: Engine, tmp_path: Path) -> None:
    in_child(lambda: describe_pool(engine))  # the parent has made a spare pool by now
    engine.dispose()  # a new pool in the parent; a listener only it has
    note_connects(engine, tmp_path / "connects")

    child = in_child(lambda: connect_and_say_who(engine))

    assert child["pool"] != id(engine.pool)
    assert child["held"] == 0
    assert (tmp_path / "connects").read_text().split() == [str(child["pid"])]


def test_a_child_has_the_pool_listeners_its_parent_added_since_its_last_fork(
    engine: Engine, tmp_path: Path
) -> None:
    in_child(lambda: describe_pool(engine))  # the parent has made a spare pool by now
    note_connects(engine, tmp_path / "connects")

    child = in_child(lambda: connect_and_say_who(engine))

    assert (tmp_path / "connects").read_text().split() == [str(child["pid"])]


def test_a_parent_whose_spares_are_final_hands_each_child_the_one_it_made(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork server's: its spares are made once, not checked before every fork; each
    child still gets an empty pool of its own, and checks again before its own forks."""
    monkeypatch.setattr(db, "_spares_final", False)  # and back after the test
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    make_spare_pools_final()
    source, spare = getattr(engine, SPARE_POOL_ATTRIBUTE)
    checked: list[object] = []
    monkeypatch.setattr(db, "_spare_source", checked.append)

    first = in_child(lambda: describe_pool(engine))
    second = in_child(lambda: {**describe_pool(engine), "final": db._spares_final})

    assert checked == []  # no check before either fork
    assert getattr(engine, SPARE_POOL_ATTRIBUTE) == (source, spare)
    assert first["pool"] == second["pool"] == id(spare)
    assert first["held"] == second["held"] == 0
    assert second["final"] is False
    assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]


def open_sqlite_connections() -> int:
    return sum(1 for thing in gc.get_objects() if isinstance(thing, sqlite3.Connection))


def test_engines_dropped_after_a_fork_are_collected_with_their_connections(
    tmp_path: Path,
) -> None:
    gc.collect()
    before = open_sqlite_connections()
    for number in range(3):
        engine = make_engine(get_settings(database_url=f"sqlite:///{tmp_path / f'{number}.db'}"))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        in_child(lambda: {})  # the parent made a spare pool for each engine
    del engine, conn  # a closed Connection still refers to its engine

    gc.collect()

    assert open_sqlite_connections() == before
