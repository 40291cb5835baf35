"""The pull sweeper: one round per gateway heartbeat, run by the console when the agent beats (agentapi/gateway.py).

A round (:func:`sweep`) requeues or fails running pulls whose worker stopped
beating, and sends queued pulls the broker never got or lost.

It rides on the agent's heartbeat, not on a beat task: a beat task travels
through the broker, so it cannot run while Redis is down (exactly when queued
pulls pile up). The heartbeat is HTTP, and the first one after the broker is
back sends what waited. A gateway whose agent is gone is not swept: its running
jobs wait for their agent, which alone can say what its daemon did.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
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
