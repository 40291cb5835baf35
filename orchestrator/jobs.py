"""Queueing pulls: one active pull per instance, tasks sent only after commit.

The job row is the outbox: it is created in the same transaction as the form's
save, and the Celery task (carrying only the job id) is sent once that commits.
If the broker is down, the job keeps ``dispatched_at`` empty and the sweeper
(``orchestrator.sweeper``, a thread in every worker) sends it when the broker is back.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from registries.reference import ReferenceError, parse_normalized

from .models import ContainerInstance, PullJob

log = logging.getLogger(__name__)

WAITING_FOR_QUEUE = "Waiting for the task queue"


def normalized_reference(instance: ContainerInstance) -> str:
    """The full reference the daemon pulls, e.g. 'docker.io/library/busybox:latest'."""
    try:
        return str(parse_normalized(instance.reference))
    except ReferenceError:
        # The form refuses bad references; a row edited around it still gets a job that fails clearly.
        return instance.reference


def queue_pull(instance: ContainerInstance, user=None) -> tuple[PullJob, bool]:
    """Queue a pull of ``instance``, or return the pull already queued or running.

    Returns (job, created). The instance row is locked so two clicks cannot
    queue two pulls (SQLite serialises writers; Postgres honours the lock).
    """
    with transaction.atomic():
        ContainerInstance.objects.select_for_update().filter(pk=instance.pk).first()
        active = instance.pulls.filter(state__in=PullJob.ACTIVE_STATES).order_by("-queued_at").first()
        if active is not None:
            return active, False
        job = PullJob.objects.create(
            instance=instance,
            reference=normalized_reference(instance),
            requested_by=user if user is not None and user.is_authenticated else None,
            message="Waiting for a worker",
        )
        transaction.on_commit(lambda: dispatch(job.pk))
    return job, True


def dispatch(job_id: int) -> bool:
    """Send the pull task for a queued job. False (and the job stays queued) if the broker is down.

    Never blocks a web request for long: publishing does not retry, and the
    Redis transport is told not to retry connecting (settings:
    ``BROKER_REDIS_TRANSPORT_OPTIONS``).
    """
    from .tasks import pull_image

    try:
        pull_image.apply_async((job_id,), queue=settings.CELERY_PULL_QUEUE, retry=False)
    except Exception as exc:  # kombu raises OperationalError and friends; none may fail the save
        log.warning("task queue unavailable, pull job %s stays queued until it is back: %s", job_id, type(exc).__name__)
        PullJob.objects.filter(pk=job_id, state=PullJob.State.QUEUED, dispatched_at__isnull=True).update(
            message=f"{WAITING_FOR_QUEUE}: the pull starts as soon as it is reachable"
        )
        return False
    queued = PullJob.objects.filter(pk=job_id, state=PullJob.State.QUEUED)
    queued.update(dispatched_at=timezone.now())
    queued.filter(message__startswith=WAITING_FOR_QUEUE).update(message="Waiting for a worker")
    return True


def redispatch_waiting(older_than: float = 5.0, lost_after: float | None = None) -> int:
    """Send queued jobs again: those the broker never got, and (with ``lost_after``) those it may have lost.

    A message can vanish after the broker accepted it (Redis restarted without
    persistence), so a job still queued ``lost_after`` seconds after its
    dispatch is sent once more. A duplicate is harmless: the worker's claim
    refuses every delivery but the first. Returns how many were sent.
    """
    now = timezone.now()
    waiting = Q(dispatched_at__isnull=True, queued_at__lte=now - timedelta(seconds=older_than))
    if lost_after is not None:
        waiting |= Q(dispatched_at__lt=now - timedelta(seconds=lost_after))
    sent = 0
    for job_id in PullJob.objects.filter(waiting, state=PullJob.State.QUEUED).values_list("pk", flat=True):
        sent += dispatch(job_id)
    return sent


def request_cancel(job: PullJob) -> bool:
    """Ask a pull to stop. A queued job ends at once; a running one when its worker sees the flag."""
    now = timezone.now()
    if PullJob.objects.filter(pk=job.pk, state=PullJob.State.QUEUED).update(
        state=PullJob.State.CANCELLED, cancel_requested=True, finished_at=now, message="Cancelled before it started"
    ):
        return True
    return bool(PullJob.objects.filter(pk=job.pk, state=PullJob.State.RUNNING).update(cancel_requested=True))
