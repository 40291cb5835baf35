"""A worker's hold on a claimed job while it pulls: the fence of :mod:`.actions` plus a heartbeat thread.

The heartbeat is a thread, so it keeps beating while the daemon is silent
(resolving a name, waiting for a registry) and stops when the process dies;
the sweeper (:mod:`.sweeper`) releases a job whose heartbeat is older than
``PULL_STALE_AFTER_SECONDS``. When a beat finds the job no longer held, the
lease is marked lost and the pull stops.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection

from orchestrator.models import PullJob

from . import actions

log = logging.getLogger(__name__)

# The heartbeat beats at least this often, and three times per stale period.
HEARTBEAT_MAX_SECONDS = 5.0


def heartbeat_period() -> float:
    return max(0.5, min(HEARTBEAT_MAX_SECONDS, settings.PULL_STALE_AFTER_SECONDS / 3))


class Lease(actions.Fence):
    """A fence whose heartbeat thread runs between :meth:`start` and :meth:`stop`."""

    def __init__(self, fence: actions.Fence, period: float | None = None) -> None:
        super().__init__(fence.job_id, fence.holder, fence.lost)
        self.period = heartbeat_period() if period is None else period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._beat, name=f"pull-heartbeat-{self.job_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.period):
                try:
                    alive = actions.beat(self)
                except DatabaseError as exc:  # a locked or briefly unavailable database: beat again later
                    log.warning("pull job %s: heartbeat not written: %s", self.job_id, exc)
                    continue
                if not alive:
                    self.lost.set()
                    ended = not PullJob.objects.filter(pk=self.job_id, state__in=PullJob.ACTIVE_STATES).exists()
                    if not self._stop.is_set() and not ended:
                        log.warning("pull job %s: no longer held by %s; stopping its pull", self.job_id, self.holder)
                    return
        finally:
            connection.close()
