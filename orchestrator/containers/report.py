"""The agent reports its containers' states to the console: after each action, and a full pass every heartbeat.

The web shows these rows and never asks the daemon. A row is written only
when something changed, so a quiet gateway costs one read per heartbeat.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.utils import timezone

from orchestrator.models import ContainerInstance, ContainerState

from .daemon import ContainerError, daemon_client
from .status import observe

log = logging.getLogger(__name__)

FIELDS = (
    "exists",
    "container_id",
    "state",
    "exit_code",
    "restart_count",
    "started_at",
    "finished_at",
    "error",
    "image_digest",
    "settings_hash",
    "problem",
)
EMPTY = {
    "exists": False,
    "container_id": "",
    "state": "",
    "exit_code": None,
    "restart_count": 0,
    "started_at": "",
    "finished_at": "",
    "error": "",
    "image_digest": "",
    "settings_hash": "",
    "problem": "",
}


def refresh(instance_id: int) -> None:
    """Report one instance's container now (after a start, a stop, a pull's container phase, a removal, an event).

    Only the agent of the instance's own gateway reports it: after a move, the old gateway's daemon says
    nothing about the container on the new one.
    """
    instance = ContainerInstance.objects.select_related("gateway").filter(pk=instance_id).first()
    if instance is None or instance.gateway.name != current_app.conf.get("console_gateway"):
        return
    try:
        client = daemon_client()
    except ContainerError:
        return
    try:
        _write(instance, observe(client, instance))
    except ContainerError as error:
        log.info("instance %s: container state not reported: %s", instance_id, error.code)
    finally:
        client.close()


def resync(gateway: str) -> int:
    """Report every container of ``gateway``'s instances that changed since the last report. Returns the count."""
    instances = list(ContainerInstance.objects.filter(gateway__name=gateway).select_related("gateway"))
    if not instances:
        return 0
    mine = ContainerState.objects.filter(gateway=instances[0].gateway)
    mine.exclude(instance__gateway=instances[0].gateway).delete()  # instances moved away: no longer ours to show
    known = {row.instance_id: row for row in mine}
    client = daemon_client()
    changed = 0
    try:
        for instance in instances:
            changed += _write(instance, observe(client, instance), known.get(instance.pk))
    finally:
        client.close()
    return changed


def _write(instance: ContainerInstance, seen: dict, row: ContainerState | None = None) -> bool:
    values = {**EMPTY, **seen}
    if row is None:
        row = ContainerState.objects.filter(instance=instance, gateway=instance.gateway).first()
    if row is not None and all(getattr(row, name) == values[name] for name in FIELDS):
        return False
    ContainerState.objects.update_or_create(
        instance=instance, gateway=instance.gateway, defaults={**values, "reported_at": timezone.now()}
    )
    return True
