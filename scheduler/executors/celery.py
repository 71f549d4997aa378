"""The Celery executor: tries go onto Redis queues; `tradewind worker` processes run them.

It keeps no state the database does not have. The tries a pass queues are sent in one
batch over one broker connection after the pass commits; a send that fails (Redis down)
leaves the try queued in the database, and the scheduler sends it again once it has
been queued for ``task_queued_timeout``. A message sent twice is harmless: the worker's
claim runs each try at most once. Workers report through the database, and the
scheduler wakes on their notifications, so this executor has nothing to collect.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, tuple_, update

from scheduler.executors.base import Executor, TryFinished
from tradewind import jobs
from tradewind.db import make_engine, make_session_factory, read_session, session_scope
from tradewind.errors import ConfigError
from tradewind.models import TaskInstance
from tradewind.models.base import utcnow
from tradewind.state import TaskInstanceState
from worker.task_runner import TryRequest

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
TI = TaskInstanceState
WORKER_QUEUES_TTL_SECONDS = 5.0
# A queue that looks unserved is checked against the job table again if what this
# executor knows of the workers is older than this: a worker started since must not
# have its tries reported as waiting for one.
UNSERVED_RECHECK_SECONDS = 0.5
BROKER_BACKOFF_SECONDS = 5.0  # after a failed send, do not try again for this long


class CeleryExecutor(Executor):
    name = "celery"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parallelism = settings.parallelism
        self._app: Celery | None = None
        self._factory: sessionmaker[Session] | None = None
        self._pending: list[TryRequest] = []
        self._callbacks_sent: dict[int, float] = {}
        self._queues: tuple[float, set[str], int] | None = None
        self._broker_down_until = 0.0
        self._busy: int | None = None  # the database's count of busy slots, this pass
        self._sent_since_count = 0

    def start(self) -> None:
        from worker.celery_app import make_app

        engine = make_engine(self.settings)
        if engine.dialect.name == "sqlite":
            raise ConfigError(
                "TRADEWIND_EXECUTOR=celery needs a database every worker can reach "
                "(set TRADEWIND_DATABASE_URL to Postgres); SQLite works with the local executor"
            )
        self._factory = make_session_factory(engine)
        self._app = make_app(self.settings)

    def _session_factory(self) -> sessionmaker[Session]:
        if self._factory is None:
            self.start()
        assert self._factory is not None
        return self._factory

    # --- slots: counted in the database, where every scheduler can see them -------------

    def open_slots(self) -> int:
        """What the workers can take now: the smaller of parallelism and the alive
        workers' total concurrency, less the tries queued or running anywhere (the
        database's count, taken once per pass, plus what was sent since). Tries beyond
        that wait as scheduled rather than in Redis, where a long wait would count as
        stuck in queued. With no worker alive yet, up to parallelism tries are queued
        for the workers to come."""
        if self._busy is None:
            with read_session(self._session_factory()) as session:
                busy = session.scalar(
                    select(func.count())
                    .select_from(TaskInstance)
                    .where(TaskInstance.state.in_([str(TI.QUEUED), str(TI.RUNNING)]))
                )
            self._busy = int(busy or 0)
            self._sent_since_count = 0
        capacity = self._workers()[1]
        limit = min(self.parallelism, capacity) if capacity > 0 else self.parallelism
        return limit - self._busy - self._sent_since_count - len(self._pending)

    def can_resend(self) -> bool:
        return True  # a resent try is already counted as queued

    def running(self) -> list[TryRequest]:
        return []  # nothing runs here; liveness looks at every try

    def collect(self) -> list[TryFinished]:
        return []

    # --- sending ---------------------------------------------------------------------------

    def queue(self, request: TryRequest) -> None:
        self._pending.append(request)

    def flush(self) -> None:
        """Send what this pass queued, in one batch over one broker connection: with a
        transport that can (Redis, kombu 5.7 and later), one pipeline of pushes instead
        of a round trip per message.

        It ends a pass: the next one counts the busy slots again, so the pass that a
        try's end woke sees that try's slot free."""
        self._busy = None
        if not self._pending:
            return
        from worker.celery_app import RUN_TRY, try_message

        batch, self._pending = self._pending, []
        self._sent_since_count += len(batch)
        assert self._app is not None
        if time.monotonic() < self._broker_down_until:
            logger.warning(
                "The broker was unreachable moments ago; %s tries stay queued and are sent "
                "again after %ss",
                len(batch),
                self.settings.task_queued_timeout_seconds,
            )
            return
        try:
            with self._app.producer_or_acquire() as producer, _one_batch(producer):
                for request in batch:
                    self._app.send_task(
                        RUN_TRY, args=try_message(request), queue=request.queue, producer=producer
                    )
        except Exception as exc:
            self._broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
            logger.warning(
                "Could not send %s tries to the broker, or not all of them (%s); those not "
                "sent stay queued and are sent again after %ss",
                len(batch),
                exc,
                self.settings.task_queued_timeout_seconds,
            )
        self._explain_unserved(batch)

    def run_callback(self, request_id: int) -> None:
        """Send a callback request once per task_queued_timeout until a worker claims it
        (the claim makes a second copy harmless)."""
        from worker.celery_app import DEFAULT_QUEUE, RUN_CALLBACK

        now = time.monotonic()
        timeout = self.settings.task_queued_timeout_seconds
        self._callbacks_sent = {
            k: sent for k, sent in self._callbacks_sent.items() if now - sent < timeout
        }
        if request_id in self._callbacks_sent or now < self._broker_down_until:
            return
        assert self._app is not None
        try:
            self._app.send_task(RUN_CALLBACK, args=[request_id], queue=DEFAULT_QUEUE)
            self._callbacks_sent[request_id] = now
        except Exception as exc:
            self._broker_down_until = now + BROKER_BACKOFF_SECONDS
            logger.warning("Could not send callback request %s: %s", request_id, exc)

    def _explain_unserved(self, batch: list[TryRequest]) -> None:
        """Note on each try whose queue no alive worker listens to why it waits."""
        listened = self._workers()[0]
        if any(r.queue not in listened for r in batch):  # or a worker has started since
            listened = self._workers(max_age=UNSERVED_RECHECK_SECONDS)[0]
        unserved = [r for r in batch if r.queue not in listened]
        if not unserved:
            return
        known = ", ".join(sorted(listened)) or "none"
        with session_scope(self._session_factory()) as session:
            for queue in sorted({r.queue for r in unserved}):
                keys = [
                    (r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number)
                    for r in unserved
                    if r.queue == queue
                ]
                reason = (
                    f"No alive worker listens to queue {queue!r} (queues with workers: "
                    f"{known}); start one with `tradewind worker --queues {queue}`"
                )
                session.execute(
                    update(TaskInstance)
                    .where(
                        tuple_(
                            TaskInstance.dag_id,
                            TaskInstance.run_id,
                            TaskInstance.task_id,
                            TaskInstance.map_index,
                            TaskInstance.try_number,
                        ).in_(keys),
                        TaskInstance.state == str(TI.QUEUED),
                    )
                    .values(queued_reason=reason)
                )
                logger.warning("%s tries wait: %s", len(keys), reason)

    def _workers(self, max_age: float = WORKER_QUEUES_TTL_SECONDS) -> tuple[set[str], int]:
        """The queues alive workers listen to, and their total concurrency, as read from
        the job table at most ``max_age`` seconds ago."""
        now = time.monotonic()
        if self._queues is None or now - self._queues[0] > max_age:
            threshold = timedelta(seconds=self.settings.job_dead_after_seconds)
            with read_session(self._session_factory()) as session:
                alive = jobs.alive_jobs(session, "worker", now=utcnow(), threshold=threshold)
            listened = {q for job in alive for q in (job.queues or "").split(",") if q}
            capacity = sum(job.concurrency or 0 for job in alive)
            self._queues = (now, listened, capacity)
        return self._queues[1], self._queues[2]

    def end(self, grace_seconds: float) -> list[TryFinished]:
        """Tries run on workers and outlive the scheduler: send what is pending and go."""
        self.flush()
        return []


def _one_batch(producer: Any) -> contextlib.AbstractContextManager[Any]:
    """The producer's batch of publishes (kombu 5.7 and later), or nothing: then each
    message is sent on its own, as before."""
    batch = getattr(producer, "batch", None)
    return batch() if batch is not None else contextlib.nullcontext()
