"""Gateways: the Docker hosts the console drives, each through its own agent."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

# Also a part of queue names (gw.<name>, gw.<name>.control): lowercase letters, digits and dashes.
GATEWAY_NAME_RE = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
LOCAL = "local"


def pull_queue(name: str) -> str:
    """The queue of a gateway's pulls."""
    return f"gw.{name}"


def control_queue(name: str) -> str:
    """The queue of a gateway's checks and container actions, so they never wait behind pulls."""
    return f"gw.{name}.control"


def unacked_keys(name: str) -> dict[str, str]:
    """Redis keys where kombu keeps a gateway's delivered, unacknowledged messages (transport options).

    Per gateway, so an agent restores only its own gateway's messages after the visibility timeout, and a
    broker user per gateway (README, "Trust model") needs no key of another gateway's.
    """
    return {
        "unacked_key": f"unacked.{pull_queue(name)}",
        "unacked_index_key": f"unacked_index.{pull_queue(name)}",
        "unacked_mutex_key": f"unacked_mutex.{pull_queue(name)}",
    }


def online_q(cutoff=None) -> models.Q:
    """Gateways whose agent beat since ``cutoff`` (default: now minus :func:`offline_after`): the one rule."""
    return models.Q(last_seen__gte=cutoff or timezone.now() - offline_after())


def offline_q(cutoff=None) -> models.Q:
    return ~online_q(cutoff) | models.Q(last_seen__isnull=True)


class GatewayQuerySet(models.QuerySet):
    def online(self):
        return self.filter(online_q())

    def offline(self):
        return self.filter(offline_q())


class Gateway(models.Model):
    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(
                GATEWAY_NAME_RE,
                "Use lowercase letters, digits and '-', at most 63, starting and ending with a letter "
                "or digit (it names the gateway's task queues).",
            )
        ],
        help_text="A short name, e.g. 'plant-3-line-a'. It names the gateway's queues, so it cannot change.",
    )
    # sha256 of the agent's token; the token itself is shown once and never stored.
    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True, help_text="The agent's last heartbeat.")
    # What the agent reported with it: platform, Docker version, storage, CPUs, memory, containers, its own version.
    facts = models.JSONField(default=dict, blank=True)

    objects = GatewayQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("gateway-detail", args=[self.name])

    @property
    def queue(self) -> str:
        return pull_queue(self.name)

    @property
    def control_queue(self) -> str:
        return control_queue(self.name)

    @property
    def online(self) -> bool:
        return self.last_seen is not None and timezone.now() - self.last_seen < offline_after()

    @property
    def last_seen_ago(self) -> str:
        """'3\xa0minutes ago', or 'never' for an agent that has not reported yet."""
        return f"{timesince(self.last_seen)} ago" if self.last_seen else "never"


def offline_after() -> timedelta:
    """A gateway whose agent has not beaten for this long is offline: two heartbeats missed, and a margin."""
    return timedelta(seconds=settings.GATEWAY_HEARTBEAT_SECONDS * 2 + 5)
