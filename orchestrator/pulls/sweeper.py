"""The pull sweeper: a thread in every Celery worker, one round every ``PULL_SWEEP_SECONDS``.

A round (``orchestrator.tasks.sweep``) requeues or fails running pulls whose
worker stopped beating, and sends queued pulls the broker never got or lost.

It is a worker bootstep rather than a beat task on purpose: a beat task travels
through the broker, so it cannot run while Redis is down (exactly when queued
pulls pile up), and it waits behind long pulls when every worker process is
busy. The thread needs only the database, and its first round after the broker
is back sends what waited.
"""

from __future__ import annotations

import logging
import threading

from celery import bootsteps

log = logging.getLogger(__name__)


class PullSweeper(bootsteps.StartStopStep):
    """Registered in orchestrator/celery.py; runs in the worker's main process."""

    # After the pool: its processes are forked before this thread exists.
    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, parent) -> None:
        from django.conf import settings

        period = settings.PULL_SWEEP_SECONDS
        if period <= 0:
            log.info("pull sweeper disabled (PULL_SWEEP_SECONDS=%s)", period)
            return
        self._thread = threading.Thread(target=self._run, args=(period,), name="pull-sweeper", daemon=True)
        self._thread.start()
        log.info("pull sweeper: every %s s", period)

    def stop(self, parent) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, period: float) -> None:
        from django.db import connection

        from .tasks import sweep

        try:
            while not self._stop.wait(period):
                try:
                    counts = sweep()
                except Exception:  # noqa: BLE001 - a bad round must not end the sweeper
                    log.exception("pull sweep failed; next round in %s s", period)
                    connection.close()
                    continue
                if any(counts.values()):
                    log.info("pull sweep: %s", counts)
        finally:
            connection.close()
