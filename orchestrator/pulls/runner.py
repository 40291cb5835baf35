"""Celery tasks: pull an image for a job; and the sweep the worker's sweeper thread runs.

The task message carries only the job id; credentials are read from the
database (decrypted in the worker) right before the pull. Kura's retry
semantics: up to ``download_retries`` further attempts (0 = no limit),
``download_retry_interval`` ms apart, each bounded by ``download_timeout`` s.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from datetime import timedelta

from celery import current_task, shared_task
from django.conf import settings
from django.utils import timezone

from registries.daemon import open_client
from registries.errors import PullError
from registries.reference import registry_of

from . import containers, jobs, leases, registry_auth
from .models import PullJob
from .progress import Snapshot
from .pulling import pull_once

log = logging.getLogger(__name__)

# After the n-th rate_limited answer in a row, wait interval * 2^(n-1), at most this long (or the
# interval itself when that is longer): a registry that counts requests is not asked again and again.
RATE_LIMIT_BACKOFF_CAP = 600.0


def retry_delay(code: str, interval: float, rate_limited_in_a_row: int = 0) -> float:
    """Seconds to wait before the next attempt: the instance's interval, doubled per rate_limited in a row."""
    if code != "rate_limited" or rate_limited_in_a_row < 1:
        return interval
    doubled = interval * 2 ** min(rate_limited_in_a_row - 1, 30)
    return min(doubled, max(interval, RATE_LIMIT_BACKOFF_CAP))


class JobWriter:
    """Throttled progress writes to the job row (fenced by the lease), and the cancel flag."""

    def __init__(self, lease: leases.Lease, interval: float) -> None:
        self.lease = lease
        self.job_id = lease.job_id
        self.interval = interval
        self.last_write = 0.0
        self.pending: Snapshot | Callable[[], Snapshot] | None = None
        self.writes = 0

    def progress(self, snapshot: Snapshot | Callable[[], Snapshot], *, force: bool = False) -> None:
        """Note progress; write it if the interval has passed. A callable is only called when writing."""
        self.pending = snapshot
        now = time.monotonic()
        if force or now - self.last_write >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.pending is None:
            return
        s = self.pending() if callable(self.pending) else self.pending
        self.lease.update(
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
        self.last_write = time.monotonic()

    def cancel_requested(self) -> bool:
        """True when the user asked to cancel, or when this worker no longer holds the job."""
        if self.lease.lost.is_set():
            return True
        return PullJob.objects.filter(pk=self.job_id, cancel_requested=True).exists()


def _worker_name() -> str:
    request = getattr(current_task, "request", None)
    return getattr(request, "hostname", None) or socket.gethostname()


@shared_task(name="orchestrator.pull_image", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def pull_image(job_id: int) -> str:
    holder = leases.holder_token(_worker_name())
    if not leases.claim(job_id, holder):
        # A second delivery (redelivered after a worker died, re-sent by the sweeper, a double click):
        # the job already has a worker, or has ended. Refusing it is what keeps one pull per job.
        log.info("pull job %s: delivery refused, %s", job_id, leases.describe(job_id))
        return "skipped"
    lease = leases.Lease(job_id, holder)
    lease.start()
    try:
        return _run_pull(job_id, lease)
    except Exception:
        log.exception("pull job %s: internal error", job_id)
        lease.end_attempt(
            "failed",
            "unknown",
            "The worker hit an internal error.",
            state=PullJob.State.FAILED,
            error_code="unknown",
            error_message="The worker hit an internal error while pulling; its log has the details. Pull again.",
        )
        return "failed"
    finally:
        lease.stop()


def _run_pull(job_id: int, lease: leases.Lease) -> str:
    job = PullJob.objects.select_related("instance").get(pk=job_id)
    instance = job.instance
    registry = registry_of(job.reference)
    writer = JobWriter(lease, settings.PULL_PROGRESS_WRITE_INTERVAL)
    retries = instance.download_retries
    interval = instance.download_retry_interval / 1000
    attempt = job.attempt
    rate_limited_in_a_row = 0
    log.info("pull job %s: %s on %s (%s)", job_id, job.reference, settings.DOCKER_HOST, lease.holder)
    while True:
        attempt += 1
        if not lease.begin_attempt(attempt, f"Attempt {attempt}: contacting the registry"):
            return _lost(job_id, lease)
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
            if lease.lost.is_set():
                return _lost(job_id, lease)
            if error.code == "cancelled" or writer.cancel_requested():
                lease.end_attempt(
                    "cancelled",
                    "cancelled",
                    error.message,
                    state=PullJob.State.CANCELLED,
                    message=f"Cancelled during attempt {attempt}",
                )
                log.info("pull job %s cancelled", job_id)
                return "cancelled"
            more = retries == 0 or attempt <= retries
            if not error.retryable or not more:
                lease.end_attempt(
                    "failed",
                    error.code,
                    error.message,
                    state=PullJob.State.FAILED,
                    error_code=error.code,
                    error_message=error.message,
                    message=f"Failed after {attempt} attempt{'s' if attempt > 1 else ''}",
                )
                log.info("pull job %s failed: %s", job_id, error.code)
                return "failed"
            rate_limited_in_a_row = rate_limited_in_a_row + 1 if error.code == "rate_limited" else 0
            delay = retry_delay(error.code, interval, rate_limited_in_a_row)
            log.info("pull job %s attempt %s failed (%s); retrying in %.1f s", job_id, attempt, error.code, delay)
            lease.end_attempt(
                "failed",
                error.code,
                error.message,
                message=(f"Attempt {attempt} failed ({error.code}): {error.message} Retrying in {delay:g} s.")[:500],
            )
            if _wait_or_cancel(writer, delay):
                if lease.lost.is_set():
                    return _lost(job_id, lease)
                lease.update(
                    state=PullJob.State.CANCELLED, finished_at=timezone.now(), message="Cancelled between two attempts"
                )
                log.info("pull job %s cancelled", job_id)
                return "cancelled"
            continue
        snapshot = outcome.snapshot
        writer.progress(snapshot, force=True)
        if not lease.end_attempt("succeeded", note="Image is up to date" if outcome.up_to_date else "Pulled"):
            return _lost(job_id, lease)
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


def _lost(job_id: int, lease: leases.Lease) -> str:
    log.warning(
        "pull job %s: %s no longer holds it (%s); stopped without writing",
        job_id,
        lease.holder,
        leases.describe(job_id),
    )
    return "lost"


def _wait_or_cancel(writer: JobWriter, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if writer.cancel_requested():
            return True
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
    return False


def sweep(stale_after: float | None = None) -> dict:
    """One round of the sweeper (orchestrator.sweeper runs it in every worker).

    Running jobs whose worker stopped beating are requeued within their retry
    budget, else failed as interrupted; queued jobs the broker never got, or
    whose message it lost (a Redis restart), are sent again.
    """
    stale_after = settings.PULL_STALE_AFTER_SECONDS if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    counts = {"requeued": 0, "interrupted": 0, "cancelled": 0}
    stale = PullJob.objects.filter(state=PullJob.State.RUNNING, heartbeat_at__lt=cutoff).values_list("pk", flat=True)
    for job_id in list(stale):
        outcome = leases.release_stale(job_id, stale_after)
        if outcome == "failed":
            counts["interrupted"] += 1
        elif outcome is not None:
            counts[outcome] += 1
    counts["dispatched"] = jobs.redispatch_waiting(lost_after=stale_after)
    return counts
