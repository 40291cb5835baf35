"""Celery tasks: pull an image for a job, and sweep jobs whose worker is gone.

The task message carries only the job id; credentials are read from the
database (decrypted in the worker) right before the pull. Kura's retry
semantics: up to ``download_retries`` further attempts (0 = no limit),
``download_retry_interval`` ms apart, each bounded by ``download_timeout`` s.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from registries.daemon import open_client
from registries.errors import PullError
from registries.reference import ReferenceError, parse_normalized

from . import containers, jobs, registry_auth
from .models import PullJob
from .progress import Snapshot
from .pulling import pull_once

log = logging.getLogger(__name__)

WORKER_NAME = f"{socket.gethostname()}"
HEARTBEAT_EVERY = 5.0


class JobWriter:
    """Throttled progress writes to one job row, plus the cancel flag and the heartbeat."""

    def __init__(self, job_id: int, interval: float) -> None:
        self.job_id = job_id
        self.interval = interval
        self.last_write = 0.0
        self.last_beat = 0.0
        self.pending: Snapshot | None = None
        self.writes = 0

    def progress(self, snapshot: Snapshot, *, force: bool = False) -> None:
        self.pending = snapshot
        now = time.monotonic()
        if force or now - self.last_write >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.pending is None:
            return
        s = self.pending
        PullJob.objects.filter(pk=self.job_id).update(
            progress=s.progress,
            bytes_done=s.bytes_done,
            bytes_total=s.bytes_total,
            layers_done=s.layers_done,
            layers_total=s.layers_total,
            layers=s.layers,
            message=s.message,
            heartbeat_at=timezone.now(),
        )
        self.pending = None
        self.writes += 1
        self.last_write = self.last_beat = time.monotonic()

    def cancel_requested(self) -> bool:
        """Read the cancel flag; also keeps the heartbeat fresh while the stream is silent."""
        now = time.monotonic()
        query = PullJob.objects.filter(pk=self.job_id)
        if now - self.last_beat >= HEARTBEAT_EVERY:
            query.update(heartbeat_at=timezone.now())
            self.last_beat = now
        return bool(query.filter(cancel_requested=True).exists())


def _claim(job_id: int) -> bool:
    """Take the job atomically: a queued job, or a running one whose worker stopped beating."""
    now = timezone.now()
    fields = dict(state=PullJob.State.RUNNING, started_at=now, heartbeat_at=now, worker=WORKER_NAME)
    if PullJob.objects.filter(pk=job_id, state=PullJob.State.QUEUED, cancel_requested=False).update(**fields):
        return True
    # A redelivered message after the worker died: take it over only if nobody is beating.
    stale = now - timedelta(seconds=settings.PULL_STALE_AFTER_SECONDS)
    return bool(
        PullJob.objects.filter(pk=job_id, state=PullJob.State.RUNNING, heartbeat_at__lt=stale).update(**fields)
    )


def _finish(job_id: int, state: str, **fields) -> None:
    PullJob.objects.filter(pk=job_id).update(state=state, finished_at=timezone.now(), **fields)


@shared_task(name="orchestrator.pull_image", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def pull_image(job_id: int) -> str:
    if not _claim(job_id):
        log.info("pull job %s is not waiting for a worker; nothing to do", job_id)
        return "skipped"
    job = PullJob.objects.select_related("instance").get(pk=job_id)
    instance = job.instance
    registry = _registry_host(job.reference)
    writer = JobWriter(job_id, settings.PULL_PROGRESS_WRITE_INTERVAL)
    retries = instance.download_retries
    interval = instance.download_retry_interval / 1000
    attempt = job.attempt
    log.info("pull job %s: %s on %s", job_id, job.reference, settings.DOCKER_HOST)
    while True:
        attempt += 1
        PullJob.objects.filter(pk=job_id).update(attempt=attempt, message=f"Attempt {attempt}: contacting the registry")
        try:
            deadline = time.monotonic() + instance.download_timeout
            # Per attempt: an ECR password from AWS may need renewing between two attempts.
            credentials, secrets = registry_auth.for_instance(instance, registry)
            client = open_client(settings.DOCKER_HOST)
            try:
                outcome = pull_once(
                    client,
                    job.reference,
                    auth_config=credentials,
                    deadline=deadline,
                    on_progress=writer.progress,
                    should_cancel=writer.cancel_requested,
                    docker_host=settings.DOCKER_HOST,
                    secrets=secrets,
                    platform=instance.pull_platform or None,
                )
            finally:
                client.close()
        except PullError as error:
            writer.flush()
            if error.code == "cancelled":
                _finish(job_id, PullJob.State.CANCELLED, message=error.message)
                return "cancelled"
            more = retries == 0 or attempt <= retries
            if not error.retryable or not more or writer.cancel_requested():
                _finish(job_id, PullJob.State.FAILED, error_code=error.code, error_message=error.message,
                        message=f"Failed after {attempt} attempt{'s' if attempt > 1 else ''}")
                log.info("pull job %s failed: %s", job_id, error.code)
                return "failed"
            log.info("pull job %s attempt %s failed (%s); retrying in %.1f s", job_id, attempt, error.code, interval)
            PullJob.objects.filter(pk=job_id).update(
                message=f"Attempt {attempt} failed ({error.code}): {error.message} Retrying in {interval:g} s."[:500]
            )
            if _wait_or_cancel(writer, interval):
                _finish(job_id, PullJob.State.CANCELLED, message="Cancelled between two attempts")
                return "cancelled"
            continue
        snapshot = outcome.snapshot
        writer.progress(snapshot, force=True)
        pulled = dict(
            progress=100,
            digest=outcome.digest or "",
            platform=outcome.platform or "",
            message="Image is up to date" if outcome.up_to_date else "Downloaded newer image",
            error_code="",
            error_message="",
        )
        log.info("pull job %s pulled: %s", job_id, outcome.digest)
        # Kura runs the container next; the job ends there (succeeded only once it runs).
        return containers.finish_pull(job_id, pulled)


def _registry_host(reference: str) -> str:
    try:
        return parse_normalized(reference).domain
    except ReferenceError:
        return reference.split("/", 1)[0]


def _wait_or_cancel(writer: JobWriter, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if writer.cancel_requested():
            return True
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
    return False


@shared_task(name="orchestrator.sweep_pulls", ignore_result=True)
def sweep_pulls() -> dict:
    """Find pulls whose worker is gone, and queued pulls the broker never got."""
    return sweep()


def sweep(stale_after: float | None = None) -> dict:
    stale_after = settings.PULL_STALE_AFTER_SECONDS if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    interrupted = requeued = 0
    for job in PullJob.objects.filter(state=PullJob.State.RUNNING, heartbeat_at__lt=cutoff).select_related("instance"):
        retries = job.instance.download_retries
        budget_left = retries == 0 or job.attempt <= retries
        if budget_left and not job.cancel_requested:
            # Back to queued: the next worker continues with the next attempt number.
            if PullJob.objects.filter(pk=job.pk, state=PullJob.State.RUNNING, heartbeat_at__lt=cutoff).update(
                state=PullJob.State.QUEUED, dispatched_at=None, worker="",
                message=f"Attempt {job.attempt} was interrupted: its worker stopped. Queued again.",
            ):
                requeued += 1
        elif PullJob.objects.filter(pk=job.pk, state=PullJob.State.RUNNING, heartbeat_at__lt=cutoff).update(
            state=PullJob.State.FAILED, finished_at=timezone.now(), error_code="interrupted",
            error_message="The worker running this pull stopped and the retry budget is used up. Pull again.",
        ):
            interrupted += 1
    sent = jobs.redispatch_waiting()
    return {"interrupted": interrupted, "requeued": requeued, "dispatched": sent}
