"""`tradewind dag-processor`: keep the database in step with the DAG folder, forever.

Each pass lists the folder (cheap: a stat per file) and parses files that changed, plus
files not parsed for ``min_file_process_interval_seconds``. It heartbeats as a job.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

from scheduler.dag_processing.processor import DagFileProcessor
from tradewind import jobs
from tradewind.db import session_scope
from tradewind.models.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
PASS_INTERVAL_SECONDS = 1.0


class DagProcessorDaemon:
    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        self.processor = DagFileProcessor(factory, settings, periodic_refresh=True)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            logger.info("Received %s; stopping", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        with session_scope(self.factory) as session:
            job_id = jobs.start_job(session, "dag_processor", now=utcnow()).id
        logger.info(
            "DAG processor started on %s (job %s)", self.settings.resolved_dags_folder, job_id
        )
        beat_every = timedelta(seconds=self.settings.job_heartbeat_seconds)
        last_beat = utcnow()
        try:
            while not self._stop.is_set():
                now = utcnow()
                try:
                    report = self.processor.process(now=now)
                    if report.parsed:
                        logger.info(
                            "Parsed %s file(s): %s new version(s), %s error(s)",
                            len(report.parsed),
                            len(report.new_versions),
                            len(report.errors),
                        )
                except Exception:
                    logger.exception("DAG processing pass failed; carrying on")
                if now - last_beat >= beat_every:
                    with session_scope(self.factory) as session:
                        jobs.beat(session, job_id, now=now)
                    last_beat = now
                self._stop.wait(PASS_INTERVAL_SECONDS)
        finally:
            with session_scope(self.factory) as session:
                jobs.end_job(session, job_id, now=utcnow())
            logger.info("DAG processor stopped")
