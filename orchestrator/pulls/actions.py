"""Who runs a pull: the atomic claim, the worker's heartbeat, and the history of attempts.

A worker takes a queued job with one conditional UPDATE (queued -> running) and
writes a token of its own into ``PullJob.worker``. The writes it makes about
the job afterwards are fenced by that token and ``state=running``: once the
sweeper has handed the job to another worker, the old one's writes change
nothing, and its heartbeat notices and stops its pull. A second delivery of
the same task (a message Redis hands out again after its visibility timeout,
a sweeper's re-send, a double click) therefore never starts a second daemon
pull of the job.

The heartbeat is a thread, so it keeps beating while the daemon is silent
(resolving a name, waiting for a registry) and stops when the process dies. A
running job whose heartbeat is older than ``PULL_STALE_AFTER_SECONDS`` has lost
its worker: :func:`release_stale` requeues it within the retry budget, and
fails it (``interrupted``) once the budget is used up. A delivery that finds
the job held by a process that has certainly ended on the same machine (a pool
process the OOM killer took: Celery redelivers its task at once because of
``reject_on_worker_lost``) takes it over without waiting for the heartbeat.

``PullJob.attempts`` keeps one entry per attempt::

    {"number": 2, "worker": "pulls@gw1 pid 812 on gw1/4026531836 #a1b2c3", "outcome": "failed",
     "code": "registry_unreachable", "message": "...",
     "started_at": "ISO-8601", "finished_at": "ISO-8601" or null}

``outcome`` is running, succeeded, failed, cancelled or interrupted. A worker
writes its own entries; the sweeper closes the entry of a worker that died.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import PullJob

log = logging.getLogger(__name__)

# The heartbeat beats at least this often, and three times per stale period.
HEARTBEAT_MAX_SECONDS = 5.0
# Attempts kept in the history; with unlimited retries (0) an outage of a day would otherwise add thousands.
HISTORY_LIMIT = 50


def heartbeat_period() -> float:
    return max(0.5, min(HEARTBEAT_MAX_SECONDS, settings.PULL_STALE_AFTER_SECONDS / 3))


def _here() -> str:
    """This machine and PID namespace: where a pid means the same process (not so across containers)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}/{namespace}"


def holder_token(worker_name: str) -> str:
    """A name for this claim: the worker, its process and where it runs, and a random part (never reused)."""
    return f"{worker_name} pid {os.getpid()} on {_here()} #{secrets.token_hex(3)}"[:200]


_TOKEN = re.compile(r" pid (?P<pid>\d+) on (?P<where>\S+) #")


def holder_is_gone(holder: str) -> bool:
    """True only when ``holder``'s process ran here and has certainly ended.

    A Celery pool process that was killed (OOM killer, SIGKILL) makes its
    worker reject the task for redelivery (``reject_on_worker_lost``): this
    lets that redelivery take the job over at once instead of after
    ``PULL_STALE_AFTER_SECONDS``. A process elsewhere, or a pid now used by
    another process, is never declared gone; the heartbeat decides those.
    """
    match = _TOKEN.search(holder or "")
    if match is None or match["where"] != _here():
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie is dead too, just not reaped yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _iso(moment) -> str:
    return moment.isoformat()


def claim(job_id: int, holder: str) -> bool:
    """Take the job for ``holder``: a queued job, or a running one whose worker stopped beating.

    False for every other delivery: the job is running under a live worker,
    has ended, was cancelled, or is gone.
    """
    if _take_queued(job_id, holder):
        return True
    # A delivery for a job that looks running: take it over only if its worker is gone (its process
    # ended on this machine, or its heartbeat stopped), by the same rules and record as the sweeper.
    current = PullJob.objects.filter(pk=job_id, state=PullJob.State.RUNNING).values_list("worker", flat=True).first()
    if current is None:
        return False
    gone = current if holder_is_gone(current) else None
    if release_stale(job_id, gone_holder=gone) == "requeued":
        return _take_queued(job_id, holder)
    return False


def _take_queued(job_id: int, holder: str) -> bool:
    now = timezone.now()
    return bool(
        PullJob.objects.filter(pk=job_id, state=PullJob.State.QUEUED, cancel_requested=False).update(
            state=PullJob.State.RUNNING,
            # The first start stays: a requeued job keeps the time it first started.
            started_at=Coalesce("started_at", Value(now, output_field=DateTimeField())),
            heartbeat_at=now,
            worker=holder,
        )
    )


def describe(job_id: int) -> str:
    """Why a delivery was refused, for the log: the job's state and who holds it."""
    row = PullJob.objects.filter(pk=job_id).values("state", "worker", "cancel_requested").first()
    if row is None:
        return "it no longer exists"
    held = f", held by {row['worker']}" if row["state"] == PullJob.State.RUNNING and row["worker"] else ""
    cancel = ", cancel requested" if row["cancel_requested"] else ""
    return f"it is {row['state']}{held}{cancel}"


def release_stale(job_id: int, stale_after: float | None = None, gone_holder: str | None = None) -> str | None:
    """End the hold of a worker that stopped beating on a running job (or, with ``gone_holder``, whose
    process is known to have ended: see :func:`holder_is_gone`).

    The open attempt is recorded as interrupted. Then the job is requeued (no
    ``dispatched_at``, so the sweeper sends it again) if the retry budget
    allows, cancelled if someone asked for that, or failed with ``interrupted``.
    Returns "requeued", "cancelled", "failed", or None if the job's worker is alive
    (or the job is not running).
    """
    stale_after = settings.PULL_STALE_AFTER_SECONDS if stale_after is None else stale_after
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after)
    hold = Q(worker=gone_holder) if gone_holder else Q(heartbeat_at__lt=cutoff)
    with transaction.atomic():
        job = (
            PullJob.objects.select_for_update()
            .select_related("instance")
            .filter(hold, pk=job_id, state=PullJob.State.RUNNING)
            .first()
        )
        if job is None:
            return None
        if gone_holder:
            why = "its process ended (killed or crashed)"
        else:
            why = f"no heartbeat for {int((now - job.heartbeat_at).total_seconds())} s (killed, crashed or restarted)"
        what = f"The worker running attempt {job.attempt} ({job.worker or 'unknown'}) stopped: {why}."
        attempts = _close_open(list(job.attempts or []), now, "interrupted", "interrupted", what)
        retries = job.instance.download_retries
        common = dict(attempts=attempts, worker="", heartbeat_at=None)
        if job.cancel_requested:
            fields = dict(state=PullJob.State.CANCELLED, finished_at=now, message=f"Cancelled. {what}"[:500])
            outcome = "cancelled"
        elif retries == 0 or job.attempt <= retries:
            # Back to queued: the next worker continues with the next attempt number.
            fields = dict(state=PullJob.State.QUEUED, dispatched_at=None, message=f"{what} Queued again."[:500])
            outcome = "requeued"
        else:
            fields = dict(
                state=PullJob.State.FAILED,
                finished_at=now,
                error_code="interrupted",
                error_message=f"{what} The retry budget ({retries} retries) is used up: pull again.",
                message=f"Failed after {job.attempt} attempt{'s' if job.attempt != 1 else ''}",
            )
            outcome = "failed"
        PullJob.objects.filter(pk=job_id).update(**common, **fields)
    log.warning("pull job %s: %s -> %s", job_id, what, outcome)
    return outcome


def _close_open(attempts: list[dict], now, outcome: str, code: str, message: str) -> list[dict]:
    """Close the entry still marked running (the last one, if any)."""
    if attempts and attempts[-1].get("outcome") == "running":
        attempts[-1] = {
            **attempts[-1],
            "outcome": outcome,
            "code": code,
            "message": message[:500],
            "finished_at": _iso(now),
        }
    return attempts


class Lease:
    """A worker's hold on one claimed job: fenced writes, the heartbeat thread, the attempt entries."""

    def __init__(self, job_id: int, holder: str, period: float | None = None) -> None:
        self.job_id = job_id
        self.holder = holder
        self.period = heartbeat_period() if period is None else period
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- heartbeat

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
                    alive = self.jobs().update(heartbeat_at=timezone.now())
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

    # --- fenced writes

    def jobs(self):
        """The job, as long as this worker holds it."""
        return PullJob.objects.filter(pk=self.job_id, worker=self.holder, state=PullJob.State.RUNNING)

    def update(self, **fields) -> bool:
        return bool(self.jobs().update(**fields))

    def _edit(self, change: Callable[[list[dict]], None], **fields) -> bool:
        with transaction.atomic():
            rows = list(self.jobs().select_for_update().values_list("attempts", flat=True)[:1])
            if not rows:
                self.lost.set()
                return False
            attempts = list(rows[0] or [])
            change(attempts)
            return bool(self.jobs().update(attempts=attempts, **fields))

    def begin_attempt(self, number: int, message: str) -> bool:
        now = timezone.now()

        def add(attempts: list[dict]) -> None:
            _close_open(attempts, now, "interrupted", "interrupted", "Superseded by the next attempt.")
            attempts.append(
                {
                    "number": number,
                    "worker": self.holder,
                    "outcome": "running",
                    "code": "",
                    "message": "",
                    "started_at": _iso(now),
                    "finished_at": None,
                }
            )
            del attempts[:-HISTORY_LIMIT]

        return self._edit(add, attempt=number, message=message[:500], heartbeat_at=now)

    def end_attempt(self, outcome: str, code: str = "", note: str = "", **fields) -> bool:
        """Close the open attempt with ``note`` as its message.

        ``fields`` (the job's final state, its message...) are written in the same transaction.
        """
        now = timezone.now()
        if "state" in fields and "finished_at" not in fields and fields["state"] != PullJob.State.RUNNING:
            fields["finished_at"] = now
        return self._edit(lambda attempts: _close_open(attempts, now, outcome, code, note), **fields)
