"""The DAG list served again until the DAG tables change (Postgres): a repeated request
queries nothing; every kind of change is seen; without the change triggers, or while
the listener is away, every request queries."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event

from tests.conftest import new_pg_database
from tests.integration.daemons import wait_for
from tradewind.auth.users import create_user
from tradewind.db import make_engine, make_session_factory, migrate, session_scope
from tradewind.models.base import utcnow
from tradewind.settings import Settings, get_settings
from webserver.api import dag_cache

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PASSWORD = "cache-test-password"
DAG_FILE = """
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator

for name in ("alpha", "beta", "gamma"):
    with DAG(name, tags=["cache"]):
        EmptyOperator(task_id="noop")
"""


@pytest.fixture
def pg_url(dags_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of this test's own (so that breaking its listener or its triggers
    touches no other test), holding three DAGs and an admin."""
    from scheduler.dag_processing.processor import DagFileProcessor

    with new_pg_database("tw_dag_cache") as url:
        monkeypatch.setenv("TRADEWIND_DATABASE_URL", url)
        engine = make_engine(get_settings())
        migrate(engine)
        factory = make_session_factory(engine)
        (dags_folder / "three.py").write_text(textwrap.dedent(DAG_FILE))
        DagFileProcessor(factory, get_settings()).process(now=utcnow())
        with session_scope(factory) as session:
            create_user(session, "admin", PASSWORD, "admin")
        try:
            yield url
        finally:
            dag_cache.stop_watching(engine)
            engine.dispose()


class Client:
    """The app over its test client, counting the queries that read the DAG table."""

    def __init__(self, settings: Settings) -> None:
        from webserver.app import create_app

        self.app = create_app(settings)
        self.http = TestClient(self.app)
        self.queries = 0
        event.listen(self.app.state.engine, "before_cursor_execute", self._count)
        answer = self.http.post("/auth/token", json={"username": "admin", "password": PASSWORD})
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def _count(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM dag" in statement:
            self.queries += 1

    @property
    def watch(self) -> dag_cache.DagTableWatch:
        watch = self.app.state.dag_list.watch
        assert watch is not None
        return watch

    def live(self) -> bool:
        return self.watch.generation is not None

    def dags(self, **params: object) -> dict[str, bool]:
        answer = self.http.get("/api/v2/dags", params=params, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return {dag["dag_id"]: dag["is_paused"] for dag in answer.json()["dags"]}


@pytest.fixture
def client(pg_url: str) -> Iterator[Client]:
    client = Client(get_settings())
    wait_for(client.live, "the listener connects")
    yield client
    client.http.close()
    client.app.state.engine.dispose()


def outside_write(url: str, statement: str) -> None:
    """A change made by another process: a plain connection, not a session of ours."""
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def test_a_repeated_request_queries_nothing(client: Client) -> None:
    first = client.dags()
    assert first == {"alpha": True, "beta": True, "gamma": True}
    read = client.queries
    assert client.dags() == first
    assert client.queries == read
    client.dags(limit=2)  # another page is another entry
    assert client.queries == read + 1


def test_a_write_through_the_api_is_seen_by_the_next_request(client: Client) -> None:
    client.dags()
    answer = client.http.patch(
        "/api/v2/dags/beta", json={"is_paused": False}, headers=client.headers
    )
    assert answer.status_code == 200
    assert client.dags()["beta"] is False


def test_a_change_by_another_process_arrives_by_notification(client: Client, pg_url: str) -> None:
    client.dags()
    outside_write(pg_url, "UPDATE dag SET is_paused = false WHERE dag_id = 'gamma'")
    wait_for(lambda: client.dags()["gamma"] is False, "the list shows gamma unpaused")
    outside_write(pg_url, "DELETE FROM dag_tag WHERE dag_id = 'alpha'")
    wait_for(
        lambda: (
            client.http.get(
                "/api/v2/dags", params={"tags": "cache"}, headers=client.headers
            ).json()["total_entries"]
            == 2
        ),
        "alpha leaves the tag filter",
    )


def test_a_change_that_lands_while_the_list_is_read_is_not_kept(
    client: Client, pg_url: str
) -> None:
    """The query has read alpha paused; before the list is kept, a change unpauses it
    and its notification arrives. What the query read is stale and must not be served."""
    state = {"written": False}

    def write_after_the_query(conn: object, cursor: object, statement: str, *a: object) -> None:
        if "FROM dag" in statement and not state["written"]:
            state["written"] = True
            before = client.watch.generation
            outside_write(pg_url, "UPDATE dag SET is_paused = false WHERE dag_id = 'alpha'")
            wait_for(lambda: client.watch.generation != before, "the notification arrives")

    event.listen(client.app.state.engine, "after_cursor_execute", write_after_the_query)
    assert client.dags()["alpha"] is True  # what the query read
    event.remove(client.app.state.engine, "after_cursor_execute", write_after_the_query)
    assert client.dags()["alpha"] is False


def test_while_the_listener_is_away_every_request_queries(client: Client, pg_url: str) -> None:
    client.dags()
    outside_write(
        pg_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE query LIKE 'LISTEN tradewind_dag_changed%'",
    )
    wait_for(lambda: not client.live(), "the watch notices its connection is gone")
    read = client.queries
    outside_write(pg_url, "UPDATE dag SET is_paused = false WHERE dag_id = 'beta'")
    assert client.dags()["beta"] is False
    client.dags()
    assert client.queries == read + 2
    wait_for(client.live, "the listener reconnects", timeout=3 * dag_cache.RECONNECT_SECONDS)
    client.dags()
    read = client.queries
    client.dags()
    assert client.queries == read


def test_without_the_change_triggers_nothing_is_cached(pg_url: str) -> None:
    outside_write(pg_url, "DROP TRIGGER tradewind_dag_changed ON dag")
    client = Client(get_settings())
    try:
        time.sleep(0.5)  # time enough for the listener to look and give up
        assert not client.live()
        client.dags()
        read = client.queries
        client.dags()
        assert client.queries == read + 1
    finally:
        client.http.close()
        client.app.state.engine.dispose()


class LiveWatch(dag_cache.DagTableWatch):
    """A watch that is live and sees no change, without a database."""

    def __init__(self) -> None:
        self._count = 0
        self._live = True


def test_sqlite_has_no_watch(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert dag_cache.watch_for(engine) is None


def test_one_build_serves_every_request_waiting_for_it() -> None:
    builds: list[int] = []

    def build() -> bytes:
        time.sleep(0.05)
        builds.append(1)
        return b"body"

    async def scenario() -> list[bytes]:
        cache = dag_cache.ResponseCache(LiveWatch(), size=2)
        bodies = await asyncio.gather(*(cache.get("k", build) for _ in range(10)))
        await cache.get("other", build)
        await cache.get("third", build)  # evicts "k", the least recently used
        await cache.get("k", build)
        return list(bodies)

    assert asyncio.run(scenario()) == [b"body"] * 10
    assert len(builds) == 4


def test_a_failed_build_reaches_every_waiter_and_is_not_kept() -> None:
    calls: list[int] = []

    def build() -> bytes:
        calls.append(1)
        raise ValueError("broken")

    async def scenario() -> list[object]:
        cache = dag_cache.ResponseCache(LiveWatch())
        first = await asyncio.gather(
            *(cache.get("k", build) for _ in range(3)), return_exceptions=True
        )
        second = await asyncio.gather(cache.get("k", build), return_exceptions=True)
        return [*first, *second]

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert len(calls) == 2
