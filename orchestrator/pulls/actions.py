"""Every state change of a PullJob, in one place: queue, send, claim, attempts, progress, end, cancel, release.

Nothing else writes a job row (views, the worker, the container phase and the sweeper call these), as in Zulip's
``zerver/actions``.

A worker takes a queued job with one conditional UPDATE (queued -> running) and writes a token of its own into
``PullJob.worker`` (:mod:`.holders`). Every write it makes afterwards goes through a :class:`Fence`, which matches
that token and ``state=running``: once the sweeper has handed the job to another worker, the old one's writes change
nothing, and it stops. A second delivery of the same task (a message Redis hands out again after its visibility
timeout, a sweeper's re-send, a double click) therefore never starts a second daemon pull of the job.

A running job whose heartbeat is older than ``PULL_STALE_AFTER_SECONDS`` has lost its worker: :func:`release_stale`
requeues it within its retry budget (``PullJob.retries_left``), else fails it (``interrupted``); a delivery that
finds its holder's process certainly ended here (a pool process the OOM killer took) takes it over at once. A failed
attempt with retries left queues the job again, due at ``not_before``.

The job row is the outbox: :func:`queue_pull` creates it in the caller's transaction, the task (the id only, sent by
name) leaves on commit, and the sweeper sends what the broker never got.

``PullJob.attempts`` keeps one entry per attempt: number, worker (its claim token), outcome (running, succeeded,
failed, cancelled, interrupted), code, message, started_at and finished_at (ISO-8601 or null).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from orchestrator.models import ContainerInstance, PullJob
from orchestrator.models.gateways import pull_queue
from orchestrator.models.pulls import task_time_limit

from .holders import holder_is_gone
from .progress import Snapshot

log = logging.getLogger(__name__)

PULL_TASK = "orchestrator.pull_image"
WAITING_FOR_WORKER = "Waiting for a worker"
WAITING_FOR_QUEUE = "Waiting for the task queue"
# Attempts kept in the history; with unlimited retries (0) an outage of a day would otherwise add thousands.
HISTORY_LIMIT = 50
State = PullJob.State


def _failed_after(attempts: int) -> str:
    return f"Failed after {attempts} attempt{'s' if attempts != 1 else ''}"


# --------------------------------------------------------------------------- queueing and sending


def queue_pull(instance: ContainerInstance, user=None) -> tuple[PullJob, bool]:
    """Queue a pull of ``instance``, or return the pull already queued or running. Returns (job, created).

    Joins the caller's transaction (the form's save), so instance and job
    commit together; the task is sent once that commits. The instance row is
    locked so two clicks cannot queue two pulls (SQLite serialises writers;
    Postgres honours the lock).
    """
    with transaction.atomic():
        ContainerInstance.objects.select_for_update().filter(pk=instance.pk).first()
        active = instance.pulls.filter(state__in=PullJob.ACTIVE_STATES).order_by("-queued_at").first()
        if active is not None:
            return active, False
        job = PullJob.objects.create(
            instance=instance,
            reference=instance.pull_reference,
            download_retries=instance.download_retries,
            requested_by=user if user is not None and user.is_authenticated else None,
            message=WAITING_FOR_WORKER,
        )
        transaction.on_commit(lambda: dispatch(job.pk))
    return job, True


def dispatch(job_id: int) -> bool:
    """Send the pull task for a queued job, due at its ``not_before``. False (it stays queued) if the broker is down.

    Never blocks a web request for long: publishing does not retry, and the
    Redis transport is told not to retry connecting (``BROKER_REDIS_TRANSPORT_OPTIONS``).
    """
    fields = ("instance__gateway__name", "instance__download_timeout", "not_before")
    row = PullJob.objects.filter(pk=job_id).values(*fields).first()
    if row is None:
        return False
    due = row["not_before"]
    countdown = max(0.0, (due - timezone.now()).total_seconds()) if due else 0.0
    try:
        # The job's own gateway's queue: only that gateway's agent may run it.
        queue = pull_queue(row["instance__gateway__name"])
        current_app.send_task(
            PULL_TASK,
            (job_id,),
            queue=queue,
            countdown=countdown or None,
            time_limit=task_time_limit(row["instance__download_timeout"]),
            retry=False,
        )
    except Exception as exc:  # kombu raises OperationalError and friends; none may fail the save
        log.warning("task queue unavailable, pull job %s stays queued until it is back: %s", job_id, type(exc).__name__)
        PullJob.objects.filter(pk=job_id, state=State.QUEUED, dispatched_at__isnull=True).update(
            message=f"{WAITING_FOR_QUEUE}: the pull starts as soon as it is reachable"
        )
        return False
    queued = PullJob.objects.filter(pk=job_id, state=State.QUEUED)
    queued.update(dispatched_at=timezone.now())
    queued.filter(message__startswith=WAITING_FOR_QUEUE).update(message=WAITING_FOR_WORKER)
    return True


def redispatch_waiting(older_than: float = 5.0, lost_after: float | None = None, gateway: str | None = None) -> int:
    """Send queued jobs again: those the broker never got, and (with ``lost_after``) those it may have lost.

    A message can vanish after the broker accepted it (Redis restarted without
    persistence), so a job still queued ``lost_after`` seconds after its
    dispatch is sent once more. A duplicate is harmless: :func:`claim` refuses
    every delivery but the first. Returns how many were sent.
    """
    now = timezone.now()
    waiting = Q(dispatched_at__isnull=True, queued_at__lte=now - timedelta(seconds=older_than))
    if lost_after is not None:
        # A job waiting out its retry interval has its message on the way: lost only once it is overdue.
        lost = now - timedelta(seconds=lost_after)
        waiting |= Q(dispatched_at__lt=lost) & (Q(not_before__isnull=True) | Q(not_before__lt=lost))
    jobs = PullJob.objects.filter(waiting, state=State.QUEUED)
    if gateway is not None:
        jobs = jobs.filter(instance__gateway__name=gateway)
    sent = 0
    for job_id in jobs.values_list("pk", flat=True):
        sent += dispatch(job_id)
    return sent


def request_cancel(job: PullJob) -> bool:
    """Ask a pull to stop. A queued job ends at once; a running one when its worker sees the flag."""
    if PullJob.objects.filter(pk=job.pk, state=State.QUEUED).update(
        state=State.CANCELLED, cancel_requested=True, finished_at=timezone.now(), message="Cancelled before it started"
    ):
        return True
    return bool(PullJob.objects.filter(pk=job.pk, state=State.RUNNING).update(cancel_requested=True))


# --------------------------------------------------------------------------- claiming and releasing


@dataclass
class Fence:
    """A worker's claim on one job: its writes count only while the job runs under ``holder``."""

    job_id: int
    holder: str
    lost: threading.Event = field(default_factory=threading.Event)

    def rows(self):
        return PullJob.objects.filter(pk=self.job_id, worker=self.holder, state=State.RUNNING)

    def cancel_requested(self) -> bool:
        """True when the user asked to cancel, or when this worker no longer holds the job."""
        return self.lost.is_set() or PullJob.objects.filter(pk=self.job_id, cancel_requested=True).exists()


def claim(job_id: int, holder: str) -> Fence | None:
    """Take the job for ``holder``: a queued job, or a running one whose worker has certainly ended.

    None for every other delivery: the job is running under a live worker,
    has ended, was cancelled, or is gone.
    """
    if _take_queued(job_id, holder):
        return Fence(job_id, holder)
    current = PullJob.objects.filter(pk=job_id, state=State.RUNNING).values_list("worker", flat=True).first()
    if current is None:
        return None
    # Its process ended on this machine, or its heartbeat stopped: the same rules and record as the sweeper.
    gone = current if holder_is_gone(current) else None
    if release_stale(job_id, gone_holder=gone) == "requeued" and _take_queued(job_id, holder):
        return Fence(job_id, holder)
    return None


def _take_queued(job_id: int, holder: str) -> bool:
    now = timezone.now()
    # A second early (its clock a little ahead) is fine; a delivery before a retry's interval is not.
    due = Q(not_before__isnull=True) | Q(not_before__lte=now + timedelta(seconds=1))
    return bool(
        PullJob.objects.filter(due, pk=job_id, state=State.QUEUED, cancel_requested=False).update(
            state=State.RUNNING,
            # The first start stays: a requeued job keeps the time it first started.
            started_at=Coalesce("started_at", Value(now, output_field=DateTimeField())),
            heartbeat_at=now,
            worker=holder,
        )
    )


def release_stale(job_id: int, stale_after: float | None = None, gone_holder: str | None = None) -> str | None:
    """End the hold of a worker that stopped beating on a running job (or, with ``gone_holder``, whose
    process is known to have ended).

    The open attempt is recorded as interrupted. Then the job is requeued (no
    ``dispatched_at``, so the sweeper sends it again) if its retry budget
    allows, cancelled if someone asked for that, or failed with ``interrupted``.
    Returns "requeued", "cancelled", "failed", or None if the job's worker is alive
    (or the job is not running).
    """
    stale_after = settings.PULL_STALE_AFTER_SECONDS if stale_after is None else stale_after
    now = timezone.now()
    hold = Q(worker=gone_holder) if gone_holder else Q(heartbeat_at__lt=now - timedelta(seconds=stale_after))
    with transaction.atomic():
        job = PullJob.objects.select_for_update().filter(hold, pk=job_id, state=State.RUNNING).first()
        if job is None:
            return None
        if gone_holder:
            why = "its process ended (killed or crashed)"
        else:
            why = f"no heartbeat for {int((now - job.heartbeat_at).total_seconds())} s (killed, crashed or restarted)"
        what = f"The worker running attempt {job.attempt} ({job.worker or 'unknown'}) stopped: {why}."
        attempts = _close_open(list(job.attempts or []), now, "interrupted", "interrupted", what)
        common = dict(attempts=attempts, worker="", heartbeat_at=None)
        if job.cancel_requested:
            fields = dict(state=State.CANCELLED, finished_at=now, message=f"Cancelled. {what}"[:500])
            outcome = "cancelled"
        elif job.retries_left():
            # Back to queued: the next worker continues with the next attempt number.
            fields = dict(state=State.QUEUED, dispatched_at=None, message=f"{what} Queued again."[:500])
            outcome = "requeued"
        else:
            fields = dict(
                state=State.FAILED,
                finished_at=now,
                error_code="interrupted",
                error_message=f"{what} The retry budget ({job.download_retries} retries) is used up: pull again.",
                message=_failed_after(job.attempt),
            )
            outcome = "failed"
        PullJob.objects.filter(pk=job_id).update(**common, **fields)
    log.warning("pull job %s: %s -> %s", job_id, what, outcome)
    return outcome


# --------------------------------------------------------------------------- a claimed job's writes (fenced)


def beat(fence: Fence) -> bool:
    """The heartbeat: False once the job is no longer this worker's."""
    return bool(fence.rows().update(heartbeat_at=timezone.now()))


def _write(fence: Fence, **fields) -> bool:
    if fence.lost.is_set():
        return False
    if not fence.rows().update(**{"heartbeat_at": timezone.now(), **fields}):
        fence.lost.set()
        return False
    return True


def _edit_attempts(fence: Fence, change: Callable[[list[dict]], None], **fields) -> bool:
    with transaction.atomic():
        rows = list(fence.rows().select_for_update().values_list("attempts", flat=True)[:1])
        if not rows:
            fence.lost.set()
            return False
        attempts = list(rows[0] or [])
        change(attempts)
        return _write(fence, attempts=attempts, **fields)


def _close_open(attempts: list[dict], now, outcome: str, code: str, message: str) -> list[dict]:
    """Close the entry still marked running (the last one, if any)."""
    if attempts and attempts[-1].get("outcome") == "running":
        attempts[-1] = {
            **attempts[-1],
            "outcome": outcome,
            "code": code,
            "message": message[:500],
            "finished_at": now.isoformat(),
        }
    return attempts


def _end_attempt(fence: Fence, outcome: str, code: str = "", note: str = "", **fields) -> bool:
    now = timezone.now()
    if fields.get("state") in (State.SUCCEEDED, State.FAILED, State.CANCELLED):
        fields.setdefault("finished_at", now)
    return _edit_attempts(fence, lambda attempts: _close_open(attempts, now, outcome, code, note), **fields)


def begin_attempt(fence: Fence, number: int) -> bool:
    now = timezone.now()

    def add(attempts: list[dict]) -> None:
        _close_open(attempts, now, "interrupted", "interrupted", "Superseded by the next attempt.")
        attempts.append(
            {
                "number": number,
                "worker": fence.holder,
                "outcome": "running",
                "code": "",
                "message": "",
                "started_at": now.isoformat(),
                "finished_at": None,
            }
        )
        del attempts[:-HISTORY_LIMIT]

    # Its bytes count from zero: the rate (pulls/rate.py) is this attempt's bytes over this attempt's time.
    return _edit_attempts(
        fence, add, attempt=number, message=f"Attempt {number}: contacting the registry", bytes_done=0
    )


def record_progress(fence: Fence, snapshot: Snapshot) -> bool:
    return _write(
        fence,
        progress=snapshot.progress,
        bytes_done=snapshot.bytes_done,
        bytes_total=snapshot.bytes_total,
        layers_done=snapshot.layers_done,
        layers_total=snapshot.layers_total,
        layers=snapshot.layers,
        message=snapshot.message,
    )


def attempt_failed(fence: Fence, number: int, code: str, message: str, retry_in: float) -> bool:
    """An attempt failed and another follows after ``retry_in`` seconds: back to queued, holding no worker.

    The caller sends the task again (:func:`dispatch` makes it due at ``not_before``); a cancel meanwhile
    ends the queued job at once.
    """
    note = f"Attempt {number} failed ({code}): {message} Retrying in {retry_in:g} s."
    return _end_attempt(
        fence,
        "failed",
        code,
        message,
        state=State.QUEUED,
        worker="",
        heartbeat_at=None,
        dispatched_at=None,
        not_before=timezone.now() + timedelta(seconds=retry_in),
        message=note[:500],
    )


def fail(fence: Fence, number: int, code: str, message: str, *, note: str | None = None) -> bool:
    """The job fails with ``code``; ``note`` is the attempt's own line (the error message by default)."""
    return _end_attempt(
        fence,
        "failed",
        code,
        message if note is None else note,
        state=State.FAILED,
        error_code=code,
        error_message=message,
        message=_failed_after(number),
    )


def cancel_attempt(fence: Fence, number: int, message: str) -> bool:
    return _end_attempt(
        fence, "cancelled", "cancelled", message, state=State.CANCELLED, message=f"Cancelled during attempt {number}"
    )


def pulled(fence: Fence, *, digest: str, platform: str, up_to_date: bool) -> bool:
    """The image is in place: the attempt succeeded and the container phase begins (the job stays running)."""
    return _end_attempt(
        fence,
        "succeeded",
        note="Image is up to date" if up_to_date else "Pulled",
        progress=100,
        digest=digest,
        platform=platform,
        message="Image is up to date" if up_to_date else "Downloaded newer image",
        error_code="",
        error_message="",
        container_state=PullJob.ContainerState.PULLED,
    )


def container_progress(fence: Fence, **fields) -> bool:
    """A step of the container phase (container_state, container_id, message)."""
    return _write(fence, **fields)


def finish(fence: Fence, state: str, **fields) -> bool:
    """End the job after its container phase: succeeded, failed (with its error) or cancelled."""
    return _write(fence, state=state, finished_at=timezone.now(), **fields)
