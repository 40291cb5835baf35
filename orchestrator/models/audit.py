"""The audit log: who did what, when, from which address. One table, one shape, never a secret."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from .instances import ContainerInstance

#: What ``changes`` shows for a secret field instead of its value (old or new).
CHANGED = "changed"


class AuditEntry(models.Model):
    """One action by one person (or ``manage.py``). Written by :func:`orchestrator.audit.record.record` only."""

    class Action(models.TextChoices):
        # What was asked for; the message says how it went ("failed: <code>").
        INSTANCE_CREATE = "instance.create", "Create instance"
        INSTANCE_CHANGE = "instance.change", "Change instance"
        INSTANCE_DELETE = "instance.delete", "Delete instance"
        PULL_QUEUE = "pull.queue", "Queue pull"
        PULL_CANCEL = "pull.cancel", "Cancel pull"
        ACCESS_CHECK = "access.check", "Check access"
        CONTAINER_START = "container.start", "Start container"
        CONTAINER_STOP = "container.stop", "Stop container"
        CONTAINER_RESTART = "container.restart", "Restart container"
        ROLE_CHANGE = "role.change", "Change role"
        PERMISSION_CHANGE = "permission.change", "Change permissions"
        LOGIN = "login", "Sign in"
        LOGOUT = "logout", "Sign out"
        LOGIN_FAILED = "login.failed", "Failed sign-in"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    # Kept when the user is deleted; for a failed login, the name that was tried; for manage.py, the OS user.
    username = models.CharField(max_length=150, blank=True, db_index=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    instance = models.ForeignKey(
        ContainerInstance, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    instance_name = models.CharField(max_length=128, blank=True)
    # {field: [old, new]}; a secret field is {field: "changed"}, never a value.
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        who = self.username or "unknown"
        what = f" {self.instance_name}" if self.instance_name else ""
        return f"{self.at:%Y-%m-%d %H:%M:%S} {who} {self.action}{what}"
