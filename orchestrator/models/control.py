"""What the web asks of a gateway's agent and what the agent reports back: requests and container states.

The web never talks to a Docker daemon. It writes a :class:`ControlRequest`,
sends its id on the gateway's control queue, and waits a few seconds for the
agent's answer in the row. Secrets a check needs (a typed password, an AWS
secret) travel in the row, encrypted, and are wiped as soon as the agent has
taken them; a Celery message carries the id only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from orchestrator.security.encryption import EncryptedTextField


class ControlRequest(models.Model):
    class Kind(models.TextChoices):
        CHECK = "check", "Check access"
        START = "start", "Start"
        STOP = "stop", "Stop"
        RESTART = "restart", "Restart"
        LOGS = "logs", "Output"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for the agent"
        TAKEN = "taken", "The agent is on it"
        DONE = "done", "Answered"
        EXPIRED = "expired", "Too old when the agent got it"

    # A random id: the check button polls /control/<id>.json, and a number would be guessable.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    gateway = models.ForeignKey("Gateway", on_delete=models.CASCADE, related_name="control_requests")
    instance = models.ForeignKey(
        "ContainerInstance", on_delete=models.SET_NULL, null=True, blank=True, related_name="control_requests"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    # What the agent needs besides secrets: the reference and the login's public fields for a check.
    payload = models.JSONField(default=dict, blank=True)
    # JSON of the secrets a check logs in with; encrypted, and blank once the agent has read it.
    secrets = EncryptedTextField(blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    answer = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["instance", "kind", "-created_at"], name="control_instance_kind")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.gateway_id} ({self.state})"


class ContainerState(models.Model):
    """An instance's container as its gateway's agent last reported it (the web shows this, never asks Docker)."""

    instance = models.ForeignKey("ContainerInstance", on_delete=models.CASCADE, related_name="container_states")
    gateway = models.ForeignKey("Gateway", on_delete=models.CASCADE, related_name="container_states")
    exists = models.BooleanField(default=False)
    container_id = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, blank=True, help_text="Docker's state: running, exited, ...")
    exit_code = models.IntegerField(null=True, blank=True)
    restart_count = models.IntegerField(default=0)
    started_at = models.CharField(max_length=32, blank=True)
    finished_at = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    image_digest = models.CharField(max_length=100, blank=True)
    settings_hash = models.CharField(max_length=100, blank=True)
    # Why there is nothing to show: e.g. a container of that name that the console did not make.
    problem = models.TextField(blank=True)
    reported_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "gateway"], name="one_state_per_gateway")]

    def __str__(self) -> str:
        return f"{self.instance_id} on {self.gateway_id}: {self.state or 'none'}"

    @property
    def short_id(self) -> str:
        return self.container_id[:12]
