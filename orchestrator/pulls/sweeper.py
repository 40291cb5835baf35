"""The pull sweeper: a thread in every Celery worker, one round every ``PULL_SWEEP_SECONDS``.

A round (:func:`sweep`) requeues or fails running pulls whose worker stopped
beating, and sends queued pulls the broker never got or lost.

It is a worker bootstep rather than a beat task on purpose: a beat task travels
through the broker, so it cannot run while Redis is down (exactly when queued
pulls pile up), and it waits behind long pulls when every worker process is
busy. The thread needs only the database, and its first round after the broker
is back sends what waited.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from celery import bootsteps
from django.conf import settings
from django.db import connection
from django.utils import timezone

from orchestrator.models import PullJob

from . import actions

log = logging.getLogger(__name__)


def sweep(stale_after: float | None = None, gateway: str | None = None) -> dict:
    """One round: release running jobs whose worker stopped beating, and send queued jobs again.

    Released jobs are requeued within their retry budget, else failed as
    interrupted (:func:`.actions.release_stale`); queued jobs the broker never
    got, or whose message it lost (a Redis restart), are sent again.
    """
    stale_after = settings.PULL_STALE_AFTER_SECONDS if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    counts = {"requeued": 0, "interrupted": 0, "cancelled": 0}
    stale = PullJob.objects.filter(state=PullJob.State.RUNNING, heartbeat_at__lt=cutoff)
    if gateway is not None:
        # An agent sweeps its own gateway's jobs only: a job never moves to another gateway.
        stale = stale.filter(instance__gateway__name=gateway)
    stale = stale.values_list("pk", flat=True)
    for job_id in list(stale):
        outcome = actions.release_stale(job_id, stale_after)
        if outcome == "failed":
            counts["interrupted"] += 1
        elif outcome is not None:
            counts[outcome] += 1
    counts["dispatched"] = actions.redispatch_waiting(lost_after=stale_after, gateway=gateway)
    return counts


class PullSweeper(bootsteps.StartStopStep):
    """Registered in orchestrator/celery.py; runs in the worker's main process."""

    # After the pool: its processes are forked before this thread exists.
    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        # In an agent, its gateway (manage.py agent sets it); a plain worker sweeps every gateway.
        self.gateway = parent.app.conf.get("console_gateway")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, parent) -> None:
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
        try:
            while not self._stop.wait(period):
                try:
                    counts = sweep(gateway=self.gateway)
                except Exception:  # noqa: BLE001 - a bad round must not end the sweeper
                    log.exception("pull sweep failed; next round in %s s", period)
                    connection.close()
                    continue
                if any(counts.values()):
                    log.info("pull sweep: %s", counts)
        finally:
            connection.close()
