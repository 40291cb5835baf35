"""One pull job from claim to end: Kura's attempts and retries, then the container phase.

The task message carries only the job id; credentials are read from the
database (decrypted in the worker) right before each attempt. Kura's retry
semantics: up to ``download_retries`` further attempts (0 = no limit; the
budget is fixed on the job at queue time), ``download_retry_interval`` ms
apart, each bounded by ``download_timeout`` s. Each task makes one attempt; a
retry is the job queued again, due after the interval. Every write goes
through :mod:`.actions`, fenced by this worker's claim.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings

from orchestrator.containers.phase import run_container_phase
from orchestrator.models import PullJob
from registries.daemon import open_client
from registries.errors import PullError
from registries.reference import registry_of

from . import actions, credentials
from .attempt import pull_once
from .holders import holder_token
from .lease import Lease
from .progress import Snapshot

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
    """Throttled progress writes: a snapshot is built and written only when the interval has passed."""

    def __init__(self, fence: actions.Fence, interval: float) -> None:
        self.fence = fence
        self.interval = interval
        self.last_write = 0.0
        self.pending: Snapshot | Callable[[], Snapshot] | None = None
        self.writes = 0

    def progress(self, snapshot: Snapshot | Callable[[], Snapshot], *, force: bool = False) -> None:
        """Note progress; write it if the interval has passed. A callable is only called when writing."""
        self.pending = snapshot
        if force or time.monotonic() - self.last_write >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.pending is None:
            return
        actions.record_progress(self.fence, self.pending() if callable(self.pending) else self.pending)
        self.pending = None
        self.writes += 1
        self.last_write = time.monotonic()


def run(job_id: int, worker_name: str) -> str:
    """The pull task's body. Returns its result word: succeeded, failed, retrying, cancelled, lost or skipped."""
    holder = holder_token(worker_name)
    fence = actions.claim(job_id, holder)
    if fence is None:
        # A second delivery (redelivered after a worker died, re-sent by the sweeper, a double click):
        # the job already has a worker, or has ended. Refusing it is what keeps one pull per job.
        log.info("pull job %s: delivery refused, %s", job_id, describe(job_id))
        return "skipped"
    lease = Lease(fence)
    lease.start()
    try:
        return _attempt(job_id, lease)
    except Exception:
        log.exception("pull job %s: internal error", job_id)
        attempt = PullJob.objects.filter(pk=job_id).values_list("attempt", flat=True).first() or 0
        actions.fail(
            lease,
            attempt,
            "unknown",
            "The worker hit an internal error while pulling; its log has the details. Pull again.",
            note="The worker hit an internal error.",
        )
        return "failed"
    finally:
        lease.stop()


def _attempt(job_id: int, lease: Lease) -> str:
    """One attempt. A failure with retries left queues the job again, due after the interval: the task ends,
    so a pull waiting out its interval (or retrying a dead registry for ever) holds no worker."""
    job = PullJob.objects.select_related("instance").get(pk=job_id)
    instance = job.instance
    writer = JobWriter(lease, settings.PULL_PROGRESS_WRITE_INTERVAL)
    log.info("pull job %s: %s on %s (%s)", job_id, job.reference, settings.DOCKER_HOST, lease.holder)
    job.attempt += 1
    if not actions.begin_attempt(lease, job.attempt):
        return _lost(lease)
    try:
        outcome = _pull(job, registry_of(job.reference), lease, writer)
    except PullError as error:
        writer.flush()
        if lease.lost.is_set():
            return _lost(lease)
        if error.code == "cancelled" or lease.cancel_requested():
            actions.cancel_attempt(lease, job.attempt, error.message)
            log.info("pull job %s cancelled", job_id)
            return "cancelled"
        if not error.retryable or not job.retries_left():
            actions.fail(lease, job.attempt, error.code, error.message)
            log.info("pull job %s failed: %s", job_id, error.code)
            return "failed"
        delay = retry_delay(error.code, instance.download_retry_interval / 1000, _rate_limited_in_a_row(job, error))
        log.info("pull job %s attempt %s failed (%s); retrying in %.1f s", job_id, job.attempt, error.code, delay)
        if not actions.attempt_failed(lease, job.attempt, error.code, error.message, delay):
            return _lost(lease)
        actions.dispatch(job_id)
        return "retrying"
    writer.progress(outcome.snapshot, force=True)
    if not actions.pulled(
        lease, digest=outcome.digest or "", platform=outcome.platform or "", up_to_date=outcome.up_to_date
    ):
        return _lost(lease)
    log.info("pull job %s pulled: %s", job_id, outcome.digest)
    # Kura runs the container next; the job ends there (succeeded only once it runs).
    result = run_container_phase(lease, digest=outcome.digest or "")
    return _lost(lease) if result == "lost" else result


def _rate_limited_in_a_row(job: PullJob, error: PullError) -> int:
    """How many answers in a row, this one included, were rate_limited (the history says the earlier ones)."""
    if error.code != "rate_limited":
        return 0
    count = 1
    for attempt in reversed(job.attempts or []):  # loaded before this attempt began
        if attempt.get("code") != "rate_limited":
            break
        count += 1
    return count


def _pull(job: PullJob, registry: str, lease: Lease, writer: JobWriter):
    instance = job.instance
    deadline = time.monotonic() + instance.download_timeout
    # Per attempt: an ECR password from AWS may need renewing between two attempts.
    auth, secrets = credentials.for_instance(instance, registry)
    client = open_client(settings.DOCKER_HOST)
    try:
        return pull_once(
            client,
            job.reference,
            auth_config=auth,
            deadline=deadline,
            on_progress=writer.progress,
            should_cancel=lease.cancel_requested,
            docker_host=settings.DOCKER_HOST,
            secrets=secrets,
            platform=instance.pull_platform or None,
        )
    finally:
        client.close()


def describe(job_id: int) -> str:
    """Why a delivery was refused, for the log: the job's state and who holds it."""
    row = PullJob.objects.filter(pk=job_id).values("state", "worker", "cancel_requested").first()
    if row is None:
        return "it no longer exists"
    held = f", held by {row['worker']}" if row["state"] == PullJob.State.RUNNING and row["worker"] else ""
    cancel = ", cancel requested" if row["cancel_requested"] else ""
    return f"it is {row['state']}{held}{cancel}"


def _lost(fence: actions.Fence) -> str:
    log.warning(
        "pull job %s: %s no longer holds it (%s); stopped without writing",
        fence.job_id,
        fence.holder,
        describe(fence.job_id),
    )
    return "lost"
