"""What the web asks of an instance's container: converge it (remove it) once a disable or a delete commits."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

from orchestrator.models.gateways import pull_queue

log = logging.getLogger(__name__)

CONVERGE_TASK = "orchestrator.converge_instance"


def request_converge(instance_id: int, gateway: str) -> None:
    """Have ``gateway``'s agent converge the instance once the current transaction commits (ids only travel).

    ``gateway`` is where the container is: after a move, the old gateway. It goes on the pull queue, where
    Celery's retries are: it is not interactive, and the control queue is for what a page waits on.
    """
    transaction.on_commit(lambda: _send_converge(instance_id, gateway))


def _send_converge(instance_id: int, gateway: str) -> bool:
    try:
        current_app.send_task(CONVERGE_TASK, (instance_id, gateway), queue=pull_queue(gateway), retry=False)
    except Exception as exc:  # the broker being down must not fail the save or the delete
        log.warning(
            "task queue unavailable; the container of instance %s stays until it is removed by hand: %s",
            instance_id,
            type(exc).__name__,
        )
        return False
    return True
