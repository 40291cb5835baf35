"""The converge task (sent by name from :mod:`.actions`): after a disable or a delete, remove the container."""

from __future__ import annotations

import logging

from celery import shared_task

from orchestrator.agent.client import ConsoleError
from orchestrator.agent.documents import fetch_instance

from .daemon import ContainerError
from .lifecycle import remove_instance_containers
from .report import refresh

log = logging.getLogger(__name__)


@shared_task(name="orchestrator.converge_instance", bind=True, acks_late=True, ignore_result=True, max_retries=20)
def converge_instance(self, instance_id: int, gateway: str | None = None) -> str:
    """Stop and remove the instance's container on this gateway, unless it is enabled here (it converges on pull).

    After a move, the old gateway's agent gets this: the instance is enabled, but elsewhere, so the console
    no longer shows it to this agent (``fetch_instance`` says None), as for a deleted one. ``gateway`` (where the
    container is) is what the console sends; the token's scope now decides, so it is not read.
    """
    try:
        instance = fetch_instance(instance_id)
    except ConsoleError:
        raise self.retry(countdown=15) from None
    if instance is not None and instance.enabled:
        return "enabled"
    try:
        removed = remove_instance_containers(instance_id)
    except ContainerError as error:
        if error.code == "daemon_unreachable":
            raise self.retry(countdown=15) from None
        log.warning("instance %s: could not remove its container: %s", instance_id, error.message)
        return "failed"
    log.info("instance %s: removed containers %s", instance_id, removed)
    refresh(instance_id)
    return f"removed {len(removed)}"
