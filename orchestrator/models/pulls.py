"""A pull of an instance's image, from queued to its end; its state changes are in orchestrator/pulls/actions.py."""

from __future__ import annotations

from django.db import models
from django.urls import reverse
from django.utils import timezone

from orchestrator.pulls.rate import for_job as download_estimate

from .instances import ContainerInstance

# Seconds a pull task may run past its download timeout: creating, starting and watching the container
# (stopping the old one takes up to its 10 s, the start is watched a few more, a slow daemon answers late).
CONTAINER_PHASE_ALLOWANCE = 120


def task_time_limit(download_timeout: int) -> int:
    """A pull task's hard limit: one attempt's download timeout, plus what the container phase may take.

    The attempt's own watchdog cuts the download at ``download_timeout`` under any pool; this limit is
    Celery's, which kills a prefork child that hangs past it. A thread cannot be killed: under the agent's
    default thread pool, the watchdog and the daemon client's socket timeouts bound the task.
    """
    return download_timeout + CONTAINER_PHASE_ALLOWANCE


class PullJob(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)

    instance = models.ForeignKey(ContainerInstance, on_delete=models.CASCADE, related_name="pulls")
    reference = models.CharField(max_length=700, help_text="The normalized reference pulled, fixed at queue time.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    layers_done = models.PositiveIntegerField(default=0)
    layers_total = models.PositiveIntegerField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    layers = models.JSONField(default=list, blank=True)
    message = models.CharField(max_length=500, blank=True)
    digest = models.CharField(max_length=200, blank=True)
    platform = models.CharField(max_length=64, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    # The retry budget this job runs with, fixed at queue time (Kura's meaning: 0 = no limit): an edit of the
    # instance during a pull changes the next pull, not this one.
    download_retries = models.PositiveIntegerField(default=5)
    # One entry per attempt (number, worker, outcome, code, message, started_at, finished_at): see pulls/actions.py.
    attempts = models.JSONField(default=list, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    requested_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    worker = models.CharField(max_length=200, blank=True, help_text="The worker running this pull.")
    cancel_requested = models.BooleanField(default=False)
    # Outbox: set once the broker accepted the task; the sweeper re-sends jobs without it.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    # After a failed attempt the job is queued again, holding no worker: the next attempt starts no earlier.
    not_before = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class ContainerState(models.TextChoices):
        NONE = "", "not started"
        PULLED = "pulled"
        CREATED = "created"
        RUNNING = "running"
        EXITED = "exited"
        FAILED = "failed"

    # The container phase after a successful pull (orchestrator/containers/phase.py).
    container_state = models.CharField(max_length=16, choices=ContainerState.choices, blank=True, default="")
    container_id = models.CharField(max_length=64, blank=True)
    container_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-queued_at", "-pk"]
        indexes = [
            models.Index(fields=["instance", "-queued_at"]),
            # The gateways pages count each gateway's queued and running pulls from this index alone.
            models.Index(fields=["instance", "state"], name="pulljob_instance_state"),
        ]

    def __str__(self) -> str:
        return f"pull #{self.pk} of {self.reference}"

    def get_absolute_url(self) -> str:
        return reverse("pull-detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    def retries_left(self) -> bool:
        """True while another attempt may follow the current one (0 retries means no limit)."""
        return self.download_retries == 0 or self.attempt <= self.download_retries

    @property
    def max_attempts(self) -> int | None:
        """How many attempts the job may make in all; None without a limit."""
        return self.download_retries + 1 if self.download_retries else None

    @property
    def error(self) -> dict | None:
        if not self.error_code:
            return None
        return {"code": self.error_code, "message": self.error_message}

    def as_json(self) -> dict:
        """The pull job contract of shared/DESIGN.md."""

        def iso(value):
            return value.isoformat() if value else None

        download = download_estimate(self)
        return {
            "id": self.pk,
            "instance": self.instance.name,
            "reference": self.reference,
            "state": self.state,
            "progress": self.progress,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "layers_done": self.layers_done,
            "layers_total": self.layers_total,
            "layers": self.layers,
            "message": self.message,
            "digest": self.digest or None,
            "platform": self.platform or None,
            "attempt": self.attempt,
            "attempts": self.attempts,
            "error": self.error,
            "queued_at": iso(self.queued_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "container_state": self.container_state or None,
            "container_id": self.container_id or None,
            "container_error": self.container_error or None,
            "gateway": self.instance.gateway.name,
            "agent_lost": self.agent_lost,
            "gateway_note": self.gateway_note,
            # Bytes per second and seconds of download left, null unless known: see orchestrator/pulls/rate.py.
            "download_rate": download.rate,
            "seconds_left": download.seconds_left,
        }

    @property
    def agent_lost(self) -> bool:
        """An active job whose gateway's agent stopped reporting: the page says so from the heartbeat's age alone,
        even with no agent left anywhere to sweep the job."""
        return self.is_active and not self.instance.gateway.online

    @property
    def gateway_note(self) -> str | None:
        """What an active job waits for when its gateway is offline."""
        if not self.agent_lost:
            return None
        gateway = self.instance.gateway
        ago = gateway.last_seen_ago
        if self.state == self.State.QUEUED:
            return f"Queued: waiting for gateway {gateway.name} (last seen {ago})."
        return f"The agent of gateway {gateway.name} stopped reporting (last seen {ago}); the pull goes on when back."
